/* violation: header_filter closes len (si) */
#include "eim_ext.h"
SEC("uprobe/app:parse_header")
int bad_read_closed(struct eim_regs *ctx) { return (int)ctx->si; }
