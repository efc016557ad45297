/*
 * fuzz_diff.c - differential fuzzer: the JIT against the interpreter.
 *
 * Usage: vm_fuzz_diff [seed] [seconds]   (seed 0 or none: from the clock; 30 s)
 *
 * Generates random well-formed programs - ALU/ALU32 of every kind with
 * operand values biased to the edge cases (0, -1, INT_MIN, shift counts past
 * the width), forward branches of every condition, bounded loops, loads and
 * stores of every size (plain and sign-extending) to a ctx buffer and the
 * stack at in-bounds offsets, atomics of every kind on aligned slots, helper
 * calls, bpf-to-bpf calls up to 8 frames deep, callx of helpers and
 * functions - runs each on both engines with identical inputs and requires
 * the same r0 and the same final ctx buffer. Every program ends by copying
 * its stack into the ctx buffer and folding all registers into r0, so stack
 * and register effects are compared too. The JIT's code runs with a canary
 * in every callee-saved register (jit_canary.h) and must give each back
 * (a frame that does not save a register it uses). It must also hold no
 * WRPKRU/XRSTOR byte pattern (util/pkru_pattern.h): immediates often carry
 * one on purpose (rnd_gadget).
 *
 * Half the programs access the stack mostly in whole 8-byte slots, and half
 * leave r8 and r9 unnamed, so that the JIT keeps stack slots in registers,
 * with and without calls. Shapes the JIT's peepholes look for are made on
 * purpose: address arithmetic then loads, modifications and stores through
 * it, 64-bit constants reused inside loops and consumed at once, short
 * diamonds (cmov), fill loops (rep stos), byte masks feeding a compare,
 * load-update-store of a stack slot.
 *
 * Invariants of generated programs: r6 always holds the ctx pointer and r10
 * the frame pointer; no other register holds an address past the few
 * instructions of a pointer-arithmetic access (so values are
 * engine-independent); r1-r5 are re-initialised after every call; the stack
 * bytes a function reads were written first.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/pkru_pattern.h"
#include "vm/vm.h"
#include "jit_canary.h"

#define CTX_DATA   512           /* random-access region of ctx (room for fill
                                    loops long enough for rep stos) */
#define STACK_USED 64            /* bytes of each frame a program uses */
#define SCOPED_SLOTS 6           /* 8-byte slots below those, each live only
                                    between a store and the loads after it */
#define CTX_LEN    (CTX_DATA + STACK_USED)
#define MAX_FUNCS  7             /* subfunctions: main + 7 = 8 frames */

static uint64_t rng_state;
static bool small;               /* FUZZ_DIFF_SMALL set: tiny programs, to debug */

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rn(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

/* A random value with a WRPKRU or XRSTOR byte pattern at a random offset
 * (possibly running off its top: the next instruction may complete it), so
 * that the JIT's hardened forms meet the interpreter too. */
static uint64_t rnd_gadget(void)
{
    static const uint8_t pat[][3] = { { 0x0f, 0x01, 0xef }, { 0x0f, 0xae, 0x2f },
                                      { 0x0f, 0xae, 0x68 }, { 0x0f, 0xc7, 0x18 } };
    const uint8_t *p = pat[rn(4)];
    unsigned at = rn(8);
    uint64_t v = rnd();
    for (unsigned k = 0; k < 3 && at + k < 8; k++)
        v = (v & ~(0xffull << (8 * (at + k)))) | (uint64_t)p[k] << (8 * (at + k));
    return v;
}

static int32_t rnd_imm(void)
{
    static const int32_t edge[] = { 0, 1, -1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 65,
                                    INT32_MIN, INT32_MAX, 0x7fff, -0x8000, 0xff, 0x100 };
    switch (rn(5)) {
    case 0: return edge[rn(sizeof(edge) / sizeof(edge[0]))];
    case 1: return (int32_t)rn(16) - 8;
    case 2: return (int32_t)(uint32_t)rnd_gadget();
    default: return (int32_t)rnd();
    }
}

static uint64_t rnd_imm64(void)
{
    static const uint64_t edge[] = { 0, 1, ~0ull, 0x8000000000000000ull, 0x7fffffffffffffffull,
                                     0xffffffff, 0x80000000, 0x100000000ull, 0xffffffff80000000ull };
    switch (rn(4)) {
    case 0: return edge[rn(sizeof(edge) / sizeof(edge[0]))];
    case 1: return (uint64_t)(int64_t)rnd_imm();
    case 2: return rnd_gadget();
    default: return rnd();
    }
}

/* ---- program builder --------------------------------------------------- */

struct fixup {
    uint32_t at;                 /* insn to patch */
    uint32_t func;               /* function whose start it refers to */
};

struct gen {
    struct bpf_insn *insns;
    uint32_t n, cap;
    struct fixup fix[256];
    uint32_t n_fix;
    uint32_t func_start[MAX_FUNCS + 1];
    uint32_t n_funcs;            /* subfunctions to generate */
    uint32_t cur_func;           /* 0 = main */
    bool in_loop;
    /* Shapes that let the JIT keep stack slots in registers: slots_mode
     * makes most stack accesses whole aligned 8-byte slots; few_regs leaves
     * r8 and r9 unnamed (the loop counter is r7) so that even programs with
     * calls have free registers for slots. */
    bool slots_mode, few_regs;
    bool strict_slots;           /* every memory access a whole stack slot */
    bool leaf;                   /* no calls at all: the JIT's lean frame */
    uint64_t consts[4];          /* 64-bit constants gen_const_use repeats */
};

static void put(struct gen *g, struct bpf_insn in)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->insns = realloc(g->insns, g->cap * sizeof(*g->insns));
        if (!g->insns) {
            perror("realloc");
            exit(2);
        }
    }
    g->insns[g->n++] = in;
}

