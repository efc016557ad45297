/* violation: observer has g_requests read-only */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_global_write_ro(struct eim_regs *ctx) { g_requests = 0; return 0; }
