/* core_enum.bpf.c - enum CO-RE relocations, resolvable only against the
 * kernel's BTF (the built-in BTF has no enums: they get poisoned / 0). */
#include "types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

enum bpf_map_type___local { BPF_MAP_TYPE_RINGBUF___local = 99, GRAFT_NOT_AN_ENUMERATOR___local = 98 };

SEC("uprobe/./app:enum_exists")
int enum_exists(void *ctx)
{
    return bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_RINGBUF___local) +
           bpf_core_enum_value_exists(enum bpf_map_type___local, GRAFT_NOT_AN_ENUMERATOR___local) * 2;
}

SEC("uprobe/./app:enum_value")
int enum_value(void *ctx)
{
    return bpf_core_enum_value(enum bpf_map_type___local, BPF_MAP_TYPE_RINGBUF___local);
}
