/* violation (field_reader): 8 bytes from &r->len run into the closed flags */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_span(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    __u64 both = 0;
    bpf_probe_read_user(&both, sizeof(both), &r->len);
    return (int)both;
}
