/*
 * cmd_load.c - graft load (verify an object, register its maps, programs and
 * links, then stay to print trace output until interrupted) and graft trace
 * (print trace output of whatever is loaded).
 *
 *   graft load OBJ [--pid PID] [--group GID] [--detach]
 *              [--eim SPEC --class NAME | --allow RIGHTS] [--insn-budget N]
 *
 * Every program is verified before anything is registered: one rejection
 * and nothing is loaded. Programs are observe-only unless an EIM class
 * (--eim/--class) or --allow (write-user, override, signal, all; said
 * loudly on stderr) grants them rights that change the host. Host
 * functions and globals (__ksym externs) are only accepted under an EIM
 * class, which decides which of them the programs may use; they are
 * registered by name with each program and bound to the target's
 * addresses by its agent. "loaded" is printed once the running agents the
 * links are for have installed them. On exit (Ctrl-C, SIGTERM) everything this loader
 * registered is removed again, and agents unhook it; with --detach the
 * loader leaves it registered and exits at once.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eim/eim.h"
#include "isolation/isolation.h"
#include "loader/loader.h"
#include "runtime/load.h"
#include "runtime/registry.h"
#include "runtime/trace.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void print_record(const void *data, size_t len, void *arg)
{
    (void)arg;
    fwrite(data, 1, len, stdout);
    if (len && ((const char *)data)[len - 1] != '\n')
        fputc('\n', stdout);
}

/* Print trace records until a signal; returns when stop is set. */
static void follow_trace(struct greg *reg, struct gmap *rb)
{
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    while (!stop) {
        if (grt_ringbuf_consume(rb, print_record, NULL) > 0)
            fflush(stdout);
        else
            usleep(20 * 1000);
    }
    grt_ringbuf_consume(rb, print_record, NULL);
    fflush(stdout);
    (void)reg;
}

/* Agents apply a load asynchronously: each reconciles when the registry's
 * generation moves, and installing hooks (rewriting a large binary's
 * syscall sites, say) takes a while on a busy machine. "loaded" promises
 * that the programs run from now on, so wait until every running agent the
 * links are for reports this generation applied. A process without an
 * agent gets the links when one starts; an agent that does not answer in
 * time (a stopped process) is counted and reported; the load stands. */
#define APPLY_WAIT_MS 10000

static void wait_applied(struct greg *reg, pid_t pid, uint64_t gen)
{
    struct greg_proc one;
    if (pid && greg_proc_find(reg, pid, &one, 1) == 0) {
        if (kill(pid, 0) == 0)
            printf("graft load: pid %d has no graft agent yet: the links apply when one "
                   "starts (`graft attach %d`)\n", (int)pid, (int)pid);
        return;
    }
    int pending = greg_wait_applied(reg, pid, gen, APPLY_WAIT_MS);
    if (pending > 0)
        fprintf(stderr, "graft load: %d agent(s) have not applied the load after %d s (a stopped "
                        "process?); they will when they run\n", pending, APPLY_WAIT_MS / 1000);
    struct greg_proc *procs = NULL;
    uint32_t n = 0, n_bad = 0;
    if (greg_procs(reg, &procs, &n, &n_bad) < 0)
        return;
    for (uint32_t i = 0; i < n; i++)
        if ((pid == 0 || procs[i].pid == pid) && procs[i].state == GREG_PROC_RUNNING &&
            procs[i].seen_generation >= gen && procs[i].links_failed)
            fprintf(stderr, "graft load: pid %d: %u hook(s) installed, %u failed: %s\n", (int)procs[i].pid,
                    procs[i].links_installed, procs[i].links_failed, procs[i].message);
    free(procs);
}

/* Is program index prog in the declared contents of a prog array? Such a
 * program may have no attach target of its own: it runs by tail call. */
static int tail_call_target(const struct gobj *obj, uint32_t prog)
{
    for (uint32_t i = 0; i < obj->n_maps; i++)
        for (uint32_t s = 0; obj->maps[i].init_progs && s < obj->maps[i].n_init_slots; s++)
            if (obj->maps[i].init_slots[s] == (int32_t)prog)
                return 1;
    return 0;
}

/* A program in a '?' section (libbpf's no-autoload) is loaded only on
 * request, so graft load leaves it out: not verified, registered or
 * attached - unless a declared prog array slot names it, which is such a
 * request. */
static int skipped(const struct gobj *obj, uint32_t prog)
{
    return obj->progs[prog].no_autoload && !tail_call_target(obj, prog);
}

