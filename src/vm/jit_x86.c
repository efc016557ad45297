/*
 * jit_x86.c - the optimizing x86-64 JIT: eBPF (RFC 9669, ISA v4) to native
 * code with exactly the interpreter's semantics.
 *
 * Register mapping (fixed, so most BPF instructions become one x86 one):
 *   r0=rax r1=rdi r2=rsi r3=rdx r4=rcx r5=r8 (= System V argument registers,
 *   so a helper call is a plain `call`), r6=rbx r7=r13 r8=r14 r9=r15
 *   (callee-saved, survive helper calls), r10=rbp. Scratch: r9 r10 r11.
 *   r12 holds the run state: low 32 bits = call depth (frames above the
 *   first), high 32 bits = tail calls taken so far.
 *
 * Code layout:
 *   [entry wrapper: saves C callee-saved regs, r12 = 0, calls function 0]
 *   [function 0][function 1]...   each: prologue, body, epilogue
 *   [abort stub]                  unwinds to the wrapper, returns JIT_ABORT_R0
 *   [bitmap of function entries]  data, only read by callx to vet targets
 * Every function, main included, has the same frame: return address, saved
 * rbx r13 r14 r15 rbp, then 512 bytes of BPF stack below rbp (rbp = r10).
 * Leaf programs (one function, no call of any kind) are the exception: their
 * function 0 saves only the callee-saved registers the program names and
 * sets up the BPF stack only when it uses r10, and the native entry point is
 * function 0 itself (no wrapper, no nested call). Nothing unwinds through
 * such a frame (no abort can happen inside it) and a tail call into it
 * still enters at JIT_FUNC0_OFF, so the other programs' layouts hold.
 * The frame is FRAME_BYTES and rsp is 16-byte aligned at BPF level, so helper
 * calls need no adjustment and the abort stub can find the wrapper's frame
 * from the depth alone. A tail call tears down the current frame and jumps to
 * the target's function 0 (JIT_FUNC0_OFF), so the target runs in the same
 * frame slot, as in the interpreter.
 *
 * Invariants: code is written into a private buffer, then copied into a
 * fresh RW mapping which is mprotect'ed to RX before use (never RWX). Branch
 * sizes are chosen by iterating layout passes: a branch becomes rel32 when
 * its displacement (measured on the previous pass) does not fit rel8, and
 * stays rel32 (sticky), so passes converge; the last pass used the same
 * layout it measured, hence every displacement is exact. Any instruction
 * whose encoding depends on a previous-pass value uses a fixed-size form.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

struct patch {
    uint32_t pos;         /* offset of an imm64 to fill with base + rel */
    uint32_t rel;
};

/* A 6-byte call site to a host function: `cs call rel32` when the target
 * is within +-2 GiB of the installed code, else `call [rip+disp32]` through
 * its slot in the literal pool that follows the code. Which one is decided
 * at install time, when the code's address is known; both are 6 bytes, so
 * the layout does not depend on where the mapping lands. */
struct host_call {
    uint32_t pos;         /* offset of the 6-byte call */
    uint64_t target;
};

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
    uint8_t *is_target;                    /* per insn: something jumps here */
    bool uses_callx;

    struct patch *patches;
    uint32_t n_patches, cap_patches;
    struct host_call *calls;
    uint32_t n_calls, cap_calls;
    uint32_t pool_off;                     /* literal pool: one slot per call */

    bool r1_known;                         /* r1 holds r1_val (LD_IMM64) */
    uint64_t r1_val;

    bool leaf;                             /* one function, no calls: lean frame */
    uint16_t regs_named;                   /* leaf: bit r set if BPF rN appears */

    /* Stack slots kept in registers (jit_opt.h, plan_slots): per function
     * the x86 register of each slot, or -1 for memory. */
    int8_t (*slot_reg)[GVM_SLOTS];
    const int8_t *cur_slots;               /* the function being emitted */
    uint16_t *live_out;                    /* per insn (jit_live.c); NULL: all live */
    bool tmp1_taken;                       /* a stack slot lives in TMP1 */
    int leaf_saved[8];                     /* leaf: callee-saved regs to push */
    int n_leaf_saved;
    bool leaf_frame;                       /* leaf: sets up the 512-byte stack */
};

/* ---- CPU features ----------------------------------------------------- */

static struct { bool init, bmi2, rdpid, rdtscp; } cpu;

static void detect_cpu(void)
{
    unsigned a, b, c, d;
    if (cpu.init)
        return;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        cpu.bmi2 = b & (1u << 8);
        cpu.rdpid = c & (1u << 22);
    }
    if (__get_cpuid(0x80000001, &a, &b, &c, &d))
        cpu.rdtscp = d & (1u << 27);
    cpu.init = true;
}

/* ---- byte emission ---------------------------------------------------- */

static bool reserve(struct jit *j, size_t n)
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

static void emit_prefix(struct jit *j, unsigned f, int reg, int index, int rm)
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

static void emit_opcode(struct jit *j, uint32_t opc)
{
    if (opc > 0xffff)
        emit1(j, (uint8_t)(opc >> 16));
    if (opc > 0xff)
        emit1(j, (uint8_t)(opc >> 8));
    emit1(j, (uint8_t)opc);
}

