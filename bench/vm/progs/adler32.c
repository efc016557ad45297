/* Adler-32 checksum of param[0] input bytes, reducing modulo 65521 each
 * byte (the textbook form). */
#include "prog.h"

PROG(adler32)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0);
    u32 a = 1, b = 0;
    for (int pass = 0; pass < 2; pass++)
        for (u64 i = 0; i < n; i++) {
            a = (a + p[i]) % 65521;
            b = (b + a) % 65521;
        }
    return (u64)b << 16 | a;
}
