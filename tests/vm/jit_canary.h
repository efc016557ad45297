/*
 * jit_canary.h - call JIT'd code from C with a canary in every callee-saved
 * register (rbx rbp r12-r15) and report which it did not give back: the
 * JIT's frames must save each register they use (test_jit_opt.c,
 * fuzz_diff.c). One definition per test executable (include it once).
 */
#ifndef GRAFT_TESTS_JIT_CANARY_H
#define GRAFT_TESTS_JIT_CANARY_H

#include <stdint.h>

#include "vm/vm.h"

/* fn(ctx, len) called with rbx rbp r12-r15 set to canaries; *changed gets
 * bit k set when the k-th of them (that order) differs on return. */
uint64_t jit_call_canaries(gvm_native_fn fn, void *ctx, uint64_t len, uint64_t *changed);
#define CANARY_CHECK(reg, val, bit) \
    "\tmovabs $" #val ", %r8\n\tcmp %r8, %" #reg "\n\tje 1f\n\tor $" #bit ", %r9\n1:\n"
__asm__(".text\n.globl jit_call_canaries\n.type jit_call_canaries, @function\n"
        "jit_call_canaries:\n"
        "\tpush %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n"
        "\tpush %rcx\n"                      /* 7 pushes: rsp 16-aligned at the call */
        "\tmov %rdi, %rax\n\tmov %rsi, %rdi\n\tmov %rdx, %rsi\n"
        "\tmovabs $0x5b5b5b5b5b5b5b01, %rbx\n\tmovabs $0x5b5b5b5b5b5b5b02, %rbp\n"
        "\tmovabs $0x5b5b5b5b5b5b5b03, %r12\n\tmovabs $0x5b5b5b5b5b5b5b04, %r13\n"
        "\tmovabs $0x5b5b5b5b5b5b5b05, %r14\n\tmovabs $0x5b5b5b5b5b5b5b06, %r15\n"
        "\tcall *%rax\n\tpop %rcx\n\txor %r9d, %r9d\n"
        CANARY_CHECK(rbx, 0x5b5b5b5b5b5b5b01, 1) CANARY_CHECK(rbp, 0x5b5b5b5b5b5b5b02, 2)
        CANARY_CHECK(r12, 0x5b5b5b5b5b5b5b03, 4) CANARY_CHECK(r13, 0x5b5b5b5b5b5b5b04, 8)
        CANARY_CHECK(r14, 0x5b5b5b5b5b5b5b05, 16) CANARY_CHECK(r15, 0x5b5b5b5b5b5b5b06, 32)
        "\tmov %r9, (%rcx)\n"
        "\tpop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\tret\n"
        ".size jit_call_canaries, .-jit_call_canaries\n");

#endif
