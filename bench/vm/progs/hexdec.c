/* String decoding: hex digit pairs in text (param[0] bytes) turned into
 * bytes and summed; other characters skipped. */
#include "prog.h"

INLINE int nibble(u8 c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

PROG(hexdec)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), sum = 0, count = 0;
    int hi = -1;
    for (u64 i = 0; i < n; i++) {
        int v = nibble(p[i]);
        if (v < 0) {
            hi = -1;
            continue;
        }
        if (hi < 0) {
            hi = v;
        } else {
            sum = sum * 31 + (u64)(hi << 4 | v);
            count++;
            hi = -1;
        }
    }
    return sum ^ count << 56;
}
