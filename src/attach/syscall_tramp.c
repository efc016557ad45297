/*
 * syscall_tramp.c - the zpoline trampoline: page 0 and the assembly that a
 * rewritten `call *%rax` reaches. Its syscall instructions are in graft's
 * syscall section (GSYS_TEXT_SECTION, next to graft_sys_raw6 of
 * syscall_raw.c), which the scanner skips and the seccomp filter allows.
 *
 * A rewritten site `ff d0` (call *%rax) pushes its return address and jumps
 * to address rax = the syscall number. Page 0 holds a sled that carries any
 * such address to a jump to graft_sys_entry (fill_page0 has the layout):
 * four or five jle/jg jumps, then a few 5-byte cmp instructions, not the
 * ~470 NOPs plain zpoline would run for getpid.
 *
 * graft_sys_entry: if graft_sys_hooked[nr] is 0 the syscall runs right
 * there and returns (no program, nothing special). If it is GSYS_H_FAST,
 * the one program of nr is an enter program that calls nothing: FAST_PATH
 * pushes its context, calls it and makes the syscall, all in assembly (the
 * only other place programs are called is syscall_dispatch.c's run_list;
 * the fast path is never used when programs are isolated). If it is
 * GSYS_H_CALLS (or the link read says the program calls out), CALLS_PATH
 * does the same with a pt_regs record, xmm0-15 saved and the helpers' run
 * state set, and honours bpf_override_return (without the xmm save when
 * the link's keeps_fp says every helper the program calls leaves the
 * vector registers alone, util/fpsafe.h); for GSYS_H_PAIR (one enter
 * and one exit program, e.g. syscount) PAIR_PATH runs the same enter half
 * (ENTER_HALF), makes the syscall with its frame kept and runs the exit
 * program after it. Else the
 * slow path skips the caller's red zone (128 bytes, minus the 8 the call
 * already overwrote - that is the technique's known limit), saves the
 * argument registers, rbx and xmm0-15 and calls graft_sys_dispatch(frame),
 * which returns an action:
 *   RETURN     frame->ret goes to rax, registers restored, ret.
 *   SIGRETURN  rt_sigreturn must see the caller's stack: rsp is put back and
 *              the syscall runs in place; it does not return.
 *   CLONE      C has put {nr, return address} on top of the child's new
 *              stack and lowered the stack argument by 16; the child pops
 *              nr and goes through graft_sys_exit_entry, which returns to
 *              the caller's code on its own stack; the parent continues.
 *   VFORK      parent and child share the stack, and the child would
 *              overwrite a frame kept below the caller's rsp, so the return
 *              address goes to a thread-local slot, rsp is put back before
 *              the syscall and both processes re-push it afterwards.
 * graft_sys_exit_entry ([rsp] = return address, rax = result, r11 = nr)
 * builds the same frame and runs only the exit programs.
 *
 * The kernel preserves every register but rax, rcx, r11 across a syscall;
 * so does this code for the general-purpose registers and xmm0-15. The upper
 * halves of ymm/zmm are not saved (see docs/syscalls.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attach/syscall_hook.h"
#include "helpers/helpers.h"

__thread uint64_t graft_sys_vfork_ret
    __attribute__((tls_model("initial-exec"))) GSYS_HIDDEN;

#define XMM_SAVE \
    "movups %xmm0, 0(%rsp)\n movups %xmm1, 16(%rsp)\n movups %xmm2, 32(%rsp)\n" \
    "movups %xmm3, 48(%rsp)\n movups %xmm4, 64(%rsp)\n movups %xmm5, 80(%rsp)\n" \
    "movups %xmm6, 96(%rsp)\n movups %xmm7, 112(%rsp)\n movups %xmm8, 128(%rsp)\n" \
    "movups %xmm9, 144(%rsp)\n movups %xmm10, 160(%rsp)\n movups %xmm11, 176(%rsp)\n" \
    "movups %xmm12, 192(%rsp)\n movups %xmm13, 208(%rsp)\n movups %xmm14, 224(%rsp)\n" \
    "movups %xmm15, 240(%rsp)\n"
#define XMM_LOAD \
    "movups 0(%rsp), %xmm0\n movups 16(%rsp), %xmm1\n movups 32(%rsp), %xmm2\n" \
    "movups 48(%rsp), %xmm3\n movups 64(%rsp), %xmm4\n movups 80(%rsp), %xmm5\n" \
    "movups 96(%rsp), %xmm6\n movups 112(%rsp), %xmm7\n movups 128(%rsp), %xmm8\n" \
    "movups 144(%rsp), %xmm9\n movups 160(%rsp), %xmm10\n movups 176(%rsp), %xmm11\n" \
    "movups 192(%rsp), %xmm12\n movups 208(%rsp), %xmm13\n movups 224(%rsp), %xmm14\n" \
    "movups 240(%rsp), %xmm15\n"
/* rbx = frame. Call fn(frame) on an aligned stack with xmm0-15 saved. */
#define CALL_C(fn) \
    "and $-16, %rsp\n sub $256, %rsp\n" XMM_SAVE \
    "mov %rbx, %rdi\n call " fn "\n" XMM_LOAD "mov %rbx, %rsp\n"
