/*
 * interp.c - the eBPF interpreter, plain and checked.
 *
 * One dispatch loop (run_core) is compiled twice through an always-inline
 * flag: the plain interpreter trusts the verifier and only does what the ISA
 * says; the checked interpreter (GVM_F_CHECKED) additionally proves, access
 * by access, that the run stayed inside ctx, the live stack frames or memory
 * env->mem_allowed() admits, that it read only initialised stack bytes and
 * registers, and that it finished within step_limit instructions (the
 * callbacks a helper runs included). Helpers may declare the memory they
 * touch (gvm_checked_helper_access) to have it checked the same way. Any
 * violation - in the program, a callback or a declared helper access -
 * stops the run with an error naming the instruction, so the checked mode
 * can be used as an oracle for the verifier's soundness.
 *
 * Speculative checking (GVM_F_SPECULATIVE, with GVM_F_CHECKED) is the oracle
 * for the verifier's Spectre v1 rules (src/verifier/speculation.c). Where a
 * jump's outcome is known, the verifier explores its other side as a
 * misprediction; where both sides can run, it explores both as real paths
 * (the kernel then masks pointer offsets, which graft does not do yet: a
 * known gap, not checked here). So at each conditional jump the run
 * executes whose outcome the verifier found known on every path (its facts,
 * TAKEN or NOT_TAKEN, given at gvm_prog_create), the side not taken is run
 * too, as a CPU that mispredicted it would, on a copy of the registers, for
 * at most GVM_SPEC_WINDOW instructions (the verifier's window, counted the
 * same way), and then discarded. Its stores go into a small overlay that its
 * loads read first (nothing reaches memory or the stack's shadow), and every
 * access it makes must be inside what the checked mode allows, as on a real
 * path; a violation names the mispredicted jump too. The model is a subset
 * of the verifier's, so a report is always a verifier bug: the path stops at
 * an exit, a call of any kind (a helper cannot be run without its effects)
 * and when its overlay is full; a conditional jump on it goes the way its
 * values decide (the verifier also explores a nested misprediction there);
 * registers hold their real values (the verifier makes the compared ones
 * unknown, which includes them). At most GVM_SPEC_BUDGET speculative
 * instructions are run per gvm_prog_run, so that a long loop stays cheap.
 *
 * Semantics (RFC 9669) the JIT must match exactly:
 *  - division by zero gives 0; modulo by zero leaves dst (32-bit forms
 *    zero-extend); signed INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0;
 *  - shift counts are masked to 63 (64-bit) or 31 (32-bit);
 *  - every 32-bit ALU result is zero-extended into the 64-bit register;
 *  - atomics are real atomic read-modify-writes (__atomic builtins);
 *  - a bpf-to-bpf call gets a fresh 512-byte frame and its own r10, and the
 *    caller's r6-r9 are restored on return; BPF_MAX_CALL_DEPTH frames at most
 *    (exceeding it is a run error in both modes);
 *  - bpf_tail_call (helper 12) with env->tail_call_target: on success the
 *    target program starts at insn 0 in the current frame with r1 kept, at
 *    most BPF_MAX_TAIL_CALLS times; on failure r0 = GVM_TAIL_CALL_FAIL_R0 and
 *    execution continues after the call.
 *
 * Stack layout: frame k's 512 bytes sit at stack + k*STRIDE + GAP with a
 * 512-byte gap below each frame, so r10-relative overruns of up to 512 bytes
 * in either direction land in a gap and the checked mode reports them
 * instead of silently touching a neighbouring frame.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm_internal.h"

#define FRAME_GAP    512
#define FRAME_STRIDE (FRAME_GAP + BPF_STACK_SIZE)
#define STACK_BYTES  (BPF_MAX_CALL_DEPTH * FRAME_STRIDE)
#define SPEC_NONE    UINT32_MAX
#define SPEC_OVERLAY 64            /* stores one speculative path may make */

struct frame {
    const struct gvm_prog *prog;   /* caller */
    uint32_t ret_pc;
    uint16_t init;                 /* checked: caller's initialised regs */
    uint64_t saved[4];             /* caller's r6-r9 */
};

struct run {
    uint8_t *ctx;
    uint64_t ctx_len;
    uint8_t *stack;
    uint8_t *shadow;               /* checked: 1 per initialised stack byte */
    uint32_t depth;                /* index of the current frame */
    uint64_t steps;
    struct graft_err *err;
    struct run *parent;            /* the run whose helper invoked this callback */
    const struct gvm_prog *prog;   /* running program, as of the last helper call */
    uint32_t helper_pc;            /* checked: the helper call in progress */
    int helper_fault;              /* checked: a violation the helper reported, or a
                                    * callback it ran hit */
    /* speculative checking (GVM_F_SPECULATIVE) */
    uint32_t spec_branch;          /* the mispredicted jump, or SPEC_NONE off a speculative path */
    uint64_t spec_budget;          /* speculative insns this run may still execute */
    uint32_t n_overlay;
    struct spec_store {            /* a speculative store, newest last */
        uint64_t addr;
        uint8_t size;
        uint8_t bytes[8];
    } overlay[SPEC_OVERLAY];
    struct frame frames[BPF_MAX_CALL_DEPTH];
    _Alignas(16) uint8_t stack_mem[STACK_BYTES];
};

