/* compliant: the counter class may write g_requests and read g_config_limit */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int ok_counter(struct eim_regs *ctx)
{
    if (g_requests < (__u64)g_config_limit)
        g_requests += 1;
    return 0;
}
