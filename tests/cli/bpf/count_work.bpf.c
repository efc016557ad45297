/* count_work.bpf.c - counts calls of work() in the e2e target and sums its
 * argument; E2E_TARGET (the target's path) is set at build time. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(on_work, long x)
{
    __u32 k = 0;
    __u64 *calls = bpf_map_lookup_elem(&counts, &k);
    if (calls)
        __sync_fetch_and_add(calls, 1);
    k = 1;
    __u64 *sum = bpf_map_lookup_elem(&counts, &k);
    if (sum)
        __sync_fetch_and_add(sum, x);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
