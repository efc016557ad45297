/*
 * scalar.c - abstract arithmetic on scalars: tristate numbers (tnums) and
 * signed/unsigned 64/32-bit ranges.
 *
 * Invariant (soundness): if x is a concrete value described by the inputs,
 * the result of an operation describes op(x). Every function here may lose
 * precision (fall back to "unknown") but never excludes a possible value.
 * scalar_sync() only intersects facts, so it only ever tightens.
 */
#include <inttypes.h>
#include <stdio.h>

#include "verifier/vinternal.h"
#include "vm/isa.h"

#define U32_MAXV 0xffffffffull
#define HI32 0xffffffff00000000ull

/* ---- tnums ------------------------------------------------------------ */

struct tnum tnum_range(uint64_t min, uint64_t max)
{
    uint64_t chi = min ^ max;
    if (min > max)
        return TNUM_UNKNOWN;
    if (chi == 0)
        return tnum_const(min);
    unsigned bits = 64 - (unsigned)__builtin_clzll(chi);
    if (bits > 63)
        return TNUM_UNKNOWN;
    uint64_t delta = (1ull << bits) - 1;
    return (struct tnum){ min & ~delta, delta };
}

struct tnum tnum_add(struct tnum a, struct tnum b)
{
    uint64_t sm = a.mask + b.mask, sv = a.value + b.value;
    uint64_t sigma = sm + sv, chi = sigma ^ sv;
    uint64_t mu = chi | a.mask | b.mask;
    return (struct tnum){ sv & ~mu, mu };
}

struct tnum tnum_sub(struct tnum a, struct tnum b)
{
    uint64_t dv = a.value - b.value;
    uint64_t alpha = dv + a.mask, beta = dv - b.mask;
    uint64_t mu = (alpha ^ beta) | a.mask | b.mask;
    return (struct tnum){ dv & ~mu, mu };
}

struct tnum tnum_and(struct tnum a, struct tnum b)
{
    uint64_t alpha = a.value | a.mask, beta = b.value | b.mask;
    uint64_t v = a.value & b.value;
    return (struct tnum){ v, alpha & beta & ~v };
}

struct tnum tnum_or(struct tnum a, struct tnum b)
{
    uint64_t v = a.value | b.value, mu = a.mask | b.mask;
    return (struct tnum){ v, mu & ~v };
}

struct tnum tnum_xor(struct tnum a, struct tnum b)
{
    uint64_t v = a.value ^ b.value, mu = a.mask | b.mask;
    return (struct tnum){ v & ~mu, mu };
}

/* Long multiplication: each set bit of a adds a shifted b; unknown bits of a
 * add "b or nothing", which is at most the unknown-ness of b|b.mask. */
struct tnum tnum_mul(struct tnum a, struct tnum b)
{
    uint64_t acc_v = a.value * b.value;
    struct tnum acc_m = tnum_const(0);
    while (a.value || a.mask) {
        if (a.value & 1)
            acc_m = tnum_add(acc_m, (struct tnum){ 0, b.mask });
        else if (a.mask & 1)
            acc_m = tnum_add(acc_m, (struct tnum){ 0, b.value | b.mask });
        a = tnum_rshift(a, 1);
        b = tnum_lshift(b, 1);
    }
    return tnum_add(tnum_const(acc_v), acc_m);
}

struct tnum tnum_lshift(struct tnum a, unsigned s)
{
    return (struct tnum){ a.value << s, a.mask << s };
}

struct tnum tnum_rshift(struct tnum a, unsigned s)
{
    return (struct tnum){ a.value >> s, a.mask >> s };
}

struct tnum tnum_arshift(struct tnum a, unsigned s, unsigned width)
{
    if (width == 32)
        return (struct tnum){ (uint32_t)((int32_t)(uint32_t)a.value >> s),
                              (uint32_t)((int32_t)(uint32_t)a.mask >> s) };
    return (struct tnum){ (uint64_t)((int64_t)a.value >> s),
                          (uint64_t)((int64_t)a.mask >> s) };
}

struct tnum tnum_intersect(struct tnum a, struct tnum b)
{
    uint64_t v = a.value | b.value, mu = a.mask & b.mask;
    return (struct tnum){ v & ~mu, mu };
}

