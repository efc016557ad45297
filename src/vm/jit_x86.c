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
 *   [literal pool]                one 8-byte host-call target per call site
 *   [bitmap of function entries]  data, only read by callx to vet targets
 *   (pool and bitmap move to a read-only page of their own when a pool slot
 *   holds a WRPKRU/XRSTOR byte pattern: "No WRPKRU/XRSTOR in the code")
 * Every function, main included, has the same frame: return address, saved
 * rbx r13 r14 r15 rbp, then 512 bytes of BPF stack below rbp (rbp = r10).
 * Leaf programs (one function, no call of any kind) are the exception: their
 * function 0 saves only the callee-saved registers the program names or
 * keeps stack slots in, sets up the BPF stack only when some of it stays in
 * memory, and the native entry point is function 0 itself (no wrapper, no
 * nested call); entered by a tail call it restores r12 and rbp too, which
 * it may use for slots. Direct programs (one function, host calls only)
 * keep rbp and the 512-byte stack but save only the r6-r9 homes they name
 * or keep slots in (8 bytes of padding when that count is odd, for
 * 16-byte alignment at helper calls), also entered at function 0. Nothing
 * unwinds through either frame (no abort can happen inside) and a tail
 * call into one still enters at JIT_FUNC0_OFF, so the other programs'
 * layouts hold.
 * The frame is FRAME_BYTES and rsp is 16-byte aligned at BPF level, so helper
 * calls need no adjustment and the abort stub can find the wrapper's frame
 * from the depth alone. A tail call tears down the current frame and jumps to
 * the target's function 0 (JIT_FUNC0_OFF), so the target runs in the same
 * frame slot, as in the interpreter.
 *
 * Optimizations (each with its own tests in tests/vm/test_jit_opt.c, run
 * against the interpreter by the differential fuzzer and the kernel's
 * lib/test_bpf.c table):
 *   - stack slots never address-taken live in registers the program leaves
 *     free (jit_slots.c decides which and their live intervals;
 *     jit_x86_plan.c gives registers, shared by slots never live at once;
 *     functions with calls use r9/r10 for slots live only between calls);
 *   - a branch whose target repeats its test after code that keeps the
 *     tested registers jumps to where that test would go, which then emits
 *     nothing (jit_thread.c);
 *   - div/mod by constants as multiplies, unsigned and signed, and signed
 *     ones by powers of two as shifts (jit_divconst.c, jit_x86_alu.c);
 *   - mov x, b; add x, i; access [x+off] as one [b+i+off] access, x set only
 *     when jit_live.c finds it read later (jit_x86_alu.c);
 *   - `if (c) goto +1; goto T` as one inverted branch, `if (c) goto +1;
 *     r = v` as a cmov (emit_jcond);
 *   - helpers and kfuncs by `call rel32` when in reach, else through a
 *     literal pool after the code (struct host_call);
 *   - helpers the env lets it compute inline (gvm_env.helper_inline), the
 *     call kept as the fallback: bpf_get_current_pid_tgid as one
 *     %fs-relative load of its per-thread cache, bpf_ktime_get_ns as a read
 *     of the helper's TSC line (tests/helpers/test_helpers_vm.c);
 *   - 64-bit constants used in loops held in registers a leaf leaves free
 *     (jit_consts.c, jit_x86_plan.c), read directly by their user;
 *   - fill loops (the memset idiom) as rep stos (jit_x86_fill.c);
 *   - `and r, m` that only feeds a compare: a compare of r's low byte, or
 *     test r, m (try_byte_compare);
 *   - a jump to a loop's latch (i += 1; if i < n goto head) replaced by a
 *     copy of the latch (try_copy_latch);
 *   - for verified programs given the verifier's facts, before any of
 *     these: masks that clear nothing and zero-extensions of zero-extended
 *     values dropped, constant register operands made immediates
 *     (jit_facts.c, tested by vm_jit_facts and the verifier's fuzzers).
 *
 * Invariants: code is written into a private buffer, then copied into a
 * fresh RW mapping which is mprotect'ed to RX before use (never RWX), and
 * only once no executable byte of it holds a WRPKRU/XRSTOR pattern. Branch
 * sizes are chosen by iterating layout passes: a branch becomes rel32 when
 * its displacement (measured on the previous pass) does not fit rel8, and
 * stays rel32 (sticky), so passes converge; the last pass used the same
 * layout it measured, hence every displacement is exact. Any instruction
 * whose encoding depends on a previous-pass value uses a fixed-size form.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/pkru_pattern.h"
#include "vm/jit_x86_enc.h"

/* ---- CPU features ----------------------------------------------------- */

struct gvm_jit_cpu gvm_jit_cpu;

static void detect_cpu(void)
{
    unsigned a, b, c, d;
    if (gvm_jit_cpu.init)
        return;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        gvm_jit_cpu.bmi2 = b & (1u << 8);
        gvm_jit_cpu.rdpid = c & (1u << 22);
    }
    if (__get_cpuid(0x80000001, &a, &b, &c, &d))
        gvm_jit_cpu.rdtscp = d & (1u << 27);
    gvm_jit_cpu.init = true;
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

    if (j->cmp_test) {                  /* r & mask against 0: try_byte_compare */
        emit_test_ri(j, j->cmp_mask64, dst, j->cmp_mask);
        return;
    }
    if (j->cmp_byte) {                  /* the low byte only: try_byte_compare */
        if (op == BPF_JSET) {
            emit_rr(j, F_BRM, 0xf6, 0, dst);        /* test r8, imm8 */
            emit1(j, (uint8_t)in->imm);
        } else if (in->imm == 0) {
            emit_rr(j, F_BREG | F_BRM, 0x84, dst, dst);
        } else {
            emit_rr(j, F_BRM, 0x80, 7, dst);        /* cmp r8, imm8 */
            emit1(j, (uint8_t)in->imm);
        }
        return;
    }
    if (BPF_SRC(in->code) == BPF_X) {
        int src = j->cmp_src >= 0 ? j->cmp_src : reg_map[in->src_reg];
        emit_alu_rr(j, op == BPF_JSET ? 0x85 : 0x39, is64, dst, src);
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
    if (j->thread_to && j->thread_to[i] >= 0) {
        /* the branch at t repeats this test: go where it would (jit_thread.c) */
        emit_compare(j, in);
        emit_branch(j, cc, j->prev_off[j->thread_to[i]]);
        return 1;
    }
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

/* `and r, m; [up to two mov r2, imm;] if r op k goto` with r dead after
 * the jump: the mask only serves the compare (zero-extension elision).
 * m = 0xff, op unsigned, equality or jset, k in [0, 255]: a compare of
 * r's low byte. Any m, op jeq or jne, k = 0: test r, m. Returns the insns
 * consumed, 0 when the pattern does not apply. */
static int try_byte_compare(struct jit *j, const struct bpf_insn *in, uint32_t i, uint32_t func)
{
    const struct gvm_prog *p = j->prog;
    uint32_t end = func + 1 < p->n_funcs ? p->func_starts[func + 1] : p->n, jx = i + 1;
    if (j->hardening || !j->live_out
        || (in->code != (BPF_ALU | BPF_AND | BPF_K) && in->code != (BPF_ALU64 | BPF_AND | BPF_K)))
        return 0;
    while (jx < end && jx < i + 3 && !j->is_target[jx] && p->insns[jx].dst_reg != in->dst_reg
           && (p->insns[jx].code == (BPF_ALU64 | BPF_MOV | BPF_K)
               || p->insns[jx].code == (BPF_ALU | BPF_MOV | BPF_K)))
        jx++;
    if (jx >= end || j->is_target[jx])
        return 0;
    const struct bpf_insn *br = &p->insns[jx];
    uint8_t cls = BPF_CLASS(br->code), op = BPF_OP(br->code);
    if ((cls != BPF_JMP && cls != BPF_JMP32) || BPF_SRC(br->code) != BPF_K
        || br->dst_reg != in->dst_reg || (j->live_out[jx] & (1u << in->dst_reg)))
        return 0;
    bool byte = in->imm == 0xff && br->imm >= 0 && br->imm <= 0xff
                && (op == BPF_JEQ || op == BPF_JNE || op == BPF_JGT || op == BPF_JGE
                    || op == BPF_JLT || op == BPF_JLE || op == BPF_JSET);
    bool test = (op == BPF_JEQ || op == BPF_JNE) && br->imm == 0;
    if (!byte && !test)
        return 0;
    for (const struct bpf_insn *mv = in + 1; mv < br; mv++)
        emit_mov_ri(j, reg_map[mv->dst_reg], BPF_CLASS(mv->code) == BPF_ALU64
                                                 ? (uint64_t)(int64_t)mv->imm
                                                 : (uint32_t)mv->imm);
    if (byte) {
        j->cmp_byte = true;
    } else {
        /* both 64-bit: the whole of r & sext(m); else its low half */
        j->cmp_test = true;
        j->cmp_mask = in->imm;
        j->cmp_mask64 = BPF_CLASS(in->code) == BPF_ALU64 && cls == BPF_JMP;
    }
    int used = emit_jcond(j, br, jx);
    j->cmp_byte = false;
    j->cmp_test = false;
    return (int)(jx - i) + used;
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
    if (ai.percpu_stride && !gvm_jit_cpu.rdpid && !gvm_jit_cpu.rdtscp)
        return false;
    if (ai.percpu_stride) {
        /* Linux keeps the cpu number in TSC_AUX bits 0-11 */
        if (gvm_jit_cpu.rdpid) {
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
    j->calls[j->n_calls++] = (struct host_call){ (uint32_t)j->len, j->idx,
                                                 (uint64_t)(uintptr_t)fn };
    for (int k = 0; k < 6; k++)
        emit1(j, 0xcc);
}

/* mov %fs:tls_offset, reg64 (store: mov reg64, %fs:tls_offset) */
static void emit_fs_mov(struct jit *j, bool store, int reg, int32_t tls_offset)
{
    emit1(j, 0x64);
    emit_prefix(j, F_W, reg, 0, 0);
    emit1(j, store ? 0x89 : 0x8b);
    emit1(j, (uint8_t)((reg & 7) << 3 | 4));          /* [disp32], no base */
    emit1(j, 0x25);
    emit4(j, (uint32_t)tls_offset);
}

/* A helper the env lets the JIT compute inline (struct gvm_helper_inline):
 * the inline path, then the call as its fallback. Clobbers only registers
 * a call clobbers (rax, rcx, rdx, r11). False: not inlinable, nothing
 * emitted. */
static bool emit_inline_helper(struct jit *j, const struct gvm_helper_inline *hi,
                               gvm_helper_fn fn)
{
    if (hi->kind == GVM_INLINE_TLS_U64) {
        emit_fs_mov(j, false, RAX, hi->tls_offset);
        emit_test_rr(j, false, RAX, RAX);
        size_t done = emit_jcc8_fwd(j, CC_NE);
        emit_helper_call(j, fn);
        fixup8(j, done);
        return true;
    }
    if (hi->kind != GVM_INLINE_TSC_LINE || !hi->line)
        return false;
    size_t slow[5];
    emit_movabs(j, R11, (uint64_t)(uintptr_t)hi->line);
    emit_rm(j, 0, 0x8b, RCX, R11, offsetof(struct gvm_tsc_line, seq));     /* ecx = seq */
    emit_test_ri(j, false, RCX, 1);
    slow[0] = emit_jcc8_fwd(j, CC_NE);                                    /* being rewritten */
    emit1(j, 0x0f); emit1(j, 0x31);                                       /* rdtsc */
    emit_shift_ri(j, F_W, 4, RDX, 32);
    emit_alu_rr(j, 0x09, true, RAX, RDX);                                 /* rax = tsc */
    emit_rm(j, F_W, 0x2b, RAX, R11, offsetof(struct gvm_tsc_line, t0));   /* sub t0 */
    emit_rm(j, F_W, 0x3b, RAX, R11, offsetof(struct gvm_tsc_line, span)); /* cmp span */
    slow[1] = emit_jcc8_fwd(j, CC_AE);                                    /* beyond the line */
    emit_rm(j, F_W, 0xf7, 4, R11, offsetof(struct gvm_tsc_line, mult));   /* rdx:rax = d * mult */
    emit_rr(j, F_W, 0x0fac, RDX, RAX);
    emit1(j, 32);                                                         /* shrd $32 */
    emit_rm(j, F_W, 0x03, RAX, R11, offsetof(struct gvm_tsc_line, n0));   /* add n0 */
    /* x86 keeps loads in order: this re-read comes after the line's */
    emit_rm(j, 0, 0x3b, RCX, R11, offsetof(struct gvm_tsc_line, seq));
    slow[2] = emit_jcc8_fwd(j, CC_NE);                                    /* rewritten meanwhile */
    emit_fs_mov(j, false, RDX, hi->tls_offset);
    emit_alu_rr(j, 0x39, true, RAX, RDX);
    slow[3] = emit_jcc8_fwd(j, CC_B);                                     /* below the last value */
    emit_fs_mov(j, true, RAX, hi->tls_offset);
    slow[4] = emit_jcc8_fwd(j, -1);                                       /* done: over the call */
    for (int k = 0; k < 4; k++)
        fixup8(j, slow[k]);
    emit_helper_call(j, fn);
    fixup8(j, slow[4]);
    return true;
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
    emit_lea_code(j, TMP3, 0);                       /* the code's base */
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
    if (in->imm == 1 && !j->hardening && emit_inline_lookup(j))
        return;
    if (env->helper_inline && !j->hardening && emit_inline_helper(j, &env->helper_inline[in->imm],
                                                                  env->helpers[in->imm]))
        return;
    emit_helper_call(j, env->helpers[in->imm]);
}

/* ---- functions, wrapper, stubs ----------------------------------------- */

static void emit_prologue(struct jit *j)
{
    if (j->leaf) {
        for (int k = 0; k < j->n_saved_regs; k++)
            emit_push(j, j->saved_regs[k]);
        if (j->leaf_frame) {
            emit_push(j, RBP);
            emit_mov_rr(j, true, RBP, RSP);
            emit_rr(j, F_W, 0x81, 5, RSP);           /* sub rsp, 512 */
            emit4(j, BPF_STACK_SIZE);
        }
        /* never a 0x0f byte here: harden_at could not move it */
        for (int k = 0; k < j->n_consts; k++) {
            if (has_0f(j->const_val[k], 8))
                emit_mov_ri_clean(j, j->const_reg[k], j->const_val[k]);
            else
                emit_movabs(j, j->const_reg[k], j->const_val[k]);
        }
        return;
    }
    if (j->direct) {
        for (int k = 0; k < j->n_saved_regs; k++)
            emit_push(j, j->saved_regs[k]);
    } else {
        emit_push(j, RBX);
        emit_push(j, R13);
        emit_push(j, R14);
        emit_push(j, R15);
    }
    emit_push(j, RBP);
    emit_mov_rr(j, true, RBP, RSP);
    emit_rr(j, F_W, 0x81, 5, RSP);                   /* sub rsp, 512 (+ 8) */
    emit4(j, BPF_STACK_SIZE + (j->direct && j->frame_pad ? 8 : 0));
}

static void emit_epilogue(struct jit *j)
{
    if (j->leaf) {
        if (j->leaf_frame)
            emit1(j, 0xc9);                          /* leave */
        for (int k = j->n_saved_regs - 1; k >= 0; k--)
            emit_pop(j, j->saved_regs[k]);
        emit1(j, 0xc3);
        return;
    }
    emit1(j, 0xc9);                                  /* leave */
    if (j->direct) {
        for (int k = j->n_saved_regs - 1; k >= 0; k--)
            emit_pop(j, j->saved_regs[k]);
    } else {
        emit_pop(j, R15);
        emit_pop(j, R14);
        emit_pop(j, R13);
        emit_pop(j, RBX);
    }
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
    for (int k = 0; k < j->abort_pad; k++)
        emit1(j, 0x90);                              /* moves the jmp's rel32 */
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

/* x = the value register h holds, by the insn at i of len insns: a lddw
 * of a constant held in h since the prologue (len 2), or the load of a
 * stack slot held in h (len 1). When the next insn is `op y, x` (op an
 * ALU64 add, sub, and, or, xor, mul, a shift (with BMI2) or a 64-bit
 * conditional jump; y not x)
 * and x is dead after it, that insn reads h instead and x is never set;
 * else x = h. Returns the insns consumed. */
static int emit_from_reg(struct jit *j, uint32_t i, uint32_t len, uint32_t func, int h)
{
    static const uint8_t alu_rr[16] = {
        [BPF_ADD >> 4] = 0x01, [BPF_SUB >> 4] = 0x29, [BPF_OR >> 4] = 0x09,
        [BPF_AND >> 4] = 0x21, [BPF_XOR >> 4] = 0x31,
    };
    const struct gvm_prog *p = j->prog;
    const struct bpf_insn *in = &p->insns[i], *o = in + len;
    uint32_t nx = i + len, end = func + 1 < p->n_funcs ? p->func_starts[func + 1] : p->n;
    int x = in->dst_reg;

    if (nx < end && !j->is_target[nx] && j->live_out && !(j->live_out[nx] & (1u << x))
        && BPF_SRC(o->code) == BPF_X && o->src_reg == x && o->dst_reg != x) {
        uint8_t cls = BPF_CLASS(o->code), op = BPF_OP(o->code);
        if (cls == BPF_ALU64 && o->off == 0 && alu_rr[op >> 4]) {
            emit_alu_rr(j, alu_rr[op >> 4], true, reg_map[o->dst_reg], h);
            return (int)len + 1;
        }
        if (cls == BPF_ALU64 && o->off == 0 && op == BPF_MUL) {
            emit_imul_rr(j, true, reg_map[o->dst_reg], h);
            return (int)len + 1;
        }
        if (cls == BPF_ALU64 && gvm_jit_cpu.bmi2
            && (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH)) {
            int d = reg_map[o->dst_reg];                 /* shlx/shrx/sarx d, d, h */
            emit_shiftx(j, op == BPF_LSH ? 1 : op == BPF_RSH ? 3 : 2, true, d, d, h);
            return (int)len + 1;
        }
        if (cls == BPF_JMP && op != BPF_JA && op != BPF_CALL && op != BPF_EXIT) {
            j->cmp_src = h;
            int used = emit_jcond(j, o, nx);
            j->cmp_src = -1;
            return (int)len + used;
        }
    }
    emit_mov_rr(j, true, reg_map[x], h);
    return (int)len;
}

/* `ldxdw a, [r10-k]; op a, v; stxdw [r10-k], a` on a slot held in
 * register sr (op an ALU64 add, sub, and, or, xor of a constant or a
 * register): the operation on sr itself, a = sr only when a is read later.
 * Returns the insns consumed, 0 when the pattern does not apply. */
static int slot_update(struct jit *j, uint32_t i, int sr)
{
    static const uint8_t alu_rr[16] = {
        [BPF_ADD >> 4] = 0x01, [BPF_SUB >> 4] = 0x29, [BPF_OR >> 4] = 0x09,
        [BPF_AND >> 4] = 0x21, [BPF_XOR >> 4] = 0x31,
    };
    static const uint8_t alu_ext[16] = {
        [BPF_ADD >> 4] = 0, [BPF_SUB >> 4] = 5, [BPF_OR >> 4] = 1, [BPF_AND >> 4] = 4,
        [BPF_XOR >> 4] = 6,
    };
    const struct bpf_insn *ld = &j->prog->insns[i], *op = ld + 1, *st = ld + 2;
    int a = ld->dst_reg;
    uint8_t o = BPF_OP(op->code);
    if (j->hardening || i + 2 >= j->prog->n || j->is_target[i + 1] || j->is_target[i + 2]
        || BPF_CLASS(op->code) != BPF_ALU64 || op->dst_reg != a || op->off != 0
        || !alu_rr[o >> 4] || st->code != (BPF_STX | BPF_MEM | BPF_DW) || st->dst_reg != BPF_R10
        || st->off != ld->off || st->src_reg != a)
        return 0;
    if (BPF_SRC(op->code) == BPF_X)
        emit_alu_rr(j, alu_rr[o >> 4], true, sr, op->src_reg == a ? sr : reg_map[op->src_reg]);
    else if (o == BPF_ADD && (op->imm == 1 || op->imm == -1))
        emit_rr(j, F_W, 0xff, op->imm == 1 ? 0 : 1, sr);           /* inc/dec */
    else
        emit_alu_ri(j, alu_ext[o >> 4], true, sr, op->imm);
    if (!j->live_out || (j->live_out[i + 2] & (1u << a)))
        emit_mov_rr(j, true, reg_map[a], sr);
    return 3;
}

static int emit_insn(struct jit *j, uint32_t i, uint32_t func);

/* The most insns a loop latch copied at a jump to it may have. */
#define LATCH_MAX 5

/* `goto t` where t starts a loop latch: a few ALU or load insns, then a
 * conditional jump back to the loop's head (how clang closes a loop whose
 * body ends in several places, a switch in a loop). A copy of the latch
 * replaces the jump: one taken branch per iteration instead of two. The
 * copy runs in the same context as the original (same registers, same
 * successors), and ends with a jump to where the latch falls through.
 * Its insns are emitted as themselves (j->idx = their index, so their
 * peepholes and branch sizes are the original's; a rel32 choice is sticky
 * for both); the final jump is always rel32. Returns true when emitted. */
static bool try_copy_latch(struct jit *j, uint32_t i, uint32_t t, uint32_t func)
{
    const struct gvm_prog *p = j->prog;
    uint32_t end = func + 1 < p->n_funcs ? p->func_starts[func + 1] : p->n, e = t;
    if (j->hardening || j->any_hard || t == i + 1)
        return false;
    for (; e < end && e < t + LATCH_MAX; e++) {
        uint8_t cls = BPF_CLASS(p->insns[e].code), op = BPF_OP(p->insns[e].code);
        if (cls == BPF_ALU || cls == BPF_ALU64 || cls == BPF_LDX)
            continue;
        if ((cls != BPF_JMP && cls != BPF_JMP32) || op == BPF_JA || op == BPF_CALL
            || op == BPF_EXIT || op > BPF_JSLE)
            return false;
        break;
    }
    if (e >= end || e == t + LATCH_MAX || e + 1 >= end)
        return false;
    /* a latch updates what it tests (i++; if i < n): a lone compare is
     * more often a loop's guard, whose fall-through (the loop) is the hot
     * way and gains nothing from a copy */
    const struct bpf_insn *br = &p->insns[e];
    uint16_t tested = (uint16_t)(1u << br->dst_reg);
    if (BPF_SRC(br->code) == BPF_X)
        tested |= (uint16_t)(1u << br->src_reg);
    bool updates = false;
    for (uint32_t k = t; k < e; k++)
        updates = updates || (tested & (1u << p->insns[k].dst_reg));
    /* and the jump is inside the loop (after the head the latch goes
     * back to), not the way into it, which runs once */
    if (!updates || (int64_t)e + 1 + br->off > (int64_t)i)
        return false;
    uint32_t k = t;
    j->r1_known = false;
    while (k <= e) {
        if (!reserve(j, 512))
            return true;                /* j->oom fails the compile */
        j->idx = k;
        int used = emit_insn(j, k, func);
        if (used <= 0)
            return false;               /* cannot happen: the original compiles */
        k += (uint32_t)used;
    }
    j->idx = i;
    j->r1_known = false;
    emit_rel32(j, CC_JMP, j->prev_off[k]);
    return true;
}

/* Emit insn i; returns the number of insns consumed, or -1 if unknown. */
static int emit_insn(struct jit *j, uint32_t i, uint32_t func)
{
    const struct bpf_insn *in = &j->prog->insns[i];
    uint8_t cls = BPF_CLASS(in->code);
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];

    if (j->no_code && j->no_code[i])
        return 1;                       /* a repeated test, known to fail here */
    int slot = (in->dst_reg == BPF_R10 || in->src_reg == BPF_R10) ? gvm_slot_of(in) : -1;
    if (slot >= 0 && j->cur_slots[slot] >= 0) {
        int sr = j->cur_slots[slot];
        int used = cls == BPF_LDX ? slot_update(j, i, sr) : 0;
        if (used)
            return used;
        if (cls == BPF_LDX && !j->hardening)
            return emit_from_reg(j, i, 1, func, sr);
        if (cls == BPF_LDX)
            emit_mov_rr(j, true, dst, sr);
        else if (cls == BPF_STX)
            emit_mov_rr(j, true, sr, src);
        else
            emit_mov_ri(j, sr, (uint64_t)(int64_t)in->imm);
        return 1;
    }
    switch (cls) {
    case BPF_ALU: case BPF_ALU64: {
        int used = try_byte_compare(j, in, i, func);
        return used ? used : gvm_jit_alu_insn(j, in);
    }
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
            emit_lea_code(j, dst, j->prev_fentry[f]);
        } else {
            for (int k = 0; k < j->n_consts && !j->hardening; k++)
                if (j->const_val[k] == v)
                    return emit_from_reg(j, i, 2, func, j->const_reg[k]);
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
            if (t != i + 1 && !try_copy_latch(j, i, t, func))
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
            if (!reserve(j, 512))
                return graft_errf(err, -ENOMEM, "JIT: out of memory for code buffer");
            j->idx = i;
            j->cur_start = (uint32_t)j->len;
            j->prev_start = j->prev_off[i];
            j->off[i] = j->cur_start;
            if (j->is_target[i])
                j->r1_known = false;
            bool ld_r1 = bpf_is_ld_imm64(&p->insns[i]) && p->insns[i].dst_reg == BPF_R1;
            bool r1_write = writes_r1(&p->insns[i]);
            unsigned pad = j->any_hard ? j->hard[i] & HARD_LEVEL : 0;
            if (__builtin_expect(pad != 0, 0)) {
                j->hardening = true;
                memset(j->buf + j->len, 0x90, pad);      /* nothing runs into it */
                j->len += pad;
            }
            int used = emit_insn(j, i, f);
            if (__builtin_expect(pad != 0, 0)) {
                memset(j->buf + j->len, 0x90, pad);      /* nor out of it */
                j->len += pad;
                j->hardening = false;
            }
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
    /* data (pool, bitmap) right after the code, or on pages of its own that
     * are not executable once a pool slot held a pattern (harden_at) */
    j->pool_off = j->pool_page ? (uint32_t)((j->code_len + j->page - 1) & ~(j->page - 1))
                               : (j->code_len + 7u) & ~7u;
    j->bitmap_off = j->pool_off + 8 * j->n_calls;
    if (j->oom)
        return graft_errf(err, -ENOMEM, "JIT: out of memory");
    if (j->harden_fail)
        return graft_errf(err, -ENOTSUP, "JIT: cannot emit code free of WRPKRU/XRSTOR byte "
                          "patterns (insn %u); use the interpreter", j->idx);
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
    j->direct = p->n_funcs == 1;
    for (uint32_t i = 0; i < p->n && j->direct; i++) {
        const struct bpf_insn *in = &p->insns[i];
        uint8_t cls = BPF_CLASS(in->code);
        if ((cls == BPF_JMP || cls == BPF_JMP32) && BPF_OP(in->code) == BPF_CALL) {
            j->leaf = false;
            /* only calls of host functions (helpers but tail_call, kfuncs)
             * keep the program direct: they neither use r12 nor abort */
            if (BPF_SRC(in->code) == BPF_X || in->src_reg == BPF_PSEUDO_CALL ||
                (in->src_reg == 0 && in->imm == GVM_HELPER_TAIL_CALL))
                j->direct = false;
        }
        if (bpf_is_ld_imm64(in) && in->src_reg == BPF_PSEUDO_FUNC)
            j->leaf = j->direct = false;
        if (!j->leaf)
            continue;
        if (in->dst_reg > BPF_R10 || in->src_reg > BPF_R10)
            j->leaf = false;
        else
            j->regs_named |= (uint16_t)(1u << in->dst_reg | 1u << in->src_reg);
    }
}

/* Does insns[lo, hi) have `mov x, b; add x, ...` (what the address folding
 * of jit_x86_alu.c starts from), a lddw or a stack slot load (which
 * emit_from_reg may fold into its user) or an `and r, imm`
 * (try_byte_compare)? Liveness is
 * computed only for functions that do. */
static bool has_fold_candidate(const struct gvm_prog *p, uint32_t lo, uint32_t hi)
{
    for (uint32_t i = lo; i + 1 < hi; i++) {
        const struct bpf_insn *in = &p->insns[i];
        if ((bpf_is_ld_imm64(in) && in->src_reg == 0)
            || (in->code == (BPF_LDX | BPF_MEM | BPF_DW) && in->src_reg == BPF_R10))
            return true;
        if (in->code == (BPF_ALU | BPF_AND | BPF_K) || in->code == (BPF_ALU64 | BPF_AND | BPF_K))
            return true;
        if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X)
            && (in[1].code & ~BPF_X) == (BPF_ALU64 | BPF_ADD) && in[1].dst_reg == in->dst_reg)
            return true;
    }
    return false;
}

static void mark_targets(struct jit *j)
{
    const struct gvm_prog *p = j->prog;
    for (uint32_t f = 0; f < p->n_funcs; f++)
        j->is_target[p->func_starts[f]] += j->is_target[p->func_starts[f]] < UINT8_MAX;
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
            j->is_target[t] += j->is_target[t] < UINT8_MAX;
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
 * reach (and the site is not HARD_POOL), else `call [rip+disp32]` through
 * the site's pool slot. */
static void fill_host_calls(const struct jit *j, uint8_t *mem)
{
    for (uint32_t k = 0; k < j->n_calls; k++) {
        const struct host_call *c = &j->calls[k];
        uint8_t *site = mem + c->pos;
        int64_t rel = (int64_t)(c->target - (uint64_t)(uintptr_t)(site + 6));
        uint8_t *slot = mem + j->pool_off + 8 * k;
        if (is_simm32(rel) && !(j->hard[c->insn] & HARD_POOL)) {
            int32_t r = (int32_t)rel;
            site[0] = 0x2e;                              /* cs: 1-byte pad */
            site[1] = 0xe8;
            memcpy(site + 2, &r, 4);
        } else {
            int32_t d = (int32_t)(slot - (site + 6));
            memcpy(slot, &c->target, 8);
            site[0] = 0xff;
            site[1] = 0x15;                              /* call [rip+d] */
            memcpy(site + 2, &d, 4);
        }
    }
}

/* ---- no WRPKRU/XRSTOR in the code --------------------------------------
 *
 * graft's isolation trusts that no executable byte outside its gates can
 * change PKRU. JIT'd code is executable memory graft writes, and much of it
 * is chosen by the extension (immediates, displacements, the layout that
 * decides branch offsets) or by where things land (host call rel32s). So
 * the installed code is scanned for the byte patterns of util/pkru_pattern.h,
 * aligned or not, before it becomes executable, and wherever one occurs the
 * code is made again without it:
 *   - a pattern touching a direct host call: that call goes through the
 *     literal pool instead (same size, so no new layout);
 *   - one in the literal pool (a host function's address) or the callx
 *     bitmap: they move to a page of their own that is not executable
 *     (otherwise they follow the code, in its pages, and are scanned too);
 *   - otherwise every insn it touches is hardened one level more (HARD_*):
 *     as many nops before and after it (no pattern runs into or out of it,
 *     and each of its branch offsets moves by one per level), its constants
 *     materialized without any 0x0f byte (emit_mov_ri_clean, imm_via_tmp1),
 *     no peephole starting there; the abort stub likewise gets nops;
 * then it is laid out, installed and scanned again. Programs
 * that cannot be made clean within MAX_HARDEN_ROUNDS are refused (-ENOTSUP:
 * use the interpreter). Clean code - nearly every program - costs only
 * the scan. */
#define MAX_HARDEN_ROUNDS 16

/* Harden what the pattern at code offset o touches; returns 1 when the
 * code needs a new layout, 0 when only a host call changed, -1 when there
 * was nothing left to change. */
static int harden_at(struct jit *j, const uint8_t *mem, size_t o)
{
    if (o + 3 > j->pool_off) {
        if (j->pool_page)
            return -1;
        j->pool_page = true;            /* a host address: cannot change, hide it */
        return 1;
    }
    for (uint32_t k = 0; k < j->n_calls; k++) {
        const struct host_call *c = &j->calls[k];
        if (o < c->pos + 6 && o + 3 > c->pos && mem[c->pos] == 0x2e) {
            j->hard[c->insn] |= HARD_POOL;
            return 0;
        }
    }
    int r = -1;
    uint32_t n = j->prog->n, lo = 0, hi = n;
    while (lo < hi) {                   /* the first insn ending after o */
        uint32_t mid = lo + (hi - lo) / 2;
        if (j->off[mid + 1] > o)
            hi = mid;
        else
            lo = mid + 1;
    }
    for (uint32_t i = lo; i < n && j->off[i] < o + 3; i++) {
        if (j->off[i + 1] > j->off[i] && (j->hard[i] & HARD_LEVEL) < HARD_MAX) {
            j->hard[i]++;
            j->any_hard = true;
            r = 1;
        }
    }
    if (o + 3 > j->abort_off && o < j->code_len && j->abort_pad < HARD_MAX) {
        j->abort_pad++;
        r = 1;
    }
    return r;
}

/* Copy the converged code into a fresh mapping, fill its host calls, check
 * it holds no WRPKRU/XRSTOR pattern, then make the code read+execute and
 * the data after it read-only. Returns 0 when installed, 1 when some insns
 * were hardened and the code must be laid out again, or an error. */
static int install(struct jit *j, struct gvm_prog *prog, struct graft_err *err)
{
    size_t page = j->page;
    size_t bitmap_len = j->uses_callx ? (j->code_len + 7) / 8 : 0;
    size_t total = j->bitmap_off + bitmap_len;
    size_t map_size = (total + page - 1) & ~(page - 1);
    size_t exec_len = j->pool_page ? j->pool_off : map_size;

    uint8_t *mem = mmap(near_calls_hint(j, map_size, page), map_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return graft_errf(err, -errno, "JIT: mmap of %zu bytes for code failed", map_size);
    memcpy(mem, j->buf, j->code_len);
    memset(mem + j->code_len, 0xcc, j->pool_off - j->code_len);   /* int3 padding */
    if (bitmap_len) {
        uint8_t *bm = mem + j->bitmap_off;
        for (uint32_t f = 0; f < prog->n_funcs; f++)
            bm[j->fentry[f] / 8] |= (uint8_t)(1u << (j->fentry[f] % 8));
    }
    for (;;) {
        fill_host_calls(j, mem);
        size_t o = gpkru_find(mem, exec_len, 0);
        if (o == exec_len)
            break;
        int relayout = 0;
        for (; o < exec_len; o = gpkru_find(mem, exec_len, o + 1)) {
            int h = harden_at(j, mem, o);
            if (h < 0) {
                munmap(mem, map_size);
                return graft_errf(err, -ENOTSUP, "JIT: cannot emit code free of WRPKRU/XRSTOR "
                                  "byte patterns (one stays at code offset %zu); use the "
                                  "interpreter", o);
            }
            relayout |= h;
        }
        if (relayout) {
            munmap(mem, map_size);
            return 1;
        }
    }
    if (mprotect(mem, exec_len, PROT_READ | PROT_EXEC) != 0
        || (map_size > exec_len && mprotect(mem + exec_len, map_size - exec_len, PROT_READ) != 0)) {
        int e = errno;
        munmap(mem, map_size);
        return graft_errf(err, -e, "JIT: mprotect to read+execute failed");
    }
    prog->jit_code = mem;
    prog->jit_map_size = map_size;
    prog->jit_code_size = j->code_len;
    /* A leaf program's function 0 is a complete C function on its own; so
     * is that of a program whose only calls are host calls (its frame saves
     * every callee-saved register it uses; r12, the wrapper's, is not
     * touched, nothing can abort): the wrapper's six pushes and extra call
     * are skipped on every run. */
    prog->jit_fn = (gvm_native_fn)(void *)(mem + (j->leaf || j->direct ? JIT_FUNC0_OFF : 0));
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
    free(j->hard);
    free(j->calls);
    free(j->slot_reg);
    free(j->live_out);
    free(j->thread_to);
    free(j->no_code);
}

/* Layout passes until branch sizes converge. */
static int lay_out(struct jit *j, struct graft_err *err)
{
    for (j->pass = 0;; j->pass++) {
        int r = run_pass(j, err);
        if (r)
            return r;
        if (j->pass > 0 && !j->changed && j->code_len == j->prev_code_len)
            return 0;
        swap_u32p(&j->off, &j->prev_off);
        swap_u32p(&j->fentry, &j->prev_fentry);
        swap_u32p(&j->fepi, &j->prev_fepi);
        j->prev_abort_off = j->abort_off;
        j->prev_bitmap_off = j->bitmap_off;
        j->prev_code_len = j->code_len;
        if (j->pass > 64)
            return graft_errf(err, -EFAULT, "JIT: branch layout did not converge");
    }
}

int gvm_jit_compile(struct gvm_prog *prog, struct graft_err *err)
{
    struct jit j = { .prog = prog, .cmp_src = -1 };
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
    j.hard = calloc(n, 1);
    j.page = (size_t)sysconf(_SC_PAGESIZE);
    if (!j.hard || !j.off || !j.prev_off || !j.fentry || !j.prev_fentry || !j.fepi || !j.prev_fepi
        || !j.is_long || !j.is_target) {
        r = graft_errf(err, -ENOMEM, "JIT: out of memory for %u instructions", n);
        goto out;
    }
    mark_targets(&j);
    mark_leaf(&j);
    j.thread_to = malloc(n * sizeof(*j.thread_to));
    j.no_code = malloc(n);
    if (j.thread_to && j.no_code) {
        gvm_same_test_pairs(prog->insns, n, prog->func_starts, nf, j.is_target, j.thread_to,
                            j.no_code);
    } else {                               /* the pass is optional */
        free(j.thread_to);
        free(j.no_code);
        j.thread_to = NULL;
        j.no_code = NULL;
    }
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

    for (int round = 0;; round++) {
        r = gvm_jit_plan_slots(&j, err);
        if (r)
            goto out;
        r = lay_out(&j, err);
        if (r)
            goto out;
        r = install(&j, prog, err);
        if (r <= 0)
            goto out;
        if (round + 1 == MAX_HARDEN_ROUNDS) {
            r = graft_errf(err, -ENOTSUP, "JIT: code still held WRPKRU/XRSTOR byte patterns "
                           "after %d rounds of hardening; use the interpreter", round + 1);
            goto out;
        }
    }
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
