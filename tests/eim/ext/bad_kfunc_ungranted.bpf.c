/* violation: observer may not call app_set_level */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_kfunc_ungranted(struct eim_regs *ctx) { app_set_level(1); return 0; }
