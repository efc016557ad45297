/* facts_work.bpf.c - a program whose result rests on instructions the
 * verifier's facts rewrite in the agent's JIT: its multiplier and shift
 * come from frozen .rodata (constants to the verifier, registers to the
 * compiler), so `mul r, r` and `rsh r, r` become their immediate forms, and
 * the branch on `enabled` is decided. The e2e test compares the sums with
 * the facts used and with GRAFT_JIT_FACTS=0. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u64 mul = 40503;
const volatile __u64 shift = 7;
const volatile int enabled = 1;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} facts_out SEC(".maps");

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(facts_work, long x)
{
    __u64 v = (__u64)x * mul;
    v ^= v >> shift;
    __u32 k = enabled ? 0 : 1;
    __u64 *sum = bpf_map_lookup_elem(&facts_out, &k);
    if (sum)
        __sync_fetch_and_add(sum, v);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
