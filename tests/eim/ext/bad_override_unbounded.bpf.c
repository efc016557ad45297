/* violation: the override value is the caller's len, which nothing bounds
 * to parse_header's declared return range [0, 48] */
#include "eim_ext.h"
SEC("override/app:parse_header")
int bad_override_unbounded(struct eim_regs *ctx)
{
    bpf_override_return((void *)ctx, ctx->si);
    return 0;
}