#define LOAD_ARGS \
    "mov 0(%rbx), %rdi\n mov 8(%rbx), %rsi\n mov 16(%rbx), %rdx\n" \
    "mov 24(%rbx), %r10\n mov 32(%rbx), %r8\n mov 40(%rbx), %r9\n mov 48(%rbx), %rax\n"

#define STR_(x) #x
#define STR(x) STR_(x)
#define TLS_SET(var, val) \
    "  mov " var "@gottpoff(%rip), %rcx\n  movl $" val ", %fs:(%rcx)\n"
/* Skip the red zone as the slow path does; rbp = frame base; aligned. */
#define FAST_FRAME \
    "  sub $0x80, %rsp\n  push %rbp\n  mov %rsp, %rbp\n  and $-16, %rsp\n"
/* struct graft_pt_regs as the kernel's x86-64 layout, lowest address first
 * (pushes go down: pad, then ss ... r15): orig_ax = rax, the arguments,
 * ax = -ENOSYS, bx = the caller's rbx, everything else 0. 176 bytes. */
#define PUSH_PT_REGS PUSH_PT_REGS_PAD("$0")
#define PUSH_PT_REGS_PAD(pad) \
    "  pushq " pad "\n push $0\n push $0\n push $0\n push $0\n push $0\n"  /* pad ss sp flags cs ip */ \
    "  push %rax\n push %rdi\n push %rsi\n push %rdx\n"               /* orig_ax di si dx */ \
    "  push $0\n push $-38\n push %r8\n push %r9\n push %r10\n"        /* cx ax=-ENOSYS r8 r9 r10 */ \
    "  push $0\n push %rbx\n push $0\n push $0\n push $0\n push $0\n push $0\n" /* r11 bx bp r12-15 */
/* One enter program that calls nothing (GSYS_H_FAST): push its context,
 * which doubles as the save area of the registers a C call may clobber
 * (the handler promised not to write it), call it with gsys_in_hook set,
 * reload the registers, make the syscall. No xmm save, no
 * ghelper_run_state(), no C. rax = nr; r11 = the link. */
