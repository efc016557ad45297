/* violation: observer is not granted g_config_limit */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_global_ungranted(struct eim_regs *ctx) { return g_config_limit; }
