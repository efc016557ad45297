/*
 * jit_facts.c - the verifier's facts (struct gvm_insn_fact) applied to a
 * program before the JIT compiles it: each rewrite replaces an instruction
 * by a cheaper one that computes the same on every run the facts describe.
 *
 *   and dst, imm       where dst has no bit outside imm      -> no code
 *   w = w              where the upper half is already zero  -> no code
 *   r <<= 32; r >>= 32 ditto, the second not a jump target   -> no code
 *   op dst, src        where src is one constant             -> op dst, imm
 *   if dst op src ...  ditto                                 -> if dst op imm
 *   if ... goto L      taken on every path                   -> goto L
 *   if ... goto L      never taken                           -> no code
 *
 * "No code" is `r = r` (ALU64 MOV X of a register to itself), which the JIT
 * emits as nothing and which every analysis reads as reading and writing
 * that register, as the instruction it replaces did. The rewritten program
 * is the JIT's alone: the interpreter never takes facts.
 */
#include <stdlib.h>

#include "vm/jit_opt.h"
#include "vm/vm.h"

static struct bpf_insn no_code(uint8_t reg)
{
    return (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = reg, .src_reg = reg };
}

static bool fits_simm32(uint64_t v)
{
    return (uint64_t)(int64_t)(int32_t)v == v;
}

/* An X-form ALU op or conditional jump with a constant source, as K. */
static bool fold_src(struct bpf_insn *in, uint64_t v)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    bool is32 = cls == BPF_ALU || cls == BPF_JMP32;
    if (cls == BPF_ALU || cls == BPF_ALU64) {
        if (op == BPF_NEG || op == BPF_END || in->off != 0)
            return false;                   /* no K form (movsx), or signed div/mod */
        if ((op == BPF_DIV || op == BPF_MOD) && (is32 ? (uint32_t)v : v) == 0)
            return false;                   /* the K form may not divide by 0 */
        if ((op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) && v >= (is32 ? 32u : 64u))
            return false;
    } else if (op == BPF_JA || op == BPF_CALL || op == BPF_EXIT) {
        return false;
    }
    if (!is32 && !fits_simm32(v))
        return false;
    in->code = (uint8_t)(in->code & ~BPF_X);
    in->imm = (int32_t)(uint32_t)v;
    in->src_reg = 0;
    return true;
}

/* Jump targets and function entries, where the rewrites of a pair need
 * their second instruction to be reached only from the first. */
static uint8_t *targets(const struct bpf_insn *insns, uint32_t n)
{
    uint8_t *t = calloc(n, 1);
    if (!t)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        int64_t to = -1;
        if (bpf_is_ld_imm64(in)) {
            if (in->src_reg == BPF_PSEUDO_FUNC)
                to = (int64_t)i + 1 + in->imm;
            i++;
        } else if (cls == BPF_JMP || cls == BPF_JMP32) {
            if (op == BPF_CALL)
                to = in->src_reg == BPF_PSEUDO_CALL ? (int64_t)i + 1 + in->imm : -1;
            else if (op != BPF_EXIT)
                to = (int64_t)i + 1 + (cls == BPF_JMP32 && op == BPF_JA ? in->imm : in->off);
        }
        if (to >= 0 && to < n)
            t[to] = 1;
    }
    return t;
}

int gvm_apply_facts(struct bpf_insn *insns, uint32_t n, const struct gvm_insn_fact *facts)
{
    uint8_t *is_target = NULL;
    int changed = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct bpf_insn *in = &insns[i];
        const struct gvm_insn_fact *f = &facts[i];
        if (bpf_is_ld_imm64(in)) {
            i++;
            continue;
        }
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        bool bits = f->flags & GVM_FACT_DST_BITS;
        if ((cls == BPF_ALU || cls == BPF_ALU64) && op == BPF_AND && BPF_SRC(in->code) == BPF_K &&
            bits) {
            uint64_t mask = cls == BPF_ALU64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm;
            if ((f->dst_bits & ~mask) == 0) {
                *in = no_code(in->dst_reg);
                changed++;
            }
            continue;
        }
        if (in->code == (BPF_ALU | BPF_MOV | BPF_X) && in->off == 0 && in->dst_reg == in->src_reg &&
            bits && (f->dst_bits >> 32) == 0) {
            *in = no_code(in->dst_reg);
            changed++;
            continue;
        }
        if (in->code == (BPF_ALU64 | BPF_LSH | BPF_K) && in->imm == 32 && i + 1 < n &&
            insns[i + 1].code == (BPF_ALU64 | BPF_RSH | BPF_K) && insns[i + 1].imm == 32 &&
            insns[i + 1].dst_reg == in->dst_reg && bits && (f->dst_bits >> 32) == 0) {
            if (!is_target && !(is_target = targets(insns, n)))
                return changed;             /* out of memory: the rest unchanged */
            if (!is_target[i + 1]) {
                *in = no_code(in->dst_reg);
                insns[i + 1] = no_code(in->dst_reg);
                changed += 2;
                i++;
                continue;
            }
        }
        if ((cls == BPF_JMP || cls == BPF_JMP32) && (f->flags & (GVM_FACT_TAKEN | GVM_FACT_NOT_TAKEN)) &&
            op != BPF_JA && op != BPF_CALL && op != BPF_EXIT) {
            *in = (f->flags & GVM_FACT_TAKEN)
                  ? (struct bpf_insn){ .code = BPF_JMP | BPF_JA, .off = in->off }
                  : no_code(in->dst_reg);
            changed++;
            continue;
        }
        if ((f->flags & GVM_FACT_SRC_CONST) && BPF_SRC(in->code) == BPF_X &&
            cls != BPF_LDX && cls != BPF_STX && fold_src(in, f->src_value))
            changed++;
    }
    free(is_target);
    return changed;
}
