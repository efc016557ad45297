/* compliant: reads buf only (len is closed), sets a level within [0, 7] */
#include "eim_ext.h"
SEC("uprobe/app:parse_header")
int ok_header(struct eim_regs *ctx)
{
    __u64 buf = ctx->di;
    app_set_level(buf & 1 ? 7 : 0);
    return 0;
}