static void put_ld_imm64(struct gen *g, int dst, uint64_t v)
{
    put(g, BPF_INSN(BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, (int32_t)(uint32_t)v));
    put(g, BPF_INSN(0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32)));
}

/* A data register: any but r6 (ctx) and r10, and not r9 inside loops. */
static int data_reg(struct gen *g)
{
    static const int regs[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9 };
    int n = g->few_regs ? (g->in_loop ? 6 : 7) : (g->in_loop ? 8 : 9);
    return regs[rn((uint32_t)n)];
}

static int loop_reg(const struct gen *g)
{
    return g->few_regs ? BPF_R7 : BPF_R9;
}

static void gen_alu(struct gen *g)
{
    static const uint8_t ops[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND,
                                   BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV,
                                   BPF_ARSH, BPF_END };
    uint8_t op = ops[rn(sizeof(ops))];
    uint8_t cls = rn(2) ? BPF_ALU64 : BPF_ALU;
    int dst = data_reg(g), src = data_reg(g);
    bool x = rn(2);
    int16_t off = 0;

    if (op == BPF_NEG) {
        put(g, BPF_INSN(cls | op | BPF_K, dst, 0, 0, 0));
        return;
    }
    if (op == BPF_END) {
        static const int32_t w[] = { 16, 32, 64 };
        uint8_t s = cls == BPF_ALU64 ? BPF_TO_LE : (rn(2) ? BPF_TO_BE : BPF_TO_LE);
        put(g, BPF_INSN(cls | op | s, dst, 0, 0, w[rn(3)]));
        return;
    }
    if ((op == BPF_DIV || op == BPF_MOD) && rn(2))
        off = 1;
    if (op == BPF_MOV && x && rn(3) == 0) {
        static const int16_t sx64[] = { 8, 16, 32 };
        off = cls == BPF_ALU64 ? sx64[rn(3)] : sx64[rn(2)];
    }
    if (x)
        put(g, BPF_INSN(cls | op | BPF_X, dst, src, off, 0));
    else
        put(g, BPF_INSN(cls | op | BPF_K, dst, 0, off, rnd_imm()));
}

static const uint8_t sizes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
static const int size_bytes[] = { 1, 2, 4, 8 };

/* A base register and an in-bounds, size-aligned-if-asked offset. */
static void mem_operand(int sz_idx, bool aligned, int *base, int16_t *off)
{
    int bytes = size_bytes[sz_idx];
    if (rn(2)) {
        *base = BPF_R6;
        int o = (int)rn(CTX_DATA - (uint32_t)bytes + 1);
        *off = (int16_t)(aligned ? o & ~(bytes - 1) : o);
    } else {
        *base = BPF_R10;
        int o = (int)rn(STACK_USED - (uint32_t)bytes + 1);
        if (aligned)
            o &= ~(bytes - 1);
        *off = (int16_t)(-STACK_USED + o);
    }
}

static void gen_mem(struct gen *g)
{
    int k = (int)rn(4), base;
    int16_t off;
    uint8_t sz = sizes[k];

    if (g->slots_mode && (g->strict_slots || rn(8))) {
        /* a whole slot, as compilers spill */
        off = (int16_t)(-8 - 8 * (int)rn(STACK_USED / 8));
        if (rn(2))
            put(g, BPF_LDX_MEM(BPF_DW, data_reg(g), BPF_R10, off));
        else if (rn(3))
            put(g, BPF_STX_MEM(BPF_DW, BPF_R10, data_reg(g), off));
        else
            put(g, BPF_ST_MEM(BPF_DW, BPF_R10, off, rnd_imm()));
        return;
    }
    switch (rn(4)) {
    case 0: {
        mem_operand(k, false, &base, &off);
        bool sx = sz != BPF_DW && rn(2);
        put(g, BPF_INSN(BPF_LDX | (sx ? BPF_MEMSX : BPF_MEM) | sz, data_reg(g), base, off, 0));
        break;
    }
    case 1:
        mem_operand(k, false, &base, &off);
        put(g, BPF_INSN(BPF_STX | BPF_MEM | sz, base, data_reg(g), off, 0));
        break;
    case 2:
        mem_operand(k, false, &base, &off);
        put(g, BPF_INSN(BPF_ST | BPF_MEM | sz, base, 0, off, rnd_imm()));
        break;
    default: {
        static const int32_t aops[] = { BPF_ADD, BPF_OR, BPF_AND, BPF_XOR,
                                        BPF_ADD | BPF_FETCH, BPF_OR | BPF_FETCH,
                                        BPF_AND | BPF_FETCH, BPF_XOR | BPF_FETCH,
                                        BPF_XCHG, BPF_CMPXCHG };
        k = rn(2) ? 2 : 3;
        mem_operand(k, true, &base, &off);
        put(g, BPF_INSN(BPF_STX | BPF_ATOMIC | sizes[k], base, data_reg(g), off,
                        aops[rn(sizeof(aops) / sizeof(aops[0]))]));
        break;
    }
    }
}

