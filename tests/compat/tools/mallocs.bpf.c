/* mallocs.bpf.c - count libc malloc() calls of one process by size. */
#include "common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, __u64);
} sizes SEC(".maps");

SEC("uprobe/" LIBC_PATH ":malloc")
int BPF_KPROBE(on_malloc, unsigned long size)
{
    if (!is_target())
        return 0;
    __u64 key = size, one = 1, *v = bpf_map_lookup_elem(&sizes, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&sizes, &key, &one, BPF_NOEXIST);
    return 0;
}