/* Verify every program; tags[i] gets the policy tag program i was
 * accepted under, facts[i] the verifier's facts for its instructions (the
 * agent's JIT uses them; kept NULL when the verifier gave none). */
static int verify_all(struct gobj *obj, const struct grt_grant *g, uint64_t *tags,
                      struct gvm_insn_fact **facts)
{
    struct graft_err err = {0};
    for (uint32_t i = 0; i < obj->n_progs; i++) {
        if (skipped(obj, i)) {
            printf("%s: program %s (%s) not loaded: a '?' section is loaded only on request\n",
                   obj->path, obj->progs[i].name, obj->progs[i].section);
            continue;
        }
        struct gver_result res = {0};
        graft_err_clear(&err);
        int rc = grt_verify_facts(obj, &obj->progs[i], g, &res, &err);
        if (rc < 0) {
            gver_result_free(&res);
            graft_err_prefix(&err, "nothing was loaded");
            return cli_fail_err(g->spec ? 1 : EXIT_USAGE, "load", &err);
        }
        if (!res.accepted) {
            if (res.log)
                fputs(res.log, stderr);
            /* err names the class or the right behind the rule, when any */
            char at[32] = "";
            if (res.fail_insn >= 0)
                snprintf(at, sizeof(at), " at insn %lld", (long long)res.fail_insn);
            cli_fail(1, "load", "%s: program %s (%s) rejected%s: %s; nothing was loaded", obj->path,
                     obj->progs[i].name, obj->progs[i].section, at,
                     (g->spec || err.code == -EPERM) && err.msg[0] ? err.msg : res.reason);
            gver_result_free(&res);
            return 1;
        }
        tags[i] = res.policy_tag;
        if (res.facts && res.n_facts == obj->progs[i].n_insns) {
            facts[i] = res.facts;           /* ours now */
            res.facts = NULL;
            res.n_facts = 0;
        }
        gver_result_free(&res);
    }
    return 0;
}

/* Does program p refer to map m (LD_IMM64 of the map)? */
static int uses_map(const struct gobj_prog *p, uint32_t m)
{
    for (uint32_t k = 0; k + 1 < p->n_insns; k++) {
        const struct bpf_insn *in = &p->insns[k];
        if (in->code == (BPF_LD | BPF_IMM | BPF_DW) &&
            (in->src_reg == BPF_PSEUDO_MAP_IDX || in->src_reg == BPF_PSEUDO_MAP_FD) &&
            in->imm == (int32_t)m)
            return 1;
        if (in->code == (BPF_LD | BPF_IMM | BPF_DW))
            k++;
    }
    return 0;
}

/* A prog array is bound, as in the kernel, to one kind of program: every
 * program that tail-calls through it and every program its declared slots
 * name must have been verified under the same policy (same context layout,
 * same grants), or a tail call would run a program on a context, or with
 * rights, it was not verified for. (Agents refuse such tail calls anyway;
 * this says so before anything is loaded.) */
static int check_prog_arrays(const struct gobj *obj, const uint64_t *tags)
{
    for (uint32_t m = 0; m < obj->n_maps; m++) {
        if (obj->maps[m].def.type != GMAP_PROG_ARRAY)
            continue;
        int first = -1;
        for (uint32_t i = 0; i < obj->n_progs; i++) {
            int member = uses_map(&obj->progs[i], m);
            for (uint32_t s = 0; !member && obj->maps[m].init_progs && s < obj->maps[m].n_init_slots; s++)
                member = obj->maps[m].init_slots[s] == (int32_t)i;
            if (!member || skipped(obj, i))
                continue;
            if (first < 0) {
                first = (int)i;
            } else if (tags[i] != tags[first]) {
                const struct gobj_prog *a = &obj->progs[first], *b = &obj->progs[i];
                return cli_fail(1, "load",
                                "%s: prog array %s joins programs verified for different contexts or "
                                "policies: %s (%s, %s) and %s (%s, %s); a tail call would run one on the "
                                "other's context; nothing was loaded",
                                obj->path, obj->maps[m].name, a->name, a->section, gprog_type_name(a->type),
                                b->name, b->section, gprog_type_name(b->type));
            }
        }
    }
    return 0;
}

/* The object's host functions and globals in extern-index order, so that
 * CALL KFUNC / LD_IMM64 BTF_ID imm i names tmpl->externs[i]; the agent binds
 * them to the target's addresses. */
