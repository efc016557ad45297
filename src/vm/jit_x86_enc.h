/*
 * jit_x86_enc.h - the x86-64 JIT's state and its instruction encoders, shared
 * by jit_x86.c (BPF instructions to x86, layout, install) and jit_x86_alu.c
 * (arithmetic). Not for use outside src/vm/. Register mapping, frame and
 * branch-relaxation rules: see jit_x86.c.
 */
#ifndef GRAFT_VM_JIT_X86_ENC_H
#define GRAFT_VM_JIT_X86_ENC_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vm/jit_opt.h"
#include "vm/vm_internal.h"

/* x86-64 register numbers */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

static const uint8_t reg_map[BPF_NREGS] = {
    RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP,
};

#define TMP1 R11
#define TMP2 R10
#define TMP3 R9
#define STATE R12

#define FRAME_BYTES   (8 + 5 * 8 + BPF_STACK_SIZE)   /* ret addr + saves + stack */
/* Function 0 starts right after the fixed-size entry wrapper; tail calls
 * enter other programs there. */
#define JIT_FUNC0_OFF 37
#define JIT_ABORT_R0  ((uint64_t)(int64_t)-EFAULT)   /* r0 when a run is aborted */

/* x86 condition codes */
enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7,
       CC_L = 0xc, CC_GE = 0xd, CC_LE = 0xe, CC_G = 0xf, CC_JMP = -1 };

/* emit_* flags */
#define F_W      0x01u    /* REX.W: 64-bit operation */
#define F_66     0x02u    /* operand-size prefix: 16-bit operation */
#define F_BREG   0x04u    /* the ModRM.reg operand is a byte register */
#define F_BRM    0x08u    /* the ModRM.rm operand is a byte register */
#define F_LOCKP   0x10u
#define F_DISP32 0x20u    /* always a 32-bit displacement (pass-stable size) */

/* A 6-byte call site to a host function: `cs call rel32` when the target
 * is within +-2 GiB of the installed code, else `call [rip+disp32]` through
 * its slot in the literal pool that follows the code. Which one is decided
 * at install time, when the code's address is known; both are 6 bytes, so
 * the layout does not depend on where the mapping lands. */
struct host_call {
    uint32_t pos;         /* offset of the 6-byte call */
    uint32_t insn;        /* the BPF insn it belongs to */
    uint64_t target;
};

/* Gadget hardening (jit_x86.c, "No WRPKRU/XRSTOR in the code"): per insn,
 * how many nops go before and after it (its constants are then also
 * materialized without a 0x0f byte and no peephole starts there), and
 * whether its host calls go through the literal pool. Sticky. */
#define HARD_LEVEL   0x07u
#define HARD_MAX     4u
#define HARD_POOL    0x80u

struct jit {
    const struct gvm_prog *prog;
    uint8_t *buf;
    size_t len, cap;
    int pass;
    bool changed;          /* a branch became rel32 during this pass */
    bool oom;

    uint32_t idx;          /* BPF insn being emitted */
    uint32_t cur_start;    /* its offset in this pass */
    uint32_t prev_start;   /* its offset in the previous pass */

    uint32_t *off, *prev_off;              /* per insn, [n] = end */
    uint32_t *fentry, *prev_fentry;        /* per function: prologue */
    uint32_t *fepi, *prev_fepi;            /* per function: epilogue */
    uint32_t abort_off, prev_abort_off;
    uint32_t wrapper_ret;                  /* wrapper code after `call func0` */
    uint32_t bitmap_off, prev_bitmap_off;  /* callx function-entry bitmap */
    uint32_t code_len, prev_code_len;
    uint8_t *is_long;                      /* per insn: its branch is rel32 */
    uint8_t *is_target;                    /* per insn: how many jumps and function
                                            * entries lead here (saturating) */
    int32_t *thread_to;                    /* gvm_same_test_pairs: a branch's new */
    uint8_t *no_code;                      /* target; a branch that emits nothing */
    bool uses_callx;

