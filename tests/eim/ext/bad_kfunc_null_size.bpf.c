/* violation: a buffer passed for app_tag's nullable tag must still hold
 * the declared size: 4 bytes of stack, 8 claimed */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_kfunc_null_size(struct eim_regs *ctx)
{
    char tag[4] = "abc";
    return app_tag(tag, 8);
}
