/* Copy param[0] bytes of input into scratch 8 then 1 byte at a time, a few
 * passes, and checksum the copy. */
#include "prog.h"

PROG(memcpy)
{
    const u8 *src = CTX_DATA(ctx);
    u8 *dst = CTX_SCRATCH(ctx);
    u64 n = CTX_PARAM(ctx, 0), sum = 0;
    for (int pass = 0; pass < 4; pass++) {
        u64 i = 0;
        for (; i + 8 <= n; i += 8)
            *(u64 *)(dst + i) = *(const u64 *)(src + i) + (u64)pass;
        for (; i < n; i++)
            dst[i] = src[i];
        sum += *(const u64 *)(dst + (pass * 64));
    }
    for (u64 i = 0; i + 8 <= n; i += 64)
        sum = sum * 31 + *(const u64 *)(dst + i);
    return sum;
}