struct tnum tnum_cast(struct tnum a, unsigned bytes)
{
    if (bytes >= 8)
        return a;
    uint64_t m = (1ull << (bytes * 8)) - 1;
    return (struct tnum){ a.value & m, a.mask & m };
}

bool tnum_in(struct tnum outer, struct tnum inner)
{
    if (inner.mask & ~outer.mask)
        return false;
    return outer.value == (inner.value & ~outer.mask);
}

int tnum_str(char *buf, unsigned len, struct tnum t)
{
    return snprintf(buf, len, "(%#" PRIx64 "; %#" PRIx64 ")", t.value, t.mask);
}

/* Known bits of a and b disagree: no value satisfies both. */
static bool tnum_conflict(struct tnum a, struct tnum b)
{
    return ((a.value ^ b.value) & ~a.mask & ~b.mask) != 0;
}

/* ---- scalars ---------------------------------------------------------- */

void scalar_unknown(struct scalar *s)
{
    s->t = TNUM_UNKNOWN;
    s->smin = INT64_MIN;
    s->smax = INT64_MAX;
    s->umin = 0;
    s->umax = UINT64_MAX;
    s->s32min = INT32_MIN;
    s->s32max = INT32_MAX;
    s->u32min = 0;
    s->u32max = UINT32_MAX;
}

void scalar_const(struct scalar *s, uint64_t v)
{
    s->t = tnum_const(v);
    s->smin = s->smax = (int64_t)v;
    s->umin = s->umax = v;
    s->s32min = s->s32max = (int32_t)(uint32_t)v;
    s->u32min = s->u32max = (uint32_t)v;
}

bool scalar_is_const(const struct scalar *s)
{
    return tnum_is_const(s->t);
}

#define MAXU(a, b) ((a) > (b) ? (a) : (b))
#define MINU(a, b) ((a) < (b) ? (a) : (b))

