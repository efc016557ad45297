/*
 * policy.c - what a program may do outside an EIM class: the one place
 * graft's own paths (graft load, verify, prog run, the compat layer's
 * BPF_PROG_LOAD) turn a program and a struct grt_grant into its verifier
 * policy; see load.h. Under an EIM class the class decides (grt_verify
 * hands the program to geim_verify).
 *
 * The default is observe-only: the verifier's base policies withhold every
 * helper that changes the host, and this file refuses, before the verifier
 * runs, what a program needs beyond them - a helper behind a right, an
 * override/ or replace/ section, a host function or global - with a message
 * that names the right and the two ways to grant it.
 */
#define _GNU_SOURCE
#include "runtime/load.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* How an EIM class grants a right, for messages. */
static const char *class_grant(uint32_t right)
{
    switch (right) {
    case GVER_RIGHT_WRITE_USER: return "an EIM class listing helper probe_write_user";
    case GVER_RIGHT_OVERRIDE: return "an EIM class with 'override: true'";
    case GVER_RIGHT_SIGNAL: return "an EIM class listing helper send_signal or send_signal_thread";
    default: return "an EIM class";
    }
}

static struct gver_policy *refuse(struct gver_policy *p, struct graft_err *err, uint32_t right,
                                  const struct grt_grant *g, const char *what)
{
    free(p);
    const char *name = gver_right_name(right);
    graft_errf(err, -EPERM,
               "%s: that needs the right '%s', which the default policy (observe-only) does not grant; "
               "grant it with %s%s`%s%s--allow=%s`",
               what, name, g->no_class ? "" : class_grant(right), g->no_class ? "" : " or ",
               g->cmd ? g->cmd : "", g->cmd ? " " : "", name);
    return NULL;
}

static int is_sys_exit(const struct gobj_prog *prog)
{
    return strstr(prog->target, "sys_exit") != NULL;
}

/* The first host function call or host global load, or -1. */
static int64_t first_extern_use(const struct gobj_prog *prog, int *is_func, int32_t *idx)
{
    for (uint32_t i = 0; i < prog->n_insns; i++) {
        const struct bpf_insn *in = &prog->insns[i];
        if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_KFUNC_CALL) {
            *is_func = 1;
            *idx = in->imm;
            return i;
        }
        if (bpf_is_ld_imm64(in)) {
            if (in->src_reg == BPF_PSEUDO_BTF_ID) {
                *is_func = 0;
                *idx = in->imm;
                return i;
            }
            i++;
        }
    }
    return -1;
}

struct gver_policy *grt_policy_for_at(const struct gobj *obj, const struct gobj_prog *prog,
                                      const struct grt_grant *g, int64_t *fail_insn,
                                      struct graft_err *err)
{
    static const struct grt_grant none;
    if (!g)
        g = &none;
    if (fail_insn)
        *fail_insn = -1;
    if (g->spec) {
        graft_errf(err, -EINVAL, "program %s: under an EIM class the class decides its policy (geim_verify)",
                   prog->name);
        return NULL;
    }
    if (prog->load_error[0]) {
        graft_errf(err, -EINVAL, "program %s: %s", prog->name, prog->load_error);
        return NULL;
    }
    if (prog->type == GPROG_KERNEL) {
        graft_errf(err, -EOPNOTSUPP,
                   "program %s in section %s is a kernel %s program: graft cannot attach it "
                   "(`graft verify` verifies it offline)", prog->name, prog->section,
                   gprog_ktype_name(prog->ktype));
        return NULL;
    }
    struct gver_policy *p = gver_policy_for_prog_type(prog->type);
    if (!p) {
        graft_errf(err, -EOPNOTSUPP, "program %s in section %s: graft cannot run %s programs",
                   prog->name, prog->section, gprog_type_name(prog->type));
        return NULL;
    }
    if (prog->type == GPROG_TRACEPOINT) {
        /* raw_syscalls/sys_enter and sys_exit: every syscall, with the
         * same record layout (id at 8, args or ret at 16) */
        if (strncmp(prog->target, "syscalls/", 9) != 0 &&
            strcmp(prog->target, "raw_syscalls/sys_enter") != 0 &&
            strcmp(prog->target, "raw_syscalls/sys_exit") != 0) {
            free(p);
            graft_errf(err, -EOPNOTSUPP,
                       "program %s in section %s: only syscalls/sys_enter_*, sys_exit_* and "
                       "raw_syscalls/sys_enter, sys_exit tracepoints exist in userspace",
                       prog->name, prog->section);
            return NULL;
        }
        p->ctx = is_sys_exit(prog) ? &gver_ctx_sys_exit : &gver_ctx_sys_enter;
    }
    char what[512];
    /* Host functions and globals: only a spec declares their prototypes,
     * so only an EIM class grants them (no flag does). */
    int is_func = 0;
    int32_t x = -1;
    int64_t at = first_extern_use(prog, &is_func, &x);
    if (at >= 0) {
        free(p);
        if (fail_insn)
            *fail_insn = at;
        const char *nm = obj && x >= 0 && (uint32_t)x < obj->n_externs ? obj->externs[x].name : NULL;
        graft_errf(err, -EPERM,
                   "program '%s' insn %" PRId64 " %s host %s '%s' (__ksym): host functions and globals need an EIM class "
                   "(--eim SPEC --class NAME) that grants them and declares their prototypes; no flag grants them",
                   prog->name, at, is_func ? "calls" : "uses", is_func ? "function" : "global", nm ? nm : "?");
        return NULL;
    }
    if ((prog->type == GPROG_OVERRIDE || prog->type == GPROG_REPLACE) && !(g->rights & GVER_RIGHT_OVERRIDE)) {
        snprintf(what, sizeof(what), "program '%s' (section '%s') %s", prog->name, prog->section,
                 prog->type == GPROG_OVERRIDE ? "may skip the function and set its return value"
                                              : "replaces the function");
        return refuse(p, err, GVER_RIGHT_OVERRIDE, g, what);
    }
    int64_t first[9];
    uint32_t missing = gver_rights_used(prog->insns, prog->n_insns, first) & GVER_RIGHTS_HOST_WRITES & ~g->rights;
    if (missing) {
        /* the earliest call that needs a right not granted */
        int k = -1;
        for (int b = 0; b < 9; b++)
            if ((missing & (1u << b)) && (k < 0 || first[b] < first[k]))
                k = b;
        const struct ghelper_proto *h = ghelper_proto((uint32_t)prog->insns[first[k]].imm);
        if (fail_insn)
            *fail_insn = first[k];
        snprintf(what, sizeof(what), "program '%s' insn %" PRId64 " calls bpf_%s", prog->name, first[k],
                 h ? h->name : "?");
        return refuse(p, err, 1u << k, g, what);
    }
    gver_policy_grant(p, g->rights);
    p->insn_budget = g->insn_budget;
    return p;
}

struct gver_policy *grt_policy_for(const struct gobj *obj, const struct gobj_prog *prog,
                                   const struct grt_grant *g, struct graft_err *err)
{
    return grt_policy_for_at(obj, prog, g, NULL, err);
}
