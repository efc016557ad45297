/*
 * jit_divconst.c - multipliers for division by a constant, unsigned and
 * signed.
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

/* Signed: the smallest shift p >= bits for which the rounded-up multiplier
 * 2^p / |d| errs by less than what the largest dividends tolerate (the
 * search of Hacker's Delight, figure 10-1), in bits-wide unsigned
 * arithmetic. */
void gvm_sdiv_magic(int64_t d, int bits, struct gvm_sdiv_magic *m)
{
    uint64_t mask = bits == 32 ? 0xffffffffull : ~0ull;
    uint64_t top = 1ull << (bits - 1);
    uint64_t ad = (uint64_t)(d < 0 ? -d : d) & mask;
    uint64_t t = top + ((uint64_t)d >> 63);
    uint64_t anc = t - 1 - t % ad;
    uint64_t q1 = top / anc, r1 = top - q1 * anc;
    uint64_t q2 = top / ad, r2 = top - q2 * ad, delta;
    int p = bits - 1;
    do {
        p++;
        q1 = (2 * q1) & mask;
        r1 = (2 * r1) & mask;
        if (r1 >= anc) {
            q1 = (q1 + 1) & mask;
            r1 = (r1 - anc) & mask;
        }
        q2 = (2 * q2) & mask;
        r2 = (2 * r2) & mask;
        if (r2 >= ad) {
            q2 = (q2 + 1) & mask;
            r2 = (r2 - ad) & mask;
        }
        delta = (ad - r2) & mask;
    } while (q1 < delta || (q1 == delta && r1 == 0));
    uint64_t mag = (q2 + 1) & mask;
    if (d < 0)
        mag = (0 - mag) & mask;
    m->magic = bits == 32 ? (int64_t)(int32_t)(uint32_t)mag : (int64_t)mag;
    m->shift = (uint8_t)(p - bits);
}
