/* tailcalls.bpf.c - a dispatcher that tail-calls through a prog array
 * declared with initial values (libbpf fills the slots with prog fds at
 * load): compat_work_fn(n) goes to on_even or on_odd by n's parity; slot 2
 * stays empty, so the call to it falls through. */
#include "common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 5);      /* dispatched, fell through, even, odd, sum of odd n */
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 k, __u64 by)
{
    __u64 *v = bpf_map_lookup_elem(&counts, &k);
    if (v)
        __sync_fetch_and_add(v, by);
}

int on_even(struct pt_regs *ctx);
int on_odd(struct pt_regs *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 3);
    __type(key, __u32);
    __array(values, int(struct pt_regs *));
} by_parity SEC(".maps") = {
    .values = { [0] = (void *)&on_even, [1] = (void *)&on_odd },
};

SEC("uprobe/" WORK_PATH ":compat_work_fn")
int BPF_KPROBE(dispatch, unsigned long n)
{
    if (!is_target())
        return 0;
    add(0, 1);
    bpf_tail_call(ctx, &by_parity, 2);
    add(1, 1);
    bpf_tail_call(ctx, &by_parity, n & 1);
    return 0;
}

SEC("uprobe")
int on_even(struct pt_regs *ctx)
{
    add(2, 1);
    return 0;
}

SEC("uprobe")
int on_odd(struct pt_regs *ctx)
{
    add(3, 1);
    add(4, PT_REGS_PARM1(ctx));
    return 0;
}
