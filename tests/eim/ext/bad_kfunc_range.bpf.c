/* violation: app_set_level's pre-condition is level in [0, 7] */
#include "eim_ext.h"
SEC("uprobe/app:parse_header")
int bad_kfunc_range(struct eim_regs *ctx) { app_set_level(9); return 0; }
