/* violation: app_secret is not a capability of the host at all */
#include "eim_ext.h"
extern int app_secret(void) __ksym;
SEC("uprobe/app:handle_request")
int bad_kfunc_undeclared(struct eim_regs *ctx) { return app_secret(); }
