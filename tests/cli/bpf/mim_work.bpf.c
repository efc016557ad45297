/* mim_work.bpf.c - a map of maps declared the libbpf way
 * (`.values = { [0] = &inner_even, [1] = &inner_odd }`): graft load writes
 * the inner maps' ids into the outer map, the agent opens the inner maps
 * with the program, and work(x) counts into outer[x & 1]. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} inner_even SEC(".maps"), inner_odd SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner);
} outer SEC(".maps") = {
    .values = { [0] = &inner_even, [1] = &inner_odd },
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} no_inner SEC(".maps");

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(count_by_parity, long x)
{
    __u32 k = 0, slot = x & 1;
    void *in = bpf_map_lookup_elem(&outer, &slot);
    if (!in) {
        __u64 *miss = bpf_map_lookup_elem(&no_inner, &k);
        if (miss)
            __sync_fetch_and_add(miss, 1);
        return 0;
    }
    __u64 *v = bpf_map_lookup_elem(in, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