/* After a call r1-r5 are clobbered: give them fresh values. */
static void reinit_args(struct gen *g)
{
    for (int r = 1; r <= 5; r++)
        put(g, BPF_MOV64_IMM(r, rnd_imm()));
}

static void gen_call(struct gen *g)
{
    uint32_t kind = rn(4);
    bool can_local = g->cur_func < g->n_funcs && g->n_fix < 250;

    if (kind >= 2 && can_local) {
        put(g, BPF_MOV64_REG(BPF_R1, BPF_R6));      /* every function takes ctx in r1 */
        uint32_t f = g->cur_func + 1 + rn(g->n_funcs - g->cur_func);
        if (kind == 2) {
            g->fix[g->n_fix++] = (struct fixup){ g->n, f };
            put(g, BPF_INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0));
        } else {
            g->fix[g->n_fix++] = (struct fixup){ g->n, f };
            put(g, BPF_INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_R5, BPF_PSEUDO_FUNC, 0, 0));
            put(g, BPF_INSN(0, 0, 0, 0, 0));
            put(g, BPF_INSN(BPF_JMP | BPF_CALL | BPF_X, BPF_R5, 0, 0, 0));
        }
    } else if (kind == 1) {
        put(g, BPF_MOV64_IMM(BPF_R5, 2 + (int32_t)rn(2)));
        put(g, BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_R1, data_reg(g), 0, 0));
        put(g, BPF_INSN(BPF_JMP | BPF_CALL | BPF_X, BPF_R5, 0, 0, 0));
    } else {
        put(g, BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_R1, data_reg(g), 0, 0));
        put(g, BPF_CALL_HELPER(2 + (int32_t)rn(2)));
    }
    reinit_args(g);
}

static void gen_block(struct gen *g, int depth, int len);

/* ctx + index (or + constant) in a scratch register x, an access through
 * it, sometimes a second one (x still live), then x overwritten so that no
 * address outlives the sequence: the JIT folds such address arithmetic
 * into the access. */
static void gen_ptr_access(struct gen *g)
{
    int x = data_reg(g), i = data_reg(g);
    if (x == i)
        return;
    int k = (int)rn(2), sz_idx = (int)rn(4);
    uint8_t sz = sizes[sz_idx];
    int32_t base_off = (int32_t)rn(CTX_DATA - 16);
    int16_t off = (int16_t)rn(8);
    int sreg = data_reg(g);
    if (k && rn(2) && sreg != x && sreg != i) {
        /* a scaled index: i = s << sh */
        int sh = 1 + (int)rn(3);
        put(g, BPF_MOV64_IMM(sreg, base_off >> sh));
        put(g, BPF_MOV64_REG(i, sreg));
        put(g, BPF_ALU64_IMM(BPF_LSH, i, sh));
        put(g, BPF_MOV64_REG(x, BPF_R6));
        put(g, BPF_ALU64_REG(BPF_ADD, x, i));
    } else if (k) {
        put(g, BPF_MOV64_IMM(i, base_off));
        put(g, BPF_MOV64_REG(x, BPF_R6));
        put(g, BPF_ALU64_REG(BPF_ADD, x, i));
    } else {
        put(g, BPF_MOV64_REG(x, BPF_R6));
        put(g, BPF_ALU64_IMM(BPF_ADD, x, base_off));
    }
    if (rn(3) == 0) {
        int r = data_reg(g), src;             /* an op scheduled in between */
        static const uint8_t ops[] = { BPF_MOV, BPF_ADD, BPF_SUB, BPF_AND, BPF_OR, BPF_XOR };
        uint8_t op = ops[rn(sizeof(ops))], cls = rn(2) ? BPF_ALU64 : BPF_ALU;
        if (r != x && (op == BPF_MOV || rn(2)))
            put(g, BPF_INSN(cls | op | BPF_K, r, 0, 0, rnd_imm()));
        else if (r != x && (src = data_reg(g)) != x)     /* x: an address */
            put(g, BPF_INSN(cls | op | BPF_X, r, src, 0, 0));
    }
    bool x_is_addr = true;
    switch (rn(3)) {
    case 0: {
        int d = rn(3) ? (rn(3) ? data_reg(g) : i) : x;     /* i: the index reloaded */
        x_is_addr = d != x;
        bool sx = sz != BPF_DW && rn(2);
        put(g, BPF_INSN(BPF_LDX | (sx ? BPF_MEMSX : BPF_MEM) | sz, d, x, off, 0));
        break;
    }
    case 1: {
        int src = data_reg(g);
        if (src == x)
            src = i;
        put(g, BPF_INSN(BPF_STX | BPF_MEM | sz, x, src, off, 0));
        break;
    }
    default:
        put(g, BPF_INSN(BPF_ST | BPF_MEM | sz, x, 0, off, rnd_imm()));
        break;
    }
    if (x_is_addr && rn(3) == 0) {
        put(g, BPF_LDX_MEM(BPF_W, i, x, (int16_t)rn(8)));     /* x still live */
    } else if (x_is_addr && rn(3) == 0) {
        /* load, modify, store through x: ALU ops between the accesses,
         * some on the index (which the JIT must then not fold away) */
        int d = data_reg(g);
        if (d != x) {
            put(g, BPF_INSN(BPF_LDX | BPF_MEM | sz, d, x, off, 0));
            for (int n_ops = 1 + (int)rn(3); n_ops > 0; n_ops--) {
                static const uint8_t ops[] = { BPF_MOV, BPF_ADD, BPF_SUB, BPF_AND, BPF_OR,
                                               BPF_XOR };
                uint8_t op = ops[rn(sizeof(ops))], cls = rn(2) ? BPF_ALU64 : BPF_ALU;
                int r = rn(3) ? d : (rn(2) ? i : data_reg(g)), src = data_reg(g);
                if (r == x)
                    continue;
                if (src != x && op != BPF_MOV && rn(2))
                    put(g, BPF_INSN(cls | op | BPF_X, r, src, 0, 0));
                else
                    put(g, BPF_INSN(cls | op | BPF_K, r, 0, 0, rnd_imm()));
            }
            put(g, BPF_INSN(BPF_STX | BPF_MEM | sz, x, d, (int16_t)rn(8), 0));
        }
    }
    put(g, BPF_MOV64_IMM(x, rnd_imm()));
}

