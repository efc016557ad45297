/* violation (field_reader): trace_printk's %s would read host memory at any
 * address, past the field rights; with field rights it is refused */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_field_printk(struct eim_regs *ctx)
{
    char fmt[] = "path %s\n";
    bpf_trace_printk(fmt, sizeof(fmt), ctx->di + 16);
    return 0;
}