/* The innermost interpreted run on this thread, for callbacks (bpf_loop). */
static __thread struct run *cur_run;

static __thread struct gvm_spec_stats spec_stats;

static inline uint64_t frame_top(const struct run *rs, uint32_t k)
{
    return (uint64_t)(uintptr_t)(rs->stack + (size_t)(k + 1) * FRAME_STRIDE);
}

/* ---- arithmetic with the ISA's defined edge cases --------------------- */

static inline uint64_t udiv64(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline uint32_t udiv32(uint32_t a, uint32_t b) { return b ? a / b : 0; }
static inline uint64_t umod64(uint64_t a, uint64_t b) { return b ? a % b : a; }
static inline uint32_t umod32(uint32_t a, uint32_t b) { return b ? a % b : a; }

static inline uint64_t sdiv64(uint64_t a, uint64_t b)
{
    if (!b)
        return 0;
    if ((int64_t)b == -1)
        return -a;                 /* INT64_MIN / -1 wraps to INT64_MIN */
    return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint32_t sdiv32(uint32_t a, uint32_t b)
{
    if (!b)
        return 0;
    if ((int32_t)b == -1)
        return -a;
    return (uint32_t)((int32_t)a / (int32_t)b);
}

static inline uint64_t smod64(uint64_t a, uint64_t b)
{
    if (!b)
        return a;
    if ((int64_t)b == -1)
        return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint32_t smod32(uint32_t a, uint32_t b)
{
    if (!b)
        return a;
    if ((int32_t)b == -1)
        return 0;
    return (uint32_t)((int32_t)a % (int32_t)b);
}

/* ---- checked mode ---------------------------------------------------- */

static int violation(struct run *rs, const struct gvm_prog *prog, uint32_t pc,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5), noinline, cold));

static int violation(struct run *rs, const struct gvm_prog *prog, uint32_t pc,
                     const char *fmt, ...)
{
    char what[512], insn[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    gvm_insn_str(prog->insns, prog->n, pc, insn, sizeof(insn));
    /* on a speculative path, cur_run is the run speculating (rs may be the
     * parent whose stack a callback touched) */
    const struct run *sr = cur_run && cur_run->spec_branch != SPEC_NONE ? cur_run : NULL;
    if (sr) {
        char br[96];
        gvm_insn_str(prog->insns, prog->n, sr->spec_branch, br, sizeof(br));
        return graft_errf(rs->err, -EFAULT,
                          "insn %u (%s): %s, on the speculative path of a misprediction of insn %u (%s)",
                          pc, insn, what, sr->spec_branch, br);
    }
    return graft_errf(rs->err, -EFAULT, "insn %u (%s): %s", pc, insn, what);
}

/* Is [addr, addr+size) inside one live stack frame? Returns the frame
 * index, -1 if it is not in the stack area at all, -2 if it is in the
 * stack area but not inside a live frame. */
static int stack_frame_of(const struct run *rs, uint64_t addr, uint64_t size)
{
    uint64_t base = (uint64_t)(uintptr_t)rs->stack;
    if (addr < base || addr - base >= STACK_BYTES)
        return -1;
    uint64_t off = addr - base;
    uint64_t k = off / FRAME_STRIDE, within = off % FRAME_STRIDE;
    if (within < FRAME_GAP || k > rs->depth || size > FRAME_STRIDE - within)
        return -2;
    return (int)k;
}

/* Does a store of this speculative path cover the byte at addr? */
static bool in_overlay(const struct run *rs, uint64_t addr)
{
    for (uint32_t i = 0; i < rs->n_overlay; i++)
        if (addr - rs->overlay[i].addr < rs->overlay[i].size)
            return true;
    return false;
}

static int check_mem(struct run *rs, const struct gvm_prog *prog, uint32_t pc,
                     uint64_t addr, uint64_t size, int write)
{
    const char *kind = write ? "write" : "read";
    const struct run *self = rs;   /* the run whose overlay a speculative path fills */
    bool speculating = rs->spec_branch != SPEC_NONE;
    int k = stack_frame_of(rs, addr, size);
    /* A callback may use its caller's stack (bpf_loop's ctx argument):
     * check such an access against the run that owns that stack. */
    for (struct run *p = rs->parent; k == -1 && p; p = p->parent) {
        if (stack_frame_of(p, addr, size) != -1) {
            rs = p;
            k = stack_frame_of(rs, addr, size);
        }
    }

    if (k >= 0) {
        uint8_t *sh = rs->shadow + (addr - (uint64_t)(uintptr_t)rs->stack);
        int64_t rel = (int64_t)(addr - frame_top(rs, (uint32_t)k));
        if (write) {
            if (!speculating)      /* a speculative store initialises nothing */
                memset(sh, 1, size);
            return 0;
        }
        for (uint64_t i = 0; i < size; i++)
            if (!sh[i] && !(speculating && in_overlay(self, addr + i)))
                return violation(rs, prog, pc,
                                 "%s of %" PRIu64 " bytes at fp%+" PRId64 " of frame %d "
                                 "touches uninitialised stack byte fp%+" PRId64,
                                 kind, size, rel, k, rel + (int64_t)i);
        return 0;
    }
    if (k == -2) {
        uint64_t off = addr - (uint64_t)(uintptr_t)rs->stack;
        int64_t rel = (int64_t)(addr - frame_top(rs, rs->depth));
        return violation(rs, prog, pc,
                         "%s of %" PRIu64 " bytes at fp%+" PRId64 " (frame %d) is outside "
                         "the live stack frames (current frame %u)",
                         kind, size, rel, (int)(off / FRAME_STRIDE), rs->depth);
    }
    uint64_t c = (uint64_t)(uintptr_t)rs->ctx;
    if (rs->ctx && addr >= c && size <= rs->ctx_len && addr - c <= rs->ctx_len - size)
        return 0;
    if (prog->env.mem_allowed && prog->env.mem_allowed(prog->env.arg, addr, size, write))
        return 0;
    if (rs->ctx && addr + size > c && addr < c + rs->ctx_len + 4096)
        return violation(rs, prog, pc,
                         "%s of %" PRIu64 " bytes at ctx%+" PRId64 " is outside ctx "
                         "(%" PRIu64 " bytes)",
                         kind, size, (int64_t)(addr - c), rs->ctx_len);
    return violation(rs, prog, pc,
                     "%s of %" PRIu64 " bytes at 0x%" PRIx64 " is outside ctx, the live "
                     "stack and memory the environment allows",
                     kind, size, addr);
}

static int check_regs_read(struct run *rs, const struct gvm_prog *prog, uint32_t pc,
                           uint16_t init)
{
    uint16_t reads, writes;
    gvm_insn_reg_use(&prog->insns[pc], &reads, &writes);
    uint16_t bad = reads & ~init;
    if (!bad)
        return 0;
    return violation(rs, prog, pc, "reads r%d, which is not initialised",
                     __builtin_ctz(bad));
}

static uint16_t regs_written(const struct bpf_insn *in)
{
    uint16_t reads, writes;
    gvm_insn_reg_use(in, &reads, &writes);
    return writes;
}

/* A helper may have filled stack memory it was given as (pointer, size)
 * in consecutive argument registers (bpf_probe_read and friends): mark such
 * ranges initialised so later reads of them are not false alarms. */
static void mark_helper_writes(struct run *rs, const uint64_t *reg)
{
    for (int i = BPF_R1; i < BPF_R5; i++) {
        uint64_t size = reg[i + 1];
        if (size == 0 || size > BPF_STACK_SIZE)
            continue;
        if (stack_frame_of(rs, reg[i], size) >= 0)
            memset(rs->shadow + (reg[i] - (uint64_t)(uintptr_t)rs->stack), 1, size);
    }
}

/* ---- the loop -------------------------------------------------------- */

#define DST    reg[in->dst_reg]
#define SRC    reg[in->src_reg]
#define IMM    ((uint64_t)(int64_t)in->imm)
#define UIMM32 ((uint32_t)in->imm)

#define ALU_CASES(OP, EXPR)                                                   \
    case BPF_ALU64 | OP | BPF_K: { uint64_t a = DST, b = IMM; DST = (EXPR); break; } \
    case BPF_ALU64 | OP | BPF_X: { uint64_t a = DST, b = SRC; DST = (EXPR); break; } \
    case BPF_ALU | OP | BPF_K: { uint32_t a = (uint32_t)DST, b = UIMM32;     \
                                 DST = (uint32_t)(EXPR); break; }             \
    case BPF_ALU | OP | BPF_X: { uint32_t a = (uint32_t)DST, b = (uint32_t)SRC; \
                                 DST = (uint32_t)(EXPR); break; }

/* A conditional jump; a checked speculative run first runs the side not
 * taken as a misprediction (never on a speculative path itself). */
#define JUMP_IF(CMP)                                                          \
    do {                                                                      \
        bool t_ = (CMP);                                                      \
        if (checked && !spec && rs->spec_budget && prog->spec_jump && prog->spec_jump[pc - 1]) { \
            int r_ = speculate(rs, prog, reg, init, pc - 1, t_ ? pc : pc + in->off); \
            if (r_)                                                           \
                return r_;                                                    \
        }                                                                     \
        pc += t_ ? in->off : 0;                                               \
    } while (0)

#define JMP_CASES(OP, T64, T32, CMP)                                          \
    case BPF_JMP | OP | BPF_K: { T64 a = (T64)DST, b = (T64)IMM;              \
                                 JUMP_IF(CMP); break; }                        \
    case BPF_JMP | OP | BPF_X: { T64 a = (T64)DST, b = (T64)SRC;              \
                                 JUMP_IF(CMP); break; }                        \
    case BPF_JMP32 | OP | BPF_K: { T32 a = (T32)(uint32_t)DST, b = (T32)UIMM32; \
                                   JUMP_IF(CMP); break; }                      \
    case BPF_JMP32 | OP | BPF_X: { T32 a = (T32)(uint32_t)DST, b = (T32)(uint32_t)SRC; \
                                   JUMP_IF(CMP); break; }

#define MEM_CHECK(ADDR, SIZE, WRITE)                                          \
    do {                                                                      \
        if (checked) {                                                        \
            int r_ = check_mem(rs, prog, pc - 1, (ADDR), (SIZE), (WRITE));    \
            if (r_)                                                           \
                return r_;                                                    \
        }                                                                     \
    } while (0)

#define LOAD(T, EXT, ADDR)                                                    \
    ({ uint64_t a_ = (ADDR); T v_;                                            \
       MEM_CHECK(a_, sizeof(T), 0);                                           \
       if (spec)                                                              \
           spec_read(rs, a_, &v_, sizeof(T));                                 \
       else                                                                   \
           memcpy(&v_, (const void *)(uintptr_t)a_, sizeof(T));               \
       (uint64_t)(EXT)v_; })

/* a speculative path ends where its overlay is full */
#define STORE(T, ADDR, VAL)                                                   \
    do { uint64_t a_ = (ADDR); T v_ = (T)(VAL);                               \
         MEM_CHECK(a_, sizeof(T), 1);                                         \
         if (!spec)                                                           \
             memcpy((void *)(uintptr_t)a_, &v_, sizeof(T));                   \
         else if (!spec_write(rs, a_, &v_, sizeof(T)))                        \
             return 0;                                                        \
    } while (0)

/* ---- speculative paths ---------------------------------------------- */

/* A speculative load: memory (already checked), then this path's stores
 * over it, oldest first. */
static void spec_read(const struct run *rs, uint64_t addr, void *out, uint32_t size)
{
    uint8_t *o = out;
    memcpy(o, (const void *)(uintptr_t)addr, size);
    for (uint32_t i = 0; i < rs->n_overlay; i++) {
        const struct spec_store *s = &rs->overlay[i];
        for (uint32_t b = 0; b < s->size; b++)
            if (s->addr + b - addr < size)
                o[s->addr + b - addr] = s->bytes[b];
    }
}

static bool spec_write(struct run *rs, uint64_t addr, const void *v, uint32_t size)
{
    if (rs->n_overlay == SPEC_OVERLAY)
        return false;
    struct spec_store *s = &rs->overlay[rs->n_overlay++];
    s->addr = addr;
    s->size = (uint8_t)size;
    memcpy(s->bytes, v, size);
    return true;
}

/* An atomic read-modify-write on a speculative path, through the overlay;
 * false: the overlay is full. */
static bool spec_atomic(struct run *rs, uint64_t *reg, const struct bpf_insn *in, uint64_t addr,
                        uint32_t size)
{
    uint64_t mask = size == 8 ? UINT64_MAX : UINT32_MAX;
    uint64_t old = 0, v = SRC & mask, nv;
    spec_read(rs, addr, &old, size);
    switch (in->imm & ~BPF_FETCH) {
    case BPF_ADD: nv = old + v; break;
    case BPF_OR:  nv = old | v; break;
    case BPF_AND: nv = old & v; break;
    case BPF_XOR: nv = old ^ v; break;
    case BPF_XCHG & ~BPF_FETCH: nv = v; break;
    case BPF_CMPXCHG & ~BPF_FETCH: nv = old == (reg[BPF_R0] & mask) ? v : old; break;
    default: nv = old; break;
    }
    if (in->imm == BPF_CMPXCHG)
        reg[BPF_R0] = old;
    else if (in->imm & BPF_FETCH)
        SRC = old;
    nv &= mask;
    return spec_write(rs, addr, &nv, size);
}

static int speculate(struct run *rs, const struct gvm_prog *prog, const uint64_t *reg,
                     uint16_t init, uint32_t branch_pc, uint32_t start) __attribute__((noinline));

static inline __attribute__((always_inline)) int
run_core(struct run *rs, const struct gvm_prog *prog, uint64_t *reg, uint64_t *ret,
         uint32_t start_pc, uint16_t init_regs, const bool checked, const bool spec)
{
    const struct bpf_insn *insns = prog->insns;
    uint32_t pc = start_pc;
    uint32_t tail_calls = 0;
    uint16_t init = init_regs;
    const uint64_t limit = prog->step_limit ? prog->step_limit : 10000000;
    uint32_t window = 0;

    for (;;) {
        const struct bpf_insn *in = &insns[pc];
        if (spec) {
            /* counted as speculation.c counts (spec_window_over) */
            if (++window > GVM_SPEC_WINDOW || !rs->spec_budget)
                return 0;
            rs->spec_budget--;
            spec_stats.insns++;
        } else if (checked) {
            if (++rs->steps > limit)
                return violation(rs, prog, pc, "step limit of %" PRIu64
                                 " instructions reached", limit);
        }
        if (checked) {
            int r = check_regs_read(rs, prog, pc, init);
            if (r)
                return r;
            init |= regs_written(in);
        }
        pc++;
        switch (in->code) {
        ALU_CASES(BPF_ADD, a + b)
        ALU_CASES(BPF_SUB, a - b)
        ALU_CASES(BPF_MUL, a * b)
        ALU_CASES(BPF_OR, a | b)
        ALU_CASES(BPF_AND, a & b)
        ALU_CASES(BPF_XOR, a ^ b)
        ALU_CASES(BPF_LSH, a << (b & (sizeof(a) * 8 - 1)))
        ALU_CASES(BPF_RSH, a >> (b & (sizeof(a) * 8 - 1)))
        ALU_CASES(BPF_DIV, sizeof(a) == 8 ? (in->off ? sdiv64(a, b) : udiv64(a, b))
                                          : (in->off ? sdiv32(a, b) : udiv32(a, b)))
        ALU_CASES(BPF_MOD, sizeof(a) == 8 ? (in->off ? smod64(a, b) : umod64(a, b))
                                          : (in->off ? smod32(a, b) : umod32(a, b)))

        case BPF_ALU64 | BPF_ARSH | BPF_K:
            DST = (uint64_t)((int64_t)DST >> (in->imm & 63));
            break;
        case BPF_ALU64 | BPF_ARSH | BPF_X:
            DST = (uint64_t)((int64_t)DST >> (SRC & 63));
            break;
        case BPF_ALU | BPF_ARSH | BPF_K:
            DST = (uint32_t)((int32_t)(uint32_t)DST >> (in->imm & 31));
            break;
        case BPF_ALU | BPF_ARSH | BPF_X:
            DST = (uint32_t)((int32_t)(uint32_t)DST >> (SRC & 31));
            break;

        case BPF_ALU64 | BPF_NEG | BPF_K:
            DST = -DST;
            break;
        case BPF_ALU | BPF_NEG | BPF_K:
            DST = (uint32_t)-(uint32_t)DST;
            break;

        case BPF_ALU64 | BPF_MOV | BPF_K:
            DST = IMM;
            break;
        case BPF_ALU | BPF_MOV | BPF_K:
            DST = UIMM32;
            break;
        case BPF_ALU64 | BPF_MOV | BPF_X:
            switch (in->off) {
            case 8:  DST = (uint64_t)(int64_t)(int8_t)SRC; break;
            case 16: DST = (uint64_t)(int64_t)(int16_t)SRC; break;
            case 32: DST = (uint64_t)(int64_t)(int32_t)SRC; break;
            default: DST = SRC; break;
            }
            break;
        case BPF_ALU | BPF_MOV | BPF_X:
            switch (in->off) {
            case 8:  DST = (uint32_t)(int32_t)(int8_t)SRC; break;
            case 16: DST = (uint32_t)(int32_t)(int16_t)SRC; break;
            default: DST = (uint32_t)SRC; break;
            }
            break;

        case BPF_ALU | BPF_END | BPF_TO_LE:
            /* the host is little-endian: only truncate */
            if (in->imm == 16)
                DST = (uint16_t)DST;
            else if (in->imm == 32)
                DST = (uint32_t)DST;
            break;
        case BPF_ALU | BPF_END | BPF_TO_BE:
        case BPF_ALU64 | BPF_END | BPF_TO_LE:
            if (in->imm == 16)
                DST = __builtin_bswap16((uint16_t)DST);
            else if (in->imm == 32)
                DST = __builtin_bswap32((uint32_t)DST);
            else
                DST = __builtin_bswap64(DST);
            break;

        JMP_CASES(BPF_JEQ, uint64_t, uint32_t, a == b)
        JMP_CASES(BPF_JNE, uint64_t, uint32_t, a != b)
        JMP_CASES(BPF_JGT, uint64_t, uint32_t, a > b)
        JMP_CASES(BPF_JGE, uint64_t, uint32_t, a >= b)
        JMP_CASES(BPF_JLT, uint64_t, uint32_t, a < b)
        JMP_CASES(BPF_JLE, uint64_t, uint32_t, a <= b)
        JMP_CASES(BPF_JSET, uint64_t, uint32_t, (a & b) != 0)
        JMP_CASES(BPF_JSGT, int64_t, int32_t, a > b)
        JMP_CASES(BPF_JSGE, int64_t, int32_t, a >= b)
        JMP_CASES(BPF_JSLT, int64_t, int32_t, a < b)
        JMP_CASES(BPF_JSLE, int64_t, int32_t, a <= b)

        case BPF_JMP | BPF_JA:
            pc += in->off;
            break;
        case BPF_JMP32 | BPF_JA:
            pc += in->imm;
            break;

        case BPF_LD | BPF_IMM | BPF_DW:
            if (in->src_reg == BPF_PSEUDO_FUNC)
                DST = (uint64_t)(uintptr_t)&insns[pc + in->imm];
            else
                DST = (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
            pc++;
            break;

        case BPF_LDX | BPF_MEM | BPF_B:  DST = LOAD(uint8_t, uint64_t, SRC + in->off); break;
        case BPF_LDX | BPF_MEM | BPF_H:  DST = LOAD(uint16_t, uint64_t, SRC + in->off); break;
        case BPF_LDX | BPF_MEM | BPF_W:  DST = LOAD(uint32_t, uint64_t, SRC + in->off); break;
        case BPF_LDX | BPF_MEM | BPF_DW: DST = LOAD(uint64_t, uint64_t, SRC + in->off); break;
        case BPF_LDX | BPF_MEMSX | BPF_B: DST = LOAD(int8_t, int64_t, SRC + in->off); break;
        case BPF_LDX | BPF_MEMSX | BPF_H: DST = LOAD(int16_t, int64_t, SRC + in->off); break;
        case BPF_LDX | BPF_MEMSX | BPF_W: DST = LOAD(int32_t, int64_t, SRC + in->off); break;

        case BPF_ST | BPF_MEM | BPF_B:  STORE(uint8_t, DST + in->off, in->imm); break;
        case BPF_ST | BPF_MEM | BPF_H:  STORE(uint16_t, DST + in->off, in->imm); break;
        case BPF_ST | BPF_MEM | BPF_W:  STORE(uint32_t, DST + in->off, in->imm); break;
        case BPF_ST | BPF_MEM | BPF_DW: STORE(uint64_t, DST + in->off, IMM); break;
        case BPF_STX | BPF_MEM | BPF_B:  STORE(uint8_t, DST + in->off, SRC); break;
        case BPF_STX | BPF_MEM | BPF_H:  STORE(uint16_t, DST + in->off, SRC); break;
        case BPF_STX | BPF_MEM | BPF_W:  STORE(uint32_t, DST + in->off, SRC); break;
        case BPF_STX | BPF_MEM | BPF_DW: STORE(uint64_t, DST + in->off, SRC); break;

        case BPF_STX | BPF_ATOMIC | BPF_W: {
            uint64_t addr = DST + in->off;
            if (spec) {
                MEM_CHECK(addr, 4, 0);
                MEM_CHECK(addr, 4, 1);
                if (!spec_atomic(rs, reg, in, addr, 4))
                    return 0;
                break;
            }
            if (checked) {
                if (addr & 3)
                    return violation(rs, prog, pc - 1, "atomic access at 0x%" PRIx64
                                     " is not 4-byte aligned", addr);
                MEM_CHECK(addr, 4, 0);
                MEM_CHECK(addr, 4, 1);
            }
            uint32_t *p = (uint32_t *)(uintptr_t)addr, v = (uint32_t)SRC, old;
            switch (in->imm) {
            case BPF_ADD: __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_OR:  __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_AND: __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_XOR: __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_ADD | BPF_FETCH: SRC = __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_OR | BPF_FETCH:  SRC = __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_AND | BPF_FETCH: SRC = __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_XOR | BPF_FETCH: SRC = __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_XCHG: SRC = __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_CMPXCHG:
                old = (uint32_t)reg[BPF_R0];
                __atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST);
                reg[BPF_R0] = old;
                break;
            }
            break;
        }
        case BPF_STX | BPF_ATOMIC | BPF_DW: {
            uint64_t addr = DST + in->off;
            if (spec) {
                MEM_CHECK(addr, 8, 0);
                MEM_CHECK(addr, 8, 1);
                if (!spec_atomic(rs, reg, in, addr, 8))
                    return 0;
                break;
            }
            if (checked) {
                if (addr & 7)
                    return violation(rs, prog, pc - 1, "atomic access at 0x%" PRIx64
                                     " is not 8-byte aligned", addr);
                MEM_CHECK(addr, 8, 0);
                MEM_CHECK(addr, 8, 1);
            }
            uint64_t *p = (uint64_t *)(uintptr_t)addr, v = SRC, old;
            switch (in->imm) {
            case BPF_ADD: __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_OR:  __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_AND: __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_XOR: __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_ADD | BPF_FETCH: SRC = __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_OR | BPF_FETCH:  SRC = __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_AND | BPF_FETCH: SRC = __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_XOR | BPF_FETCH: SRC = __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_XCHG: SRC = __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); break;
            case BPF_CMPXCHG:
                old = reg[BPF_R0];
                __atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST);
                reg[BPF_R0] = old;
                break;
            }
            break;
        }

        case BPF_JMP | BPF_CALL | BPF_K:
        case BPF_JMP | BPF_CALL | BPF_X: {
            uint64_t target;           /* helper id, or insn index + BPF_MAX_HELPER_ID */
            if (spec)
                return 0;              /* a speculative path ends at a call */
            if (BPF_SRC(in->code) == BPF_K && in->src_reg == BPF_PSEUDO_KFUNC_CALL) {
                /* a host function, resolved at load; called like a helper */
                rs->prog = prog;
                reg[BPF_R0] = prog->kfuncs[pc - 1](reg[BPF_R1], reg[BPF_R2], reg[BPF_R3],
                                                   reg[BPF_R4], reg[BPF_R5]);
                if (checked) {
                    mark_helper_writes(rs, reg);
                    init = (init & ~0x3eu) | 1u;
                }
                break;
            }
            if (BPF_SRC(in->code) == BPF_K) {
                target = in->src_reg == BPF_PSEUDO_CALL
                    ? (uint64_t)(pc + in->imm) + BPF_MAX_HELPER_ID
                    : (uint64_t)in->imm;
            } else {
                uint64_t v = reg[gvm_callx_reg(in)];
                uint64_t base = (uint64_t)(uintptr_t)insns;
                if (v < BPF_MAX_HELPER_ID) {
                    if (!(v == GVM_HELPER_TAIL_CALL && prog->env.tail_call_target)
                        && (!prog->env.helpers || !prog->env.helpers[v]))
                        return violation(rs, prog, pc - 1, "callx to helper %" PRIu64
                                         ", which the environment does not provide", v);
                    target = v;
                } else if (v >= base && v - base < (uint64_t)prog->n * sizeof(*insns)
                           && (v - base) % sizeof(*insns) == 0
                           && prog->func_starts[gvm_func_of(prog, (uint32_t)((v - base) / sizeof(*insns)))]
                                  == (v - base) / sizeof(*insns)) {
                    target = (v - base) / sizeof(*insns) + BPF_MAX_HELPER_ID;
                } else {
                    return violation(rs, prog, pc - 1, "callx to 0x%" PRIx64
                                     ", which is neither a helper id nor a function", v);
                }
            }
            if (target >= BPF_MAX_HELPER_ID) {
                /* bpf-to-bpf call */
                if (rs->depth + 1 >= BPF_MAX_CALL_DEPTH)
                    return violation(rs, prog, pc - 1, "call depth would exceed %d frames",
                                     BPF_MAX_CALL_DEPTH);
                struct frame *f = &rs->frames[rs->depth++];
                f->prog = prog;
                f->ret_pc = pc;
                f->init = init;
                memcpy(f->saved, &reg[BPF_R6], sizeof(f->saved));
                reg[BPF_R10] = frame_top(rs, rs->depth);
                pc = (uint32_t)(target - BPF_MAX_HELPER_ID);
                if (checked) {
                    memset(rs->shadow + (size_t)rs->depth * FRAME_STRIDE, 0, FRAME_STRIDE);
                    init &= 0x3f;          /* r0-r5 as the caller left them */
                    init |= 1u << BPF_R10;
                }
                break;
            }
            if (target == GVM_HELPER_TAIL_CALL && prog->env.tail_call_target) {
                const struct gvm_prog *t =
                    prog->env.tail_call_target(prog->env.arg, reg[BPF_R2], reg[BPF_R3]);
                if (t && tail_calls < BPF_MAX_TAIL_CALLS) {
                    tail_calls++;
                    prog = t;
                    insns = t->insns;
                    pc = 0;
                    if (checked) {
                        memset(rs->shadow + (size_t)rs->depth * FRAME_STRIDE, 0,
                               FRAME_STRIDE);
                        init = (1u << BPF_R1) | (1u << BPF_R10);
                    }
                } else {
                    reg[BPF_R0] = GVM_TAIL_CALL_FAIL_R0;
                    if (checked)
                        init = (init & ~0x3eu) | 1u;
                }
                break;
            }
            rs->prog = prog;               /* for callbacks the helper may invoke */
            rs->helper_pc = pc - 1;
            rs->helper_fault = 0;
            reg[BPF_R0] = prog->env.helpers[target](reg[BPF_R1], reg[BPF_R2], reg[BPF_R3],
                                                    reg[BPF_R4], reg[BPF_R5]);
            if (checked) {
                if (rs->helper_fault)
                    return rs->helper_fault;
                mark_helper_writes(rs, reg);
                init = (init & ~0x3eu) | 1u;   /* r0 set, r1-r5 clobbered */
            }
            break;
        }

        case BPF_JMP | BPF_EXIT:
            if (spec)
                return 0;
            if (rs->depth == 0) {
                *ret = reg[BPF_R0];
                return 0;
            } else {
                struct frame *f = &rs->frames[--rs->depth];
                memcpy(&reg[BPF_R6], f->saved, sizeof(f->saved));
                reg[BPF_R10] = frame_top(rs, rs->depth);
                prog = f->prog;
                insns = prog->insns;
                pc = f->ret_pc;
                if (checked)
                    init = (f->init & ~0x3fu) | 1u;   /* r0 result, r1-r5 clobbered */
            }
            break;

        default:
            /* gvm_prog_create rejected every other opcode */
            return violation(rs, prog, pc - 1, "undecodable opcode 0x%02x", in->code);
        }
    }
}

