/*
 * jit_slots.c - which BPF stack slots the JIT may keep in registers
 * (jit_opt.h says when a slot qualifies and why that is sound). Derived
 * from the bytecode alone, conservatively: anything but a plain
 * fp-relative access to the frame disqualifies every slot it may touch,
 * and any escape of r10 disqualifies the whole frame.
 */
#include <stdlib.h>
#include <string.h>

#include "vm/jit_opt.h"
#include "vm/vm_internal.h"

int gvm_slot_of(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code);
    int base;
    if (in->code == (BPF_LDX | BPF_MEM | BPF_DW))
        base = in->src_reg;
    else if (in->code == (BPF_STX | BPF_MEM | BPF_DW) || in->code == (BPF_ST | BPF_MEM | BPF_DW))
        base = in->dst_reg;
    else
        return -1;
    if (base != BPF_R10 || (cls == BPF_STX && in->src_reg == BPF_R10))
        return -1;
    if (in->off >= 0 || in->off < -BPF_STACK_SIZE || in->off % 8)
        return -1;
    return -in->off / 8 - 1;
}

/* Mark the slots an access of size bytes at r10+off touches as not
 * promotable; an access outside the frame poisons them all. */
static void poison(struct gvm_slot_use *u, int off, int size)
{
    if (off < -BPF_STACK_SIZE || off + size > 0) {
        memset(u->promotable, 0, sizeof(u->promotable));
        u->escapes = true;
        return;
    }
    for (int b = off; b < off + size; b++) {
        int k = (-b - 1) / 8;
        u->used[k] = true;
        u->promotable[k] = false;
    }
}

static int access_size(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default:    return 8;
    }
}

uint8_t *gvm_loop_depths(const struct bpf_insn *insns, uint32_t lo, uint32_t hi)
{
    uint32_t len = hi - lo;
    int32_t *diff = calloc(len + 1, sizeof(*diff));
    uint8_t *depth = malloc(len ? len : 1);
    if (!diff || !depth) {
        free(diff);
        free(depth);
        return NULL;
    }
    for (uint32_t i = lo; i < hi; i++) {
        const struct bpf_insn *in = &insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        if (bpf_is_ld_imm64(in)) {
            i++;
            continue;
        }
        if ((cls != BPF_JMP && cls != BPF_JMP32) || op == BPF_CALL || op == BPF_EXIT)
            continue;
        int64_t off = (cls == BPF_JMP32 && op == BPF_JA) ? in->imm : in->off;
        int64_t t = (int64_t)i + off + 1;
        if (off < 0 && t >= lo) {
            diff[t - lo]++;
            diff[i + 1 - lo]--;
        }
    }
    int32_t d = 0;
    for (uint32_t k = 0; k < len; k++) {
        d += diff[k];
        depth[k] = (uint8_t)(d > 255 ? 255 : d);
    }
    free(diff);
    return depth;
}

int gvm_slot_scan(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi,
                  struct gvm_slot_use *u)
{
    memset(u, 0, sizeof(*u));
    for (int k = 0; k < GVM_SLOTS; k++)
        u->promotable[k] = true;
    for (uint32_t i = lo; i < hi && i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        uint8_t cls = BPF_CLASS(in->code);
        uint16_t reads = 0, writes = 0;
        bool callx = in->code == (BPF_JMP | BPF_CALL | BPF_X);
        if (in->dst_reg != BPF_R10 && in->src_reg != BPF_R10
            && !(callx && gvm_callx_reg(in) == BPF_R10)) {
            if (bpf_is_ld_imm64(in))
                i++;
            continue;
        }
        if (callx)
            u->escapes = true;
        int slot = gvm_slot_of(in);

        if (slot >= 0) {
            u->weight[slot] += u->weight[slot] < UINT32_MAX;
            u->used[slot] = true;
        } else if (cls == BPF_LDX && in->src_reg == BPF_R10 && in->dst_reg != BPF_R10) {
            poison(u, in->off, access_size(in->code));
        } else if ((cls == BPF_ST || cls == BPF_STX) && in->dst_reg == BPF_R10
                   && !(cls == BPF_STX && in->src_reg == BPF_R10)) {
            poison(u, in->off, access_size(in->code));
        } else {
            gvm_insn_reg_use(in, &reads, &writes);
            if ((reads | writes) & (1u << BPF_R10))
                u->escapes = true;
        }
        if (bpf_is_ld_imm64(in))
            i++;
    }
    if (u->escapes)
        memset(u->promotable, 0, sizeof(u->promotable));
    for (int k = 0; k < GVM_SLOTS; k++)
        u->promotable[k] = u->promotable[k] && u->used[k];
    return 0;
}

