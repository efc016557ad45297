/* violation: source_probe closes r */
#include "eim_ext.h"
SEC("usdt/app:graft:after_parse")
int bad_source_closed(struct eim_src_args *ctx) { return (int)ctx->args[0]; }
