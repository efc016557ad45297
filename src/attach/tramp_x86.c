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
 * graft_tramp_skip (hook_hit.c) to return straight to the caller.
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
_Static_assert(GISO_XCTL_ARENA == 0x100000 && GISO_XCTL_SIZE == 0x100 &&
               GISO_XCTL_OFF_USER == 64 && GISO_XCTL_OFF_XTOP == 8 && GISO_XCTL_OFF_TOP == 16,
               "the templates' control-block immediates (XCTL_CHECK, XSTACK_IN/OUT)");

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

    /* The entry templates' C calls, out of line to keep the per-site copies
     * small: save xmm0-7 (argument registers), call, restore. Entered with
     * rsp = 8 mod 16. */
    ".macro GXMM_SHIM name, fn\n"
    "  .globl \\name\n"
    "  .hidden \\name\n"
    "  .type \\name, @function\n"
    "  .p2align 4\n"
    "\\name:\n"
    "  sub $136, %rsp\n"
    "  movups %xmm0, 0(%rsp)\n  movups %xmm1, 16(%rsp)\n"
    "  movups %xmm2, 32(%rsp)\n  movups %xmm3, 48(%rsp)\n"
    "  movups %xmm4, 64(%rsp)\n  movups %xmm5, 80(%rsp)\n"
    "  movups %xmm6, 96(%rsp)\n  movups %xmm7, 112(%rsp)\n"
    "  call \\fn\n"
    "  movups 0(%rsp), %xmm0\n  movups 16(%rsp), %xmm1\n"
    "  movups 32(%rsp), %xmm2\n  movups 48(%rsp), %xmm3\n"
    "  movups 64(%rsp), %xmm4\n  movups 80(%rsp), %xmm5\n"
    "  movups 96(%rsp), %xmm6\n  movups 112(%rsp), %xmm7\n"
    "  add $136, %rsp\n"
    "  ret\n"
    "  .size \\name, .-\\name\n"
    ".endm\n"
    "GXMM_SHIM graft_tramp_enter_slow, graft_hook_enter_slow\n"
    "GXMM_SHIM graft_tramp_push_slow, graft_shadow_push_slow\n"

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

/*
 * Per-site templates for hooks at a function's first instruction. They are
 * copied into the site's stub and patched (tramp_reloc.c: gtramp_build):
 * every address they need is a movabs immediate or a %fs displacement whose
 * end is marked by a graft_tp_* label, so the copy is position independent.
 *
 * Entry fast path (t = this thread's struct gthread, found at a constant
 * %fs offset because t_self is initial-exec TLS): plain stores of the
 * registers into a pt_regs on the stack (no pushfq: flags are dead at a
 * call), then - unless t is missing, t->rcu_ctr is set (a nested hook:
 * recursion guard) or the snapshot needs the C path (replace) - mark the
 * RCU read section with a plain store (the detacher uses membarrier; a
 * non-zero t->rcu_ctr also means "running handlers"), fill the helpers' run
 * state through a cached pointer unless no handler can read it (GHS_NEED_RS
 * clear: all of them call nothing), save xmm0-7 only when some handler may
 * call C code (GHS_SAVE_FP), call each handler (after an OVERRIDE handler
 * that called bpf_override_return: stop, return the value to the caller),
 * push the shadow entry for return probes and go to the relocated original
 * instructions. Everything unusual goes to graft_hook_enter_slow() (through
 * graft_tramp_enter_slow, which keeps xmm0-7).
 *
 * A site with return hooks only (site->ret_only) skips the pt_regs: the
 * template saves five scratch registers, pushes the shadow entry and goes
 * on; no handler runs at entry, so it needs no read section either.
 *
 * Return-stack predictor: when a shadow entry was pushed, the return slot
 * holds this site's return template R. The template then pops that slot
 * and enters the relocated instructions through `call` at GSTUB_CALL,
 * which pushes R again: the stack is the same as with R planted, but the
 * function's `ret` to R now matches a `call` (no mispredict, ~15 ns), and
 * the return template leaves with `ret` to the real caller, which matches
 * the caller's own `call`: every `ret` stays paired with its `call`.
 *
 * Both templates exist twice: as is, and with the suffix _g, which has a
 * GGATE_LEN-byte slot right before and after the handler loop. With
 * isolation on (gattach_set_isolation) sites get the _g copy and
 * tramp_reloc.c writes giso_emit_gate() code into the slots - PKRU := ext
 * before the first handler, PKRU := host after the last - so extensions
 * run with the extension key enabled and the host never does. A gate
 * pushes 24 bytes below rsp, which is free there (our frame is above it).
 * With extension stacks on as well (gattach_set_ext_stacks), sites get the
 * _gs copy, which also runs the handler loop, between the gates, on the
 * thread's extension stack (t->xtop, tagged with the extension key; see
 * XSTACK_IN/OUT below), so the extensions' frames are not host-writable.
 * Sites built with isolation off have no slots: no cost at all.
 *
 * Return fast path: the probed function `ret`s into the site's return
 * template; it pops the matching shadow entry, runs the return handlers,
 * writes the real return address back into the slot and `ret`s to it.
 */
