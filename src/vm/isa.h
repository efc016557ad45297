/*
 * isa.h - the eBPF instruction set (RFC 9669, ISA v4): encoding constants and
 * the instruction record. This is the one place that knows how an opcode is
 * built; every other component includes it rather than spelling numbers.
 *
 * An opcode byte is class (low 3 bits) | source or size/mode | operation.
 */
#ifndef GRAFT_VM_ISA_H
#define GRAFT_VM_ISA_H

#include <stdint.h>

struct bpf_insn {
    uint8_t code;
    uint8_t dst_reg : 4;
    uint8_t src_reg : 4;
    int16_t off;
    int32_t imm;
};
_Static_assert(sizeof(struct bpf_insn) == 8, "eBPF instructions are 8 bytes");

/* Registers: r0 return value, r1-r5 arguments, r6-r9 callee-saved, r10 frame pointer. */
enum { BPF_R0, BPF_R1, BPF_R2, BPF_R3, BPF_R4, BPF_R5,
       BPF_R6, BPF_R7, BPF_R8, BPF_R9, BPF_R10, BPF_NREGS };

/* Instruction classes */
#define BPF_CLASS(code) ((code) & 0x07)
#define BPF_LD    0x00
#define BPF_LDX   0x01
#define BPF_ST    0x02
#define BPF_STX   0x03
#define BPF_ALU   0x04
#define BPF_JMP   0x05
#define BPF_JMP32 0x06
#define BPF_ALU64 0x07

/* Arithmetic and jump instructions: source and operation */
#define BPF_SRC(code) ((code) & 0x08)
#define BPF_K 0x00             /* use imm */
#define BPF_X 0x08             /* use src_reg */
#define BPF_OP(code) ((code) & 0xf0)

#define BPF_ADD  0x00
#define BPF_SUB  0x10
#define BPF_MUL  0x20
#define BPF_DIV  0x30          /* off=1: signed (sdiv) */
#define BPF_OR   0x40
#define BPF_AND  0x50
#define BPF_LSH  0x60
#define BPF_RSH  0x70
#define BPF_NEG  0x80
#define BPF_MOD  0x90          /* off=1: signed (smod) */
#define BPF_XOR  0xa0
#define BPF_MOV  0xb0          /* off=8/16/32: sign-extending move (movsx) */
#define BPF_ARSH 0xc0
#define BPF_END  0xd0          /* ALU: BPF_TO_LE/BPF_TO_BE; ALU64: bswap; imm = 16/32/64 */
#define BPF_TO_LE 0x00
#define BPF_TO_BE 0x08

#define BPF_JA   0x00          /* JMP32|JA is gotol: 32-bit offset in imm */
#define BPF_JEQ  0x10
#define BPF_JGT  0x20
#define BPF_JGE  0x30
#define BPF_JSET 0x40
#define BPF_JNE  0x50
#define BPF_JSGT 0x60
#define BPF_JSGE 0x70
#define BPF_CALL 0x80          /* K: src 0 helper id, 1 local call (pc+imm+1), 2 kfunc; X: callx */
#define BPF_EXIT 0x90
#define BPF_JLT  0xa0
#define BPF_JLE  0xb0
#define BPF_JSLT 0xc0
#define BPF_JSLE 0xd0

/* Load and store instructions: size and mode */
#define BPF_SIZE(code) ((code) & 0x18)
#define BPF_W  0x00
#define BPF_H  0x08
#define BPF_B  0x10
#define BPF_DW 0x18
#define BPF_MODE(code) ((code) & 0xe0)
#define BPF_IMM    0x00        /* LD|IMM|DW is the two-slot LD_IMM64 */
#define BPF_ABS    0x20        /* legacy packet access, not supported */
#define BPF_IND    0x40        /* legacy packet access, not supported */
#define BPF_MEM    0x60
#define BPF_MEMSX  0x80        /* LDX only: sign-extending load */
#define BPF_ATOMIC 0xc0        /* STX only: imm holds the atomic operation */

/* Atomic operations (imm of STX|ATOMIC) */
#define BPF_FETCH   0x01
#define BPF_XCHG    (0xe0 | BPF_FETCH)
#define BPF_CMPXCHG (0xf0 | BPF_FETCH)

/* src_reg of LD_IMM64: what the 64-bit immediate means */
#define BPF_PSEUDO_MAP_FD        1   /* imm: map fd */
#define BPF_PSEUDO_MAP_VALUE     2   /* imm: map fd, next imm: offset into value */
#define BPF_PSEUDO_BTF_ID        3   /* imm: BTF id of a ksym */
#define BPF_PSEUDO_FUNC          4   /* imm: pc-relative offset of a function */
#define BPF_PSEUDO_MAP_IDX       5   /* imm: index in the program's map table */
#define BPF_PSEUDO_MAP_IDX_VALUE 6   /* imm: map index, next imm: offset into value */

/* src_reg of JMP|CALL|K */
#define BPF_PSEUDO_CALL        1
#define BPF_PSEUDO_KFUNC_CALL  2

/* Limits shared by the VM and the verifier. */
#define BPF_STACK_SIZE      512      /* bytes of stack per frame */
#define BPF_MAX_CALL_DEPTH  8        /* frames, counting the main program */
#define BPF_MAX_INSNS       1000000  /* instructions in one program */
#define BPF_MAX_TAIL_CALLS  33
#define BPF_MAX_HELPER_ID   256      /* helper ids are in [0, BPF_MAX_HELPER_ID) */

/* Convenience constructors, for tests and code that emits programs. */
#define BPF_INSN(c, d, s, o, i) \
    ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define BPF_MOV64_IMM(d, i)     BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define BPF_MOV64_REG(d, s)     BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define BPF_ALU64_IMM(op, d, i) BPF_INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define BPF_ALU64_REG(op, d, s) BPF_INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define BPF_ALU32_IMM(op, d, i) BPF_INSN(BPF_ALU | (op) | BPF_K, d, 0, 0, i)
#define BPF_ALU32_REG(op, d, s) BPF_INSN(BPF_ALU | (op) | BPF_X, d, s, 0, 0)
#define BPF_LDX_MEM(sz, d, s, o) BPF_INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define BPF_STX_MEM(sz, d, s, o) BPF_INSN(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define BPF_ST_MEM(sz, d, o, i)  BPF_INSN(BPF_ST | BPF_MEM | (sz), d, 0, o, i)
#define BPF_JMP_IMM(op, d, i, o) BPF_INSN(BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define BPF_JMP_REG(op, d, s, o) BPF_INSN(BPF_JMP | (op) | BPF_X, d, s, o, 0)
#define BPF_JMP_A(o)            BPF_INSN(BPF_JMP | BPF_JA, 0, 0, o, 0)
#define BPF_CALL_HELPER(id)     BPF_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, id)
#define BPF_EXIT_INSN()         BPF_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define BPF_LD_IMM64_RAW(d, s, v) \
    BPF_INSN(BPF_LD | BPF_DW | BPF_IMM, d, s, 0, (int32_t)(uint32_t)(v)), \
    BPF_INSN(0, 0, 0, 0, (int32_t)(uint32_t)((uint64_t)(v) >> 32))

static inline int bpf_is_ld_imm64(const struct bpf_insn *insn)
{
    return insn->code == (BPF_LD | BPF_DW | BPF_IMM);
}

#endif
