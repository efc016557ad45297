/*
 * policy.c - turn a class's grant into what the verifier enforces.
 *
 *  - ctx: the entry's arguments only. Function entries get struct pt_regs
 *    with just the argument registers open (di, si, dx, cx, r8, r9 in
 *    order; ax too for uretprobes); syscall entries the sys_enter record
 *    (id and args[]) or sys_exit (id, ret); source entries (GRAFT_ENTRY) an
 *    array of u64 argument values, one per declared argument. Rights come
 *    from the class (default: declared arguments readable).
 *  - helpers: the class's helpers plus its groups.
 *  - kfuncs: the class's functions, id = the gobj extern index the program's
 *    CALL imm uses, with argument kinds, ranges (size arguments included)
 *    and the return range.
 *  - host pointers: each `struct X *` argument with `fields:` rights, its
 *    context slot and per-field rights (gver_host_ptr); the verifier checks
 *    probe_read / probe_write_user accesses through it field by field.
 *  - host globals: presented to the verifier as one-entry array maps of the
 *    global's size (read-only unless write is granted) in a rewritten copy
 *    of the program (geim_prepare); the memory budget is raised by exactly
 *    what those synthetic maps count, so globals do not eat the budget.
 *
 * A policy is one malloc'd block (policy, layout, fields, kfuncs, names) so
 * that free(policy) releases it, like the verifier's own policies.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>

#include "eim/eim_int.h"
#include "util/syscalls.h"

/* pt_regs offsets of the SysV argument registers, then ax. */
static const uint32_t arg_reg_off[GEIM_MAX_ARGS] = { 112, 104, 96, 88, 72, 64 };
static const char *const arg_reg_name[GEIM_MAX_ARGS] = { "di", "si", "dx", "cx", "r8", "r9" };
#define PT_REGS_AX 80
#define GEIM_HELPER_OVERRIDE_RETURN 58
#define PT_REGS_SIZE 168

struct block {
    struct gver_policy pol;
    struct gver_ctx_layout layout;
    struct gver_ctx_field fields[GEIM_MAX_ARGS + 2];
    char layout_name[32];
    struct gver_host_ptr hptrs[GEIM_MAX_ARGS];
    char hptr_names[GEIM_MAX_ARGS][160];
    /* then: struct gver_kfunc kfuncs[n]; char names[n][64];
     * struct gver_host_field hfields[total fields of restricted args];
     * char hfield_names[that total][64] */
};

/* The context offset of argument i's 8-byte slot (function entries: its
 * register in pt_regs), or -1 when the layout has no such slot. */
static long arg_ctx_off(const struct geim_entry *e, const struct gobj_prog *prog, uint32_t i)
{
    switch (e->kind) {
    case GEIM_ENTRY_FUNCTION:
        return arg_reg_off[i];
    case GEIM_ENTRY_SYSCALL:
        if (prog && prog->type == GPROG_TRACEPOINT && strstr(prog->target, "sys_exit_"))
            return -1;
        return 16 + 8 * (long)i;
    case GEIM_ENTRY_SOURCE:
        return 8 * (long)i;
    }
    return -1;
}

/* Arguments with field rights: the verifier types loads of their slot as
 * host pointers and checks probe_read / probe_write_user against the fields.
 * hf has room for every field of every restricted argument. */
static void host_ptrs_for(const struct geim_spec *spec, const struct geim_class *c,
                          const struct geim_entry *e, const struct gobj_prog *prog,
                          struct block *b, struct gver_host_field *hf, size_t n_hf)
{
    uint32_t n = 0;
    char *nm = (char *)(hf + n_hf);
    for (uint32_t i = 0; i < e->n_args; i++) {
        const struct geim_arg *a = &e->args[i];
        long off = arg_ctx_off(e, prog, i);
        if (!c->args[i].field_access || a->type.struct_idx < 0 || off < 0)
            continue;
        const struct geim_struct *st = &spec->types[a->type.struct_idx];
        struct gver_host_ptr *h = &b->hptrs[n];
        /* at a function's return the argument registers hold whatever the
         * callee left there: nothing is reachable through them */
        int at_ret = prog && prog->type == GPROG_URETPROBE;
        snprintf(b->hptr_names[n], sizeof(b->hptr_names[n]), "argument '%s' (struct %s%s)", a->name, st->name,
                 at_ret ? ", not valid at return" : "");
        h->ctx_off = (uint32_t)off;
        h->name = b->hptr_names[n];
        h->size = st->size;
        h->fields = hf;
        h->n_fields = st->n_fields;
        for (uint32_t f = 0; f < st->n_fields; f++, nm += 64) {
            snprintf(nm, 64, "%s", st->fields[f].name);
            *hf++ = (struct gver_host_field){ nm, st->fields[f].offset, st->fields[f].size,
                                              at_ret ? 0 : c->args[i].field_access[f] };
        }
        n++;
    }
    b->pol.host_ptrs = n ? b->hptrs : NULL;
    b->pol.n_host_ptrs = n;
}

