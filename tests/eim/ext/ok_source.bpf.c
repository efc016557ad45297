/* compliant: the GRAFT_ENTRY site after_parse; n is readable, r closed */
#include "eim_ext.h"
SEC("usdt/app:graft:after_parse")
int ok_source(struct eim_src_args *ctx)
{
    return (int)ctx->args[1];
}
