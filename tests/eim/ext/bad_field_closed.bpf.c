/* violation (field_reader): flags is closed ("flags: none") */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_closed(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    __u32 flags = 0;
    bpf_probe_read_user(&flags, sizeof(flags), &r->flags);
    return flags & 1;
}
