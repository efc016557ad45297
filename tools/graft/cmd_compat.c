/*
 * cmd_compat.c - graft compat [--] TOOL [ARGS...] (and `graft load --compat
 * TOOL ARGS`): run an unmodified libbpf-based tool with libgraft-compat.so
 * preloaded, so its bpf() and perf_event_open() calls are answered by graft.
 * Its programs run inside processes that carry a graft agent (`graft start`,
 * `graft attach`) and use the same registry.
 *
 * The tool runs as a child; Ctrl-C and SIGTERM are passed on to it. When it
 * exits, whatever it left in the registry (it was killed, or crashed) is
 * removed. Exit status: the tool's (128+signal if it was killed).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/compat.h"
#include "runtime/registry.h"
#include "verifier/verifier.h"

static volatile pid_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

int cmd_compat(int argc, char **argv)
{
    int first = 1;
    if (first < argc && strcmp(argv[first], "--compat") == 0)   /* graft load --compat TOOL */
        first++;
    /* --allow RIGHTS: what the tool's programs may do beyond observing */
    struct cli_policy_opts popts = {0};
    while (first < argc && strncmp(argv[first], "--allow", 7) == 0) {
        int used = cli_policy_opt("compat", argc, argv, &first, &popts);
        if (used <= 0)
            return used < 0 ? EXIT_USAGE : cli_fail(EXIT_USAGE, "compat", "unknown option %s", argv[first]);
        first++;
    }
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc)
        return cli_fail(EXIT_USAGE, "compat", "no tool given");
    char lib[PATH_MAX];
    if (cli_lib_path(lib, sizeof(lib), GCOMPAT_ENV_LIB, GCOMPAT_LIB_NAME) < 0)
        return cli_fail(1, "compat", "cannot find %s (%s): %s (set %s)", GCOMPAT_LIB_NAME, lib, strerror(errno),
                        GCOMPAT_ENV_LIB);
    const char *old = getenv("LD_PRELOAD");
    char *preload;
    if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "") < 0)
        return cli_fail(1, "compat", "out of memory");
    char allow[64] = "";
    for (uint32_t bit = 1; bit & GVER_RIGHTS_HOST_WRITES; bit <<= 1)
        if (popts.rights & bit)
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? "," : "",
                     gver_right_name(bit));
    cli_warn_rights("compat", popts.rights);
    char reg_name[GREG_NAME_MAX];
    greg_default_name(reg_name, sizeof(reg_name));

    struct sigaction sa = { .sa_handler = forward };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(preload);
        return cli_fail(1, "compat", "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setenv("LD_PRELOAD", preload, 1);
        if (allow[0])
            setenv(GCOMPAT_ENV_ALLOW, allow, 1);
        else
            unsetenv(GCOMPAT_ENV_ALLOW);   /* only this command grants rights */
        setenv("GRAFT_REGISTRY", reg_name, 1);
        execvp(argv[first], argv + first);
        /* The tool never ran: bad input (2), as for graft start. */
        fprintf(stderr, "graft compat: cannot run %s: %s\n", argv[first],
                errno == ENOENT && !strchr(argv[first], '/') ? "no such command in PATH" : strerror(errno));
        _exit(EXIT_USAGE);
    }
    free(preload);
    child_pid = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* A tool that exited normally cleaned up itself; this covers the rest. */
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open_named(reg_name, 0, &reg, &err) == 0) {
        greg_remove_owned_by(reg, pid);
        greg_close(reg);
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