#define FAST_PATH \
    "  mov gsys_in_hook@gottpoff(%rip), %r11\n" \
    "  cmpl $0, %fs:(%r11)\n" \
    "  jne 0b\n"                          /* inside a program: no programs */ \
    "  lea graft_sys_fast(%rip), %r11\n" \
    "  mov (%r11,%rax,8), %r11\n" \
    "  test %r11, %r11\n" \
    "  jz 9f\n"                           /* changing right now */ \
    "  cmpl $0, " STR(GSYS_LINK_OFF_CALLS_NOTHING) "(%r11)\n" \
    "  je 8f\n"                           /* calls out: CALLS_PATH */ \
    "  cmpl $2, " STR(GSYS_LINK_OFF_KIND) "(%r11)\n"   /* GSYS_RAW_ENTER */ \
    "  je 2f\n" \
    /* tracepoint sys_enter, 64 bytes: trace_entry {0, 0, 0, tid}, id, args[6] */ \
    "  mov gsys_tid@gottpoff(%rip), %rcx\n" \
    "  mov %fs:(%rcx), %ecx\n" \
    "  test %ecx, %ecx\n" \
    "  jz 9f\n"                           /* first on this thread: C caches it */ \
    FAST_FRAME \
    "  push %r9\n push %r8\n push %r10\n push %rdx\n push %rsi\n push %rdi\n push %rax\n" \
    "  shl $32, %rcx\n push %rcx\n" \
    "  mov $64, %esi\n" \
    "  mov %rsp, %rdi\n" \
    TLS_SET("gsys_in_hook", "1") \
    "  call *" STR(GSYS_LINK_OFF_FN) "(%r11)\n" \
    "  mov 8(%rsp), %rax\n  mov 16(%rsp), %rdi\n  mov 24(%rsp), %rsi\n" \
    "  mov 32(%rsp), %rdx\n  mov 40(%rsp), %r10\n  mov 48(%rsp), %r8\n" \
    "  mov 56(%rsp), %r9\n" \
    "  jmp 3f\n" \
    /* raw sys_enter: {&regs, nr} on top of a struct graft_pt_regs (pad,
     * then ss first: pushes go down) */ \
    "2:\n" \
    FAST_FRAME \
    PUSH_PT_REGS \
    "  mov %rsp, %rcx\n push %rax\n push %rcx\n" \
    "  mov $16, %esi\n" \
    "  mov %rsp, %rdi\n" \
    TLS_SET("gsys_in_hook", "1") \
    "  call *" STR(GSYS_LINK_OFF_FN) "(%r11)\n" \
    "  mov 16+120(%rsp), %rax\n  mov 16+112(%rsp), %rdi\n  mov 16+104(%rsp), %rsi\n" \
    "  mov 16+96(%rsp), %rdx\n  mov 16+56(%rsp), %r10\n  mov 16+72(%rsp), %r8\n" \
    "  mov 16+64(%rsp), %r9\n" \
    "3:\n" \
    TLS_SET("gsys_in_hook", "0") \
    "  mov %rbp, %rsp\n  pop %rbp\n  add $0x80, %rsp\n" \
    "  jmp 0b\n"

#define RUN(field) STR(field) "(%rcx)"
/* Set the helpers' run state (ghelper_run_tls) for a call of link r11
 * with ctx rdi and the pt_regs record at rbx, as run_list does;
 * NARGS_ENTER/NARGS_EXIT store func_nargs = 6 and at_return (0: one
 * 8-byte store over both fields, adjacent). */
#define NARGS_ENTER "  movq $6, %fs:" RUN(GSYS_RUN_NARGS) "\n"     /* and at_return = 0 */
#define NARGS_EXIT \
    "  movl $6, %fs:" RUN(GSYS_RUN_NARGS) "\n  movl $1, %fs:" RUN(GSYS_RUN_AT_RETURN) "\n"
#define SET_RUN_STATE(nargs_at_return) \
    "  mov ghelper_run_tls@gottpoff(%rip), %rcx\n" \
    "  mov %rdi, %fs:" RUN(GSYS_RUN_CTX) "\n" \
    "  movq $0, %fs:" RUN(GSYS_RUN_FUNC_IP) "\n" \
    "  mov " STR(GSYS_LINK_OFF_COOKIE) "(%r11), %rax\n" \
    "  mov %rax, %fs:" RUN(GSYS_RUN_COOKIE) "\n" \
    "  movl $0, %fs:" RUN(GSYS_RUN_OVERRIDE_SET) "\n" \
    "  movl $0, %fs:" RUN(GSYS_RUN_TAIL_CALLS) "\n" \
    "  mov %rbx, %fs:" RUN(GSYS_RUN_REGS) "\n" \
    nargs_at_return
#define KIND(reg) STR(GSYS_LINK_OFF_KIND) "(" reg ")"
/* The enter half that CALLS_PATH and PAIR_PATH share (one text, expanded in
 * each, as run_list runs an enter program): a pt_regs record (rbx points at
 * it across the call, callee-saved; it doubles as the save area of the
 * argument registers), the enter context on top of it (tracepoint: ecx =
 * the thread id), xmm0-15 saved below (helpers are C) unless the link's
 * keeps_fp word (the operand `keeps_fp`, read again by the caller after
 * the call) says nothing the programs run touches them, the helpers' run
 * state (ghelper_run_tls, initial-exec TLS) set, gsys_in_hook set around
 * the call of link r11 (rax = nr). `pad` is pushed as the record's padding
 * word (168 from rbx). Leaves eax = override_set and r11 = the override
 * value, read while gsys_in_hook was still set (a signal handler's
 * syscalls run no program that could change them). Layout from rbx: the
 * enter context at -64, the xmm0-15 save area at -320 = rsp. */
