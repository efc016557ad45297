/*
 * jit_opt.h - the analyses and arithmetic the x86-64 JIT's optimizing
 * passes share (jit_divconst.c, jit_slots.c, jit_consts.c, jit_live.c).
 * Not for use outside src/vm/ and its tests.
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

/* Signed division (truncating) by a constant d, |d| >= 2 and not a power
 * of two, of a bits-wide dividend x (Granlund-Montgomery, as in Hacker's
 * Delight 10-1):
 *   q = mulhs(magic, x)                 (high half of the signed product)
 *   q += x when d > 0 and magic < 0;  q -= x when d < 0 and magic > 0
 *   q >>= shift (arithmetic);  q += 1 when q < 0
 * magic is a bits-wide signed value (sign-extended to 64 bits). */
struct gvm_sdiv_magic {
    int64_t magic;
    uint8_t shift;
};

void gvm_sdiv_magic(int64_t d, int bits, struct gvm_sdiv_magic *m);

/* Pairs of branches with the same test (jit_thread.c): J1 at i jumps
 * forward to J2, a conditional jump with J1's code, registers and imm;
 * only J1 jumps to J2 (n_jumps_to[J2] == 1: its count of jumps and
 * function entries there); the insns between them (at most 16) are
 * straight-line (ALU, loads, stores), no jump lands among them, and none
 * writes a register the test reads. Then J2's outcome is known on both ways in:
 * thread_to[i] = J2's target (J1 jumps there instead) and no_code[J2] = 1
 * (J2 falls through; it emits nothing). A J2 is never itself a J1.
 * Both jumps and J2's target lie in one function. thread_to[] is -1
 * elsewhere. */
void gvm_same_test_pairs(const struct bpf_insn *insns, uint32_t n, const uint32_t *func_starts,
                         uint32_t n_funcs, const uint8_t *n_jumps_to, int32_t *thread_to,
                         uint8_t *no_code);

#endif

/* Rewrite insns[0, n) by the verifier's facts[i] for insns[i]
 * (jit_facts.c): `and` that clears nothing and zero-extensions of values
 * already zero-extended become `r = r` (no code), register operands that
 * are constants become immediates. Returns how many insns changed. */
struct gvm_insn_fact;
int gvm_apply_facts(struct bpf_insn *insns, uint32_t n, const struct gvm_insn_fact *facts);

/* Stack slots of one function that can live in registers. Slot k is the 8
 * bytes [r10 - 8(k+1), r10 - 8k). A slot is promotable when every access
 * to it is a plain 8-byte load or store (LDX/STX/ST MEM DW) at exactly its
 * offset, and the function's frame pointer never escapes: r10 appears only
 * as the base of constant-offset loads and stores (never copied, compared,
 * stored, passed or used in arithmetic), so nothing but those accesses can
 * reach the frame. weight[k] counts the accesses, each weighted by 8 per
 * enclosing loop (backward branch) so that hot slots get registers first. */
#define GVM_SLOTS (BPF_STACK_SIZE / 8)

struct gvm_slot_use {
    bool escapes;              /* r10 used other than as a load/store base */
    bool used[GVM_SLOTS];      /* some access touches the slot */
    bool promotable[GVM_SLOTS];
    uint32_t weight[GVM_SLOTS];
};

/* Scan the function insns[lo, hi) of a program of n insns; weight[] then
 * holds plain access counts. Returns 0. */
int gvm_slot_scan(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi,
                  struct gvm_slot_use *u);

/* Replace the counts by loop-weighted ones (worth it only when slots
 * compete for registers); returns 0, or -1 when out of memory (the counts
 * then stay). */
int gvm_slot_weigh(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi,
                   struct gvm_slot_use *u);

/* The live interval of each promotable slot of insns[lo, hi): the
 * insns [start[k], end[k]] (absolute indices) span every access to slot k
 * and every loop (a backward jump's target up to the jump) overlapping
 * them, repeated until nothing grows. Outside its interval a slot's value
 * is dead or was never written on the path there (a read of a slot before
 * any write is undefined: the verifier refuses it and the JIT already
 * gives it no defined value), so slots with disjoint intervals can share
 * one register. Slots not promotable get start > end. A jump leaving
 * [lo, hi) stretches every interval over the whole function. */
void gvm_slot_intervals(const struct bpf_insn *insns, uint32_t lo, uint32_t hi,
                        const struct gvm_slot_use *u, uint32_t *start, uint32_t *end);

/* The slot a promotable access uses, or -1: insn is an 8-byte LDX/STX/ST
 * MEM through r10 at an 8-aligned offset in the frame. */
int gvm_slot_of(const struct bpf_insn *insn);

/* Loop depth of each insn of insns[lo, hi) (index i - lo): how many
 * backward branches span it, at most 255. malloc'd; NULL when out of
 * memory. */
uint8_t *gvm_loop_depths(const struct bpf_insn *insns, uint32_t lo, uint32_t hi);

/* The 64-bit constants of insns[lo, hi) worth a register of their own: the
 * values of LD_IMM64 (plain, src_reg 0) inside loops that need a 10-byte
 * movabs (neither a sign- nor a zero-extended 32-bit value). At most max,
 * the most used (weighted by loop depth) first; returns how many were
 * written to vals, 0 when out of memory. */
int gvm_hot_consts(const struct bpf_insn *insns, uint32_t lo, uint32_t hi, uint64_t *vals,
                   int max);

/* Registers live after each instruction of the function insns[lo, hi) of a
 * program of n insns: bit r of live_out[i - lo] is set when BPF register r
 * may be read before being written on some path from after insn i. Calls
 * read r1-r5 and clobber r0-r5; exit reads r0. Computed to a fixed point;
 * returns a malloc'd array, or NULL when out of memory (callers then treat
 * every register as live). */
uint16_t *gvm_live_out(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi);
