/* compliant: app_log's len at the top of its declared range [0, 4096],
 * from an 8 KiB map value (the buffer alone would allow 8192) */
#include "eim_ext.h"
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, char[8192]);
} bufs SEC(".maps");
SEC("uprobe/app:handle_request")
int ok_log_map(struct eim_regs *ctx)
{
    __u32 k = 0;
    char *b = bpf_map_lookup_elem(&bufs, &k);
    if (!b)
        return 0;
    return app_log(b, 4096);
}
