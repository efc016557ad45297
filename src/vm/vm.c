/*
 * vm.c - turning an instruction array into a runnable gvm_prog.
 *
 * gvm_prog_create() decodes every instruction once and rejects anything the
 * engines could misread: unknown opcodes, non-zero reserved fields, register
 * numbers above r10, writes to r10, jumps or calls that leave the program,
 * land in the second slot of a LD_IMM64 or cross a function boundary, calls
 * to helpers the environment does not provide, and the legacy BPF_ABS/IND
 * packet loads. It then resolves LD_IMM64 map references through the
 * environment (so the engines only ever see plain 64-bit constants or
 * BPF_PSEUDO_FUNC) and records where each function starts.
 *
 * Invariants after a successful create, which both engines rely on:
 *  - every jump/call target is a real instruction inside the same function
 *    (calls: the start of a function) and never a LD_IMM64 second slot;
 *  - the last instruction of every function is exit or an unconditional
 *    jump, so control never falls off a function's end;
 *  - every helper call id has a non-NULL env.helpers entry (or is the tail
 *    call with env.tail_call_target set);
 *  - every kfunc call at insn i has a non-NULL prog->kfuncs[i].
 * It does not prove memory safety; that is the verifier's job.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vm/jit_opt.h"
#include "vm/vm_internal.h"

/* ---- instruction shape: known opcode, reserved fields zero ------------ */

static const char *alu_shape_error(const struct bpf_insn *in)
{
    uint8_t op = BPF_OP(in->code);
    bool is64 = BPF_CLASS(in->code) == BPF_ALU64;
    bool x = BPF_SRC(in->code) == BPF_X;

    switch (op) {
    case BPF_ADD: case BPF_SUB: case BPF_MUL: case BPF_OR: case BPF_AND:
    case BPF_LSH: case BPF_RSH: case BPF_XOR: case BPF_ARSH:
        if (in->off)
            return "non-zero offset field";
        break;
    case BPF_DIV: case BPF_MOD:
        if (in->off != 0 && in->off != 1)
            return "offset of div/mod must be 0 (unsigned) or 1 (signed)";
        break;
    case BPF_MOV:
        if (in->off == 0)
            break;
        if (!x)
            return "sign-extending move (movsx) needs a register source";
        if (in->off != 8 && in->off != 16 && !(is64 && in->off == 32))
            return "movsx offset must be 8, 16 or (64-bit) 32";
        break;
    case BPF_NEG:
        if (x)
            return "neg takes no source register (use BPF_K)";
        if (in->off || in->imm || in->src_reg)
            return "non-zero reserved field in neg";
        return NULL;
    case BPF_END:
        if (is64 && x)
            return "64-bit byte swap must use BPF_TO_LE encoding";
        if (in->imm != 16 && in->imm != 32 && in->imm != 64)
            return "byte swap width (imm) must be 16, 32 or 64";
        if (in->off || in->src_reg)
            return "non-zero reserved field in byte swap";
        return NULL;
    default:
        return "unknown ALU operation";
    }
    if (x && in->imm)
        return "non-zero imm with register source";
    if (!x && in->src_reg)
        return "non-zero src_reg with immediate source";
    return NULL;
}

static const char *jmp_shape_error(const struct bpf_insn *in)
{
    uint8_t op = BPF_OP(in->code);
    bool is32 = BPF_CLASS(in->code) == BPF_JMP32;
    bool x = BPF_SRC(in->code) == BPF_X;

    switch (op) {
    case BPF_JA:
        if (x)
            return "unconditional jump has no register form";
        if (in->dst_reg || in->src_reg)
            return "non-zero register field in ja";
        if (is32 ? in->off != 0 : in->imm != 0)
            return is32 ? "gotol takes its offset in imm; off must be 0"
                        : "ja takes its offset in off; imm must be 0";
        return NULL;
    case BPF_CALL:
        if (is32)
            return "call is not a JMP32 operation";
        if (x) {
            /* callx: register in dst_reg, or in imm for old LLVM */
            if (in->src_reg || in->off)
                return "non-zero reserved field in callx";
            if (in->dst_reg && in->imm)
                return "callx has both dst_reg and imm set";
            if (!in->dst_reg && (in->imm < 0 || in->imm > 15))
                return "callx register in imm out of range";
            return NULL;
        }
        if (in->dst_reg || in->off)
            return "non-zero reserved field in call";
        if (in->src_reg > BPF_PSEUDO_KFUNC_CALL)
            return "unknown call kind (src_reg)";
        return NULL;
    case BPF_EXIT:
        if (is32)
            return "exit is not a JMP32 operation";
        if (x || in->dst_reg || in->src_reg || in->off || in->imm)
            return "non-zero reserved field in exit";
        return NULL;
    case BPF_JEQ: case BPF_JGT: case BPF_JGE: case BPF_JSET: case BPF_JNE:
    case BPF_JSGT: case BPF_JSGE: case BPF_JLT: case BPF_JLE:
    case BPF_JSLT: case BPF_JSLE:
        if (x && in->imm)
            return "non-zero imm with register source";
        if (!x && in->src_reg)
            return "non-zero src_reg with immediate source";
        return NULL;
    default:
        return "unknown jump operation";
    }
}