/* A 64-bit constant from the program's pool (so that loops reuse it, and
 * the JIT keeps it in a register), used right away by an ALU64 op or a
 * compare, the register holding it then often overwritten (dead). */
static void gen_const_use(struct gen *g)
{
    static const uint8_t ops[] = { BPF_ADD, BPF_SUB, BPF_AND, BPF_OR, BPF_XOR, BPF_MUL,
                                   BPF_LSH, BPF_RSH, BPF_ARSH };
    static const uint8_t conds[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT,
                                     BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE };
    int r = data_reg(g), d = data_reg(g);
    put_ld_imm64(g, r, g->consts[rn(4)]);
    if (rn(3)) {
        put(g, BPF_INSN(BPF_ALU64 | ops[rn(sizeof(ops))] | BPF_X, d, r, 0, 0));
    } else {
        uint32_t at = g->n;
        put(g, BPF_INSN(BPF_JMP | conds[rn(sizeof(conds))] | BPF_X, d, r, 0, 0));
        if (rn(2)) {
            g->insns[at].off = 1;
            at = g->n;
            put(g, BPF_JMP_A(0));           /* the JIT inverts `jcc +1; ja` */
        }
        gen_alu(g);
        g->insns[at].off = (int16_t)(g->n - at - 1);
    }
    if (rn(3))
        put(g, BPF_MOV64_IMM(r, rnd_imm()));
}

/* A fill loop (the memset idiom, jit_x86_fill.c) over ctx or the stack:
 * x = base + i; store [x+off]; i += size; while i < n, or until i == k
 * (sometimes as `jeq i, k, +1; ja loop`); x then overwritten or made an
 * offset again. */
static void gen_fill_loop(struct gen *g)
{
    int x = data_reg(g), i = data_reg(g), n = data_reg(g), v = data_reg(g);
    if (x == i || n == x || n == i || v == x || v == i)
        return;
    int sz_idx = (int)rn(4), size = size_bytes[sz_idx];
    bool stack = !g->strict_slots && rn(3) == 0;
    int32_t start, count, off;
    if (stack) {                            /* within [-STACK_USED, 0) */
        int slots = STACK_USED / size, r = (int)rn((uint32_t)slots);
        start = -STACK_USED + r * size;
        count = 1 + (int32_t)rn((uint32_t)(slots - r));
        off = 0;
    } else {                                /* within ctx[0, CTX_DATA) */
        start = (int32_t)rn(64);
        off = (int32_t)rn(8);
        int32_t room = (CTX_DATA - 16 - start) / size;
        count = 1 + (int32_t)rn((uint32_t)(room < 60 ? room : 60));
    }
    int32_t end = start + count * size;
    int form = stack ? 1 + (int)rn(2) : (int)rn(3);   /* (stack indexes are negative:
                                                          an unsigned i < n would wrap) */
    put(g, BPF_MOV64_IMM(i, start));
    if (form == 0)
        put(g, BPF_MOV64_IMM(n, rn(4) ? end - (int32_t)rn((uint32_t)size)
                                       : start - (start >= 2 ? (int32_t)rn(3) : 0)));
    uint32_t top = g->n;
    put(g, BPF_MOV64_REG(x, stack ? BPF_R10 : BPF_R6));
    put(g, BPF_ALU64_REG(BPF_ADD, x, i));
    if (rn(2))
        put(g, BPF_INSN(BPF_STX | BPF_MEM | sizes[sz_idx], x, v, (int16_t)off, 0));
    else
        put(g, BPF_INSN(BPF_ST | BPF_MEM | sizes[sz_idx], x, 0, (int16_t)off, rnd_imm()));
    put(g, BPF_ALU64_IMM(BPF_ADD, i, size));
    if (form == 0) {
        put(g, BPF_JMP_REG(BPF_JLT, i, n, (int16_t)((int32_t)top - (int32_t)g->n - 1)));
    } else if (form == 1) {
        put(g, BPF_JMP_IMM(BPF_JNE, i, end, (int16_t)((int32_t)top - (int32_t)g->n - 1)));
    } else {
        put(g, BPF_JMP_IMM(BPF_JEQ, i, end, 1));
        put(g, BPF_JMP_A((int16_t)((int32_t)top - (int32_t)g->n - 1)));
    }
    if (rn(2))                              /* x - base: where the last store went */
        put(g, BPF_ALU64_REG(BPF_SUB, x, stack ? BPF_R10 : BPF_R6));
    else
        put(g, BPF_MOV64_IMM(x, rnd_imm()));
}

