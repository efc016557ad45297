/* violation (field_reader): an address that is a number, not the argument
 * (here the id field's value), could reach any field or any memory */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_forged(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    __u64 id = 0, x = 0;
    bpf_probe_read_user(&id, sizeof(id), &r->id);
    bpf_probe_read_user(&x, sizeof(x), (void *)(id + 12));
    return (int)x;
}
