/* violation: 10000 iterations against observer's insn_budget of 1000 */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_insn_budget(struct eim_regs *ctx)
{
    __u64 acc = ctx->di;
#pragma nounroll
    for (int i = 0; i < 10000; i++) {
        acc = acc * 31 + i;
        asm volatile("" : "+r"(acc));
    }
    return (int)acc;
}