static const char *cget(const void *arg, size_t i)
{
    return ((const struct geim_class *)arg)[i].name;
}

static const struct geim_class *class_or_err(const struct geim_spec *spec, const char *name,
                                             struct graft_err *err)
{
    const struct geim_class *c = geim_find_class(spec, name);
    if (c)
        return c;
    char names[512] = "";
    size_t l = 0;
    for (uint32_t i = 0; spec && i < spec->n_classes && l < sizeof(names) - 70; i++)
        l += snprintf(names + l, sizeof(names) - l, "%s%s", i ? ", " : "", spec->classes[i].name);
    char dym[128];
    graft_errf(err, -ENOENT, "%s: no class '%s'%s (classes: %s)", spec ? spec->path : "?",
               name ? name : "(null)",
               geim_did_you_mean(dym, sizeof(dym), spec && name ? geim_suggest(name, cget, spec->classes, spec->n_classes) : NULL),
               names[0] ? names : "none");
    return NULL;
}

static int ctx_for(const struct geim_class *c, const struct geim_entry *e,
                   const struct gobj_prog *prog, struct block *b)
{
    uint32_t n = 0;
    switch (e->kind) {
    case GEIM_ENTRY_FUNCTION:
        for (uint32_t i = 0; i < e->n_args; i++)
            if (c->args[i].access)
                b->fields[n++] = (struct gver_ctx_field){ arg_reg_off[i], 8, c->args[i].access };
        if (prog && prog->type == GPROG_URETPROBE && e->ret.type.kind != GEIM_T_VOID)
            b->fields[n++] = (struct gver_ctx_field){ PT_REGS_AX, 8, GVER_R };
        snprintf(b->layout_name, sizeof(b->layout_name), "pt_regs");
        b->layout.size = PT_REGS_SIZE;
        break;
    case GEIM_ENTRY_SYSCALL: {
        int is_exit = prog && prog->type == GPROG_TRACEPOINT && strstr(prog->target, "sys_exit_");
        b->fields[n++] = (struct gver_ctx_field){ 8, 8, GVER_R };          /* id */
        if (is_exit) {
            b->fields[n++] = (struct gver_ctx_field){ 16, 8, GVER_R };     /* ret */
            b->layout.size = 24;
            snprintf(b->layout_name, sizeof(b->layout_name), "sys_exit");
            break;
        }
        for (uint32_t i = 0; i < e->n_args; i++)
            if (c->args[i].access)
                b->fields[n++] = (struct gver_ctx_field){ 16 + 8 * i, 8, c->args[i].access };
        b->layout.size = 64;
        snprintf(b->layout_name, sizeof(b->layout_name), "sys_enter");
        break;
    }
    case GEIM_ENTRY_SOURCE:
        for (uint32_t i = 0; i < e->n_args; i++)
            if (c->args[i].access)
                b->fields[n++] = (struct gver_ctx_field){ 8 * i, 8, c->args[i].access };
        b->layout.size = 8 * (e->n_args ? e->n_args : 1);
        snprintf(b->layout_name, sizeof(b->layout_name), "graft_entry_args");
        break;
    }
    b->layout.name = b->layout_name;
    b->layout.fields = b->fields;
    b->layout.n_fields = n;
    b->pol.ctx = &b->layout;
    return 0;
}

static enum garg_kind arg_kind(const struct geim_func *f, uint32_t i)
{
    const struct geim_arg *a = &f->args[i];
    if (a->type.kind == GEIM_T_PTR)      /* readable, size is next */
        return a->nullable ? GARG_PTR_TO_MEM_OR_NULL : GARG_PTR_TO_MEM;
    if (i > 0 && f->args[i - 1].size_arg == (int)i)
        return a->has_range && a->min <= 0 ? GARG_CONST_SIZE_OR_ZERO : GARG_CONST_SIZE;
    return GARG_SCALAR;
}