#define ENTER_HALF(pad, keeps_fp) \
    PUSH_PT_REGS_PAD(pad) \
    "  mov %rsp, %rbx\n" \
    "  cmpl $2, " KIND("%r11") "\n"       /* GSYS_RAW_ENTER */ \
    "  je 51f\n" \
    /* tracepoint sys_enter, 64 bytes: trace_entry {0, 0, 0, tid}, id, args[6] */ \
    "  push %r9\n push %r8\n push %r10\n push %rdx\n push %rsi\n push %rdi\n push %rax\n" \
    "  shl $32, %rcx\n push %rcx\n" \
    "  mov $64, %esi\n" \
    "  jmp 52f\n" \
    "51:\n" \
    "  sub $48, %rsp\n push %rax\n push %rbx\n"        /* raw {&regs, nr}, same 64 bytes */ \
    "  mov $16, %esi\n" \
    "52:\n" \
    "  mov %rsp, %rdi\n" \
    "  sub $256, %rsp\n" \
    "  cmpl $0, " keeps_fp "\n" \
    "  jne 53f\n"                         /* nothing the programs run touches xmm */ \
    XMM_SAVE \
    "53:\n" \
    SET_RUN_STATE(NARGS_ENTER) \
    TLS_SET("gsys_in_hook", "1") \
    "  call *" STR(GSYS_LINK_OFF_FN) "(%r11)\n" \
    "  mov ghelper_run_tls@gottpoff(%rip), %rcx\n" \
    "  mov %fs:" RUN(GSYS_RUN_OVERRIDE_VALUE) ", %r11\n" \
    "  mov %fs:" RUN(GSYS_RUN_OVERRIDE_SET) ", %eax\n" \
    TLS_SET("gsys_in_hook", "0")

/* One enter program that may call helpers (GSYS_H_CALLS, or a FAST bit
 * whose link calls out), r11 = its link, rax = nr; tracepoint kind only
 * once the thread's tid is known. ENTER_HALF, then the registers come back
 * from the pt_regs record and the syscall is made at 0b (no frame of ours
 * across it), or, if the program called bpf_override_return, it is not
 * made and the value is the result (7b: return). */
#define CALLS_PATH \
    "8:\n" \
    "  cmpl $2, " KIND("%r11") "\n"       /* GSYS_RAW_ENTER */ \
    "  je 4f\n" \
    "  mov gsys_tid@gottpoff(%rip), %rcx\n" \
    "  mov %fs:(%rcx), %ecx\n" \
    "  test %ecx, %ecx\n" \
    "  jz 9f\n"                           /* first on this thread: C caches it */ \
    "4:\n" \
    FAST_FRAME \
    ENTER_HALF(STR(GSYS_LINK_OFF_KEEPS_FP) "(%r11)", "168(%rbx)") \
    "  cmpl $0, 168(%rbx)\n" \
    "  jne 54f\n" \
    XMM_LOAD \
    "54:\n" \
    "  test %eax, %eax\n" \
    "  mov 120(%rbx), %rax\n  mov 112(%rbx), %rdi\n  mov 104(%rbx), %rsi\n" \
    "  mov 96(%rbx), %rdx\n  mov 56(%rbx), %r10\n  mov 72(%rbx), %r8\n" \
    "  mov 64(%rbx), %r9\n  mov 40(%rbx), %rbx\n" \
    "  mov %rbp, %rsp\n  pop %rbp\n  lea 0x80(%rsp), %rsp\n"  /* lea: keeps the flags */ \
    "  je 0b\n"                           /* no override: the syscall */ \
    "  mov %r11, %rax\n" \
    "  jmp 7b\n"

/* One enter and one exit program (GSYS_H_PAIR; either may call helpers),
 * rax = nr: ENTER_HALF, then the syscall from here with the frame kept (nr
 * is not special: nothing runs on another stack), then the exit program on
 * an exit context (tracepoint {trace_entry, id, ret}, or raw {&regs, ret})
 * with pt_regs.ax = the result and its run state (at_return), and the
 * result - or the exit program's override - returned. An enter override
 * skips the syscall and the exit program, as in gsys_run_enter. Layout
 * from rbx (the pt_regs record): the exit link at 184, the thread id at
 * 176, then as ENTER_HALF, the exit context below. Either link NULL
 * (changing right now): the slow path; so too while the thread id is not
 * known (its first call) if either program is a tracepoint kind. */