static int fill_externs(const struct gobj *obj, const uint32_t *mem_args, struct greg_prog *tmpl)
{
    /* weak ones made absent (no class) are used by nothing: none to bind */
    uint32_t used = 0;
    for (uint32_t i = 0; i < obj->n_externs; i++)
        used += obj->externs[i].n_uses > 0;
    if (!used) {
        tmpl->n_externs = 0;
        return 0;
    }
    if (obj->n_externs > GREG_PROG_EXTERNS)
        return cli_fail(1, "load", "%s names %u host functions/globals; at most %d are supported",
                        obj->path, obj->n_externs, GREG_PROG_EXTERNS);
    for (uint32_t i = 0; i < obj->n_externs; i++) {
        const struct gobj_extern *x = &obj->externs[i];
        if (x->kind == GOBJ_EXTERN_KCONFIG)
            return cli_fail(1, "load", "%s: __kconfig extern '%s' has no value in userspace", obj->path,
                            x->name);
        if (strlen(x->name) >= sizeof(tmpl->externs[i].name))
            return cli_fail(1, "load", "%s: host symbol name '%s' is longer than %d bytes", obj->path,
                            x->name, GREG_EXTERN_NAME - 1);
        snprintf(tmpl->externs[i].name, sizeof(tmpl->externs[i].name), "%s", x->name);
        tmpl->externs[i].kind = x->kind == GOBJ_EXTERN_KSYM_FUNC ? GREG_EXTERN_FUNC : GREG_EXTERN_VAR;
        tmpl->externs[i].mem_args = x->kind == GOBJ_EXTERN_KSYM_FUNC ? mem_args[i] : 0;
    }
    tmpl->n_externs = obj->n_externs;
    return 0;
}


/* While the slots are written, map ids resolve to this loader's own maps,
 * so the maps component can check each inner map against its outer map's
 * template (it refuses ids it cannot resolve). */
static struct {
    struct gmap **maps;
    const uint32_t *ids;
    uint32_t n;
} own_maps;

static struct gmap *own_map_by_id(uint32_t id)
{
    for (uint32_t i = 0; i < own_maps.n; i++)
        if (own_maps.ids[i] == id)
            return own_maps.maps[i];
    return NULL;
}

/* Declared contents (__array(values, ...)): a map-in-map's slots get the
 * registry ids of its inner maps, a prog array's the ids of its programs
 * (the agents resolve both ids in their own process). */
static int write_slots(const struct gobj *obj, struct gmap **maps, const uint32_t *map_ids,
                       const uint32_t *prog_ids)
{
    own_maps.maps = maps, own_maps.ids = map_ids, own_maps.n = obj->n_maps;
    gmap_set_resolver(own_map_by_id);
    int rc = 0;
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        const struct gobj_map *m = &obj->maps[i];
        for (uint32_t slot = 0; slot < m->n_init_slots && rc == 0; slot++) {
            int32_t idx = m->init_slots[slot];
            if (idx < 0)
                continue;
            uint32_t id = m->init_progs ? prog_ids[idx] : map_ids[idx];
            int r = gmap_update_copy(maps[i], &slot, &id, GMAP_ANY);
            if (r < 0)
                rc = cli_fail(1, "load", "map %s: cannot store slot %u (%s %s): %s%s; nothing was loaded",
                              m->name, slot, m->init_progs ? "program" : "map",
                              m->init_progs ? obj->progs[idx].name : obj->maps[idx].name, strerror(-r),
                              r == -EINVAL && !m->init_progs ? " (not the declared inner map)" : "");
        }
    }
    gmap_set_resolver(NULL);
    return rc;
}