/* Run the side of the jump at branch_pc that was not taken, from start, as
 * a misprediction (the file's comment): registers copied, stores kept in
 * rs's overlay, all of it dropped at the end. */
static int speculate(struct run *rs, const struct gvm_prog *prog, const uint64_t *reg,
                     uint16_t init, uint32_t branch_pc, uint32_t start)
{
    uint64_t copy[BPF_NREGS], ignored;
    memcpy(copy, reg, sizeof(copy));
    rs->spec_branch = branch_pc;
    rs->n_overlay = 0;
    spec_stats.paths++;
    int rc = run_core(rs, prog, copy, &ignored, start, init, true, true);
    rs->spec_branch = SPEC_NONE;
    return rc;
}

void gvm_spec_stats_get(struct gvm_spec_stats *out)
{
    *out = spec_stats;
}

/* Run prog from start_pc in fresh frames, with reg[] already holding the
 * arguments; the thread's run chain is maintained for callbacks. */
static int run_from(struct run *rs, const struct gvm_prog *prog, uint64_t *reg,
                    uint32_t start_pc, uint16_t init_regs, uint64_t *ret)
{
    rs->stack = rs->stack_mem;
    rs->depth = 0;
    /* a callback's instructions count toward its caller's step limit: a
     * bpf_loop of millions of calls is a long run, not many short ones */
    rs->steps = cur_run ? cur_run->steps : 0;
    /* and its speculation shares the caller's budget */
    rs->spec_budget = !(prog->flags & GVM_F_SPECULATIVE) ? 0
                      : cur_run ? cur_run->spec_budget : GVM_SPEC_BUDGET;
    rs->spec_branch = SPEC_NONE;
    rs->n_overlay = 0;
    rs->prog = prog;
    rs->parent = cur_run;
    reg[BPF_R10] = frame_top(rs, 0);
    *ret = 0;
    cur_run = rs;
    int rc;
    if (prog->flags & GVM_F_CHECKED) {
        uint8_t shadow[STACK_BYTES];
        memset(shadow, 0, sizeof(shadow));
        rs->shadow = shadow;
        rc = run_core(rs, prog, reg, ret, start_pc, init_regs, true, false);
    } else {
        rs->shadow = NULL;
        rc = run_core(rs, prog, reg, ret, start_pc, init_regs, false, false);
    }
    cur_run = rs->parent;
    return rc;
}