static bool sync_once(struct scalar *s)
{
    struct tnum t = s->t;
    uint32_t tv = (uint32_t)t.value, tm = (uint32_t)t.mask;

    /* tnum -> ranges */
    s->umin = MAXU(s->umin, t.value);
    s->umax = MINU(s->umax, t.value | t.mask);
    s->smin = MAXU(s->smin, (int64_t)(t.value | (t.mask & (1ull << 63))));
    s->smax = MINU(s->smax, (int64_t)(t.value | (t.mask & ~(1ull << 63))));
    s->u32min = MAXU(s->u32min, tv);
    s->u32max = MINU(s->u32max, tv | tm);
    s->s32min = MAXU(s->s32min, (int32_t)(tv | (tm & 0x80000000u)));
    s->s32max = MINU(s->s32max, (int32_t)(tv | (tm & 0x7fffffffu)));

    /* 64-bit ranges -> 32-bit ranges, when the high bits do not vary */
    if ((s->umin >> 32) == (s->umax >> 32) && s->umin <= s->umax) {
        s->u32min = MAXU(s->u32min, (uint32_t)s->umin);
        s->u32max = MINU(s->u32max, (uint32_t)s->umax);
    }
    if ((s->smin >> 31) == (s->smax >> 31) && s->smin <= s->smax) {
        s->s32min = MAXU(s->s32min, (int32_t)s->smin);
        s->s32max = MINU(s->s32max, (int32_t)s->smax);
    }
    /* high halves h and h+1, the low halves running from a negative s32
     * up through -1, 0 to a positive one: one s32 range (the kernel's
     * __reg32_deduce_bounds special case) */
    if (s->umin <= s->umax && (uint32_t)(s->umin >> 32) + 1 == (uint32_t)(s->umax >> 32) &&
        (int32_t)s->umin < 0 && (int32_t)s->umax >= 0) {
        s->s32min = MAXU(s->s32min, (int32_t)s->umin);
        s->s32max = MINU(s->s32max, (int32_t)s->umax);
    }
    if (s->smin <= s->smax && (uint32_t)((uint64_t)s->smin >> 32) + 1 == (uint32_t)((uint64_t)s->smax >> 32) &&
        (int32_t)s->smin < 0 && (int32_t)s->smax >= 0) {
        s->s32min = MAXU(s->s32min, (int32_t)s->smin);
        s->s32max = MINU(s->s32max, (int32_t)s->smax);
    }
    /* 32-bit signed <-> unsigned when the range does not cross the sign */
    if (s->u32min <= s->u32max && (int32_t)s->u32min <= (int32_t)s->u32max) {
        s->s32min = MAXU(s->s32min, (int32_t)s->u32min);
        s->s32max = MINU(s->s32max, (int32_t)s->u32max);
    }
    if (s->s32min <= s->s32max && (uint32_t)s->s32min <= (uint32_t)s->s32max) {
        s->u32min = MAXU(s->u32min, (uint32_t)s->s32min);
        s->u32max = MINU(s->u32max, (uint32_t)s->s32max);
    } else if (s->s32min < 0 && s->s32max >= 0) {
        /* A signed range crossing zero is two unsigned pieces, [0, smax]
         * and [smin, max]: an unsigned range meeting only one of them
         * bounds the value to it (the kernel's __reg32_deduce_bounds). */
        if (s->u32max < (uint32_t)s->s32min) {
            s->u32max = MINU(s->u32max, (uint32_t)s->s32max);
            if (s->u32min <= INT32_MAX)
                s->s32min = MAXU(s->s32min, (int32_t)s->u32min);
        } else if ((uint32_t)s->s32max < s->u32min) {
            s->u32min = MAXU(s->u32min, (uint32_t)s->s32min);
            if (s->u32max > INT32_MAX)
                s->s32max = MINU(s->s32max, (int32_t)s->u32max);
        }
    }
    /* 32-bit ranges -> 64-bit ranges, when the high bits do not vary */
    if ((s->umin >> 32) == (s->umax >> 32) && s->u32min <= s->u32max) {
        uint64_t hi = s->umin & HI32;
        s->umin = MAXU(s->umin, hi | s->u32min);
        s->umax = MINU(s->umax, hi | s->u32max);
    }
    if ((s->smin >> 32) == (s->smax >> 32) && s->u32min <= s->u32max) {
        uint64_t hi = (uint64_t)s->smin & HI32;
        s->smin = MAXU(s->smin, (int64_t)(hi | s->u32min));
        s->smax = MINU(s->smax, (int64_t)(hi | s->u32max));
    }
    /* 64-bit signed <-> unsigned */
    if (s->umin <= s->umax && (int64_t)s->umin <= (int64_t)s->umax) {
        s->smin = MAXU(s->smin, (int64_t)s->umin);
        s->smax = MINU(s->smax, (int64_t)s->umax);
    }
    if (s->smin <= s->smax && (uint64_t)s->smin <= (uint64_t)s->smax) {
        s->umin = MAXU(s->umin, (uint64_t)s->smin);
        s->umax = MINU(s->umax, (uint64_t)s->smax);
    } else if (s->smin < 0 && s->smax >= 0) {
        /* the same for 64 bits (__reg64_deduce_bounds) */
        if (s->umax < (uint64_t)s->smin) {
            s->umax = MINU(s->umax, (uint64_t)s->smax);
            if (s->umin <= (uint64_t)INT64_MAX)
                s->smin = MAXU(s->smin, (int64_t)s->umin);
        } else if ((uint64_t)s->smax < s->umin) {
            s->umin = MAXU(s->umin, (uint64_t)s->smin);
            if (s->umax > (uint64_t)INT64_MAX)
                s->smax = MINU(s->smax, (int64_t)s->umax);
        }
    }
    if (s->umin > s->umax || s->smin > s->smax || s->u32min > s->u32max ||
        s->s32min > s->s32max)
        return false;
    /* ranges -> tnum */
    struct tnum r = tnum_range(s->umin, s->umax);
    struct tnum r32 = tnum_range(s->u32min, s->u32max);
    r32.mask |= HI32;
    r32.value &= ~HI32;
    if (tnum_conflict(s->t, r) || tnum_conflict(s->t, r32))
        return false;
    s->t = tnum_intersect(tnum_intersect(s->t, r), r32);
    return true;
}

