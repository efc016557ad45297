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

    uint32_t *func_starts;     /* first insn of each function, [0] = 0, sorted */
    uint32_t n_funcs;

    void *jit_code;            /* mapping holding the machine code (RX) */
    size_t jit_map_size;       /* bytes mapped */
    size_t jit_code_size;      /* bytes of machine code */
    gvm_native_fn jit_fn;
};

/* interp.c */
int gvm_interp_run(const struct gvm_prog *prog, void *ctx, uint64_t ctx_len,
                   uint64_t *ret, struct graft_err *err);

/* jit_x86.c: compile prog->insns into prog->jit_code/jit_fn. */
int gvm_jit_compile(struct gvm_prog *prog, struct graft_err *err);
void gvm_jit_release(struct gvm_prog *prog);

/* Index of the function containing insn idx, by binary search of func_starts. */
uint32_t gvm_func_of(const struct gvm_prog *prog, uint32_t idx);

#endif
