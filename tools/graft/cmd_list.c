/*
 * cmd_list.c - graft list (what is loaded, attached and running) and
 * graft map dump NAME|ID (a map's contents as JSON).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "maps/maps.h"
#include "runtime/registry.h"

static const char *proc_state_name(uint32_t s)
{
    return s == GREG_PROC_RUNNING     ? "running"
           : s == GREG_PROC_DETACHING ? "detaching"
           : s == GREG_PROC_DETACHED  ? "detached"
           : s == GREG_PROC_GONE      ? "gone"
                                      : "unknown";
}

int cmd_list(int argc, char **argv)
{
    if (argc != 1)
        return cli_fail(EXIT_USAGE, "list", "takes no arguments");
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open(&reg, &err) < 0)
        return cli_fail_err(1, "list", &err);
    struct greg_snapshot s;
    int rc = greg_snapshot(reg, &s);
    if (rc < 0) {
        greg_close(reg);
        return cli_fail(1, "list", "registry %s: %s", greg_name(reg),
                        rc == -EAGAIN ? "a writer kept changing it for 2 s" : strerror(-rc));
    }
    printf("registry %s (generation %llu)\n", greg_name(reg), (unsigned long long)s.generation);
    if (s.n_damaged)
        printf("damaged records (left out): %u; `graft unload --all` clears the registry\n",
               s.n_damaged);
    printf("programs: %u\n", s.n_progs);
    for (uint32_t i = 0; i < s.n_progs; i++)
        printf("  %-4u %-24s %-40s %5u insns  loader pid %d%s\n", s.progs[i].id, s.progs[i].name,
               s.progs[i].section, s.progs[i].n_insns, s.progs[i].owner_pid,
               s.progs[i].n_facts ? "  verifier facts" : "");
    printf("maps: %u\n", s.n_maps);
    for (uint32_t i = 0; i < s.n_maps; i++)
        printf("  %-4u %-24s %-16s key %u value %u max %u\n", s.maps[i].id, s.maps[i].name,
               gmap_type_name(s.maps[i].def.type), s.maps[i].def.key_size, s.maps[i].def.value_size,
               s.maps[i].def.max_entries);
    printf("links: %u\n", s.n_links);
    for (uint32_t i = 0; i < s.n_links; i++) {
        const struct greg_link *l = &s.links[i];
        printf("  %-4u prog %-4u %-12s ", l->id, l->prog_id, greg_link_kind_name(l->kind));
        if (l->kind == GREG_LINK_PERF_SAMPLE)
            printf("every %llu ns of CPU time, cpu %d", (unsigned long long)l->offset, l->syscall_nr);
        else if (l->kind == GREG_LINK_PROC_EXIT || l->kind == GREG_LINK_SIGNAL_GENERATE)
            printf("tracepoint");
        else if (l->kind >= GREG_LINK_SYS_ENTER)
            printf("syscall %d", l->syscall_nr);
        else
            printf("%s:%s+%llu", l->binary[0] ? l->binary : "<main>", l->symbol,
                   (unsigned long long)l->offset);
        printf("  pid %s", l->pid ? "" : "any");
        if (l->pid)
            printf("%d", l->pid);
        printf("\n");
    }
    /* Each agent's own status object; only live processes are listed (one
     * that left through _exit() or a signal never said goodbye). */
    struct greg_proc *procs = NULL;
    uint32_t n_procs = 0, n_bad = 0;
    if (greg_procs(reg, &procs, &n_procs, &n_bad) < 0)
        printf("processes: unknown (cannot read /dev/shm)\n");
    else
        printf("processes: %u\n", n_procs);
    for (uint32_t i = 0; i < n_procs; i++) {
        const struct greg_proc *p = &procs[i];
        if (!p->state) {                /* its status object failed the checks */
            printf("  %-7d %-16s %-9s %s\n", p->pid, "?", "unknown", p->message);
            continue;
        }
        printf("  %-7d %-16s %-9s hooks %u installed, %u failed; jit facts: %u insns rewritten in %u programs%s%s\n",
               p->pid, p->comm, proc_state_name(p->state), p->links_installed, p->links_failed,
               p->facts_rewritten, p->facts_progs, p->message[0] ? "  " : "", p->message);
    }
    free(procs);
    greg_snapshot_free(&s);
    greg_close(reg);
    return 0;
}

int cmd_map(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "dump") != 0)
        return cli_fail(EXIT_USAGE, "map", "expected `graft map dump NAME|ID`");
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open(&reg, &err) < 0)
        return cli_fail_err(1, "map", &err);
    struct greg_snapshot s;
    int src = greg_snapshot(reg, &s);
    if (src < 0) {
        greg_close(reg);
        return cli_fail(1, "map", "registry %s: %s", greg_name(reg),
                        src == -EAGAIN ? "a writer kept changing it for 2 s" : strerror(-src));
    }
    const struct greg_map *m = greg_snapshot_map_by_name(&s, argv[2]);
    char *end;
    unsigned long id = strtoul(argv[2], &end, 10);
    if (!m && *end == '\0')
        m = greg_snapshot_map(&s, (uint32_t)id);
    int rc = 0;
    if (!m) {
        rc = cli_fail(1, "map", "no map named or numbered '%s' (see `graft list`)", argv[2]);
    } else {
        struct gmap *map;
        if (gmap_open(m->shm, &map, &err) < 0) {
            rc = cli_fail_err(1, "map", &err);
        } else {
            rc = gmap_dump_json(map, stdout) < 0 ? 1 : 0;
            gmap_close(map);
        }
    }
    greg_snapshot_free(&s);
    greg_close(reg);
    return rc;
}