bool scalar_sync(struct scalar *s)
{
    for (int i = 0; i < 3; i++) {
        struct scalar before = *s;
        if (!sync_once(s))
            return false;
        if (__builtin_memcmp(&before, s, sizeof(before)) == 0)
            break;
    }
    return true;
}

void scalar_zext32(struct scalar *s)
{
    uint32_t u32min = s->u32min, u32max = s->u32max;
    int32_t s32min = s->s32min, s32max = s->s32max;
    struct tnum t = tnum_cast(s->t, 4);
    scalar_unknown(s);
    s->t = t;
    s->u32min = u32min;
    s->u32max = u32max;
    s->s32min = s32min;
    s->s32max = s32max;
    s->umin = 0;
    s->umax = U32_MAXV;
    s->smin = 0;
    s->smax = (int64_t)U32_MAXV;
    scalar_sync(s);
}

bool scalar_fits(const struct scalar *s, unsigned size)
{
    return size >= 8 || s->umax <= (1ull << (size * 8)) - 1;
}

void scalar_trunc_size(struct scalar *s, unsigned size)
{
    if (scalar_fits(s, size))
        return;                 /* every value is its own low bytes */
    struct tnum t = tnum_cast(s->t, size);
    scalar_unknown_size(s, size);
    s->t = tnum_intersect(s->t, t);
    scalar_sync(s);
}

void scalar_unknown_size(struct scalar *s, unsigned size)
{
    scalar_unknown(s);
    if (size < 8) {
        s->t = tnum_cast(TNUM_UNKNOWN, size);
        s->umax = s->t.mask;
        s->smin = 0;
        s->smax = (int64_t)s->t.mask;
    }
    scalar_sync(s);
}

/* Sign-extend the low size bytes. Keeps the range when the value already
 * fits the signed size range; otherwise any value of that width. */
void scalar_sext_size(struct scalar *s, unsigned size)
{
    if (size >= 8)
        return;
    unsigned bits = size * 8;
    int64_t lo = -(1ll << (bits - 1)), hi = (1ll << (bits - 1)) - 1;
    if (scalar_is_const(s)) {
        uint64_t v = s->t.value;
        int64_t r = (int64_t)(v << (64 - bits)) >> (64 - bits);
        scalar_const(s, (uint64_t)r);
        return;
    }
    if (s->smin >= lo && s->smax <= hi)
        return;
    uint64_t full = 1ull << bits;
    if (s->umin > (uint64_t)hi && s->umax < full) {
        /* every value has the width's sign bit set and nothing above it:
         * each becomes itself minus 2^bits (the order is kept) */
        struct tnum t = s->t;
        t.value |= ~(full - 1);
        t.mask &= full - 1;
        int64_t nlo = (int64_t)s->umin - (int64_t)full, nhi = (int64_t)s->umax - (int64_t)full;
        scalar_unknown(s);
        s->t = t;
        s->smin = nlo;
        s->smax = nhi;
        scalar_sync(s);
        return;
    }
    /* values 0..hi stay; hi+1..2*hi+1 in the low bits would wrap negative:
     * keep it simple and sound - any value of the signed width. */
    scalar_unknown(s);
    s->smin = lo;
    s->smax = hi;
    scalar_sync(s);
}

