/* compliant (class header_override): skip parse_header for long headers and
 * make it return 9, within the entry's declared return range [0, 48]; the
 * e2e test sees handle_request's results change. Under header_filter (no
 * override grant) the same object is refused. */
#include "eim_ext.h"
SEC("override/app:parse_header")
int ok_override(struct eim_regs *ctx)
{
    if ((int)ctx->si >= 6)
        bpf_override_return((void *)ctx, 9);
    return 0;
}
