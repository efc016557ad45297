/* compliant: at return, the return value (ax) is readable */
#include "eim_ext.h"
SEC("uretprobe/app:handle_request")
int ok_uretprobe(struct eim_regs *ctx)
{
    return (int)ctx->ax;
}
