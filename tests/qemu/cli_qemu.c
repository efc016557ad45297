/*
 * cli_qemu.c - the core of cli_e2e (tests/cli/test_e2e.sh) through the graft
 * command and its agent, as a program: pku_suite runs it where protection
 * keys exist (natively, or in the QEMU guest, which has no shell, so the
 * commands are spawned directly), so the agent runs with isolation on and
 * extension stacks keyed, as it does by default on a CPU with PKU.
 *
 *   cli_qemu GRAFT AGENT TARGET BPFDIR [--as-nobody]
 *
 * --as-nobody (when run as root) drops to uid/gid 65534 first: without
 * CAP_SYS_RAWIO page 0 cannot be mapped, so the agent's syscall hooks take
 * the seccomp SIGSYS fallback, as they do for any unprivileged user.
 * GRAFT is bin/graft, AGENT lib/libgraft-agent.so (named so the guest gets
 * it), TARGET tests/cli/e2e_target, BPFDIR tests/cli/bpf (the objects).
 * Sections: a program loaded before `graft start` (uprobe, JIT, keyed map);
 * `graft attach` into a running process, load, detach; syscall hooks
 * (syscount); a deny list (bpf_override_return); an int3 hook (count_tiny);
 * tail calls (tail_work). Exact counts from `graft map dump` each time.
 * Prints the agent's isolation line and "cli-qemu: N passed, M failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tcheck.h"

extern char **environ;

static const char *graft, *target, *bpfdir;

struct child {
    pid_t pid;
    int in, out;        /* its stdin (-1: none) and its stdout+stderr */
    char buf[1 << 16];  /* what it printed so far */
};

static int spawn(char *const argv[], struct child *c, int want_in)
{
    int pin[2], pout[2];
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC))
        return -errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 2);
    int rc = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pin[0]);
    close(pout[1]);
    if (!want_in) {
        close(pin[1]);
        pin[1] = -1;
    }
    c->in = pin[1];
    c->out = pout[0];
    c->buf[0] = '\0';
    return -rc;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Read c's output until want appears (1) or ms pass / it closes (0). */