    struct host_call *calls;
    uint32_t n_calls, cap_calls;
    uint32_t pool_off;                     /* literal pool: one slot per call */
    bool pool_page;                        /* pool and bitmap on their own page,
                                              read-only (harden_at) */
    size_t page;

    uint8_t *hard;                         /* per insn: HARD_* (sticky) */
    bool any_hard;                         /* some hard[] has a level */
    bool hardening;                        /* the current insn is hardened */
    bool harden_fail;                      /* a clean form was not possible */
    uint8_t abort_pad;                     /* nops before the abort stub's jmp */

    bool r1_known;                         /* r1 holds r1_val (LD_IMM64) */
    uint64_t r1_val;

    bool leaf;                             /* one function, no calls: lean frame */
    bool direct;                           /* one function, host calls only: the
                                            * native entry is function 0 (no wrapper) */
    uint16_t regs_named;                   /* leaf: bit r set if BPF rN appears */

    /* Stack slots kept in registers (jit_opt.h, jit_x86_plan.c): per function
     * the x86 register of each slot, or -1 for memory. */
    int8_t (*slot_reg)[GVM_SLOTS];
    const int8_t *cur_slots;               /* the function being emitted */
    uint16_t *live_out;                    /* per insn (jit_live.c); NULL: all live */
    bool tmp1_taken;                       /* a stack slot lives in TMP1 */
    uint64_t const_val[6];                 /* leaf: 64-bit constants held in */
    int8_t const_reg[6];                   /* registers from the prologue on */
    int n_consts;                          /* (jit_consts.c, jit_x86_plan.c) */
    int cmp_src;                           /* >= 0: the x86 register a compare
                                              reads for its BPF src (a held
                                              constant); -1: reg_map's */
    bool cmp_byte;                         /* a compare reads its dst's low
                                              byte (try_byte_compare) */
    bool cmp_test;                         /* a compare is test dst, cmp_mask */
    int32_t cmp_mask;
    bool cmp_mask64;                       /* ... of all 64 bits */
    int saved_regs[8];                     /* leaf or direct: callee-saved regs */
    int n_saved_regs;                      /* to push (jit_x86_plan.c) */
    bool frame_pad;                        /* direct: 8 more bytes of frame keep
                                              rsp 16-aligned at helper calls */
    bool leaf_frame;                       /* leaf: sets up the 512-byte stack */
};

/* CPU features, detected once (jit_x86.c) */
struct gvm_jit_cpu { bool init, bmi2, rdpid, rdtscp; };
extern struct gvm_jit_cpu gvm_jit_cpu;

/* ---- byte emission ---------------------------------------------------- */

static inline bool reserve(struct jit *j, size_t n)
{
    if (j->len + n <= j->cap)
        return true;
    size_t cap = j->cap ? j->cap : 4096;
    while (cap < j->len + n)
        cap *= 2;
    uint8_t *b = realloc(j->buf, cap);
    if (!b) {
        j->oom = true;
        return false;
    }
    j->buf = b;
    j->cap = cap;
    return true;
}

static inline void emit1(struct jit *j, uint8_t b)
{
    j->buf[j->len++] = b;
}

static inline void emit4(struct jit *j, uint32_t v)
{
    memcpy(j->buf + j->len, &v, 4);
    j->len += 4;
}

static inline void emit8(struct jit *j, uint64_t v)
{
    memcpy(j->buf + j->len, &v, 8);
    j->len += 8;
}

static inline bool is_imm8(int64_t v)
{
    return v >= -128 && v <= 127;
}

static inline bool is_simm32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

