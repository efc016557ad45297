/* violation: g_config_limit is declared read-only; counter may read it only */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_global_ro_decl(struct eim_regs *ctx) { g_config_limit = 5; return 0; }
