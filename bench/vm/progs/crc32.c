/* Bitwise CRC-32 (reflected, poly 0xEDB88320) of param[0] input bytes. */
#include "prog.h"

PROG(crc32)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0);
    u32 crc = 0xffffffff;
    for (u64 i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}
