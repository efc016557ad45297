/* violation: len 5000 is inside the 8 KiB buffer but outside app_log's
 * declared range [0, 4096] for its size argument */
#include "eim_ext.h"
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, char[8192]);
} bufs SEC(".maps");
SEC("uprobe/app:handle_request")
int bad_log_map_large(struct eim_regs *ctx)
{
    __u32 k = 0;
    char *b = bpf_map_lookup_elem(&bufs, &k);
    if (!b)
        return 0;
    return app_log(b, 5000);
}
