/* String parsing: decimal numbers in text (param[0] bytes), each reduced
 * modulo a table size as a hash-bucket index, plus a word count. */
#include "prog.h"

PROG(parse)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0), sum = 0, words = 0, v = 0;
    int in_num = 0, in_word = 0;
    for (u64 i = 0; i < n; i++) {
        u8 c = p[i];
        if (c >= '0' && c <= '9') {
            v = v * 10 + (c - '0');
            in_num = 1;
            continue;
        }
        if (in_num) {
            sum += v % 1100 + (u32)v / 7;
            v = 0;
            in_num = 0;
        }
        int alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        if (alpha && !in_word)
            words++;
        in_word = alpha;
    }
    return sum ^ words << 40;
}
