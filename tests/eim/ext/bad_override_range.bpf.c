/* violation: the override value 100 is outside parse_header's declared
 * return range [0, 48] */
#include "eim_ext.h"
SEC("override/app:parse_header")
int bad_override_range(struct eim_regs *ctx)
{
    if ((int)ctx->si > 0)
        bpf_override_return((void *)ctx, 100);
    return 0;
}