static bool atomic_op_known(int32_t imm)
{
    switch (imm) {
    case BPF_ADD: case BPF_OR: case BPF_AND: case BPF_XOR:
    case BPF_ADD | BPF_FETCH: case BPF_OR | BPF_FETCH:
    case BPF_AND | BPF_FETCH: case BPF_XOR | BPF_FETCH:
    case BPF_XCHG: case BPF_CMPXCHG:
        return true;
    default:
        return false;
    }
}

static const char *mem_shape_error(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code), mode = BPF_MODE(in->code);

    if (cls == BPF_LD) {
        if (mode == BPF_ABS || mode == BPF_IND)
            return "legacy BPF_ABS/BPF_IND packet loads are not supported";
        if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
            return "unknown BPF_LD opcode";
        if (in->off)
            return "non-zero offset in lddw";
        if (in->src_reg > BPF_PSEUDO_MAP_IDX_VALUE)
            return "unknown lddw pseudo source (src_reg)";
        return NULL;
    }
    if (cls == BPF_LDX) {
        if (mode != BPF_MEM && mode != BPF_MEMSX)
            return "unknown BPF_LDX mode";
        if (mode == BPF_MEMSX && BPF_SIZE(in->code) == BPF_DW)
            return "sign-extending load of 8 bytes does not exist";
        if (in->imm)
            return "non-zero imm in load";
        return NULL;
    }
    if (cls == BPF_ST) {
        if (mode != BPF_MEM)
            return "unknown BPF_ST mode";
        if (in->src_reg)
            return "non-zero src_reg in store of immediate";
        return NULL;
    }
    /* BPF_STX */
    if (mode == BPF_MEM) {
        if (in->imm)
            return "non-zero imm in store";
        return NULL;
    }
    if (mode != BPF_ATOMIC)
        return "unknown BPF_STX mode";
    if (BPF_SIZE(in->code) != BPF_W && BPF_SIZE(in->code) != BPF_DW)
        return "atomic operations are 32 or 64 bits only";
    if (!atomic_op_known(in->imm))
        return "unknown atomic operation (imm)";
    return NULL;
}

const char *gvm_insn_shape_error(const struct bpf_insn *in)
{
    switch (BPF_CLASS(in->code)) {
    case BPF_ALU: case BPF_ALU64:
        return alu_shape_error(in);
    case BPF_JMP: case BPF_JMP32:
        return jmp_shape_error(in);
    default:
        return mem_shape_error(in);
    }
}

/* ---- registers ------------------------------------------------------- */

/* Which register fields insn reads and writes; -1 when unused. */
struct reg_use {
    int dst_read, dst_write, src_read, src_write;
};

static struct reg_use reg_use_of(const struct bpf_insn *in)
{
    struct reg_use u = { -1, -1, -1, -1 };
    uint8_t cls = BPF_CLASS(in->code);

    switch (cls) {
    case BPF_ALU: case BPF_ALU64:
        u.dst_write = in->dst_reg;
        if (BPF_OP(in->code) != BPF_MOV)
            u.dst_read = in->dst_reg;
        if (BPF_SRC(in->code) == BPF_X && BPF_OP(in->code) != BPF_END)
            u.src_read = in->src_reg;
        break;
    case BPF_JMP: case BPF_JMP32:
        if (BPF_OP(in->code) == BPF_CALL) {
            if (BPF_SRC(in->code) == BPF_X)
                u.dst_read = gvm_callx_reg(in);
        } else if (BPF_OP(in->code) != BPF_JA && BPF_OP(in->code) != BPF_EXIT) {
            u.dst_read = in->dst_reg;
            if (BPF_SRC(in->code) == BPF_X)
                u.src_read = in->src_reg;
        }
        break;
    case BPF_LD:
        u.dst_write = in->dst_reg;
        break;
    case BPF_LDX:
        u.dst_write = in->dst_reg;
        u.src_read = in->src_reg;
        break;
    case BPF_ST:
        u.dst_read = in->dst_reg;
        break;
    case BPF_STX:
        u.dst_read = in->dst_reg;
        u.src_read = in->src_reg;
        if (BPF_MODE(in->code) == BPF_ATOMIC && (in->imm & BPF_FETCH)
            && in->imm != BPF_CMPXCHG)
            u.src_write = in->src_reg;
        break;
    }
    return u;
}

