/* violation: len masked to [0, 8191] fits the 8 KiB buffer, but may exceed
 * app_log's declared [0, 4096] */
#include "eim_ext.h"
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, char[8192]);
} bufs SEC(".maps");
SEC("uprobe/app:handle_request")
int bad_log_map_unbounded(struct eim_regs *ctx)
{
    __u32 k = 0;
    char *b = bpf_map_lookup_elem(&bufs, &k);
    if (!b)
        return 0;
    __u32 len = *(__u32 *)b & 8191;
    return app_log(b, len);
}
