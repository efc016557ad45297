/* violation: handle_request has one argument; dx is not one */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_read_nonarg(struct eim_regs *ctx) { return (int)ctx->dx; }