static int register_all(struct greg *reg, struct gobj *obj, const uint32_t *mem_args,
                        struct gmap **maps, pid_t pid, const uint64_t *tags,
                        struct gvm_insn_fact *const *facts, int *n_links)
{
    struct graft_err err = {0};
    struct greg_prog tmpl = {0};
    if (obj->n_maps > GREG_PROG_MAPS)
        return cli_fail(1, "load", "%s defines %u maps; at most %d are supported", obj->path,
                        obj->n_maps, GREG_PROG_MAPS);
    if (fill_externs(obj, mem_args, &tmpl))
        return 1;
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        int id = greg_add_map(reg, obj->maps[i].name, gmap_shm_name(maps[i]), &obj->maps[i].def, &err);
        if (id < 0)
            return cli_fail_err(1, "load", &err);
        tmpl.map_ids[i] = (uint32_t)id;
    }
    tmpl.n_maps = obj->n_maps;
    uint32_t n = obj->n_progs ? obj->n_progs : 1;
    uint32_t *prog_ids = calloc(n, sizeof(*prog_ids));
    struct grt_attach_spec *specs = calloc(n, sizeof(*specs));
    int rc = prog_ids && specs ? 0 : cli_fail(1, "load", "out of memory");
    /* Programs first, then the maps' declared slots (which name programs by
     * id), then the links: an agent that sees a link finds its prog array
     * filled. */
    for (uint32_t i = 0; i < obj->n_progs && rc == 0; i++) {
        const struct gobj_prog *p = &obj->progs[i];
        if (skipped(obj, i))
            continue;
        if (!(!p->target[0] && tail_call_target(obj, i)) &&    /* else: runs by tail call */
            grt_attach_spec(p, &specs[i], &err) < 0) {
            rc = cli_fail_err(1, "load", &err);
            break;
        }
        snprintf(tmpl.name, sizeof(tmpl.name), "%s", p->name);
        snprintf(tmpl.section, sizeof(tmpl.section), "%s", p->section);
        tmpl.type = p->type;
        tmpl.n_insns = p->n_insns;
        tmpl.policy_tag = tags[i];
        /* The original instructions: under an EIM class the verifier saw a
         * copy in which host globals were maps (geim_prepare); the agent
         * resolves the original BTF_ID loads to the globals themselves.
         * The facts are the verifier's for these very instructions (the
         * copy differs only in those LD_IMM64, about which no fact speaks,
         * and gobj_prog_drop_unreached_calls only turned calls no path
         * reaches into no-ops: docs/jit.md). */
        tmpl.n_facts = facts[i] ? p->n_insns : 0;
        int prog_id = greg_add_prog_facts(reg, &tmpl, p->insns, facts[i], &err);
        if (prog_id < 0)
            rc = cli_fail_err(1, "load", &err);
        prog_ids[i] = (uint32_t)prog_id;
    }
    if (rc == 0)
        rc = write_slots(obj, maps, tmpl.map_ids, prog_ids);
    for (uint32_t i = 0; i < obj->n_progs && rc == 0; i++) {
        if (!specs[i].kind)
            continue;
        struct greg_link link = {
            .prog_id = prog_ids[i], .kind = specs[i].kind, .pid = pid,
            .offset = specs[i].offset, .syscall_nr = specs[i].syscall_nr,
        };
        snprintf(link.binary, sizeof(link.binary), "%s", specs[i].binary);
        snprintf(link.symbol, sizeof(link.symbol), "%s", specs[i].symbol);
        if (greg_add_link(reg, &link, &err) < 0)
            rc = cli_fail_err(1, "load", &err);
        else
            (*n_links)++;
    }
    free(prog_ids);
    free(specs);
    return rc;
}

int cmd_compat(int argc, char **argv);

