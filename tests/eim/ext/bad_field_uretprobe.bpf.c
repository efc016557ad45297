/* violation (field_reader): at the return of handle_request, di is no longer
 * the request: no field is reachable through it */
#include "eim_ext.h"
SEC("uretprobe/app:handle_request")
int bad_field_uretprobe(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    __u64 id = 0;
    bpf_probe_read_user(&id, sizeof(id), &r->id);
    return (int)id;
}
