/*
 * load.h - from an opened BPF object to verified programs and live maps:
 * the steps `graft verify`, `graft prog run` and `graft load` share.
 */
#ifndef GRAFT_RUNTIME_LOAD_H
#define GRAFT_RUNTIME_LOAD_H

#include "loader/loader.h"
#include "maps/maps.h"
#include "verifier/verifier.h"

/* The policy for a program by its section: pt_regs for probes, the
 * sys_enter/sys_exit record for syscall tracepoints, raw tracepoint args.
 * malloc'd; NULL with err filled for sections graft cannot run. */
struct gver_policy *grt_policy_for(const struct gobj_prog *prog, struct graft_err *err);

/* Verify one program of obj under policy (NULL: grt_policy_for). res must be
 * freed with gver_result_free. Returns 0 when verification ran. */
int grt_verify(const struct gobj *obj, const struct gobj_prog *prog,
               const struct gver_policy *policy, int log_level,
               struct gver_result *res, struct graft_err *err);

/* Create every map of obj in shared memory (mode 0600, or 0660 for group
 * >= 0), with global data initialised and map-in-map slots filled; objects
 * named by gmap_create_named(prefix) (NULL: the default, registry maps use
 * greg_map_prefix). On success *maps is a malloc'd array of obj->n_maps
 * handles. */
int grt_create_maps(const struct gobj *obj, int group, const char *prefix,
                    struct gmap ***maps, struct graft_err *err);
/* Close every handle and, if unlink, remove the shared-memory objects. */
void grt_destroy_maps(struct gmap **maps, uint32_t n, int unlink);

/* The link kind a program's section asks for, and its target; 0 when the
 * section does not attach by itself (socket, xdp). */
struct grt_attach_spec {
    uint32_t kind;             /* enum greg_link_kind */
    char binary[256];
    char symbol[128];
    uint64_t offset;
    int32_t syscall_nr;        /* -1: all */
};
int grt_attach_spec(const struct gobj_prog *prog, struct grt_attach_spec *spec,
                    struct graft_err *err);

#endif
