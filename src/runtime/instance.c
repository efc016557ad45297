/*
 * instance.c - binding a program to this process's maps; see instance.h.
 *
 * LD_IMM64 map references become the address of the process-local struct
 * gmap (what map helpers receive), and direct value references (global data:
 * .data, .rodata, .bss) the address of the value itself, so the JIT emits a
 * plain constant and no lookup happens at run time.
 */
#include "runtime/instance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/helpers.h"

static const struct gvm_prog *(*prog_resolver)(uint32_t, void *);
static void *prog_resolver_arg;

void grt_set_prog_resolver(const struct gvm_prog *(*by_id)(uint32_t id, void *arg), void *arg)
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
    default:
        return graft_errf(err, -EINVAL, "LD_IMM64 source %u is not supported here", src);
    }
}

static const struct gvm_prog *tail_call_target(void *arg, uint64_t map_addr, uint64_t index)
{
    (void)arg;
    struct gmap *map = (struct gmap *)(uintptr_t)map_addr;
    if (!map || gmap_get_def(map)->type != GMAP_PROG_ARRAY || index > UINT32_MAX || !prog_resolver)
        return NULL;
    uint32_t key = (uint32_t)index;
    uint32_t *prog_id = gmap_lookup(map, &key);
    return prog_id && *prog_id ? prog_resolver(*prog_id, prog_resolver_arg) : NULL;
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

int grt_instance_create(const struct bpf_insn *insns, uint32_t n, struct gmap *const *maps,
                        uint32_t n_maps, enum gvm_engine engine, struct grt_instance **out,
                        struct graft_err *err)
{
    struct grt_instance *inst = calloc(1, sizeof(*inst));
    if (!inst || !(inst->maps = calloc(n_maps ? n_maps : 1, sizeof(*inst->maps)))) {
        free(inst);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    memcpy(inst->maps, maps, n_maps * sizeof(*maps));
    inst->n_maps = n_maps;
    inst->env = (struct gvm_env){
        .helpers = ghelper_table(),
        .resolve_ld_imm64 = resolve_ld_imm64,
        .tail_call_target = tail_call_target,
        .array_info = array_info,
        .arg = inst,
    };
    ghelper_set_callback_invoker(gvm_invoke_callback);    /* bpf_loop and friends */
    struct gvm_prog_opts opts = { .sz = sizeof(opts), .engine = engine, .env = &inst->env };
    int rc = gvm_prog_create(insns, n, &opts, &inst->prog, err);
    if (rc) {
        free(inst->maps);
        free(inst);
        return rc;
    }
    *out = inst;
    return 0;
}

void grt_instance_free(struct grt_instance *inst)
{
    if (!inst)
        return;
    gvm_prog_free(inst->prog);
    free(inst->maps);
    free(inst);
}
