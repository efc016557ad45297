/*
 * cmd_unload.c - graft unload: remove what `graft load --detach` (or a
 * loader that was killed) left in the registry. Agents unhook the removed
 * links on their next reconcile, as when a loader exits.
 *
 *   graft unload ID...        a program (with its links), a link or a map, by the
 *                             id `graft list` shows
 *   graft unload --loader PID everything that loader registered
 *   graft unload --all        everything, the trace buffer included, and any
 *                             object named under the registry that no record
 *                             names any more; a damaged registry (bad header,
 *                             a lock never freed) is removed with all of them
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/registry.h"

static int unload_id(struct greg *reg, const char *arg)
{
    char *end;
    errno = 0;
    unsigned long id = strtoul(arg, &end, 10);
    if (errno || *end || !*arg || id == 0 || id > UINT32_MAX)
        return cli_fail(EXIT_USAGE, "unload", "'%s' is not an id (see graft list)", arg);
    /* Ids are unique across programs, links and maps. */
    if (greg_remove_prog(reg, (uint32_t)id) == 0 || greg_remove_link(reg, (uint32_t)id) == 0 ||
        greg_remove_map(reg, (uint32_t)id) == 0) {
        printf("unloaded %lu\n", id);
        return 0;
    }
    return cli_fail(1, "unload", "no program, link or map with id %lu in registry %s", id,
                    greg_name(reg));
}

/* The registry cannot be used: remove it and every object named under it
 * (maps, program stores, agents' status), so a fresh one can be made. */
static int destroy_damaged(const char *why)
{
    char name[GREG_NAME_MAX];
    greg_default_name(name, sizeof(name));
    struct graft_err err = {0};
    int n = greg_destroy(name, &err);
    if (n < 0)
        return cli_fail_err(1, "unload", &err);
    printf("registry %s could not be used (%s): removed it and %d object(s) named under it from "
           "/dev/shm; agents still running keep their hooks until they exit\n",
           name, why, n > 0 ? n - 1 : 0);
    return 0;
}

int cmd_unload(int argc, char **argv)
{
    if (argc < 2)
        return cli_fail(EXIT_USAGE, "unload", "say what: ID..., --loader PID or --all");
    struct graft_err err = {0};
    struct greg *reg;
    int all = strcmp(argv[1], "--all") == 0 && argc == 2;
    int rc = greg_open(&reg, &err);
    if (rc == -EPROTO && all)
        return destroy_damaged("damaged, or from another graft version");
    if (rc < 0)
        return cli_fail_err(1, "unload", &err);
    if (all) {
        int n = greg_remove_all(reg);
        if (n == -ETIMEDOUT) {
            greg_close(reg);
            return destroy_damaged("its lock was never freed");
        }
        if (n < 0)
            rc = cli_fail(1, "unload", "registry %s: %s", greg_name(reg), strerror(-n));
        else
            printf("unloaded %d entries from registry %s\n", n, greg_name(reg));
    } else if (strcmp(argv[1], "--loader") == 0 && argc == 3) {
        long pid = cli_parse_pid(argv[2]);
        if (pid <= 0)
            rc = cli_fail(EXIT_USAGE, "unload", "'%s' is not a process id", argv[2]);
        else
            printf("unloaded %d entries of loader %ld\n", greg_remove_owned_by(reg, (pid_t)pid), pid);
    } else if (argv[1][0] == '-') {
        rc = cli_fail(EXIT_USAGE, "unload", "unknown option %s", argv[1]);
    } else {
        for (int i = 1; i < argc && rc == 0; i++)
            rc = unload_id(reg, argv[i]);
    }
    greg_close(reg);
    return rc;
}
