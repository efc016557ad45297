/* violation: a 1024 x 64-byte hash map (~70 KB) against mem_budget 4096 */
#include "eim_ext.h"
struct val { char b[64]; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct val);
} big SEC(".maps");
SEC("uprobe/app:handle_request")
int bad_mem_budget(struct eim_regs *ctx)
{
    __u32 k = 1;
    return bpf_map_lookup_elem(&big, &k) != 0;
}
