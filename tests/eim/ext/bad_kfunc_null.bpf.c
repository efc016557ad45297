/* violation: app_log's msg is non-null (the default), and NULL is passed */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_kfunc_null(struct eim_regs *ctx) { return app_log(0, 0); }
