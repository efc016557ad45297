/* Bubble sort a copy of param[0] u32s from the input; checksum the result. */
#include "prog.h"

PROG(bsort)
{
    const u32 *in = (const u32 *)CTX_DATA(ctx);
    u32 *a = (u32 *)CTX_SCRATCH(ctx);
    u64 n = CTX_PARAM(ctx, 0), sum = 0;
    for (u64 i = 0; i < n; i++)
        a[i] = in[i];
    for (u64 i = 0; i + 1 < n; i++) {
        int swapped = 0;
        for (u64 k = 0; k + 1 < n - i; k++) {
            u32 x = a[k], y = a[k + 1];
            if (x > y) {
                a[k] = y;
                a[k + 1] = x;
                swapped = 1;
            }
        }
        if (!swapped)
            break;
    }
    for (u64 i = 0; i < n; i++)
        sum = sum * 3 + a[i];
    return sum;
}
