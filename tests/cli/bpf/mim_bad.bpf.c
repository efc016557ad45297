/* mim_bad.bpf.c - a map of maps whose declared contents name a map smaller
 * than its inner-map template (4-byte values where the template, which the
 * verifier bounds accesses by, has 64): graft load must refuse it. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u8[64]);
} inner_ok SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} inner_small SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner);
} outer_bad SEC(".maps") = {
    .values = { [0] = &inner_ok, [1] = (void *)&inner_small },
};

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(write_last_byte, long x)
{
    __u32 k = 0, slot = x & 1;
    void *in = bpf_map_lookup_elem(&outer_bad, &slot);
    if (!in)
        return 0;
    __u8 *v = bpf_map_lookup_elem(in, &k);
    if (v)
        v[63] = 1;    /* in bounds of the template; past a 4-byte value */
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