/* op reg, rm (both registers) */
static void emit_rr(struct jit *j, unsigned f, uint32_t opc, int reg, int rm)
{
    emit_prefix(j, f, reg, 0, rm);
    emit_opcode(j, opc);
    emit1(j, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* ModRM (+SIB) (+disp) for [base + disp]; rbp/r13 need a displacement and
 * rsp/r12 need a SIB byte. */
static void emit_mem_operand(struct jit *j, unsigned f, int reg, int base, int32_t disp)
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
static void emit_rm(struct jit *j, unsigned f, uint32_t opc, int reg, int base, int32_t disp)
{
    emit_prefix(j, f, reg, 0, base);
    emit_opcode(j, opc);
    emit_mem_operand(j, f, reg, base, disp);
}

/* op reg, [base + index*(1<<scale) + disp] */
static void emit_rsib(struct jit *j, unsigned f, uint32_t opc, int reg, int base,
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

static unsigned wflag(bool is64)
{
    return is64 ? F_W : 0;
}

static void emit_mov_rr(struct jit *j, bool is64, int dst, int src)
{
    emit_rr(j, wflag(is64), 0x89, src, dst);
}

/* add/or/and/sub/xor/cmp/test dst, src (opc is the "r/m, r" opcode) */
static void emit_alu_rr(struct jit *j, uint8_t opc, bool is64, int dst, int src)
{
    emit_rr(j, wflag(is64), opc, src, dst);
}

/* group-1 op dst, imm: ext 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp */
static void emit_alu_ri(struct jit *j, int ext, bool is64, int dst, int32_t imm)
{
    if (is_imm8(imm)) {
        emit_rr(j, wflag(is64), 0x83, ext, dst);
        emit1(j, (uint8_t)imm);
    } else {
        emit_rr(j, wflag(is64), 0x81, ext, dst);
        emit4(j, (uint32_t)imm);
    }
}

static void emit_cmp_ri(struct jit *j, bool is64, int dst, int32_t imm)
{
    emit_alu_ri(j, 7, is64, dst, imm);
}

static void emit_test_rr(struct jit *j, bool is64, int a, int b)
{
    emit_alu_rr(j, 0x85, is64, a, b);
}

static void emit_test_ri(struct jit *j, bool is64, int dst, int32_t imm)
{
    emit_rr(j, wflag(is64), 0xf7, 0, dst);
    emit4(j, (uint32_t)imm);
}

static void emit_xor_zero(struct jit *j, int r)
{
    emit_alu_rr(j, 0x31, false, r, r);
}

/* dst = v, picking the shortest encoding */
static void emit_mov_ri(struct jit *j, int dst, uint64_t v)
{
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

/* movabs dst, imm64 (always 10 bytes); returns the imm64's offset */
static uint32_t emit_movabs(struct jit *j, int dst, uint64_t v)
{
    emit_prefix(j, F_W, 0, 0, dst);
    emit1(j, (uint8_t)(0xb8 | (dst & 7)));
    uint32_t pos = (uint32_t)j->len;
    emit8(j, v);
    return pos;
}

static void emit_imul_rr(struct jit *j, bool is64, int dst, int src)
{
    emit_rr(j, wflag(is64), 0x0faf, dst, src);
}

static void emit_imul_rri(struct jit *j, bool is64, int dst, int src, int32_t imm)
{
    if (is_imm8(imm)) {
        emit_rr(j, wflag(is64), 0x6b, dst, src);
        emit1(j, (uint8_t)imm);
    } else {
        emit_rr(j, wflag(is64), 0x69, dst, src);
        emit4(j, (uint32_t)imm);
    }
}

/* shift group: ext 0 rol, 4 shl, 5 shr, 7 sar */
static void emit_shift_ri(struct jit *j, unsigned f, int ext, int dst, uint8_t n)
{
    if (n == 1) {
        emit_rr(j, f, 0xd1, ext, dst);
    } else {
        emit_rr(j, f, 0xc1, ext, dst);
        emit1(j, n);
    }
}

static void emit_shift_rcl(struct jit *j, bool is64, int ext, int dst)
{
    emit_rr(j, wflag(is64), 0xd3, ext, dst);
}

/* BMI2 shlx/shrx/sarx dst, src, cnt (pp: 1 = 66 shlx, 2 = F3 sarx, 3 = F2 shrx) */
static void emit_shiftx(struct jit *j, int pp, bool is64, int dst, int src, int cnt)
{
    emit1(j, 0xc4);
    emit1(j, (uint8_t)((dst & 8 ? 0 : 0x80) | 0x40 | (src & 8 ? 0 : 0x20) | 0x02));
    emit1(j, (uint8_t)((is64 ? 0x80 : 0) | ((~cnt & 15) << 3) | pp));
    emit1(j, 0xf7);
    emit1(j, (uint8_t)(0xc0 | (dst & 7) << 3 | (src & 7)));
}

/* group-3 unary: ext 2 not, 3 neg, 6 div, 7 idiv */
static void emit_unary(struct jit *j, bool is64, int ext, int r)
{
    emit_rr(j, wflag(is64), 0xf7, ext, r);
}

static void emit_bswap(struct jit *j, bool is64, int r)
{
    emit_prefix(j, wflag(is64), 0, 0, r);
    emit1(j, 0x0f);
    emit1(j, (uint8_t)(0xc8 | (r & 7)));
}

static void emit_lea(struct jit *j, bool is64, int dst, int base, int32_t disp)
{
    emit_rm(j, wflag(is64), 0x8d, dst, base, disp);
}

static void emit_lea_sib(struct jit *j, bool is64, int dst, int base, int index, int32_t disp)
{
    emit_rsib(j, wflag(is64), 0x8d, dst, base, index, 0, disp);
}

static void emit_push(struct jit *j, int r)
{
    emit_prefix(j, 0, 0, 0, r);
    emit1(j, (uint8_t)(0x50 | (r & 7)));
}

static void emit_pop(struct jit *j, int r)
{
    emit_prefix(j, 0, 0, 0, r);
    emit1(j, (uint8_t)(0x58 | (r & 7)));
}

static void emit_call_r(struct jit *j, int r)
{
    emit_rr(j, 0, 0xff, 2, r);
}

static void emit_jmp_r(struct jit *j, int r)
{
    emit_rr(j, 0, 0xff, 4, r);
}

/* A memory operand [base + index + disp]; index < 0: none. */
struct mem {
    int base, index;
    int32_t disp;
};

static struct mem mem_bd(int base, int32_t disp)
{
    return (struct mem){ base, -1, disp };
}

static void emit_mem(struct jit *j, unsigned f, uint32_t opc, int reg, struct mem m)
{
    if (m.index < 0)
        emit_rm(j, f, opc, reg, m.base, m.disp);
    else
        emit_rsib(j, f, opc, reg, m.base, m.index, 0, m.disp);
}

/* Load size bytes from m into dst, zero- or sign-extended. */
static void emit_load(struct jit *j, int size, bool sx, int dst, struct mem m)
{
    switch (size) {
    case BPF_B: emit_mem(j, sx ? F_W : 0, sx ? 0x0fbe : 0x0fb6, dst, m); break;
    case BPF_H: emit_mem(j, sx ? F_W : 0, sx ? 0x0fbf : 0x0fb7, dst, m); break;
    case BPF_W: emit_mem(j, sx ? F_W : 0, sx ? 0x63 : 0x8b, dst, m); break;
    default:    emit_mem(j, F_W, 0x8b, dst, m); break;
    }
}

static void emit_store_r(struct jit *j, int size, struct mem m, int src)
{
    switch (size) {
    case BPF_B: emit_mem(j, F_BREG, 0x88, src, m); break;
    case BPF_H: emit_mem(j, F_66, 0x89, src, m); break;
    case BPF_W: emit_mem(j, 0, 0x89, src, m); break;
    default:    emit_mem(j, F_W, 0x89, src, m); break;
    }
}

static void emit_store_i(struct jit *j, int size, struct mem m, int32_t imm)
{
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
static void emit_mem_insn(struct jit *j, const struct bpf_insn *in, struct mem m)
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
static void emit_branch(struct jit *j, int cc, uint32_t target)
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
static void emit_rel32(struct jit *j, int cc, uint32_t target)
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

static void emit_call_rel32(struct jit *j, uint32_t target)
{
    emit1(j, 0xe8);
    int64_t d = (int64_t)target - (int64_t)(here_prev(j) + 4);
    emit4(j, (uint32_t)(int32_t)d);
}

static void emit_jcc_abort(struct jit *j, int cc)
{
    emit_rel32(j, cc, j->prev_abort_off);
}

/* Short forward jump inside one insn's expansion: returns the fixup. */
static size_t emit_jcc8_fwd(struct jit *j, int cc)
{
    emit1(j, cc < 0 ? 0xeb : (uint8_t)(0x70 | cc));
    emit1(j, 0);
    return j->len;
}

static void fixup8(struct jit *j, size_t after)
{
    j->buf[after - 1] = (uint8_t)(int8_t)(j->len - after);
}

static void add_patch(struct jit *j, uint32_t pos, uint32_t rel)
{
    if (j->n_patches == j->cap_patches) {
        uint32_t cap = j->cap_patches ? j->cap_patches * 2 : 16;
        struct patch *p = realloc(j->patches, cap * sizeof(*p));
        if (!p) {
            j->oom = true;
            return;
        }
        j->patches = p;
        j->cap_patches = cap;
    }
    j->patches[j->n_patches++] = (struct patch){ pos, rel };
}

/* ---- ALU --------------------------------------------------------------- */

static const struct { uint8_t rr; uint8_t ext; } alu_ops[16] = {
    [BPF_ADD >> 4] = { 0x01, 0 }, [BPF_SUB >> 4] = { 0x29, 5 },
    [BPF_OR >> 4]  = { 0x09, 1 }, [BPF_AND >> 4] = { 0x21, 4 },
    [BPF_XOR >> 4] = { 0x31, 6 },
};

static bool next_is_plain(const struct jit *j, uint32_t i)
{
    return i + 1 < j->prog->n && !j->is_target[i + 1];
}

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
 * for it. Up to four consecutive accesses through X fold alike. Returns the
 * insns consumed, 0 when the pattern does not apply. */
static bool is_mov_imm(const struct bpf_insn *in)
{
    return in->code == (BPF_ALU64 | BPF_MOV | BPF_K) || in->code == (BPF_ALU | BPF_MOV | BPF_K);
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
    uint32_t i = j->idx;
    if (i + 2 >= j->prog->n || j->is_target[i + 1] || j->is_target[i + 2])
        return 0;
    const struct bpf_insn *ad = in + 1, *m = in + 2;
    int x = in->dst_reg, b = in->src_reg, idx = -1;
    int64_t disp0 = 0;
    if (x == b || ad->dst_reg != x)
        return 0;
    if (ad->code == (BPF_ALU64 | BPF_ADD | BPF_X) && ad->src_reg != x)
        idx = ad->src_reg;
    else if (ad->code == (BPF_ALU64 | BPF_ADD | BPF_K))
        disp0 = ad->imm;
    else
        return 0;
    /* up to two constant moves of other registers may sit between the add
     * and the access (clang schedules them there); they are emitted first */
    int between = 0;
    while (between < 2 && i + 3 + between < j->prog->n && is_mov_imm(m)
           && m->dst_reg != x && m->dst_reg != b && m->dst_reg != idx
           && !j->is_target[i + 3 + between]) {
        m++;
        between++;
    }
    if (!access_via(m, x, disp0))
        return 0;
    /* further accesses through x right after, while x, b and i keep their
     * values (a load into one of them ends the chain) */
    uint32_t a = i + 2 + (uint32_t)between;      /* the last access folded */
    int n_acc = 1;
    while (n_acc < 4 && a + 1 < j->prog->n && !j->is_target[a + 1]
           && !(BPF_CLASS(j->prog->insns[a].code) == BPF_LDX
                && (j->prog->insns[a].dst_reg == x || j->prog->insns[a].dst_reg == b
                    || j->prog->insns[a].dst_reg == idx))
           && access_via(&j->prog->insns[a + 1], x, disp0)) {
        a++;
        n_acc++;
    }
    const struct bpf_insn *last = &j->prog->insns[a];
    bool x_dead = (BPF_CLASS(last->code) == BPF_LDX && last->dst_reg == x)
                  || (j->live_out && !(j->live_out[a] & (1u << x)));
    int rb = reg_map[b], ri = idx >= 0 ? reg_map[idx] : -1;
    for (int k = 0; k < between; k++) {
        const struct bpf_insn *mv = &in[2 + k];
        emit_mov_ri(j, reg_map[mv->dst_reg], BPF_CLASS(mv->code) == BPF_ALU64
                                                 ? (uint64_t)(int64_t)mv->imm : (uint32_t)mv->imm);
    }
    if (!x_dead) {
        if (ri >= 0)
            emit_lea_sib(j, true, reg_map[x], rb, ri, (int32_t)disp0);
        else
            emit_lea(j, true, reg_map[x], rb, (int32_t)disp0);
    }
    for (int k = 0; k < n_acc; k++, m++)
        emit_mem_insn(j, m, (struct mem){ rb, ri, (int32_t)(disp0 + m->off) });
    return 2 + between + n_acc;
}

/* Does insns[lo, hi) have `mov x, b; add x, ...` (what try_fold_address
 * starts from)? Liveness is computed only for functions that do. */
static bool has_fold_candidate(const struct gvm_prog *p, uint32_t lo, uint32_t hi)
{
    for (uint32_t i = lo; i + 1 < hi; i++) {
        const struct bpf_insn *in = &p->insns[i];
        if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X)
            && (in[1].code & ~BPF_X) == (BPF_ALU64 | BPF_ADD) && in[1].dst_reg == in->dst_reg)
            return true;
    }
    return false;
}

/* mov and movsx; returns the number of BPF insns consumed (peepholes). */
static int emit_movop(struct jit *j, const struct bpf_insn *in, bool is64)
{
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];

    if (is64 && BPF_SRC(in->code) == BPF_X && in->off == 0) {
        int used = try_fold_address(j, in);
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
    if (cpu.bmi2) {
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
    emit_mov_rr(j, true, TMP1, dst);                     /* x */
    if (dst != RAX)
        emit_mov_rr(j, true, TMP2, RAX);
    if (dst != RDX)
        emit_mov_rr(j, true, TMP3, RDX);
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
        if (!sgn) {
            emit_udiv_const(j, is64, mod, dst, d, in->imm);
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

static int emit_alu_insn(struct jit *j, const struct bpf_insn *in)
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

/* ---- memory ------------------------------------------------------------ */

/* Atomic RMW via a lock cmpxchg loop (or/and/xor with fetch). */
static void emit_atomic_fetch_loop(struct jit *j, const struct bpf_insn *in, bool is64, uint8_t rr)
{
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
    emit_lea(j, true, TMP2, dst, in->off);          /* address, before rax moves */
    emit_mov_rr(j, true, TMP3, RAX);                /* save r0 */
    int operand = src == RAX ? TMP3 : src;
    emit_rm(j, wflag(is64), 0x8b, RAX, TMP2, 0);   /* rax = old */
    size_t loop = j->len;
    emit_mov_rr(j, is64, TMP1, RAX);
    emit_alu_rr(j, rr, is64, TMP1, operand);
    emit_rm(j, wflag(is64) | F_LOCKP, 0x0fb1, TMP1, TMP2, 0);
    emit1(j, 0x70 | CC_NE);
    emit1(j, (uint8_t)(int8_t)((int64_t)loop - (int64_t)(j->len + 1)));
    if (src != RAX) {
        emit_mov_rr(j, is64, src, RAX);
        emit_mov_rr(j, true, RAX, TMP3);
    } else if (!is64) {
        emit_mov_rr(j, false, RAX, RAX);
    }
}

static void emit_atomic(struct jit *j, const struct bpf_insn *in)
{
    bool is64 = BPF_SIZE(in->code) == BPF_DW;
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
    unsigned w = wflag(is64);

    switch (in->imm) {
    case BPF_ADD: emit_rm(j, w | F_LOCKP, 0x01, src, dst, in->off); break;
    case BPF_OR:  emit_rm(j, w | F_LOCKP, 0x09, src, dst, in->off); break;
    case BPF_AND: emit_rm(j, w | F_LOCKP, 0x21, src, dst, in->off); break;
    case BPF_XOR: emit_rm(j, w | F_LOCKP, 0x31, src, dst, in->off); break;
    case BPF_ADD | BPF_FETCH:
        emit_rm(j, w | F_LOCKP, 0x0fc1, src, dst, in->off);   /* xadd */
        break;
    case BPF_XCHG:
        emit_rm(j, w, 0x87, src, dst, in->off);              /* implicitly locked */
        break;
    case BPF_CMPXCHG:
        emit_rm(j, w | F_LOCKP, 0x0fb1, src, dst, in->off);
        if (!is64)
            emit_mov_rr(j, false, RAX, RAX);   /* success leaves rax's top half */
        break;
    case BPF_OR | BPF_FETCH:  emit_atomic_fetch_loop(j, in, is64, 0x09); break;
    case BPF_AND | BPF_FETCH: emit_atomic_fetch_loop(j, in, is64, 0x21); break;
    case BPF_XOR | BPF_FETCH: emit_atomic_fetch_loop(j, in, is64, 0x31); break;
    }
}

/* ---- jumps ------------------------------------------------------------- */

static const int8_t jcc_of[16] = {
    [BPF_JEQ >> 4] = CC_E,   [BPF_JNE >> 4] = CC_NE,  [BPF_JSET >> 4] = CC_NE,
    [BPF_JGT >> 4] = CC_A,   [BPF_JGE >> 4] = CC_AE,  [BPF_JLT >> 4] = CC_B,
    [BPF_JLE >> 4] = CC_BE,  [BPF_JSGT >> 4] = CC_G,  [BPF_JSGE >> 4] = CC_GE,
    [BPF_JSLT >> 4] = CC_L,  [BPF_JSLE >> 4] = CC_LE,
};

/* The flags of a conditional jump's test. */
static void emit_compare(struct jit *j, const struct bpf_insn *in)
{
    bool is64 = BPF_CLASS(in->code) == BPF_JMP;
    int dst = reg_map[in->dst_reg];
    uint8_t op = BPF_OP(in->code);

    if (BPF_SRC(in->code) == BPF_X) {
        emit_alu_rr(j, op == BPF_JSET ? 0x85 : 0x39, is64, dst, reg_map[in->src_reg]);
    } else if (op == BPF_JSET) {
        emit_test_ri(j, is64, dst, in->imm);
    } else if (in->imm == 0) {
        emit_test_rr(j, is64, dst, dst);    /* same flags as cmp dst, 0 */
    } else {
        emit_cmp_ri(j, is64, dst, in->imm);
    }
}

/* `if (c) goto +1; r = v` is r = c ? r : v, a cmov: no branch to
 * mispredict. For a move mv (the insn skipped), the x86 register cmov reads
 * from: v's own register (mov64 reg), TMP1 for a constant (loaded between
 * the test and the cmov: mov keeps flags), or -2 when mv is not a move this
 * handles (mov32 of a register would need its source zero-extended). */
static int cmov_source(const struct jit *j, const struct bpf_insn *mv)
{
    if (mv->code == (BPF_ALU64 | BPF_MOV | BPF_X) && mv->off == 0)
        return reg_map[mv->src_reg];
    if ((mv->code == (BPF_ALU64 | BPF_MOV | BPF_K) || mv->code == (BPF_ALU | BPF_MOV | BPF_K))
        && !j->tmp1_taken)
        return TMP1;
    return -2;
}

/* r = v when cc holds (64-bit cmov: a 32-bit one would zero-extend r even
 * when cc fails). */
static void emit_cmov_move(struct jit *j, int cc, const struct bpf_insn *mv)
{
    int src = cmov_source(j, mv);
    if (src == TMP1 && BPF_SRC(mv->code) == BPF_K) {
        uint64_t v = BPF_CLASS(mv->code) == BPF_ALU64 ? (uint64_t)(int64_t)mv->imm
                                                       : (uint32_t)mv->imm;
        if (v == 0) {                   /* not xor: that would clobber the flags */
            emit_prefix(j, 0, 0, 0, TMP1);
            emit1(j, (uint8_t)(0xb8 | (TMP1 & 7)));
            emit4(j, 0);
        } else {
            emit_mov_ri(j, TMP1, v);
        }
    }
    emit_rr(j, F_W, 0x0f40u | (uint32_t)cc, reg_map[mv->dst_reg], src);
}

/* The target of an unconditional jump at i (ja or gotol), or -1. */
static int64_t ja_target(const struct gvm_prog *p, uint32_t i)
{
    const struct bpf_insn *in = &p->insns[i];
    if (in->code == (BPF_JMP | BPF_JA))
        return (int64_t)i + in->off + 1;
    if (in->code == (BPF_JMP32 | BPF_JA))
        return (int64_t)i + in->imm + 1;
    return -1;
}

/* Conditional jumps; returns the insns consumed. `if (c) goto +1; goto T`
 * (how clang closes many loops) becomes `if (!c) goto T`: one branch, not
 * taken on the way out, instead of a taken one on every iteration; and
 * `if (c) goto +1; r = v` becomes a cmov. */
static int emit_jcond(struct jit *j, const struct bpf_insn *in, uint32_t i)
{
    uint8_t op = BPF_OP(in->code);
    uint32_t t = (uint32_t)((int64_t)i + in->off + 1);
    int cc = jcc_of[op >> 4], used = 1;

    if (t == i + 1)
        return 1;                       /* branch to the next insn: no effect */
    if (in->off == 1 && next_is_plain(j, i)) {
        int64_t t2 = ja_target(j->prog, i + 1);
        if (t2 >= 0) {
            t = (uint32_t)t2;
            cc ^= 1;                    /* x86 condition codes pair up as c, !c */
            used = 2;
        } else if (cmov_source(j, in + 1) != -2) {
            emit_compare(j, in);
            emit_cmov_move(j, cc ^ 1, in + 1);
            return 2;
        }
    }
    emit_compare(j, in);
    emit_branch(j, cc, j->prev_off[t]);
    return used;
}

/* ---- calls ------------------------------------------------------------- */

/* Resolve a tail-call target to the address of its function 0, or 0. */
static uint64_t jit_tail_lookup(const struct gvm_prog *prog, uint64_t map, uint64_t index)
{
    const struct gvm_prog *t = prog->env.tail_call_target(prog->env.arg, map, index);
    if (!t || !t->jit_fn || !t->jit_code)
        return 0;
    return (uint64_t)(uintptr_t)t->jit_code + JIT_FUNC0_OFF;
}

/* bpf_tail_call(ctx=r1, map=r2, index=r3): on success the current frame is
 * torn down and the target's function 0 runs in its place, returning to our
 * caller; else r0 = GVM_TAIL_CALL_FAIL_R0. */
static void emit_tail_call(struct jit *j)
{
    emit_push(j, RDI);
    emit_push(j, RDI);                              /* ctx, and keep alignment */
    emit_movabs(j, RDI, (uint64_t)(uintptr_t)j->prog);
    emit_movabs(j, RAX, (uint64_t)(uintptr_t)jit_tail_lookup);
    emit_call_r(j, RAX);
    emit_pop(j, RDI);
    emit_pop(j, RDI);
    emit_test_rr(j, true, RAX, RAX);
    size_t fail1 = emit_jcc8_fwd(j, CC_E);
    emit_mov_rr(j, true, TMP1, STATE);
    emit_shift_ri(j, F_W, 5, TMP1, 32);
    emit_cmp_ri(j, false, TMP1, BPF_MAX_TAIL_CALLS);
    size_t fail2 = emit_jcc8_fwd(j, CC_AE);
    emit_movabs(j, TMP1, 1ull << 32);
    emit_alu_rr(j, 0x01, true, STATE, TMP1);
    emit1(j, 0xc9);                                 /* leave */
    emit_pop(j, R15);
    emit_pop(j, R14);
    emit_pop(j, R13);
    emit_pop(j, RBX);
    emit_jmp_r(j, RAX);
    fixup8(j, fail1);
    fixup8(j, fail2);
    emit_rr(j, F_W, 0xc7, 0, RAX);
    emit4(j, (uint32_t)(int32_t)GVM_TAIL_CALL_FAIL_R0);
}

/* map_lookup_elem on an array map known at compile time, inline. */
static bool emit_inline_lookup(struct jit *j)
{
    const struct gvm_env *env = &j->prog->env;
    struct gvm_array_info ai;

    if (!env->array_info || !j->r1_known || !env->array_info(env->arg, j->r1_val, &ai))
        return false;
    if (ai.stride > INT32_MAX || ai.percpu_stride > INT32_MAX || !ai.values)
        return false;
    if (ai.percpu_stride && !cpu.rdpid && !cpu.rdtscp)
        return false;
    if (ai.percpu_stride) {
        /* Linux keeps the cpu number in TSC_AUX bits 0-11 */
        if (cpu.rdpid) {
            emit1(j, 0xf3);
            emit_rr(j, 0, 0x0fc7, 7, TMP2);          /* rdpid r10 */
        } else {
            emit1(j, 0x0f); emit1(j, 0x01); emit1(j, 0xf9);   /* rdtscp */
            emit_mov_rr(j, false, TMP2, RCX);
        }
        emit_alu_ri(j, 4, false, TMP2, 0xfff);
        emit_imul_rri(j, true, TMP2, TMP2, (int32_t)ai.percpu_stride);
    }
    emit_rm(j, 0, 0x8b, TMP1, RSI, 0);                /* key = *(u32 *)r2 */
    emit_xor_zero(j, RAX);
    emit_rr(j, 0, 0x81, 7, TMP1);                     /* cmp r11d, max_entries */
    emit4(j, ai.max_entries);
    size_t null = emit_jcc8_fwd(j, CC_AE);
    emit_imul_rri(j, true, TMP1, TMP1, (int32_t)ai.stride);
    emit_movabs(j, RAX, (uint64_t)(uintptr_t)ai.values);
    emit_alu_rr(j, 0x01, true, RAX, TMP1);
    if (ai.percpu_stride)
        emit_alu_rr(j, 0x01, true, RAX, TMP2);
    fixup8(j, null);
    return true;
}

/* A bpf-to-bpf call to the address in reg or to function f (reg < 0). */
static void emit_local_call(struct jit *j, int reg, uint32_t f)
{
    emit_cmp_ri(j, false, STATE, BPF_MAX_CALL_DEPTH - 1);
    emit_jcc_abort(j, CC_AE);
    emit_rr(j, F_W, 0xff, 0, STATE);                 /* inc r12 */
    if (reg < 0)
        emit_call_rel32(j, j->prev_fentry[f]);
    else
        emit_call_r(j, reg);
    emit_rr(j, F_W, 0xff, 1, STATE);                 /* dec r12 */
}

/* A call to a host function (helper, kfunc): 6 bytes, filled in at
 * install (struct host_call). */
static void emit_helper_call(struct jit *j, gvm_helper_fn fn)
{
    if (j->n_calls == j->cap_calls) {
        uint32_t cap = j->cap_calls ? j->cap_calls * 2 : 16;
        struct host_call *c = realloc(j->calls, cap * sizeof(*c));
        if (!c) {
            j->oom = true;
            return;
        }
        j->calls = c;
        j->cap_calls = cap;
    }
    j->calls[j->n_calls++] = (struct host_call){ (uint32_t)j->len, (uint64_t)(uintptr_t)fn };
    for (int k = 0; k < 6; k++)
        emit1(j, 0xcc);
}

/* callx: helper id (< BPF_MAX_HELPER_ID) or a function entry address. */
static void emit_callx(struct jit *j, const struct bpf_insn *in)
{
    const struct gvm_env *env = &j->prog->env;
    int r = reg_map[gvm_callx_reg(in)];

    emit_mov_rr(j, true, TMP1, r);
    emit_cmp_ri(j, true, TMP1, BPF_MAX_HELPER_ID);
    emit_rel32(j, CC_AE, 0);                         /* patched below */
    size_t to_local = j->len;
    size_t to_done2 = 0;
    if (env->tail_call_target) {
        emit_cmp_ri(j, true, TMP1, GVM_HELPER_TAIL_CALL);
        size_t not_tail = emit_jcc8_fwd(j, CC_NE);
        emit_tail_call(j);
        to_done2 = j->len + 1;
        emit1(j, 0xe9);
        emit4(j, 0);
        fixup8(j, not_tail);
    }
    if (env->helpers) {
        emit_movabs(j, RAX, (uint64_t)(uintptr_t)env->helpers);
        emit_rsib(j, F_W, 0x8b, RAX, RAX, TMP1, 3, 0);   /* rax = helpers[id] */
        emit_test_rr(j, true, RAX, RAX);
        emit_jcc_abort(j, CC_E);
        emit_call_r(j, RAX);
    } else {
        emit_jcc_abort(j, CC_JMP);
    }
    emit1(j, 0xe9);
    emit4(j, 0);
    size_t to_done = j->len;
    /* local: vet the address against the function-entry bitmap */
    int32_t rel = (int32_t)(j->len - to_local);
    memcpy(j->buf + to_local - 4, &rel, 4);
    emit_mov_rr(j, true, TMP2, TMP1);
    uint32_t pos = emit_movabs(j, TMP3, 0);
    add_patch(j, pos, 0);
    emit_alu_rr(j, 0x29, true, TMP2, TMP3);          /* r10 = addr - base */
    emit_rr(j, F_W, 0x81, 7, TMP2);
    emit4(j, j->prev_code_len);
    emit_jcc_abort(j, CC_AE);
    emit_rm(j, F_W | F_DISP32, 0x0fa3, TMP2, TMP3, (int32_t)j->prev_bitmap_off);   /* bt */
    emit_jcc_abort(j, CC_AE);                        /* CF clear: not an entry */
    emit_local_call(j, TMP1, 0);
    rel = (int32_t)(j->len - to_done);
    memcpy(j->buf + to_done - 4, &rel, 4);
    if (to_done2) {
        rel = (int32_t)(j->len - (to_done2 + 4));
        memcpy(j->buf + to_done2, &rel, 4);
    }
}

static void emit_call(struct jit *j, const struct bpf_insn *in, uint32_t i)
{
    const struct gvm_env *env = &j->prog->env;

    if (BPF_SRC(in->code) == BPF_X) {
        emit_callx(j, in);
        return;
    }
    if (in->src_reg == BPF_PSEUDO_KFUNC_CALL) {
        /* a host function: a plain call, like a helper */
        emit_helper_call(j, j->prog->kfuncs[i]);
        return;
    }
    if (in->src_reg == BPF_PSEUDO_CALL) {
        uint32_t t = (uint32_t)((int64_t)i + in->imm + 1);
        emit_local_call(j, -1, gvm_func_of(j->prog, t));
        return;
    }
    if (in->imm == GVM_HELPER_TAIL_CALL && env->tail_call_target) {
        emit_tail_call(j);
        return;
    }
    if (in->imm == 1 && emit_inline_lookup(j))
        return;
    emit_helper_call(j, env->helpers[in->imm]);
}

/* ---- functions, wrapper, stubs ----------------------------------------- */

static void emit_prologue(struct jit *j)
{
    if (j->leaf) {
        for (int k = 0; k < j->n_leaf_saved; k++)
            emit_push(j, j->leaf_saved[k]);
        if (j->leaf_frame) {
            emit_push(j, RBP);
            emit_mov_rr(j, true, RBP, RSP);
            emit_rr(j, F_W, 0x81, 5, RSP);           /* sub rsp, 512 */
            emit4(j, BPF_STACK_SIZE);
        }
        return;
    }
    emit_push(j, RBX);
    emit_push(j, R13);
    emit_push(j, R14);
    emit_push(j, R15);
    emit_push(j, RBP);
    emit_mov_rr(j, true, RBP, RSP);
    emit_rr(j, F_W, 0x81, 5, RSP);                   /* sub rsp, 512 */
    emit4(j, BPF_STACK_SIZE);
}

static void emit_epilogue(struct jit *j)
{
    if (j->leaf) {
        if (j->leaf_frame)
            emit1(j, 0xc9);                          /* leave */
        for (int k = j->n_leaf_saved - 1; k >= 0; k--)
            emit_pop(j, j->leaf_saved[k]);
        emit1(j, 0xc3);
        return;
    }
    emit1(j, 0xc9);                                  /* leave */
    emit_pop(j, R15);
    emit_pop(j, R14);
    emit_pop(j, R13);
    emit_pop(j, RBX);
    emit1(j, 0xc3);
}

static const int wrapper_saved[6] = { RBX, RBP, R12, R13, R14, R15 };

/* C entry: save callee-saved regs, r12 = 0, call function 0, restore. */
static void emit_wrapper(struct jit *j)
{
    for (int k = 0; k < 6; k++)
        emit_push(j, wrapper_saved[k]);
    emit_alu_ri(j, 5, true, RSP, 8);                 /* align to 16 */
    emit_alu_rr(j, 0x31, false, STATE, STATE);
    emit1(j, 0xe8);                                  /* call function 0 */
    emit4(j, 0);
    uint32_t ret = (uint32_t)j->len;
    j->wrapper_ret = ret;
    emit_alu_ri(j, 0, true, RSP, 8);
    for (int k = 5; k >= 0; k--)
        emit_pop(j, wrapper_saved[k]);
    emit1(j, 0xc3);
    /* the call above targets the byte right after this tail */
    int32_t rel = (int32_t)(j->len - ret);
    memcpy(j->buf + ret - 4, &rel, 4);
}

/* Abort a run (call depth exceeded, bad callx target): unwind to the
 * wrapper's frame, which sits (depth + 1) frames above rsp. */
static void emit_abort_stub(struct jit *j)
{
    j->abort_off = (uint32_t)j->len;
    emit_mov_rr(j, false, TMP1, STATE);
    emit_imul_rri(j, true, TMP1, TMP1, FRAME_BYTES);
    emit_rsib(j, F_W, 0x8d, RSP, RSP, TMP1, 0, FRAME_BYTES);   /* lea rsp, [rsp+r11+F] */
    emit_rr(j, F_W, 0xc7, 0, RAX);
    emit4(j, (uint32_t)(int32_t)JIT_ABORT_R0);
    emit1(j, 0xe9);
    emit4(j, (uint32_t)((int32_t)j->wrapper_ret - (int32_t)(j->len + 4)));
}

/* ---- the pass over the instructions ------------------------------------ */

/* Does insn write r1 (so r1 no longer holds a known constant)? */
static inline bool writes_r1(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code);
    if (cls == BPF_JMP && BPF_OP(in->code) == BPF_CALL)
        return true;
    if (cls == BPF_ALU || cls == BPF_ALU64 || cls == BPF_LDX || cls == BPF_LD)
        return in->dst_reg == BPF_R1;
    if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC)
        return in->src_reg == BPF_R1 || in->imm == BPF_CMPXCHG;
    return false;
}

/* Emit insn i; returns the number of insns consumed, or -1 if unknown. */
static int emit_insn(struct jit *j, uint32_t i, uint32_t func)
{
    const struct bpf_insn *in = &j->prog->insns[i];
    uint8_t cls = BPF_CLASS(in->code);
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];

    int slot = (in->dst_reg == BPF_R10 || in->src_reg == BPF_R10) ? gvm_slot_of(in) : -1;
    if (slot >= 0 && j->cur_slots[slot] >= 0) {
        int sr = j->cur_slots[slot];
        if (cls == BPF_LDX)
            emit_mov_rr(j, true, dst, sr);
        else if (cls == BPF_STX)
            emit_mov_rr(j, true, sr, src);
        else
            emit_mov_ri(j, sr, (uint64_t)(int64_t)in->imm);
        return 1;
    }
    switch (cls) {
    case BPF_ALU: case BPF_ALU64:
        return emit_alu_insn(j, in);
    case BPF_LDX:
        emit_mem_insn(j, in, mem_bd(src, in->off));
        return 1;
    case BPF_ST:
        emit_mem_insn(j, in, mem_bd(dst, in->off));
        return 1;
    case BPF_STX:
        if (BPF_MODE(in->code) == BPF_ATOMIC)
            emit_atomic(j, in);
        else
            emit_mem_insn(j, in, mem_bd(dst, in->off));
        return 1;
    case BPF_LD: {
        uint64_t v = (uint32_t)in[0].imm | (uint64_t)(uint32_t)in[1].imm << 32;
        if (in->src_reg == BPF_PSEUDO_FUNC) {
            uint32_t f = gvm_func_of(j->prog, (uint32_t)((int64_t)i + in->imm + 1));
            uint32_t pos = emit_movabs(j, dst, 0);
            add_patch(j, pos, j->prev_fentry[f]);
        } else {
            emit_mov_ri(j, dst, v);
            if (in->dst_reg == BPF_R1) {
                j->r1_known = true;
                j->r1_val = v;
            }
        }
        return 2;
    }
    case BPF_JMP: case BPF_JMP32:
        switch (BPF_OP(in->code)) {
        case BPF_JA: {
            int64_t off = cls == BPF_JMP ? in->off : in->imm;
            uint32_t t = (uint32_t)((int64_t)i + off + 1);
            if (t != i + 1)
                emit_branch(j, CC_JMP, j->prev_off[t]);
            return 1;
        }
        case BPF_EXIT: {
            uint32_t end = func + 1 < j->prog->n_funcs ? j->prog->func_starts[func + 1]
                                                       : j->prog->n;
            if (i + 1 != end)
                emit_branch(j, CC_JMP, j->prev_fepi[func]);
            return 1;
        }
        case BPF_CALL:
            emit_call(j, in, i);
            return 1;
        default:
            return emit_jcond(j, in, i);
        }
    }
    return -1;
}

static int run_pass(struct jit *j, struct graft_err *err)
{
    const struct gvm_prog *p = j->prog;

    j->len = 0;
    j->n_patches = 0;
    j->n_calls = 0;
    j->changed = false;
    if (!reserve(j, 128))
        return graft_errf(err, -ENOMEM, "JIT: out of memory for code buffer");
    emit_wrapper(j);
    for (uint32_t f = 0; f < p->n_funcs; f++) {
        uint32_t lo = p->func_starts[f];
        uint32_t hi = f + 1 < p->n_funcs ? p->func_starts[f + 1] : p->n;
        if (!reserve(j, 64))
            return graft_errf(err, -ENOMEM, "JIT: out of memory for code buffer");
        j->fentry[f] = (uint32_t)j->len;
        if (f == 0 && j->len != JIT_FUNC0_OFF)
            return graft_errf(err, -EFAULT, "JIT: entry wrapper is %zu bytes, expected %d",
                              j->len, JIT_FUNC0_OFF);
        j->cur_slots = j->slot_reg[f];
        emit_prologue(j);
        j->r1_known = false;
        for (uint32_t i = lo; i < hi;) {
            if (!reserve(j, 256))
                return graft_errf(err, -ENOMEM, "JIT: out of memory for code buffer");
            j->idx = i;
            j->cur_start = (uint32_t)j->len;
            j->prev_start = j->prev_off[i];
            j->off[i] = j->cur_start;
            if (j->is_target[i])
                j->r1_known = false;
            bool ld_r1 = bpf_is_ld_imm64(&p->insns[i]) && p->insns[i].dst_reg == BPF_R1;
            bool r1_write = writes_r1(&p->insns[i]);
            int used = emit_insn(j, i, f);
            if (used < 0)
                return graft_errf(err, -EINVAL, "JIT: insn %u: cannot compile opcode 0x%02x",
                                  i, p->insns[i].code);
            for (int k = 1; k < used && !ld_r1; k++)     /* peepholes: every insn */
                r1_write = r1_write || writes_r1(&p->insns[i + k]);
            if (r1_write && !(ld_r1 && p->insns[i].src_reg == 0))
                j->r1_known = false;
            for (int k = 1; k < used; k++)
                j->off[i + k] = (uint32_t)j->len;
            i += (uint32_t)used;
        }
        if (!reserve(j, 64))
            return graft_errf(err, -ENOMEM, "JIT: out of memory for code buffer");
        j->fepi[f] = (uint32_t)j->len;
        emit_epilogue(j);
    }
    j->off[p->n] = (uint32_t)j->len;
    if (!reserve(j, 64))
        return graft_errf(err, -ENOMEM, "JIT: out of memory for code buffer");
    emit_abort_stub(j);
    j->code_len = (uint32_t)j->len;
    j->pool_off = (j->code_len + 7u) & ~7u;
    j->bitmap_off = j->pool_off + 8 * j->n_calls;
    if (j->oom)
        return graft_errf(err, -ENOMEM, "JIT: out of memory");
    return 0;
}

static void swap_u32p(uint32_t **a, uint32_t **b)
{
    uint32_t *t = *a;
    *a = *b;
    *b = t;
}

/* A leaf program has one function and no call of any kind (helper, kfunc,
 * bpf-to-bpf, callx, tail call) nor function pointers: it can neither
 * abort nor be unwound through. Note which BPF registers it names
 * (conservatively: every dst and src field). */
static void mark_leaf(struct jit *j)
{
    const struct gvm_prog *p = j->prog;
    j->leaf = p->n_funcs == 1;
    for (uint32_t i = 0; i < p->n && j->leaf; i++) {
        const struct bpf_insn *in = &p->insns[i];
        uint8_t cls = BPF_CLASS(in->code);
        if ((cls == BPF_JMP || cls == BPF_JMP32) && BPF_OP(in->code) == BPF_CALL)
            j->leaf = false;
        if (bpf_is_ld_imm64(in) && in->src_reg == BPF_PSEUDO_FUNC)
            j->leaf = false;
        if (in->dst_reg > BPF_R10 || in->src_reg > BPF_R10)
            j->leaf = false;
        else
            j->regs_named |= (uint16_t)(1u << in->dst_reg | 1u << in->src_reg);
    }
}

/* Does any instruction need the scratch registers r9-r11 (TMP1-3)? Leaf
 * programs only: calls, callx, tail calls and inline lookups need them too
 * but make a program non-leaf. */
static bool leaf_needs_scratch(const struct gvm_prog *p)
{
    for (uint32_t i = 0; i < p->n; i++) {
        const struct bpf_insn *in = &p->insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        if ((cls == BPF_ALU || cls == BPF_ALU64) && (op == BPF_DIV || op == BPF_MOD))
            return true;
        if ((cls == BPF_ALU || cls == BPF_ALU64) && BPF_SRC(in->code) == BPF_X && !cpu.bmi2
            && (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH))
            return true;
        if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC)
            return true;
        if (bpf_is_ld_imm64(in))
            i++;
    }
    return false;
}

static bool is_callee_saved(int r)
{
    return r == RBX || r == RBP || r == R12 || r == R13 || r == R14 || r == R15;
}

/* Give the hottest promotable slots of function f the registers in
 * free_regs[0..n_free), in order; returns how many slots got one. */
static int assign_slots(struct jit *j, uint32_t f, struct gvm_slot_use *u,
                        const int *free_regs, int n_free)
{
    const struct gvm_prog *p = j->prog;
    int8_t *sr = j->slot_reg[f];
    int given = 0, n_prom = 0;
    for (int k = 0; k < GVM_SLOTS; k++)
        n_prom += u->promotable[k];
    if (n_prom > n_free) {
        uint32_t lo = p->func_starts[f], hi = f + 1 < p->n_funcs ? p->func_starts[f + 1] : p->n;
        gvm_slot_weigh(p->insns, p->n, lo, hi, u);
    }
    for (int k = 0; k < GVM_SLOTS; k++)
        sr[k] = -1;
    for (; given < n_free; given++) {
        int best = -1;
        for (int k = 0; k < GVM_SLOTS; k++)
            if (u->promotable[k] && sr[k] < 0 && (best < 0 || u->weight[k] > u->weight[best]))
                best = k;
        if (best < 0)
            break;
        sr[best] = (int8_t)free_regs[given];
    }
    return given;
}

/* Decide which stack slots live in which registers, per function.
 * Leaf programs: every register the program does not name is free (r12,
 * the scratch registers when no instruction needs them, the x86 homes of
 * unnamed BPF registers, and rbp when the whole frame fits in registers);
 * callee-saved ones are pushed by the lean prologue. Other programs: the
 * homes of r6-r9 when no function names them (every frame saves them). */
static int plan_slots(struct jit *j, struct graft_err *err)
{
    const struct gvm_prog *p = j->prog;
    uint16_t named = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (p->insns[i].dst_reg <= BPF_R10 && p->insns[i].src_reg <= BPF_R10)
            named |= (uint16_t)(1u << p->insns[i].dst_reg | 1u << p->insns[i].src_reg);

    j->slot_reg = malloc(p->n_funcs * sizeof(*j->slot_reg));
    if (!j->slot_reg)
        return graft_errf(err, -ENOMEM, "JIT: out of memory for %u functions", p->n_funcs);
    for (uint32_t f = 0; f < p->n_funcs; f++) {
        uint32_t lo = p->func_starts[f];
        uint32_t hi = f + 1 < p->n_funcs ? p->func_starts[f + 1] : p->n;
        struct gvm_slot_use u;
        int free_regs[16], n_free = 0;

        gvm_slot_scan(p->insns, p->n, lo, hi, &u);
        if (j->leaf) {
            if (!leaf_needs_scratch(p)) {
                free_regs[n_free++] = TMP1;
                free_regs[n_free++] = TMP2;
                free_regs[n_free++] = TMP3;
            }
            for (int r = BPF_R0; r <= BPF_R5; r++)
                if (!(named & (1u << r)))
                    free_regs[n_free++] = reg_map[r];
            free_regs[n_free++] = R12;
            for (int r = BPF_R6; r <= BPF_R9; r++)
                if (!(named & (1u << r)))
                    free_regs[n_free++] = reg_map[r];
            bool all_fit = !u.escapes;
            int n_prom = 0;
            for (int k = 0; k < GVM_SLOTS; k++) {
                all_fit = all_fit && (!u.used[k] || u.promotable[k]);
                n_prom += u.promotable[k];
            }
            if (all_fit && n_prom <= n_free + 1)
                free_regs[n_free++] = RBP;
            int given = assign_slots(j, f, &u, free_regs, n_free);
            j->leaf_frame = (named & (1u << BPF_R10)) && !(all_fit && given == n_prom);
            j->n_leaf_saved = 0;
            for (int r = BPF_R6; r <= BPF_R9; r++)
                if (named & (1u << r))
                    j->leaf_saved[j->n_leaf_saved++] = reg_map[r];
            for (int k = 0; k < given; k++)
                if (is_callee_saved(free_regs[k]))
                    j->leaf_saved[j->n_leaf_saved++] = free_regs[k];
        } else {
            for (int r = BPF_R6; r <= BPF_R9; r++)
                if (!(named & (1u << r)))
                    free_regs[n_free++] = reg_map[r];
            assign_slots(j, f, &u, free_regs, n_free);
        }
        for (int k = 0; k < GVM_SLOTS; k++)
            j->tmp1_taken = j->tmp1_taken || j->slot_reg[f][k] == TMP1;
    }
    return 0;
}

static void mark_targets(struct jit *j)
{
    const struct gvm_prog *p = j->prog;
    for (uint32_t f = 0; f < p->n_funcs; f++)
        j->is_target[p->func_starts[f]] = 1;
    for (uint32_t i = 0; i < p->n; i++) {
        const struct bpf_insn *in = &p->insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        if (bpf_is_ld_imm64(in)) {
            i++;
            continue;
        }
        if (cls != BPF_JMP && cls != BPF_JMP32)
            continue;
        if (op == BPF_CALL) {
            if (BPF_SRC(in->code) == BPF_X)
                j->uses_callx = true;
            continue;
        }
        if (op == BPF_EXIT)
            continue;
        int64_t off = (cls == BPF_JMP32 && op == BPF_JA) ? in->imm : in->off;
        int64_t t = (int64_t)i + off + 1;
        if (t >= 0 && t < p->n)
            j->is_target[t] = 1;
    }
}

/* Where to ask for the code mapping: just below the lowest host-call
 * target, so that `call rel32` reaches every target when they lie within
 * about 2 GiB of each other (a helper table in one binary). Only a hint:
 * the kernel may place the mapping elsewhere, and fill_host_calls copes. */
static void *near_calls_hint(const struct jit *j, size_t map_size, size_t page)
{
    if (j->n_calls == 0)
        return NULL;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t k = 0; k < j->n_calls; k++) {
        lo = j->calls[k].target < lo ? j->calls[k].target : lo;
        hi = j->calls[k].target > hi ? j->calls[k].target : hi;
    }
    uint64_t gap = map_size + (64u << 20);
    if (lo < gap + (1u << 30) || hi - lo > (1u << 30))
        return NULL;
    return (void *)(uintptr_t)((lo - gap) & ~(uint64_t)(page - 1));
}

/* Fill each 6-byte host call site: `cs call rel32` if the target is in
 * reach, else `call [rip+disp32]` through the site's pool slot. */
static void fill_host_calls(const struct jit *j, uint8_t *mem)
{
    for (uint32_t k = 0; k < j->n_calls; k++) {
        const struct host_call *c = &j->calls[k];
        uint8_t *site = mem + c->pos;
        int64_t rel = (int64_t)(c->target - (uint64_t)(uintptr_t)(site + 6));
        uint8_t *slot = mem + j->pool_off + 8 * k;
        memcpy(slot, &c->target, 8);
        if (is_simm32(rel)) {
            int32_t r = (int32_t)rel;
            site[0] = 0x2e;                              /* cs: 1-byte pad */
            site[1] = 0xe8;
            memcpy(site + 2, &r, 4);
        } else {
            int32_t d = (int32_t)(slot - (site + 6));
            site[0] = 0xff;
            site[1] = 0x15;                              /* call [rip+d] */
            memcpy(site + 2, &d, 4);
        }
    }
}

/* Copy the converged code into a fresh mapping, patch absolute addresses,
 * then make it read+execute only. */
static int install(struct jit *j, struct gvm_prog *prog, struct graft_err *err)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bitmap_len = j->uses_callx ? (j->code_len + 7) / 8 : 0;
    size_t total = j->bitmap_off + bitmap_len;
    size_t map_size = (total + page - 1) & ~(page - 1);

    uint8_t *mem = mmap(near_calls_hint(j, map_size, page), map_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return graft_errf(err, -errno, "JIT: mmap of %zu bytes for code failed", map_size);
    memcpy(mem, j->buf, j->code_len);
    memset(mem + j->code_len, 0xcc, j->pool_off - j->code_len);   /* int3 padding */
    fill_host_calls(j, mem);
    for (uint32_t k = 0; k < j->n_patches; k++) {
        uint64_t v = (uint64_t)(uintptr_t)mem + j->patches[k].rel;
        memcpy(mem + j->patches[k].pos, &v, 8);
    }
    if (bitmap_len) {
        uint8_t *bm = mem + j->bitmap_off;
        for (uint32_t f = 0; f < prog->n_funcs; f++)
            bm[j->fentry[f] / 8] |= (uint8_t)(1u << (j->fentry[f] % 8));
    }
    if (mprotect(mem, map_size, PROT_READ | PROT_EXEC) != 0) {
        int e = errno;
        munmap(mem, map_size);
        return graft_errf(err, -e, "JIT: mprotect to read+execute failed");
    }
    prog->jit_code = mem;
    prog->jit_map_size = map_size;
    prog->jit_code_size = j->code_len;
    /* A leaf program's function 0 is a complete C function on its own. */
    prog->jit_fn = (gvm_native_fn)(void *)(mem + (j->leaf ? JIT_FUNC0_OFF : 0));
    return 0;
}

static void jit_free(struct jit *j)
{
    free(j->buf);
    free(j->off);
    free(j->prev_off);
    free(j->fentry);
    free(j->prev_fentry);
    free(j->fepi);
    free(j->prev_fepi);
    free(j->is_long);
    free(j->is_target);
    free(j->patches);
    free(j->calls);
    free(j->slot_reg);
    free(j->live_out);
}

int gvm_jit_compile(struct gvm_prog *prog, struct graft_err *err)
{
    struct jit j = { .prog = prog };
    uint32_t n = prog->n, nf = prog->n_funcs;
    int r;

    detect_cpu();
    if (nf == 0 || !prog->func_starts)
        return graft_errf(err, -EINVAL, "JIT: program has no function table");
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &prog->insns[i];
        if (BPF_CLASS(in->code) == BPF_JMP && BPF_OP(in->code) == BPF_CALL
            && BPF_SRC(in->code) == BPF_K && in->src_reg == BPF_PSEUDO_CALL
            && (int64_t)i + in->imm + 1 == 0)
            return graft_errf(err, -ENOTSUP,
                              "JIT: insn %u: local call to insn 0 (the entry function) "
                              "is not supported; use the interpreter", i);
    }
    j.off = calloc(n + 1, sizeof(uint32_t));
    j.prev_off = calloc(n + 1, sizeof(uint32_t));
    j.fentry = calloc(nf, sizeof(uint32_t));
    j.prev_fentry = calloc(nf, sizeof(uint32_t));
    j.fepi = calloc(nf, sizeof(uint32_t));
    j.prev_fepi = calloc(nf, sizeof(uint32_t));
    j.is_long = calloc(n, 1);
    j.is_target = calloc(n, 1);
    if (!j.off || !j.prev_off || !j.fentry || !j.prev_fentry || !j.fepi || !j.prev_fepi
        || !j.is_long || !j.is_target) {
        r = graft_errf(err, -ENOMEM, "JIT: out of memory for %u instructions", n);
        goto out;
    }
    mark_targets(&j);
    mark_leaf(&j);
    r = plan_slots(&j, err);
    if (r)
        goto out;
    j.live_out = malloc(n * sizeof(uint16_t));
    for (uint32_t f = 0; f < nf && j.live_out; f++) {
        uint32_t lo = prog->func_starts[f], hi = f + 1 < nf ? prog->func_starts[f + 1] : n;
        if (!has_fold_candidate(prog, lo, hi)) {
            for (uint32_t i = lo; i < hi; i++)
                j.live_out[i] = 0xffff;    /* not needed: no peephole asks */
            continue;
        }
        uint16_t *lv = gvm_live_out(prog->insns, n, lo, hi);
        if (!lv) {
            free(j.live_out);
            j.live_out = NULL;             /* peepholes then assume all live */
            break;
        }
        memcpy(j.live_out + lo, lv, (hi - lo) * sizeof(uint16_t));
        free(lv);
    }

    for (j.pass = 0;; j.pass++) {
        r = run_pass(&j, err);
        if (r)
            goto out;
        if (j.pass > 0 && !j.changed && j.code_len == j.prev_code_len)
            break;
        swap_u32p(&j.off, &j.prev_off);
        swap_u32p(&j.fentry, &j.prev_fentry);
        swap_u32p(&j.fepi, &j.prev_fepi);
        j.prev_abort_off = j.abort_off;
        j.prev_bitmap_off = j.bitmap_off;
        j.prev_code_len = j.code_len;
        if (j.pass > 64) {
            r = graft_errf(err, -EFAULT, "JIT: branch layout did not converge");
            goto out;
        }
    }
    r = install(&j, prog, err);
out:
    jit_free(&j);
    return r;
}

void gvm_jit_release(struct gvm_prog *prog)
{
    if (prog->jit_code)
        munmap(prog->jit_code, prog->jit_map_size);
    prog->jit_code = NULL;
    prog->jit_fn = NULL;
    prog->jit_map_size = 0;
    prog->jit_code_size = 0;
}
