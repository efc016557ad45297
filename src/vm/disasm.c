/*
 * disasm.c - one instruction to text, in exactly the syntax asm.c reads
 * (documented at the top of asm.c), so that gvm_asm(gvm_insn_str(x)) == x
 * for every instruction. Anything that is not the one canonical encoding
 * of a known instruction (unknown opcode, non-zero reserved fields,
 * truncated lddw) is printed as a `.raw` directive, which also round-trips.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vm/vm_internal.h"

static const char *const alu_names[16] = {
    "add", "sub", "mul", "div", "or", "and", "lsh", "rsh",
    "neg", "mod", "xor", "mov", "arsh", "end", NULL, NULL,
};

static const char *const jmp_names[16] = {
    "ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge",
    "call", "exit", "jlt", "jle", "jslt", "jsle", NULL, NULL,
};

static const char *const size_names[4] = { "w", "h", "b", "dw" };

/* Immediates: small ones in decimal, the rest as 32-bit hex. */
static void fmt_imm(char *out, size_t len, int32_t imm)
{
    if (imm >= -65536 && imm <= 65536)
        snprintf(out, len, "%d", imm);
    else
        snprintf(out, len, "0x%" PRIx32, (uint32_t)imm);
}

static const char *raw(const struct bpf_insn *in, char *buf, size_t len)
{
    snprintf(buf, len, ".raw 0x%02x, %u, %u, %d, 0x%" PRIx32,
             in->code, in->dst_reg, in->src_reg, in->off, (uint32_t)in->imm);
    return buf;
}

static const char *alu_str(const struct bpf_insn *in, char *buf, size_t len)
{
    bool is64 = BPF_CLASS(in->code) == BPF_ALU64;
    uint8_t op = BPF_OP(in->code);
    const char *sfx = is64 ? "" : "32";
    char imm[24];

    if (op == BPF_END) {
        const char *name = is64 ? "bswap" : BPF_SRC(in->code) == BPF_TO_BE ? "be" : "le";
        snprintf(buf, len, "%s%d r%u", name, in->imm, in->dst_reg);
        return buf;
    }
    if (op == BPF_NEG) {
        snprintf(buf, len, "neg%s r%u", sfx, in->dst_reg);
        return buf;
    }
    if (op == BPF_MOV && in->off) {
        snprintf(buf, len, "movsx%d%s r%u, r%u", in->off, is64 ? "64" : "32",
                 in->dst_reg, in->src_reg);
        return buf;
    }
    const char *name = alu_names[op >> 4];
    if (op == BPF_DIV && in->off)
        name = "sdiv";
    if (op == BPF_MOD && in->off)
        name = "smod";
    if (BPF_SRC(in->code) == BPF_X)
        snprintf(buf, len, "%s%s r%u, r%u", name, sfx, in->dst_reg, in->src_reg);
    else {
        fmt_imm(imm, sizeof(imm), in->imm);
        snprintf(buf, len, "%s%s r%u, %s", name, sfx, in->dst_reg, imm);
    }
    return buf;
}

static const char *jmp_str(const struct bpf_insn *in, char *buf, size_t len)
{
    bool is32 = BPF_CLASS(in->code) == BPF_JMP32;
    uint8_t op = BPF_OP(in->code);
    char imm[24];

    switch (op) {
    case BPF_JA:
        if (is32)
            snprintf(buf, len, "gotol %+d", in->imm);
        else
            snprintf(buf, len, "ja %+d", in->off);
        return buf;
    case BPF_EXIT:
        snprintf(buf, len, "exit");
        return buf;
    case BPF_CALL:
        if (BPF_SRC(in->code) == BPF_X) {
            if (!in->dst_reg && in->imm)
                return raw(in, buf, len);   /* old LLVM encoding */
            snprintf(buf, len, "callx r%u", in->dst_reg);
        } else if (in->src_reg == BPF_PSEUDO_CALL)
            snprintf(buf, len, "call local %+d", in->imm);
        else if (in->src_reg == BPF_PSEUDO_KFUNC_CALL)
            snprintf(buf, len, "call kfunc %d", in->imm);
        else /* "call -1" would read as a relative local call */
            snprintf(buf, len, in->imm < 0 ? "call helper %d" : "call %d", in->imm);
        return buf;
    }
    const char *name = jmp_names[op >> 4];
    if (BPF_SRC(in->code) == BPF_X)
        snprintf(buf, len, "%s%s r%u, r%u, %+d", name, is32 ? "32" : "",
                 in->dst_reg, in->src_reg, in->off);
    else {
        fmt_imm(imm, sizeof(imm), in->imm);
        snprintf(buf, len, "%s%s r%u, %s, %+d", name, is32 ? "32" : "",
                 in->dst_reg, imm, in->off);
    }
    return buf;
}

