/* spinlock2.bpf.c - a map value with two struct bpf_spin_lock: the kernel
 * allows at most one per value, and so does the loader. */
#include "types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct bpf_spin_lock { __u32 val; };

struct two_locks {
    struct bpf_spin_lock a;
    __u32 x;
    struct bpf_spin_lock b[1];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct two_locks);
} twice SEC(".maps");

SEC("uprobe/./app:f")
int touch(void *ctx)
{
    __u32 k = 0;
    return bpf_map_lookup_elem(&twice, &k) != 0;
}
