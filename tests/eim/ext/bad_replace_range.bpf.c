/* violation: a replacement parse_header whose result can reach 1000,
 * outside the declared return range [0, 48] */
#include "eim_ext.h"
SEC("replace/app:parse_header")
int bad_replace_range(struct eim_regs *ctx)
{
    return (int)ctx->si > 3 ? 1000 : 1;
}
