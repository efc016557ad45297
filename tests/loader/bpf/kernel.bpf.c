/* kernel.bpf.c - kernel program types and old-style objects next to graft
 * ones: every program loads with gobj_opts.keep_broken_progs (and the
 * kernel sections also without it), each gets its own type, and one that
 * cannot be linked (an unresolved memset) fails alone. */
#include "types.h"
#include <bpf/bpf_helpers.h>

/* iproute2's struct bpf_elf_map: fields past map_flags */
struct bpf_elf_map {
    unsigned int type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx;
};
struct bpf_elf_map SEC("maps") elf_counts = {
    .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8, .max_elem = 4, .pinning = 2,
};

char LICENSE[] SEC("license") = "GPL";

SEC("?socket")
int no_autoload(void *ctx) { return 1; }

SEC("tracepoint")
int bare_tp(void *ctx) { return 2; }

SEC("raw_tp")
int bare_raw_tp(void *ctx) { return 3; }

SEC("tracepoint/sched/sched_switch")
int sched_tp(void *ctx) { return 4; }

SEC("kprobe/do_sys_openat2")
int kp(void *ctx) { return 5; }

SEC("tc")
int cls(void *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&elf_counts, &k);
    return v ? 0 : 6;
}

SEC("xdp_prog")
int old_xdp(void *ctx) { return 7; }

/* the kernel's return rules: ingress 0-1, egress 0-3 */
SEC("cgroup_skb/ingress")
int cg(void *ctx) { return 1; }

SEC("cgroup_skb/egress")
int cg_egress(void *ctx) { return 3; }

SEC("cgroup_skb/ingress")
int cg_bad_ret(void *ctx) { return 2; }

SEC("tracepoint/syscalls/sys_enter_openat")
int graft_tp(void *ctx) { return 9; }

/* not a __ksym: nothing can resolve it */
extern int missing_global;

SEC("socket/unresolved")
int unresolved(void *ctx) { return missing_global; }

/* returns its context pointer: refused by graft's rules and the kernel's
 * unprivileged ones, accepted by the kernel's for root (--privileged) */
SEC("kprobe/do_nanosleep")
long leaks_ctx(void *ctx) { return (long)ctx; }
