/* legacy.bpf.c - legacy map definitions in SEC("maps") (struct bpf_map_def,
 * as in pre-BTF libbpf and iproute2 objects); no -g needed. */
#include "types.h"
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
    unsigned int type;
    unsigned int key_size;
    unsigned int value_size;
    unsigned int max_entries;
    unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_hash = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 128,
};
struct bpf_map_def SEC("maps") legacy_arr = {
    .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 16, .max_entries = 2, .map_flags = 0,
};

char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int filter(void *ctx)
{
    __u32 k = 1;
    __u64 *v = bpf_map_lookup_elem(&legacy_hash, &k);
    bpf_map_lookup_elem(&legacy_arr, &k);
    return v ? *v : 0;
}
