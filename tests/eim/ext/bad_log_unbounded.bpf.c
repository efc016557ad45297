/* violation: app_log's len comes from the host unbounded */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_log_unbounded(struct eim_regs *ctx)
{
    char msg[64] = {};
    return app_log(msg, (int)ctx->di);
}