void gvm_insn_reg_use(const struct bpf_insn *in, uint16_t *reads, uint16_t *writes)
{
    struct reg_use u = reg_use_of(in);
    uint16_t r = 0, w = 0;

    if (u.dst_read >= 0) r |= 1u << u.dst_read;
    if (u.src_read >= 0) r |= 1u << u.src_read;
    if (u.dst_write >= 0) w |= 1u << u.dst_write;
    if (u.src_write >= 0) w |= 1u << u.src_write;
    if (BPF_CLASS(in->code) == BPF_JMP && BPF_OP(in->code) == BPF_EXIT)
        r |= 1u << BPF_R0;
    if (BPF_CLASS(in->code) == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC
        && in->imm == BPF_CMPXCHG) {
        r |= 1u << BPF_R0;
        w |= 1u << BPF_R0;
    }
    *reads = r;
    *writes = w;
}

static int check_regs(const struct bpf_insn *in, uint32_t i, struct graft_err *err)
{
    struct reg_use u = reg_use_of(in);
    int regs[4] = { u.dst_read, u.dst_write, u.src_read, u.src_write };

    for (int k = 0; k < 4; k++)
        if (regs[k] > BPF_R10)
            return graft_errf(err, -EINVAL,
                              "insn %u: register r%d does not exist (r0-r10 only)",
                              i, regs[k]);
    if (u.dst_write == BPF_R10 || u.src_write == BPF_R10)
        return graft_errf(err, -EINVAL,
                          "insn %u: writes r10, the read-only frame pointer", i);
    return 0;
}

/* ---- whole-program checks -------------------------------------------- */

struct checker {
    struct gvm_prog *prog;
    uint8_t *second_slot;      /* 1 for the second half of a LD_IMM64 */
    uint8_t *func_start;       /* 1 where a function begins */
    struct graft_err *err;
};

static bool is_uncond_end(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    return (cls == BPF_JMP && (op == BPF_EXIT || op == BPF_JA))
        || (cls == BPF_JMP32 && op == BPF_JA);
}

/* The jump target of insn i, or INT64_MIN when it is not a jump. */
static int64_t jump_target(const struct bpf_insn *in, uint32_t i)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (cls != BPF_JMP && cls != BPF_JMP32)
        return INT64_MIN;
    if (op == BPF_CALL || op == BPF_EXIT)
        return INT64_MIN;
    if (cls == BPF_JMP32 && op == BPF_JA)
        return (int64_t)i + in->imm + 1;
    return (int64_t)i + in->off + 1;
}

static int check_target(struct checker *c, uint32_t i, int64_t t, const char *what)
{
    if (t < 0 || t >= c->prog->n)
        return graft_errf(c->err, -EINVAL,
                          "insn %u: %s target %lld is outside the program (0..%u)",
                          i, what, (long long)t, c->prog->n - 1);
    if (c->second_slot[t])
        return graft_errf(c->err, -EINVAL,
                          "insn %u: %s target %lld is the second half of the lddw at %lld",
                          i, what, (long long)t, (long long)t - 1);
    return 0;
}

/* A kfunc call: ask the environment for the function once, keep it in
 * prog->kfuncs[i] for the engines. */
static int resolve_kfunc(struct checker *c, uint32_t i)
{
    struct gvm_prog *p = c->prog;
    const struct bpf_insn *in = &p->insns[i];

    if (!p->env.resolve_kfunc)
        return graft_errf(c->err, -ENOTSUP,
                          "insn %u: kfunc calls (call kfunc %d) are not supported by this "
                          "environment (no resolver for host functions)", i, in->imm);
    struct graft_err sub;
    graft_err_clear(&sub);
    gvm_helper_fn fn = p->env.resolve_kfunc(p->env.arg, in->imm, &sub);
    if (!fn)
        return graft_errf(c->err, sub.code < 0 ? sub.code : -ENOENT,
                          "insn %u: call kfunc %d: %s", i, in->imm,
                          sub.msg[0] ? sub.msg : "the environment does not resolve it");
    if (!p->kfuncs && !(p->kfuncs = calloc(p->n, sizeof(*p->kfuncs))))
        return graft_errf(c->err, -ENOMEM, "out of memory for the kfunc table");
    p->kfuncs[i] = fn;
    return 0;
}

