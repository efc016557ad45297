/* compliant: a 16-entry array map (192 bytes) fits mem_budget 4096 */
#include "eim_ext.h"
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");
SEC("uprobe/app:handle_request")
int ok_map_small(struct eim_regs *ctx)
{
    __u32 k = 3;
    __u64 *v = bpf_map_lookup_elem(&counts, &k);
    if (v)
        *v += 1;
    return 0;
}