uint32_t geim_func_mem_args(const struct geim_spec *spec, const char *name)
{
    uint32_t m = 0;
    for (uint32_t i = 0; spec && i < spec->n_funcs; i++)
        if (!strcmp(spec->funcs[i].name, name))
            for (uint32_t a = 0; a < spec->funcs[i].n_args && a < 4; a++)
                if (spec->funcs[i].args[a].type.kind == GEIM_T_PTR)
                    m |= 1u << a;
    return m;
}

/* The extern index a function capability is called through, or -1. */
static int extern_index(const struct gobj *obj, const char *name, enum gobj_extern_kind kind)
{
    for (uint32_t i = 0; obj && i < obj->n_externs; i++)
        if (obj->externs[i].kind == kind && !strcmp(obj->externs[i].name, name))
            return (int)i;
    return -1;
}

int geim_policy_for_class(const struct geim_spec *spec, const char *class_name,
                          const struct gobj *obj, const struct gobj_prog *prog,
                          struct gver_policy **out, struct graft_err *err)
{
    if (!spec || !out)
        return graft_errf(err, -EINVAL, "geim_policy_for_class: NULL argument");
    *out = NULL;
    const struct geim_class *c = class_or_err(spec, class_name, err);
    if (!c)
        return -ENOENT;
    const struct geim_entry *e = &spec->entries[c->entry];
    size_t n_hf = 0;
    for (uint32_t i = 0; i < e->n_args; i++)
        if (c->args[i].field_access && e->args[i].type.struct_idx >= 0)
            n_hf += spec->types[e->args[i].type.struct_idx].n_fields;
    size_t sz = sizeof(struct block) + c->n_funcs * (sizeof(struct gver_kfunc) + 64) +
                n_hf * (sizeof(struct gver_host_field) + 64);
    struct block *b = calloc(1, sz);
    if (!b)
        return graft_errf(err, -ENOMEM, "out of memory");
    ctx_for(c, e, prog, b);
    memcpy(b->pol.helpers_allowed, c->helpers_allowed, sizeof(b->pol.helpers_allowed));
    b->pol.insn_budget = c->insn_budget;
    b->pol.mem_budget = c->mem_budget;
    /* override grant: an override program may call bpf_override_return, a
     * replace program's r0 is the result; either way within the entry's
     * declared return range (range_of refuses [0, 0], so min/max are never
     * both 0 here) */
    if (prog && c->override && prog->type == GPROG_OVERRIDE) {
        gver_policy_allow_helper(&b->pol, GEIM_HELPER_OVERRIDE_RETURN, 1);
        if (e->ret.has_range) {
            b->pol.override_range = 1;
            b->pol.override_min = e->ret.min;
            b->pol.override_max = e->ret.max;
        }
    }
    if (prog && c->override && prog->type == GPROG_REPLACE && e->ret.has_range) {
        b->pol.ret_min = e->ret.min;
        b->pol.ret_max = e->ret.max;
    }
    struct gver_kfunc *kf = (struct gver_kfunc *)(b + 1);
    char *names = (char *)(kf + c->n_funcs);
    uint32_t nk = 0;
    for (uint32_t i = 0; i < c->n_funcs; i++) {
        const struct geim_func *f = &spec->funcs[c->funcs[i]];
        int id = obj ? extern_index(obj, f->name, GOBJ_EXTERN_KSYM_FUNC) : c->funcs[i];
        if (id < 0)
            continue;          /* granted but not used by this object */
        struct gver_kfunc *k = &kf[nk++];
        char *nm = names + 64 * i;
        snprintf(nm, 64, "%s", f->name);
        k->name = nm;
        k->id = id;
        for (uint32_t a = 0; a < f->n_args; a++) {
            k->args[a] = arg_kind(f, a);
            if (f->args[a].has_range) {
                k->arg_min[a] = f->args[a].min;
                k->arg_max[a] = f->args[a].max;
            }
            /* A pointer's bytes are copied for the host with isolation on
             * (giso_wrap_host_call_mem): at most GEIM_HOST_MEM_MAX of them. */
            if ((k->args[a] == GARG_CONST_SIZE || k->args[a] == GARG_CONST_SIZE_OR_ZERO) &&
                (!f->args[a].has_range || f->args[a].max > (int64_t)GEIM_HOST_MEM_MAX)) {
                k->arg_min[a] = f->args[a].has_range ? f->args[a].min : 0;
                k->arg_max[a] = GEIM_HOST_MEM_MAX;
            }
        }
        k->ret = f->ret.type.kind == GEIM_T_VOID ? GRET_VOID : GRET_INTEGER;
        if (f->ret.has_range) {
            k->ret_min = f->ret.min;
            k->ret_max = f->ret.max;
        }
    }
    b->pol.kfuncs = nk ? kf : NULL;
    b->pol.n_kfuncs = nk;
    host_ptrs_for(spec, c, e, prog, b, (struct gver_host_field *)(names + 64 * c->n_funcs), n_hf);
    *out = &b->pol;
    return 0;
}

