/*
 * bench_jit.h - JIT a BPF program with graft's helper table for a
 * benchmark's tight loop, or exit with the reason. Header-only, like
 * bench_util.h; the including benchmark links graft's vm and helpers.
 */
#ifndef GRAFT_BENCH_JIT_H
#define GRAFT_BENCH_JIT_H

#include <stdio.h>
#include <stdlib.h>

#include "helpers/helpers.h"
#include "vm/vm.h"

static inline gvm_native_fn bench_jit(const struct bpf_insn *insns, uint32_t n, struct gvm_prog **prog)
{
    static struct gvm_env env;
    env.helpers = ghelper_table();
    env.helper_inline = ghelper_inline_table();   /* as the runtime's programs */
    struct gvm_prog_opts po = {.sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env};
    struct graft_err err = {0};
    if (gvm_prog_create(insns, n, &po, prog, &err) < 0) {
        fprintf(stderr, "gvm_prog_create: %s\n", err.msg);
        exit(1);
    }
    gvm_native_fn fn = gvm_prog_native(*prog);
    if (!fn) {
        fprintf(stderr, "no JIT entry\n");
        exit(1);
    }
    return fn;
}

#endif
