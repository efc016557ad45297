/* e2e (class observer): at handle_request, log through the host's app_log
 * and record what the host's g_requests was, in a map the test reads. */
#include "../ext/eim_ext.h"

struct obs {
    __u64 calls;               /* handler runs */
    __u64 last_requests;       /* g_requests as the last run saw it */
    __u64 log_ret;             /* sum of app_log's results */
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct obs);
} e2e_obs SEC(".maps");

SEC("uprobe/app:handle_request")
int e2e_log(struct eim_regs *ctx)
{
    char msg[8] = "ext-log\n";
    __u32 key = 0;
    int n = app_log(msg, sizeof(msg));
    struct obs *o = bpf_map_lookup_elem(&e2e_obs, &key);
    if (!o)
        return 0;
    o->calls++;
    o->last_requests = g_requests;
    o->log_ret += n;
    return 0;
}