/* ---- attach ---- */

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int geim_check_attach(const struct geim_spec *spec, const char *class_name,
                      const struct gobj_prog *prog, struct graft_err *err)
{
    if (!spec || !prog)
        return graft_errf(err, -EINVAL, "geim_check_attach: NULL argument");
    const struct geim_class *c = class_or_err(spec, class_name, err);
    if (!c)
        return -ENOENT;
    const struct geim_entry *e = &spec->entries[c->entry];
    char bin[256] = "", func[256] = "";
    const char *target = NULL;
    const char *want = NULL;
    switch (e->kind) {
    case GEIM_ENTRY_FUNCTION:
        want = c->override ? "uprobe/, uretprobe/, override/ or replace/BINARY:FUNC"
                           : "uprobe/BINARY:FUNC or uretprobe/BINARY:FUNC";
        if (prog->type == GPROG_UPROBE || prog->type == GPROG_URETPROBE || prog->type == GPROG_OVERRIDE ||
            prog->type == GPROG_REPLACE) {
            uint64_t off = 0;
            struct graft_err e2;
            if (gobj_parse_probe_target(prog->target, bin, sizeof(bin), func, sizeof(func), &off, &e2))
                return graft_errf(err, -EINVAL, "class '%s': program '%s': %s", c->name, prog->name, e2.msg);
            if (off)
                return graft_errf(err, -EPERM,
                                  "class '%s' is bound to entry '%s' (the function's start); program '%s' in section '%s' attaches at offset +0x%" PRIx64 " inside it",
                                  c->name, e->name, prog->name, prog->section, off);
            target = func;
        }
        break;
    case GEIM_ENTRY_SYSCALL:
        want = "tracepoint/syscalls/sys_enter_NAME or sys_exit_NAME";
        if (prog->type == GPROG_TRACEPOINT) {
            const char *t = prog->target;
            if (!strncmp(t, "syscalls/sys_enter_", 19))
                target = t + 19;
            else if (!strncmp(t, "syscalls/sys_exit_", 18))
                target = t + 18;
        }
        break;
    case GEIM_ENTRY_SOURCE:
        want = "usdt/BINARY:graft:NAME";
        if (prog->type == GPROG_USDT) {
            const char *t = prog->target, *c1 = strrchr(t, ':');
            if (c1 && c1 - t >= 6 && !strncmp(c1 - 6, ":graft", 6)) {
                target = c1 + 1;
                snprintf(bin, sizeof(bin), "%.*s", (int)(c1 - 6 - t), t);
            }
        }
        break;
    }
    if (!target)
        return graft_errf(err, -EPERM,
                          "class '%s' is bound to %s entry '%s': program '%s' in section '%s' is a %s program; expected section %s",
                          c->name, geim_entry_kind_name(e->kind), e->name, prog->name, prog->section,
                          gprog_type_name(prog->type), want);
    /* A syscall's tracepoint may be named after its implementation
     * (sys_enter_newfstat is fstat): syscalls compare by number. */
    int same = e->kind == GEIM_ENTRY_SYSCALL ? gsyscall_tracepoint_nr(target) == gsyscall_nr(e->name)
                                             : strcmp(target, e->name) == 0;
    if (!same)
        return graft_errf(err, -EPERM,
                          "class '%s' is bound to %s entry '%s', but program '%s' (section '%s') attaches to '%s'",
                          c->name, geim_entry_kind_name(e->kind), e->name, prog->name, prog->section, target);
    if (spec->host[0] && bin[0] && strcmp(base_of(bin), base_of(spec->host)))
        return graft_errf(err, -EPERM,
                          "class '%s': program '%s' (section '%s') attaches to binary '%s', but the spec describes host '%s'",
                          c->name, prog->name, prog->section, bin, spec->host);
    if ((prog->type == GPROG_OVERRIDE || prog->type == GPROG_REPLACE) && !c->override)
        return graft_errf(err, -EPERM,
                          "class '%s': override of entry '%s' is not granted to class '%s': program '%s' (section '%s') %s (add 'override: true' to the class)",
                          c->name, e->name, c->name, prog->name, prog->section,
                          prog->type == GPROG_OVERRIDE ? "may skip the function and set its return value"
                                                       : "replaces the function");
    return 0;
}

