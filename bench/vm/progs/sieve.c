/* Sieve of Eratosthenes over n = param[0] flags in the scratch area. */
#include "prog.h"

PROG(sieve)
{
    u8 *flags = CTX_SCRATCH(ctx);
    u64 n = CTX_PARAM(ctx, 0), count = 0;
    for (u64 i = 0; i < n; i++)
        flags[i] = 1;
    for (u64 i = 2; i * i < n; i++)
        if (flags[i])
            for (u64 k = i * i; k < n; k += i)
                flags[k] = 0;
    for (u64 i = 2; i < n; i++)
        count += flags[i];
    return count;
}
