/* maps.bpf.c - BTF-defined maps of several kinds, map-in-map with initial
 * slots, and global data (.data, .rodata, .bss, string literals). */
#include "types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct val { __u64 a; __u32 b; };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct val);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __uint(key_size, 4);
    __uint(value_size, 32);
} arr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, int);
    __type(value, __u64);
    __uint(map_flags, 0);
} pcpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16);
    __type(key, __u64);
    __type(value, __u64);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} lru SEC(".maps");

struct inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u32);
};
struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, struct inner);
} outer SEC(".maps") = {
    .values = { [0] = &inner_a, [2] = &inner_b },
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner);
} outer_hash SEC(".maps");

__u64 counter = 7;                      /* .data */
const volatile __u32 limit = 42;        /* .rodata */
char buf[64];                           /* .bss */

__attribute__((noinline)) int use_str(const char *s)
{
    return s[1];
}

SEC("uprobe/./app:f")
int touch(void *ctx)
{
    __u32 k = 0;
    struct val *v = bpf_map_lookup_elem(&counts, &k);
    if (v)
        v->a++;
    void *in = bpf_map_lookup_elem(&outer, &k);
    if (in)
        bpf_map_lookup_elem(in, &k);
    bpf_map_lookup_elem(&arr, &k);
    bpf_map_lookup_elem(&pcpu, &k);
    bpf_map_lookup_elem(&lru, &k);
    bpf_map_lookup_elem(&outer_hash, &k);
    bpf_ringbuf_output(&events, &k, sizeof(k), 0);
    counter++;
    buf[3] = 1;
    return limit + use_str("xyz");
}