#define PAIR_PATH \
    "20:\n" \
    "  mov gsys_in_hook@gottpoff(%rip), %r11\n" \
    "  cmpl $0, %fs:(%r11)\n" \
    "  jne 0b\n"                          /* inside a program: no programs */ \
    "  lea graft_sys_fast(%rip), %r11\n" \
    "  mov (%r11,%rax,8), %r11\n" \
    "  test %r11, %r11\n" \
    "  jz 9f\n" \
    "  lea graft_sys_fast_exit(%rip), %rcx\n" \
    "  mov (%rcx,%rax,8), %rcx\n" \
    "  test %rcx, %rcx\n" \
    "  jz 9f\n" \
    FAST_FRAME \
    "  push %rcx\n"                       /* the exit link: 184(%rbx) */ \
    "  mov " STR(GSYS_LINK_OFF_KEEPS_FP) "(%rcx), %rcx\n" \
    "  and " STR(GSYS_LINK_OFF_KEEPS_FP) "(%r11), %rcx\n" \
    "  shl $32, %rcx\n" \
    "  push %rcx\n"                       /* both keep xmm: 180(%rbx) */ \
    "  mov gsys_tid@gottpoff(%rip), %rcx\n" \
    "  mov %fs:(%rcx), %ecx\n" \
    "  mov %ecx, (%rsp)\n"                /* the tid: 176(%rbx) */ \
    "  test %ecx, %ecx\n" \
    "  jz 38f\n" \
    "30:\n" \
    ENTER_HALF("$0", "180(%rbx)") \
    "  test %eax, %eax\n" \
    "  jnz 33f\n" \
    "  mov 120(%rbx), %rax\n  mov 112(%rbx), %rdi\n  mov 104(%rbx), %rsi\n" \
    "  mov 96(%rbx), %rdx\n  mov 56(%rbx), %r10\n  mov 72(%rbx), %r8\n" \
    "  mov 64(%rbx), %r9\n" \
    "  syscall\n" \
    "  mov %rax, 80(%rbx)\n"              /* pt_regs.ax = the result */ \
    "  mov 184(%rbx), %r11\n" \
    "  cmpl $3, " KIND("%r11") "\n"       /* GSYS_RAW_EXIT */ \
    "  je 34f\n" \
    "  mov 176(%rbx), %rcx\n" \
    "  push $0\n push %rax\n pushq 120(%rbx)\n"        /* pad, ret, id */ \
    "  shl $32, %rcx\n push %rcx\n" \
    "  mov $24, %esi\n" \
    "  jmp 35f\n" \
    "34:\n" \
    "  push %rax\n push %rbx\n" \
    "  mov $16, %esi\n" \
    "35:\n" \
    "  mov %rsp, %rdi\n" \
    SET_RUN_STATE(NARGS_EXIT) \
    TLS_SET("gsys_in_hook", "1") \
    "  call *" STR(GSYS_LINK_OFF_FN) "(%r11)\n" \
    "  mov ghelper_run_tls@gottpoff(%rip), %rcx\n" \
    "  mov 80(%rbx), %rax\n" \
    "  cmpl $0, %fs:" RUN(GSYS_RUN_OVERRIDE_SET) "\n" \
    "  cmovne %fs:" RUN(GSYS_RUN_OVERRIDE_VALUE) ", %rax\n" \
    TLS_SET("gsys_in_hook", "0") \
    "  jmp 36f\n" \
    "33:\n" \
    "  mov %r11, %rax\n"                  /* enter override: the result */ \
    "36:\n" \
    "  lea -320(%rbx), %rsp\n" \
    "  cmpl $0, 180(%rbx)\n" \
    "  jne 37f\n" \
    XMM_LOAD \
    "37:\n" \
    "  mov 112(%rbx), %rdi\n  mov 104(%rbx), %rsi\n  mov 96(%rbx), %rdx\n" \
    "  mov 56(%rbx), %r10\n  mov 72(%rbx), %r8\n  mov 64(%rbx), %r9\n" \
    "  mov 40(%rbx), %rbx\n" \
    "  mov %rbp, %rsp\n  pop %rbp\n  add $0x80, %rsp\n" \
    "  jmp 7b\n" \
    /* the thread id is not known yet: go on only if both programs are raw \
     * kinds (ecx = 0 is the id then) */ \
    "38:\n" \
    "  cmpl $2, " KIND("%r11") "\n" \
    "  jne 39f\n"                         /* tracepoint sys_enter */ \
    "  mov 8(%rsp), %rcx\n" \
    "  cmpl $3, " KIND("%rcx") "\n" \
    "  jne 39f\n"                         /* tracepoint sys_exit */ \
    "  xor %ecx, %ecx\n" \
    "  jmp 30b\n" \
    "39:\n" \
    "  mov %rbp, %rsp\n  pop %rbp\n  add $0x80, %rsp\n" \
    "  jmp 9f\n"                          /* C caches the id */

