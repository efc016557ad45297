/* violation: r is closed to class closed_reader; reading its register
 * slot with probe_read_user instead of a load must be refused as well */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_ctx_probe_read(struct eim_regs *ctx)
{
    __u64 r = 0;
    bpf_probe_read_user(&r, sizeof(r), &ctx->di);
    return r != 0;
}
