/* compliant: app_tag's tag is declared nonnull: false, so NULL is a valid
 * argument, and so is a readable buffer of the declared size */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int ok_nullable(struct eim_regs *ctx)
{
    char tag[4] = "abc";
    return app_tag(0, 0) + app_tag(tag, sizeof(tag));
}
