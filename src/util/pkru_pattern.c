/*
 * pkru_pattern.c - find WRPKRU/XRSTOR/XRSTORS byte patterns (pkru_pattern.h).
 */
#include <string.h>

#include "util/pkru_pattern.h"

size_t gpkru_find(const uint8_t *code, size_t len, size_t from)
{
    while (from < len) {
        const uint8_t *p = memchr(code + from, 0x0f, len - from);
        if (!p)
            return len;
        from = (size_t)(p - code);
        if (gpkru_pattern_at(p, len - from) != GPKRU_NONE)
            return from;
        from++;
    }
    return len;
}