static int check_call(struct checker *c, uint32_t i)
{
    const struct bpf_insn *in = &c->prog->insns[i];
    const struct gvm_env *env = &c->prog->env;

    if (BPF_SRC(in->code) == BPF_X)
        return 0;
    if (in->src_reg == BPF_PSEUDO_KFUNC_CALL)
        return resolve_kfunc(c, i);
    if (in->src_reg == BPF_PSEUDO_CALL) {
        int64_t t = (int64_t)i + in->imm + 1;
        int r = check_target(c, i, t, "local call");
        if (r)
            return r;
        c->func_start[t] = 1;
        return 0;
    }
    if (in->imm < 0 || in->imm >= BPF_MAX_HELPER_ID)
        return graft_errf(c->err, -EINVAL,
                          "insn %u: helper id %d out of range [0, %d)",
                          i, in->imm, BPF_MAX_HELPER_ID);
    if (in->imm == GVM_HELPER_TAIL_CALL && env->tail_call_target)
        return 0;
    if (!env->helpers || !env->helpers[in->imm])
        return graft_errf(c->err, -ENOENT,
                          "insn %u: call to helper %d, which this environment does not provide",
                          i, in->imm);
    return 0;
}

/* Replace a map-referencing LD_IMM64 at i by the plain value it denotes. */
static int resolve_ld_imm64(struct checker *c, uint32_t i)
{
    struct bpf_insn *in = &c->prog->insns[i];
    const struct gvm_env *env = &c->prog->env;

    if (in->src_reg == 0)
        return 0;
    if (in->src_reg == BPF_PSEUDO_FUNC) {
        if (in[1].imm != 0)
            return graft_errf(c->err, -EINVAL,
                              "insn %u: lddw func reference with non-zero upper half", i);
        int64_t t = (int64_t)i + in->imm + 1;
        int r = check_target(c, i, t, "function reference");
        if (r)
            return r;
        c->func_start[t] = 1;
        return 0;
    }
    if (!env->resolve_ld_imm64)
        return graft_errf(c->err, -EINVAL,
                          "insn %u: lddw with pseudo source %u (map/BTF reference) "
                          "but the environment resolves none; load through the loader",
                          i, in->src_reg);
    uint64_t v = 0;
    struct graft_err sub;
    graft_err_clear(&sub);
    int r = env->resolve_ld_imm64(env->arg, in->src_reg, in->imm, in[1].imm, &v, &sub);
    if (r < 0)
        return graft_errf(c->err, r, "insn %u: lddw pseudo source %u imm %d: %s",
                          i, in->src_reg, in->imm, sub.msg[0] ? sub.msg : "cannot resolve");
    in[0].src_reg = 0;
    in[0].imm = (int32_t)(uint32_t)v;
    in[1].imm = (int32_t)(uint32_t)(v >> 32);
    return 0;
}

/* Pass 1: each instruction alone, and LD_IMM64 pairing. */
static int check_insns(struct checker *c)
{
    struct gvm_prog *p = c->prog;

    for (uint32_t i = 0; i < p->n; i++) {
        const struct bpf_insn *in = &p->insns[i];
        const char *why = gvm_insn_shape_error(in);
        if (why)
            return graft_errf(c->err, -EINVAL, "insn %u (opcode 0x%02x): %s",
                              i, in->code, why);
        int r = check_regs(in, i, c->err);
        if (r)
            return r;
        if (bpf_is_ld_imm64(in)) {
            if (i + 1 >= p->n)
                return graft_errf(c->err, -EINVAL,
                                  "insn %u: lddw is truncated (needs a second slot)", i);
            const struct bpf_insn *n2 = &in[1];
            if (n2->code || n2->dst_reg || n2->src_reg || n2->off)
                return graft_errf(c->err, -EINVAL,
                                  "insn %u: second slot of lddw at %u must be zero "
                                  "except imm", i + 1, i);
            c->second_slot[i + 1] = 1;
            i++;
        }
    }
    return 0;
}

