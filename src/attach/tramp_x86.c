/*
 * tramp_x86.c - the shared x86-64 trampoline bodies, in assembly.
 *
 * A per-site stub (tramp_reloc.c) does `lea rsp,[rsp-128]` (skip a possible
 * red zone), pushes its struct gsite pointer and jumps to one of the entry
 * bodies here. The body saves every general register into a struct
 * graft_pt_regs on the stack (plus xmm registers), calls graft_hook_enter()
 * with a 16-byte aligned stack, restores the registers (regs->ax may have
 * been set to an override value) and jumps through the pushed slot, which
 * now holds the continuation: the stub's relocated original instructions, or
 * graft_tramp_skip to return straight to the caller.
 *
 * graft_tramp_ret is the return address planted by return probes: the
 * probed function `ret`s into it; it saves the return registers, asks
 * graft_hook_return() for the real return address (popped off the shadow
 * stack) and returns there.
 *
 * Only lea/mov/push/pop touch the stack before flags are saved, so flags are
 * preserved; the "mid" variant (probes not at a function entry) also
 * restores flags and all 16 xmm registers, which the entry variant may skip
 * because the ABI makes them dead at a call boundary.
 */
#include "attach/func_internal.h"

#define S_(x) #x
#define S(x) S_(x)

_Static_assert(sizeof(struct graft_pt_regs) == 168, "pt_regs layout");
_Static_assert(offsetof(struct graft_pt_regs, flags) == 144, "pt_regs layout");
_Static_assert(GF_ORIG_SP == 560, "frame layout");