/* r &= 0xff; [movs;] if r op k goto +n, or r &= m; if r ==/!= 0 goto +n;
 * r then often overwritten (dead): the JIT compares r's low byte, or
 * tests r against m */
static void gen_byte_test(struct gen *g)
{
    static const uint8_t conds[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT,
                                     BPF_JLT, BPF_JLE, BPF_JSLE };
    static const int32_t ks[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, -1 };
    int r = data_reg(g);
    bool byte = rn(2);                       /* else any mask, tested against 0 */
    put(g, BPF_INSN((rn(2) ? BPF_ALU64 : BPF_ALU) | BPF_AND | BPF_K, r, 0, 0,
                    byte ? 0xff : rnd_imm()));
    for (int n_movs = (int)rn(3); n_movs > 0; n_movs--)
        put(g, BPF_MOV64_IMM(data_reg(g), rnd_imm()));
    int32_t k = !byte ? 0 : rn(2) ? ks[rn(sizeof(ks) / sizeof(ks[0]))] : (int32_t)rn(256);
    uint8_t op = byte ? conds[rn(sizeof(conds))] : rn(2) ? BPF_JEQ : BPF_JNE;
    uint32_t at = g->n;
    put(g, BPF_INSN((rn(2) ? BPF_JMP : BPF_JMP32) | op | BPF_K, r, 0, 0, k));
    gen_alu(g);
    g->insns[at].off = (int16_t)(g->n - at - 1);
    if (rn(3))
        put(g, BPF_MOV64_IMM(r, rnd_imm()));
}

/* ldxdw a, [r10-k]; op a, v; stxdw [r10-k], a: a counter kept in a stack
 * slot (the JIT updates a slot held in a register in place) */
static void gen_slot_update(struct gen *g)
{
    static const uint8_t ops[] = { BPF_ADD, BPF_SUB, BPF_AND, BPF_OR, BPF_XOR };
    int a = data_reg(g);
    int16_t off = (int16_t)(-8 * (1 + (int)rn(STACK_USED / 8)));
    uint8_t op = ops[rn(sizeof(ops))];
    put(g, BPF_LDX_MEM(BPF_DW, a, BPF_R10, off));
    if (rn(2))
        put(g, BPF_INSN(BPF_ALU64 | op | BPF_X, a, rn(4) ? data_reg(g) : a, 0, 0));
    else
        put(g, BPF_INSN(BPF_ALU64 | op | BPF_K, a, 0, 0, rn(2) ? 1 : rnd_imm()));
    put(g, BPF_STX_MEM(BPF_DW, BPF_R10, a, off));
}

/* A temporary in a scoped slot (below STACK_USED, never read before a
 * store on any path): stored, a block, loaded back. Scoped slots have
 * short live intervals that the JIT lets share one register; the block in
 * between may reuse the same or other scoped slots. */
static int16_t scoped_slot(void)
{
    return (int16_t)(-STACK_USED - 8 * (1 + (int)rn(SCOPED_SLOTS)));
}

static void gen_scoped(struct gen *g, int depth)
{
    int16_t off = scoped_slot();
    if (rn(3))
        put(g, BPF_STX_MEM(BPF_DW, BPF_R10, data_reg(g), off));
    else
        put(g, BPF_ST_MEM(BPF_DW, BPF_R10, off, rnd_imm()));
    if (depth < 4 && rn(2))
        gen_block(g, depth + 1, 1 + (int)rn(4));
    put(g, BPF_LDX_MEM(BPF_DW, data_reg(g), BPF_R10, off));
}

/* J1: if (c) goto J2; A; J2: if (c) goto +k; B: a test repeated after
 * code that keeps its registers (the JIT jumps from J1 straight to J2's
 * target and emits nothing for J2: jit_thread.c). Sometimes A writes a
 * tested register or a third jump lands on J2, where it must not. */
static void gen_same_test(struct gen *g, int depth)
{
    static const uint8_t conds[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT,
                                     BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE };
    uint8_t code = (uint8_t)((rn(2) ? BPF_JMP : BPF_JMP32) | conds[rn(sizeof(conds))]
                             | (rn(2) ? BPF_X : BPF_K));
    int dst = data_reg(g), src = BPF_SRC(code) == BPF_X ? data_reg(g) : 0;
    int32_t imm = BPF_SRC(code) == BPF_X ? 0 : rnd_imm();
    int64_t other = -1, into = -1;
    if (rn(4) == 0) {                       /* another way into J2 */
        other = g->n;
        put(g, BPF_INSN(code, dst, src, 0, imm));
    }
    if (rn(4) == 0) {                       /* a way into the middle of A */
        into = g->n;
        put(g, BPF_JMP_IMM(conds[rn(sizeof(conds))], data_reg(g), rnd_imm(), 0));
    }
    uint32_t j1 = g->n;
    put(g, BPF_INSN(code, dst, src, 0, imm));
    for (int k = 0, len = 1 + (int)rn(3); k < len; k++) {
        if (k == 1 && into >= 0)
            g->insns[into].off = (int16_t)(g->n - (uint32_t)into - 1);
        int d = data_reg(g);
        for (int tries = 0; tries < 8 && (d == dst || (BPF_SRC(code) == BPF_X && d == src)); tries++)
            d = data_reg(g);
        if (rn(4) == 0)
            d = rn(2) || BPF_SRC(code) == BPF_K ? dst : src;   /* A writes a tested register */
        int16_t off = (int16_t)(-8 - 8 * (int)rn(STACK_USED / 8));
        switch (rn(4)) {
        case 0:  put(g, BPF_STX_MEM(BPF_DW, BPF_R10, d, off)); break;
        case 1:  put(g, BPF_LDX_MEM(BPF_DW, d, BPF_R10, off)); break;
        default: put(g, BPF_ALU64_IMM(rn(2) ? BPF_ADD : BPF_XOR, d, rnd_imm())); break;
        }
    }
    uint32_t j2 = g->n;
    if (into >= 0 && g->insns[into].off == 0)
        g->insns[into].off = (int16_t)(j2 - (uint32_t)into - 1);   /* A too short: J2 */
    g->insns[j1].off = (int16_t)(j2 - j1 - 1);
    if (other >= 0)
        g->insns[other].off = (int16_t)(j2 - (uint32_t)other - 1);
    put(g, BPF_INSN(code, dst, src, 0, imm));
    if (depth < 4)
        gen_block(g, depth + 1, 1 + (int)rn(3));
    else
        gen_alu(g);
    g->insns[j2].off = (int16_t)(g->n - j2 - 1);
}

