/* tail_mixed.bpf.c - a uprobe program that tail-calls through a prog array
 * whose declared slot holds a socket filter: verified for a 4096-byte
 * context, it would read past the uprobe's 168-byte pt_regs into the
 * host's stack. graft load must refuse to put them in one prog array. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

int deep_reader(void *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, int(void *));
} mixed SEC(".maps") = {
    .values = { [0] = (void *)&deep_reader },
};

SEC("uprobe/" E2E_TARGET ":work")
int dispatch(struct pt_regs *ctx)
{
    bpf_tail_call(ctx, &mixed, 0);
    return 0;
}

SEC("socket")
int deep_reader(void *ctx)
{
    return *(volatile __u32 *)(ctx + 4000);
}

char LICENSE[] SEC("license") = "GPL";