int cmd_load(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--compat") == 0)
        return cmd_compat(argc, argv);
    const char *path = NULL;
    struct cli_policy_opts popts = {0};
    long pid = 0, group = -1;
    int detach = 0;
    for (int i = 1; i < argc; i++) {
        int used = cli_policy_opt("load", argc, argv, &i, &popts);
        if (used < 0)
            return EXIT_USAGE;
        if (used)
            continue;
        if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc) {
            if ((pid = cli_parse_pid(argv[++i])) < 0)
                return cli_fail(EXIT_USAGE, "load", "'%s' is not a process id", argv[i]);
            if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
                return cli_fail(1, "load", "no process %ld", pid);
        } else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            char *end;
            group = strtol(argv[++i], &end, 10);
            if (*end || group < 0)
                return cli_fail(EXIT_USAGE, "load", "--group takes a numeric group id");
        } else if (strcmp(argv[i], "--detach") == 0) {
            detach = 1;
        } else if (argv[i][0] == '-') {
            return cli_fail(EXIT_USAGE, "load", "unknown option %s", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_fail(EXIT_USAGE, "load", "more than one object given");
        }
    }
    if (!path)
        return cli_fail(EXIT_USAGE, "load", "no object given");

    struct graft_err err = {0};
    struct geim_spec *spec = NULL;
    struct grt_grant grant;
    int rc = cli_policy_grant("load", &popts, &spec, &grant);
    if (rc)
        return rc;
    struct gobj *obj;
    if (gobj_open_file(path, NULL, &obj, &err) < 0) {
        geim_free(spec);
        return cli_fail_err(EXIT_USAGE, "load", &err);
    }
    /* What each program may do is decided in one place (grt_verify):
     * observe-only unless the class or --allow grants more; host
     * functions and globals (__ksym) only under a class. */
    /* Without a class no host symbol is granted: weak ones are absent
     * (bpf_ksym_exists false), their guarded code dead. */
    if (!spec)
        gobj_absent_weak_externs(obj);
    uint64_t *tags = calloc(obj->n_progs ? obj->n_progs : 1, sizeof(*tags));
    struct gvm_insn_fact **facts = calloc(obj->n_progs ? obj->n_progs : 1, sizeof(*facts));
    if (!tags || !facts)
        rc = cli_fail(1, "load", "out of memory");
    if (rc == 0)
        rc = verify_all(obj, &grant, tags, facts);
    /* accepted: their calls of absent functions are unreachable */
    for (uint32_t i = 0; rc == 0 && !spec && i < obj->n_progs; i++)
        gobj_prog_drop_unreached_calls(&obj->progs[i]);
    if (rc == 0)
        rc = check_prog_arrays(obj, tags);
    /* Which arguments of each host function point to memory the agent's
     * host-call thunk copies for the host (isolation). */
    uint32_t mem_args[GREG_PROG_EXTERNS] = {0};
    for (uint32_t i = 0; i < obj->n_externs && i < GREG_PROG_EXTERNS; i++)
        if (obj->externs[i].kind == GOBJ_EXTERN_KSYM_FUNC)
            mem_args[i] = geim_func_mem_args(spec, obj->externs[i].name);
    geim_free(spec);
    struct gmap **maps = NULL;
    struct greg *reg = NULL;
    struct gmap *trace = NULL;
    int n_links = 0;
    char prefix[GREG_NAME_MAX];
    /* The registry first: one that is refused (or damaged) must meet us
     * before any map object exists, so nothing is left behind in /dev/shm. */
    if (rc == 0 && greg_open(&reg, &err) < 0)
        rc = cli_fail_err(1, "load", &err);
    if (rc == 0 && grt_trace_open(reg, 1, &trace, &err) < 0)
        rc = cli_fail_err(1, "load", &err);
    /* Named under the registry: `graft unload --all` finds them even if
     * the records naming them are lost. */
    if (rc == 0 && grt_create_maps(obj, (int)group, greg_map_prefix(reg, prefix, sizeof(prefix)),
                                   &maps, &err) < 0)
        rc = cli_fail_err(1, "load", &err);
    if (rc == 0)
        rc = register_all(reg, obj, mem_args, maps, (pid_t)pid, tags, facts, &n_links);
    if (rc == 0 && n_links > 0)
        wait_applied(reg, (pid_t)pid, greg_generation(reg));
    if (rc == 0) {
        uint32_t n_loaded = 0;
        for (uint32_t i = 0; i < obj->n_progs; i++)
            n_loaded += !skipped(obj, i);
        printf("loaded %s: %u program(s), %u map(s), %d link(s) in registry %s\n", path, n_loaded,
               obj->n_maps, n_links, greg_name(reg));
        /* Said at load, where the operator looks: whether the agents can
         * isolate these extensions (each agent also reports its own). */
        struct giso_cpu cpu;
        giso_cpu_features(&cpu);
        if (!cpu.pku || !cpu.ospke)
            fprintf(stderr, "graft load: isolation: off (%s): extensions will run without memory "
                            "protection keys; `graft start --require-isolation` refuses instead\n",
                    !cpu.pku ? "CPU has no PKU" : "the kernel did not enable PKU");
        fflush(stdout);
        if (!detach)
            follow_trace(reg, trace);
    }
    if (reg && (rc != 0 || !detach))
        greg_remove_owned_by(reg, getpid());
    if (trace)
        gmap_close(trace);
    /* Maps were registered under our pid: the registry unlinked them above
     * unless we detach; either way our handles go. */
    grt_destroy_maps(maps, obj->n_maps, rc != 0);
    greg_close(reg);
    for (uint32_t i = 0; facts && i < obj->n_progs; i++)
        free(facts[i]);
    free(facts);
    gobj_free(obj);
    free(tags);
    return rc;
}

int cmd_trace(int argc, char **argv)
{
    if (argc != 1)
        return cli_fail(EXIT_USAGE, "trace", "takes no arguments");
    struct graft_err err = {0};
    struct greg *reg;
    struct gmap *trace;
    if (greg_open(&reg, &err) < 0)
        return cli_fail_err(1, "trace", &err);
    if (grt_trace_open(reg, 1, &trace, &err) < 0) {
        greg_close(reg);
        return cli_fail_err(1, "trace", &err);
    }
    follow_trace(reg, trace);
    gmap_close(trace);
    greg_close(reg);
    return 0;
}