/* Exact result for two constants, following the ISA's definitions. */
static uint64_t alu_concrete(uint64_t a, uint64_t b, uint8_t op, bool alu32,
                             bool is_signed)
{
    if (alu32) {
        uint32_t x = (uint32_t)a, y = (uint32_t)b, r = 0;
        switch (op) {
        case BPF_ADD: r = x + y; break;
        case BPF_SUB: r = x - y; break;
        case BPF_MUL: r = x * y; break;
        case BPF_OR: r = x | y; break;
        case BPF_AND: r = x & y; break;
        case BPF_XOR: r = x ^ y; break;
        case BPF_LSH: r = x << (y & 31); break;
        case BPF_RSH: r = x >> (y & 31); break;
        case BPF_ARSH: r = (uint32_t)((int32_t)x >> (y & 31)); break;
        case BPF_DIV:
            if (y == 0) r = 0;
            else if (is_signed) r = ((int32_t)x == INT32_MIN && (int32_t)y == -1) ? x : (uint32_t)((int32_t)x / (int32_t)y);
            else r = x / y;
            break;
        case BPF_MOD:
            if (y == 0) r = x;
            else if (is_signed) r = ((int32_t)y == -1) ? 0 : (uint32_t)((int32_t)x % (int32_t)y);
            else r = x % y;
            break;
        }
        return r;
    }
    switch (op) {
    case BPF_ADD: return a + b;
    case BPF_SUB: return a - b;
    case BPF_MUL: return a * b;
    case BPF_OR: return a | b;
    case BPF_AND: return a & b;
    case BPF_XOR: return a ^ b;
    case BPF_LSH: return a << (b & 63);
    case BPF_RSH: return a >> (b & 63);
    case BPF_ARSH: return (uint64_t)((int64_t)a >> (b & 63));
    case BPF_DIV:
        if (b == 0) return 0;
        if (is_signed) return ((int64_t)a == INT64_MIN && (int64_t)b == -1) ? a : (uint64_t)((int64_t)a / (int64_t)b);
        return a / b;
    case BPF_MOD:
        if (b == 0) return a;
        if (is_signed) return ((int64_t)b == -1) ? 0 : (uint64_t)((int64_t)a % (int64_t)b);
        return a % b;
    }
    return 0;
}

/* 64-bit abstract operation; unsigned division only (signed callers go
 * through the "unknown" path). */
static void alu64(struct scalar *d, const struct scalar *s, uint8_t op,
                  unsigned shift_mask)
{
    struct scalar a = *d, r;
    scalar_unknown(&r);
    switch (op) {
    case BPF_ADD: {
        int64_t lo, hi;
        r.t = tnum_add(a.t, s->t);
        if (!__builtin_add_overflow(a.smin, s->smin, &lo) &&
            !__builtin_add_overflow(a.smax, s->smax, &hi)) {
            r.smin = lo;
            r.smax = hi;
        }
        uint64_t ulo, uhi;
        if (!__builtin_add_overflow(a.umin, s->umin, &ulo) &&
            !__builtin_add_overflow(a.umax, s->umax, &uhi)) {
            r.umin = ulo;
            r.umax = uhi;
        }
        break;
    }
    case BPF_SUB: {
        int64_t lo, hi;
        r.t = tnum_sub(a.t, s->t);
        if (!__builtin_sub_overflow(a.smin, s->smax, &lo) &&
            !__builtin_sub_overflow(a.smax, s->smin, &hi)) {
            r.smin = lo;
            r.smax = hi;
        }
        if (a.umin >= s->umax) {
            r.umin = a.umin - s->umax;
            r.umax = a.umax - s->umin;
        }
        break;
    }
    case BPF_MUL:
        r.t = tnum_mul(a.t, s->t);
        if (a.umax <= U32_MAXV && s->umax <= U32_MAXV) {
            r.umin = a.umin * s->umin;
            r.umax = a.umax * s->umax;
        }
        break;
    case BPF_DIV:
        if (s->umin > 0) {
            r.umin = a.umin / s->umax;
            r.umax = a.umax / s->umin;
        } else {
            r.umin = 0;          /* x / 0 = 0 */
            r.umax = a.umax;
        }
        break;
    case BPF_MOD:
        r.umin = 0;
        if (s->umin > 0)
            r.umax = MINU(a.umax, s->umax - 1);
        else
            r.umax = a.umax;     /* x % 0 = x */
        break;
    case BPF_OR:
        r.t = tnum_or(a.t, s->t);
        r.umin = MAXU(a.umin, s->umin);
        break;
    case BPF_AND:
        r.t = tnum_and(a.t, s->t);
        r.umax = MINU(a.umax, s->umax);
        if (a.smin >= 0 || s->smin >= 0) {
            r.smin = 0;
            r.smax = (int64_t)MINU(a.smin >= 0 ? (uint64_t)a.smax : UINT64_MAX,
                                   s->smin >= 0 ? (uint64_t)s->smax : UINT64_MAX);
        }
        break;
    case BPF_XOR:
        r.t = tnum_xor(a.t, s->t);
        break;
    case BPF_LSH:
        if (scalar_is_const(s)) {
            unsigned sh = (unsigned)(s->t.value & shift_mask);
            r.t = tnum_lshift(a.t, sh);
            if (sh == 0 || (a.umax >> (64 - sh)) == 0) {
                r.umin = a.umin << sh;
                r.umax = a.umax << sh;
            }
            /* << 32 (half of the compilers' sign extension of a subregister):
             * the low half, as a signed number, becomes the high half */
            if (sh == 32 && shift_mask == 63) {
                r.smin = (int64_t)((uint64_t)(int64_t)a.s32min << 32);
                r.smax = (int64_t)((uint64_t)(int64_t)a.s32max << 32);
            }
        }
        break;
    case BPF_RSH:
        if (scalar_is_const(s)) {
            unsigned sh = (unsigned)(s->t.value & shift_mask);
            r.t = tnum_rshift(a.t, sh);
            r.umin = a.umin >> sh;
            r.umax = a.umax >> sh;
        } else {
            r.umin = 0;
            r.umax = a.umax;
        }
        break;
    case BPF_ARSH:
        if (scalar_is_const(s)) {
            unsigned sh = (unsigned)(s->t.value & shift_mask);
            r.t = tnum_arshift(a.t, sh, 64);
            r.smin = a.smin >> sh;
            r.smax = a.smax >> sh;
        }
        break;
    }
    if (!scalar_sync(&r))
        scalar_unknown(&r);   /* cannot happen for sound inputs; stay safe */
    *d = r;
}

