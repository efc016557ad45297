/*
 * jit_consts.c - which 64-bit constants the JIT keeps in registers
 * (jit_opt.h). A constant that needs a 10-byte movabs, loaded on every
 * iteration of a loop, costs an instruction each time and, when it is an
 * operand (`lddw r2, K; and r0, r2`), a register copy too; held in a
 * register from the prologue on, the operation reads that register.
 */
#include <stdlib.h>

#include "vm/jit_opt.h"
#include "vm/vm_internal.h"

#define MAX_DISTINCT 64

/* Does v need movabs (no shorter mov form)? */
static bool needs_movabs(uint64_t v)
{
    return v > UINT32_MAX && (int64_t)v != (int64_t)(int32_t)(uint32_t)v;
}

int gvm_hot_consts(const struct bpf_insn *insns, uint32_t lo, uint32_t hi, uint64_t *vals,
                   int max)
{
    uint64_t val[MAX_DISTINCT];
    uint64_t weight[MAX_DISTINCT];
    int n = 0;
    bool any = false;                   /* worth the loop depths? */
    for (uint32_t i = lo; i + 1 < hi && !any; i++)
        any = bpf_is_ld_imm64(&insns[i]) && insns[i].src_reg == 0
              && needs_movabs((uint32_t)insns[i].imm | (uint64_t)(uint32_t)insns[i + 1].imm << 32);
    if (!any)
        return 0;
    uint8_t *depth = gvm_loop_depths(insns, lo, hi);
    if (!depth)
        return 0;
    for (uint32_t i = lo; i + 1 < hi; i++) {
        const struct bpf_insn *in = &insns[i];
        if (!bpf_is_ld_imm64(in))
            continue;
        i++;                            /* the second half */
        uint64_t v = (uint32_t)in[0].imm | (uint64_t)(uint32_t)in[1].imm << 32;
        unsigned d = depth[i - 1 - lo];
        if (in->src_reg != 0 || d == 0 || !needs_movabs(v))
            continue;
        uint64_t w = 1ull << (3 * (d > 8 ? 8 : d));
        int k = 0;
        while (k < n && val[k] != v)
            k++;
        if (k == n) {
            if (n == MAX_DISTINCT)
                continue;
            val[n] = v;
            weight[n++] = 0;
        }
        weight[k] += w;
    }
    free(depth);
    int out = 0;
    for (; out < max && out < n; out++) {   /* selection: n and max are small */
        int best = out;
        for (int k = out + 1; k < n; k++)
            if (weight[k] > weight[best])
                best = k;
        uint64_t tv = val[out], tw = weight[out];
        val[out] = val[best];
        weight[out] = weight[best];
        val[best] = tv;
        weight[best] = tw;
        vals[out] = val[out];
    }
    return out;
}
