/* compliant: a length from the host, masked so the verifier can bound it */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int ok_log_bounded(struct eim_regs *ctx)
{
    char msg[64] = {};
    int len = (ctx->di & 63) + 1;
    return app_log(msg, len);
}