/* ---- externs ---- */

static int prog_index(const struct gobj *obj, const struct gobj_prog *prog)
{
    if (!obj || !prog || prog < obj->progs || prog >= obj->progs + obj->n_progs)
        return -1;
    return (int)(prog - obj->progs);
}

/* First instruction of prog that uses extern x, or -1 when it does not. */
static int64_t first_use(const struct gobj_extern *x, int pi)
{
    int64_t best = -1;
    for (uint32_t i = 0; i < x->n_uses; i++)
        if ((int)x->uses[i].prog == pi && (best < 0 || x->uses[i].insn < best))
            best = x->uses[i].insn;
    return best;
}

static const char *fget(const void *arg, size_t i)
{
    return ((const struct geim_func *)arg)[i].name;
}
static const char *sget(const void *arg, size_t i)
{
    return ((const struct geim_state *)arg)[i].name;
}

/* Argument count of the extern's BTF FUNC_PROTO, or -1 when unknown. */
static int btf_func_nargs(const struct gobj *obj, uint32_t btf_id)
{
    if (!obj->btf || !btf_id)
        return -1;
    const struct btf_type *t = btf__type_by_id(obj->btf, btf_id);
    if (!t || !btf_is_func(t))
        return -1;
    t = btf__type_by_id(obj->btf, t->type);
    if (!t || !btf_is_func_proto(t))
        return -1;
    int n = btf_vlen(t);
    /* a trailing "..." is an unnamed void parameter */
    if (n > 0 && btf_params(t)[n - 1].type == 0)
        return -1;
    return n;
}

int geim_check_externs(const struct geim_spec *spec, const char *class_name,
                       const struct gobj *obj, const struct gobj_prog *prog,
                       struct graft_err *err)
{
    if (!spec || !obj || !prog)
        return graft_errf(err, -EINVAL, "geim_check_externs: NULL argument");
    const struct geim_class *c = class_or_err(spec, class_name, err);
    if (!c)
        return -ENOENT;
    int pi = prog_index(obj, prog);
    if (pi < 0)
        return graft_errf(err, -EINVAL, "geim_check_externs: program '%s' is not in object %s", prog->name, obj->path);
    char dym[128];
    for (uint32_t i = 0; i < obj->n_externs; i++) {
        const struct gobj_extern *x = &obj->externs[i];
        int64_t at = first_use(x, pi);
        if (at < 0)
            continue;
        if (x->kind == GOBJ_EXTERN_KCONFIG)
            return graft_errf(err, -EPERM, "class '%s': program '%s' insn %" PRId64 ": __kconfig extern '%s' has no meaning in userspace",
                              c->name, prog->name, at, x->name);
        int is_func = x->kind == GOBJ_EXTERN_KSYM_FUNC;
        int idx = -1;
        if (is_func) {
            for (uint32_t k = 0; k < spec->n_funcs; k++)
                if (!strcmp(spec->funcs[k].name, x->name))
                    idx = (int)k;
        } else {
            for (uint32_t k = 0; k < spec->n_states; k++)
                if (!strcmp(spec->states[k].name, x->name))
                    idx = (int)k;
        }
        if (idx < 0)
            return graft_errf(err, -EPERM,
                              "class '%s': program '%s' insn %" PRId64 " %s host %s '%s', which %s does not declare%s",
                              c->name, prog->name, at, is_func ? "calls" : "uses", is_func ? "function" : "global",
                              x->name, spec->path,
                              geim_did_you_mean(dym, sizeof(dym),
                                                is_func ? geim_suggest(x->name, fget, spec->funcs, spec->n_funcs)
                                                        : geim_suggest(x->name, sget, spec->states, spec->n_states)));
        int granted = 0;
        if (is_func) {
            for (uint32_t k = 0; k < c->n_funcs; k++)
                granted |= c->funcs[k] == idx;
        } else {
            for (uint32_t k = 0; k < c->n_states; k++)
                granted |= c->states[k] == idx;
        }
        if (!granted)
            return graft_errf(err, -EPERM,
                              "class '%s' does not grant %s '%s': program '%s' insn %" PRId64 " %s it (add it to the class's %s list)",
                              c->name, is_func ? "function" : "state", x->name, prog->name, at,
                              is_func ? "calls" : "uses", is_func ? "functions" : "state");
        if (is_func) {
            int n = btf_func_nargs(obj, x->btf_id);
            const struct geim_func *f = &spec->funcs[idx];
            if (n >= 0 && (uint32_t)n != f->n_args)
                return graft_errf(err, -EPERM,
                                  "class '%s': program '%s' insn %" PRId64 " declares function '%s' with %d argument%s, the spec (line %d) with %u",
                                  c->name, prog->name, at, x->name, n, n == 1 ? "" : "s", f->line, f->n_args);
        }
    }
    return 0;
}

