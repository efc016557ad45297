/*
 * load.c - object to verified programs and live maps; see load.h.
 */
#define _GNU_SOURCE
#include "runtime/load.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "eim/eim.h"
#include "runtime/registry.h"
#include "util/syscalls.h"

static int verify(const struct gobj *obj, const struct gobj_prog *prog, const struct grt_grant *g,
                  int log_level, int record_facts, struct gver_result *res, struct graft_err *err)
{
    static const struct grt_grant none;
    if (!g)
        g = &none;
    memset(res, 0, sizeof(*res));
    if (g->spec) {
        if (g->rights)
            return graft_errf(err, -EINVAL,
                              "--allow does not combine with an EIM class: class '%s' decides what its programs may do",
                              g->class_name ? g->class_name : "?");
        return geim_verify_facts(g->spec, g->class_name, obj, prog, g->insn_budget, log_level,
                                 record_facts, res, err);
    }
    int64_t at;
    struct graft_err perr = {0};
    struct gver_policy *policy = grt_policy_for_at(obj, prog, g, &at, &perr);
    if (!policy) {
        if (err)
            *err = perr;
        if (perr.code != -EPERM)
            return perr.code;
        /* a right not granted: a rejection, like the verifier's */
        res->fail_insn = at;
        graft_copy_str(res->reason, sizeof(res->reason), perr.msg);
        return 0;
    }
    struct gmap_def *defs = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*defs));
    int32_t *locks = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*locks));
    if (!defs || !locks) {
        free(defs);
        free(locks);
        free(policy);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        defs[i] = obj->maps[i].def;
        locks[i] = obj->maps[i].spin_lock_off;
    }
    /* .rodata is written once, when graft creates the map: constants */
    const void **frozen = gobj_frozen_values(obj);
    struct gver_input in = {
        .insns = prog->insns, .n = prog->n_insns,
        .maps = defs, .n_maps = obj->n_maps, .map_lock_offs = locks,
        .policy = policy, .log_level = log_level, .map_frozen = frozen,
        .record_facts = record_facts,
    };
    int rc = gver_verify(&in, res, err);
    gobj_frozen_free(frozen, obj->n_maps);
    free(defs);
    free(locks);
    free(policy);
    return rc;
}

int grt_verify(const struct gobj *obj, const struct gobj_prog *prog, const struct grt_grant *g,
               int log_level, struct gver_result *res, struct graft_err *err)
{
    return verify(obj, prog, g, log_level, 0, res, err);
}

/* Does prog call a host function (an EIM class's kfunc)? */
static int calls_host(const struct gobj_prog *prog)
{
    for (uint32_t i = 0; i < prog->n_insns; i++)
        if (prog->insns[i].code == (BPF_JMP | BPF_CALL) && prog->insns[i].src_reg == BPF_PSEUDO_KFUNC_CALL)
            return 1;
    return 0;
}

int grt_verify_facts(const struct gobj *obj, const struct gobj_prog *prog, const struct grt_grant *g,
                     struct gver_result *res, struct graft_err *err)
{
    int rc = verify(obj, prog, g, 0, 1, res, err);
    /* A host function's declared return range is the class's contract,
     * which the verifier trusts but nothing enforces at run time: facts
     * drawn from it could remove the program's own check of the value, its
     * one defence against a host that breaks the contract. */
    if (rc == 0 && res->facts && calls_host(prog)) {
        free(res->facts);
        res->facts = NULL;
        res->n_facts = 0;
    }
    return rc;
}

/* ---- the rights a program uses, for `graft verify` ---- */

struct rights_text {
    char *buf;
    size_t len, at;
};

static void add_right(struct rights_text *t, const char *what, const char *name, int granted)
{
    if (t->at >= t->len)
        return;
    int n = snprintf(t->buf + t->at, t->len - t->at, "%s%s%s%s%s", t->at ? ", " : "", what,
                     name ? " " : "", name ? name : "", granted ? "" : " (not granted)");
    if (n > 0)
        t->at += (size_t)n;
}

/* Does prog write host global x? Under the class that grants it writable:
 * verify once more with it read-only and see the verifier refuse a write. */
