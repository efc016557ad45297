/*
 * func_asm_targets.c - hand-written entries whose first instructions are
 * exactly what the relocator must handle: RIP-relative loads, a short
 * conditional branch, endbr64, a call, a 3-byte function and a loop that
 * branches back into the first 5 bytes (those two need the int3 fallback);
 * and a tail call (jmp) from one function into another, as glibc's
 * realloc(NULL, n) jumps into malloc.
 */
__asm__(
    ".data\n"
    ".globl asm_g\n"
    "asm_g: .long 40\n"
    ".text\n"
    /* mov eax,[rip+asm_g]; add eax,edi; ret  -> asm_g + x */
    ".globl asm_riprel\n.type asm_riprel,@function\n"
    "asm_riprel:\n"
    "  mov asm_g(%rip), %eax\n"
    "  add %edi, %eax\n"
    "  ret\n"
    ".size asm_riprel, .-asm_riprel\n"
    /* lea rax,[rip+asm_g]; mov eax,[rax]; sub eax,edi; ret -> asm_g - x */
    ".globl asm_lea\n.type asm_lea,@function\n"
    "asm_lea:\n"
    "  lea asm_g(%rip), %rax\n"
    "  mov (%rax), %eax\n"
    "  sub %edi, %eax\n"
    "  ret\n"
    ".size asm_lea, .-asm_lea\n"
    /* test edi,edi; je 1f; lea eax,[rdi+1]; ret; 1: mov eax,100; ret */
    ".globl asm_branch\n.type asm_branch,@function\n"
    "asm_branch:\n"
    "  test %edi, %edi\n"
    "  je 1f\n"
    "  lea 1(%rdi), %eax\n"
    "  ret\n"
    "1: mov $100, %eax\n"
    "  ret\n"
    ".size asm_branch, .-asm_branch\n"
    /* endbr64; lea eax,[rdi+rdi]; ret */
    ".globl asm_endbr\n.type asm_endbr,@function\n"
    "asm_endbr:\n"
    "  endbr64\n"
    "  lea (%rdi,%rdi), %eax\n"
    "  ret\n"
    ".size asm_endbr, .-asm_endbr\n"
    /* call first: call asm_endbr; add eax,1; ret -> 2x+1 */
    ".globl asm_call\n.type asm_call,@function\n"
    "asm_call:\n"
    "  call asm_endbr\n"
    "  add $1, %eax\n"
    "  ret\n"
    ".size asm_call, .-asm_call\n"
    /* 3 bytes: too short for the jump */
    ".globl asm_short\n.type asm_short,@function\n"
    "asm_short:\n"
    "  xor %eax, %eax\n"
    "  ret\n"
    ".size asm_short, .-asm_short\n"
    "  nop\n  nop\n  nop\n  nop\n"
    /* xor eax,eax; 1: add eax,1; cmp eax,edi; jl 1b; ret -> the loop head
     * is at +2, inside the 5 bytes a jump would overwrite */
    ".globl asm_loop\n.type asm_loop,@function\n"
    "asm_loop:\n"
    "  xor %eax, %eax\n"
    "1: add $1, %eax\n"
    "  cmp %edi, %eax\n"
    "  jl 1b\n"
    "  ret\n"
    ".size asm_loop, .-asm_loop\n"
    /* lea eax,[rdi*2]; ret -> 2x */
    ".globl asm_tail_b\n.type asm_tail_b,@function\n"
    "asm_tail_b:\n"
    "  lea (,%rdi,2), %eax\n"
    "  ret\n"
    ".size asm_tail_b, .-asm_tail_b\n"
    /* add edi,1; add edi,0; jmp asm_tail_b (rel32, past the first 5
     * bytes, as in realloc) -> 2(x+1) */
    ".globl asm_tail_a\n.type asm_tail_a,@function\n"
    "asm_tail_a:\n"
    "  add $1, %edi\n"
    "  add $0, %edi\n"
    "  .byte 0xe9\n  .long asm_tail_b - . - 4\n"
    ".size asm_tail_a, .-asm_tail_a\n"
    /* xor eax,eax; cmp edi,esi; [asm_stripped_mid:] setl al; ret -> x < y.
     * The symbol covers only the first two instructions: asm_stripped_mid
     * (a label, no function symbol) stands for stripped code, where the
     * flags the cmp set are live */
    ".globl asm_stripped\n.type asm_stripped,@function\n"
    "asm_stripped:\n"
    "  xor %eax, %eax\n"
    "  cmp %esi, %edi\n"
    ".globl asm_stripped_mid\n"
    "asm_stripped_mid:\n"
    "  setl %al\n"
    "  ret\n"
    ".size asm_stripped, 4\n"
);
