/*
 * vm_internal.h - what vm.c, the interpreter and the JIT share. Not for use
 * outside src/vm/.
 */
#ifndef GRAFT_VM_INTERNAL_H
#define GRAFT_VM_INTERNAL_H

#include "vm/vm.h"

struct gvm_prog {
    struct bpf_insn *insns;    /* copy; LD_IMM64 pseudo map sources already
                                * resolved to plain values (src_reg 0);
                                * BPF_PSEUDO_FUNC kept for the engines */
    uint32_t n;
    struct gvm_env env;
    enum gvm_engine engine;
    uint32_t flags;
    uint64_t step_limit;

    gvm_helper_fn *kfuncs;     /* per insn: the resolved target of a kfunc
                                * call at that index, else NULL; NULL when
                                * the program makes no kfunc calls */

    uint32_t *func_starts;     /* first insn of each function, [0] = 0, sorted */
    uint32_t n_funcs;

    void *jit_code;            /* mapping holding the machine code (RX) */
    size_t jit_map_size;       /* bytes mapped */
    size_t jit_code_size;      /* bytes of machine code */
    gvm_native_fn jit_fn;
    uint32_t facts_rewritten;  /* insns the verifier's facts rewrote (jit_facts.c) */
    uint8_t *spec_jump;        /* GVM_F_SPECULATIVE: per insn, 1 at a jump whose other
                                * side the verifier explored as a misprediction */

    void (*desc_free)(void *p, size_t size, void *arg);   /* gvm_prog_opts */
    void *desc_arg;
};

/* interp.c */
int gvm_interp_run(const struct gvm_prog *prog, void *ctx, uint64_t ctx_len,
                   uint64_t *ret, struct graft_err *err);

/* interp.c: run the function at fn (an address inside the program the
 * interpreter is running on this thread, as BPF_PSEUDO_FUNC gives it) with
 * r1-r5 = a1-a5 in fresh frames. -ESRCH when no interpreted run is active
 * on this thread, -EINVAL when fn is not a function of that program. */
int gvm_interp_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3,
                    uint64_t a4, uint64_t a5, uint64_t *ret);

/* jit_x86.c: compile prog->insns into prog->jit_code/jit_fn. */
int gvm_jit_compile(struct gvm_prog *prog, struct graft_err *err);
void gvm_jit_release(struct gvm_prog *prog);

/* Index of the function containing insn idx, by binary search of func_starts. */
uint32_t gvm_func_of(const struct gvm_prog *prog, uint32_t idx);

/* vm.c: NULL when insn is a known opcode whose unused fields are zero (the
 * one canonical encoding the assembler produces), else why not. Registers
 * are not range-checked here; gvm_prog_create does that. */
const char *gvm_insn_shape_error(const struct bpf_insn *insn);

/* vm.c: registers insn reads and writes, as bit masks (bit n = rn). Exit
 * reads r0; cmpxchg reads and writes r0; calls list only callx's register
 * (the helper/callee argument and clobber rules are the caller's to apply). */
void gvm_insn_reg_use(const struct bpf_insn *insn, uint16_t *reads, uint16_t *writes);

/* The helper id of bpf_tail_call. When env->tail_call_target is set the
 * engines handle it themselves instead of calling env->helpers[12]. */
#define GVM_HELPER_TAIL_CALL 12

/* r0 after a bpf_tail_call that did not jump (no target, or more than
 * BPF_MAX_TAIL_CALLS): both engines set it to -ENOENT so they agree. */
#define GVM_TAIL_CALL_FAIL_R0 ((uint64_t)(int64_t)-2)

/* callx (BPF_JMP|BPF_CALL|BPF_X): the register holding the target. LLVM
 * now puts it in dst_reg; older LLVM put it in imm (dst_reg 0). */
static inline uint8_t gvm_callx_reg(const struct bpf_insn *insn)
{
    return insn->dst_reg ? insn->dst_reg : (uint8_t)insn->imm;
}

/* Interpreter: the value a LD_IMM64 BPF_PSEUDO_FUNC produces (and callx
 * accepts) is the address of the function's first instruction in
 * prog->insns. A callx value below BPF_MAX_HELPER_ID is a helper id. */

#endif
