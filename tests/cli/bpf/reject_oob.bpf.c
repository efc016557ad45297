/* reject_oob.bpf.c - must be rejected: reads past the end of a map value. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} vals SEC(".maps");

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(bad_read, long x)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&vals, &k);
    if (!v)
        return 0;
    return (int)v[x & 7];     /* index up to 7 into a 1-element value */
}

char LICENSE[] SEC("license") = "GPL";
