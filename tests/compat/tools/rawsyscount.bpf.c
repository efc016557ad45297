/* rawsyscount.bpf.c - a process's system calls by number, entries and exits
 * (tracepoints raw_syscalls/sys_enter and sys_exit, like Debian's syscount
 * and bpftrace), failed exits, and fstat calls by the tracepoint the kernel
 * names after the implementation (syscalls/sys_enter_newfstat). */
#include "common.bpf.h"

struct counts { __u64 enter, exit, failed; };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 512);
    __type(key, __u32);
    __type(value, struct counts);
} by_id SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} newfstat_calls SEC(".maps");

static __always_inline struct counts *slot(long id)
{
    __u32 k = (__u32)id;
    struct counts zero = {}, *c = bpf_map_lookup_elem(&by_id, &k);
    if (c)
        return c;
    bpf_map_update_elem(&by_id, &k, &zero, BPF_NOEXIST);
    return bpf_map_lookup_elem(&by_id, &k);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(struct sys_enter_rec *ctx)
{
    if (!is_target())
        return 0;
    struct counts *c = slot(ctx->id);
    if (c)
        __sync_fetch_and_add(&c->enter, 1);
    return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int on_exit(struct sys_exit_rec *ctx)
{
    if (!is_target())
        return 0;
    struct counts *c = slot(ctx->id);
    if (!c)
        return 0;
    __sync_fetch_and_add(&c->exit, 1);
    if (ctx->ret < 0)
        __sync_fetch_and_add(&c->failed, 1);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_newfstat")
int on_newfstat(struct sys_enter_rec *ctx)
{
    if (!is_target())
        return 0;
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&newfstat_calls, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}