_Static_assert(GSYS_RAW_ENTER == 2 && GSYS_RAW_EXIT == 3, "kinds compared in the assembly");
#define GSYS_RUN_CTX 0
#define GSYS_RUN_FUNC_IP 8
#define GSYS_RUN_COOKIE 16
#define GSYS_RUN_OVERRIDE_SET 24
#define GSYS_RUN_OVERRIDE_VALUE 32
#define GSYS_RUN_TAIL_CALLS 40
#define GSYS_RUN_REGS 48
#define GSYS_RUN_NARGS 56
#define GSYS_RUN_AT_RETURN 60
_Static_assert(offsetof(struct ghelper_run, ctx) == GSYS_RUN_CTX &&
               offsetof(struct ghelper_run, func_ip) == GSYS_RUN_FUNC_IP &&
               offsetof(struct ghelper_run, cookie) == GSYS_RUN_COOKIE &&
               offsetof(struct ghelper_run, override_set) == GSYS_RUN_OVERRIDE_SET &&
               offsetof(struct ghelper_run, override_value) == GSYS_RUN_OVERRIDE_VALUE &&
               offsetof(struct ghelper_run, tail_calls) == GSYS_RUN_TAIL_CALLS &&
               offsetof(struct ghelper_run, regs) == GSYS_RUN_REGS &&
               offsetof(struct ghelper_run, func_nargs) == GSYS_RUN_NARGS &&
               offsetof(struct ghelper_run, at_return) == GSYS_RUN_AT_RETURN &&
               sizeof(((struct ghelper_run *)0)->override_set) == 4 &&
               sizeof(((struct ghelper_run *)0)->tail_calls) == 4 &&
               sizeof(((struct ghelper_run *)0)->func_nargs) == 4 &&
               sizeof(((struct ghelper_run *)0)->at_return) == 4,
               "struct ghelper_run layout used by ENTER_HALF");
_Static_assert(offsetof(struct graft_pt_regs, bx) == 40, "pt_regs layout used by CALLS_PATH and PAIR_PATH");
_Static_assert(offsetof(struct graft_pt_regs, r10) == 56 && offsetof(struct graft_pt_regs, r9) == 64 &&
               offsetof(struct graft_pt_regs, r8) == 72 && offsetof(struct graft_pt_regs, dx) == 96 &&
               offsetof(struct graft_pt_regs, si) == 104 && offsetof(struct graft_pt_regs, di) == 112 &&
               offsetof(struct graft_pt_regs, orig_ax) == 120 && sizeof(struct graft_pt_regs) == 168,
               "pt_regs layout used by the fast path");

