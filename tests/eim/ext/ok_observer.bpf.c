/* compliant: reads its argument, logs through app_log, reads g_requests */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int ok_observer(struct eim_regs *ctx)
{
    char msg[16] = "request seen\n";
    __u64 r = ctx->di;
    __u64 t = bpf_ktime_get_ns();
    int n = app_log(msg, sizeof(msg));
    return (int)(g_requests + r + t + n);
}
