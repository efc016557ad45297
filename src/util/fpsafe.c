/*
 * fpsafe.c - gfp_call (fpsafe.h): xmm0-15 saved on the stack around a call
 * of ordinary C. The upper halves of ymm/zmm are not saved (as on the
 * syscall hooks' general path, docs/syscalls.md).
 */
#include "util/fpsafe.h"

__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl gfp_call\n .hidden gfp_call\n"
    ".type gfp_call, @function\n"
    "gfp_call:\n"
    "  push %rbp\n"
    "  mov %rsp, %rbp\n"
    "  sub $256, %rsp\n"                 /* 16-byte aligned for the call */
    "  movups %xmm0, 0(%rsp)\n movups %xmm1, 16(%rsp)\n movups %xmm2, 32(%rsp)\n"
    "  movups %xmm3, 48(%rsp)\n movups %xmm4, 64(%rsp)\n movups %xmm5, 80(%rsp)\n"
    "  movups %xmm6, 96(%rsp)\n movups %xmm7, 112(%rsp)\n movups %xmm8, 128(%rsp)\n"
    "  movups %xmm9, 144(%rsp)\n movups %xmm10, 160(%rsp)\n movups %xmm11, 176(%rsp)\n"
    "  movups %xmm12, 192(%rsp)\n movups %xmm13, 208(%rsp)\n movups %xmm14, 224(%rsp)\n"
    "  movups %xmm15, 240(%rsp)\n"
    "  mov %rdi, %r11\n"
    "  mov %rsi, %rdi\n mov %rdx, %rsi\n mov %rcx, %rdx\n mov %r8, %rcx\n mov %r9, %r8\n"
    "  call *%r11\n"
    "  movups 0(%rsp), %xmm0\n movups 16(%rsp), %xmm1\n movups 32(%rsp), %xmm2\n"
    "  movups 48(%rsp), %xmm3\n movups 64(%rsp), %xmm4\n movups 80(%rsp), %xmm5\n"
    "  movups 96(%rsp), %xmm6\n movups 112(%rsp), %xmm7\n movups 128(%rsp), %xmm8\n"
    "  movups 144(%rsp), %xmm9\n movups 160(%rsp), %xmm10\n movups 176(%rsp), %xmm11\n"
    "  movups 192(%rsp), %xmm12\n movups 208(%rsp), %xmm13\n movups 224(%rsp), %xmm14\n"
    "  movups 240(%rsp), %xmm15\n"
    "  leave\n"
    "  ret\n"
    ".size gfp_call, .-gfp_call\n");