static int writes_global(const struct gobj *obj, const struct gobj_prog *prog,
                         const struct grt_grant *g, const char *name)
{
    struct geim_prepared pp;
    if (geim_prepare(g->spec, g->class_name, obj, prog, &pp, NULL) < 0)
        return 0;
    int writes = 0;
    for (uint32_t k = obj->n_maps; k < pp.n_maps; k++) {
        if (strcmp(pp.maps[k].name, name) != 0 || (pp.maps[k].map_flags & GMAP_F_RDONLY_PROG))
            continue;
        pp.maps[k].map_flags |= GMAP_F_RDONLY_PROG;
        struct gver_input in = { .insns = pp.insns, .n = pp.n_insns, .maps = pp.maps,
                                 .n_maps = pp.n_maps, .policy = pp.policy };
        struct gver_result res = {0};
        char want[160];
        snprintf(want, sizeof(want), "read-only map '%s'", name);
        if (gver_verify(&in, &res, NULL) == 0 && !res.accepted && strstr(res.reason, want))
            writes = 1;
        gver_result_free(&res);
    }
    geim_prepared_free(&pp);
    return writes;
}

/* What the grant lets the program do: helper rights as GVER_RIGHT_* bits. */
static uint32_t granted_rights(const struct grt_grant *g, const struct geim_class **cls)
{
    *cls = NULL;
    if (!g->spec)
        return g->rights | GVER_RIGHT_READ_HOST;
    const struct geim_class *c = geim_find_class(g->spec, g->class_name);
    *cls = c;
    if (!c)
        return 0;
    uint32_t r = 0;
    for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++)
        if (c->helpers_allowed[id / 64] & (1ull << (id % 64)))
            r |= gver_helper_right(id);
    if (c->override)
        r |= GVER_RIGHT_OVERRIDE;
    return r;
}

static int class_grants(const struct geim_spec *spec, const struct geim_class *c, int is_func,
                        const char *name, int *writable)
{
    *writable = 0;
    if (!c)
        return 0;
    if (is_func) {
        for (uint32_t k = 0; k < c->n_funcs; k++)
            if (!strcmp(spec->funcs[c->funcs[k]].name, name))
                return 1;
        return 0;
    }
    for (uint32_t k = 0; k < c->n_states; k++)
        if (!strcmp(spec->states[c->states[k]].name, name)) {
            *writable = c->state_write[k];
            return 1;
        }
    return 0;
}

void grt_rights_describe(const struct gobj *obj, const struct gobj_prog *prog,
                         const struct grt_grant *g, char *buf, size_t len)
{
    static const struct grt_grant none;
    if (!g)
        g = &none;
    struct rights_text t = { buf, len, 0 };
    if (len)
        buf[0] = '\0';
    const struct geim_class *c;
    uint32_t granted = granted_rights(g, &c);
    uint32_t used = gver_rights_used(prog->insns, prog->n_insns, NULL);
    if (prog->type == GPROG_OVERRIDE || prog->type == GPROG_REPLACE)
        used |= GVER_RIGHT_OVERRIDE;
    static const uint32_t order[] = { GVER_RIGHT_READ_HOST, GVER_RIGHT_WRITE_USER, GVER_RIGHT_OVERRIDE,
                                      GVER_RIGHT_SIGNAL };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (used & order[i])
            add_right(&t, gver_right_name(order[i]), NULL, (granted & order[i]) != 0);
    /* host functions and globals, each once, in the order the object
     * declares them */
    int changes = (used & GVER_RIGHTS_HOST_WRITES) != 0;
    for (uint32_t x = 0; obj && x < obj->n_externs; x++) {
        const struct gobj_extern *ex = &obj->externs[x];
        int uses = 0;
        for (uint32_t u = 0; u < ex->n_uses; u++)
            uses |= &obj->progs[ex->uses[u].prog] == prog;
        if (!uses || ex->kind == GOBJ_EXTERN_KCONFIG)
            continue;
        int is_func = ex->kind == GOBJ_EXTERN_KSYM_FUNC, writable;
        int ok = g->spec && class_grants(g->spec, c, is_func, ex->name, &writable);
        const char *what = is_func ? "host-call" : !ok ? "global" :
                           writable && writes_global(obj, prog, g, ex->name) ? "global-write" : "global-read";
        changes |= strcmp(what, "global-read") != 0;
        add_right(&t, what, ex->name, ok);
    }
    if (!changes && t.at < len) {
        /* nothing that changes the host: say so, with what it reads */
        char reads[512];
        snprintf(reads, sizeof(reads), "%s", buf);
        snprintf(buf, len, "observe-only%s%s%s", reads[0] ? " (" : "", reads, reads[0] ? ")" : "");
    }
}

