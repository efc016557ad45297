/*
 * jit_live.c - register liveness for the JIT's peepholes: which BPF
 * registers an instruction's result may still be read from. A backward
 * data-flow pass over one function, iterated to a fixed point; anything
 * the analysis cannot see through (a jump out of the function, a bad
 * target) makes every register live, so a peephole that needs a dead
 * register simply does not fire.
 */
#include <stdlib.h>

#include "vm/jit_opt.h"
#include "vm/vm_internal.h"

#define ALL_REGS 0x07ffu
#define ARG_REGS (0x1fu << 1)          /* r1-r5 */
#define CLOBBERED 0x3fu                /* r0-r5 */

/* What insn reads and writes, calls and exit included. */
static void use_def(const struct bpf_insn *in, uint16_t *use, uint16_t *def)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    gvm_insn_reg_use(in, use, def);
    if ((cls == BPF_JMP || cls == BPF_JMP32) && op == BPF_CALL) {
        *use |= ARG_REGS;
        *def |= CLOBBERED;
    }
}

/* Successors of insn i as in-function indices, -1 for none, -2 for
 * "leaves the function or the analysis" (everything live there). */
static void successors(const struct bpf_insn *insns, uint32_t i, uint32_t lo, uint32_t hi,
                       int64_t *s1, int64_t *s2)
{
    const struct bpf_insn *in = &insns[i];
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    bool jmp = cls == BPF_JMP || cls == BPF_JMP32;
    uint32_t next = i + (bpf_is_ld_imm64(in) ? 2 : 1);

    *s1 = *s2 = -1;
    if (!(jmp && (op == BPF_JA || op == BPF_EXIT)))
        *s1 = next < hi ? (int64_t)next : -2;
    if (jmp && op != BPF_CALL && op != BPF_EXIT) {
        int64_t off = (cls == BPF_JMP32 && op == BPF_JA) ? in->imm : in->off;
        int64_t t = (int64_t)i + off + 1;
        *s2 = (t >= lo && t < hi) ? t : -2;
    }
}

uint16_t *gvm_live_out(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi)
{
    uint32_t len = hi - lo;
    uint16_t *out = calloc(len ? len : 1, sizeof(*out));
    uint16_t *in_live = calloc(len + 1, sizeof(*in_live));
    uint32_t *ud = malloc((len ? len : 1) * sizeof(*ud));   /* use | def << 16 */
    if (!out || !in_live || !ud) {
        free(out);
        free(in_live);
        free(ud);
        return NULL;
    }
    bool back_edge = false;
    for (uint32_t i = lo; i < hi; i++) {
        uint16_t use = 0, def = 0;
        if (!(i > lo && bpf_is_ld_imm64(&insns[i - 1]))) {
            int64_t s1, s2;
            use_def(&insns[i], &use, &def);
            successors(insns, i, lo, hi, &s1, &s2);
            back_edge = back_edge || (s2 >= 0 && s2 <= i);
        }
        ud[i - lo] = use | (uint32_t)def << 16;
    }
    /* In reverse order one round is exact without back edges; loops need
     * more, until nothing changes. */
    bool changed = true;
    for (int round = 0; changed; round++) {
        changed = false;
        if (round > 64) {                  /* not expected; stay sound */
            for (uint32_t k = 0; k < len; k++)
                out[k] = ALL_REGS;
            break;
        }
        for (uint32_t i = hi; i-- > lo;) {
            if (i > lo && bpf_is_ld_imm64(&insns[i - 1]))
                continue;                  /* second half of LD_IMM64 */
            int64_t s1, s2;
            successors(insns, i, lo, hi, &s1, &s2);
            uint16_t lo_out = 0;
            if (s1 != -1)
                lo_out |= s1 >= 0 ? in_live[s1 - lo] : ALL_REGS;
            if (s2 != -1)
                lo_out |= s2 >= 0 ? in_live[s2 - lo] : ALL_REGS;
            uint16_t use = (uint16_t)ud[i - lo], def = (uint16_t)(ud[i - lo] >> 16);
            uint16_t li = (uint16_t)(use | (lo_out & ~def));
            if (lo_out != out[i - lo] || li != in_live[i - lo]) {
                out[i - lo] = lo_out;
                in_live[i - lo] = li;
                changed = true;
            }
        }
        if (!back_edge)
            break;
    }
    (void)n;
    free(in_live);
    free(ud);
    return out;
}
