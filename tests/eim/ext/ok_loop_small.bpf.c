/* compliant: a loop of 10 iterations stays within insn_budget 1000 */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int ok_loop_small(struct eim_regs *ctx)
{
    __u64 acc = ctx->di;
#pragma nounroll
    for (int i = 0; i < 10; i++) {
        acc = acc * 31 + i;
        asm volatile("" : "+r"(acc));
    }
    return (int)acc;
}
