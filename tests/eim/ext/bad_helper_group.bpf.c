/* violation: trace_printk is in group debug, which observer is not granted */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_helper_group(struct eim_regs *ctx)
{
    char fmt[] = "hi\n";
    return (int)bpf_trace_printk(fmt, sizeof(fmt));
}