int gvm_slot_weigh(const struct bpf_insn *insns, uint32_t n, uint32_t lo, uint32_t hi,
                   struct gvm_slot_use *u)
{
    uint8_t *depth = gvm_loop_depths(insns, lo, hi);
    if (!depth)
        return -1;
    memset(u->weight, 0, sizeof(u->weight));
    for (uint32_t i = lo; i < hi && i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        int slot = (in->dst_reg == BPF_R10 || in->src_reg == BPF_R10) ? gvm_slot_of(in) : -1;
        if (slot >= 0) {
            unsigned dd = depth[i - lo] > 8 ? 8 : depth[i - lo];
            uint64_t w = u->weight[slot] + (1ull << (3 * dd));
            u->weight[slot] = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        }
        if (bpf_is_ld_imm64(in))
            i++;
    }
    free(depth);
    return 0;
}

void gvm_slot_intervals(const struct bpf_insn *insns, uint32_t lo, uint32_t hi,
                        const struct gvm_slot_use *u, uint32_t *start, uint32_t *end)
{
    uint32_t loop_lo[64], loop_hi[64];  /* backward jumps: [target, jump] */
    int n_loops = 0;
    bool whole = false;                 /* too many loops or a jump outside */

    for (int k = 0; k < GVM_SLOTS; k++) {
        start[k] = UINT32_MAX;
        end[k] = 0;
    }
    for (uint32_t i = lo; i < hi; i++) {
        const struct bpf_insn *in = &insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        if (bpf_is_ld_imm64(in)) {
            i++;
            continue;
        }
        int slot = (in->dst_reg == BPF_R10 || in->src_reg == BPF_R10) ? gvm_slot_of(in) : -1;
        if (slot >= 0 && u->promotable[slot]) {
            start[slot] = i < start[slot] ? i : start[slot];
            end[slot] = i > end[slot] ? i : end[slot];
        }
        if ((cls != BPF_JMP && cls != BPF_JMP32) || op == BPF_CALL || op == BPF_EXIT)
            continue;
        int64_t off = (cls == BPF_JMP32 && op == BPF_JA) ? in->imm : in->off;
        int64_t t = (int64_t)i + off + 1;
        if (t < lo || t >= hi)
            whole = true;
        else if (t <= i && n_loops < 64) {
            loop_lo[n_loops] = (uint32_t)t;
            loop_hi[n_loops++] = i;
        } else if (t <= i) {
            whole = true;
        }
    }
    for (int k = 0; k < GVM_SLOTS; k++) {
        if (start[k] > end[k])
            continue;                   /* not promotable: no interval */
        if (whole) {
            start[k] = lo;
            end[k] = hi - 1;
            continue;
        }
        /* each round either grows the interval or stops; it can grow at
         * most n_loops times, once per loop it swallows */
        for (bool grew = true; grew;) {
            grew = false;
            for (int l = 0; l < n_loops; l++) {
                if (loop_lo[l] > end[k] || loop_hi[l] < start[k])
                    continue;           /* disjoint */
                if (loop_lo[l] < start[k]) {
                    start[k] = loop_lo[l];
                    grew = true;
                }
                if (loop_hi[l] > end[k]) {
                    end[k] = loop_hi[l];
                    grew = true;
                }
            }
        }
    }
}
