/*
 * load.c - object to verified programs and live maps; see load.h.
 */
#define _GNU_SOURCE
#include "runtime/load.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/registry.h"
#include "util/syscalls.h"

static int is_sys_exit(const struct gobj_prog *prog)
{
    return strstr(prog->target, "sys_exit") != NULL;
}

struct gver_policy *grt_policy_for(const struct gobj_prog *prog, struct graft_err *err)
{
    struct gver_policy *p = gver_policy_for_prog_type(prog->type);
    if (!p) {
        graft_errf(err, -EOPNOTSUPP, "program %s in section %s: graft cannot run %s programs",
                   prog->name, prog->section, gprog_type_name(prog->type));
        return NULL;
    }
    if (prog->type == GPROG_TRACEPOINT) {
        if (strncmp(prog->target, "syscalls/", 9) != 0) {
            free(p);
            graft_errf(err, -EOPNOTSUPP,
                       "program %s in section %s: only syscalls/sys_enter_* and sys_exit_* tracepoints exist in userspace",
                       prog->name, prog->section);
            return NULL;
        }
        p->ctx = is_sys_exit(prog) ? &gver_ctx_sys_exit : &gver_ctx_sys_enter;
    }
    return p;
}

int grt_verify(const struct gobj *obj, const struct gobj_prog *prog,
               const struct gver_policy *policy, int log_level, struct gver_result *res,
               struct graft_err *err)
{
    struct gver_policy *own = NULL;
    if (!policy && !(policy = own = grt_policy_for(prog, err)))
        return err ? err->code : -EINVAL;
    struct gmap_def *defs = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*defs));
    if (!defs) {
        free(own);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < obj->n_maps; i++)
        defs[i] = obj->maps[i].def;
    struct gver_input in = {
        .insns = prog->insns, .n = prog->n_insns,
        .maps = defs, .n_maps = obj->n_maps,
        .policy = policy, .log_level = log_level,
    };
    int rc = gver_verify(&in, res, err);
    free(defs);
    free(own);
    return rc;
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
    int n = gsyscall_nr(name);
    if (n < 0)
        return graft_errf(err, -ENOENT, "no x86-64 system call named '%s'", name);
    *nr = n;
    return 0;
}

/* usdt/BINARY:graft:NAME: the GRAFT_ENTRY() site NAME in BINARY (found by
 * the agent in the binary's .note.graft). Other USDT providers are kernel
 * USDT probes, which graft does not run. */
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
    if (strchr(spec->binary, '/')) {
        char real[PATH_MAX];
        if (!realpath(spec->binary, real))
            return graft_errf(err, -errno, "program %s: binary %s: %s", prog->name, spec->binary,
                              strerror(errno));
        if (strlen(real) >= sizeof(spec->binary))
            return graft_errf(err, -ENAMETOOLONG, "program %s: binary path %s is too long", prog->name, real);
        memcpy(spec->binary, real, strlen(real) + 1);
    }
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
        /* Relative paths are relative to the loader, not to the target. */
        if (strchr(spec->binary, '/')) {
            char real[PATH_MAX];
            if (!realpath(spec->binary, real))
                return graft_errf(err, -errno, "program %s: binary %s: %s", prog->name, spec->binary,
                                  strerror(errno));
            if (strlen(real) >= sizeof(spec->binary))
                return graft_errf(err, -ENAMETOOLONG, "program %s: binary path %s is too long", prog->name, real);
            memcpy(spec->binary, real, strlen(real) + 1);
        }
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
