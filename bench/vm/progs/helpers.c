/* Helper-heavy: a helper call per input word (param[0] u64s). */
#include "prog.h"

PROG(helpers)
{
    const u64 *v = (const u64 *)CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), acc = 0, x = 0;
    for (u64 i = 0; i < n; i++) {
        acc = bench_mix(acc, v[i]);
        x += acc >> 7;
    }
    return acc ^ x;
}
