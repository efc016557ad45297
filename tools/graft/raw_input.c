/*
 * raw_input.c - map fixtures, program types and kernel policies for
 * `graft verify --raw` and the kernel's test_verifier runner (raw_input.h).
 */
#define _GNU_SOURCE
#include "raw_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"

/* The kernel's enum bpf_map_type names (uapi/linux/bpf.h), lower case
 * without the prefix. graft's verifier knows the ones graft implements
 * (maps/maps.h); the others are accepted as fixtures so that programs
 * using them can be verified up to the helper that takes them. */
static const char *const map_type_names[] = {
    [1] = "hash", [2] = "array", [3] = "prog_array", [4] = "perf_event_array",
    [5] = "percpu_hash", [6] = "percpu_array", [7] = "stack_trace", [8] = "cgroup_array",
    [9] = "lru_hash", [10] = "lru_percpu_hash", [11] = "lpm_trie", [12] = "array_of_maps",
    [13] = "hash_of_maps", [14] = "devmap", [15] = "sockmap", [16] = "cpumap", [17] = "xskmap",
    [18] = "sockhash", [19] = "cgroup_storage", [20] = "reuseport_sockarray",
    [21] = "percpu_cgroup_storage", [22] = "queue", [23] = "stack", [24] = "sk_storage",
    [25] = "devmap_hash", [26] = "struct_ops", [27] = "ringbuf", [28] = "inode_storage",
    [29] = "task_storage", [30] = "bloom_filter", [31] = "user_ringbuf", [32] = "cgrp_storage",
    [33] = "arena",
};
#define N_MAP_TYPES (sizeof(map_type_names) / sizeof(map_type_names[0]))