__asm__(
    ".pushsection " GSYS_TEXT_SECTION ",\"ax\",@progbits\n"
    ".p2align 6\n"
    ".globl graft_sys_entry\n .hidden graft_sys_entry\n"
    ".type graft_sys_entry, @function\n"
    "graft_sys_entry:\n"
    "  lea graft_sys_hooked(%rip), %r11\n"
    "  movzbl (%r11,%rax), %r11d\n"
    "  test %r11d, %r11d\n"
    "  jnz 1f\n"
    "0:\n"
    "  syscall\n"
    /* pop+jmp, not ret: returning from the kernel left the return-stack
     * predictor useless anyway, and the indirect predictor does better */
    "7:\n"
    "  pop %rcx\n"
    "  jmp *%rcx\n"
    "1:\n"
    "  cmp $" STR(GSYS_H_PAIR) ", %r11d\n"
    "  je 20f\n"                         /* one enter and one exit program */
    "  test $~" STR((GSYS_H_FAST | GSYS_H_CALLS)) ", %r11d\n"
    "  jnz 9f\n"                         /* special, or several programs */
    FAST_PATH
    CALLS_PATH
    PAIR_PATH
    "9:\n"
    "  sub $0x80, %rsp\n"
    "  push %rbx\n"
    "  sub $8, %rsp\n"
    "  push %rax\n"
    "  push %r9\n push %r8\n push %r10\n push %rdx\n push %rsi\n push %rdi\n"
    "  mov %rsp, %rbx\n"
    CALL_C("graft_sys_dispatch")
    "  test %eax, %eax\n"
    "  jnz 3f\n"
    "graft_sys_ret_common:\n"
    "  pop %rdi\n pop %rsi\n pop %rdx\n pop %r10\n pop %r8\n pop %r9\n"
    "  add $8, %rsp\n"
    "  pop %rax\n"
    "  pop %rbx\n"
    "  add $0x80, %rsp\n"
    "  ret\n"
    "3:\n"
    "  cmp $2, %eax\n"
    "  je 4f\n"
    "  cmp $3, %eax\n"
    "  je 5f\n"
    /* SIGRETURN: in place, caller's stack, never returns */
    LOAD_ARGS
    "  lea 208(%rbx), %rsp\n"
    "  mov 64(%rbx), %rbx\n"
    "  syscall\n"
    "  ud2\n"
    /* CLONE: rsp stays at the frame; the child gets the caller's registers */
    "4:\n"
    LOAD_ARGS
    "  mov 64(%rbx), %rbx\n"
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 6f\n"
    "  pop %r11\n"                      /* child: nr, then [rsp] = return address */
    "  jmp graft_sys_exit_entry\n"
    "6:\n"
    "  mov %rsp, %rbx\n"
    "  mov %rax, 56(%rbx)\n"
    CALL_C("graft_sys_dispatch_exit")
    "  jmp graft_sys_ret_common\n"
    /* VFORK: nothing of ours may stay on the shared stack across it */
    "5:\n"
    LOAD_ARGS
    "  mov 200(%rbx), %rcx\n"
    "  mov graft_sys_vfork_ret@gottpoff(%rip), %r11\n"
    "  mov %rcx, %fs:(%r11)\n"
    "  lea 208(%rbx), %rsp\n"
    "  mov 64(%rbx), %rbx\n"
    ".globl graft_sys_insn_vfork\n .hidden graft_sys_insn_vfork\n"
    "graft_sys_insn_vfork:\n"
    "  syscall\n"
    "  mov graft_sys_vfork_ret@gottpoff(%rip), %r11\n"
    "  pushq %fs:(%r11)\n"
    "  mov $58, %r11d\n"
    "  jmp graft_sys_exit_entry\n"
    /* The seccomp mode's clone/clone3 with CLONE_VFORK, made from the
     * caller's context as vfork is (syscall_seccomp.c); a child on a new
     * stack pushes the return address there. */
    ".globl graft_sys_insn_clone_vfork\n .hidden graft_sys_insn_clone_vfork\n"
    "graft_sys_insn_clone_vfork:\n"
    "  syscall\n"
    "  mov graft_sys_vfork_ret@gottpoff(%rip), %r11\n"
    "  pushq %fs:(%r11)\n"
    "  mov $56, %r11d\n"
    "  jmp graft_sys_exit_entry\n"
    ".globl graft_sys_insn_clone3_vfork\n .hidden graft_sys_insn_clone3_vfork\n"
    "graft_sys_insn_clone3_vfork:\n"
    "  syscall\n"
    "  mov graft_sys_vfork_ret@gottpoff(%rip), %r11\n"
    "  pushq %fs:(%r11)\n"
    "  mov $435, %r11d\n"
    "  jmp graft_sys_exit_entry\n"
    /* [rsp] = return address, rax = result, r11 = nr: run exit programs */
    ".globl graft_sys_exit_entry\n .hidden graft_sys_exit_entry\n"
    "graft_sys_exit_entry:\n"
    "  sub $0x80, %rsp\n"
    "  push %rbx\n"
    "  push %rax\n"
    "  push %r11\n"
    "  push %r9\n push %r8\n push %r10\n push %rdx\n push %rsi\n push %rdi\n"
    "  mov %rsp, %rbx\n"
    CALL_C("graft_sys_dispatch_exit")
    "  jmp graft_sys_ret_common\n"
    ".popsection\n");

/* movabs $graft_sys_entry, %r11; jmp *%r11 (r11 is the syscall's to
 * clobber anyway): GSYS_STUB_LEN bytes. */
static void put_stub(uint8_t *s)
{
    uint64_t target = (uint64_t)(uintptr_t)graft_sys_entry;
    s[0] = 0x49;
    s[1] = 0xbb;
    memcpy(s + 2, &target, 8);
    s[10] = 0x41;
    s[11] = 0xff;
    s[12] = 0xe3;
}

