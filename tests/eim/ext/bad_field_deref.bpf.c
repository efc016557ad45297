/* violation (field_reader): a direct load through the host pointer */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_deref(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    return (int)r->id;
}
