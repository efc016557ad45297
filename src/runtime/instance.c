/*
 * instance.c - binding a program to this process's maps; see instance.h.
 *
 * LD_IMM64 map references become the address of the process-local struct
 * gmap (what map helpers receive), and direct value references (global data:
 * .data, .rodata, .bss) the address of the value itself, so the JIT emits a
 * plain constant and no lookup happens at run time. Host functions (kfunc
 * calls) and host globals (LD_IMM64 BTF_ID) named by EIM extensions are
 * resolved once, by the caller's resolver, to their addresses here: a call
 * becomes a direct call, a global's address a constant.
 */
#include "runtime/instance.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/helpers.h"
#include "util/task_layout.h"

static const struct gvm_prog *(*prog_resolver)(uint32_t, void *, uint64_t *);
static void *prog_resolver_arg;

void grt_set_prog_resolver(const struct gvm_prog *(*by_id)(uint32_t id, void *arg,
                                                           uint64_t *policy_tag),
                           void *arg)
{
    prog_resolver = by_id;
    prog_resolver_arg = arg;
}

static struct gmap *map_slot(struct grt_instance *inst, int32_t idx, struct graft_err *err)
{
    if (idx < 0 || (uint32_t)idx >= inst->n_maps || !inst->maps[idx]) {
        graft_errf(err, -EINVAL, "map reference %d: the program has %u maps", idx, inst->n_maps);
        return NULL;
    }
    return inst->maps[idx];
}

static int resolve_ld_imm64(void *arg, uint8_t src, int32_t imm, int32_t next_imm,
                            uint64_t *value, struct graft_err *err)
{
    struct grt_instance *inst = arg;
    struct gmap *map;
    switch (src) {
    case BPF_PSEUDO_MAP_IDX:
    case BPF_PSEUDO_MAP_FD:    /* loaders here put slot indexes in "fd" too */
        if (!(map = map_slot(inst, imm, err)))
            return err ? err->code : -EINVAL;
        *value = (uint64_t)(uintptr_t)map;
        return 0;
    case BPF_PSEUDO_MAP_IDX_VALUE:
    case BPF_PSEUDO_MAP_VALUE: {
        if (!(map = map_slot(inst, imm, err)))
            return err ? err->code : -EINVAL;
        const struct gmap_def *def = gmap_get_def(map);
        if (def->type != GMAP_ARRAY || (uint32_t)next_imm >= def->value_size)
            return graft_errf(err, -EINVAL,
                              "direct value access into map %s at offset %d: needs an array map with a value larger than the offset",
                              def->name, next_imm);
        uint32_t key = 0;
        char *val = gmap_lookup(map, &key);
        if (!val)
            return graft_errf(err, -EINVAL, "map %s has no element 0", def->name);
        *value = (uint64_t)(uintptr_t)(val + next_imm);
        return 0;
    }
    case BPF_PSEUDO_BTF_ID:
        if (imm < 0 || (uint32_t)imm >= inst->n_externs || inst->extern_kinds[imm] != GREG_EXTERN_VAR)
            return graft_errf(err, -EINVAL,
                              "host global reference %d: the program has %u externs and this is not a global",
                              imm, inst->n_externs);
        *value = (uint64_t)(uintptr_t)inst->extern_addrs[imm];
        return 0;
    default:
        return graft_errf(err, -EINVAL, "LD_IMM64 source %u is not supported here", src);
    }
}

static gvm_helper_fn resolve_kfunc(void *arg, int32_t imm, struct graft_err *err)
{
    struct grt_instance *inst = arg;
    if (imm < 0 || (uint32_t)imm >= inst->n_externs || inst->extern_kinds[imm] != GREG_EXTERN_FUNC) {
        graft_errf(err, -EINVAL,
                   "host function reference %d: the program has %u externs and this is not a function",
                   imm, inst->n_externs);
        return NULL;
    }
    return (gvm_helper_fn)inst->extern_addrs[imm];
}

/* Look every extern up once, before compiling, so a missing one is named. */
static int bind_externs(struct grt_instance *inst, const struct grt_instance_opts *o,
                        struct graft_err *err)
{
    if (!o->n_externs)
        return 0;
    if (!o->externs || !o->resolve)
        return graft_errf(err, -EINVAL,
                          "the program names %u host functions/globals but nothing resolves them here",
                          o->n_externs);
    inst->extern_addrs = calloc(o->n_externs, sizeof(*inst->extern_addrs));
    inst->extern_kinds = calloc(o->n_externs, sizeof(*inst->extern_kinds));
    if (!inst->extern_addrs || !inst->extern_kinds)
        return graft_errf(err, -ENOMEM, "out of memory");
    inst->n_externs = o->n_externs;
    for (uint32_t i = 0; i < o->n_externs; i++) {
        const struct greg_extern *x = &o->externs[i];
        const char *what = x->kind == GREG_EXTERN_FUNC ? "host function" : "host global";
        if (x->kind != GREG_EXTERN_FUNC && x->kind != GREG_EXTERN_VAR)
            return graft_errf(err, -EINVAL, "extern %u (%s) has unknown kind %u", i, x->name, x->kind);
        int rc = o->resolve(o->resolve_arg, x, &inst->extern_addrs[i], err);
        if (rc < 0 || !inst->extern_addrs[i]) {
            graft_err_prefix(err, "%s '%s' is not in this process (pid %d)", what, x->name,
                             (int)getpid());
            return rc < 0 ? rc : -ENOENT;
        }
        inst->extern_kinds[i] = x->kind;
    }
    return 0;
}

