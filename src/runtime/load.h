/*
 * load.h - from an opened BPF object to verified programs and live maps:
 * the steps `graft verify`, `graft prog run` and `graft load` share, and
 * the one place that decides what a program may do (struct grt_grant,
 * grt_policy_for; runtime/policy.c).
 */
#ifndef GRAFT_RUNTIME_LOAD_H
#define GRAFT_RUNTIME_LOAD_H

#include "loader/loader.h"
#include "maps/maps.h"
#include "verifier/verifier.h"

struct geim_spec;

/* What a program may do, and who granted it. This struct is the one input
 * to every policy graft builds for a program (graft load, verify, prog run,
 * the compat layer's BPF_PROG_LOAD): the zero value is observe-only (see
 * "Rights" in verifier/verifier.h) with the verifier's default budget, so a
 * caller that sets nothing gets the safe policy. */
struct grt_grant {
    uint32_t rights;               /* GVER_RIGHT_*: the operator's explicit flag */
    uint64_t insn_budget;          /* > 0: instructions per run at most (with
                                    * a class: the tighter of this and its own) */
    const struct geim_spec *spec;  /* with class_name: an EIM class grants */
    const char *class_name;        /* instead, and rights must be 0 */
    const char *cmd;               /* for messages: "graft load" tells the
                                    * operator "graft load --allow=override";
                                    * NULL: "--allow=override" */
    int no_class;                  /* the caller cannot take an EIM class
                                    * (compat): messages offer only --allow */
};

/* The policy for a program outside any EIM class: its section's context
 * (pt_regs for probes, the sys_enter/sys_exit record for syscall
 * tracepoints, raw tracepoint args), observe-only helpers plus g->rights,
 * g->insn_budget. malloc'd. NULL with err filled when graft cannot run the
 * section (-EOPNOTSUPP) or when the program needs what g does not grant
 * (-EPERM, err naming the program, the instruction or section, the right
 * and how to grant it: an EIM class or the cmd's --allow flag). obj (may
 * be NULL) names host functions and globals in messages. g NULL: the zero
 * grant. */
struct gver_policy *grt_policy_for(const struct gobj *obj, const struct gobj_prog *prog,
                                   const struct grt_grant *g, struct graft_err *err);
/* The same, with the instruction the refusal is about (-1: the section). */
struct gver_policy *grt_policy_for_at(const struct gobj *obj, const struct gobj_prog *prog,
                                      const struct grt_grant *g, int64_t *fail_insn,
                                      struct graft_err *err);

/* Verify one program of obj under g: the EIM class's policy when g->spec
 * is set (geim_verify: the class decides, g->insn_budget may only
 * tighten), else grt_policy_for. A right the program needs and g does not
 * grant is a rejection like the verifier's: 0 with res->accepted == 0,
 * res->reason and err saying which right and how to grant it. res must be
 * freed with gver_result_free. Returns 0 when verification ran, negative
 * errno otherwise (err filled). */
int grt_verify(const struct gobj *obj, const struct gobj_prog *prog, const struct grt_grant *g,
               int log_level, struct gver_result *res, struct graft_err *err);
/* The same (no log), with the verifier's facts for prog->insns in
 * res->facts when accepted: what `graft load` stores with the program for
 * the agent's JIT (docs/jit.md, "Verifier facts in the JIT"). None for a
 * program that calls host functions (their return ranges are trusted, not
 * enforced). */
int grt_verify_facts(const struct gobj *obj, const struct gobj_prog *prog, const struct grt_grant *g,
                     struct gver_result *res, struct graft_err *err);

/* The rights prog uses, for `graft verify`: "observe-only" or e.g.
 * "read-host, write-user, override, host-call app_log, global-write g_x",
 * each one g does not grant followed by " (not granted)". Host globals are
 * told "global-write" only when the program writes them (proven by
 * verifying it once with the global read-only). */
void grt_rights_describe(const struct gobj *obj, const struct gobj_prog *prog,
                         const struct grt_grant *g, char *buf, size_t len);

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
