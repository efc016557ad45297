/* usdt.bpf.c - read the arguments of a USDT probe (compat:tick) with
 * libbpf's USDT support (usdt.bpf.h: spec map + bpf_usdt_arg). */
#include <stdbool.h>
#include "common.bpf.h"
#include <bpf/usdt.bpf.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 3);      /* ticks, sum of arg 1, sum of arg 2 */
    __type(key, __u32);
    __type(value, __u64);
} totals SEC(".maps");

static __always_inline void add(__u32 k, __u64 v)
{
    __u64 *p = bpf_map_lookup_elem(&totals, &k);
    if (p)
        __sync_fetch_and_add(p, v);
}

SEC("usdt")
int BPF_USDT(on_tick, long seq, long val)
{
    if (!is_target())
        return 0;
    add(0, 1);
    add(1, seq);
    add(2, val);
    return 0;
}