void scalar_alu(struct scalar *dst, const struct scalar *src, uint8_t op,
                bool alu32, bool is_signed)
{
    if (scalar_is_const(dst) && scalar_is_const(src)) {
        uint64_t v = alu_concrete(dst->t.value, src->t.value, op, alu32, is_signed);
        scalar_const(dst, v);
        return;
    }
    if (is_signed && (op == BPF_DIV || op == BPF_MOD)) {
        scalar_unknown(dst);
        if (alu32)
            scalar_zext32(dst);
        return;
    }
    if (!alu32) {
        alu64(dst, src, op, 63);
        return;
    }
    if (op == BPF_ARSH) {
        struct scalar r;
        scalar_unknown(&r);
        if (scalar_is_const(src)) {
            unsigned sh = (unsigned)(src->t.value & 31);
            r.s32min = dst->s32min >> sh;
            r.s32max = dst->s32max >> sh;
            r.t = tnum_arshift(tnum_cast(dst->t, 4), sh, 32);
            r.t.mask |= HI32;
            r.t.value &= ~HI32;
        }
        if (!scalar_sync(&r))
            scalar_unknown(&r);
        scalar_zext32(&r);
        *dst = r;
        return;
    }
    struct scalar a = *dst, b = *src;
    scalar_zext32(&a);
    scalar_zext32(&b);
    alu64(&a, &b, op, 31);
    scalar_zext32(&a);
    *dst = a;
}

void scalar_neg(struct scalar *s, bool alu32)
{
    if (scalar_is_const(s)) {
        uint64_t v = s->t.value;
        scalar_const(s, alu32 ? (uint32_t)(0u - (uint32_t)v) : 0ull - v);
        return;
    }
    struct scalar a = *s, r;
    if (alu32)
        scalar_zext32(&a);
    scalar_unknown(&r);
    r.t = tnum_sub(tnum_const(0), a.t);
    if (a.smin != INT64_MIN) {
        r.smin = -a.smax;
        r.smax = -a.smin;
    }
    if (!scalar_sync(&r))
        scalar_unknown(&r);
    if (alu32)
        scalar_zext32(&r);
    *s = r;
}

/* ---- comparisons ------------------------------------------------------ */

/* A comparison's view of a scalar: the bounds of the compared width. */
struct view {
    uint64_t umin, umax;
    int64_t smin, smax;
    struct tnum t;
};

static struct view view_of(const struct scalar *s, bool is32)
{
    if (is32)
        return (struct view){ s->u32min, s->u32max, s->s32min, s->s32max,
                              tnum_cast(s->t, 4) };
    return (struct view){ s->umin, s->umax, s->smin, s->smax, s->t };
}

