/*
 * cfg.c - the verifier's first pass: decode every instruction, find the
 * subprograms, check the control-flow graph (targets in range and inside the
 * same subprogram, never into the second slot of LD_IMM64, no unreachable
 * instruction, no falling off the end of a subprogram), mark prune points
 * and compute register liveness.
 *
 * Liveness invariant: a register not in live_in[i] is written before it is
 * read on every path from i (within the frame), so two states that differ
 * only in such registers behave the same from i on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verifier/vpriv.h"

static int bad(struct cfg *c, uint32_t i, const char *fmt, int a, int b)
{
    c->fail_insn = i;
    snprintf(c->reason, sizeof(c->reason), fmt, a, b);
    return -1;
}

/* A field the ISA reserves (must be zero for this opcode) is not: the
 * kernel's "<KIND> uses reserved fields". Rejected rather than ignored so
 * that what is verified is exactly what the VM, the JIT and the loader read
 * (none of them looks at these fields). */
static int reserved(struct cfg *c, uint32_t i, const char *kind, const char *field, int v)
{
    c->fail_insn = i;
    snprintf(c->reason, sizeof(c->reason), "%s uses reserved fields (%s %d, must be 0)", kind, field, v);
    return -1;
}

/* Is the opcode and its fixed fields valid? Returns 0 or rejects. */
static int check_opcode(struct cfg *c, const struct bpf_insn *in, uint32_t i, uint32_t n)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (in->dst_reg > 10 || in->src_reg > 10) {
        if (!(cls == BPF_LD && in->src_reg <= 6) &&
            !((cls == BPF_JMP) && op == BPF_CALL && in->src_reg <= 2))
            return bad(c, i, "invalid register r%d", in->dst_reg > 10 ? in->dst_reg : in->src_reg, 0);
    }
    switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
        if (in->src_reg > 10)
            return bad(c, i, "invalid register r%d", in->src_reg, 0);
        /* the operand not used by the source form is reserved (NEG and END
         * take none: checked below) */
        if (op != BPF_NEG && op != BPF_END) {
            if (BPF_SRC(in->code) == BPF_K && in->src_reg)
                return reserved(c, i, op == BPF_MOV ? "BPF_MOV" : "BPF_ALU", "src_reg", in->src_reg);
            /* mov off 1 (addr_space_cast) carries its address spaces in imm */
            if (BPF_SRC(in->code) == BPF_X && in->imm && !(op == BPF_MOV && in->off == 1))
                return reserved(c, i, op == BPF_MOV ? "BPF_MOV" : "BPF_ALU", "imm", in->imm);
        }
        switch (op) {
        case BPF_ADD: case BPF_SUB: case BPF_MUL: case BPF_OR: case BPF_AND:
        case BPF_LSH: case BPF_RSH: case BPF_XOR: case BPF_ARSH:
            if (in->off)
                return bad(c, i, "invalid off %d for ALU opcode %#x", in->off, in->code);
            break;
        case BPF_DIV: case BPF_MOD:
            if (in->off != 0 && in->off != 1)
                return bad(c, i, "invalid off %d for div/mod %#x", in->off, in->code);
            break;
        case BPF_MOV:
            /* off 1: addr_space_cast (kernel programs with an arena: alu.c) */
            if (in->off && !(BPF_SRC(in->code) == BPF_X &&
                             (in->off == 8 || in->off == 16 ||
                              ((in->off == 32 || in->off == 1) && cls == BPF_ALU64))))
                return bad(c, i, "invalid off %d for mov %#x", in->off, in->code);
            break;
        case BPF_NEG:
            if (BPF_SRC(in->code) != BPF_K || in->off)
                return bad(c, i, "invalid neg opcode %#x", in->code, 0);
            if (in->src_reg || in->imm)
                return reserved(c, i, "BPF_NEG", in->src_reg ? "src_reg" : "imm",
                                in->src_reg ? in->src_reg : in->imm);
            break;
        case BPF_END:
            if ((cls == BPF_ALU64 && BPF_SRC(in->code) != BPF_K) ||
                (in->imm != 16 && in->imm != 32 && in->imm != 64))
                return bad(c, i, "invalid byte swap %#x width %d", in->code, in->imm);
            if (in->src_reg || in->off)
                return reserved(c, i, "BPF_END", in->src_reg ? "src_reg" : "off",
                                in->src_reg ? in->src_reg : in->off);
            break;
        default:
            return bad(c, i, "invalid ALU opcode %#x", in->code, 0);
        }
        return 0;
    case BPF_LDX:
        if (BPF_MODE(in->code) == BPF_MEM ||
            (BPF_MODE(in->code) == BPF_MEMSX && BPF_SIZE(in->code) != BPF_DW))
            return in->imm ? reserved(c, i, "BPF_LDX", "imm", in->imm) : 0;
        return bad(c, i, "invalid load opcode %#x", in->code, 0);
    case BPF_ST:
        if (BPF_MODE(in->code) == BPF_MEM)
            return in->src_reg ? reserved(c, i, "BPF_ST", "src_reg", in->src_reg) : 0;
        return bad(c, i, "invalid store opcode %#x", in->code, 0);
    case BPF_STX:
        if (BPF_MODE(in->code) == BPF_MEM)
            return in->imm ? reserved(c, i, "BPF_STX", "imm", in->imm) : 0;
        if (BPF_MODE(in->code) == BPF_ATOMIC &&
            (BPF_SIZE(in->code) == BPF_W || BPF_SIZE(in->code) == BPF_DW)) {
            int a = in->imm;
            if (a == BPF_ADD || a == BPF_OR || a == BPF_AND || a == BPF_XOR ||
                a == (BPF_ADD | BPF_FETCH) || a == (BPF_OR | BPF_FETCH) ||
                a == (BPF_AND | BPF_FETCH) || a == (BPF_XOR | BPF_FETCH) ||
                a == BPF_XCHG || a == BPF_CMPXCHG)
                return 0;
            return bad(c, i, "invalid atomic operation %#x", a, 0);
        }
        return bad(c, i, "invalid store opcode %#x", in->code, 0);
    case BPF_LD:
        if (in->code == (BPF_LD | BPF_IMM | BPF_DW)) {
            if (i + 1 >= n)
                return bad(c, i, "LD_IMM64 is missing its second slot", 0, 0);
            const struct bpf_insn *nx = in + 1;
            if (nx->code || nx->dst_reg || nx->src_reg || nx->off)
                return bad(c, i, "invalid second slot of LD_IMM64", 0, 0);
            if (in->src_reg > BPF_PSEUDO_MAP_IDX_VALUE)
                return bad(c, i, "invalid LD_IMM64 source %d", in->src_reg, 0);
            if (in->dst_reg > 9)
                return bad(c, i, "invalid register r%d", in->dst_reg, 0);
            if (in->off)
                return reserved(c, i, "BPF_LD_IMM64", "off", in->off);
            /* the second imm is the value offset of MAP_VALUE loads, the
             * high half of a constant and the BTF object of a ksym; a map
             * or function load has none */
            if (nx->imm && (in->src_reg == BPF_PSEUDO_MAP_FD || in->src_reg == BPF_PSEUDO_MAP_IDX ||
                            in->src_reg == BPF_PSEUDO_FUNC))
                return bad(c, i, "unrecognized bpf_ld_imm64 insn: source %d with a second imm %d", in->src_reg,
                           nx->imm);
            return 0;
        }
        if (BPF_MODE(in->code) == BPF_ABS || BPF_MODE(in->code) == BPF_IND) {
            /* whether the program type has them is the policy's (check_ld_abs) */
            if (BPF_SIZE(in->code) == BPF_DW || in->dst_reg || in->off ||
                (BPF_MODE(in->code) == BPF_ABS && in->src_reg) || in->src_reg > 9)
                return bad(c, i, "BPF_LD_[ABS|IND] uses reserved fields", 0, 0);
            return 0;
        }
        return bad(c, i, "invalid load opcode %#x", in->code, 0);
    case BPF_JMP:
    case BPF_JMP32:
        switch (op) {
        case BPF_JA:
            if (BPF_SRC(in->code) != BPF_K)
                return bad(c, i, "invalid jump opcode %#x", in->code, 0);
            /* JMP: the target in off; JMP32 (gotol): in imm */
            if (in->src_reg || in->dst_reg)
                return reserved(c, i, "BPF_JA", in->src_reg ? "src_reg" : "dst_reg",
                                in->src_reg ? in->src_reg : in->dst_reg);
            if (cls == BPF_JMP ? in->imm : in->off)
                return reserved(c, i, "BPF_JA", cls == BPF_JMP ? "imm" : "off", cls == BPF_JMP ? in->imm : in->off);
            return 0;
        case BPF_JEQ: case BPF_JGT: case BPF_JGE: case BPF_JSET: case BPF_JNE:
        case BPF_JSGT: case BPF_JSGE: case BPF_JLT: case BPF_JLE: case BPF_JSLT:
        case BPF_JSLE:
            if (BPF_SRC(in->code) == BPF_X && in->imm)
                return reserved(c, i, "BPF_JMP/JMP32", "imm", in->imm);
            if (BPF_SRC(in->code) == BPF_K && in->src_reg)
                return reserved(c, i, "BPF_JMP/JMP32", "src_reg", in->src_reg);
            return 0;
        case BPF_CALL:
            if (cls == BPF_JMP32)
                break;
            if (BPF_SRC(in->code) == BPF_X)
                return bad(c, i, "indirect calls (callx) are not supported", 0, 0);
            if (in->src_reg > BPF_PSEUDO_KFUNC_CALL)
                return bad(c, i, "invalid call source %d", in->src_reg, 0);
            /* off names a kfunc's BTF object (the fd array index); nothing else */
            if (in->dst_reg)
                return reserved(c, i, "BPF_CALL", "dst_reg", in->dst_reg);
            if (in->off && in->src_reg != BPF_PSEUDO_KFUNC_CALL)
                return reserved(c, i, "BPF_CALL", "off", in->off);
            return 0;
        case BPF_EXIT:
            if (cls == BPF_JMP32 || BPF_SRC(in->code) != BPF_K)
                break;
            /* (the kernel leaves off alone here) */
            if (in->src_reg || in->dst_reg)
                return reserved(c, i, "BPF_EXIT", in->src_reg ? "src_reg" : "dst_reg",
                                in->src_reg ? in->src_reg : in->dst_reg);
            if (in->imm)
                return reserved(c, i, "BPF_EXIT", "imm", in->imm);
            return 0;
        case BPF_JCOND:
            if (cls == BPF_JMP32 || BPF_SRC(in->code) != BPF_K)
                break;
            if (in->src_reg != 0 || in->dst_reg || in->imm)
                return bad(c, i, "invalid may_goto (src %d, dst r%d)", in->src_reg, in->dst_reg);
            return 0;
        }
        return bad(c, i, "invalid jump opcode %#x", in->code, 0);
    }
    return bad(c, i, "invalid opcode %#x", in->code, 0);
}

