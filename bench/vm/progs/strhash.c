/* FNV-1a, djb2 and a murmur-style mix over NUL-separated strings in the
 * input (param[0] bytes). */
#include "prog.h"

PROG(strhash)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), total = 0;
    u64 fnv = 0xcbf29ce484222325ull, djb = 5381;
    for (u64 i = 0; i < n; i++) {
        u8 c = p[i];
        if (c == 0) {
            u64 h = fnv ^ (djb << 17);
            h ^= h >> 33;
            h *= 0xff51afd7ed558ccdull;
            h ^= h >> 33;
            total += h;
            fnv = 0xcbf29ce484222325ull;
            djb = 5381;
            continue;
        }
        fnv = (fnv ^ c) * 0x100000001b3ull;
        djb = djb * 33 + c;
    }
    return total ^ fnv ^ djb;
}
