/*
 * syscall_raw.c - graft_sys_raw6(), the system call graft's own C code
 * makes (dispatcher, scanner, seccomp handler, thread state), and the
 * section that holds every syscall instruction graft executes.
 *
 * The scanner must never rewrite those instructions and the seccomp
 * filter lets exactly them through, so they all live in one section,
 * GSYS_TEXT_SECTION: this function and the trampoline's assembly
 * (syscall_tramp.c) put their code there, and the linker's
 * __start_/__stop_ symbols for it bound the range (syscall_hook.h,
 * graft_sys_text_start/end). Keeping this function apart from the
 * trampoline lets the dispatcher, which the trampoline calls, make its
 * syscalls without depending on the trampoline's file: a leaf.
 */
#include "attach/syscall_hook.h"

/* long graft_sys_raw6(nr, a0..a5): the kernel's argument registers; the
 * instruction after the syscall is inside the section (the seccomp filter
 * checks the address after it). */
__asm__(
    ".pushsection " GSYS_TEXT_SECTION ",\"ax\",@progbits\n"
    ".globl graft_sys_raw6\n .hidden graft_sys_raw6\n"
    ".type graft_sys_raw6, @function\n"
    "graft_sys_raw6:\n"
    "  mov %rdi, %rax\n"
    "  mov %rsi, %rdi\n"
    "  mov %rdx, %rsi\n"
    "  mov %rcx, %rdx\n"
    "  mov %r8, %r10\n"
    "  mov %r9, %r8\n"
    "  mov 8(%rsp), %r9\n"
    "  syscall\n"
    "  ret\n"
    ".size graft_sys_raw6, .-graft_sys_raw6\n"
    ".popsection\n");
