/* violation (field_reader): an offset the verifier cannot pin down (path is
 * readable, but which byte of the struct r->path + i reaches is unknown) */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_var_off(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    __u32 i = 0;
    char c = 0;
    bpf_probe_read_user(&i, sizeof(i), &r->len);
    bpf_probe_read_user(&c, 1, r->path + (i & 31));
    return c;
}
