/*
 * vinternal.h - what the verifier's files share: tristate numbers, scalar
 * bounds and the abstract register. Not for use outside src/verifier/.
 *
 * A scalar is described by a tnum (bits known 0/1, the rest unknown) and by
 * signed/unsigned 64- and 32-bit ranges. Every concrete value the register
 * can hold at run time satisfies all of them at once; scalar_sync() keeps
 * them consistent by deducing each from the others.
 */
#ifndef GRAFT_VERIFIER_VINTERNAL_H
#define GRAFT_VERIFIER_VINTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct tnum {
    uint64_t value;            /* known bits */
    uint64_t mask;             /* 1 = unknown bit; value & mask == 0 */
};

#define TNUM_UNKNOWN ((struct tnum){ 0, UINT64_MAX })

static inline struct tnum tnum_const(uint64_t v) { return (struct tnum){ v, 0 }; }
static inline bool tnum_is_const(struct tnum t) { return t.mask == 0; }
struct tnum tnum_range(uint64_t min, uint64_t max);
struct tnum tnum_add(struct tnum a, struct tnum b);
struct tnum tnum_sub(struct tnum a, struct tnum b);
struct tnum tnum_and(struct tnum a, struct tnum b);
struct tnum tnum_or(struct tnum a, struct tnum b);
struct tnum tnum_xor(struct tnum a, struct tnum b);
struct tnum tnum_mul(struct tnum a, struct tnum b);
struct tnum tnum_lshift(struct tnum a, unsigned s);
struct tnum tnum_rshift(struct tnum a, unsigned s);
struct tnum tnum_arshift(struct tnum a, unsigned s, unsigned width);
struct tnum tnum_intersect(struct tnum a, struct tnum b);
struct tnum tnum_cast(struct tnum a, unsigned bytes);   /* keep the low bytes */
bool tnum_in(struct tnum outer, struct tnum inner);    /* every value of inner is in outer */
int tnum_str(char *buf, unsigned len, struct tnum t);

struct scalar {
    struct tnum t;
    int64_t smin, smax;
    uint64_t umin, umax;
    int32_t s32min, s32max;
    uint32_t u32min, u32max;
};

void scalar_unknown(struct scalar *s);
void scalar_const(struct scalar *s, uint64_t v);
/* Re-derive every bound from the others; returns false when the set of
 * values is empty (an impossible branch). */
bool scalar_sync(struct scalar *s);
bool scalar_is_const(const struct scalar *s);
/* Zero-extend the low 32 bits into a fresh 64-bit scalar (what an ALU32
 * result or a 32-bit subregister looks like). */
void scalar_zext32(struct scalar *s);
/* Values of size bytes loaded from memory: 0..2^(8*size)-1. */
void scalar_unknown_size(struct scalar *s, unsigned size);
void scalar_sext_size(struct scalar *s, unsigned size);   /* movsx / ldsx */
/* Every value is below 2^(8*size): the low size bytes are the whole value. */
bool scalar_fits(const struct scalar *s, unsigned size);
/* Keep the low size bytes (a narrow load of a wider value). */
void scalar_trunc_size(struct scalar *s, unsigned size);
/* dst = dst op src for BPF_ADD..BPF_ARSH (no NEG/END/MOV); alu32 works on
 * the low halves and zero-extends. Division by zero follows the ISA (x/0 = 0,
 * x%0 = x). */
void scalar_alu(struct scalar *dst, const struct scalar *src, uint8_t op,
                bool alu32, bool is_signed);
void scalar_neg(struct scalar *s, bool alu32);
/* Branch refinement: restrict a (and b) to the values for which
 * "a op b" is `taken`. Returns false if no values remain. */
bool scalar_refine(struct scalar *a, struct scalar *b, uint8_t op, bool taken,
                   bool is32);
/* 1 if "a op b" is always true, 0 if always false, -1 if unknown. */
int scalar_branch_taken(const struct scalar *a, const struct scalar *b,
                        uint8_t op, bool is32);
/* Every value allowed by inner is allowed by outer. */
bool scalar_covers(const struct scalar *outer, const struct scalar *inner);
int scalar_str(char *buf, unsigned len, const struct scalar *s);

#endif