/* Does insn i jump? Its target goes to *t (may be out of range). */
static bool jump_target(const struct bpf_insn *in, uint32_t i, int64_t *t)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (cls != BPF_JMP && cls != BPF_JMP32)
        return false;
    if (op == BPF_CALL || op == BPF_EXIT)
        return false;
    if (op == BPF_JA && cls == BPF_JMP32)
        *t = (int64_t)i + 1 + in->imm;
    else
        *t = (int64_t)i + 1 + in->off;
    return true;
}

static bool is_uncond(const struct bpf_insn *in)
{
    return (BPF_CLASS(in->code) == BPF_JMP || BPF_CLASS(in->code) == BPF_JMP32) &&
           BPF_OP(in->code) == BPF_JA;
}

static bool is_exit(const struct bpf_insn *in)
{
    return in->code == (BPF_JMP | BPF_EXIT);
}

static int add_subprog(struct cfg *c, uint32_t start)
{
    for (uint32_t k = 0; k < c->n_subprogs; k++)
        if (c->subprog_start[k] == start)
            return 0;
    uint32_t *p = realloc(c->subprog_start, (c->n_subprogs + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    c->subprog_start = p;
    p[c->n_subprogs++] = start;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Registers read (uses) and written (defs) by insn i, for liveness. */
static void uses_defs(const struct cfg *c, const struct bpf_insn *in,
                      uint16_t *use, uint16_t *def)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    uint16_t u = 0, d = 0;
    switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
        if (op != BPF_MOV)
            u |= 1u << in->dst_reg;
        if (BPF_SRC(in->code) == BPF_X && op != BPF_NEG && op != BPF_END)
            u |= 1u << in->src_reg;
        d |= 1u << in->dst_reg;
        break;
    case BPF_LDX:
        u |= 1u << in->src_reg;
        d |= 1u << in->dst_reg;
        break;
    case BPF_ST:
        u |= 1u << in->dst_reg;
        break;
    case BPF_STX:
        u |= 1u << in->dst_reg | 1u << in->src_reg;
        if (BPF_MODE(in->code) == BPF_ATOMIC) {
            if (in->imm == BPF_CMPXCHG) {
                u |= 1u;
                d |= 1u;
            }
        }
        break;
    case BPF_LD:
        if (is_ld_pkt(in)) {       /* reads r6 (the skb) and the offset; clobbers r0-r5 */
            u |= 1u << BPF_R6;
            if (BPF_MODE(in->code) == BPF_IND)
                u |= 1u << in->src_reg;
            d |= 0x3f;
            break;
        }
        d |= 1u << in->dst_reg;
        break;
    case BPF_JMP:
    case BPF_JMP32:
        if (op == BPF_CALL) {
            u |= 0x3e;             /* r1-r5: conservatively all arguments */
            d |= 0x3f;
        } else if (op == BPF_EXIT) {
            u |= 1u;
        } else if (op != BPF_JA && !is_may_goto(in)) {
            u |= 1u << in->dst_reg;
            if (BPF_SRC(in->code) == BPF_X)
                u |= 1u << in->src_reg;
        }
        break;
    }
    (void)c;
    *use = u & 0x7ff;
    *def = d & 0x7ff;
}

static int compute_liveness(struct cfg *c, const struct bpf_insn *insns)
{
    uint32_t n = c->n;
    uint16_t *use = calloc(n, sizeof(*use)), *def = calloc(n, sizeof(*def));
    if (!use || !def) {
        free(use);
        free(def);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        if (c->reachable[i])
            uses_defs(c, &insns[i], &use[i], &def[i]);
    /* Backward fixpoint; converges in a few sweeps for structured code. */
    bool changed = true;
    while (changed) {
        changed = false;
        for (uint32_t k = n; k-- > 0;) {
            if (!c->reachable[k])
                continue;
            const struct bpf_insn *in = &insns[k];
            uint16_t out = 0;
            if (!is_exit(in)) {
                int64_t t;
                if (jump_target(in, k, &t))
                    out |= c->live_in[t];
                if (!is_uncond(in)) {
                    uint32_t nx = k + (bpf_is_ld_imm64(in) ? 2 : 1);
                    if (nx < n)
                        out |= c->live_in[nx];
                }
            }
            uint16_t li = (uint16_t)(use[k] | (out & ~def[k]));
            if (li != c->live_in[k]) {
                c->live_in[k] = li;
                changed = true;
            }
        }
    }
    free(use);
    free(def);
    return 0;
}

/* ---- value precision ----
 *
 * A scalar's *value* matters from insn i on only if it can flow into
 * something a safety decision depends on: a memory address, pointer
 * arithmetic, a branch condition, a helper or call argument, a store (it may
 * be read back from the stack), a callee's or callback's return value, or
 * the main program's r0 when the policy constrains it. prec_in[i] holds the
 * registers whose value may matter; pruning ignores the values of the other
 * scalars (their type must still match). To know when "dst += src" is
 * pointer arithmetic, a forward pass first computes which registers may
 * hold a pointer (over-approximated: any 8-byte load and any call result).
 */
static uint16_t ptr_transfer(const struct bpf_insn *in, uint16_t m)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    uint16_t d = (uint16_t)(1u << in->dst_reg), sbit = (uint16_t)(1u << in->src_reg);
    switch (cls) {
    case BPF_ALU64:
        if (op == BPF_MOV)
            return (BPF_SRC(in->code) == BPF_X && !in->off && (m & sbit)) ? (m | d) : (m & ~d);
        if ((op == BPF_ADD || op == BPF_SUB) && BPF_SRC(in->code) == BPF_X && (m & sbit))
            return m | d;
        if (op == BPF_ADD || op == BPF_SUB)
            return m;
        return m & ~d;
    case BPF_ALU:
        return m & ~d;
    case BPF_LDX:
        return BPF_SIZE(in->code) == BPF_DW && BPF_MODE(in->code) == BPF_MEM ? (m | d) : (m & ~d);
    case BPF_LD:
        return in->src_reg ? (m | d) : (m & ~d);
    case BPF_STX:
        if (BPF_MODE(in->code) == BPF_ATOMIC) {
            if (in->imm == BPF_CMPXCHG)
                return m & ~1u;
            if (in->imm & BPF_FETCH)
                return m & ~sbit;
        }
        return m;
    case BPF_JMP:
        if (op == BPF_CALL)
            return (uint16_t)((m & ~0x3eu) | 1u);
        return m;
    }
    return m;
}

/* Where a register may point in the stack: SO_NS (not a stack pointer),
 * SO_UP (maybe into the stack of a calling frame, never into this one's: a
 * subprogram's or callback's pointer arguments, and pointers loaded through
 * them), SO_ANY (anywhere: this frame's stack, and in a function that may be
 * called, its callers' too), or a constant offset from this frame pointer.
 * A store through SO_UP or SO_ANY may change a value the caller reads back
 * after the call, which the caller's own analysis cannot see: the stored
 * value must stay precise (issue 14: a callee's store into its caller's
 * frame was forgotten by pruning). */
#define SO_NS  INT32_MIN
#define SO_UP  (INT32_MIN + 1)
#define SO_ANY INT32_MAX

static bool so_is_off(int32_t v)
{
    return v != SO_NS && v != SO_UP && v != SO_ANY;
}

static bool so_not_here(int32_t v)
{
    return v == SO_NS || v == SO_UP;
}

static int32_t so_join(int32_t a, int32_t b)
{
    if (a == b)
        return a;
    return so_not_here(a) && so_not_here(b) ? SO_UP : SO_ANY;
}

static void so_transfer(const struct bpf_insn *in, int32_t *so, bool leaks)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    int d = in->dst_reg, sr = in->src_reg;
    switch (cls) {
    case BPF_ALU64:
        if (op == BPF_MOV) {
            so[d] = (BPF_SRC(in->code) == BPF_X && !in->off) ? so[sr] : SO_NS;
        } else if ((op == BPF_ADD || op == BPF_SUB) && BPF_SRC(in->code) == BPF_K) {
            if (so_is_off(so[d])) {
                int64_t o = (int64_t)so[d] + (op == BPF_ADD ? in->imm : -(int64_t)in->imm);
                so[d] = (o > -4096 && o < 4096) ? (int32_t)o : SO_ANY;
            }
        } else if (op == BPF_ADD && BPF_SRC(in->code) == BPF_X) {
            so[d] = so[d] == SO_NS && so[sr] == SO_NS ? SO_NS
                    : so_not_here(so[d]) && so_not_here(so[sr]) ? SO_UP : SO_ANY;
        } else if (op == BPF_SUB && BPF_SRC(in->code) == BPF_X) {
            so[d] = so_not_here(so[d]) ? so[d] : SO_ANY;
        } else {
            so[d] = SO_NS;
        }
        break;
    case BPF_ALU:
        so[d] = SO_NS;
        break;
    case BPF_LDX:
        /* only a spill can give back a stack pointer (maps and ctx hold none,
         * unless the policy lets pointers leak into maps); a caller's stack
         * holds no pointer into this frame (such spills are refused) */
        if (BPF_SIZE(in->code) != BPF_DW || BPF_MODE(in->code) != BPF_MEM)
            so[d] = SO_NS;
        else if (leaks)
            so[d] = SO_ANY;
        else
            so[d] = so[sr] == SO_NS ? SO_NS : so[sr] == SO_UP ? SO_UP : SO_ANY;
        break;
    case BPF_LD:
        so[d] = SO_NS;
        break;
    case BPF_STX:
        if (BPF_MODE(in->code) == BPF_ATOMIC) {
            if (in->imm == BPF_CMPXCHG)
                so[0] = SO_NS;
            else if (in->imm & BPF_FETCH)
                so[sr] = SO_NS;
        }
        break;
    case BPF_JMP:
        if (op == BPF_CALL) {
            so[0] = in->src_reg == BPF_PSEUDO_CALL ? SO_ANY : SO_NS;
            for (int r = 1; r <= 5; r++)
                so[r] = SO_NS;
        }
        break;
    }
}

