/* compliant (signaller): signals the host process and the calling thread,
 * rights the default policy withholds and the class grants */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int ok_signal(struct eim_regs *ctx)
{
    if (!ctx->di)
        return 0;
    bpf_send_signal(10);
    return bpf_send_signal_thread(12);
}