void grt_destroy_maps(struct gmap **maps, uint32_t n, int unlink)
{
    if (!maps)
        return;
    for (uint32_t i = 0; i < n; i++) {
        if (!maps[i])
            continue;
        if (unlink)
            gmap_unlink(gmap_shm_name(maps[i]));
        gmap_close(maps[i]);
    }
    free(maps);
}

/* Global data sections start with their initial bytes; map-in-map
 * definitions with their initial inner maps. */
static int init_map(const struct gobj *obj, struct gmap **maps, uint32_t i, struct graft_err *err)
{
    const struct gobj_map *m = &obj->maps[i];
    if (m->init_data && m->init_size) {
        uint32_t key = 0;
        if (m->init_size > m->def.value_size)
            return graft_errf(err, -EINVAL, "map %s: initial data larger than its value", m->name);
        char *val = calloc(1, m->def.value_size);
        if (!val)
            return graft_errf(err, -ENOMEM, "out of memory");
        memcpy(val, m->init_data, m->init_size);
        int rc = gmap_update_copy(maps[i], &key, val, GMAP_ANY);
        free(val);
        if (rc < 0)
            return graft_errf(err, rc, "map %s: cannot store its initial data: %s", m->name, strerror(-rc));
    }
    return 0;
}

int grt_create_maps(const struct gobj *obj, int group, const char *prefix, struct gmap ***out,
                    struct graft_err *err)
{
    struct gmap **maps = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*maps));
    if (!maps)
        return graft_errf(err, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        int rc = gmap_create_named(&obj->maps[i].def, group, prefix, &maps[i], err);
        if (rc == 0)
            rc = init_map(obj, maps, i, err);
        if (rc < 0) {
            graft_err_prefix(err, "%s: map %s", obj->path, obj->maps[i].name);
            grt_destroy_maps(maps, obj->n_maps, 1);
            return rc;
        }
    }
    *out = maps;
    return 0;
}

static int syscall_target(const char *name, int32_t *nr, struct graft_err *err)
{
    int n = gsyscall_tracepoint_nr(name);
    if (n < 0)
        return graft_errf(err, -ENOENT, "no x86-64 system call named '%s'", name);
    *nr = n;
    return 0;
}

/* usdt/BINARY:graft:NAME: the GRAFT_ENTRY() site NAME in BINARY (found by
 * the agent in the binary's .note.graft). Other USDT providers are kernel
 * USDT probes, which graft does not run. */
/* A binary named by path is made absolute: relative paths are relative to
 * the loader, not to the target. A bare name stays (the target's mapping of
 * that name). */
static int absolute_binary(const struct gobj_prog *prog, struct grt_attach_spec *spec,
                           struct graft_err *err)
{
    if (!strchr(spec->binary, '/'))
        return 0;
    char real[PATH_MAX];
    if (!realpath(spec->binary, real))
        return graft_errf(err, -errno, "program %s: binary %s: %s", prog->name, spec->binary,
                          strerror(errno));
    if (strlen(real) >= sizeof(spec->binary))
        return graft_errf(err, -ENAMETOOLONG, "program %s: binary path %s is too long", prog->name, real);
    memcpy(spec->binary, real, strlen(real) + 1);
    return 0;
}

