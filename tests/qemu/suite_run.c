/*
 * suite_run.c - run a list of existing test programs where protection keys
 * exist and say, for each, whether it passed and with what isolation.
 *
 *   suite_run LIST          natively (run-suite.sh does this on a CPU with PKU)
 *   as /init of a QEMU guest: the list is $graft_suite (the kernel argument
 *   graft_suite=PATH; run-initramfs.sh passes name=value arguments to /init's
 *   environment); then it mounts /proc, /dev and /dev/shm first and powers
 *   the guest off at the end (there is no shell, no busybox: it is the whole
 *   userland besides the tests).
 *
 * LIST has one test a line: "NAME TIMEOUT_S [VAR=VALUE...] PROGRAM [ARG...]"
 * (blank lines and # comments skipped; no quoting). Each test runs in its
 * own process group with the variables added to the environment, its
 * output passed through (prefixed by nothing, so failures read as they do
 * natively), and is killed at its timeout. The first line of its output
 * that says "isolation: ..." (tiso.h, the agent, the isolation tests print
 * one) is what the verdict line reports:
 *
 *   SUITE: PASS func_hook_test 41.2s [isolation: on (pkey 1), extension stacks keyed]
 *   SUITE: FAIL syscall_bpf exit 1 3.0s [isolation: ...]
 *   SUITE: pku=yes (QEMU TCG or native) ... SUITE: 16 passed, 0 failed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolation/isolation.h"
#include "tguest.h"

#define MAX_ARGS 64

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What the test's output said about isolation: the rest of the first line
 * holding "isolation: " (without its newline). */
struct verdict_scan {
    char line[512];     /* the current, incomplete line */
    size_t len;
    char mode[160];
};

static void scan_output(struct verdict_scan *v, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c != '\n' && v->len + 1 < sizeof(v->line)) {
            v->line[v->len++] = c;
            continue;
        }
        if (c != '\n')
            continue;       /* an overlong line: keep its start */
        v->line[v->len] = '\0';
        const char *m = strstr(v->line, "isolation: ");
        if (m && !v->mode[0])
            snprintf(v->mode, sizeof(v->mode), "%s", m);
        v->len = 0;
    }
}

/* Run one test; 1 if it passed (exit status 0 within its time). */
static int run_test(const char *name, int timeout_s, char **env_add, int n_env, char **argv)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        printf("SUITE: FAIL %s (pipe: %s)\n", name, strerror(errno));
        return 0;
    }
    fflush(stdout);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        printf("SUITE: FAIL %s (fork: %s)\n", name, strerror(errno));
        close(p[0]), close(p[1]);
        return 0;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        for (int i = 0; i < n_env; i++)
            putenv(env_add[i]);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "suite_run: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(p[1]);
    struct verdict_scan v = { 0 };
    int timed_out = 0, open_out = 1;
    char buf[4096];
    while (open_out) {
        double left = timeout_s - (now_s() - t0);
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n <= 0) {
            open_out = 0;   /* every writer closed: the test (and its children) ended */
            break;
        }
        scan_output(&v, buf, (size_t)n);
        (void)!write(1, buf, (size_t)n);
    }
    if (timed_out)
        kill(-pid, SIGKILL);
    int st = 0;
    /* The output closed, but a test that daemonised a child holding no copy
     * of it may still be exiting: wait for the test itself, bounded. */
    while (waitpid(pid, &st, timed_out ? 0 : WNOHANG) == 0) {
        if (now_s() - t0 > timeout_s) {
            kill(-pid, SIGKILL);
            timed_out = 1;
            waitpid(pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    kill(-pid, SIGKILL);    /* leftovers of the test's process group */
    close(p[0]);
    double secs = now_s() - t0;
    int ok = !timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    char why[64] = "";
    if (timed_out)
        snprintf(why, sizeof(why), " timeout after %ds", timeout_s);
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof(why), " killed by signal %d", WTERMSIG(st));
    else if (!ok)
        snprintf(why, sizeof(why), " exit %d", WEXITSTATUS(st));
    printf("SUITE: %s %s%s %.1fs [%s]\n", ok ? "PASS" : "FAIL", name, why, secs,
           v.mode[0] ? v.mode : "isolation: not reported");
    fflush(stdout);
    return ok;
}

static int finish(int pid1, int pass, int fail)
{
    printf("SUITE: %d passed, %d failed\n", pass, fail);
    fflush(stdout);
    if (pid1)
        tguest_poweroff();
    return fail ? 1 : 0;
}

int main(int argc, char **argv)
{
    int pid1 = getpid() == 1;
    if (pid1)
        tguest_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *list = argc > 1 ? argv[1] : getenv("graft_suite");
    struct giso_cpu cpu;
    giso_cpu_features(&cpu);
    printf("SUITE: pku=%s (%s)\n", cpu.pku && cpu.ospke ? "yes" : "no",
           pid1 ? "QEMU TCG" : "native");
    if (!list) {
        printf("SUITE: FAIL no test list (argument or graft_suite=)\n");
        return finish(pid1, 0, 1);
    }
    FILE *f = fopen(list, "r");
    if (!f) {
        printf("SUITE: FAIL cannot open the test list %s: %s\n", list, strerror(errno));
        return finish(pid1, 0, 1);
    }
    int pass = 0, fail = 0, lineno = 0;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *words[MAX_ARGS + 3];
        int n = 0;
        for (char *tok = strtok(line, " \t\n"); tok && n < MAX_ARGS + 2; tok = strtok(NULL, " \t\n"))
            words[n++] = tok;
        if (n == 0 || words[0][0] == '#')
            continue;
        char *end = NULL;
        long timeout_s = n > 1 ? strtol(words[1], &end, 10) : 0;
        int first = 2;
        while (first < n && strchr(words[first], '=') && words[first][0] != '/')
            first++;
        if (n < 3 || !end || *end || timeout_s <= 0 || first >= n) {
            printf("SUITE: FAIL %s:%d: want NAME TIMEOUT_S [VAR=VALUE...] PROGRAM [ARG...]\n",
                   list, lineno);
            fail++;
            continue;
        }
        words[n] = NULL;
        run_test(words[0], (int)timeout_s, words + 2, first - 2, words + first) ? pass++ : fail++;
    }
    fclose(f);
    return finish(pid1, pass, fail);
}
