/* violation (field_reader): r's register is writable, but rewriting it
 * would make the next load a forged host pointer (here: r + 12, so that
 * reading "id" would read the closed flags) */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_rewrite(struct eim_regs *ctx)
{
    ctx->di = ctx->di + 12;
    return 0;
}
