/* violation: a level from the host that the verifier cannot bound */
#include "eim_ext.h"
SEC("uprobe/app:parse_header")
int bad_kfunc_unbounded(struct eim_regs *ctx) { app_set_level((int)ctx->di); return 0; }
