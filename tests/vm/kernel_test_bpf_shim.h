/*
 * kernel_test_bpf_shim.h - the kernel types and instruction macros that the
 * lib/test_bpf.c table uses, defined from the ISA (vm/isa.h) so the table
 * compiles in user space. Written for graft; names follow the kernel's.
 */
#ifndef GRAFT_TESTS_VM_KERNEL_TEST_BPF_SHIM_H
#define GRAFT_TESTS_VM_KERNEL_TEST_BPF_SHIM_H

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/isa.h"

typedef uint8_t __u8, u8;
typedef uint16_t __u16, u16;
typedef uint32_t __u32, u32;
typedef uint64_t __u64, u64;
typedef int8_t __s8, s8;
typedef int16_t __s16, s16;
typedef int32_t __s32, s32;
typedef int64_t __s64, s64;

#define BIT(n) (1ul << (n))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KTB_FILL_HELPER ((int (*)(struct bpf_test *))1)

#define U8_MAX  UINT8_MAX
#define U16_MAX UINT16_MAX
#define U32_MAX UINT32_MAX
#define U64_MAX UINT64_MAX
#define S8_MIN  INT8_MIN
#define S8_MAX  INT8_MAX
#define S16_MIN INT16_MIN
#define S16_MAX INT16_MAX
#define S32_MIN INT32_MIN
#define S32_MAX INT32_MAX
#define S64_MIN INT64_MIN
#define S64_MAX INT64_MAX

enum { BPF_REG_0, BPF_REG_1, BPF_REG_2, BPF_REG_3, BPF_REG_4, BPF_REG_5,
       BPF_REG_6, BPF_REG_7, BPF_REG_8, BPF_REG_9, BPF_REG_10 };
#define BPF_REG_FP BPF_REG_10
#define BPF_MAXINSNS 4096

/* classic BPF: only so the classic cases compile; the runner skips them */
struct sock_filter {
    __u16 code;
    __u8 jt, jf;
    __u32 k;
};
#define BPF_STMT(code, k) { (unsigned short)(code), 0, 0, k }
#define BPF_JUMP(code, k, jt, jf) { (unsigned short)(code), jt, jf, k }
#define BPF_RET  0x06
#define BPF_MISC 0x07
#define BPF_LEN  0x80
#define BPF_MSH  0xa0
#define BPF_A    0x10
#define BPF_TAX  0x00
#define BPF_TXA  0x80
#define BPF_JMP_CLASSIC BPF_JMP
#define SKF_AD_OFF (-0x1000)
#define SKF_AD_PROTOCOL 0
#define SKF_AD_PKTTYPE 4
#define SKF_AD_IFINDEX 8
#define SKF_AD_NLATTR 12
#define SKF_AD_NLATTR_NEST 16
#define SKF_AD_MARK 20
#define SKF_AD_QUEUE 24
#define SKF_AD_HATYPE 28
#define SKF_AD_RXHASH 32
#define SKF_AD_CPU 36
#define SKF_AD_ALU_XOR_X 40
#define SKF_AD_VLAN_TAG 44
#define SKF_AD_VLAN_TAG_PRESENT 48
#define SKF_AD_PAY_OFFSET 52
#define SKF_AD_RANDOM 56
#define SKF_AD_VLAN_TPID 60
#define SKF_AD_MAX 64
#define SKF_NET_OFF (-0x100000)
#define SKF_LL_OFF (-0x200000)
#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define PACKET_HOST 0
#define PACKET_OTHERHOST 3

/* byte order of constants: x86-64 is little-endian */
#define cpu_to_le16(x) ((__u16)(x))
#define cpu_to_le32(x) ((__u32)(x))
#define cpu_to_le64(x) ((__u64)(x))
#define cpu_to_be16(x) __builtin_bswap16((__u16)(x))
#define cpu_to_be32(x) __builtin_bswap32((__u32)(x))
#define cpu_to_be64(x) __builtin_bswap64((__u64)(x))
#define BPF_FROM_LE BPF_TO_LE
#define BPF_FROM_BE BPF_TO_BE

/* eBPF instruction macros the table uses beyond vm/isa.h's */
#define BPF_ALU32_IMM_OFF(op, d, i, o) BPF_INSN(BPF_ALU | (op) | BPF_K, d, 0, o, i)
#define BPF_MOV32_IMM(d, i)     BPF_INSN(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, i)
#define BPF_MOV32_REG(d, s)     BPF_INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define BPF_ZEXT_REG(d)         BPF_INSN(BPF_ALU | BPF_MOV | BPF_X, d, d, 0, 1)
#define BPF_ENDIAN(type, d, len) BPF_INSN(BPF_ALU | BPF_END | (type), d, 0, 0, len)
#define BPF_LD_IMM64(d, v)      BPF_LD_IMM64_RAW(d, 0, v)
#define BPF_LD_ABS(sz, i)       BPF_INSN(BPF_LD | (sz) | BPF_ABS, 0, 0, 0, i)
#define BPF_LD_IND(sz, s, i)    BPF_INSN(BPF_LD | (sz) | BPF_IND, 0, s, 0, i)
#define BPF_ATOMIC_OP(sz, op, d, s, o) BPF_INSN(BPF_STX | (sz) | BPF_ATOMIC, d, s, o, op)
#define BPF_STX_XADD(sz, d, s, o) BPF_ATOMIC_OP(sz, BPF_ADD, d, s, o)
#define BPF_JMP32_IMM(op, d, i, o) BPF_INSN(BPF_JMP32 | (op) | BPF_K, d, 0, o, i)
#define BPF_JMP32_REG(op, d, s, o) BPF_INSN(BPF_JMP32 | (op) | BPF_X, d, s, o, 0)
#define BPF_RAW_INSN(c, d, s, o, i) BPF_INSN(c, d, s, o, i)
#define BPF_CALL_REL(i)         BPF_INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, i)

#endif