static int wait_for(struct child *c, const char *want, int ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t len = strlen(c->buf);
    for (;;) {
        if (want && strstr(c->buf, want))
            return 1;
        long left = ms - ms_since(&t0);
        if (left <= 0 || len + 1 >= sizeof(c->buf))
            return 0;
        struct pollfd p = { .fd = c->out, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(c->out, c->buf + len, sizeof(c->buf) - 1 - len);
        if (n <= 0)
            return want && strstr(c->buf, want);
        len += (size_t)n;
        c->buf[len] = '\0';
    }
}

static void stop(struct child *c, int sig)
{
    if (c->pid <= 0)
        return;
    if (sig)
        kill(c->pid, sig);
    if (c->in >= 0)
        close(c->in);
    waitpid(c->pid, NULL, 0);
    close(c->out);
    c->pid = 0;
}

/* Run a graft command to its end: its exit status, its output in out. */
static int graft_run(char *out, size_t cap, const char *a1, const char *a2, const char *a3,
                     const char *a4, const char *a5, const char *a6)
{
    char *argv[] = { (char *)graft, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                     (char *)a5, (char *)a6, NULL };
    static struct child c;
    if (spawn(argv, &c, 0) < 0)
        return -1;
    wait_for(&c, NULL, 60000);
    snprintf(out, cap, "%s", c.buf);
    int st = 0;
    close(c.out);
    waitpid(c.pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The value at key in map name (4-byte key, 8-byte value), -1 if absent. */
static long long mapval(const char *name, unsigned key)
{
    static char out[1 << 16];
    if (graft_run(out, sizeof(out), "map", "dump", name, NULL, NULL, NULL) != 0)
        return -1;
    char pat[48];
    snprintf(pat, sizeof(pat), "{\"key\":%u,\"value\":", key);
    const char *p = strstr(out, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static struct child tgt, loader;
static int round_no;

static int start_target(int with_agent)
{
    char n[] = "1000";
    char *agent_argv[] = { (char *)graft, "start", "--", (char *)target, n, NULL };
    char *plain_argv[] = { (char *)target, n, NULL };
    round_no = 0;
    return spawn(with_agent ? agent_argv : plain_argv, &tgt, 1) == 0 &&
           wait_for(&tgt, "ready", 60000);
}

static int next_round(const char *line)
{
    char want[32];
    snprintf(want, sizeof(want), "round %d done", ++round_no);
    (void)!write(tgt.in, line, strlen(line));
    return wait_for(&tgt, want, 60000);
}

/* graft load OBJ [--pid PID] [extra], in the background until "loaded". */
static int start_loader(const char *obj, int pid, const char *extra)
{
    static char path[4096], pid_s[16];
    snprintf(path, sizeof(path), "%s/%s.bpf.o", bpfdir, obj);
    snprintf(pid_s, sizeof(pid_s), "%d", pid);
    char *argv[8] = { (char *)graft, "load", path };
    int i = 3;
    if (pid) {
        argv[i++] = "--pid";
        argv[i++] = pid_s;
    }
    if (extra)
        argv[i++] = (char *)extra;
    argv[i] = NULL;
    int ok = spawn(argv, &loader, 0) == 0 && wait_for(&loader, "loaded", 120000);
    if (!ok)
        printf("graft load %s: %s\n", obj, loader.buf);
    return ok;
}

/* Until `graft list` shows every link of the last load installed in pid. */
static int wait_hooks(int pid)
{
    const char *l = strstr(loader.buf, " link(s)");
    int links = 0;
    if (l) {
        while (l > loader.buf && l[-1] >= '0' && l[-1] <= '9')
            l--;
        links = atoi(l);
    }
    char want[64], row[32];
    snprintf(want, sizeof(want), "hooks %d installed", links);
    snprintf(row, sizeof(row), " %d ", pid);
    static char out[1 << 16];
    for (int i = 0; i < 600; i++) {
        graft_run(out, sizeof(out), "list", NULL, NULL, NULL, NULL, NULL);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            if (strstr(line, row) && strstr(line, want))
                return 1;
        usleep(100000);
    }
    graft_run(out, sizeof(out), "list", NULL, NULL, NULL, NULL, NULL);
    printf("graft list:\n%s", out);
    return 0;
}

/* A fresh target under graft start with obj loaded for it, installed. */
static void with_object(const char *obj, const char *extra)
{
    CHECK(start_target(1), "the target starts under graft start");
    CHECK(start_loader(obj, tgt.pid, extra), "load %s", obj);
    CHECK(wait_hooks(tgt.pid), "the agent installed %s's hooks", obj);
}

static void end_target(void)
{
    if (tgt.in >= 0)
        (void)!write(tgt.in, "quit\n", 5);
    stop(&tgt, 0);
}

int main(int argc, char **argv)
{
    int nobody = argc == 6 && !strcmp(argv[5], "--as-nobody");
    if (argc != 5 && !nobody) {
        fprintf(stderr, "usage: cli_qemu GRAFT AGENT TARGET BPFDIR [--as-nobody]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (nobody && getuid() == 0 &&
        (setgroups(0, NULL) || setgid(65534) || setuid(65534))) {
        printf("FAIL: cannot drop to uid 65534: %s\n", strerror(errno));
        return 1;
    }
    if (nobody && (access(argv[1], X_OK) || access(argv[3], X_OK) || access(argv[4], R_OK))) {
        /* natively, a build tree under a private home directory */
        printf("cli-qemu: skipped as uid %d: the build tree is not readable by it\n",
               (int)getuid());
        return 0;
    }
    graft = argv[1], target = argv[3], bpfdir = argv[4];
    char reg[64];
    snprintf(reg, sizeof(reg), "/graft.cliqemu.%d", getpid());
    setenv("GRAFT_REGISTRY", reg, 1);
    signal(SIGPIPE, SIG_IGN);

    printf("== 1. graft start with a program loaded first\n");
    CHECK(start_loader("count_work", 0, NULL), "graft load count_work comes up");
    CHECK(start_target(1), "the target starts under graft start");
    CHECK(next_round("go\n"), "round 1");
    /* the agent's verdict, for the log and the suite's summary line */
    const char *iso = strstr(tgt.buf, "isolation: on (pkey");
    if (!iso)
        iso = strstr(tgt.buf, "isolation: ");
    char isoline[200] = "no isolation line from the agent";
    if (iso)
        snprintf(isoline, sizeof(isoline), "%.*s", (int)strcspn(iso, "\n"), iso);
    printf("cli-qemu: the agent says %s\n", isoline);
    CHECK(strstr(isoline, "isolation: on (pkey") && strstr(isoline, "extension stacks keyed"),
          "the agent runs with isolation and keyed extension stacks");
    CHECK(mapval("counts", 0) == 1000, "1000 calls counted (%lld)", mapval("counts", 0));
    CHECK(mapval("counts", 1) == 499500, "argument sum 0+..+999 (%lld)", mapval("counts", 1));
    CHECK(next_round("go\n"), "round 2");
    CHECK(mapval("counts", 0) == 2000, "2000 calls counted (%lld)", mapval("counts", 0));
    end_target();
    stop(&loader, SIGTERM);

    printf("== 2. graft attach into a running process, load, detach\n");
    static char out[1 << 16];
    CHECK(start_target(0), "a plain target starts");
    CHECK(next_round("go\n"), "round 1 unhooked");
    char pid_s[16];
    snprintf(pid_s, sizeof(pid_s), "%d", (int)tgt.pid);
    int rc = graft_run(out, sizeof(out), "attach", pid_s, NULL, NULL, NULL, NULL);
    CHECK(rc == 0, "graft attach (%d: %s)", rc, out);
    CHECK(start_loader("count_work", tgt.pid, NULL), "load for the attached process");
    CHECK(wait_hooks(tgt.pid), "the agent installed the hook");
    CHECK(next_round("go\n"), "round 2 hooked");
    CHECK(mapval("counts", 0) == 1000, "exactly the hooked round counted (%lld)",
          mapval("counts", 0));
    rc = graft_run(out, sizeof(out), "detach", pid_s, NULL, NULL, NULL, NULL);
    CHECK(rc == 0, "graft detach (%d: %s)", rc, out);
    CHECK(next_round("go\n"), "round 3 after detach");
    CHECK(mapval("counts", 0) == 1000, "nothing counted after detach (%lld)",
          mapval("counts", 0));
    end_target();
    stop(&loader, SIGTERM);

    printf("== 3. syscall hooks and a deny list\n");
    with_object("syscount", NULL);
    CHECK(next_round("sys\n"), "syscall round");
    graft_run(out, sizeof(out), "list", NULL, NULL, NULL, NULL, NULL);
    const char *how = strstr(out, "syscalls: ");
    printf("cli-qemu: uid %d, %.*s\n", (int)getuid(), how ? (int)strcspn(how, "\n") : 22,
           how ? how : "(no syscalls: in list)");
    CHECK(mapval("getppid_calls", 0) == 1000, "sys_enter_getppid saw 1000 calls (%lld)",
          mapval("getppid_calls", 0));
    CHECK(mapval("by_id", 110) == 1000, "raw sys_enter counted getppid 1000 times (%lld)",
          mapval("by_id", 110));
    CHECK(mapval("uname_calls", 0) == 1000, "sys_enter_newuname saw 1000 calls (%lld)",
          mapval("uname_calls", 0));
    stop(&loader, SIGTERM);
    CHECK(start_loader("deny_open", tgt.pid, "--allow=override"),
          "load the deny list with --allow=override");
    CHECK(wait_hooks(tgt.pid), "the agent installed the deny list");
    char line[128];
    snprintf(line, sizeof(line), "open /tmp/graft-denied-%d\n", (int)getpid());
    CHECK(next_round(line) && strstr(tgt.buf, "open Permission denied"),
          "open of a denied path fails with EACCES");
    char allowed[64];
    snprintf(allowed, sizeof(allowed), "/tmp/graft-allowed-%d", (int)getpid());
    snprintf(line, sizeof(line), "open %s\n", allowed);
    CHECK(next_round(line) && strstr(tgt.buf, "open ok"), "open of another path succeeds");
    unlink(allowed);
    CHECK(mapval("denied", 0) == 1, "exactly one denial counted (%lld)", mapval("denied", 0));
    stop(&loader, SIGTERM);
    end_target();

    printf("== 4. an int3 hook (a function too short for the jump)\n");
    with_object("count_tiny", NULL);
    CHECK(next_round("tiny\n"), "tiny round");
    CHECK(mapval("tiny_calls", 0) == 1000, "the int3 hook counted 1000 calls (%lld)",
          mapval("tiny_calls", 0));
    stop(&loader, SIGTERM);
    end_target();

    printf("== 5. tail calls\n");
    with_object("tail_work", NULL);
    CHECK(next_round("go\n"), "tail-call round");
    CHECK(mapval("tc_counts", 0) == 1000, "first ran 1000 times (%lld)", mapval("tc_counts", 0));
    CHECK(mapval("tc_counts", 2) == 1000, "second ran 1000 times by tail call (%lld)",
          mapval("tc_counts", 2));
    CHECK(mapval("tc_counts", 4) == 499500, "second saw the argument (%lld)",
          mapval("tc_counts", 4));
    stop(&loader, SIGTERM);
    end_target();
    if (g_fail)
        printf("the last target's output:\n%s\n", tgt.buf);

    graft_run(out, sizeof(out), "unload", "--all", NULL, NULL, NULL, NULL);
    shm_unlink(reg);   /* the registry itself: unload --all keeps it (run natively, it stayed) */
    printf("cli-qemu: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
