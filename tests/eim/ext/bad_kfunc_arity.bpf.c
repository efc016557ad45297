/* violation: the extension's prototype of app_log (3 arguments) disagrees
 * with the spec (2) */
#define app_log app_log_2args
#include "eim_ext.h"
#undef app_log
extern int app_log(const char *msg, int len, int extra) __ksym;
SEC("uprobe/app:handle_request")
int bad_kfunc_arity(struct eim_regs *ctx)
{
    char msg[8] = "x";
    return app_log(msg, 1, 2);
}