int gvm_interp_run(const struct gvm_prog *prog, void *ctx, uint64_t ctx_len,
                   uint64_t *ret, struct graft_err *err)
{
    struct run rs;
    uint64_t reg[BPF_NREGS] = { 0 };

    rs.ctx = ctx;
    rs.ctx_len = ctx_len;
    rs.err = err;
    reg[BPF_R1] = (uint64_t)(uintptr_t)ctx;
    reg[BPF_R2] = ctx_len;
    return run_from(&rs, prog, reg, 0, (1u << BPF_R1) | (1u << BPF_R2) | (1u << BPF_R10), ret);
}

int gvm_checked_helper_access(uint64_t addr, uint64_t size, int write)
{
    struct run *rs = cur_run;
    if (!rs || !rs->shadow || !size)
        return 0;                  /* not inside a checked run */
    if (!rs->helper_fault)
        rs->helper_fault = check_mem(rs, rs->prog, rs->helper_pc, addr, size, write);
    return rs->helper_fault;
}

int gvm_interp_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                    uint64_t a5, uint64_t *ret)
{
    struct run *caller = cur_run;
    if (!caller)
        return -ESRCH;
    const struct gvm_prog *prog = caller->prog;
    uint64_t base = (uint64_t)(uintptr_t)prog->insns;
    uint64_t idx = (fn - base) / sizeof(struct bpf_insn);
    if (fn < base || (fn - base) % sizeof(struct bpf_insn) || idx >= prog->n ||
        prog->func_starts[gvm_func_of(prog, (uint32_t)idx)] != idx)
        return graft_errf(caller->err, -EINVAL,
                          "callback 0x%" PRIx64 " is not a function of the running program", fn);
    struct run rs;
    uint64_t reg[BPF_NREGS] = { 0, a1, a2, a3, a4, a5 };
    rs.ctx = caller->ctx;
    rs.ctx_len = caller->ctx_len;
    rs.err = caller->err;
    int rc = run_from(&rs, prog, reg, (uint32_t)idx, 0x3eu | (1u << BPF_R10), ret);
    caller->steps = rs.steps;
    caller->spec_budget = rs.spec_budget;
    /* the helper only sees a non-zero return; in checked mode the violation
     * (already in err) fails the caller's run when the helper returns */
    if (rc && !caller->helper_fault)
        caller->helper_fault = rc;
    return rc;
}
