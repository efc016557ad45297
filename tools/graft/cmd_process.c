/*
 * cmd_process.c - commands that put the agent into processes or take it out:
 * graft start, graft attach, graft detach.
 *
 * The agent is libgraft-agent.so. `start` preloads it into a new process;
 * `attach` injects it into a running one with ptrace; `detach` asks an agent,
 * through the registry, to remove its hooks and go idle.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/inject.h"
#include "runtime/registry.h"
#include "util/settings.h"

/* The agent library: $GRAFT_AGENT, else ../lib next to this binary. */
static int agent_path(char *buf, size_t len)
{
    return cli_lib_path(buf, len, "GRAFT_AGENT", "libgraft-agent.so");
}

int cmd_start(int argc, char **argv)
{
    int first = 1;
    if (first < argc && strcmp(argv[first], "--require-isolation") == 0) {
        setenv("GRAFT_REQUIRE_ISOLATION", "1", 1);   /* read by the agent */
        first++;
    }
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc)
        return cli_fail(EXIT_USAGE, "start", "no command given");
    char agent[PATH_MAX];
    if (agent_path(agent, sizeof(agent)) < 0)
        return cli_fail(1, "start", "cannot find the agent library %s: %s (set GRAFT_AGENT)", agent,
                        strerror(errno));
    /* Keep whatever the user preloads already; the agent goes first so its
     * hooks are in place before other preloads run their constructors. */
    const char *old = getenv("LD_PRELOAD");
    char *preload;
    if (asprintf(&preload, "%s%s%s", agent, old && *old ? ":" : "", old ? old : "") < 0)
        return cli_fail(1, "start", "out of memory");
    setenv("LD_PRELOAD", preload, 1);
    free(preload);
    char reg[GREG_NAME_MAX];
    setenv("GRAFT_REGISTRY", greg_default_name(reg, sizeof(reg)), 1);
    execvp(argv[first], argv + first);
    /* Still here: the command never ran, so there is no exit status of its
     * to pass on. A command that does not exist or cannot be executed is
     * bad input (2), as the README's exit rule says, not the shell's 127. */
    int e = errno;
    if (e == ENOENT && !strchr(argv[first], '/'))
        return cli_fail(EXIT_USAGE, "start", "cannot run %s: no such command in PATH", argv[first]);
    return cli_fail(EXIT_USAGE, "start", "cannot run %s: %s", argv[first], strerror(e));
}

/* Wait until the agent in pid has registered, or timeout. */
static int wait_for_agent(pid_t pid, int timeout_ms)
{
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open(&reg, &err) < 0)
        return err.code;
    int rc = -ETIMEDOUT;
    /* The agent usually reports within a few ms of its dlopen: poll from
     * 100 us up, not in fixed 2 ms steps (which cost 1 ms on average). */
    long step_us = 100, waited_us = 0;
    for (int poll = 1; waited_us < timeout_ms * 1000L && rc == -ETIMEDOUT; waited_us += step_us, poll++) {
        struct greg_proc p;
        uint64_t gen = greg_generation(reg);
        /* Listing /dev/shm for an agent under another name is slow: now
         * and then. */
        if (greg_proc_find(reg, pid, &p, poll % 16 == 0) == 1 && p.state == GREG_PROC_RUNNING &&
            p.seen_generation >= gen)
            rc = 0;
        if (rc == -ETIMEDOUT) {
            if (kill(pid, 0) < 0 && errno == ESRCH)
                return -ESRCH;
            usleep((useconds_t)step_us);
            if (step_us < 2000)
                step_us *= 2;
        }
    }
    greg_close(reg);
    return rc;
}

int cmd_attach(int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(EXIT_USAGE, "attach", "expected exactly one PID");
    long pid = cli_parse_pid(argv[1]);
    if (pid < 0)
        return cli_fail(EXIT_USAGE, "attach", "'%s' is not a process id", argv[1]);
    char agent[PATH_MAX];
    if (agent_path(agent, sizeof(agent)) < 0)
        return cli_fail(1, "attach", "cannot find the agent library %s: %s (set GRAFT_AGENT)", agent,
                        strerror(errno));
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return cli_fail(1, "attach", "no such process %ld", pid);
    /* Opening creates the registry if needed, so the agent finds one owned by us. */
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open(&reg, &err) < 0)
        return cli_fail_err(1, "attach", &err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int state = greg_proc_state(reg, (pid_t)pid);
    int rc = 0;
    if (state == GREG_PROC_RUNNING) {
        greg_close(reg);
        printf("process %ld already runs a graft agent\n", pid);
        return 0;
    }
    char settings[64] = "";
    if (state == GREG_PROC_DETACHED || state == GREG_PROC_DETACHING) {
        rc = greg_request_attach(reg, (pid_t)pid);     /* wake the idle agent */
    } else {
        /* The agent takes our registry and isolation settings, not the
         * target's environment (util/settings.h); the file is read while
         * dlopen runs its constructor, so it can go once that returned. */
        gsettings_attach_path((pid_t)pid, settings, sizeof(settings));
        rc = gsettings_write_attach((pid_t)pid);
        if (rc < 0)
            graft_errf(&err, rc, "cannot write %s for the agent: %s", settings, strerror(-rc));
        else
            rc = ginject_load_library((pid_t)pid, agent, &err);
        unlink(settings);
    }
    greg_close(reg);
    if (rc < 0 && !err.msg[0])
        graft_errf(&err, rc, "process %ld: %s", pid, strerror(-rc));
    if (rc < 0)
        return cli_fail_err(1, "attach", &err);
    rc = wait_for_agent((pid_t)pid, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == -ESRCH)
        return cli_fail(1, "attach", "process %ld exited during attach", pid);
    if (rc < 0)
        return cli_fail(1, "attach", "the agent in process %ld did not report in: %s", pid, strerror(-rc));
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("attached to %ld in %.2f ms\n", pid, ms);
    return 0;
}

int cmd_detach(int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(EXIT_USAGE, "detach", "expected exactly one PID");
    long pid = cli_parse_pid(argv[1]);
    if (pid < 0)
        return cli_fail(EXIT_USAGE, "detach", "'%s' is not a process id", argv[1]);
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open(&reg, &err) < 0)
        return cli_fail_err(1, "detach", &err);
    int rc = greg_request_detach(reg, (pid_t)pid);
    if (rc == -ESRCH) {
        greg_close(reg);
        return cli_fail(1, "detach", "no graft agent runs in process %ld (see `graft list`)", pid);
    }
    if (rc < 0) {
        greg_close(reg);
        return cli_fail(1, "detach", "registry %s: %s", greg_name(reg), strerror(-rc));
    }
    /* Wait for the agent to confirm its hooks are gone. */
    int done = 0;
    for (int i = 0; i < 2500 && !done; i++) {
        struct greg_proc p;
        int found = greg_proc_find(reg, (pid_t)pid, &p, 1);
        if (found >= 0)
            done = !(found == 1 && p.state == GREG_PROC_DETACHING);
        if (!done) {
            if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
                done = 1;
            else
                usleep(2000);
        }
    }
    greg_close(reg);
    if (!done)
        return cli_fail(1, "detach", "process %ld did not confirm the detach within 5 s", pid);
    printf("detached from %ld\n", pid);
    return 0;
}