/* Stack slots (8 bytes each, slot s = fp-8*(s+1)) touched by [off, off+size). */
static uint64_t slots_of(int64_t off, int64_t size)
{
    uint64_t m = 0;
    for (int64_t b = off; b < off + size; b++)
        if (b >= -BPF_STACK_SIZE && b < 0)
            m |= 1ull << ((-b - 1) / 8);
    return m;
}

struct prec_ctx {
    const struct cfg *c;
    const int32_t *so;          /* so[i*11 + r] */
    const uint16_t *ptr_in;
    bool ret_matters;
    bool main_called;           /* insn 0 is also a call or callback target */
};

static uint16_t prec_transfer(const struct prec_ctx *pc, const struct bpf_insn *in, uint32_t i,
                              uint16_t out, uint64_t *slots)
{
    const struct cfg *c = pc->c;
    const int32_t *so = &pc->so[(size_t)i * BPF_NREGS];
    uint16_t mayptr = pc->ptr_in[i];
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    uint16_t d = (uint16_t)(1u << in->dst_reg), sbit = (uint16_t)(1u << in->src_reg);
    bool x = BPF_SRC(in->code) == BPF_X;
    int64_t size = cls == BPF_LDX || cls == BPF_ST || cls == BPF_STX
                   ? (int64_t[]){ 4, 2, 1, 8 }[BPF_SIZE(in->code) >> 3] : 0;
    switch (cls) {
    case BPF_ALU64:
    case BPF_ALU:
        if (op == BPF_MOV) {
            bool need = out & d;
            out &= ~d;
            if (need && x)
                out |= sbit;
            return out;
        }
        if (cls == BPF_ALU64 && (op == BPF_ADD || op == BPF_SUB) && x &&
            ((mayptr & d) || (mayptr & sbit)))
            return out | d | sbit;          /* pointer arithmetic */
        if (out & d)
            return out | d | (x && op != BPF_NEG && op != BPF_END ? sbit : 0);
        return out;
    case BPF_LDX: {
        bool need = out & d;
        int32_t b = so[in->src_reg];
        if (need && b == SO_ANY)
            *slots = ~0ull;
        else if (need && so_is_off(b))
            *slots |= slots_of((int64_t)b + in->off, size);
        return (out & ~d) | sbit;
    }
    case BPF_ST:
    case BPF_STX: {
        int32_t b = so[in->dst_reg];
        bool src_needed = false;
        out |= d;
        if (BPF_MODE(in->code) == BPF_ATOMIC) {
            if (b == SO_ANY)
                *slots = ~0ull;
            else if (so_is_off(b))
                *slots |= slots_of((int64_t)b + in->off, size);
            out |= sbit;
            if (in->imm == BPF_CMPXCHG)
                out |= 1u;
            return out;
        }
        if (b == SO_UP) {
            src_needed = true;              /* a caller may read it back */
        } else if (b == SO_ANY) {
            /* outside the main program, anywhere includes the callers' frames */
            src_needed = *slots != 0 || c->subprog_of[i] != 0 || pc->main_called;
        } else if (b != SO_NS) {
            int64_t o = (int64_t)b + in->off;
            uint64_t m = slots_of(o, size);
            src_needed = (*slots & m) != 0;
            if (size == 8 && (o % 8) == 0)
                *slots &= ~m;             /* the old content is gone */
        }
        if (cls == BPF_STX && src_needed)
            out |= sbit;
        return out;
    }
    case BPF_LD:
        if (is_ld_pkt(in))
            return (uint16_t)((out & ~0x3fu) | (BPF_MODE(in->code) == BPF_IND ? sbit : 0));
        return out & ~d;
    case BPF_JMP:
    case BPF_JMP32:
        if (op == BPF_CALL) {
            if (in->src_reg == BPF_PSEUDO_CALL || in->imm == 181 || in->imm == 164) {
                /* a callee or callback may reach any slot through a pointer */
                for (int r = 1; r <= 5; r++)
                    if (so[r] != SO_NS)
                        *slots = ~0ull;
            } else {
                /* helpers and kfuncs read memory upward from their pointer arguments */
                for (int r = 1; r <= 5; r++) {
                    if (so[r] == SO_ANY)
                        *slots = ~0ull;
                    else if (so_is_off(so[r]))
                        *slots |= slots_of(so[r], -(int64_t)so[r]);
                }
            }
            return (uint16_t)((out & ~0x3fu) | 0x3eu);
        }
        if (op == BPF_EXIT) {
            uint32_t k = c->subprog_of[i];
            *slots = 0;
            return (k == 0 ? pc->ret_matters : c->ret_needed[k]) ? 1u : 0u;
        }
        if (op == BPF_JA || is_may_goto(in))
            return out;
        return out | d | (x ? sbit : 0);
    }
    return out;
}