/* Pass 2: targets, calls, and pseudo sources (needs second_slot). */
static int check_targets(struct checker *c)
{
    struct gvm_prog *p = c->prog;

    for (uint32_t i = 0; i < p->n; i++) {
        const struct bpf_insn *in = &p->insns[i];
        int r = 0;
        if (c->second_slot[i])
            continue;
        int64_t t = jump_target(in, i);
        if (t != INT64_MIN)
            r = check_target(c, i, t, "jump");
        else if (BPF_CLASS(in->code) == BPF_JMP && BPF_OP(in->code) == BPF_CALL)
            r = check_call(c, i);
        else if (bpf_is_ld_imm64(in))
            r = resolve_ld_imm64(c, i);
        if (r)
            return r;
    }
    return 0;
}

/* Pass 3: functions: record starts, keep jumps inside, no fall-through. */
static int check_functions(struct checker *c)
{
    struct gvm_prog *p = c->prog;
    uint32_t nf = 0;

    c->func_start[0] = 1;
    for (uint32_t i = 0; i < p->n; i++)
        nf += c->func_start[i];
    p->func_starts = calloc(nf, sizeof(*p->func_starts));
    if (!p->func_starts)
        return graft_errf(c->err, -ENOMEM, "out of memory for %u function starts", nf);
    p->n_funcs = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (c->func_start[i])
            p->func_starts[p->n_funcs++] = i;

    for (uint32_t f = 0; f < p->n_funcs; f++) {
        uint32_t lo = p->func_starts[f];
        uint32_t hi = f + 1 < p->n_funcs ? p->func_starts[f + 1] : p->n;
        if (!is_uncond_end(&p->insns[hi - 1]))
            return graft_errf(c->err, -EINVAL,
                              "insn %u: function starting at %u does not end in exit "
                              "or an unconditional jump (control would fall through)",
                              hi - 1, lo);
        for (uint32_t i = lo; i < hi; i++) {
            if (c->second_slot[i])
                continue;
            int64_t t = jump_target(&p->insns[i], i);
            if (t != INT64_MIN && (t < lo || t >= hi))
                return graft_errf(c->err, -EINVAL,
                                  "insn %u: jump to %lld leaves its function [%u, %u)",
                                  i, (long long)t, lo, hi);
        }
    }
    return 0;
}