/* r = a; if (cond) goto +1; r = b: a cmov */
static void gen_diamond(struct gen *g)
{
    static const uint8_t conds[] = { BPF_JEQ, BPF_JGT, BPF_JSET, BPF_JNE, BPF_JSGE, BPF_JLT,
                                     BPF_JSLE };
    int r = data_reg(g);
    uint8_t cls = rn(2) ? BPF_JMP : BPF_JMP32;
    put(g, BPF_MOV64_IMM(r, rnd_imm()));
    if (rn(2))
        put(g, BPF_INSN(cls | conds[rn(sizeof(conds))] | BPF_X, data_reg(g), data_reg(g), 1, 0));
    else
        put(g, BPF_INSN(cls | conds[rn(sizeof(conds))] | BPF_K, data_reg(g), 0, 1, rnd_imm()));
    if (rn(3))
        put(g, BPF_INSN((rn(2) ? BPF_ALU64 : BPF_ALU) | BPF_MOV | BPF_K, r, 0, 0, rnd_imm()));
    else
        put(g, BPF_MOV64_REG(r, data_reg(g)));
}

/* if (cond) skip the block that follows */
static void gen_if(struct gen *g, int depth)
{
    static const uint8_t conds[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT,
                                     BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE };
    uint8_t cls = rn(2) ? BPF_JMP : BPF_JMP32;
    uint8_t op = conds[rn(sizeof(conds))];
    uint32_t at = g->n;
    if (rn(2))
        put(g, BPF_INSN(cls | op | BPF_X, data_reg(g), data_reg(g), 0, 0));
    else
        put(g, BPF_INSN(cls | op | BPF_K, data_reg(g), 0, 0, rnd_imm()));
    /* sometimes a long body, to force rel32 branches */
    gen_block(g, depth + 1, rn(8) == 0 && !small ? 40 + (int)rn(40) : 1 + (int)rn(6));
    g->insns[at].off = (int16_t)(g->n - at - 1);
}

/* r9 = K; do { block } while (--r9 != 0); sometimes with a `continue`
 * (if (c) { x ^= k; goto latch; }) in the middle, a jump to the latch
 * that the JIT replaces by a copy of it (try_copy_latch). */
static void gen_loop(struct gen *g, int depth)
{
    static const uint8_t conds[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT,
                                     BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE };
    int lr = loop_reg(g);
    int64_t cont = -1;
    /* sometimes a value carried from one iteration to the next in a scoped
     * slot: loaded at the top of the body, stored at its end, so its last
     * access comes before other slots' first ones in the body; only its
     * interval stretched over the loop keeps them out of its register */
    int16_t carried = rn(3) == 0 ? scoped_slot() : 0;
    if (carried)
        put(g, BPF_STX_MEM(BPF_DW, BPF_R10, data_reg(g), carried));
    put(g, BPF_MOV64_IMM(lr, 1 + (int32_t)rn(12)));
    uint32_t top = g->n;
    g->in_loop = true;
    if (carried) {
        int d = data_reg(g);
        put(g, BPF_LDX_MEM(BPF_DW, d, BPF_R10, carried));
        put(g, BPF_ALU64_IMM(BPF_MUL, d, 3));
        put(g, BPF_ALU64_REG(BPF_XOR, data_reg(g), d));
        put(g, BPF_ALU64_IMM(BPF_ADD, d, 1));
        put(g, BPF_STX_MEM(BPF_DW, BPF_R10, d, carried));
    }
    gen_block(g, depth + 1, 1 + (int)rn(5));
    if (rn(2)) {
        int d = data_reg(g);
        put(g, BPF_JMP_IMM(conds[rn(sizeof(conds))], d, rnd_imm(), 2));
        put(g, BPF_ALU64_IMM(BPF_XOR, data_reg(g), rnd_imm()));
        cont = g->n;
        put(g, BPF_JMP_A(0));
    }
    gen_block(g, depth + 1, 1 + (int)rn(5));
    g->in_loop = false;
    if (cont >= 0)
        g->insns[cont].off = (int16_t)(g->n - (uint32_t)cont - 1);
    put(g, BPF_ALU64_IMM(BPF_SUB, lr, 1));
    int32_t back = (int32_t)top - (int32_t)g->n - 1;
    if (rn(4) == 0)
        put(g, BPF_INSN(BPF_JMP32 | BPF_JNE | BPF_K, lr, 0, (int16_t)back, 0));
    else
        put(g, BPF_JMP_IMM(BPF_JNE, lr, 0, back));
}