__asm__(
    ".text\n"
    ".macro GSAVE_GPRS\n"
    "  mov %r15, 256+0(%rsp)\n"
    "  mov %r14, 256+8(%rsp)\n"
    "  mov %r13, 256+16(%rsp)\n"
    "  mov %r12, 256+24(%rsp)\n"
    "  mov %rbp, 256+32(%rsp)\n"
    "  mov %rbx, 256+40(%rsp)\n"
    "  mov %r11, 256+48(%rsp)\n"
    "  mov %r10, 256+56(%rsp)\n"
    "  mov %r9,  256+64(%rsp)\n"
    "  mov %r8,  256+72(%rsp)\n"
    "  mov %rax, 256+80(%rsp)\n"
    "  mov %rcx, 256+88(%rsp)\n"
    "  mov %rdx, 256+96(%rsp)\n"
    "  mov %rsi, 256+104(%rsp)\n"
    "  mov %rdi, 256+112(%rsp)\n"
    "  movq $-1, 256+120(%rsp)\n"
    "  movq $0x33, 256+136(%rsp)\n"
    "  movq $0x2b, 256+160(%rsp)\n"
    ".endm\n"
    ".macro GRESTORE_GPRS\n"
    "  mov 256+0(%rsp), %r15\n"
    "  mov 256+8(%rsp), %r14\n"
    "  mov 256+16(%rsp), %r13\n"
    "  mov 256+24(%rsp), %r12\n"
    "  mov 256+32(%rsp), %rbp\n"
    "  mov 256+40(%rsp), %rbx\n"
    "  mov 256+48(%rsp), %r11\n"
    "  mov 256+56(%rsp), %r10\n"
    "  mov 256+64(%rsp), %r9\n"
    "  mov 256+72(%rsp), %r8\n"
    "  mov 256+80(%rsp), %rax\n"
    "  mov 256+88(%rsp), %rcx\n"
    "  mov 256+96(%rsp), %rdx\n"
    "  mov 256+104(%rsp), %rsi\n"
    "  mov 256+112(%rsp), %rdi\n"
    ".endm\n"
    ".macro GENTRY name, full\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  lea -" S(GF_SIZE) "(%rsp), %rsp\n"
    "  .if \\full\n"
    "  pushfq\n"
    "  popq 256+144(%rsp)\n"
    "  .else\n"                 /* flags are dead at a call: skip pushfq */
    "  movq $0x202, 256+144(%rsp)\n"
    "  .endif\n"
    "  GSAVE_GPRS\n"
    "  lea " S(GF_ORIG_SP) "(%rsp), %rax\n"
    "  mov %rax, 256+152(%rsp)\n"
    "  movups %xmm0, 0(%rsp)\n  movups %xmm1, 16(%rsp)\n"
    "  movups %xmm2, 32(%rsp)\n  movups %xmm3, 48(%rsp)\n"
    "  movups %xmm4, 64(%rsp)\n  movups %xmm5, 80(%rsp)\n"
    "  movups %xmm6, 96(%rsp)\n  movups %xmm7, 112(%rsp)\n"
    "  .if \\full\n"
    "  movups %xmm8, 128(%rsp)\n  movups %xmm9, 144(%rsp)\n"
    "  movups %xmm10, 160(%rsp)\n  movups %xmm11, 176(%rsp)\n"
    "  movups %xmm12, 192(%rsp)\n  movups %xmm13, 208(%rsp)\n"
    "  movups %xmm14, 224(%rsp)\n  movups %xmm15, 240(%rsp)\n"
    "  cld\n"
    "  .endif\n"
    "  mov %rsp, %rbx\n"
    "  lea 256(%rsp), %rdi\n"
    "  mov " S(GF_SLOT) "(%rsp), %rsi\n"
    "  and $-16, %rsp\n"
    "  call graft_hook_enter\n"
    "  mov %rbx, %rsp\n"
    "  mov %rax, " S(GF_SLOT) "(%rsp)\n"
    "  movups 0(%rsp), %xmm0\n  movups 16(%rsp), %xmm1\n"
    "  movups 32(%rsp), %xmm2\n  movups 48(%rsp), %xmm3\n"
    "  movups 64(%rsp), %xmm4\n  movups 80(%rsp), %xmm5\n"
    "  movups 96(%rsp), %xmm6\n  movups 112(%rsp), %xmm7\n"
    "  .if \\full\n"
    "  movups 128(%rsp), %xmm8\n  movups 144(%rsp), %xmm9\n"
    "  movups 160(%rsp), %xmm10\n  movups 176(%rsp), %xmm11\n"
    "  movups 192(%rsp), %xmm12\n  movups 208(%rsp), %xmm13\n"
    "  movups 224(%rsp), %xmm14\n  movups 240(%rsp), %xmm15\n"
    "  pushq 256+144(%rsp)\n"
    "  popfq\n"
    "  .endif\n"
    "  GRESTORE_GPRS\n"
    "  lea " S(GF_SLOT) "(%rsp), %rsp\n"
    "  jmp *(%rsp)\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    "GENTRY graft_tramp_entry_fn, 0\n"
    "GENTRY graft_tramp_entry_mid, 1\n"

    /* The stub's slot and gap are still on the stack: drop them and return
     * to the caller with the override value already in rax. */
    "  .globl graft_tramp_skip\n"
    "  .hidden graft_tramp_skip\n"
    "  .type graft_tramp_skip, @function\n"
    "  .p2align 4\n"
    "graft_tramp_skip:\n"
    "  lea 136(%rsp), %rsp\n"
    "  ret\n"
    "  .size graft_tramp_skip, .-graft_tramp_skip\n"

    /* Entered by the probed function's `ret`: rsp is one past the slot that
     * held our address. Push a placeholder there for the real address. */
    "  .globl graft_tramp_ret\n"
    "  .hidden graft_tramp_ret\n"
    "  .type graft_tramp_ret, @function\n"
    "  .p2align 4\n"
    "graft_tramp_ret:\n"
    "  pushq $0\n"
    "  lea -" S(GF_SIZE) "(%rsp), %rsp\n"
    "  movq $0x202, 256+144(%rsp)\n"   /* flags are dead after a return */
    "  GSAVE_GPRS\n"
    "  lea " S(GF_SLOT) "+8(%rsp), %rax\n"
    "  mov %rax, 256+152(%rsp)\n"
    "  movups %xmm0, 0(%rsp)\n  movups %xmm1, 16(%rsp)\n"
    "  mov %rsp, %rbx\n"
    "  lea 256(%rsp), %rdi\n"
    "  lea " S(GF_SLOT) "(%rsp), %rsi\n"
    "  and $-16, %rsp\n"
    "  call graft_hook_return\n"
    "  mov %rbx, %rsp\n"
    "  mov %rax, " S(GF_SLOT) "(%rsp)\n"
    "  movups 0(%rsp), %xmm0\n  movups 16(%rsp), %xmm1\n"
    "  GRESTORE_GPRS\n"
    "  lea " S(GF_SLOT) "(%rsp), %rsp\n"
    "  ret\n"
    "  .size graft_tramp_ret, .-graft_tramp_ret\n"
);