/* A run of 0x3d bytes decodes from any offset as 5-byte `cmp $imm,%eax`
 * (flags only), so it carries any entry point to its end five times faster
 * than NOPs. The instruction that runs over the end eats at most 4 of the
 * NOPs that follow; the jump is right after them. */
static void put_run_to_stub(uint8_t *p, int from, int stub)
{
    memset(p + from, 0x3d, (size_t)(stub - 4 - from));
    memset(p + stub - 4, 0x90, 4);
    put_stub(p + stub);
}

/* The sled: bytes 7e 7e 7f 7f ... decode from any offset as jle/jg pairs
 * (complementary conditions, so one of each pair is taken) that jump 126
 * or 127 bytes forward; four or five jumps cross it, landing at most 129
 * bytes past it, inside the 0x3d run that ends at the GSYS_LAND stub.
 * Numbers GSYS_LAND+1 .. GSYS_LAND+GSYS_STUB_LEN-1 (649-660, not
 * syscalls) would land inside that stub; higher ones cross a second run to
 * the stub at GSYS_STUB_OFF. */
static void fill_page0(uint8_t *dst)
{
    static uint8_t p[GSYS_PAGE];
    static const uint8_t pat[4] = {0x7e, 0x7e, 0x7f, 0x7f};
    _Static_assert(GSYS_SLED + 2 + 0x7f < GSYS_LAND - 4, "sled lands in the run");
    for (int i = 0; i < GSYS_SLED; i++)
        p[i] = pat[i % 4];
    put_run_to_stub(p, GSYS_SLED, GSYS_LAND);
    put_run_to_stub(p, GSYS_LAND + GSYS_STUB_LEN, GSYS_STUB_OFF);
    memset(p + GSYS_STUB_OFF + GSYS_STUB_LEN, 0xcc, GSYS_PAGE - GSYS_STUB_OFF - GSYS_STUB_LEN);
    /* copy to address 0 without C pointer arithmetic on NULL (undefined,
     * and the compiler may drop it) */
    size_t n = GSYS_PAGE;
    const uint8_t *src = p;
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static int write_min_addr(const char *val)
{
    int fd = open("/proc/sys/vm/mmap_min_addr", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

static int read_min_addr(char *buf, size_t len)
{
    int fd = open("/proc/sys/vm/mmap_min_addr", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static void *map0(void)
{
    return mmap(NULL, GSYS_PAGE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

static int page0_mapped;

/* Map and fill page 0, then leave it execute-only (reads of NULL fault
 * too where the CPU has protection keys). Called before any rewrite, from
 * gsys_install with no hook active, so plain libc calls are fine here. */
int gsys_page0_map(int set_min_addr, char *note, size_t note_len,
                   struct graft_err *err)
{
    if (page0_mapped)
        return 0;
    void *p = map0();
    if (p == MAP_FAILED && (errno == EPERM || errno == EACCES) && set_min_addr) {
        char old[32];
        int e = read_min_addr(old, sizeof(old));
        if (e == 0)
            e = write_min_addr("0");
        if (e < 0)
            return graft_errf(err, e, "syscall hooks: cannot set vm.mmap_min_addr "
                              "to 0: %s (run as root)", strerror(-e));
        p = map0();
        int saved = errno;
        write_min_addr(old);
        snprintf(note, note_len, "vm.mmap_min_addr was %s: set to 0 to map "
                 "page 0, then restored to %s", old, old);
        errno = saved;
    }
    if (p == MAP_FAILED)
        return graft_errf(err, -errno, "syscall hooks: cannot map page 0 for the "
                          "zpoline trampoline: %s (needs vm.mmap_min_addr=0 or "
                          "CAP_SYS_RAWIO; pass GSYS_F_SET_MMAP_MIN_ADDR as root)",
                          strerror(errno));
    if (p != NULL) {
        munmap(p, GSYS_PAGE);
        return graft_errf(err, -EEXIST, "syscall hooks: page 0 is not available "
                          "(kernel placed the mapping at %p)", p);
    }
    fill_page0(p);
    if (mprotect(p, GSYS_PAGE, PROT_EXEC) < 0) {
        int e = -errno;
        munmap(p, GSYS_PAGE);
        return graft_errf(err, e, "syscall hooks: mprotect(page 0, PROT_EXEC): %s",
                          strerror(-e));
    }
    page0_mapped = 1;
    return 0;
}
