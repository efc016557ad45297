/* syscount.bpf.c - system calls of one process by number (raw_tracepoint
 * sys_enter, like syscount). */
#include "common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 512);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    if (!is_target())
        return 0;
    __u32 id = (__u32)ctx->args[1];
    __u64 one = 1, *v = bpf_map_lookup_elem(&counts, &id);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&counts, &id, &one, BPF_NOEXIST);
    return 0;
}
