/* Fibonacci numbers mod 2^64 and their running sum, param[0] steps. */
#include "prog.h"

PROG(fib)
{
    u64 n = CTX_PARAM(ctx, 0), a = CTX_PARAM(ctx, 1), b = CTX_PARAM(ctx, 2), sum = 0;
    for (u64 i = 0; i < n; i++) {
        u64 t = a + b;
        a = b;
        b = t;
        sum ^= t + i;
    }
    return sum + a;
}