static void succs(const struct cfg *c, const struct bpf_insn *in, uint32_t i, uint32_t *succ, int *ns)
{
    int64_t t;
    *ns = 0;
    if (is_exit(in))
        return;
    if (jump_target(in, i, &t))
        succ[(*ns)++] = (uint32_t)t;
    if (!is_uncond(in)) {
        uint32_t nx = i + (bpf_is_ld_imm64(in) ? 2 : 1);
        if (nx < c->n)
            succ[(*ns)++] = nx;
    }
}

static int compute_precision(struct cfg *c, const struct bpf_insn *insns, bool ret_matters, bool leaks)
{
    uint32_t n = c->n;
    uint16_t *ptr_in = calloc(n, sizeof(*ptr_in));
    uint8_t *seen = calloc(n, 1), *ret_ptr = calloc(c->n_subprogs, 1);
    int32_t *so = malloc((size_t)n * BPF_NREGS * sizeof(int32_t));
    c->ret_needed = calloc(c->n_subprogs, 1);
    int rc = -ENOMEM;
    if (!ptr_in || !seen || !ret_ptr || !so || !c->ret_needed)
        goto out;
    /* Is the main program's code also entered by a call or as a callback
     * (with arguments that may point into a caller's stack)? */
    bool main_called = false;
    for (uint32_t i = 0; i < n; i++) {
        bool call = insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == BPF_PSEUDO_CALL;
        bool func = bpf_is_ld_imm64(&insns[i]) && insns[i].src_reg == BPF_PSEUDO_FUNC;
        if ((call || func) && (int64_t)i + 1 + insns[i].imm == 0)
            main_called = true;
    }
    /* forward: may hold a pointer; where it may point in the stack */
    for (uint32_t k = 0; k < c->n_subprogs; k++) {
        uint32_t s = c->subprog_start[k];
        bool entered_by_call = k != 0 || main_called;
        ptr_in[s] |= entered_by_call ? (uint16_t)(0x3eu | 1u << 10) : (uint16_t)(1u << 1 | 1u << 10);
        seen[s] = 1;
        for (int r = 0; r < BPF_NREGS; r++)
            so[(size_t)s * BPF_NREGS + r] = r == BPF_R10 ? 0
                                           : entered_by_call && r >= 1 && r <= 5 ? SO_UP : SO_NS;
    }
    bool changed = true;
    while (changed) {
        changed = false;
        for (uint32_t i = 0; i < n; i++) {
            if (!seen[i] || !c->reachable[i])
                continue;
            const struct bpf_insn *in = &insns[i];
            if (is_exit(in)) {
                uint32_t k = c->subprog_of[i];
                if ((ptr_in[i] & 1u) && !ret_ptr[k]) {
                    ret_ptr[k] = 1;
                    changed = true;
                }
                continue;
            }
            uint16_t o = ptr_transfer(in, ptr_in[i]);
            if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL &&
                !ret_ptr[c->subprog_of[i + 1 + in->imm]])
                o &= ~1u;           /* the callee returns scalars only (so far) */
            if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_KFUNC_CALL)
                o &= ~1u;           /* kfuncs return integers */
            int32_t sv[BPF_NREGS];
            memcpy(sv, &so[(size_t)i * BPF_NREGS], sizeof(sv));
            so_transfer(in, sv, leaks);
            uint32_t succ[2];
            int ns;
            succs(c, in, i, succ, &ns);
            for (int k = 0; k < ns; k++) {
                uint32_t t = succ[k];
                int32_t *ts = &so[(size_t)t * BPF_NREGS];
                if (!seen[t]) {
                    seen[t] = 1;
                    ptr_in[t] = o;
                    memcpy(ts, sv, sizeof(sv));
                    changed = true;
                    continue;
                }
                if ((ptr_in[t] | o) != ptr_in[t]) {
                    ptr_in[t] |= o;
                    changed = true;
                }
                for (int r = 0; r < BPF_NREGS; r++) {
                    int32_t j = so_join(ts[r], sv[r]);
                    if (j != ts[r]) {
                        ts[r] = j;
                        changed = true;
                    }
                }
            }
        }
    }
    /* backward: values (registers, stack slots) that matter; a function's
     * r0 matters if it does at one of its call sites (callbacks: always) */
    for (uint32_t i = 0; i + 1 < n; i++)
        if (bpf_is_ld_imm64(&insns[i]) && insns[i].src_reg == BPF_PSEUDO_FUNC)
            c->ret_needed[c->subprog_of[i + 1 + insns[i].imm]] = 1;
    struct prec_ctx pc = { c, so, ptr_in, ret_matters, main_called };
    changed = true;
    while (changed) {
        changed = false;
        for (uint32_t k = n; k-- > 0;) {
            if (!c->reachable[k] || !seen[k])
                continue;
            const struct bpf_insn *in = &insns[k];
            uint16_t out = 0;
            uint64_t slots = 0;
            uint32_t succ[2];
            int ns;
            succs(c, in, k, succ, &ns);
            for (int j = 0; j < ns; j++) {
                out |= c->prec_in[succ[j]];
                slots |= c->slot_need[succ[j]];
            }
            uint16_t p = (uint16_t)(prec_transfer(&pc, in, k, out, &slots) & 0x7ff);
            if (p != c->prec_in[k] || slots != c->slot_need[k]) {
                c->prec_in[k] |= p;
                c->slot_need[k] |= slots;
                changed = true;
            }
            if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL && k + 1 < n &&
                (c->prec_in[k + 1] & 1u)) {
                uint32_t callee = c->subprog_of[k + 1 + in->imm];
                if (!c->ret_needed[callee]) {
                    c->ret_needed[callee] = 1;
                    changed = true;
                }
            }
        }
    }
    rc = 0;