static int parse_u32(const char *s, size_t len, uint32_t *out)
{
    char buf[32];
    if (!len || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] == '-' || buf[0] == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 0);
    if (errno || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int map_type_parse(const char *s, size_t len, uint32_t *type)
{
    for (uint32_t t = 1; t < N_MAP_TYPES; t++)
        if (map_type_names[t] && strlen(map_type_names[t]) == len && !strncmp(s, map_type_names[t], len)) {
            *type = t;
            return 0;
        }
    return parse_u32(s, len, type) == 0 && *type > 0 && *type < 64 ? 0 : -1;
}

#define FAIL(...) graft_errf(err, -EINVAL, "--map #%u '%s': " __VA_ARGS__)

int raw_maps_add(struct raw_maps *maps, const char *spec, struct graft_err *err)
{
    uint32_t idx = maps->n;
    if (idx >= RAW_MAX_MAPS)
        return graft_errf(err, -EINVAL, "--map #%u: at most %d maps", idx, RAW_MAX_MAPS);
    struct gmap_def d = {0};
    int32_t lock = GVER_LOCK_NONE;
    struct gver_map_kptrs kptrs = {0};
    const char *at = strchr(spec, '@');
    size_t head_len = at ? (size_t)(at - spec) : strlen(spec);
    /* TYPE:KEY:VALUE:ENTRIES[:OPTION...] */
    uint32_t field = 0;
    const char *p = spec, *end = spec + head_len;
    while (p <= end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        size_t len = colon ? (size_t)(colon - p) : (size_t)(end - p);
        uint32_t v;
        if (field == 0) {
            if (map_type_parse(p, len, &d.type) < 0)
                return FAIL("unknown map type '%.*s' (hash, array, prog_array, ringbuf, array_of_maps, ... or a number)",
                            idx, spec, (int)len, p);
        } else if (field <= 3) {
            if (parse_u32(p, len, &v) < 0)
                return FAIL("%s '%.*s' is not a number", idx, spec,
                            field == 1 ? "key size" : field == 2 ? "value size" : "max entries", (int)len, p);
            if (field == 1)
                d.key_size = v;
            else if (field == 2)
                d.value_size = v;
            else
                d.max_entries = v;
        } else {
            const char *eq = memchr(p, '=', len);
            size_t nl = eq ? (size_t)(eq - p) : len;
            if (!eq || parse_u32(eq + 1, len - nl - 1, &v) < 0)
                return FAIL("option '%.*s': expected flags=N, inner=MAP, lock=OFFSET or [percpu_]kptr[_ref]=OFFSET",
                            idx, spec, (int)len, p);
            if (nl == 5 && !strncmp(p, "flags", 5)) {
                d.map_flags = v;
            } else if (nl == 5 && !strncmp(p, "inner", 5)) {
                if (d.type != GMAP_ARRAY_OF_MAPS && d.type != GMAP_HASH_OF_MAPS)
                    return FAIL("inner= is only for array_of_maps and hash_of_maps", idx, spec);
                if (v >= idx)
                    return FAIL("inner=%u: the inner map must be an earlier --map (0..%d)", idx, spec, v,
                                (int)idx - 1);
                const struct gmap_def *in = &maps->defs[v];
                if (in->type == GMAP_ARRAY_OF_MAPS || in->type == GMAP_HASH_OF_MAPS)
                    return FAIL("inner=%u is itself a map of maps", idx, spec, v);
                d.inner_map_type = in->type;
                d.inner_key_size = in->key_size;
                d.inner_value_size = in->value_size;
                d.inner_max_entries = in->max_entries;
                d.inner_map_flags = in->map_flags;
            } else if (nl == 4 && !strncmp(p, "lock", 4)) {
                lock = (int32_t)v;
            } else if ((nl == 4 && !strncmp(p, "kptr", 4)) || (nl == 8 && !strncmp(p, "kptr_ref", 8)) ||
                       (nl == 11 && !strncmp(p, "percpu_kptr", 11))) {
                if (kptrs.n >= GVER_MAX_KPTRS)
                    return FAIL("at most %d kptr fields", idx, spec, GVER_MAX_KPTRS);
                if ((v & 7) || (uint64_t)v + 8 > d.value_size)
                    return FAIL("%.*s=%u: a kptr is 8 aligned bytes inside the %u-byte value", idx, spec, (int)nl, p,
                                v, d.value_size);
                kptrs.off[kptrs.n] = v;
                kptrs.kind[kptrs.n++] = nl == 4 ? GVER_KPTR_UNREF : nl == 8 ? GVER_KPTR_REF : GVER_KPTR_PERCPU;
            } else {
                return FAIL("unknown option '%.*s' (flags=, inner=, lock=, kptr=, kptr_ref=, percpu_kptr=)", idx,
                            spec, (int)nl, p);
            }
        }
        field++;
        if (!colon)
            break;
        p = colon + 1;
    }
    if (field < 4)
        return FAIL("expected TYPE:KEY:VALUE:ENTRIES[:OPTION...][@INSN,...]", idx, spec);
    if ((d.type == GMAP_ARRAY_OF_MAPS || d.type == GMAP_HASH_OF_MAPS) && !d.inner_map_type)
        return FAIL("a map of maps needs inner=MAP (the inner maps' fixture)", idx, spec);
    if (d.type == GMAP_ARRAY && d.key_size != 4)
        return FAIL("an array's key is 4 bytes, not %u", idx, spec, d.key_size);
    if (lock != GVER_LOCK_NONE && ((lock & 3) || (uint64_t)lock + 4 > d.value_size))
        return FAIL("lock=%d: a bpf_spin_lock is 4 aligned bytes inside the %u-byte value", idx, spec, lock,
                    d.value_size);
    uint32_t nb = 0;
    if (at) {
        const char *q = at + 1;
        for (;;) {
            const char *comma = strchr(q, ',');
            size_t len = comma ? (size_t)(comma - q) : strlen(q);
            uint32_t v;
            if (parse_u32(q, len, &v) < 0)
                return FAIL("instruction index '%.*s' is not a number", idx, spec, (int)len, q);
            if (nb >= RAW_MAX_BINDS)
                return FAIL("at most %d instructions per map", idx, spec, RAW_MAX_BINDS);
            maps->binds[idx][nb++] = v;
            if (!comma)
                break;
            q = comma + 1;
        }
    }
    snprintf(d.name, sizeof(d.name), "map%u", idx);
    maps->defs[idx] = d;
    maps->locks[idx] = lock;
    maps->kptrs[idx] = kptrs;
    maps->n_binds[idx] = nb;
    maps->n = idx + 1;
    return 0;
}

int raw_maps_bind(const struct raw_maps *maps, struct bpf_insn *insns, uint32_t n,
                  struct graft_err *err)
{
    for (uint32_t m = 0; m < maps->n; m++)
        for (uint32_t k = 0; k < maps->n_binds[m]; k++) {
            uint32_t i = maps->binds[m][k];
            if (i + 1 >= n)
                return graft_errf(err, -EINVAL, "--map #%u: instruction %u is past the program's end (%u instructions)",
                                  m, i, n);
            const struct bpf_insn *in = &insns[i];
            int pseudo = in->src_reg == BPF_PSEUDO_MAP_FD || in->src_reg == BPF_PSEUDO_MAP_VALUE ||
                         in->src_reg == BPF_PSEUDO_MAP_IDX || in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE;
            if (in->code != (BPF_LD | BPF_IMM | BPF_DW) || !pseudo)
                return graft_errf(err, -EINVAL,
                                  "--map #%u: instruction %u (code 0x%02x src_reg %u) is not an ld_imm64 map load (src_reg 1 or 2)",
                                  m, i, in->code, in->src_reg);
            insns[i].imm = (int32_t)m;
        }
    return 0;
}

int raw_parse_prog_type(const char *s, int *ktype, char *section, size_t section_len,
                        struct graft_err *err)
{
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    for (int kt = GKT_NONE + 1; kt < GKT_UNKNOWN; kt++) {
        const char *name = gprog_ktype_name((enum gprog_ktype)kt);
        if (strlen(name) != len || strncmp(s, name, len))
            continue;
        *ktype = kt;
        const char *attach = colon ? colon + 1 : "";
        /* gver_policy_kernel_ret reads the attach point after the slash;
         * tracing sections are named by their attach kind */
        if (kt == GKT_TRACING)
            snprintf(section, section_len, "%s", attach);
        else
            snprintf(section, section_len, "%s/%s", name, attach);
        return 0;
    }
    return graft_errf(err, -EINVAL,
                      "unknown program type '%.*s' (socket_filter, kprobe, tracepoint, xdp, sched_cls, "
                      "cgroup_skb, ... as the kernel names them)", (int)len, s);
}

struct gver_policy *raw_kernel_policy(int ktype, const char *section, enum kernel_mode mode,
                                      uint32_t rights, uint64_t insn_budget)
{
    struct gver_policy *policy = gver_policy_for_kernel_type(ktype);
    if (!policy)
        return NULL;
    gver_policy_kernel_ret(policy, ktype, section);
    /* root may use every helper its type has: the host-changing ones too */
    gver_policy_grant(policy, mode == KMODE_PRIVILEGED ? GVER_RIGHTS_HOST_WRITES : rights);
    gver_policy_kernel_helpers(policy, ktype, mode == KMODE_DEFAULT);
    if (mode == KMODE_PRIVILEGED) {
        policy->allow_ptr_leaks = 1;
        policy->allow_uninit_stack = 1;
        policy->spec_bypass = 1;
    }
    policy->insn_budget = insn_budget;
    return policy;
}

/* The kernel type a graft-typed program is verified as under --privileged
 * (a uprobe as a kprobe, ...); a kernel program's own. */
static enum gprog_ktype kernel_type_of(const struct gobj_prog *p)
{
    switch (p->type) {
    case GPROG_KERNEL: return p->ktype;
    case GPROG_UPROBE: case GPROG_URETPROBE: case GPROG_USDT:
    case GPROG_OVERRIDE: case GPROG_REPLACE: return GKT_KPROBE;
    case GPROG_TRACEPOINT: return GKT_TRACEPOINT;
    case GPROG_RAW_TRACEPOINT: return GKT_RAW_TRACEPOINT;
    case GPROG_SOCKET_FILTER: return GKT_SOCKET_FILTER;
    case GPROG_XDP: return GKT_XDP;
    default: return GKT_UNKNOWN;
    }
}

int raw_verify_kernel_prog(const struct gobj *obj, const struct gobj_prog *p, enum kernel_mode mode,
                           int strict_align, uint32_t rights, uint64_t insn_budget, int log_level,
                           struct gver_result *res, struct graft_err *err)
{
    enum gprog_ktype kt = kernel_type_of(p);
    struct gver_policy *policy = raw_kernel_policy(kt, p->section, mode, rights, insn_budget);
    struct gmap_def *defs = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*defs));
    int32_t *locks = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*locks));
    if (!policy || !defs || !locks) {
        free(policy);
        free(defs);
        free(locks);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        defs[i] = obj->maps[i].def;
        locks[i] = obj->maps[i].spin_lock_off;
    }
    /* root may call the kernel's kfuncs graft knows (by the extern's name;
     * the call's imm is the extern's index): offline, never called */
    const struct gver_kernel_kfunc **kk = NULL;
    if (mode == KMODE_PRIVILEGED && obj->n_externs) {
        kk = calloc(obj->n_externs, sizeof(*kk));
        if (!kk) {
            free(policy);
            free(defs);
            free(locks);
            return graft_errf(err, -ENOMEM, "out of memory");
        }
        for (uint32_t i = 0; i < obj->n_externs; i++)
            if (obj->externs[i].kind == GOBJ_EXTERN_KSYM_FUNC)
                kk[i] = gver_kernel_kfunc_find(obj->externs[i].name);
        policy->kernel_kfuncs = kk;
        policy->n_kernel_kfuncs = obj->n_externs;
    }
    policy->strict_align = strict_align;
    for (uint32_t k = 0; k < GVER_KOBJ_MAX; k++)
        policy->kobj_size[k] = gobj_struct_size(obj, gver_kobj_struct_name(k));
    policy->map_fds_unbound = 1;
    /* libbpf freezes .rodata before loading, and the kernel reads a frozen
     * read-only map's bytes as constants (bpf_map_direct_read): so do we */
    const void **frozen = gobj_frozen_values(obj);
    struct gver_input in = { .insns = p->insns, .n = p->n_insns, .maps = defs, .n_maps = obj->n_maps,
                             .map_lock_offs = locks, .policy = policy, .log_level = log_level,
                             .map_frozen = frozen };
    int rc = gver_verify(&in, res, err);
    if (frozen)
        gobj_frozen_free(frozen, obj->n_maps);
    free(kk);
    free(defs);
    free(locks);
    free(policy);
    return rc;
}
