/*
 * jit_thread.c - branches that repeat the test of the branch before them
 * (jit_opt.h, gvm_same_test_pairs). clang's BPF back end turns
 * `if (x >> 16) { x >>= 16; r += 16; }` into two branches on the same
 * condition, one around each statement:
 *     J1: if x < 0x10000 goto J2      ; taken: the condition holds
 *         r |= 16                      ; A: does not touch x
 *     J2: if x < 0x10000 goto L        ; reached from J1 (holds) or A (fails)
 *         x >>= 16
 *     L:
 * J2's outcome is known on both ways in, so J1 can jump straight to L and
 * J2 needs no code: one compare and one branch fewer.
 */
#include <string.h>

#include "vm/jit_opt.h"
#include "vm/vm_internal.h"

/* The most insns between the two tests: the shape has one or two, and the
 * bound keeps the scan linear in the program's length. */
#define MAX_BETWEEN 16

static bool is_cond_jump(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (cls != BPF_JMP && cls != BPF_JMP32)
        return false;
    switch (op) {
    case BPF_JEQ: case BPF_JGT: case BPF_JGE: case BPF_JSET: case BPF_JNE: case BPF_JSGT:
    case BPF_JSGE: case BPF_JLT: case BPF_JLE: case BPF_JSLT: case BPF_JSLE:
        return true;
    default:
        return false;
    }
}

/* Can the straight-line insns [a, b) run between the two tests, the
 * registers they compare (mask) unchanged? */
static bool keeps_test(const struct bpf_insn *insns, uint32_t a, uint32_t b,
                       const uint8_t *n_jumps_to, uint16_t mask)
{
    for (uint32_t k = a; k < b; k++) {
        const struct bpf_insn *in = &insns[k];
        uint8_t cls = BPF_CLASS(in->code);
        uint16_t reads = 0, writes = 0;
        if (n_jumps_to[k])
            return false;               /* another way in, condition unknown */
        if (bpf_is_ld_imm64(in)) {
            if (k + 1 >= b || (mask & (1u << in->dst_reg)))
                return false;
            k++;
            continue;
        }
        if (cls != BPF_ALU && cls != BPF_ALU64 && cls != BPF_LDX && cls != BPF_ST
            && cls != BPF_STX)
            return false;               /* jumps, calls, exits, legacy loads */
        gvm_insn_reg_use(in, &reads, &writes);
        if (writes & mask)
            return false;
    }
    return true;
}

void gvm_same_test_pairs(const struct bpf_insn *insns, uint32_t n, const uint32_t *func_starts,
                         uint32_t n_funcs, const uint8_t *n_jumps_to, int32_t *thread_to,
                         uint8_t *no_code)
{
    memset(no_code, 0, n);
    for (uint32_t i = 0; i < n; i++)
        thread_to[i] = -1;
    for (uint32_t f = 0; f < n_funcs; f++) {
        uint32_t end = f + 1 < n_funcs ? func_starts[f + 1] : n;
        for (uint32_t i = func_starts[f]; i < end; i++) {
            const struct bpf_insn *j1 = &insns[i];
            if (bpf_is_ld_imm64(j1)) {
                i++;
                continue;
            }
            if (no_code[i] || !is_cond_jump(j1))
                continue;               /* a J2 that emits nothing tests nothing */
            int64_t t1 = (int64_t)i + j1->off + 1;
            if (t1 <= (int64_t)i + 1 || t1 >= end || t1 - i - 1 > MAX_BETWEEN)
                continue;
            const struct bpf_insn *j2 = &insns[t1];
            if (j2->code != j1->code || j2->dst_reg != j1->dst_reg
                || j2->src_reg != j1->src_reg || j2->imm != j1->imm || n_jumps_to[t1] != 1)
                continue;               /* not the same test, or more ways in */
            uint16_t mask = (uint16_t)(1u << j1->dst_reg);
            if (BPF_SRC(j1->code) == BPF_X)
                mask |= (uint16_t)(1u << j1->src_reg);
            if (!keeps_test(insns, i + 1, (uint32_t)t1, n_jumps_to, mask))
                continue;
            int64_t t2 = t1 + j2->off + 1;
            if (t2 < func_starts[f] || t2 >= end)
                continue;
            thread_to[i] = (int32_t)t2;
            no_code[t1] = 1;
        }
    }
}
