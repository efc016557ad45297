/*
 * jit_opt.h - the analyses and arithmetic the x86-64 JIT's optimizing
 * passes share (jit_divconst.c, jit_slots.c). Not for use outside src/vm/
 * and its tests.
 */
#ifndef GRAFT_VM_JIT_OPT_H
#define GRAFT_VM_JIT_OPT_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/isa.h"

/* Unsigned division by a constant d (not 0, not a power of two) of a
 * bits-wide (32 or 64) dividend x, as a multiply (Granlund-Montgomery):
 *   q = mulhi(magic, x)                      (the high half of a 2*bits product)
 *   add == false:  x / d = q >> shift
 *   add == true:   x / d = (((x - q) >> 1) + q) >> shift
 * (add: the true multiplier has bits+1 bits; its top bit is folded in). */
struct gvm_udiv_magic {
    uint64_t magic;
    uint8_t shift;
    bool add;
};

void gvm_udiv_magic(uint64_t d, int bits, struct gvm_udiv_magic *m);

#endif
