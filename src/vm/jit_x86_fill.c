/*
 * jit_x86_fill.c - fill loops as `rep stos` (the memset idiom gcc and LLVM
 * recognise; clang does not emit memset for BPF, so BPF programs carry the
 * loop itself). The loop, exactly as clang lays it out:
 *
 *   L: mov X, B          X != B, X != I
 *      add X, I
 *      st[x]{b,h,w,dw} [X+off], V|imm     V not X nor I
 *      add I, S          S = the store's size
 *      jlt I, N, L       N not X nor I (unsigned, 64-bit)
 *   or jne I, K, L
 *   or jeq I, K, +1; ja L
 *
 * Only X and I change in it, so B, V and N are invariant, and the number
 * of stores is known when the loop is entered: for jlt, ceil((N - I) / S)
 * when I < N (and N <= 2^64 - S, so I never wraps); for K, (K - I) / S
 * when that divides exactly (I reaches K). Then one `rep stos` of that
 * many elements of V, I += count * S, X = B + I - S, as the loop leaves
 * them; any other case (fewer than FILL_MIN stores, a count the checks do
 * not prove) runs the loop as written, behind the same entry.
 */
#include "vm/jit_x86_enc.h"

#define FILL_MIN 32              /* below this, the loop beats rep's setup */

static bool is_reg_alu64(const struct bpf_insn *in, uint8_t op)
{
    return in->code == (BPF_ALU64 | op | BPF_X) && in->off == 0;
}

bool gvm_jit_fill_loop(const struct gvm_prog *p, const uint8_t *is_target, uint32_t i,
                       struct gvm_fill *f)
{
    const struct bpf_insn *in = &p->insns[i];
    if (i + 5 > p->n || !is_reg_alu64(in, BPF_MOV) || in[2].dst_reg != in->dst_reg)
        return false;
    for (uint32_t k = i + 1; k < i + 5; k++)
        if (is_target[k])
            return false;
    const struct bpf_insn *add = in + 1, *st = in + 2, *inc = in + 3, *br = in + 4;
    int x = in->dst_reg, b = in->src_reg, idx = add->src_reg;
    if (!is_reg_alu64(in, BPF_MOV) || !is_reg_alu64(add, BPF_ADD) || add->dst_reg != x
        || x == b || idx == x || idx == b || x >= BPF_R10 || idx >= BPF_R10 || b > BPF_R10)
        return false;
    uint8_t cls = BPF_CLASS(st->code), size = BPF_SIZE(st->code);
    if ((cls != BPF_ST && cls != BPF_STX) || BPF_MODE(st->code) != BPF_MEM || st->dst_reg != x)
        return false;
    if (cls == BPF_STX && (st->src_reg == x || st->src_reg == idx || st->src_reg > BPF_R10))
        return false;
    int bytes = size == BPF_B ? 1 : size == BPF_H ? 2 : size == BPF_W ? 4 : 8;
    if (inc->code != (BPF_ALU64 | BPF_ADD | BPF_K) || inc->dst_reg != idx || inc->imm != bytes)
        return false;
    f->x = x;
    f->b = b;
    f->idx = idx;
    f->store = st;
    f->bytes = bytes;
    if (br->code == (BPF_JMP | BPF_JLT | BPF_X) && br->dst_reg == idx && br->off == -5
        && br->src_reg != x && br->src_reg != idx && br->src_reg <= BPF_R10) {
        f->until_eq = false;
        f->n = br->src_reg;
        f->insns = 5;
        return true;
    }
    f->until_eq = true;
    f->k = br->imm;
    if (br->code == (BPF_JMP | BPF_JNE | BPF_K) && br->dst_reg == idx && br->off == -5) {
        f->insns = 5;
        return true;
    }
    if (br->code == (BPF_JMP | BPF_JEQ | BPF_K) && br->dst_reg == idx && br->off == 1
        && i + 6 <= p->n && !is_target[i + 5] && p->insns[i + 5].code == (BPF_JMP | BPF_JA)
        && p->insns[i + 5].off == -6) {
        f->insns = 6;
        return true;
    }
    return false;
}

/* The fill loop at j->idx; returns the insns consumed, 0 if there is none.
 * TMP1-3 are free here (leaf programs with a fill loop keep no slots in
 * them: jit_x86.c, leaf_needs_scratch). */
