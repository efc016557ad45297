/*
 * e2e_qemu.c - eim_e2e's host-function section (1) where protection keys
 * exist: booted as /init under QEMU TCG (-cpu max) by eim_e2e_qemu, it
 * starts the EIM test host under `graft start` (so its agent runs with
 * isolation and extension stacks, the default), loads e2e_log (class
 * observer, which calls the host function app_log with a buffer on its
 * stack) with `graft load --eim`, serves a round of requests and checks
 * that app_log ran once per request (its line on the host's stderr) and
 * that its results reached the extension's map - the path issue 15 found
 * broken on a real PKU machine, which the script test cannot reach here.
 *
 * No shell in the guest: the graft commands are spawned directly. Paths
 * are compiled in (E2E_GRAFT, E2E_APP, E2E_OBJ, E2E_SPEC); the harness
 * copies those files into the initramfs at the same paths
 * (GRAFT_QEMU_FILES). Prints "EIM-QEMU: pku=yes|no (...)" and
 * "EIM-QEMU: N passed, M failed", then powers off.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolation/isolation.h"

#define N 30                            /* requests per round */

extern char **environ;
#include "tcheck.h"
#include "tguest.h"

/* A child with stdin/stdout/stderr on pipes we hold (in/out/err; -1: not
 * asked for: stdin at end of file, stderr with stdout). */
struct child {
    pid_t pid;
    int in, out, err;
};

static int spawn(char *const argv[], struct child *c, int want_in, int want_err)
{
    int pin[2], pout[2], perr[2] = { -1, -1 };
    if (pipe(pin) || pipe(pout) || (want_err && pipe(perr)))
        return -errno;
    if (!want_in) {                     /* (the guest has no /dev/null) */
        close(pin[1]);
        pin[1] = -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, want_err ? perr[1] : pout[1], 2);
    int rc = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pin[0]);
    close(pout[1]);
    if (want_err)
        close(perr[1]);
    c->in = pin[1];
    c->out = pout[0];
    c->err = want_err ? perr[0] : -1;
    return -rc;
}

/* Append what fd has within ms milliseconds to buf (NUL-terminated);
 * stops early once want (if not NULL) appears. Returns 1 if it did. */
static int read_until(int fd, char *buf, size_t cap, const char *want, int ms)
{
    size_t len = strlen(buf);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (want && strstr(buf, want))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || len + 1 >= cap)
            return 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return want ? strstr(buf, want) != NULL : 0;
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* Run a graft command to its end; its output in buf. */
static int run(char *const argv[], char *buf, size_t cap)
{
    struct child c;
    buf[0] = '\0';
    if (spawn(argv, &c, 0, 0) < 0)
        return -1;
    read_until(c.out, buf, cap, NULL, 20000);
    close(c.out);
    int st = 0;
    waitpid(c.pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The u64 at byte off of element 0's value in `graft map dump` JSON. */
static long long u64_at(const char *json, int off)
{
    const char *v = strstr(json, "\"value\":[");
    if (!v)
        return -1;
    v += strlen("\"value\":[");
    unsigned long long x = 0;
    for (int i = 0; i < off + 8; i++) {
        char *end;
        unsigned long b = strtoul(v, &end, 10);
        if (end == v)
            return -1;
        if (i >= off)
            x |= (unsigned long long)(b & 0xff) << (8 * (i - off));
        v = end + (*end == ',');
    }
    return (long long)x;
}

static int finish(int pid1)
{
    printf("EIM-QEMU: %d passed, %d failed\n", g_pass, g_fail);
    fflush(stdout);
    if (pid1)
        tguest_poweroff();
    return g_fail ? 1 : 0;
}

int main(void)
{
    int pid1 = getpid() == 1;
    if (pid1)
        tguest_init();
    setenv("GRAFT_REGISTRY", "/graft.eimqemu", 1);
    struct graft_err err = { 0 };
    giso_init(NULL, &err);
    printf("EIM-QEMU: pku=%s (%s)\n", giso_enabled() ? "yes" : "no", giso_status());

    static char out[1 << 16], errs[1 << 16], buf[1 << 16];
    char n_arg[16];
    snprintf(n_arg, sizeof(n_arg), "%d", N);
    char *app_argv[] = { E2E_GRAFT, "start", "--", E2E_APP, "--serve", n_arg, NULL };
    struct child app;
    int rc = spawn(app_argv, &app, 1, 1);
    CHECK(rc == 0, "the host starts under graft start (%s)", strerror(-rc));
    if (rc)
        return finish(pid1);
    CHECK(read_until(app.out, out, sizeof(out), "ready", 30000), "the host says ready");
    char pid_arg[16];
    snprintf(pid_arg, sizeof(pid_arg), "%d", (int)app.pid);
    char *load_argv[] = { E2E_GRAFT, "load", E2E_OBJ, "--eim", E2E_SPEC, "--class", "observer",
                          "--pid", pid_arg, NULL };
    struct child loader;
    rc = spawn(load_argv, &loader, 0, 0);
    buf[0] = '\0';
    int loaded = rc == 0 && read_until(loader.out, buf, sizeof(buf), "loaded ", 60000);
    printf("%s", buf);
    if (!loaded) {
        int st = 0;
        pid_t w = rc == 0 ? waitpid(loader.pid, &st, WNOHANG) : -1;
        printf("graft load: %s (status %#x)\n", w > 0 ? "exited" : "still running", st);
    }
    CHECK(loaded, "e2e_log loads in class observer");

    char *list_argv[] = { E2E_GRAFT, "list", NULL };
    char want[64];
    snprintf(want, sizeof(want), "hooks 1 installed, 0 failed");
    int installed = 0;
    for (int i = 0; i < 600 && !installed; i++) {
        run(list_argv, buf, sizeof(buf));
        installed = strstr(buf, want) != NULL;
        if (!installed)
            usleep(50000);
    }
    printf("%s", buf);
    CHECK(installed, "the agent installed the hook");
    CHECK(strstr(buf, "isolation: on") != NULL, "the agent runs with isolation on");

    (void)!write(app.in, "go\n", 3);
    int done = read_until(app.out, out, sizeof(out), "round 1 done", 60000);
    CHECK(done, "a round of %d requests was served", N);
    read_until(app.err, errs, sizeof(errs), NULL, 1000);
    int logs = count(errs, "ext-log");
    CHECK(logs == N, "app_log ran once per request (%d lines on the host's stderr, want %d)",
          logs, N);

    char *dump_argv[] = { E2E_GRAFT, "map", "dump", "e2e_obs", NULL };
    run(dump_argv, buf, sizeof(buf));
    printf("%s", buf);
    long long calls = u64_at(buf, 0), last = u64_at(buf, 8), ret = u64_at(buf, 16);
    CHECK(calls == N, "the program ran %d times (%lld)", N, calls);
    CHECK(last == N - 1, "it saw the host's g_requests (%lld, want %d)", last, N - 1);
    CHECK(ret == 8 * N, "app_log's results reached it (%lld, want %d)", ret, 8 * N);

    if (g_fail)
        printf("the host's stderr:\n%s", errs);
    kill(loader.pid, SIGTERM);
    waitpid(loader.pid, NULL, 0);
    (void)!write(app.in, "quit\n", 5);
    close(app.in);
    int st = 0;
    waitpid(app.pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the host exited cleanly (status %#x)", st);
    if (!pid1) {
        char *unload_argv[] = { E2E_GRAFT, "unload", "--all", NULL };
        run(unload_argv, buf, sizeof(buf));
    }
    return finish(pid1);
}