/* ---- verification ---- */

void geim_prepared_free(struct geim_prepared *p)
{
    if (!p)
        return;
    free(p->policy);
    free(p->insns);
    free(p->maps);
    memset(p, 0, sizeof(*p));
}

int geim_prepare(const struct geim_spec *spec, const char *class_name,
                 const struct gobj *obj, const struct gobj_prog *prog,
                 struct geim_prepared *out, struct graft_err *err)
{
    if (!spec || !obj || !prog || !out)
        return graft_errf(err, -EINVAL, "geim_prepare: NULL argument");
    memset(out, 0, sizeof(*out));
    const struct geim_class *c = class_or_err(spec, class_name, err);
    if (!c)
        return -ENOENT;
    int rc = geim_policy_for_class(spec, class_name, obj, prog, &out->policy, err);
    if (rc)
        return rc;
    out->insns = malloc((prog->n_insns ? prog->n_insns : 1) * sizeof(*out->insns));
    /* at most one synthetic map per extern */
    out->maps = calloc(obj->n_maps + obj->n_externs + 1, sizeof(*out->maps));
    int *syn = calloc(obj->n_externs + 1, sizeof(int));
    if (!out->insns || !out->maps || !syn) {
        free(syn);
        geim_prepared_free(out);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    memcpy(out->insns, prog->insns, prog->n_insns * sizeof(*out->insns));
    out->n_insns = prog->n_insns;
    for (uint32_t i = 0; i < obj->n_maps; i++)
        out->maps[i] = obj->maps[i].def;
    out->n_maps = obj->n_maps;
    for (uint32_t i = 0; i < obj->n_externs; i++)
        syn[i] = -1;
    uint64_t extra = 0;
    for (uint32_t i = 0; i + 1 < out->n_insns; i++) {
        struct bpf_insn *in = &out->insns[i];
        if (!bpf_is_ld_imm64(in))
            continue;
        if (in->src_reg != BPF_PSEUDO_BTF_ID) {
            i++;
            continue;
        }
        uint32_t x = (uint32_t)in->imm;
        const struct gobj_extern *ex = x < obj->n_externs ? &obj->externs[x] : NULL;
        int si = -1, w = 0;
        for (uint32_t k = 0; ex && ex->kind == GOBJ_EXTERN_KSYM_VAR && k < c->n_states; k++)
            if (!strcmp(spec->states[c->states[k]].name, ex->name)) {
                si = c->states[k];
                w = c->state_write[k];
            }
        if (si < 0) {
            free(syn);
            geim_prepared_free(out);
            return graft_errf(err, -EPERM, "class '%s': program '%s' insn %u loads the address of %s '%s', which the class does not grant as state",
                              c->name, prog->name, i, ex ? (ex->kind == GOBJ_EXTERN_KSYM_FUNC ? "host function" : "extern") : "unknown extern",
                              ex ? ex->name : "?");
        }
        if (syn[x] < 0) {
            struct gmap_def *d = &out->maps[out->n_maps];
            d->type = GMAP_ARRAY;
            d->key_size = 4;
            d->value_size = spec->states[si].type.size;
            d->max_entries = 1;
            d->map_flags = w ? 0 : GMAP_F_RDONLY_PROG;
            snprintf(d->name, sizeof(d->name), "%.63s", ex->name);
            extra += (uint64_t)d->key_size + d->value_size;
            syn[x] = (int)out->n_maps++;
        }
        in->src_reg = BPF_PSEUDO_MAP_IDX_VALUE;
        in->imm = syn[x];
        in[1].imm = 0;
        i++;
    }
    free(syn);
    if (out->policy->mem_budget)
        out->policy->mem_budget += extra;
    return 0;
}

/* What the class is missing for the verifier's rejection, for the message. */
static void capability_hint(const struct geim_spec *spec, const struct geim_class *c,
                            const struct gobj *obj, const struct geim_prepared *pp,
                            const struct gver_result *res, char *buf, size_t len)
{
    const struct geim_entry *e = &spec->entries[c->entry];
    const char *why = res->reason;
    buf[0] = '\0';
    if (strstr(why, "instruction budget")) {
        if (pp->policy->insn_budget != c->insn_budget)
            snprintf(buf, len, "the loader's --insn-budget %" PRIu64 ", tighter than class '%s''s insn_budget",
                     pp->policy->insn_budget, c->name);
        else
            snprintf(buf, len, "capability insn_budget = %" PRIu64 " of class '%s'", c->insn_budget, c->name);
        return;
    }
    if (strstr(why, "memory budget")) {
        snprintf(buf, len, "capability mem_budget = %" PRIu64 " of class '%s'", c->mem_budget, c->name);
        return;
    }
    if (strstr(why, "override return value") || strstr(why, "R0 return value")) {
        snprintf(buf, len, "entry '%s' returns [%" PRId64 ", %" PRId64 "] (%s line %d); class '%s' may only override it within that range",
                 e->name, e->ret.min, e->ret.max, spec->path, e->ret.line, c->name);
        return;
    }
    if (strstr(why, "host pointer argument '")) {
        /* field rights: name them all for the restricted arguments */
        size_t l = (size_t)snprintf(buf, len, "field rights of class '%s' (%s line %d):", c->name, spec->path, c->line);
        for (uint32_t i = 0; i < e->n_args && l < len; i++) {
            const struct geim_arg_right *r = &c->args[i];
            if (!r->field_access || e->args[i].type.struct_idx < 0)
                continue;
            const struct geim_struct *st = &spec->types[e->args[i].type.struct_idx];
            l += (size_t)snprintf(buf + l, len - l, " %s {", e->args[i].name);
            for (uint32_t f = 0; f < st->n_fields && l < len; f++) {
                uint32_t a = r->field_access[f];
                l += (size_t)snprintf(buf + l, len - l, "%s %s: %s", f ? "," : "", st->fields[f].name,
                                      a == (GVER_R | GVER_W) ? "write" : a & GVER_R ? "read" : a & GVER_W ? "write-only" : "none");
            }
            if (l < len)
                l += (size_t)snprintf(buf + l, len - l, " }");
        }
        return;
    }
    if (res->fail_insn < 0 || (uint64_t)res->fail_insn >= pp->n_insns)
        return;
    const struct bpf_insn *in = &pp->insns[res->fail_insn];
    if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == 0) {
        const struct ghelper_proto *h = ghelper_proto((uint32_t)in->imm);
        if (!gver_policy_helper_allowed(pp->policy, (uint32_t)in->imm))
            snprintf(buf, len, "helper '%s' (#%d) is not granted to class '%s' (add it to its helpers or a granted group)",
                     h ? h->name : "?", in->imm, c->name);
        else
            snprintf(buf, len, "helper '%s' (#%d)", h ? h->name : "?", in->imm);
        return;
    }
    if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_KFUNC_CALL) {
        const char *nm = obj && (uint32_t)in->imm < obj->n_externs ? obj->externs[in->imm].name : "?";
        int granted = 0;
        for (uint32_t k = 0; k < pp->policy->n_kfuncs; k++)
            granted |= pp->policy->kfuncs[k].id == in->imm;
        snprintf(buf, len, granted ? "function '%s': pre-condition of class '%s' grant" :
                                     "function '%s' is not granted to class '%s'", nm, c->name);
        return;
    }
    /* context accesses: name the argument behind the offset */
    const char *o = strstr(why, "ctx");
    const char *off = strstr(why, "off=");
    if (o && off && (BPF_CLASS(in->code) == BPF_LDX || BPF_CLASS(in->code) == BPF_STX ||
                     BPF_CLASS(in->code) == BPF_ST)) {
        long v = strtol(off + 4, NULL, 10);
        for (uint32_t i = 0; i < e->n_args; i++) {
            long at = e->kind == GEIM_ENTRY_FUNCTION ? (long)arg_reg_off[i]
                    : e->kind == GEIM_ENTRY_SYSCALL ? 16 + 8 * (long)i : 8 * (long)i;
            if (v >= at && v < at + 8) {
                uint32_t a = c->args[i].access;
                snprintf(buf, len, "argument '%s' (%s%s) of entry '%s' is %s in class '%s'",
                         e->args[i].name, e->kind == GEIM_ENTRY_FUNCTION ? "register " : "slot ",
                         e->kind == GEIM_ENTRY_FUNCTION ? arg_reg_name[i] : "", e->name,
                         !a ? "closed" : (a & GVER_W) ? "writable" : "read-only", c->name);
                return;
            }
        }
        snprintf(buf, len, "offset %ld of the context is not an argument of entry '%s' granted to class '%s'",
                 v, e->name, c->name);
        return;
    }
    const char *ro = strstr(why, "read-only map '");
    if (ro) {
        char nm[64];
        if (sscanf(ro + 15, "%63[^']", nm) == 1)
            for (uint32_t k = obj->n_maps; k < pp->n_maps; k++)
                if (!strcmp(pp->maps[k].name, nm)) {
                    snprintf(buf, len, "state '%s' is granted read-only to class '%s'", nm, c->name);
                    return;
                }
    }
}

