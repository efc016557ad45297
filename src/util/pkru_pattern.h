/*
 * pkru_pattern.h - the byte patterns of the x86 instructions that can change
 * PKRU: WRPKRU (0f 01 ef), XRSTOR (0f ae /5) and XRSTORS (0f c7 /3), the
 * latter two with a memory operand. A REX or other prefix before the 0f only
 * changes the operand size, and a jump to the 0f executes the instruction
 * anyway, so the pattern starts at the 0f byte and every occurrence counts,
 * on an instruction boundary or not (ERIM's rule).
 *
 * One definition for the isolation scanner (src/isolation), which reports
 * them in the process, and the JIT (src/vm), which never emits them.
 */
#ifndef GRAFT_UTIL_PKRU_PATTERN_H
#define GRAFT_UTIL_PKRU_PATTERN_H

#include <stddef.h>
#include <stdint.h>

enum gpkru_insn {
    GPKRU_NONE = 0,
    GPKRU_WRPKRU = 1,
    GPKRU_XRSTOR = 2,
    GPKRU_XRSTORS = 3,
};

/* Which pattern starts at c (avail bytes readable), or GPKRU_NONE. */
static inline enum gpkru_insn gpkru_pattern_at(const uint8_t *c, size_t avail)
{
    if (avail < 3 || c[0] != 0x0f)
        return GPKRU_NONE;
    uint8_t m = c[2], mod = m >> 6, reg = (m >> 3) & 7;
    if (c[1] == 0x01 && m == 0xef)
        return GPKRU_WRPKRU;
    if (c[1] == 0xae && mod != 3 && reg == 5)
        return GPKRU_XRSTOR;
    if (c[1] == 0xc7 && mod != 3 && reg == 3)
        return GPKRU_XRSTORS;
    return GPKRU_NONE;
}

/* Offset of the first pattern starting in code[from, len), or len. */
size_t gpkru_find(const uint8_t *code, size_t len, size_t from);

#endif