static const char *lddw_str(const struct bpf_insn *in, char *buf, size_t len)
{
    int32_t hi = in[1].imm;

    switch (in->src_reg) {
    case 0:
        snprintf(buf, len, "lddw r%u, 0x%" PRIx64, in->dst_reg,
                 (uint64_t)(uint32_t)in->imm | ((uint64_t)(uint32_t)hi << 32));
        return buf;
    case BPF_PSEUDO_MAP_VALUE:
        snprintf(buf, len, "lddw r%u, mapval:%d%+d", in->dst_reg, in->imm, hi);
        return buf;
    case BPF_PSEUDO_MAP_IDX_VALUE:
        snprintf(buf, len, "lddw r%u, mapidxval:%d%+d", in->dst_reg, in->imm, hi);
        return buf;
    }
    if (hi)
        return raw(in, buf, len);
    switch (in->src_reg) {
    case BPF_PSEUDO_MAP_FD:
        snprintf(buf, len, "lddw r%u, map:%d", in->dst_reg, in->imm);
        break;
    case BPF_PSEUDO_MAP_IDX:
        snprintf(buf, len, "lddw r%u, mapidx:%d", in->dst_reg, in->imm);
        break;
    case BPF_PSEUDO_BTF_ID:
        snprintf(buf, len, "lddw r%u, btf:%d", in->dst_reg, in->imm);
        break;
    default: /* BPF_PSEUDO_FUNC */
        snprintf(buf, len, "lddw r%u, func:%+d", in->dst_reg, in->imm);
        break;
    }
    return buf;
}

static const char *mem_str(const struct bpf_insn *in, char *buf, size_t len)
{
    uint8_t cls = BPF_CLASS(in->code);
    const char *sz = size_names[BPF_SIZE(in->code) >> 3];
    char imm[24];

    if (cls == BPF_LDX) {
        snprintf(buf, len, "ldx%s%s r%u, [r%u%+d]",
                 BPF_MODE(in->code) == BPF_MEMSX ? "s" : "", sz,
                 in->dst_reg, in->src_reg, in->off);
    } else if (cls == BPF_ST) {
        fmt_imm(imm, sizeof(imm), in->imm);
        snprintf(buf, len, "st%s [r%u%+d], %s", sz, in->dst_reg, in->off, imm);
    } else if (BPF_MODE(in->code) == BPF_MEM) {
        snprintf(buf, len, "stx%s [r%u%+d], r%u", sz, in->dst_reg, in->off, in->src_reg);
    } else {
        const char *sfx = BPF_SIZE(in->code) == BPF_W ? "32" : "";
        const char *op;
        switch (in->imm & ~BPF_FETCH) {
        case BPF_ADD: op = "add"; break;
        case BPF_OR:  op = "or"; break;
        case BPF_AND: op = "and"; break;
        case BPF_XOR: op = "xor"; break;
        case BPF_XCHG & ~BPF_FETCH: op = "xchg"; break;
        default: op = "cmpxchg"; break;
        }
        bool fetch = (in->imm & BPF_FETCH) && in->imm != BPF_XCHG && in->imm != BPF_CMPXCHG;
        snprintf(buf, len, "lock %s%s%s [r%u%+d], r%u", fetch ? "fetch " : "", op, sfx,
                 in->dst_reg, in->off, in->src_reg);
    }
    return buf;
}

const char *gvm_insn_str(const struct bpf_insn *insns, uint32_t n, uint32_t idx,
                         char *buf, size_t len)
{
    if (!len)
        return buf;
    if (idx >= n) {
        snprintf(buf, len, "<insn %u out of range>", idx);
        return buf;
    }
    const struct bpf_insn *in = &insns[idx];
    if (gvm_insn_shape_error(in))
        return raw(in, buf, len);
    switch (BPF_CLASS(in->code)) {
    case BPF_ALU: case BPF_ALU64:
        return alu_str(in, buf, len);
    case BPF_JMP: case BPF_JMP32:
        return jmp_str(in, buf, len);
    case BPF_LD:
        if (idx + 1 >= n || in[1].code || in[1].dst_reg || in[1].src_reg || in[1].off)
            return raw(in, buf, len);
        return lddw_str(in, buf, len);
    default:
        return mem_str(in, buf, len);
    }
}