int gvm_jit_emit_fill(struct jit *j)
{
    struct gvm_fill f;
    if (j->hardening || !gvm_jit_fill_loop(j->prog, j->is_target, j->idx, &f))
        return 0;
    int x = reg_map[f.x], b = reg_map[f.b], idx = reg_map[f.idx];
    int shift = __builtin_ctz((unsigned)f.bytes);
    size_t slow1, slow2, slow3 = 0, done;

    /* TMP1 = the number of stores, or to the loop as written */
    if (!f.until_eq) {
        int n = reg_map[f.n];
        emit_alu_rr(j, 0x39, true, idx, n);                 /* cmp I, N */
        slow1 = emit_jcc8_fwd(j, CC_AE);                     /* one store: the loop */
        if (f.bytes > 1) {
            emit_cmp_ri(j, true, n, -f.bytes);                /* N <= 2^64 - S */
            slow3 = emit_jcc8_fwd(j, CC_A);
        }
        emit_mov_rr(j, true, TMP1, n);
        emit_alu_rr(j, 0x29, true, TMP1, idx);               /* N - I */
        if (f.bytes > 1) {
            emit_alu_ri(j, 0, true, TMP1, f.bytes - 1);
            emit_shift_ri(j, F_W, 5, TMP1, (uint8_t)shift);
        }
        emit_cmp_ri(j, true, TMP1, FILL_MIN);
        slow2 = emit_jcc8_fwd(j, CC_B);
    } else {
        emit_mov_ri(j, TMP1, (uint64_t)(int64_t)f.k);
        emit_alu_rr(j, 0x29, true, TMP1, idx);               /* K - I */
        slow1 = 0;
        if (f.bytes > 1) {
            emit_test_ri(j, false, TMP1, f.bytes - 1);        /* a whole number of steps */
            slow1 = emit_jcc8_fwd(j, CC_NE);
            emit_shift_ri(j, F_W, 5, TMP1, (uint8_t)shift);
        }
        emit_cmp_ri(j, true, TMP1, FILL_MIN);                 /* K == I: 2^64 / S stores */
        slow2 = emit_jcc8_fwd(j, CC_B);
    }
    /* rep stos: rdi = B + I + off, rcx = count, rax = V; r0, r1, r4 kept */
    emit_rsib(j, F_W, 0x8d, TMP2, b, idx, 0, f.store->off);
    if (BPF_CLASS(f.store->code) == BPF_ST)
        emit_mov_ri(j, TMP3, (uint64_t)(int64_t)f.store->imm);
    else
        emit_mov_rr(j, true, TMP3, reg_map[f.store->src_reg]);
    emit_push(j, RAX);
    emit_push(j, RCX);
    emit_push(j, RDI);
    emit_mov_rr(j, true, RDI, TMP2);
    emit_mov_rr(j, true, RCX, TMP1);
    emit_mov_rr(j, true, RAX, TMP3);
    emit1(j, 0xf3);                                          /* rep */
    if (f.bytes == 2)
        emit1(j, 0x66);
    if (f.bytes == 8)
        emit1(j, 0x48);
    emit1(j, f.bytes == 1 ? 0xaa : 0xab);                    /* stos */
    emit_pop(j, RDI);
    emit_pop(j, RCX);
    emit_pop(j, RAX);
    if (shift)
        emit_shift_ri(j, F_W, 4, TMP1, (uint8_t)shift);
    emit_alu_rr(j, 0x01, true, idx, TMP1);                   /* I += count * S */
    done = emit_jcc8_fwd(j, CC_JMP);

    /* the loop as written, with its address folded */
    if (slow1)
        fixup8(j, slow1);
    fixup8(j, slow2);
    if (slow3)
        fixup8(j, slow3);
    size_t top = j->len;
    emit_mem_insn(j, f.store, (struct mem){ b, idx, f.store->off, 0 });
    emit_alu_ri(j, 0, true, idx, f.bytes);
    if (!f.until_eq)
        emit_alu_rr(j, 0x39, true, idx, reg_map[f.n]);
    else
        emit_cmp_ri(j, true, idx, f.k);
    emit1(j, (uint8_t)(0x70 | (f.until_eq ? CC_NE : CC_B)));
    emit1(j, (uint8_t)(int8_t)((int64_t)top - (int64_t)(j->len + 1)));
    fixup8(j, done);
    emit_rsib(j, F_W, 0x8d, x, b, idx, 0, -f.bytes);         /* X = B + I - S */
    return f.insns;
}