static void instance_release(struct grt_instance *inst)
{
    gvm_prog_free(inst->prog);
    free(inst->extern_addrs);
    free(inst->extern_kinds);
    free(inst->maps);
    free(inst);
}

/* The program a tail call from inst continues in: only one verified under
 * the same policy (see grt_set_prog_resolver). */
static const struct gvm_prog *tail_call_target(void *arg, uint64_t map_addr, uint64_t index)
{
    const struct grt_instance *inst = arg;
    struct gmap *map = (struct gmap *)(uintptr_t)map_addr;
    if (!map || gmap_get_def(map)->type != GMAP_PROG_ARRAY || index > UINT32_MAX || !prog_resolver)
        return NULL;
    uint32_t key = (uint32_t)index;
    uint32_t *prog_id = gmap_lookup(map, &key);
    uint32_t id = prog_id ? __atomic_load_n(prog_id, __ATOMIC_ACQUIRE) : 0;
    uint64_t tag = 0;
    const struct gvm_prog *target = id ? prog_resolver(id, prog_resolver_arg, &tag) : NULL;
    return target && tag == inst->policy_tag ? target : NULL;
}

/* Arrays and per-CPU arrays the JIT may index inline: only maps of this
 * program, laid out as gmap_array_layout() describes. */
static int array_info(void *arg, uint64_t map_addr, struct gvm_array_info *info)
{
    struct grt_instance *inst = arg;
    struct gmap *map = (struct gmap *)(uintptr_t)map_addr;
    int known = 0;
    for (uint32_t i = 0; i < inst->n_maps; i++)
        known |= inst->maps[i] == map;
    void *values;
    uint64_t stride, percpu_stride;
    if (!known || gmap_array_layout(map, &values, &stride, &percpu_stride) < 0 ||
        stride > UINT32_MAX || percpu_stride > UINT32_MAX)
        return 0;
    info->values = values;
    info->stride = (uint32_t)stride;
    info->max_entries = gmap_get_def(map)->max_entries;
    info->percpu_stride = (uint32_t)percpu_stride;
    return 1;
}

int grt_instance_create_opts(const struct bpf_insn *insns, uint32_t n, struct gmap *const *maps,
                             uint32_t n_maps, const struct grt_instance_opts *opts,
                             struct grt_instance **out, struct graft_err *err)
{
    struct grt_instance_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_JIT };
    if (opts) {
        if (opts->sz < offsetof(struct grt_instance_opts, desc_alloc))
            return graft_errf(err, -EINVAL, "grt_instance_opts.sz is %zu, expected %zu", opts->sz,
                              sizeof(o));
        memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
    }
    /* The task-struct helpers lay their images out from the kernel's BTF,
     * read once per process (tens of ms): read it now, at install, rather
     * than in the first hooked call. */
    for (uint32_t i = 0; i < n; i++)
        if (insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == 0 &&
            (insns[i].imm == 35 || insns[i].imm == 158)) {
            (void)gtask_layout();
            break;
        }
    struct grt_instance *inst = calloc(1, sizeof(*inst));
    if (!inst || !(inst->maps = calloc(n_maps ? n_maps : 1, sizeof(*inst->maps)))) {
        free(inst);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    if (n_maps)
        memcpy(inst->maps, maps, n_maps * sizeof(*maps));
    inst->n_maps = n_maps;
    int rc = bind_externs(inst, &o, err);
    if (rc < 0) {
        instance_release(inst);
        return rc;
    }
    inst->env = (struct gvm_env){
        .helpers = ghelper_table(),
        .helper_inline = ghelper_inline_table(),
        .resolve_ld_imm64 = resolve_ld_imm64,
        .tail_call_target = tail_call_target,
        .array_info = array_info,
        .resolve_kfunc = inst->n_externs ? resolve_kfunc : NULL,
        .arg = inst,
    };
    ghelper_set_callback_invoker(gvm_invoke_callback);    /* bpf_loop and friends */
    ghelper_time_init();                                  /* ktime's source, decided here */
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = o.engine, .env = &inst->env,
                                .desc_alloc = o.desc_alloc, .desc_free = o.desc_free,
                                .desc_arg = o.desc_arg, .facts = o.facts, .n_facts = o.n_facts };
    rc = gvm_prog_create(insns, n, &po, &inst->prog, err);
    if (rc) {
        instance_release(inst);
        return rc;
    }
    inst->facts_rewritten = gvm_prog_facts_rewritten(inst->prog);
    *out = inst;
    return 0;
}

int grt_instance_create(const struct bpf_insn *insns, uint32_t n, struct gmap *const *maps,
                        uint32_t n_maps, enum gvm_engine engine, struct grt_instance **out,
                        struct graft_err *err)
{
    struct grt_instance_opts o = { .sz = sizeof(o), .engine = engine };
    return grt_instance_create_opts(insns, n, maps, n_maps, &o, out, err);
}

void grt_instance_free(struct grt_instance *inst)
{
    if (!inst)
        return;
    instance_release(inst);
}