uint32_t gvm_func_of(const struct gvm_prog *prog, uint32_t idx)
{
    uint32_t lo = 0, hi = prog->n_funcs;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (prog->func_starts[mid] <= idx)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int check_prog(struct gvm_prog *p, struct graft_err *err)
{
    struct checker c = { .prog = p, .err = err };
    int r = -ENOMEM;

    c.second_slot = calloc(p->n, 1);
    c.func_start = calloc(p->n, 1);
    if (!c.second_slot || !c.func_start) {
        graft_errf(err, r, "out of memory checking %u instructions", p->n);
        goto out;
    }
    r = check_insns(&c);
    if (!r)
        r = check_targets(&c);
    if (!r)
        r = check_functions(&c);
out:
    free(c.second_slot);
    free(c.func_start);
    return r;
}

/* GVM_F_SPECULATIVE: the verifier explores a jump's other side as a
 * misprediction where its outcome is known (speculation.c); a fact TAKEN or
 * NOT_TAKEN says it was known on every real path. The checked interpreter
 * runs the other side of those jumps (interp.c). */
static int mark_spec_jumps(struct gvm_prog *p, const struct gvm_insn_fact *facts,
                           struct graft_err *err)
{
    p->spec_jump = calloc(p->n, 1);
    if (!p->spec_jump)
        return graft_errf(err, -ENOMEM, "out of memory for %u instructions", p->n);
    for (uint32_t i = 0; i < p->n; i++)
        p->spec_jump[i] = (facts[i].flags & (GVM_FACT_TAKEN | GVM_FACT_NOT_TAKEN)) != 0;
    return 0;
}

int gvm_prog_create(const struct bpf_insn *insns, uint32_t n,
                    const struct gvm_prog_opts *opts, struct gvm_prog **out,
                    struct graft_err *err)
{
    struct gvm_prog_opts o = { .sz = sizeof(o) };
    int r;

    *out = NULL;
    if (opts) {
        if (opts->sz < offsetof(struct gvm_prog_opts, env) + sizeof(opts->env))
            return graft_errf(err, -EINVAL,
                              "gvm_prog_opts.sz is %zu, expected at least %zu",
                              opts->sz, sizeof(o));
        memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
    }
    if (!insns || n == 0)
        return graft_errf(err, -EINVAL, "empty program (0 instructions)");
    if (n > BPF_MAX_INSNS)
        return graft_errf(err, -E2BIG, "program has %u instructions, limit is %u",
                          n, BPF_MAX_INSNS);
    if (o.engine != GVM_ENGINE_JIT && o.engine != GVM_ENGINE_INTERP)
        return graft_errf(err, -EINVAL, "unknown engine %d", (int)o.engine);
    if (o.flags & ~(GVM_F_CHECKED | GVM_F_SPECULATIVE))
        return graft_errf(err, -EINVAL, "unknown flags 0x%x", o.flags & ~(GVM_F_CHECKED | GVM_F_SPECULATIVE));
    if ((o.flags & GVM_F_SPECULATIVE) && (!(o.flags & GVM_F_CHECKED) || !o.facts))
        return graft_errf(err, -EINVAL, "GVM_F_SPECULATIVE needs GVM_F_CHECKED and the verifier's facts");

    if (!o.desc_alloc != !o.desc_free)
        return graft_errf(err, -EINVAL, "gvm_prog_opts: desc_alloc and desc_free go together");
    struct gvm_prog *p = o.desc_alloc ? o.desc_alloc(sizeof(*p), o.desc_arg)
                                      : calloc(1, sizeof(*p));
    if (!p)
        return graft_errf(err, -ENOMEM, "out of memory for program");
    p->desc_free = o.desc_free;
    p->desc_arg = o.desc_arg;
    p->insns = malloc((size_t)n * sizeof(*insns));
    if (!p->insns) {
        gvm_prog_free(p);
        return graft_errf(err, -ENOMEM, "out of memory for %u instructions", n);
    }
    memcpy(p->insns, insns, (size_t)n * sizeof(*insns));
    p->n = n;
    if (o.env)
        p->env = *o.env;
    /* The checked mode exists only in the interpreter. */
    p->engine = (o.flags & GVM_F_CHECKED) ? GVM_ENGINE_INTERP : o.engine;
    p->flags = o.flags;
    p->step_limit = o.step_limit ? o.step_limit : 10000000;

    r = check_prog(p, err);
    if (!r && o.facts && o.n_facts != n)
        r = graft_errf(err, -EINVAL, "gvm_prog_opts: %u facts for %u instructions", o.n_facts, n);
    if (!r && (o.flags & GVM_F_SPECULATIVE))
        r = mark_spec_jumps(p, o.facts, err);
    if (!r && p->engine == GVM_ENGINE_JIT && o.facts)
        p->facts_rewritten = (uint32_t)gvm_apply_facts(p->insns, n, o.facts);
    if (!r && p->engine == GVM_ENGINE_JIT)
        r = gvm_jit_compile(p, err);
    if (r) {
        gvm_prog_free(p);
        return r;
    }
    *out = p;
    return 0;
}

void gvm_prog_free(struct gvm_prog *prog)
{
    if (!prog)
        return;
    if (prog->engine == GVM_ENGINE_JIT)
        gvm_jit_release(prog);
    free(prog->func_starts);
    free(prog->kfuncs);
    free(prog->spec_jump);
    free(prog->insns);
    if (prog->desc_free)
        prog->desc_free(prog, sizeof(*prog), prog->desc_arg);
    else
        free(prog);
}

int gvm_prog_run(const struct gvm_prog *prog, void *ctx, uint64_t ctx_len,
                 uint64_t *ret, struct graft_err *err)
{
    if (prog->engine == GVM_ENGINE_JIT && prog->jit_fn) {
        *ret = prog->jit_fn(ctx, ctx_len);
        return 0;
    }
    return gvm_interp_run(prog, ctx, ctx_len, ret, err);
}

gvm_native_fn gvm_prog_native(const struct gvm_prog *prog)
{
    return prog->engine == GVM_ENGINE_JIT ? prog->jit_fn : NULL;
}

enum gvm_engine gvm_prog_engine(const struct gvm_prog *prog)
{
    return prog->engine;
}

uint32_t gvm_prog_len(const struct gvm_prog *prog)
{
    return prog->n;
}

size_t gvm_prog_code_size(const struct gvm_prog *prog)
{
    return prog->engine == GVM_ENGINE_JIT ? prog->jit_code_size : 0;
}

uint32_t gvm_prog_facts_rewritten(const struct gvm_prog *prog)
{
    return prog->facts_rewritten;
}

const void *gvm_prog_code(const struct gvm_prog *prog)
{
    return prog->engine == GVM_ENGINE_JIT ? prog->jit_code : NULL;
}
