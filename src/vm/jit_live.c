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

uint16_t *gvm_live_out(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi)
{
    uint32_t len = hi - lo;
    uint16_t *out = calloc(len ? len : 1, sizeof(*out));
    uint16_t *in_live = calloc(len + 1, sizeof(*in_live));
    if (!out || !in_live) {
        free(out);
        free(in_live);
        return NULL;
    }
    bool changed = true;
    for (int round = 0; changed; round++) {
        changed = false;
        if (round > 64) {                  /* not expected; stay sound */
            for (uint32_t k = 0; k < len; k++)
                out[k] = ALL_REGS;
            break;
        }
        for (uint32_t i = hi; i-- > lo;) {
            const struct bpf_insn *in = &insns[i];
            if (i > lo && bpf_is_ld_imm64(&insns[i - 1]))
                continue;                  /* second half of LD_IMM64 */
            uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
            uint32_t next = i + (bpf_is_ld_imm64(in) ? 2 : 1);
            uint16_t lo_out = 0;
            bool jmp = cls == BPF_JMP || cls == BPF_JMP32;
            bool falls = !(jmp && (op == BPF_JA || op == BPF_EXIT));
            if (falls)
                lo_out |= next < hi ? in_live[next - lo] : ALL_REGS;
            if (jmp && op != BPF_CALL && op != BPF_EXIT) {
                int64_t off = (cls == BPF_JMP32 && op == BPF_JA) ? in->imm : in->off;
                int64_t t = (int64_t)i + off + 1;
                lo_out |= (t >= lo && t < hi) ? in_live[t - lo] : ALL_REGS;
            }
            uint16_t use, def;
            use_def(in, &use, &def);
            uint16_t li = (uint16_t)(use | (lo_out & ~def));
            if (lo_out != out[i - lo] || li != in_live[i - lo]) {
                out[i - lo] = lo_out;
                in_live[i - lo] = li;
                changed = true;
            }
        }
    }
    (void)n;
    free(in_live);
    return out;
}