static void view_store(struct scalar *s, const struct view *v, bool is32)
{
    if (is32) {
        s->u32min = (uint32_t)v->umin;
        s->u32max = (uint32_t)v->umax;
        s->s32min = (int32_t)v->smin;
        s->s32max = (int32_t)v->smax;
        s->t.value = (s->t.value & HI32) | (v->t.value & U32_MAXV);
        s->t.mask = (s->t.mask & HI32) | (v->t.mask & U32_MAXV);
    } else {
        s->umin = v->umin;
        s->umax = v->umax;
        s->smin = v->smin;
        s->smax = v->smax;
        s->t = v->t;
    }
}

static uint8_t negate_op(uint8_t op)
{
    switch (op) {
    case BPF_JEQ: return BPF_JNE;
    case BPF_JNE: return BPF_JEQ;
    case BPF_JGT: return BPF_JLE;
    case BPF_JLE: return BPF_JGT;
    case BPF_JGE: return BPF_JLT;
    case BPF_JLT: return BPF_JGE;
    case BPF_JSGT: return BPF_JSLE;
    case BPF_JSLE: return BPF_JSGT;
    case BPF_JSGE: return BPF_JSLT;
    case BPF_JSLT: return BPF_JSGE;
    }
    return op;
}

int scalar_branch_taken(const struct scalar *as, const struct scalar *bs,
                        uint8_t op, bool is32)
{
    struct view a = view_of(as, is32), b = view_of(bs, is32);
    switch (op) {
    case BPF_JEQ:
    case BPF_JNE: {
        int eq = -1;
        if (tnum_is_const(a.t) && tnum_is_const(b.t))
            eq = a.t.value == b.t.value;
        else if (a.umin > b.umax || a.umax < b.umin || a.smin > b.smax ||
                 a.smax < b.smin || tnum_conflict(a.t, b.t))
            eq = 0;
        if (eq < 0)
            return -1;
        return op == BPF_JEQ ? eq : !eq;
    }
    case BPF_JGT: return a.umin > b.umax ? 1 : a.umax <= b.umin ? 0 : -1;
    case BPF_JGE: return a.umin >= b.umax ? 1 : a.umax < b.umin ? 0 : -1;
    case BPF_JLT: return a.umax < b.umin ? 1 : a.umin >= b.umax ? 0 : -1;
    case BPF_JLE: return a.umax <= b.umin ? 1 : a.umin > b.umax ? 0 : -1;
    case BPF_JSGT: return a.smin > b.smax ? 1 : a.smax <= b.smin ? 0 : -1;
    case BPF_JSGE: return a.smin >= b.smax ? 1 : a.smax < b.smin ? 0 : -1;
    case BPF_JSLT: return a.smax < b.smin ? 1 : a.smin >= b.smax ? 0 : -1;
    case BPF_JSLE: return a.smax <= b.smin ? 1 : a.smin > b.smax ? 0 : -1;
    case BPF_JSET:
        if (tnum_is_const(b.t)) {
            if (a.t.value & b.t.value)
                return 1;
            if (((a.t.value | a.t.mask) & b.t.value) == 0)
                return 0;
        }
        return -1;
    }
    return -1;
}

