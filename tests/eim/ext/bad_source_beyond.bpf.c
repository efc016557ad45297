/* violation: after_parse has two arguments; there is no third */
#include "eim_ext.h"
SEC("usdt/app:graft:after_parse")
int bad_source_beyond(struct eim_src_args *ctx) { return (int)ctx->args[2]; }
