/* test_util.h - tiny assertion helpers and asm-to-prog shortcuts for the VM tests. */
#ifndef GRAFT_TESTS_VM_TEST_UTIL_H
#define GRAFT_TESTS_VM_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"
#include "tfail.h"

/* Assemble text and create a program; returns 0 or the create error. */
static inline int make_prog(const char *text, const struct gvm_env *env, enum gvm_engine engine,
                            uint32_t flags, uint64_t step_limit, struct gvm_prog **out,
                            struct graft_err *err)
{
    struct bpf_insn *insns;
    uint32_t n;
    int r = gvm_asm(text, &insns, &n, err);
    if (r)
        return r;
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = engine, .flags = flags,
                               .step_limit = step_limit, .env = env };
    r = gvm_prog_create(insns, n, &o, out, err);
    free(insns);
    return r;
}

#endif
