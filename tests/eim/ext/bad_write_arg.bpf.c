/* violation: observer may read r (di) but not write it */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_write_arg(struct eim_regs *ctx) { ctx->di = 0; return 0; }
