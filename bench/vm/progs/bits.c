/* SWAR popcount and branchy floor(log2) of param[0] u64s from the input. */
#include "prog.h"

INLINE u64 popcount(u64 x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (x * 0x0101010101010101ull) >> 56;
}

INLINE u64 log2_floor(u64 x)
{
    u64 r = 0;
    if (x >> 32) { x >>= 32; r += 32; }
    if (x >> 16) { x >>= 16; r += 16; }
    if (x >> 8)  { x >>= 8;  r += 8; }
    if (x >> 4)  { x >>= 4;  r += 4; }
    if (x >> 2)  { x >>= 2;  r += 2; }
    if (x >> 1)  { r += 1; }
    return r;
}

PROG(bits)
{
    const u64 *v = (const u64 *)CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), pc = 0, lg = 0;
    for (int rep = 0; rep < 4; rep++)
        for (u64 i = 0; i < n; i++) {
            u64 x = v[i] >> rep;
            pc += popcount(x);
            lg = lg * 7 + log2_floor(x | 1);
        }
    return pc ^ (lg << 16);
}
