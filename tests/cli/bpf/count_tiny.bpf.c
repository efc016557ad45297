/* count_tiny.bpf.c - counts calls of tiny() in the e2e target, a function
 * too short for graft's jump: the hook is an int3 and must still count
 * every call. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} tiny_calls SEC(".maps");

SEC("uprobe/" E2E_TARGET ":tiny")
int BPF_KPROBE(on_tiny)
{
    __u32 k = 0;
    __u64 *calls = bpf_map_lookup_elem(&tiny_calls, &k);
    if (calls)
        __sync_fetch_and_add(calls, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