static void gen_block(struct gen *g, int depth, int len)
{
    for (int k = 0; k < len; k++) {
        uint32_t c = rn(100);
        if (c < 37) {
            gen_alu(g);
        } else if (c < 40) {
            gen_same_test(g, depth);
        } else if (c < 43) {
            gen_ptr_access(g);
        } else if (c < 45) {
            if (rn(2))
                gen_slot_update(g);
            else
                gen_scoped(g, depth);
        } else if (c < 70) {
            gen_mem(g);
        } else if (c < 74) {
            put_ld_imm64(g, data_reg(g), rnd_imm64());
        } else if (c < 75) {
            gen_const_use(g);
        } else if (c < 76) {
            gen_fill_loop(g);
        } else if (c < 77) {
            gen_diamond(g);
        } else if (c < 78) {
            gen_byte_test(g);
        } else if (c < 88 && depth < 4) {
            gen_if(g, depth);
        } else if (c < 92 && depth < 3 && !g->in_loop) {
            gen_loop(g, depth);
        } else if (c < 97 && !g->leaf) {
            gen_call(g);
        } else {
            /* ja over a dead instruction */
            put(g, BPF_JMP_A(1));
            gen_alu(g);
        }
    }
}

/* r6 = ctx, registers and the used stack initialised from random values. */
static void gen_prologue(struct gen *g)
{
    put(g, BPF_MOV64_REG(BPF_R6, BPF_R1));
    for (int o = -STACK_USED; o < 0; o += 8) {
        if (rn(2)) {
            put(g, BPF_ST_MEM(BPF_DW, BPF_R10, (int16_t)o, rnd_imm()));
        } else {
            put_ld_imm64(g, BPF_R0, rnd_imm64());
            put(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R0, (int16_t)o));
        }
    }
    static const int regs[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9 };
    for (int k = 0; k < (g->few_regs ? 7 : 9); k++) {
        if (rn(2))
            put(g, BPF_LDX_MEM(BPF_DW, regs[k], BPF_R6, (int16_t)(rn(CTX_DATA / 8) * 8)));
        else
            put_ld_imm64(g, regs[k], rnd_imm64());
    }
}

/* Copy the stack into ctx (main) and fold every register into r0. */
static void gen_epilogue(struct gen *g, bool main)
{
    if (main) {
        for (int o = 0; o < STACK_USED; o += 8) {
            put(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R10, (int16_t)(o - STACK_USED)));
            put(g, BPF_STX_MEM(BPF_DW, BPF_R6, BPF_R1, (int16_t)(CTX_DATA + o)));
        }
    } else {
        /* fold the function's stack into r0 */
        for (int o = 0; o < STACK_USED; o += 8) {
            put(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R10, (int16_t)(o - STACK_USED)));
            put(g, BPF_ALU64_IMM(BPF_MUL, BPF_R0, 31));
            put(g, BPF_ALU64_REG(BPF_XOR, BPF_R0, BPF_R1));
        }
    }
    static const int regs[] = { 2, 3, 4, 5, 7, 8, 9 };
    for (int k = 0; k < (g->few_regs ? 5 : 7); k++) {
        put(g, BPF_ALU64_IMM(BPF_MUL, BPF_R0, 0x9e3779b1));
        put(g, BPF_ALU64_REG(BPF_ADD, BPF_R0, regs[k]));
    }
    put(g, BPF_EXIT_INSN());
}

static void generate(struct gen *g)
{
    g->n = 0;
    g->n_fix = 0;
    g->leaf = rn(4) == 0;
    g->n_funcs = g->leaf ? 0 : rn(small ? 2 : MAX_FUNCS + 1);
    g->cur_func = 0;
    g->in_loop = false;
    g->slots_mode = rn(2);
    g->few_regs = rn(2);
    g->strict_slots = g->slots_mode && rn(3) == 0;
    for (int k = 0; k < 4; k++)
        g->consts[k] = rn(3) ? rnd() : rnd_imm64();
    gen_prologue(g);
    gen_block(g, 0, small ? 1 + (int)rn(4) : 10 + (int)rn(60));
    gen_epilogue(g, true);
    for (uint32_t f = 1; f <= g->n_funcs; f++) {
        g->cur_func = f;
        g->func_start[f] = g->n;
        gen_prologue(g);
        gen_block(g, 1, small ? 1 + (int)rn(3) : 3 + (int)rn(15));
        gen_epilogue(g, false);
    }
    for (uint32_t k = 0; k < g->n_fix; k++) {
        struct fixup *fx = &g->fix[k];
        g->insns[fx->at].imm = (int32_t)g->func_start[fx->func] - (int32_t)fx->at - 1;
    }
}

/* ---- environment ------------------------------------------------------- */

static uint64_t helper_mix(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return (a ^ (b * 0x100000001b3ull)) + (c << 7) - (d >> 3) + e * 3;
}

