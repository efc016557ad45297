/* noautoload.bpf.c - a program in a '?' section beside a normal one. libbpf
 * loads '?' programs only on request; graft load skips them too, so one the
 * verifier would reject (reads past its map value) blocks nothing. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} na_calls SEC(".maps");

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(na_loaded)
{
    __u32 k = 0;
    __u64 *calls = bpf_map_lookup_elem(&na_calls, &k);
    if (calls)
        __sync_fetch_and_add(calls, 1);
    return 0;
}

SEC("?uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(na_skipped)
{
    __u32 k = 0;
    __u64 *calls = bpf_map_lookup_elem(&na_calls, &k);
    if (calls)
        return (int)calls[2];       /* out of bounds: the verifier rejects it */
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
