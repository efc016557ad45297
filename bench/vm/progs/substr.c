/* String search: occurrences of three needles in text (param[0] bytes),
 * naive compare at every position. */
#include "prog.h"

INLINE u64 count_at(const u8 *p, u64 n, u64 i, const u8 *needle, u64 len)
{
    if (i + len > n)
        return 0;
    for (u64 k = 0; k < len; k++)
        if (p[i + k] != needle[k])
            return 0;
    return 1;
}

PROG(substr)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), a = 0, b = 0, c = 0;
    u8 n1[4] = { 'f', 'o', 'o', 0 }, n2[4] = { '0', 'x', '1', 'f' }, n3[4] = { '/', '/', 0, 0 };
    for (u64 i = 0; i < n; i++) {
        a += count_at(p, n, i, n1, 3);
        b += count_at(p, n, i, n2, 4);
        c += count_at(p, n, i, n3, 2);
    }
    return a | b << 20 | c << 40;
}