int geim_verify(const struct geim_spec *spec, const char *class_name,
                const struct gobj *obj, const struct gobj_prog *prog, uint64_t insn_budget,
                int log_level, struct gver_result *res, struct graft_err *err)
{
    return geim_verify_facts(spec, class_name, obj, prog, insn_budget, log_level, 0, res, err);
}

int geim_verify_facts(const struct geim_spec *spec, const char *class_name,
                      const struct gobj *obj, const struct gobj_prog *prog, uint64_t insn_budget,
                      int log_level, int record_facts, struct gver_result *res,
                      struct graft_err *err)
{
    if (!spec || !obj || !prog || !res)
        return graft_errf(err, -EINVAL, "geim_verify: NULL argument");
    memset(res, 0, sizeof(*res));
    int rc;
    if ((rc = geim_check_attach(spec, class_name, prog, err)) ||
        (rc = geim_check_externs(spec, class_name, obj, prog, err)))
        return rc;
    const struct geim_class *c = geim_find_class(spec, class_name);
    struct geim_prepared pp;
    if ((rc = geim_prepare(spec, class_name, obj, prog, &pp, err)))
        return rc;
    if (insn_budget && (!pp.policy->insn_budget || insn_budget < pp.policy->insn_budget))
        pp.policy->insn_budget = insn_budget;
    /* the object's maps' lock words; the class's host globals (after them) have no BTF here */
    int32_t *locks = calloc(pp.n_maps ? pp.n_maps : 1, sizeof(*locks));
    if (!locks) {
        geim_prepared_free(&pp);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < pp.n_maps; i++)
        locks[i] = i < obj->n_maps ? obj->maps[i].spin_lock_off : GVER_LOCK_UNKNOWN;
    /* the object's .rodata values are constants (the class's host globals,
     * after the object's maps, are not) */
    const void **frozen = gobj_frozen_values(obj);
    const void **fz = frozen ? calloc(pp.n_maps ? pp.n_maps : 1, sizeof(*fz)) : NULL;
    for (uint32_t i = 0; fz && i < pp.n_maps && i < obj->n_maps; i++)
        fz[i] = frozen[i];
    struct gver_input in = {
        .insns = pp.insns, .n = pp.n_insns, .maps = pp.maps, .n_maps = pp.n_maps,
        .map_lock_offs = locks, .policy = pp.policy, .log_level = log_level, .map_frozen = fz,
        .record_facts = record_facts,
    };
    struct graft_err verr = { 0 };
    rc = gver_verify(&in, res, &verr);
    free(fz);
    gobj_frozen_free(frozen, obj->n_maps);
    free(locks);
    if (rc) {
        geim_prepared_free(&pp);
        return graft_errf(err, rc, "class '%s': program '%s': %s", class_name, prog->name, verr.msg);
    }
    if (!res->accepted) {
        char hint[400];
        capability_hint(spec, c, obj, &pp, res, hint, sizeof(hint));
        char where[48] = "";
        if (res->fail_insn >= 0)
            snprintf(where, sizeof(where), " insn %" PRId64, res->fail_insn);
        graft_errf(err, -EACCES, "class '%s': program '%s'%s: %s%s%s", class_name, prog->name, where,
                   res->reason, hint[0] ? "; " : "", hint);
    }
    geim_prepared_free(&pp);
    return 0;
}
