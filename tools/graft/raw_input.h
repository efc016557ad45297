/*
 * raw_input.h - what `graft verify --raw` needs besides the instructions:
 * map fixtures bound to the ld_imm64 instructions that load them (as the
 * kernel's test_verifier fixups do), the kernel program type to verify
 * against, and the policy both `graft verify` paths build for a kernel
 * program. The kernel's test_verifier table runner
 * (tests/verifier/test_verifier_61) uses the same code.
 *
 * A map fixture (one --map option each; maps are numbered from 0 in order):
 *
 *   TYPE:KEY:VALUE:ENTRIES[:OPTION...][@INSN[,INSN...]]
 *
 *   TYPE     hash, array, prog_array, perf_event_array, percpu_hash,
 *            percpu_array, stack_trace, lru_hash, lru_percpu_hash, lpm_trie,
 *            array_of_maps, hash_of_maps, sockmap, xskmap, sockhash,
 *            cgroup_storage, reuseport_sockarray, percpu_cgroup_storage,
 *            queue, stack, sk_storage, ringbuf, bloom_filter, ... or the
 *            kernel's number
 *   OPTION   flags=N     map_flags (BPF_F_*: 0x1 no_prealloc, 0x80
 *                        rdonly_prog, 0x100 wronly_prog, ...)
 *            inner=M     map-in-map: the inner maps are like fixture M (an
 *                        earlier --map, which need not be loaded itself)
 *            lock=OFF    the value holds a struct bpf_spin_lock at byte OFF
 *            kptr=OFF, kptr_ref=OFF, percpu_kptr=OFF (repeatable)
 *                        the value holds a kptr of that kind at byte OFF (the
 *                        kernel's BTF type tags; gver_input.map_kptrs)
 *   INSN     an instruction index: an ld_imm64 with src_reg
 *            BPF_PSEUDO_MAP_FD (1) or BPF_PSEUDO_MAP_VALUE (2) whose imm
 *            becomes this map's number
 *
 * e.g. `--map hash:8:48:1@3,9 --map array:4:4:1 --map array_of_maps:4:4:1:inner=1@0`.
 */
#ifndef GRAFT_CLI_RAW_INPUT_H
#define GRAFT_CLI_RAW_INPUT_H

#include <stdint.h>

#include "maps/maps.h"
#include "util/err.h"
#include "verifier/verifier.h"
#include "vm/isa.h"

#define RAW_MAX_MAPS 64
#define RAW_MAX_BINDS 64

struct raw_maps {
    uint32_t n;
    struct gmap_def defs[RAW_MAX_MAPS];
    int32_t locks[RAW_MAX_MAPS];          /* GVER_LOCK_NONE or a byte offset */
    struct gver_map_kptrs kptrs[RAW_MAX_MAPS];
    uint32_t n_binds[RAW_MAX_MAPS];
    uint32_t binds[RAW_MAX_MAPS][RAW_MAX_BINDS];
};

/* Add one fixture (the text of a --map option) to maps. A bad fixture is
 * -EINVAL with err saying what and where ("--map #2 'hash:8': ..."). */
int raw_maps_add(struct raw_maps *maps, const char *spec, struct graft_err *err);
/* Point every bound ld_imm64 of insns at its map's number; an index out of
 * range or not a map load is -EINVAL with err naming it. */
int raw_maps_bind(const struct raw_maps *maps, struct bpf_insn *insns, uint32_t n,
                  struct graft_err *err);

/* A kernel program type for --prog-type: "TYPE[:ATTACH]" with TYPE the
 * kernel's name (socket_filter, sched_cls, xdp, kprobe, cgroup_skb,
 * cgroup_sock_addr, tracing, ...: gprog_ktype_name) and ATTACH the attach
 * point where its return value rule depends on it (cgroup_skb:egress,
 * cgroup_sock_addr:getsockname4, tracing:fentry). section receives the
 * libbpf-style section gver_policy_kernel_ret() reads. */
int raw_parse_prog_type(const char *s, int *ktype, char *section, size_t section_len,
                        struct graft_err *err);

/* Who the kernel's verdict is for. */
enum kernel_mode {
    /* graft's strict policy; the helpers the kernel gives an unprivileged
     * user where it has one (socket filters, cgroup_skb), root's elsewhere */
    KMODE_DEFAULT,
    KMODE_PRIVILEGED,    /* the kernel's rules for root (graft verify --privileged) */
};

/* The policy `graft verify` verifies a kernel program of type ktype in
 * section under: its context, return rule and helper set; rights granted;
 * under KMODE_PRIVILEGED also pointer leaks, uninitialised stack reads and
 * every helper the type gives root. NULL when out of memory or ktype has
 * no context (free with free()). */
struct gver_policy *raw_kernel_policy(int ktype, const char *section, enum kernel_mode mode,
                                      uint32_t rights, uint64_t insn_budget);

/* Verify program p of obj as a kernel program (its kernel type; graft's
 * own types as the kernel type they resemble: a uprobe as a kprobe) under
 * raw_kernel_policy(mode, rights, insn_budget), with the kernel's strict
 * alignment when strict_align (BPF_F_STRICT_ALIGNMENT): graft verify's path
 * for kernel programs and for --privileged. As gver_verify(). */
struct gobj;
struct gobj_prog;
int raw_verify_kernel_prog(const struct gobj *obj, const struct gobj_prog *p, enum kernel_mode mode,
                           int strict_align, uint32_t rights, uint64_t insn_budget, int log_level,
                           struct gver_result *res, struct graft_err *err);

#endif
