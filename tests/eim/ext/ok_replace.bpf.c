/* compliant (class header_override): a replacement parse_header whose
 * result (r0) is within the declared return range [0, 48] */
#include "eim_ext.h"
SEC("replace/app:parse_header")
int ok_replace(struct eim_regs *ctx)
{
    __u64 len = ctx->si;
    if (len < 48)
        return len;
    return 0;
}