out:
    free(ptr_in);
    free(seen);
    free(ret_ptr);
    free(so);
    return rc;
}

int cfg_build(struct cfg *c, const struct bpf_insn *insns, uint32_t n, bool ret_matters,
              bool leaks)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->fail_insn = -1;
    if (n == 0)
        return bad(c, 0, "empty program", 0, 0);
    c->flags = calloc(n, 1);
    c->reachable = calloc(n, 1);
    c->live_in = calloc(n, sizeof(*c->live_in));
    c->subprog_of = calloc(n, sizeof(*c->subprog_of));
    c->prec_in = calloc(n, sizeof(*c->prec_in));
    c->slot_need = calloc(n, sizeof(*c->slot_need));
    if (!c->flags || !c->reachable || !c->live_in || !c->subprog_of || !c->prec_in || !c->slot_need)
        return -ENOMEM;
    if (add_subprog(c, 0))
        return -ENOMEM;

    /* decode and collect subprogram starts */
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        if (check_opcode(c, in, i, n))
            return -1;
        if (bpf_is_ld_imm64(in)) {
            c->flags[i + 1] |= CFG_LDIMM_HI;
            if (in->src_reg == BPF_PSEUDO_FUNC) {
                int64_t t = (int64_t)i + 1 + in->imm;
                if (t < 0 || t >= n)
                    return bad(c, i, "function pointer target %d out of range", (int)t, 0);
                if (add_subprog(c, (uint32_t)t))
                    return -ENOMEM;
            }
            i++;
            continue;
        }
        if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL) {
            int64_t t = (int64_t)i + 1 + in->imm;
            if (t < 0 || t >= n)
                return bad(c, i, "call target %d out of range", (int)t, 0);
            if (add_subprog(c, (uint32_t)t))
                return -ENOMEM;
        }
    }
    for (uint32_t k = 0; k < c->n_subprogs; k++)
        if (c->flags[c->subprog_start[k]] & CFG_LDIMM_HI)
            return bad(c, c->subprog_start[k], "call into the middle of LD_IMM64 at insn %d", (int)c->subprog_start[k], 0);
    qsort(c->subprog_start, c->n_subprogs, sizeof(uint32_t), cmp_u32);
    for (uint32_t k = 0, i = 0; i < n; i++) {
        while (k + 1 < c->n_subprogs && c->subprog_start[k + 1] <= i)
            k++;
        c->subprog_of[i] = k;
    }

    /* jump targets: in range, same subprogram, not into LD_IMM64 */
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        if (c->flags[i] & CFG_LDIMM_HI)
            continue;
        int64_t t;
        if (jump_target(in, i, &t)) {
            if (t < 0 || t >= n)
                return bad(c, i, "jump out of range from insn %d to %d", (int)i, (int)t);
            if (c->flags[t] & CFG_LDIMM_HI)
                return bad(c, i, "jump into the middle of LD_IMM64 at insn %d", (int)t - 1, 0);
            if (c->subprog_of[t] != c->subprog_of[i])
                return bad(c, i, "jump out of range from insn %d to %d (into another function)", (int)i, (int)t);
            c->flags[t] |= CFG_PRUNE;
            if (!is_uncond(in) && i + 1 < n)
                c->flags[i + 1] |= CFG_PRUNE;
        }
        if (in->code == (BPF_JMP | BPF_CALL) && i + 1 < n)
            c->flags[i + 1] |= CFG_PRUNE;
        if (is_may_goto(in))
            c->flags[i] |= CFG_PRUNE;       /* where its loops are cut (verifier.c) */
        if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_KFUNC_CALL)
            c->flags[i] |= CFG_PRUNE;       /* an iterator's _next is a loop point too */
    }
    /* each subprogram must end in exit or an unconditional jump */
    for (uint32_t k = 0; k < c->n_subprogs; k++) {
        uint32_t end = k + 1 < c->n_subprogs ? c->subprog_start[k + 1] : n;
        const struct bpf_insn *last = &insns[end - 1];
        if (c->flags[end - 1] & CFG_LDIMM_HI)
            last = &insns[end - 2];
        if (!is_exit(last) && !is_uncond(last))
            return bad(c, end - 1, "last insn of function %d is not an exit or jmp", (int)k, 0);
        c->flags[c->subprog_start[k]] |= CFG_PRUNE | CFG_SUBPROG;
    }

    /* reachability within each subprogram from its start */
    uint32_t *stack = malloc(n * sizeof(*stack));
    if (!stack)
        return -ENOMEM;
    for (uint32_t k = 0; k < c->n_subprogs; k++) {
        uint32_t sp = 0;
        stack[sp++] = c->subprog_start[k];
        c->reachable[c->subprog_start[k]] = 1;
        while (sp) {
            uint32_t i = stack[--sp];
            const struct bpf_insn *in = &insns[i];
            if (is_exit(in))
                continue;
            int64_t t;
            uint32_t succ[2];
            int ns = 0;
            if (jump_target(in, i, &t))
                succ[ns++] = (uint32_t)t;
            if (!is_uncond(in)) {
                uint32_t nx = i + (bpf_is_ld_imm64(in) ? 2 : 1);
                if (nx < n)
                    succ[ns++] = nx;
            }
            for (int s = 0; s < ns; s++)
                if (!c->reachable[succ[s]]) {
                    c->reachable[succ[s]] = 1;
                    stack[sp++] = succ[s];
                }
        }
    }
    free(stack);
    for (uint32_t i = 0; i < n; i++)
        if (!c->reachable[i] && !(c->flags[i] & CFG_LDIMM_HI))
            return bad(c, i, "unreachable insn %d", (int)i, 0);
    int rc = compute_liveness(c, insns);
    return rc ? rc : compute_precision(c, insns, ret_matters, leaks);
}

void cfg_free(struct cfg *c)
{
    free(c->flags);
    free(c->reachable);
    free(c->live_in);
    free(c->subprog_of);
    free(c->subprog_start);
    free(c->prec_in);
    free(c->ret_needed);
    free(c->slot_need);
    memset(c, 0, sizeof(*c));
}
