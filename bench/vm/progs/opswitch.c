/* Switch-heavy: a small accumulator machine whose opcodes are the input
 * bytes (param[0] of them), twelve cases dispatched per byte. */
#include "prog.h"

PROG(opswitch)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), acc = 1, x = 0, y = 7;
    for (u64 i = 0; i < n; i++) {
        u8 b = p[i];
        switch (b % 12) {
        case 0:  acc += b; break;
        case 1:  acc ^= x; break;
        case 2:  x = acc; break;
        case 3:  y += x >> 3; break;
        case 4:  acc = acc * 5 + 1; break;
        case 5:  x ^= y << 1; break;
        case 6:  acc -= y; break;
        case 7:  y = (y >> 1) | (acc << 63); break;
        case 8:  if (acc & 1) x++; break;
        case 9:  acc = (acc << 5) | (acc >> 59); break;
        case 10: x += b; y -= b; break;
        default: acc |= b; break;
        }
    }
    return acc ^ x ^ (y << 1);
}