static int src_entry_target(const struct gobj_prog *prog, struct grt_attach_spec *spec,
                            struct graft_err *err)
{
    const char *t = prog->target;
    const char *name = strrchr(t, ':');
    const char *prov = NULL;
    for (const char *c = t; name && c < name; c++)
        if (*c == ':')
            prov = c;
    if (!name || !prov || prov == t || !name[1])
        return graft_errf(err, -EINVAL,
                          "program %s: section %s: expected usdt/BINARY:graft:ENTRY", prog->name,
                          prog->section);
    size_t plen = (size_t)(name - prov - 1), blen = (size_t)(prov - t);
    if (plen != 5 || strncmp(prov + 1, "graft", 5) != 0)
        return graft_errf(err, -EOPNOTSUPP,
                          "program %s: section %s: only source entries (provider 'graft', placed with GRAFT_ENTRY) can be attached, not USDT provider '%.*s'",
                          prog->name, prog->section, (int)plen, prov + 1);
    if (blen >= sizeof(spec->binary) || strlen(name + 1) >= sizeof(spec->symbol))
        return graft_errf(err, -ENAMETOOLONG, "program %s: section %s is too long", prog->name,
                          prog->section);
    memcpy(spec->binary, t, blen);
    spec->binary[blen] = '\0';
    snprintf(spec->symbol, sizeof(spec->symbol), "%s", name + 1);
    int rc = absolute_binary(prog, spec, err);
    if (rc < 0)
        return rc;
    spec->kind = GREG_LINK_SRC_ENTRY;
    return 0;
}

int grt_attach_spec(const struct gobj_prog *prog, struct grt_attach_spec *spec, struct graft_err *err)
{
    memset(spec, 0, sizeof(*spec));
    spec->syscall_nr = -1;
    char func[128];
    switch (prog->type) {
    case GPROG_UPROBE:
    case GPROG_URETPROBE:
    case GPROG_OVERRIDE:
    case GPROG_REPLACE: {
        if (!prog->target[0])
            return graft_errf(err, -EINVAL,
                              "program %s: section %s names no function; use uprobe/BINARY:FUNC or attach it explicitly",
                              prog->name, prog->section);
        int rc = gobj_parse_probe_target(prog->target, spec->binary, sizeof(spec->binary), func,
                                         sizeof(func), &spec->offset, err);
        if (rc < 0)
            return rc;
        snprintf(spec->symbol, sizeof(spec->symbol), "%s", func);
        if ((rc = absolute_binary(prog, spec, err)) < 0)
            return rc;
        spec->kind = prog->type == GPROG_UPROBE      ? GREG_LINK_UPROBE
                     : prog->type == GPROG_URETPROBE ? GREG_LINK_URETPROBE
                     : prog->type == GPROG_OVERRIDE  ? GREG_LINK_OVERRIDE
                                                     : GREG_LINK_REPLACE;
        return 0;
    }
    case GPROG_USDT:
        return src_entry_target(prog, spec, err);
    case GPROG_TRACEPOINT: {
        const char *t = prog->target;
        if (strncmp(t, "syscalls/sys_enter_", 19) == 0) {
            spec->kind = GREG_LINK_SYS_ENTER;
            return syscall_target(t + 19, &spec->syscall_nr, err);
        }
        if (strncmp(t, "syscalls/sys_exit_", 18) == 0) {
            spec->kind = GREG_LINK_SYS_EXIT;
            return syscall_target(t + 18, &spec->syscall_nr, err);
        }
        /* raw_syscalls: every syscall (syscall_nr stays -1) */
        if (strcmp(t, "raw_syscalls/sys_enter") == 0) {
            spec->kind = GREG_LINK_SYS_ENTER;
            return 0;
        }
        if (strcmp(t, "raw_syscalls/sys_exit") == 0) {
            spec->kind = GREG_LINK_SYS_EXIT;
            return 0;
        }
        return graft_errf(err, -EOPNOTSUPP, "program %s: tracepoint %s does not exist in userspace",
                          prog->name, t);
    }
    case GPROG_RAW_TRACEPOINT:
        if (strcmp(prog->target, "sys_enter") == 0)
            spec->kind = GREG_LINK_RAW_SYS_ENTER;
        else if (strcmp(prog->target, "sys_exit") == 0)
            spec->kind = GREG_LINK_RAW_SYS_EXIT;
        else
            return graft_errf(err, -EOPNOTSUPP,
                              "program %s: raw tracepoint %s does not exist in userspace (sys_enter, sys_exit do)",
                              prog->name, prog->target);
        return 0;
    default:
        return 0;
    }
}
