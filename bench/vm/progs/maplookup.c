/* Map-heavy: a hash-map lookup per input byte pair (param[0] lookups in
 * map param[1]), summing the values found and counting misses. */
#include "prog.h"

PROG(maplookup)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), map = CTX_PARAM(ctx, 1), sum = 0, miss = 0;
    for (u64 i = 0; i < n; i++) {
        u32 key = (u32)p[2 * i] | (u32)(p[2 * i + 1] & 7) << 8;
        u64 *val = bench_lookup(map, &key);
        if (val)
            sum += *val;
        else
            miss++;
    }
    return sum ^ miss << 48;
}
