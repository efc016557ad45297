/*
 * jit_x86_alu.c - the x86-64 JIT's arithmetic: ALU and ALU64 instructions,
 * with their peepholes (lea forms, shift pairs, address folding into the
 * access that follows) and division by constants as multiplies.
 */
#include "vm/jit_x86_enc.h"

/* ---- constants without a 0x0f byte (hardened insns, jit_x86.c) ---------- */

/* A 32-bit mask m such that neither m nor x ^ m has a 0x0f byte. */
static uint32_t clean_mask(uint32_t x)
{
    uint32_t m = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t b = (uint8_t)(x >> (8 * k));
        m |= (uint32_t)((b ^ 0x20) == 0x0f ? 0x40 : 0x20) << (8 * k);
    }
    return m;
}

/* xor dst, imm32 (always the imm32 form; sign-extended when is64) */
static void emit_xor_i32(struct jit *j, bool is64, int dst, uint32_t imm)
{
    emit_rr(j, wflag(is64), 0x81, 6, dst);
    emit4(j, imm);
}

/* dst = v without a 0x0f byte: v's 32-bit halves are each split into two
 * masks. */
void gvm_jit_mov_clean(struct jit *j, int dst, uint64_t v)
{
    uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
    bool sext = v == (uint64_t)(int64_t)(int32_t)lo;
    /* the high half, or the low one when v is a (sign-)extended 32-bit value */
    uint32_t h = hi == 0 || sext ? lo : hi ^ (lo & 0x80000000u ? 0xffffffffu : 0);
    uint32_t m = clean_mask(h);
    emit_prefix(j, 0, 0, 0, dst);
    emit1(j, (uint8_t)(0xb8 | (dst & 7)));              /* mov dst32, h ^ m */
    emit4(j, h ^ m);
    emit_xor_i32(j, false, dst, m);                     /* dst = h, zero-extended */
    if (hi == 0)
        return;
    if (sext) {
        emit_rr(j, F_W, 0x63, dst, dst);                /* movsxd dst, dst32 */
        return;
    }
    emit_rr(j, F_W, 0xc1, 4, dst);                      /* shl dst, 32 */
    emit1(j, 32);
    /* two sign-extended xors: low half lo, high half flipped back when
     * exactly one of them is negative (bit 31 of lo), as h anticipated */
    uint32_t k1 = clean_mask(lo);
    emit_xor_i32(j, true, dst, k1);
    emit_xor_i32(j, true, dst, lo ^ k1);
}

bool gvm_jit_imm_via_tmp1(struct jit *j, bool is64, int dst, int32_t imm)
{
    if (!has_0f((uint32_t)imm, 4))
        return false;
    if (dst == TMP1) {
        j->harden_fail = true;
        return false;
    }
    emit_mov_ri_clean(j, TMP1, is64 ? (uint64_t)(int64_t)imm : (uint32_t)imm);
    return true;
}

/* ---- ALU --------------------------------------------------------------- */

static const struct { uint8_t rr; uint8_t ext; } alu_ops[16] = {
    [BPF_ADD >> 4] = { 0x01, 0 }, [BPF_SUB >> 4] = { 0x29, 5 },
    [BPF_OR >> 4]  = { 0x09, 1 }, [BPF_AND >> 4] = { 0x21, 4 },
    [BPF_XOR >> 4] = { 0x31, 6 },
};

static void emit_alu(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
    uint8_t op = BPF_OP(in->code);

    if (BPF_SRC(in->code) == BPF_X) {
        emit_alu_rr(j, alu_ops[op >> 4].rr, is64, dst, src);
        return;
    }
    if (in->imm == 0 && op != BPF_AND) {
        if (!is64)
            emit_mov_rr(j, false, dst, dst);   /* identity, but zero-extend */
        return;
    }
    if (in->imm == 0) {
        emit_xor_zero(j, dst);
        return;
    }
    if (op == BPF_ADD && (in->imm == 1 || in->imm == -1)) {
        emit_rr(j, wflag(is64), 0xff, in->imm == 1 ? 0 : 1, dst);   /* inc/dec */
        return;
    }
    emit_alu_ri(j, alu_ops[op >> 4].ext, is64, dst, in->imm);
}

static void emit_mul(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg];
    if (BPF_SRC(in->code) == BPF_X)
        emit_imul_rr(j, is64, dst, reg_map[in->src_reg]);
    else
        emit_imul_rri(j, is64, dst, dst, in->imm);
}