static inline void emit_prefix(struct jit *j, unsigned f, int reg, int index, int rm)
{
    if (f & F_LOCKP)
        emit1(j, 0xf0);
    if (f & F_66)
        emit1(j, 0x66);
    uint8_t rex = 0x40 | (f & F_W ? 8 : 0) | (reg & 8 ? 4 : 0)
                | (index & 8 ? 2 : 0) | (rm & 8 ? 1 : 0);
    if (rex != 0x40 || ((f & F_BREG) && reg >= 4 && reg <= 7)
        || ((f & F_BRM) && rm >= 4 && rm <= 7))
        emit1(j, rex);
}

static inline void emit_opcode(struct jit *j, uint32_t opc)
{
    if (opc > 0xffff)
        emit1(j, (uint8_t)(opc >> 16));
    if (opc > 0xff)
        emit1(j, (uint8_t)(opc >> 8));
    emit1(j, (uint8_t)opc);
}

/* op reg, rm (both registers) */
static inline void emit_rr(struct jit *j, unsigned f, uint32_t opc, int reg, int rm)
{
    emit_prefix(j, f, reg, 0, rm);
    emit_opcode(j, opc);
    emit1(j, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* ModRM (+SIB) (+disp) for [base + disp]; rbp/r13 need a displacement and
 * rsp/r12 need a SIB byte. */
static inline void emit_mem_operand(struct jit *j, unsigned f, int reg, int base, int32_t disp)
{
    int mod = (f & F_DISP32) ? 2 : (disp == 0 && (base & 7) != 5) ? 0 : is_imm8(disp) ? 1 : 2;
    emit1(j, (uint8_t)(mod << 6 | (reg & 7) << 3 | (base & 7)));
    if ((base & 7) == 4)
        emit1(j, 0x24);
    if (mod == 1)
        emit1(j, (uint8_t)disp);
    else if (mod == 2)
        emit4(j, (uint32_t)disp);
}

/* op reg, [base + disp] */
static inline void emit_rm(struct jit *j, unsigned f, uint32_t opc, int reg, int base, int32_t disp)
{
    emit_prefix(j, f, reg, 0, base);
    emit_opcode(j, opc);
    emit_mem_operand(j, f, reg, base, disp);
}

/* op reg, [base + index*(1<<scale) + disp] */
static inline void emit_rsib(struct jit *j, unsigned f, uint32_t opc, int reg, int base,
                      int index, int scale, int32_t disp)
{
    emit_prefix(j, f, reg, index, base);
    emit_opcode(j, opc);
    int mod = (disp == 0 && (base & 7) != 5) ? 0 : is_imm8(disp) ? 1 : 2;
    emit1(j, (uint8_t)(mod << 6 | (reg & 7) << 3 | 4));
    emit1(j, (uint8_t)(scale << 6 | (index & 7) << 3 | (base & 7)));
    if (mod == 1)
        emit1(j, (uint8_t)disp);
    else if (mod == 2)
        emit4(j, (uint32_t)disp);
}

/* ---- x86 instructions, named after what they emit ---------------------- */

static inline unsigned wflag(bool is64)
{
    return is64 ? F_W : 0;
}

static inline void emit_mov_rr(struct jit *j, bool is64, int dst, int src)
{
    emit_rr(j, wflag(is64), 0x89, src, dst);
}

/* Is there a 0x0f byte among the n low bytes of v? Every WRPKRU/XRSTOR
 * pattern starts with one, and no JIT opcode byte is followed by a pattern
 * byte, so code whose data bytes have none holds no pattern of its own. */
static inline bool has_0f(uint64_t v, int n)
{
    for (int k = 0; k < n; k++, v >>= 8)
        if ((v & 0xff) == 0x0f)
            return true;
    return false;
}

/* dst = v in instructions none of whose bytes is 0x0f (hardened insns;
 * jit_x86_alu.c). Clobbers flags. Out of line: rarely used. */
void gvm_jit_mov_clean(struct jit *j, int dst, uint64_t v) __attribute__((cold));
#define emit_mov_ri_clean gvm_jit_mov_clean

/* add/or/and/sub/xor/cmp/test dst, src (opc is the "r/m, r" opcode) */
static inline void emit_alu_rr(struct jit *j, uint8_t opc, bool is64, int dst, int src)
{
    emit_rr(j, wflag(is64), opc, src, dst);
}

/* In a hardened insn, an immediate holding a 0x0f byte goes through TMP1
 * instead (free there: no stack slot lives in it once any insn is hardened,
 * and no expansion that keeps a value in TMP1 takes such a constant); returns
 * true when it did, with TMP1 = imm (sign-extended when is64). */
bool gvm_jit_imm_via_tmp1(struct jit *j, bool is64, int dst, int32_t imm) __attribute__((cold));

static inline bool imm_via_tmp1(struct jit *j, bool is64, int dst, int32_t imm)
{
    if (__builtin_expect(!j->hardening, 1))
        return false;
    return gvm_jit_imm_via_tmp1(j, is64, dst, imm);
}

/* group-1 op dst, imm: ext 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp */
static inline void emit_alu_ri(struct jit *j, int ext, bool is64, int dst, int32_t imm)
{
    static const uint8_t rr_of_ext[8] = { 0x01, 0x09, 0, 0, 0x21, 0x29, 0x31, 0x39 };
    if (imm_via_tmp1(j, is64, dst, imm)) {
        emit_rr(j, wflag(is64), rr_of_ext[ext], TMP1, dst);
        return;
    }
    if (is_imm8(imm)) {
        emit_rr(j, wflag(is64), 0x83, ext, dst);
        emit1(j, (uint8_t)imm);
    } else {
        emit_rr(j, wflag(is64), 0x81, ext, dst);
        emit4(j, (uint32_t)imm);
    }
}

static inline void emit_cmp_ri(struct jit *j, bool is64, int dst, int32_t imm)
{
    emit_alu_ri(j, 7, is64, dst, imm);
}

static inline void emit_test_rr(struct jit *j, bool is64, int a, int b)
{
    emit_alu_rr(j, 0x85, is64, a, b);
}

static inline void emit_test_ri(struct jit *j, bool is64, int dst, int32_t imm)
{
    if (imm_via_tmp1(j, is64, dst, imm)) {
        emit_rr(j, wflag(is64), 0x85, TMP1, dst);
        return;
    }
    emit_rr(j, wflag(is64), 0xf7, 0, dst);
    emit4(j, (uint32_t)imm);
}

static inline void emit_xor_zero(struct jit *j, int r)
{
    emit_alu_rr(j, 0x31, false, r, r);
}

/* dst = v, picking the shortest encoding */
static inline void emit_mov_ri(struct jit *j, int dst, uint64_t v)
{
    if (__builtin_expect(j->hardening, 0)) {
        emit_mov_ri_clean(j, dst, v);
        return;
    }
    if (v == 0) {
        emit_xor_zero(j, dst);
    } else if (v <= UINT32_MAX) {
        emit_prefix(j, 0, 0, 0, dst);
        emit1(j, (uint8_t)(0xb8 | (dst & 7)));
        emit4(j, (uint32_t)v);
    } else if (is_simm32((int64_t)v)) {
        emit_rr(j, F_W, 0xc7, 0, dst);
        emit4(j, (uint32_t)v);
    } else {
        emit_prefix(j, F_W, 0, 0, dst);
        emit1(j, (uint8_t)(0xb8 | (dst & 7)));
        emit8(j, v);
    }
}

/* movabs dst, imm64 (always 10 bytes; a clean form when hardened) */
static inline void emit_movabs(struct jit *j, int dst, uint64_t v)
{
    if (__builtin_expect(j->hardening, 0)) {
        emit_mov_ri_clean(j, dst, v);
        return;
    }
    emit_prefix(j, F_W, 0, 0, dst);
    emit1(j, (uint8_t)(0xb8 | (dst & 7)));
    emit8(j, v);
}

static inline void emit_imul_rr(struct jit *j, bool is64, int dst, int src)
{
    emit_rr(j, wflag(is64), 0x0faf, dst, src);
}

static inline void emit_imul_rri(struct jit *j, bool is64, int dst, int src, int32_t imm)
{
    if (src != TMP1 && imm_via_tmp1(j, is64, dst, imm)) {
        if (dst != src)
            emit_rr(j, wflag(is64), 0x89, src, dst);
        emit_rr(j, wflag(is64), 0x0faf, dst, TMP1);
        return;
    }
    if (is_imm8(imm)) {
        emit_rr(j, wflag(is64), 0x6b, dst, src);
        emit1(j, (uint8_t)imm);
    } else {
        emit_rr(j, wflag(is64), 0x69, dst, src);
        emit4(j, (uint32_t)imm);
    }
}

/* shift group: ext 0 rol, 4 shl, 5 shr, 7 sar */
static inline void emit_shift_ri(struct jit *j, unsigned f, int ext, int dst, uint8_t n)
{
    if (n == 1) {
        emit_rr(j, f, 0xd1, ext, dst);
    } else {
        emit_rr(j, f, 0xc1, ext, dst);
        emit1(j, n);
    }
}

static inline void emit_shift_rcl(struct jit *j, bool is64, int ext, int dst)
{
    emit_rr(j, wflag(is64), 0xd3, ext, dst);
}

/* BMI2 shlx/shrx/sarx dst, src, cnt (pp: 1 = 66 shlx, 2 = F3 sarx, 3 = F2 shrx) */
static inline void emit_shiftx(struct jit *j, int pp, bool is64, int dst, int src, int cnt)
{
    emit1(j, 0xc4);
    emit1(j, (uint8_t)((dst & 8 ? 0 : 0x80) | 0x40 | (src & 8 ? 0 : 0x20) | 0x02));
    emit1(j, (uint8_t)((is64 ? 0x80 : 0) | ((~cnt & 15) << 3) | pp));
    emit1(j, 0xf7);
    emit1(j, (uint8_t)(0xc0 | (dst & 7) << 3 | (src & 7)));
}

/* group-3 unary: ext 2 not, 3 neg, 6 div, 7 idiv */
static inline void emit_unary(struct jit *j, bool is64, int ext, int r)
{
    emit_rr(j, wflag(is64), 0xf7, ext, r);
}

static inline void emit_bswap(struct jit *j, bool is64, int r)
{
    emit_prefix(j, wflag(is64), 0, 0, r);
    emit1(j, 0x0f);
    emit1(j, (uint8_t)(0xc8 | (r & 7)));
}

static inline void emit_lea(struct jit *j, bool is64, int dst, int base, int32_t disp)
{
    emit_rm(j, wflag(is64), 0x8d, dst, base, disp);
}

static inline void emit_lea_sib(struct jit *j, bool is64, int dst, int base, int index, int32_t disp)
{
    emit_rsib(j, wflag(is64), 0x8d, dst, base, index, 0, disp);
}

static inline void emit_push(struct jit *j, int r)
{
    emit_prefix(j, 0, 0, 0, r);
    emit1(j, (uint8_t)(0x50 | (r & 7)));
}

static inline void emit_pop(struct jit *j, int r)
{
    emit_prefix(j, 0, 0, 0, r);
    emit1(j, (uint8_t)(0x58 | (r & 7)));
}

static inline void emit_call_r(struct jit *j, int r)
{
    emit_rr(j, 0, 0xff, 2, r);
}

static inline void emit_jmp_r(struct jit *j, int r)
{
    emit_rr(j, 0, 0xff, 4, r);
}

/* A memory operand [base + index * 2^scale + disp]; index < 0: none. */
struct mem {
    int base, index;
    int32_t disp;
    int scale;                 /* index * (1 << scale) */
};

static inline struct mem mem_bd(int base, int32_t disp)
{
    return (struct mem){ base, -1, disp, 0 };
}

static inline void emit_mem(struct jit *j, unsigned f, uint32_t opc, int reg, struct mem m)
{
    if (m.index < 0)
        emit_rm(j, f, opc, reg, m.base, m.disp);
    else
        emit_rsib(j, f, opc, reg, m.base, m.index, m.scale, m.disp);
}

/* Load size bytes from m into dst, zero- or sign-extended. */
static inline void emit_load(struct jit *j, int size, bool sx, int dst, struct mem m)
{
    switch (size) {
    case BPF_B: emit_mem(j, sx ? F_W : 0, sx ? 0x0fbe : 0x0fb6, dst, m); break;
    case BPF_H: emit_mem(j, sx ? F_W : 0, sx ? 0x0fbf : 0x0fb7, dst, m); break;
    case BPF_W: emit_mem(j, sx ? F_W : 0, sx ? 0x63 : 0x8b, dst, m); break;
    default:    emit_mem(j, F_W, 0x8b, dst, m); break;
    }
}

static inline void emit_store_r(struct jit *j, int size, struct mem m, int src)
{
    switch (size) {
    case BPF_B: emit_mem(j, F_BREG, 0x88, src, m); break;
    case BPF_H: emit_mem(j, F_66, 0x89, src, m); break;
    case BPF_W: emit_mem(j, 0, 0x89, src, m); break;
    default:    emit_mem(j, F_W, 0x89, src, m); break;
    }
}

static inline void emit_store_i(struct jit *j, int size, struct mem m, int32_t imm)
{
    /* hardened: the value from TMP1, so that no immediate follows the
     * displacement (disp8 0x0f, imm 01 ef .. would be a WRPKRU) */
    if (__builtin_expect(j->hardening, 0) && m.base != TMP1 && m.index != TMP1) {
        emit_mov_ri_clean(j, TMP1, (uint64_t)(int64_t)imm);
        emit_store_r(j, size, m, TMP1);
        return;
    }
    switch (size) {
    case BPF_B: emit_mem(j, 0, 0xc6, 0, m); emit1(j, (uint8_t)imm); break;
    case BPF_H:
        emit_mem(j, F_66, 0xc7, 0, m);
        emit1(j, (uint8_t)imm);
        emit1(j, (uint8_t)(imm >> 8));
        break;
    case BPF_W: emit_mem(j, 0, 0xc7, 0, m); emit4(j, (uint32_t)imm); break;
    default:    emit_mem(j, F_W, 0xc7, 0, m); emit4(j, (uint32_t)imm); break;
    }
}

/* One plain load or store (LDX/ST/STX MEM) at m instead of its own base. */
static inline void emit_mem_insn(struct jit *j, const struct bpf_insn *in, struct mem m)
{
    uint8_t cls = BPF_CLASS(in->code);
    if (cls == BPF_LDX)
        emit_load(j, BPF_SIZE(in->code), BPF_MODE(in->code) == BPF_MEMSX, reg_map[in->dst_reg], m);
    else if (cls == BPF_ST)
        emit_store_i(j, BPF_SIZE(in->code), m, in->imm);
    else
        emit_store_r(j, BPF_SIZE(in->code), m, reg_map[in->src_reg]);
}

/* ---- branches ---------------------------------------------------------- */

/* Where the next byte will be, measured in the previous pass's layout. */
static inline uint32_t here_prev(const struct jit *j)
{
    return j->prev_start + (uint32_t)(j->len - j->cur_start);
}

/* The one relaxable branch of the current insn (cc < 0: jmp) to an offset
 * measured on the previous pass. */
static inline void emit_branch(struct jit *j, int cc, uint32_t target)
{
    if (!j->is_long[j->idx]) {
        int64_t d = (int64_t)target - (int64_t)(here_prev(j) + 2);
        if (j->pass == 0 || is_imm8(d)) {
            emit1(j, cc < 0 ? 0xeb : (uint8_t)(0x70 | cc));
            emit1(j, (uint8_t)(int8_t)d);
            return;
        }
        j->is_long[j->idx] = 1;
        j->changed = true;
    }
    int size = cc < 0 ? 5 : 6;
    int64_t d = (int64_t)target - (int64_t)(here_prev(j) + size);
    if (cc < 0) {
        emit1(j, 0xe9);
    } else {
        emit1(j, 0x0f);
        emit1(j, (uint8_t)(0x80 | cc));
    }
    emit4(j, (uint32_t)(int32_t)d);
}

/* A rel32 jcc (cc >= 0) or jmp (CC_JMP) to an offset from the previous pass. */
static inline void emit_rel32(struct jit *j, int cc, uint32_t target)
{
    if (cc == CC_JMP) {
        emit1(j, 0xe9);
    } else {
        emit1(j, 0x0f);
        emit1(j, (uint8_t)(0x80 | cc));
    }
    int64_t d = (int64_t)target - (int64_t)(here_prev(j) + 4);
    emit4(j, (uint32_t)(int32_t)d);
}

/* lea dst, [rip + disp32] to an offset from the previous pass: the code's
 * own addresses without anything to patch at install (7 bytes) */
static inline void emit_lea_code(struct jit *j, int dst, uint32_t target)
{
    emit_prefix(j, F_W, dst, 0, 0);
    emit1(j, 0x8d);
    emit1(j, (uint8_t)(0x05 | (dst & 7) << 3));
    int64_t d = (int64_t)target - (int64_t)(here_prev(j) + 4);
    emit4(j, (uint32_t)(int32_t)d);
}

static inline void emit_call_rel32(struct jit *j, uint32_t target)
{
    emit1(j, 0xe8);
    int64_t d = (int64_t)target - (int64_t)(here_prev(j) + 4);
    emit4(j, (uint32_t)(int32_t)d);
}

static inline void emit_jcc_abort(struct jit *j, int cc)
{
    emit_rel32(j, cc, j->prev_abort_off);
}

/* Short forward jump inside one insn's expansion: returns the fixup. */
static inline size_t emit_jcc8_fwd(struct jit *j, int cc)
{
    emit1(j, cc < 0 ? 0xeb : (uint8_t)(0x70 | cc));
    emit1(j, 0);
    return j->len;
}

static inline void fixup8(struct jit *j, size_t after)
{
    j->buf[after - 1] = (uint8_t)(int8_t)(j->len - after);
}

/* Is insn i + 1 reached only by falling through from i (a peephole may
 * then take both)? */
static inline bool next_is_plain(const struct jit *j, uint32_t i)
{
    return i + 1 < j->prog->n && !j->is_target[i + 1] && !j->hardening;
}

/* jit_x86_alu.c: ALU and ALU64 instructions; returns the insns consumed
 * (peepholes take several), -1 for an unknown operation. */
int gvm_jit_alu_insn(struct jit *j, const struct bpf_insn *in);

/* jit_x86_plan.c: j->slot_reg, j->const_val/const_reg/n_consts and the
 * leaf or direct frame (saved_regs, leaf_frame, frame_pad) for the current
 * hardening; 0, or -ENOMEM. */
int gvm_jit_plan_slots(struct jit *j, struct graft_err *err);

/* jit_x86_fill.c: a fill loop (the memset idiom) starting at insn i. */
struct gvm_fill {
    int x, b, idx, n;              /* BPF registers: address, base, index, bound */
    int32_t k;                     /* the index's end value (until_eq) */
    bool until_eq;                 /* loop until idx == k, else while idx < n */
    int bytes;                     /* store size = index step */
    const struct bpf_insn *store;
    int insns;                     /* the loop's length */
};
bool gvm_jit_fill_loop(const struct gvm_prog *p, const uint8_t *is_target, uint32_t i,
                       struct gvm_fill *f);
/* Emit the fill loop at j->idx as rep stos; returns the insns consumed,
 * 0 when there is none. */
int gvm_jit_emit_fill(struct jit *j);

#endif
