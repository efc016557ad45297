/* violation: registers other than the arguments are closed (ip) */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_read_ip(struct eim_regs *ctx) { return (int)ctx->ip; }