/* mov X, B; add X, I|imm; load/store [X+off]  ->  the access at
 * [B + I + imm + off], with X set only if it is read later (lea X, [B+I]):
 * the address needs no instruction of its own and the access does not wait
 * for it. Up to four consecutive accesses through X fold alike, and an
 * index scaled just before (mov I, S; lsh I, k) becomes the SIB scale.
 * Returns the insns consumed, 0 when the pattern does not apply. */
static bool is_mov_imm(const struct bpf_insn *in)
{
    return in->code == (BPF_ALU64 | BPF_MOV | BPF_K) || in->code == (BPF_ALU | BPF_MOV | BPF_K);
}

/* An instruction the address folding may emit ahead of the folded access
 * (it sat between the add and the access): a constant move or a simple
 * ALU op (add, sub, and, or, xor), none of which looks at the next insn. */
static bool is_simple_alu(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (is_mov_imm(in))
        return true;
    return (cls == BPF_ALU || cls == BPF_ALU64)
           && (op == BPF_ADD || op == BPF_SUB || op == BPF_AND || op == BPF_OR || op == BPF_XOR);
}

static void emit_simple_alu(struct jit *j, const struct bpf_insn *in)
{
    bool is64 = BPF_CLASS(in->code) == BPF_ALU64;
    if (BPF_OP(in->code) == BPF_MOV)
        emit_mov_ri(j, reg_map[in->dst_reg], is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
    else
        emit_alu(j, in, is64);
}

/* Is m a plain load or store through x (not storing x itself) whose
 * displacement plus disp0 fits 32 bits? */
static bool access_via(const struct bpf_insn *m, int x, int64_t disp0)
{
    uint8_t cls = BPF_CLASS(m->code), mode = BPF_MODE(m->code);
    if (cls == BPF_LDX) {
        if ((mode != BPF_MEM && mode != BPF_MEMSX) || m->src_reg != x)
            return false;
    } else if (cls == BPF_ST || cls == BPF_STX) {
        if (mode != BPF_MEM || m->dst_reg != x || (cls == BPF_STX && m->src_reg == x))
            return false;
    } else {
        return false;
    }
    return is_simm32(disp0) && is_simm32(disp0 + m->off);
}

static int try_fold_address(struct jit *j, const struct bpf_insn *in)
{
    const struct gvm_prog *p = j->prog;
    uint32_t i = j->idx;
    int pre = 0, scale = 0, tmp = -1;
    /* scaled: mov I, S; lsh I, k (k = 1..3); mov X, B; add X, I -> the
     * address is [B + S * 2^k], and I is computed only if read later */
    if (i + 4 < p->n && !j->is_target[i + 1] && !j->is_target[i + 2] && !j->is_target[i + 3]
        && in->src_reg != in->dst_reg
        && in[1].code == (BPF_ALU64 | BPF_LSH | BPF_K) && in[1].dst_reg == in->dst_reg
        && in[1].imm >= 1 && in[1].imm <= 3
        && in[2].code == (BPF_ALU64 | BPF_MOV | BPF_X) && in[2].off == 0
        && in[3].code == (BPF_ALU64 | BPF_ADD | BPF_X) && in[3].dst_reg == in[2].dst_reg
        && in[3].src_reg == in->dst_reg) {
        int x = in[2].dst_reg, b = in[2].src_reg, s = in->src_reg;
        tmp = in->dst_reg;
        if (x == tmp || x == b || b == tmp || s == x)
            return 0;
        pre = 2;
        scale = in[1].imm;
    }
    const struct bpf_insn *mvx = in + pre, *ad = mvx + 1, *m = mvx + 2;
    uint32_t im = i + (uint32_t)pre;              /* index of mov X, B */
    if (im + 2 >= p->n || j->is_target[im + 1] || j->is_target[im + 2])
        return 0;
    int x = mvx->dst_reg, b = mvx->src_reg, idx = -1;
    int64_t disp0 = 0;
    if (x == b || ad->dst_reg != x)
        return 0;
    if (pre)
        idx = in->src_reg;                        /* S, scaled */
    else if (ad->code == (BPF_ALU64 | BPF_ADD | BPF_X) && ad->src_reg != x)
        idx = ad->src_reg;
    else if (ad->code == (BPF_ALU64 | BPF_ADD | BPF_K))
        disp0 = ad->imm;
    else
        return 0;
    /* up to two simple ALU ops on other registers may sit between the add
     * and the access (clang schedules them there); they are emitted first */
    int between = 0;
    bool between_reads_tmp = false;
    while (between < 2 && im + 3 + between < p->n && is_simple_alu(m)
           && !j->is_target[im + 3 + between]) {
        uint16_t rd, wr;
        gvm_insn_reg_use(m, &rd, &wr);
        uint16_t addr_regs = (uint16_t)(1u << x | 1u << b | (idx >= 0 ? 1u << idx : 0));
        if ((rd | wr) & addr_regs)
            break;
        between_reads_tmp = between_reads_tmp || (tmp >= 0 && (rd & (1u << tmp)));
        m++;
        between++;
    }
    if (!access_via(m, x, disp0))
        return 0;
    /* further accesses through x, while x, b and the index keep their
     * values (a load into one of them ends the chain); up to two simple ALU
     * ops that touch none of them (nor the scaled index) may sit before
     * each, as in a load, modify, store: they are emitted in order */
    uint16_t keep = (uint16_t)(1u << x | 1u << b | (idx >= 0 ? 1u << idx : 0)
                               | (tmp >= 0 ? 1u << tmp : 0));
    uint32_t a = im + 2 + (uint32_t)between;     /* the last access folded */
    int n_acc = 1;
    while (n_acc < 4 && !(BPF_CLASS(p->insns[a].code) == BPF_LDX
                          && (keep & (1u << p->insns[a].dst_reg)))) {
        uint32_t nx = a + 1;
        int alu = 0;
        while (alu < 2 && nx < p->n && !j->is_target[nx] && is_simple_alu(&p->insns[nx])) {
            uint16_t rd, wr;
            gvm_insn_reg_use(&p->insns[nx], &rd, &wr);
            if ((rd | wr) & keep)
                break;
            nx++;
            alu++;
        }
        if (nx >= p->n || j->is_target[nx] || !access_via(&p->insns[nx], x, disp0))
            break;
        a = nx;
        n_acc++;
    }
    const struct bpf_insn *last = &p->insns[a];
    bool x_dead = (BPF_CLASS(last->code) == BPF_LDX && last->dst_reg == x)
                  || (j->live_out && !(j->live_out[a] & (1u << x)));
    bool tmp_needed = false;
    if (pre) {
        /* a last load into I itself ends what the program computed there */
        bool reloaded = BPF_CLASS(last->code) == BPF_LDX && last->dst_reg == tmp;
        tmp_needed = (!reloaded && (!j->live_out || (j->live_out[a] & (1u << tmp))))
                     || between_reads_tmp;
        for (const struct bpf_insn *k = m; k <= last; k++)
            tmp_needed = tmp_needed || (BPF_CLASS(k->code) == BPF_STX && k->src_reg == tmp);
    }
    int rb = reg_map[b], ri = idx >= 0 ? reg_map[idx] : -1;
    if (tmp_needed) {                             /* I as the program computed it */
        emit_mov_rr(j, true, reg_map[tmp], ri);
        emit_shift_ri(j, F_W, 4, reg_map[tmp], (uint8_t)scale);
    }
    for (int k = 0; k < between; k++)
        emit_simple_alu(j, &mvx[2 + k]);
    if (!x_dead) {
        if (ri >= 0)
            emit_rsib(j, F_W, 0x8d, reg_map[x], rb, ri, scale, (int32_t)disp0);   /* lea */
        else
            emit_lea(j, true, reg_map[x], rb, (int32_t)disp0);
    }
    for (; m <= last; m++) {
        if (BPF_CLASS(m->code) == BPF_ALU || BPF_CLASS(m->code) == BPF_ALU64)
            emit_simple_alu(j, m);
        else
            emit_mem_insn(j, m, (struct mem){ rb, ri, (int32_t)(disp0 + m->off), scale });
    }
    return (int)(a - i + 1);
}

/* mov and movsx; returns the number of BPF insns consumed (peepholes). */
static int emit_movop(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];

    if (is64 && BPF_SRC(in->code) == BPF_X && in->off == 0 && !j->hardening) {
        int used = gvm_jit_emit_fill(j);
        if (!used)
            used = try_fold_address(j, in);
        if (used)
            return used;
    }

    if (BPF_SRC(in->code) == BPF_K) {
        emit_mov_ri(j, dst, is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
        return 1;
    }
    switch (in->off) {
    case 8:  emit_rr(j, wflag(is64) | F_BRM, 0x0fbe, dst, src); return 1;
    case 16: emit_rr(j, wflag(is64), 0x0fbf, dst, src); return 1;
    case 32: emit_rr(j, F_W, 0x63, dst, src); return 1;
    }
    /* mov dst, src; add dst, imm|reg  ->  lea */
    if (dst != src && next_is_plain(j, j->idx)) {
        const struct bpf_insn *nx = in + 1;
        uint8_t want = (uint8_t)((is64 ? BPF_ALU64 : BPF_ALU) | BPF_ADD);
        if ((nx->code & ~BPF_X) == want && nx->dst_reg == in->dst_reg) {
            if (BPF_SRC(nx->code) == BPF_K) {
                emit_lea(j, is64, dst, src, nx->imm);
                return 2;
            }
            if (nx->src_reg != in->dst_reg) {
                emit_lea_sib(j, is64, dst, src, reg_map[nx->src_reg], 0);
                return 2;
            }
        }
    }
    if (is64 && dst == src)
        return 1;
    emit_mov_rr(j, is64, dst, src);
    return 1;
}

/* Shifts; x86 masks counts exactly as BPF does (63 / 31). */
static int emit_shift(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
    uint8_t op = BPF_OP(in->code);
    int ext = op == BPF_LSH ? 4 : op == BPF_RSH ? 5 : 7;

    if (BPF_SRC(in->code) == BPF_K) {
        uint8_t n = (uint8_t)(in->imm & (is64 ? 63 : 31));
        /* r <<= 32; r >>= 32 (or s>>= 32): zero/sign-extend the low half */
        if (is64 && op == BPF_LSH && n == 32 && next_is_plain(j, j->idx)) {
            const struct bpf_insn *nx = in + 1;
            if (nx->dst_reg == in->dst_reg && nx->imm == 32
                && (nx->code == (BPF_ALU64 | BPF_RSH | BPF_K)
                    || nx->code == (BPF_ALU64 | BPF_ARSH | BPF_K))) {
                if (nx->code == (BPF_ALU64 | BPF_RSH | BPF_K))
                    emit_mov_rr(j, false, dst, dst);
                else
                    emit_rr(j, F_W, 0x63, dst, dst);
                return 2;
            }
        }
        if (n == 0) {
            if (!is64)
                emit_mov_rr(j, false, dst, dst);
            return 1;
        }
        emit_shift_ri(j, wflag(is64), ext, dst, n);
        return 1;
    }
    if (gvm_jit_cpu.bmi2) {
        emit_shiftx(j, op == BPF_LSH ? 1 : op == BPF_RSH ? 3 : 2, is64, dst, dst, src);
        return 1;
    }
    if (src == RCX) {
        emit_shift_rcl(j, is64, ext, dst);
    } else if (dst == RCX) {
        emit_mov_rr(j, true, TMP1, RCX);
        emit_mov_rr(j, true, RCX, src);
        emit_shift_rcl(j, is64, ext, TMP1);
        emit_mov_rr(j, true, RCX, TMP1);
    } else {
        emit_mov_rr(j, true, TMP1, RCX);
        emit_mov_rr(j, true, RCX, src);
        emit_shift_rcl(j, is64, ext, dst);
        emit_mov_rr(j, true, RCX, TMP1);
    }
    return 1;
}

/* dst = dst / d or dst % d with d in TMP1 (non-zero, not -1 when signed). */
static void emit_div_core(struct jit *j, bool is64, bool mod, bool sgn, int dst)
{
    if (dst != RAX)
        emit_mov_rr(j, true, TMP2, RAX);
    if (dst != RDX)
        emit_mov_rr(j, true, TMP3, RDX);
    if (dst != RAX)
        emit_mov_rr(j, is64, RAX, dst);
    if (sgn) {
        emit_prefix(j, wflag(is64), 0, 0, 0);
        emit1(j, 0x99);                         /* cdq / cqo */
    } else {
        emit_xor_zero(j, RDX);
    }
    emit_unary(j, is64, sgn ? 7 : 6, TMP1);
    int res = mod ? RDX : RAX;
    if (dst != res)
        emit_mov_rr(j, is64, dst, res);
    if (dst != RAX)
        emit_mov_rr(j, true, RAX, TMP2);
    if (dst != RDX)
        emit_mov_rr(j, true, RDX, TMP3);
}

/* What dst becomes when the divisor is zero: div 0 -> 0, mod -> dst. */
static void emit_div_by_zero(struct jit *j, bool is64, bool mod, int dst)
{
    if (!mod)
        emit_xor_zero(j, dst);
    else if (!is64)
        emit_mov_rr(j, false, dst, dst);
}

/* Signed divisor -1: sdiv -> -dst (INT_MIN stays INT_MIN), smod -> 0. */
static void emit_div_by_minus1(struct jit *j, bool is64, bool mod, int dst)
{
    if (mod)
        emit_xor_zero(j, dst);
    else
        emit_unary(j, is64, 3, dst);
}

/* q = (((x - q) >> 1) + q) >> shift, the `add` form (jit_opt.h), on
 * 32- or 64-bit registers; t is clobbered and receives the quotient. */
static void emit_udiv_add_form(struct jit *j, bool is64, int t, int x, int q, uint8_t shift)
{
    emit_mov_rr(j, is64, t, x);
    emit_alu_rr(j, 0x29, is64, t, q);
    emit_shift_ri(j, wflag(is64), 5, t, 1);
    emit_alu_rr(j, 0x01, is64, t, q);
    if (shift)
        emit_shift_ri(j, wflag(is64), 5, t, shift);
}

/* The 64-bit multiply forms below need rdx:rax: x goes to TMP1 and the
 * program's rax and rdx wait in TMP2 and TMP3 (unless dst is one of them). */
static void wide_divconst_enter(struct jit *j, int dst)
{
    emit_mov_rr(j, true, TMP1, dst);
    if (dst != RAX)
        emit_mov_rr(j, true, TMP2, RAX);
    if (dst != RDX)
        emit_mov_rr(j, true, TMP3, RDX);
}

/* Then the quotient q, or for % the remainder x - q * d, becomes dst, and
 * rax and rdx are restored. */
static void wide_divconst_leave(struct jit *j, bool mod, int dst, int q, int32_t imm)
{
    if (mod) {
        emit_imul_rri(j, true, q, q, imm);                /* imm sign-extends to d */
        emit_alu_rr(j, 0x29, true, TMP1, q);
        q = TMP1;
    }
    if (dst != q)
        emit_mov_rr(j, true, dst, q);
    if (dst != RAX)
        emit_mov_rr(j, true, RAX, TMP2);
    if (dst != RDX)
        emit_mov_rr(j, true, RDX, TMP3);
}

/* dst = dst / d or dst % d, unsigned, d a constant that is not 0 nor a
 * power of two (imm: d as the instruction encodes it), as a multiply by
 * the magic number of jit_opt.h. 32-bit: x * magic fits 64 bits, so one
 * imul in scratch registers. 64-bit: the 128-bit product of `mul`, which
 * needs rax and rdx, saved around it as for div. */
static void emit_udiv_const(struct jit *j, bool is64, bool mod, int dst, uint64_t d, int32_t imm)
{
    struct gvm_udiv_magic m;
    gvm_udiv_magic(d, is64 ? 64 : 32, &m);
    int q;

    if (!is64) {
        emit_mov_rr(j, false, TMP1, dst);                /* x, zero-extended */
        emit_mov_ri(j, TMP2, m.magic);
        emit_imul_rr(j, true, TMP2, TMP1);
        if (m.add) {
            emit_shift_ri(j, F_W, 5, TMP2, 32);
            emit_udiv_add_form(j, false, TMP3, TMP1, TMP2, m.shift);
            q = TMP3;
        } else {
            emit_shift_ri(j, F_W, 5, TMP2, (uint8_t)(32 + m.shift));
            q = TMP2;
        }
        if (mod) {
            emit_imul_rri(j, false, q, q, imm);
            emit_alu_rr(j, 0x29, false, TMP1, q);
            q = TMP1;
        }
        emit_mov_rr(j, false, dst, q);
        return;
    }
    wide_divconst_enter(j, dst);
    emit_mov_ri(j, RAX, m.magic);
    emit_unary(j, true, 4, TMP1);                        /* mul: rdx:rax = rax * x */
    if (m.add) {
        emit_udiv_add_form(j, true, RAX, TMP1, RDX, m.shift);
        q = RAX;
    } else {
        if (m.shift)
            emit_shift_ri(j, F_W, 5, RDX, m.shift);
        q = RDX;
    }
    wide_divconst_leave(j, mod, dst, q, imm);
}

/* dst = dst s/ d or dst s% d (truncating; the remainder has the
 * dividend's sign), d a constant other than 0 and -1 (imm: d as the insn
 * encodes it). |d| = 2^k: a shift, rounded toward zero by adding 2^k - 1
 * to negative dividends. Otherwise the multiply of jit_opt.h: 32-bit in
 * scratch registers on the sign-extended dividend (the product fits 64
 * bits), 64-bit with the one-operand imul (rdx:rax, saved around it). */
static void emit_sdiv_const(struct jit *j, bool is64, bool mod, int dst, int64_t d, int32_t imm)
{
    unsigned w = wflag(is64);
    int bits = is64 ? 64 : 32;
    uint64_t ad = (uint64_t)(d < 0 ? -d : d);

    if (ad == 1) {                                      /* d = 1 (-1 is handled before) */
        if (mod)
            emit_xor_zero(j, dst);
        else if (!is64)
            emit_mov_rr(j, false, dst, dst);
        return;
    }
    if ((ad & (ad - 1)) == 0) {
        int k = __builtin_ctzll(ad);
        emit_mov_rr(j, is64, TMP1, dst);                /* x */
        emit_mov_rr(j, is64, TMP2, TMP1);
        emit_shift_ri(j, w, 7, TMP2, (uint8_t)(bits - 1));       /* -1 if x < 0 */
        emit_shift_ri(j, w, 5, TMP2, (uint8_t)(bits - k));       /* 2^k - 1 or 0 */
        emit_alu_rr(j, 0x01, is64, TMP2, TMP1);
        emit_shift_ri(j, w, 7, TMP2, (uint8_t)k);                /* x / 2^k */
        if (mod) {                                      /* x - (x / |d|) * |d| */
            emit_shift_ri(j, w, 4, TMP2, (uint8_t)k);
            emit_alu_rr(j, 0x29, is64, TMP1, TMP2);
            emit_mov_rr(j, is64, dst, TMP1);
            return;
        }
        if (d < 0)
            emit_unary(j, is64, 3, TMP2);               /* neg */
        emit_mov_rr(j, is64, dst, TMP2);
        return;
    }
    struct gvm_sdiv_magic m;
    gvm_sdiv_magic(d, bits, &m);
    if (!is64) {
        emit_rr(j, F_W, 0x63, TMP1, dst);               /* x, sign-extended */
        emit_imul_rri(j, true, TMP2, TMP1, (int32_t)m.magic);
        emit_shift_ri(j, F_W, 7, TMP2, 32);             /* mulhs */
        if (d > 0 && m.magic < 0)
            emit_alu_rr(j, 0x01, true, TMP2, TMP1);
        if (d < 0 && m.magic > 0)
            emit_alu_rr(j, 0x29, true, TMP2, TMP1);
        if (m.shift)
            emit_shift_ri(j, F_W, 7, TMP2, m.shift);
        emit_mov_rr(j, true, TMP3, TMP2);
        emit_shift_ri(j, F_W, 5, TMP3, 63);
        emit_alu_rr(j, 0x01, true, TMP2, TMP3);         /* +1 when negative */
        if (mod) {
            emit_imul_rri(j, false, TMP2, TMP2, imm);
            emit_alu_rr(j, 0x29, false, TMP1, TMP2);
            emit_mov_rr(j, false, dst, TMP1);
        } else {
            emit_mov_rr(j, false, dst, TMP2);
        }
        return;
    }
    wide_divconst_enter(j, dst);
    emit_mov_ri(j, RAX, (uint64_t)m.magic);
    emit_unary(j, true, 5, TMP1);                       /* imul: rdx:rax = rax * x */
    if (d > 0 && m.magic < 0)
        emit_alu_rr(j, 0x01, true, RDX, TMP1);
    if (d < 0 && m.magic > 0)
        emit_alu_rr(j, 0x29, true, RDX, TMP1);
    if (m.shift)
        emit_shift_ri(j, F_W, 7, RDX, m.shift);
    emit_mov_rr(j, true, RAX, RDX);
    emit_shift_ri(j, F_W, 5, RAX, 63);
    emit_alu_rr(j, 0x01, true, RDX, RAX);
    wide_divconst_leave(j, mod, dst, RDX, imm);
}

static void emit_divmod(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg];
    bool mod = BPF_OP(in->code) == BPF_MOD, sgn = in->off == 1;

    if (BPF_SRC(in->code) == BPF_K) {
        uint64_t d = is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm;
        if (d == 0) {
            emit_div_by_zero(j, is64, mod, dst);
            return;
        }
        if (sgn && in->imm == -1) {
            emit_div_by_minus1(j, is64, mod, dst);
            return;
        }
        if (!sgn && (d & (d - 1)) == 0) {
            int sh = __builtin_ctzll(d);
            if (!mod) {
                if (sh)
                    emit_shift_ri(j, wflag(is64), 5, dst, (uint8_t)sh);
                else if (!is64)
                    emit_mov_rr(j, false, dst, dst);
                return;
            }
            if (d - 1 <= INT32_MAX) {
                if (d == 1)
                    emit_xor_zero(j, dst);
                else
                    emit_alu_ri(j, 4, is64, dst, (int32_t)(d - 1));
                return;
            }
        }
        if (!sgn && !j->hardening) {     /* hardened: no magic numbers */
            emit_udiv_const(j, is64, mod, dst, d, in->imm);
            return;
        }
        if (sgn && !j->hardening) {
            emit_sdiv_const(j, is64, mod, dst, is64 ? (int64_t)in->imm : (int64_t)(int32_t)in->imm,
                            in->imm);
            return;
        }
        emit_mov_ri(j, TMP1, d);
        emit_div_core(j, is64, mod, sgn, dst);
        return;
    }
    emit_mov_rr(j, is64, TMP1, reg_map[in->src_reg]);
    emit_test_rr(j, is64, TMP1, TMP1);
    size_t to_zero = emit_jcc8_fwd(j, CC_E);
    size_t to_m1 = 0;
    if (sgn) {
        emit_cmp_ri(j, is64, TMP1, -1);
        to_m1 = emit_jcc8_fwd(j, CC_E);
    }
    emit_div_core(j, is64, mod, sgn, dst);
    size_t to_done = emit_jcc8_fwd(j, CC_JMP);
    size_t to_done2 = 0;
    fixup8(j, to_zero);
    emit_div_by_zero(j, is64, mod, dst);
    if (sgn) {
        to_done2 = emit_jcc8_fwd(j, CC_JMP);
        fixup8(j, to_m1);
        emit_div_by_minus1(j, is64, mod, dst);
        fixup8(j, to_done2);
    }
    fixup8(j, to_done);
}

