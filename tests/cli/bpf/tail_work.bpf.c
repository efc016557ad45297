/* tail_work.bpf.c - tail calls through a prog array declared the libbpf way
 * (`.values = { [1] = (void *)&second }`): graft load writes second's id
 * into slot 1, the agent compiles second though no link runs it, and each
 * call of work() goes first -> (slot 0 empty: falls through) -> second. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* tc_counts[0]: first ran; [1]: the tail call to the empty slot fell
 * through; [2]: second ran; [3]: first went on after a tail call that
 * worked (must stay 0); [4]: second saw work()'s argument (sum). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 5);
    __type(key, __u32);
    __type(value, __u64);
} tc_counts SEC(".maps");

static void bump(__u32 k, __u64 by)
{
    __u64 *v = bpf_map_lookup_elem(&tc_counts, &k);
    if (v)
        __sync_fetch_and_add(v, by);
}

int second(struct pt_regs *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, int(struct pt_regs *));
} jumps SEC(".maps") = {
    .values = { [1] = (void *)&second },
};

SEC("uprobe/" E2E_TARGET ":work")
int first(struct pt_regs *ctx)
{
    bump(0, 1);
    bpf_tail_call(ctx, &jumps, 0);
    bump(1, 1);
    bpf_tail_call(ctx, &jumps, 1);
    bump(3, 1);
    return 0;
}

SEC("uprobe")
int second(struct pt_regs *ctx)
{
    bump(2, 1);
    bump(4, PT_REGS_PARM1(ctx));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
