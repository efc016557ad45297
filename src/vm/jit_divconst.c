/*
 * jit_divconst.c - multipliers for unsigned division by a constant.
 *
 * For d with 2^L < d < 2^(L+1) (L = floor(log2 d)), m = floor(2^(N+L) / d)+1
 * works as an N-bit multiplier with shift L when its rounding error
 * e = d - 2^(N+L) mod d is below 2^L; otherwise the (N+1)-bit multiplier
 * for shift L+1 always works, and its top bit is applied by the `add` form
 * (x - q) / 2 + q, which cannot overflow. See jit_opt.h for how the JIT
 * evaluates it; test_jit_opt.c checks it against the division operator.
 */
#include "vm/jit_opt.h"

void gvm_udiv_magic(uint64_t d, int bits, struct gvm_udiv_magic *m)
{
    int l = 63 - __builtin_clzll(d);
    if (bits == 32) {
        uint64_t num = 1ull << (32 + l);
        uint32_t pm = (uint32_t)(num / d), rem = (uint32_t)(num % d);
        uint32_t e = (uint32_t)d - rem;
        if (e < (1u << l)) {
            m->add = false;
        } else {
            uint32_t twice = rem + rem;
            pm += pm;
            if (twice >= (uint32_t)d || twice < rem)
                pm += 1;
            m->add = true;
        }
        m->magic = (uint32_t)(pm + 1);
        m->shift = (uint8_t)l;
        return;
    }
    unsigned __int128 num = (unsigned __int128)1 << (64 + l);
    uint64_t pm = (uint64_t)(num / d), rem = (uint64_t)(num % d);
    uint64_t e = d - rem;
    if (e < (1ull << l)) {
        m->add = false;
    } else {
        uint64_t twice = rem + rem;
        pm += pm;
        if (twice >= d || twice < rem)
            pm += 1;
        m->add = true;
    }
    m->magic = pm + 1;
    m->shift = (uint8_t)l;
}