__asm__(
    ".text\n"
    ".macro TSAVE_GPRS\n"
    "  mov %r15, 0(%rsp)\n  mov %r14, 8(%rsp)\n"
    "  mov %r13, 16(%rsp)\n  mov %r12, 24(%rsp)\n"
    "  mov %rbp, 32(%rsp)\n  mov %rbx, 40(%rsp)\n"
    "  mov %r11, 48(%rsp)\n  mov %r10, 56(%rsp)\n"
    "  mov %r9,  64(%rsp)\n  mov %r8,  72(%rsp)\n"
    "  mov %rax, 80(%rsp)\n  mov %rcx, 88(%rsp)\n"
    "  mov %rdx, 96(%rsp)\n  mov %rsi, 104(%rsp)\n"
    "  mov %rdi, 112(%rsp)\n"
    "  movq $-1, 120(%rsp)\n  movq $0x33, 136(%rsp)\n"
    "  movq $0x202, 144(%rsp)\n  movq $0x2b, 160(%rsp)\n"
    ".endm\n"
    ".macro TREST_GPRS_BUT_R11\n"
    "  mov 0(%rsp), %r15\n  mov 8(%rsp), %r14\n"
    "  mov 16(%rsp), %r13\n  mov 24(%rsp), %r12\n"
    "  mov 32(%rsp), %rbp\n  mov 40(%rsp), %rbx\n"
    "  mov 56(%rsp), %r10\n"
    "  mov 64(%rsp), %r9\n  mov 72(%rsp), %r8\n"
    "  mov 80(%rsp), %rax\n  mov 88(%rsp), %rcx\n"
    "  mov 96(%rsp), %rdx\n  mov 104(%rsp), %rsi\n"
    "  mov 112(%rsp), %rdi\n"
    ".endm\n"
    ".macro TSAVE_XMM n\n"
    "  movups %xmm0, 176(%rsp)\n  movups %xmm1, 192(%rsp)\n"
    "  .if \\n > 2\n"
    "  movups %xmm2, 208(%rsp)\n  movups %xmm3, 224(%rsp)\n"
    "  movups %xmm4, 240(%rsp)\n  movups %xmm5, 256(%rsp)\n"
    "  movups %xmm6, 272(%rsp)\n  movups %xmm7, 288(%rsp)\n"
    "  .endif\n"
    ".endm\n"
    ".macro TREST_XMM n\n"
    "  movups 176(%rsp), %xmm0\n  movups 192(%rsp), %xmm1\n"
    "  .if \\n > 2\n"
    "  movups 208(%rsp), %xmm2\n  movups 224(%rsp), %xmm3\n"
    "  movups 240(%rsp), %xmm4\n  movups 256(%rsp), %xmm5\n"
    "  movups 272(%rsp), %xmm6\n  movups 288(%rsp), %xmm7\n"
    "  .endif\n"
    ".endm\n"
    ".macro TLABEL name\n"
    "  .globl \\name\n  .hidden \\name\n\\name:\n"
    ".endm\n"
    /* Room for a giso_emit_gate() gate, filled in per site; its end is
     * labelled. Nothing at all in the variant without gates. */
    ".macro GATE_SLOT name, gates\n"
    "  .if \\gates\n"
    "  .skip " S(GGATE_LEN) ", 0xcc\n"
    "TLABEL \\name\n"
    "  .endif\n"
    ".endm\n"
    /* Extension stack (the _gs variant only; nothing in the others). USABLE:
     * t (rbx) has a free stack (t->xtop != 0), else go to the C path, which
     * allocates one or runs nested handlers on this stack. IN (after the
     * entry gate, so PKRU already allows the tagged stack): the host rsp
     * goes to top-8, rsp = top-16 (16-byte aligned), t->xtop = 0 (taken).
     * OUT (before the exit gate, whose pushes need a host-writable stack):
     * t->xtop = top again, back to the host frame. HOST_FRAME: the pt_regs
     * on the host frame, the handlers' ctx (at 8(%rsp) while on the
     * extension stack). rax is free at each of these points. */
    ".macro XSTACK_USABLE label, stacks\n"
    "  .if \\stacks\n"
    "  cmpq $0, " S(GTH_OFF_XTOP) "(%rbx)\n"
    "  je \\label\n"
    "  .endif\n"
    ".endm\n"
    /* The stack itself comes from the thread's keyed control block (r13 =
     * block + 64 after XCTL_CHECK: xtop at -56, top at -48), never from
     * t->xtop, which is only the host-side hint USABLE branched on; a
     * block whose stack is taken although the hint said free means a host
     * write: trap. */
    ".macro XSTACK_IN stacks\n"
    "  .if \\stacks\n"
    "  mov -56(%r13), %rax\n"
    "  test %rax, %rax\n"
    "  jz 95f\n"
    "  mov %rsp, -8(%rax)\n"
    "  lea -16(%rax), %rsp\n"
    "  movq $0, -56(%r13)\n"
    "  movq $0, " S(GTH_OFF_XTOP) "(%rbx)\n"
    "  .endif\n"
    ".endm\n"
    ".macro XSTACK_OUT stacks\n"
    "  .if \\stacks\n"
    "  mov -48(%r13), %rax\n"
    "  mov 8(%rsp), %rsp\n"
    "  mov %rax, -56(%r13)\n"
    "  mov %rax, " S(GTH_OFF_XTOP) "(%rbx)\n"
    "  .endif\n"
    ".endm\n"
    /* Gated variants only. USABLE (before the entry gate): t has a control
     * block, else the C path makes one. CHECK (right after the entry gate,
     * PKRU ext): r13 (t->rs, host-writable) must be the run state of a
     * block of the keyed arena (its address an immediate, patched at the
     * labelled movabs) whose owner is this thread's FS base, else trap
     * (95: ud2). Uses rax, rcx. */
    ".macro XCTL_USABLE label, gates\n"
    "  .if \\gates\n"
    "  cmpq $0, " S(GTH_OFF_XCTL) "(%rbx)\n"
    "  je \\label\n"
    "  .endif\n"
    ".endm\n"
    ".macro XCTL_CHECK lbase, gates\n"
    "  .if \\gates\n"
    "  movabs $0x8888888888888888, %rax\n"
    "TLABEL \\lbase\n"
    "  lea -64(%r13), %rcx\n"
    "  sub %rax, %rcx\n"
    "  cmp $0x100, %rcx\n"                  /* block 0 is the arena's header */
    "  jb 95f\n"
    "  cmp $0x100000, %rcx\n"               /* GISO_XCTL_ARENA */
    "  jae 95f\n"
    "  test $0xff, %ecx\n"                  /* GISO_XCTL_SIZE - 1 */
    "  jnz 95f\n"
    "  rdfsbase %rax\n"
    "  cmp %rax, -64(%r13)\n"               /* owner */
    "  jne 95f\n"
    "  .endif\n"
    ".endm\n"
    ".macro XCTL_TRAP gates\n"
    "  .if \\gates\n"
    "95:\n"
    "  ud2\n"
    "  .endif\n"
    ".endm\n"
    ".macro HOST_FRAME reg, stacks\n"
    "  .if \\stacks\n"
    "  mov 8(%rsp), \\reg\n"
    "  .else\n"
    "  mov %rsp, \\reg\n"
    "  .endif\n"
    ".endm\n"

    ".macro ENTRY_TMPL sfx, gates, stacks\n"
    /* ---- entry template: frame 312 bytes: pt_regs at 0, xmm0-7 at 176 (rsp 16-aligned after it) ---- */
    "  .p2align 4\n"
    "TLABEL graft_tmpl_entry\\sfx\n"
    "  sub $312, %rsp\n"
    "  mov %rbx, 40(%rsp)\n  mov %rax, 80(%rsp)\n"
    "  mov %rcx, 88(%rsp)\n  mov %rdx, 96(%rsp)\n"
    "  mov %rdi, 112(%rsp)\n"
    "  movabs $0x2222222222222222, %rdx\n"   /* site */
    "TLABEL graft_tp_e_site3\\sfx\n"
    "  cmpl $0, " S(GSITE_OFF_RET_ONLY) "(%rdx)\n"
    "  jne 30f\n"                            /* only return hooks: no pt_regs */
    "21:\n"
    "  mov %r15, 0(%rsp)\n  mov %r14, 8(%rsp)\n"
    "  mov %r13, 16(%rsp)\n  mov %r12, 24(%rsp)\n"
    "  mov %rbp, 32(%rsp)\n"
    "  mov %r11, 48(%rsp)\n  mov %r10, 56(%rsp)\n"
    "  mov %r9,  64(%rsp)\n  mov %r8,  72(%rsp)\n"
    "  mov %rsi, 104(%rsp)\n"
    "  movq $-1, 120(%rsp)\n  movq $0x33, 136(%rsp)\n"
    "  movq $0x202, 144(%rsp)\n  movq $0x2b, 160(%rsp)\n"
    "  lea 312(%rsp), %rax\n"
    "  mov %rax, 152(%rsp)\n"
    "  movabs $0x1111111111111111, %rax\n"
    "TLABEL graft_tp_e_addr\\sfx\n"
    "  mov %rax, 128(%rsp)\n"
    "  mov %fs:0x7ffffff0, %rbx\n"
    "TLABEL graft_tp_e_tls\\sfx\n"
    "  test %rbx, %rbx\n"
    "  jz 8f\n"
    "  cmpq $0, (%rbx)\n"                   /* in a read section: nested */
    "  jne 8f\n"
    "  movabs $0x2222222222222222, %r14\n"   /* site */
    "TLABEL graft_tp_e_site\\sfx\n"
    "  movabs $0x3333333333333333, %rax\n"   /* &g_gp */
    "TLABEL graft_tp_e_gp\\sfx\n"
    "  mov (%rax), %rax\n"
    "  mov %rax, (%rbx)\n"                   /* t->rcu_ctr = gp */
    "  mov " S(GSITE_OFF_HS) "(%r14), %r12\n"
    "  test %r12, %r12\n"
    "  jz 6f\n"
    "  testl $" S(GHS_SLOW) ", 12(%r12)\n"
    "  jnz 7f\n"
    "  XSTACK_USABLE 7f, \\stacks\n"
    "  XCTL_USABLE 7f, \\gates\n"
    "  mov 16(%rbx), %r13\n"                 /* t->rs: checked after the gate */
    "  testl $" S(GHS_SAVE_FP) ", 12(%r12)\n"
    "  jz 1f\n"
    "  TSAVE_XMM 8\n"
    "1:\n"
    "  mov 0(%r12), %ebp\n"                  /* n_entry */
    "  mov 40(%r12), %r15\n"                 /* entry slots */
    "  test %ebp, %ebp\n"
    "  jz 3f\n"
    "  GATE_SLOT graft_tp_e_gin\\sfx, \\gates\n"    /* PKRU := ext */
    "  XCTL_CHECK graft_tp_e_xbase\\sfx, \\gates\n"
    /* the run state is keyed with isolation on: filled behind the gate */
    "  testl $" S(GHS_NEED_RS) ", 12(%r12)\n"
    "  jz 17f\n"                             /* nobody reads it */
    "  mov %rsp, %rdi\n"
    "  mov %rdi, 0(%r13)\n"                  /* rs->ctx */
    "  mov %rdi, 48(%r13)\n"                 /* rs->regs */
    "  mov 128(%rsp), %rax\n"
    "  mov %rax, 8(%r13)\n"                  /* rs->func_ip */
    "  movl $0, 24(%r13)\n"                  /* override_set */
    "  movl $0, 40(%r13)\n"                  /* tail_calls */
    "  movq $0, 56(%r13)\n"                  /* func_nargs, at_return */
    "17:\n"
    "  XSTACK_IN \\stacks\n"
    "2:\n"
    "  mov 8(%r15), %rax\n"
    "  mov %rax, 16(%r13)\n"                 /* rs->cookie */
    "  HOST_FRAME %rdi, \\stacks\n"
    "  mov $168, %esi\n"
    "  call *(%r15)\n"
    "  cmpl $2, 16(%r15)\n"                  /* slot->kind == GHOOK_OVERRIDE */
    "  je 13f\n"
    "14:\n"
    "  add $24, %r15\n"
    "  dec %ebp\n"
    "  jnz 2b\n"
    "  XSTACK_OUT \\stacks\n"
    "  GATE_SLOT graft_tp_e_gout\\sfx, \\gates\n"   /* PKRU := host */
    "  test %r14, %r14\n"
    "  jz 15f\n"                             /* overridden: skip the function */
    "3:\n"
    "  cmpl $0, 4(%r12)\n"                   /* n_ret */
    "  je 5f\n"
    "  mov 152(%rsp), %rdi\n"            /* the return-address slot */
    "  mov 12(%rbx), %eax\n"                 /* depth */
    "  lea (%rax,%rax,2), %rcx\n"
    "  test %eax, %eax\n"
    "  jz 4f\n"
    "  cmp %rdi, " S(GTH_OFF_SHADOW) "-24(%rbx,%rcx,8)\n"
    "  jbe 9f\n"                             /* stale entries: C */
    "4:\n"
    "  cmp $" S(GATTACH_SHADOW_DEPTH) ", %eax\n"
    "  jae 9f\n"                             /* overflow: C counts it */
    "  lea " S(GTH_OFF_SHADOW) "(%rbx,%rcx,8), %rcx\n"
    "  mov %rdi, 0(%rcx)\n"
    "  mov (%rdi), %rdx\n"
    "  mov %rdx, 8(%rcx)\n"
    "  mov %r14, 16(%rcx)\n"
    "  inc %eax\n"
    "  mov %eax, 12(%rbx)\n"
    "  movabs $0x4444444444444444, %rdx\n"   /* this site's return template */
    "TLABEL graft_tp_e_ret\\sfx\n"
    "  mov %rdx, (%rdi)\n"
    "5:\n"
    "  testl $" S(GHS_SAVE_FP) ", 12(%r12)\n"
    "  jz 6f\n"
    "  TREST_XMM 8\n"
    "6:\n"
    "  movq $0, (%rbx)\n"                    /* end of read section */
    "10:\n"
    "  TREST_GPRS_BUT_R11\n"
    /* A shadow entry was pushed (here or in C) iff the return slot now
     * holds this site's return template: then leave through the stub's
     * `call` (see below), else fall into the relocated code. */
    "  movabs $0x4444444444444444, %r11\n"
    "TLABEL graft_tp_e_ret2\\sfx\n"
    "  cmp %r11, 312(%rsp)\n"
    "  mov 48(%rsp), %r11\n"
    "  je 12f\n"
    "  add $312, %rsp\n"
    "  jmp 11f\n"
    "12:\n"
    "  add $320, %rsp\n"                     /* the frame and the planted slot */
    "  .byte 0xe9\n  .long 0\n"             /* jmp rel32 to the stub's `call`, patched */
    "TLABEL graft_tp_e_call\\sfx\n"
    /* snapshot needs the C path: leave the section, then as slow */
    "7:\n"
    "  movq $0, (%rbx)\n"
    "8:\n"
    "  mov %rsp, %rdi\n"
    "  movabs $0x2222222222222222, %rsi\n"
    "TLABEL graft_tp_e_site2\\sfx\n"
    "  movabs $0x5555555555555555, %rax\n"   /* graft_tramp_enter_slow */
    "TLABEL graft_tp_e_slow\\sfx\n"
    "  call *%rax\n"
    "  test %eax, %eax\n"
    "  jz 10b\n"
    /* override/replace: rax = regs->ax, back to the caller */
    "16:\n"
    "  TREST_GPRS_BUT_R11\n"
    "  mov 48(%rsp), %r11\n"
    "  add $312, %rsp\n"
    "  ret\n"
    /* An OVERRIDE handler ran: if bpf_override_return was called, end the
     * loop (through the exit gate) with regs->ax = the value and r14 = 0. */
    "13:\n"
    "  cmpl $0, 24(%r13)\n"                  /* rs->override_set */
    "  je 14b\n"
    "  mov 32(%r13), %rax\n"                 /* rs->override_value */
    "  .if \\stacks\n"
    "  mov 8(%rsp), %rcx\n"                  /* the host frame */
    "  mov %rax, 80(%rcx)\n"
    "  .else\n"
    "  mov %rax, 80(%rsp)\n"
    "  .endif\n"
    "  xor %r14d, %r14d\n"
    "  mov $1, %ebp\n"
    "  jmp 14b\n"
    /* Skip the function: no shadow entry; xmm registers are dead after a
     * return (a float result is unspecified under an override). */
    "15:\n"
    "  movq $0, (%rbx)\n"
    "  jmp 16b\n"
    /* shadow push with stale entries or overflow */
    "9:\n"
    "  mov %rbx, %rdi\n"
    "  mov 152(%rsp), %rsi\n"
    "  mov %r14, %rdx\n"
    "  movabs $0x6666666666666666, %rax\n"   /* graft_tramp_push_slow */
    "TLABEL graft_tp_e_push\\sfx\n"
    "  call *%rax\n"
    "  jmp 5b\n"
    /* The site has return hooks only (site->ret_only, set after each
     * publish; the site is never freed, so no read section is needed, and
     * no handler runs here). Push the shadow entry with five scratch
     * registers and leave through the stub's `call`; anything unusual
     * (no thread state, nested in a handler, stale entries, overflow)
     * goes back to the full path, which saves the other registers. */
    "30:\n"
    "  mov %fs:0x7ffffff0, %rbx\n"
    "TLABEL graft_tp_e_tls2\\sfx\n"
    "  test %rbx, %rbx\n"
    "  jz 21b\n"
    "  cmpq $0, (%rbx)\n"                   /* nested: the C path counts it */
    "  jne 21b\n"
    "  lea 312(%rsp), %rdi\n"               /* the return-address slot */
    "  mov 12(%rbx), %eax\n"
    "  lea (%rax,%rax,2), %rcx\n"
    "  test %eax, %eax\n"
    "  jz 31f\n"
    "  cmp %rdi, " S(GTH_OFF_SHADOW) "-24(%rbx,%rcx,8)\n"
    "  jbe 21b\n"
    "31:\n"
    "  cmp $" S(GATTACH_SHADOW_DEPTH) ", %eax\n"
    "  jae 21b\n"
    "  lea " S(GTH_OFF_SHADOW) "(%rbx,%rcx,8), %rcx\n"
    "  mov %rdi, 0(%rcx)\n"
    "  mov (%rdi), %rdi\n"
    "  mov %rdi, 8(%rcx)\n"
    "  mov %rdx, 16(%rcx)\n"
    "  inc %eax\n"
    "  mov %eax, 12(%rbx)\n"
    "  mov 40(%rsp), %rbx\n  mov 80(%rsp), %rax\n"
    "  mov 88(%rsp), %rcx\n  mov 96(%rsp), %rdx\n"
    "  mov 112(%rsp), %rdi\n"
    "  add $320, %rsp\n"                     /* the `call` plants the template */
    "  .byte 0xe9\n  .long 0\n"
    "TLABEL graft_tp_e_call2\\sfx\n"
    "  XCTL_TRAP \\gates\n"
    "11:\n"
    "TLABEL graft_tmpl_entry_end\\sfx\n"

    ".endm\n"
    ".macro RET_TMPL sfx, gates, stacks\n"
    /* ---- return template: entered by `ret`, rsp = slot + 8 (16-aligned) ---- */
    "  .p2align 4\n"
    "TLABEL graft_tmpl_ret\\sfx\n"
    "  sub $320, %rsp\n"
    "  TSAVE_GPRS\n"
    "  lea 320(%rsp), %rax\n"
    "  mov %rax, 152(%rsp)\n"
    "  mov %fs:0x7ffffff0, %rbx\n"
    "TLABEL graft_tp_r_tls\\sfx\n"
    "  test %rbx, %rbx\n"
    "  jz 8f\n"
    "  XSTACK_USABLE 8f, \\stacks\n"
    "  XCTL_USABLE 8f, \\gates\n"
    "  mov 12(%rbx), %eax\n"                 /* depth */
    "  test %eax, %eax\n"
    "  jz 8f\n"
    "  dec %eax\n"
    "  lea (%rax,%rax,2), %rcx\n"
    "  lea " S(GTH_OFF_SHADOW) "(%rbx,%rcx,8), %rcx\n"
    "  lea 312(%rsp), %rdx\n"                /* our slot */
    "  cmp %rdx, 0(%rcx)\n"
    "  jne 8f\n"                             /* stale entries above: C */
    "  mov %eax, 12(%rbx)\n"
    "  mov 8(%rcx), %rax\n"                  /* the real return address */
    "  mov %rax, 312(%rsp)\n"                /* back into the slot */
    "  mov %rax, 128(%rsp)\n"            /* regs->ip */
    /* The entry's site is this stub's (its return template's address was
     * planted); a constant keeps site->hs off the load chain above. */
    "  movabs $0x2222222222222222, %r14\n"   /* site */
    "TLABEL graft_tp_r_site\\sfx\n"
    "  cmpq $0, (%rbx)\n"
    "  jne 7f\n"
    "  movabs $0x3333333333333333, %rax\n"
    "TLABEL graft_tp_r_gp\\sfx\n"
    "  mov (%rax), %rax\n"
    "  mov %rax, (%rbx)\n"
    "  mov " S(GSITE_OFF_HS) "(%r14), %r12\n"
    "  test %r12, %r12\n"
    "  jz 6f\n"
    "  mov 4(%r12), %ebp\n"                  /* n_ret */
    "  test %ebp, %ebp\n"
    "  jz 6f\n"
    "  mov 16(%rbx), %r13\n"
    "  mov 0(%r14), %rdx\n"                  /* site->addr (rdx is saved in regs) */
    "  mov 12(%r12), %r14d\n"                /* flags, kept across calls */
    "  test $" S(GHS_SAVE_FP) ", %r14d\n"
    "  jz 1f\n"
    "  TSAVE_XMM 2\n"
    "1:\n"
    "  mov 48(%r12), %r15\n"                 /* return slots */
    "  GATE_SLOT graft_tp_r_gin\\sfx, \\gates\n"
    "  XCTL_CHECK graft_tp_r_xbase\\sfx, \\gates\n"
    /* the run state is keyed with isolation on: filled behind the gate */
    "  test $" S(GHS_NEED_RS) ", %r14d\n"
    "  jz 1f\n"
    "  mov %rsp, %rdi\n"
    "  mov %rdi, 0(%r13)\n"
    "  mov %rdi, 48(%r13)\n"
    "  mov %rdx, 8(%r13)\n"
    "  movl $0, 24(%r13)\n"
    "  movl $0, 40(%r13)\n"
    "  movl $0, 56(%r13)\n"
    "  movl $1, 60(%r13)\n"                  /* at_return */
    "1:\n"
    "  XSTACK_IN \\stacks\n"
    "2:\n"
    "  mov 8(%r15), %rax\n"
    "  mov %rax, 16(%r13)\n"
    "  HOST_FRAME %rdi, \\stacks\n"
    "  mov $168, %esi\n"
    "  call *(%r15)\n"
    "  add $24, %r15\n"
    "  dec %ebp\n"
    "  jnz 2b\n"
    "  XSTACK_OUT \\stacks\n"
    "  GATE_SLOT graft_tp_r_gout\\sfx, \\gates\n"
    "  test $" S(GHS_SAVE_FP) ", %r14d\n"
    "  jz 6f\n"
    "  TREST_XMM 2\n"
    "6:\n"
    "  movq $0, (%rbx)\n"
    "10:\n"
    "  TREST_GPRS_BUT_R11\n"
    "  mov 48(%rsp), %r11\n"
    "  add $312, %rsp\n"
    "  ret\n"
    /* nested in a handler: count the miss, skip the handlers */
    "7:\n"
    "  movabs $0x7777777777777777, %rax\n"   /* &st_missed */
    "TLABEL graft_tp_r_missed\\sfx\n"
    "  lock incq (%rax)\n"
    "  jmp 10b\n"
    /* no thread state, or stale entries: the C path (aborts if lost) */
    "8:\n"
    "  TSAVE_XMM 2\n"
    "  mov %rsp, %rdi\n"
    "  lea 312(%rsp), %rsi\n"
    "  movabs $0x5555555555555555, %rax\n"   /* graft_hook_return */
    "TLABEL graft_tp_r_slow\\sfx\n"
    "  call *%rax\n"
    "  mov %rax, 312(%rsp)\n"
    "  TREST_XMM 2\n"
    "  jmp 10b\n"
    "  XCTL_TRAP \\gates\n"
    "TLABEL graft_tmpl_ret_end\\sfx\n"
    ".endm\n"
    "ENTRY_TMPL , 0, 0\n"
    "RET_TMPL , 0, 0\n"
    "ENTRY_TMPL _g, 1, 0\n"
    "RET_TMPL _g, 1, 0\n"
    "ENTRY_TMPL _gs, 1, 1\n"
    "RET_TMPL _gs, 1, 1\n"
);
