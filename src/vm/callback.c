/*
 * callback.c - run a BPF function of the running program from a helper
 * (bpf_loop, bpf_for_each_map_elem): gvm_invoke_callback().
 *
 * A callback is a value LD_IMM64 BPF_PSEUDO_FUNC produced. Under the
 * interpreter it is the address of the function's first instruction, so we
 * find the program the interpreter is running on this thread and run the
 * function there (interp.c). Under the JIT it is the function's code
 * address, and we call it through a stub shaped exactly like the JIT's entry
 * wrapper (jit_x86.c, emit_wrapper): the same six saved registers, the same
 * 8-byte pad and r12 (the run state) = 0. That sameness matters: if the
 * callback aborts (call depth, bad callx), the JIT's abort stub unwinds to
 * "the wrapper's frame" by counting frames and returns through the wrapper's
 * epilogue - which, with this stub's identical frame, returns to our caller.
 */
#include <errno.h>

#include "vm/vm_internal.h"

uint64_t gvm_jit_invoke(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3,
                        uint64_t a4, uint64_t a5);

__asm__(".text\n"
        ".globl gvm_jit_invoke\n"
        ".type gvm_jit_invoke, @function\n"
        "gvm_jit_invoke:\n"
        "    push %rbx\n"
        "    push %rbp\n"
        "    push %r12\n"
        "    push %r13\n"
        "    push %r14\n"
        "    push %r15\n"
        "    sub $8, %rsp\n"
        "    xor %r12d, %r12d\n"
        "    mov %rdi, %rax\n"       /* fn; BPF r1-r5 are rdi rsi rdx rcx r8 */
        "    mov %rsi, %rdi\n"
        "    mov %rdx, %rsi\n"
        "    mov %rcx, %rdx\n"
        "    mov %r8, %rcx\n"
        "    mov %r9, %r8\n"
        "    call *%rax\n"
        "    add $8, %rsp\n"
        "    pop %r15\n"
        "    pop %r14\n"
        "    pop %r13\n"
        "    pop %r12\n"
        "    pop %rbp\n"
        "    pop %rbx\n"
        "    ret\n"
        ".size gvm_jit_invoke, .-gvm_jit_invoke\n");

uint64_t gvm_invoke_callback(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3,
                             uint64_t a4, uint64_t a5)
{
    uint64_t r0;
    int rc = gvm_interp_call(fn, a1, a2, a3, a4, a5, &r0);
    if (rc == 0)
        return r0;
    if (rc == -ESRCH)              /* no interpreted run on this thread: JIT code */
        return gvm_jit_invoke(fn, a1, a2, a3, a4, a5);
    return (uint64_t)(int64_t)rc;
}