static void emit_end(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg];
    bool swap = is64 || BPF_SRC(in->code) == BPF_TO_BE;

    switch (in->imm) {
    case 16:
        if (swap)
            emit_shift_ri(j, F_66, 0, dst, 8);      /* rol r16, 8 */
        emit_rr(j, 0, 0x0fb7, dst, dst);            /* movzx r32, r16 */
        break;
    case 32:
        if (swap)
            emit_bswap(j, false, dst);
        else
            emit_mov_rr(j, false, dst, dst);
        break;
    default:
        if (swap)
            emit_bswap(j, true, dst);
        break;
    }
}

int gvm_jit_alu_insn(struct jit *j, const struct bpf_insn *in)
{
    bool is64 = BPF_CLASS(in->code) == BPF_ALU64;

    switch (BPF_OP(in->code)) {
    case BPF_ADD: case BPF_SUB: case BPF_OR: case BPF_AND: case BPF_XOR:
        emit_alu(j, in, is64);
        return 1;
    case BPF_MUL:
        emit_mul(j, in, is64);
        return 1;
    case BPF_DIV: case BPF_MOD:
        emit_divmod(j, in, is64);
        return 1;
    case BPF_LSH: case BPF_RSH: case BPF_ARSH:
        return emit_shift(j, in, is64);
    case BPF_NEG:
        emit_unary(j, is64, 3, reg_map[in->dst_reg]);
        return 1;
    case BPF_MOV:
        return emit_movop(j, in, is64);
    case BPF_END:
        emit_end(j, in, is64);
        return 1;
    }
    return -1;
}
