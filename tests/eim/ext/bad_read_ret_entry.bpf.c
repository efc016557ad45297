/* violation: ax is only open at return (uretprobe), not at entry */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_read_ret_entry(struct eim_regs *ctx) { return (int)ctx->ax; }
