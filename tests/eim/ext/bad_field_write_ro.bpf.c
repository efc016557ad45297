/* violation (field_reader): id is granted read, not write */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_write_ro(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    __u64 id = 42;
    bpf_probe_write_user(&r->id, &id, sizeof(id));
    return 0;
}