static uint64_t helper_sub(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    /* garble the registers a C function may clobber and the JIT uses as
     * scratch (a slot wrongly kept there across a call reads garbage) */
    __asm__ volatile("mov $0x5a5a5a5a, %%r9d\n\tmov %%r9, %%r10\n\tmov %%r9, %%r11"
                     ::: "r9", "r10", "r11");
    (void)a;
    return b - c + (d ^ e);
}

static gvm_helper_fn helpers[BPF_MAX_HELPER_ID] = { [2] = helper_mix, [3] = helper_sub };
static const struct gvm_env env = { .helpers = helpers };

static void dump(const struct gen *g)
{
    char buf[128];
    for (uint32_t i = 0; i < g->n; i++) {
        fprintf(stderr, "  %4u: %s\n", i, gvm_insn_str(g->insns, g->n, i, buf, sizeof(buf)));
        if (bpf_is_ld_imm64(&g->insns[i]))
            i++;
    }
}

static int run_one(struct gen *g, uint64_t seed, uint64_t *n_insns)
{
    uint8_t init[CTX_LEN], m_int[CTX_LEN], m_jit[CTX_LEN];
    struct gvm_prog *pi = NULL, *pj = NULL;
    struct graft_err err;
    uint64_t r_int = 0, r_jit = 0, clobbered = 0;
    int rc = 0;

    generate(g);
    *n_insns += g->n;
    for (size_t k = 0; k < CTX_LEN; k += 8) {
        uint64_t v = rnd_imm64();
        memcpy(init + k, &v, 8);
    }
    memcpy(m_int, init, CTX_LEN);
    memcpy(m_jit, init, CTX_LEN);

    struct gvm_prog_opts oi = { .sz = sizeof(oi), .engine = GVM_ENGINE_INTERP, .env = &env };
    struct gvm_prog_opts oj = { .sz = sizeof(oj), .engine = GVM_ENGINE_JIT, .env = &env };
    if (gvm_prog_create(g->insns, g->n, &oi, &pi, &err) < 0) {
        fprintf(stderr, "seed %" PRIu64 ": generator made a program the VM rejects: %s\n",
                seed, err.msg);
        dump(g);
        return 1;
    }
    if (gvm_prog_create(g->insns, g->n, &oj, &pj, &err) < 0) {
        fprintf(stderr, "seed %" PRIu64 ": JIT rejected the program: %s\n", seed, err.msg);
        dump(g);
        gvm_prog_free(pi);
        return 1;
    }
    /* isolation: no WRPKRU/XRSTOR byte pattern anywhere in the JIT's code */
    const uint8_t *code = gvm_prog_code(pj);
    size_t code_len = gvm_prog_code_size(pj), at = gpkru_find(code, code_len, 0);
    if (at != code_len) {
        fprintf(stderr, "seed %" PRIu64 ": WRPKRU/XRSTOR pattern in the JIT's code at offset "
                "%zu of %zu\n", seed, at, code_len);
        dump(g);
        rc = 1;
    } else if (gvm_prog_run(pi, m_int, CTX_LEN, &r_int, &err) < 0) {
        fprintf(stderr, "seed %" PRIu64 ": interpreter run failed: %s\n", seed, err.msg);
        dump(g);
        rc = 1;
    } else if (!gvm_prog_native(pj)) {
        fprintf(stderr, "seed %" PRIu64 ": the JIT gave no native entry\n", seed);
        rc = 1;
    } else if ((r_jit = jit_call_canaries(gvm_prog_native(pj), m_jit, CTX_LEN, &clobbered)),
               clobbered) {
        /* the C caller's callee-saved registers must come back */
        fprintf(stderr, "seed %" PRIu64 ": JIT code clobbered callee-saved registers "
                "(mask 0x%" PRIx64 " of rbx rbp r12-r15)\n", seed, clobbered);
        dump(g);
        rc = 1;
    } else if (r_int != r_jit || memcmp(m_int, m_jit, CTX_LEN) != 0) {
        fprintf(stderr, "seed %" PRIu64 ": MISMATCH r0 interp 0x%" PRIx64 " jit 0x%" PRIx64 "\n",
                seed, r_int, r_jit);
        for (int k = 0; k < CTX_LEN; k++)
            if (m_int[k] != m_jit[k])
                fprintf(stderr, "  ctx[%d]: interp %02x jit %02x\n", k, m_int[k], m_jit[k]);
        dump(g);
        rc = 1;
    }
    gvm_prog_free(pi);
    gvm_prog_free(pj);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
    if (seed == 0)
        seed = (uint64_t)time(NULL);
    double budget = argc > 2 ? atof(argv[2]) : 30.0;
    struct gen g = { 0 };
    struct timespec t0, t;
    uint64_t iters = 0, n_insns = 0;

    small = getenv("FUZZ_DIFF_SMALL") != NULL;
    printf("fuzz_diff: seed %" PRIu64 ", budget %.1f s\n", seed, budget);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint64_t s = seed * 1000003u + iters;
        rng_state = s;
        if (run_one(&g, s, &n_insns)) {
            fprintf(stderr, "reproduce: the failing program is iteration %" PRIu64
                    " of seed %" PRIu64 "\n", iters, seed);
            free(g.insns);
            return 1;
        }
        iters++;
        if ((iters & 63) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 >= budget)
                break;
        }
    }
    printf("fuzz_diff: %" PRIu64 " programs (%" PRIu64 " insns) agreed\n", iters, n_insns);
    free(g.insns);
    return 0;
}