bool scalar_refine(struct scalar *as, struct scalar *bs, uint8_t op, bool taken,
                   bool is32)
{
    struct view a = view_of(as, is32), b = view_of(bs, is32);
    uint64_t umaxv = is32 ? U32_MAXV : UINT64_MAX;
    int64_t sminv = is32 ? INT32_MIN : INT64_MIN, smaxv = is32 ? INT32_MAX : INT64_MAX;
    bool bconst = tnum_is_const(b.t), aconst = tnum_is_const(a.t);

    if (op == BPF_JSET) {
        if (!bconst)
            return true;
        if (taken) {
            if ((b.t.value & (b.t.value - 1)) == 0 && b.t.value) {
                if (!(a.t.mask & b.t.value) && !(a.t.value & b.t.value))
                    return false;
                a.t.value |= b.t.value;
                a.t.mask &= ~b.t.value;
            }
            if (a.umin == 0)
                a.umin = 1;
        } else {
            if (a.t.value & b.t.value)
                return false;
            a.t.mask &= ~b.t.value;
        }
        view_store(as, &a, is32);
        return scalar_sync(as);
    }
    if (!taken)
        op = negate_op(op);
    switch (op) {
    case BPF_JEQ:
        if (tnum_conflict(a.t, b.t))
            return false;
        a.t = b.t = tnum_intersect(a.t, b.t);
        a.umin = b.umin = MAXU(a.umin, b.umin);
        a.umax = b.umax = MINU(a.umax, b.umax);
        a.smin = b.smin = MAXU(a.smin, b.smin);
        a.smax = b.smax = MINU(a.smax, b.smax);
        break;
    case BPF_JNE:
        if (bconst) {
            uint64_t v = b.t.value;
            if (aconst && a.t.value == v)
                return false;
            if (a.umin == v) a.umin++;
            if (a.umax == v) a.umax--;
            if (a.smin == (is32 ? (int64_t)(int32_t)v : (int64_t)v)) a.smin++;
            if (a.smax == (is32 ? (int64_t)(int32_t)v : (int64_t)v)) a.smax--;
        } else if (aconst) {
            uint64_t v = a.t.value;
            if (b.umin == v) b.umin++;
            if (b.umax == v) b.umax--;
            if (b.smin == (is32 ? (int64_t)(int32_t)v : (int64_t)v)) b.smin++;
            if (b.smax == (is32 ? (int64_t)(int32_t)v : (int64_t)v)) b.smax--;
        }
        break;
    case BPF_JGT:
        if (b.umin == umaxv || a.umax == 0)
            return false;
        a.umin = MAXU(a.umin, b.umin + 1);
        b.umax = MINU(b.umax, a.umax - 1);
        break;
    case BPF_JGE:
        a.umin = MAXU(a.umin, b.umin);
        b.umax = MINU(b.umax, a.umax);
        break;
    case BPF_JLT:
        if (b.umax == 0 || a.umin == umaxv)
            return false;
        a.umax = MINU(a.umax, b.umax - 1);
        b.umin = MAXU(b.umin, a.umin + 1);
        break;
    case BPF_JLE:
        a.umax = MINU(a.umax, b.umax);
        b.umin = MAXU(b.umin, a.umin);
        break;
    case BPF_JSGT:
        if (b.smin == smaxv || a.smax == sminv)
            return false;
        a.smin = MAXU(a.smin, b.smin + 1);
        b.smax = MINU(b.smax, a.smax - 1);
        break;
    case BPF_JSGE:
        a.smin = MAXU(a.smin, b.smin);
        b.smax = MINU(b.smax, a.smax);
        break;
    case BPF_JSLT:
        if (b.smax == sminv || a.smin == smaxv)
            return false;
        a.smax = MINU(a.smax, b.smax - 1);
        b.smin = MAXU(b.smin, a.smin + 1);
        break;
    case BPF_JSLE:
        a.smax = MINU(a.smax, b.smax);
        b.smin = MAXU(b.smin, a.smin);
        break;
    }
    if (a.umin > a.umax || a.smin > a.smax || b.umin > b.umax || b.smin > b.smax)
        return false;
    view_store(as, &a, is32);
    view_store(bs, &b, is32);
    return scalar_sync(as) && scalar_sync(bs);
}

bool scalar_covers(const struct scalar *o, const struct scalar *n)
{
    return o->smin <= n->smin && n->smax <= o->smax && o->umin <= n->umin &&
           n->umax <= o->umax && o->s32min <= n->s32min && n->s32max <= o->s32max &&
           o->u32min <= n->u32min && n->u32max <= o->u32max && tnum_in(o->t, n->t);
}

int scalar_str(char *buf, unsigned len, const struct scalar *s)
{
    if (scalar_is_const(s))
        return snprintf(buf, len, "%" PRId64, (int64_t)s->t.value);
    return snprintf(buf, len,
                    "smin=%" PRId64 ",smax=%" PRId64 ",umin=%" PRIu64 ",umax=%" PRIu64
                    ",var_off=(%#" PRIx64 "; %#" PRIx64 ")",
                    s->smin, s->smax, s->umin, s->umax, s->t.value, s->t.mask);
}
