/*
 * asm.c - a small text assembler for eBPF, for tests, tools and error
 * messages. gvm_insn_str() (disasm.c) prints exactly this syntax, so text
 * and bytecode round-trip. The syntax follows the bpf_conformance suite
 * (and ubpf), with a few additions; `%r1` and `r1` are the same register,
 * and `w1` may be written for r1 in 32-bit operations.
 *
 *   # comment, ; comment          anywhere on a line
 *   name:                         label (may precede an instruction on a line);
 *                                 `exit` names the first exit unless defined
 *   add r1, r2 | add r1, 5        ALU64: add sub mul div sdiv or and lsh rsh
 *                                 mod smod xor mov arsh; `neg r1`
 *   add32 w1, 2                   ALU (32-bit, zero-extends): same names + 32
 *                                 (a `64` suffix is accepted for ALU64)
 *   movsx864 r1, r2               sign-extending move: movsx<from><to>,
 *                                 from 8/16/32, to 64; movsx832, movsx1632
 *   le16 r1, be32 r1, bswap64 r1  byte order (le/be 16/32/64; bswap = ALU64;
 *                                 `swap16` is an alias of bswap16)
 *   jeq r1, 5, +2                 jeq jne jgt jge jlt jle jset jsgt jsge
 *   jeq32 r1, r2, label           jslt jsle, and the same with 32 (JMP32);
 *                                 target: +N/-N (relative) or a label
 *   ja +1 | ja label              unconditional jump (16-bit offset)
 *   gotol label | ja32 label      unconditional jump, 32-bit offset in imm
 *   call 5 | call helper 5        helper call
 *   call local label | call label bpf-to-bpf call (pc-relative imm; also +N)
 *   call kfunc 7                  kfunc call by BTF id (loads reject it)
 *   callx r3 | call r3            indirect call (register in dst_reg)
 *   exit
 *   lddw r1, 0x1122334455667788   64-bit immediate (two slots)
 *   lddw r1, map:3                pseudo sources: map:FD, mapval:FD+OFF,
 *   lddw r1, mapval:3+16          mapidx:IDX, mapidxval:IDX+OFF, btf:ID,
 *   lddw r1, func:label           func:label or func:+N (BPF_PSEUDO_FUNC)
 *   ldxw r0, [r1+4]               loads: ldxb ldxh ldxw ldxdw; sign-extending
 *   ldxsb r0, [r1-2]              ldxsb ldxsh ldxsw; `[r1]` means `[r1+0]`
 *   stw [r10-4], 5                store immediate: stb sth stw stdw
 *   stxdw [r10-8], r1             store register: stxb stxh stxw stxdw
 *   lock add [r1+0], r2           atomics (64-bit; append 32 for 32-bit):
 *   lock fetch or32 [r1+0], r2    lock [fetch] add|or|and|xor, lock xchg,
 *   lock cmpxchg [r1+0], r2       lock cmpxchg (compares with r0). Aliases:
 *                                 atomic_add64, atomic_fetch_or32, xchg64,
 *                                 cmpxchg32, ...
 *   .raw 0x18, 1, 0, 0, 0x5       any 8-byte slot: code, dst, src, off, imm
 *
 * Numbers are decimal or 0x-hex with an optional sign; 32-bit immediates
 * keep the low 32 bits of what is written. Registers r0-r15 are accepted
 * (r11-r15 exist only so that invalid programs can be written for tests).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm_internal.h"

#define MAX_OPS 4

enum fix_kind { FIX_OFF, FIX_IMM };

struct fixup {
    uint32_t insn;
    enum fix_kind kind;
    unsigned line;
    char *label;
};

struct label {
    char *name;
    uint32_t insn;
};

struct asm_state {
    struct bpf_insn *insns;
    uint32_t n, cap;
    struct fixup *fix;
    uint32_t nfix, capfix;
    struct label *labels;
    uint32_t nlabels, caplabels;
    int64_t first_exit;
    unsigned line;
    struct graft_err *err;
};

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint32_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int fail(struct asm_state *st, const char *fmt, const char *arg)
{
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, arg);
    return graft_errf(st->err, -EINVAL, "line %u: %s", st->line, msg);
}

static struct bpf_insn *emit(struct asm_state *st)
{
    if (grow((void **)&st->insns, &st->cap, st->n + 1, sizeof(*st->insns)))
        return NULL;
    struct bpf_insn *in = &st->insns[st->n++];
    memset(in, 0, sizeof(*in));
    return in;
}

static int add_fixup(struct asm_state *st, enum fix_kind kind, const char *label)
{
    if (grow((void **)&st->fix, &st->capfix, st->nfix + 1, sizeof(*st->fix)))
        return -ENOMEM;
    char *copy = strdup(label);
    if (!copy)
        return -ENOMEM;
    st->fix[st->nfix++] = (struct fixup){ st->n - 1, kind, st->line, copy };
    return 0;
}

/* ---- operand parsing -------------------------------------------------- */

/* Parse a whole string as a number; false if it is not one. */
static bool parse_num(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0;
    int base = 10;

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return false;
    for (; *s; s++) {
        int d;
        if (isdigit((unsigned char)*s))
            d = *s - '0';
        else if (base == 16 && isxdigit((unsigned char)*s))
            d = tolower((unsigned char)*s) - 'a' + 10;
        else
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = (int64_t)(neg ? -v : v);
    return true;
}

static int parse_reg(struct asm_state *st, const char *s, uint8_t *reg)
{
    const char *p = s;
    int64_t v;
    if (*p == '%')
        p++;
    if ((*p == 'r' || *p == 'w') && isdigit((unsigned char)p[1]) && parse_num(p + 1, &v)
        && v >= 0 && v <= 15) {
        *reg = (uint8_t)v;
        return 0;
    }
    return fail(st, "expected a register (r0-r10), got '%s'", s);
}

static int parse_dst(struct asm_state *st, const char *s, struct bpf_insn *in)
{
    uint8_t r = 0;
    int e = parse_reg(st, s, &r);
    in->dst_reg = r;
    return e;
}

static int parse_src(struct asm_state *st, const char *s, struct bpf_insn *in)
{
    uint8_t r = 0;
    int e = parse_reg(st, s, &r);
    in->src_reg = r;
    return e;
}

static bool is_reg(const char *s)
{
    if (*s == '%')
        s++;
    if (*s != 'r' && *s != 'w')
        return false;
    for (s++; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static int parse_imm32(struct asm_state *st, const char *s, int32_t *imm)
{
    int64_t v;
    if (!parse_num(s, &v))
        return fail(st, "expected a number, got '%s'", s);
    *imm = (int32_t)(uint32_t)(uint64_t)v;
    return 0;
}

static int parse_off16(struct asm_state *st, const char *s, int16_t *off)
{
    int64_t v;
    if (!parse_num(s, &v))
        return fail(st, "expected an offset, got '%s'", s);
    if (v < INT16_MIN || v > UINT16_MAX)
        return fail(st, "offset '%s' does not fit in 16 bits", s);
    *off = (int16_t)(uint16_t)v;
    return 0;
}

/* [rN+off], [rN-off] or [rN] */
static int parse_mem(struct asm_state *st, const char *s, struct bpf_insn *in, bool dst)
{
    char buf[64];
    size_t len = strlen(s);
    if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len >= sizeof(buf))
        return fail(st, "expected a memory operand like [r1+8], got '%s'", s);
    memcpy(buf, s + 1, len - 2);
    buf[len - 2] = '\0';
    char *sign = strpbrk(buf, "+-");
    in->off = 0;
    if (sign) {
        int r = parse_off16(st, sign, &in->off);
        if (r)
            return r;
        *sign = '\0';
    }
    return dst ? parse_dst(st, buf, in) : parse_src(st, buf, in);
}

/* +N / -N / N: a relative target; anything else: a label */
static bool is_number_target(const char *s)
{
    int64_t v;
    return parse_num(s, &v);
}

static int parse_target(struct asm_state *st, const char *s, enum fix_kind kind,
                        struct bpf_insn *in)
{
    if (is_number_target(s)) {
        if (kind == FIX_OFF)
            return parse_off16(st, s, &in->off);
        return parse_imm32(st, s, &in->imm);
    }
    if (!isalpha((unsigned char)*s) && *s != '_' && *s != '.')
        return fail(st, "expected a jump target (+N, -N or a label), got '%s'", s);
    return add_fixup(st, kind, s) ? graft_errf(st->err, -ENOMEM, "out of memory") : 0;
}

/* ---- mnemonic families ------------------------------------------------ */

static int need_ops(struct asm_state *st, int nops, int want, const char *mn)
{
    if (nops == want)
        return 0;
    char msg[96];
    snprintf(msg, sizeof(msg), "'%s' takes %d operand%s, got %d", mn, want,
             want == 1 ? "" : "s", nops);
    return fail(st, "%s", msg);
}

static const char *const alu_ops[] = {
    "add", "sub", "mul", "div", "or", "and", "lsh", "rsh",
    "neg", "mod", "xor", "mov", "arsh",
};

static int asm_alu(struct asm_state *st, const char *mn, char **ops, int nops, bool *handled)
{
    char base[32];
    size_t len = strlen(mn);
    uint8_t cls = BPF_ALU64;
    int16_t off = 0;
    int op = -1;

    *handled = false;
    if (len >= sizeof(base))
        return 0;
    strcpy(base, mn);

    /* byte order */
    const char *bo[] = { "le", "be", "bswap", "swap" };
    for (int k = 0; k < 4; k++) {
        size_t bl = strlen(bo[k]);
        int64_t w;
        if (strncmp(mn, bo[k], bl) == 0 && parse_num(mn + bl, &w) && mn[bl] != '+'
            && mn[bl] != '-' && (w == 16 || w == 32 || w == 64)) {
            *handled = true;
            int r = need_ops(st, nops, 1, mn);
            struct bpf_insn *in;
            if (r)
                return r;
            if (!(in = emit(st)))
                return -ENOMEM;
            in->code = (k >= 2 ? BPF_ALU64 : BPF_ALU) | BPF_END | (k == 1 ? BPF_TO_BE : BPF_TO_LE);
            in->imm = (int32_t)w;
            return parse_dst(st, ops[0], in);
        }
    }

    if (strncmp(base, "movsx", 5) == 0) {
        const char *rest = base + 5;
        int64_t from, to = 0;
        size_t rl = strlen(rest);
        if (rl >= 3 && parse_num(rest + rl - 2, &to) && (to == 32 || to == 64)) {
            char fb[8] = { 0 };
            memcpy(fb, rest, rl - 2 < 7 ? rl - 2 : 7);
            if (parse_num(fb, &from) && (from == 8 || from == 16 || from == 32)) {
                *handled = true;
                int r = need_ops(st, nops, 2, mn);
                if (r)
                    return r;
                struct bpf_insn *in = emit(st);
                if (!in)
                    return -ENOMEM;
                in->code = (to == 64 ? BPF_ALU64 : BPF_ALU) | BPF_MOV | BPF_X;
                in->off = (int16_t)from;
                if ((r = parse_dst(st, ops[0], in)))
                    return r;
                return parse_src(st, ops[1], in);
            }
        }
        return 0;
    }

    if (len > 2 && strcmp(base + len - 2, "32") == 0) {
        cls = BPF_ALU;
        base[len - 2] = '\0';
    } else if (len > 2 && strcmp(base + len - 2, "64") == 0) {
        base[len - 2] = '\0';
    }
    if (strcmp(base, "sdiv") == 0) {
        strcpy(base, "div");
        off = 1;
    } else if (strcmp(base, "smod") == 0) {
        strcpy(base, "mod");
        off = 1;
    }
    for (int k = 0; k < (int)(sizeof(alu_ops) / sizeof(alu_ops[0])); k++)
        if (strcmp(base, alu_ops[k]) == 0)
            op = k << 4;
    if (op < 0)
        return 0;
    *handled = true;

    int r = need_ops(st, nops, op == BPF_NEG ? 1 : 2, mn);
    if (r)
        return r;
    struct bpf_insn *in = emit(st);
    if (!in)
        return -ENOMEM;
    in->off = off;
    if ((r = parse_dst(st, ops[0], in)))
        return r;
    if (op == BPF_NEG) {
        in->code = cls | BPF_NEG | BPF_K;
        return 0;
    }
    if (is_reg(ops[1])) {
        in->code = cls | (uint8_t)op | BPF_X;
        return parse_src(st, ops[1], in);
    }
    in->code = cls | (uint8_t)op | BPF_K;
    return parse_imm32(st, ops[1], &in->imm);
}

static const char *const jmp_ops[16] = {
    NULL, "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge",
    NULL, NULL, "jlt", "jle", "jslt", "jsle", NULL, NULL,
};

static int asm_jmp(struct asm_state *st, const char *mn, char **ops, int nops, bool *handled)
{
    char base[16];
    size_t len = strlen(mn);
    uint8_t cls = BPF_JMP;
    int op = -1, r;

    *handled = false;
    if (len >= sizeof(base))
        return 0;
    strcpy(base, mn);
    if (len > 2 && strcmp(base + len - 2, "32") == 0) {
        cls = BPF_JMP32;
        base[len - 2] = '\0';
    }
    for (int k = 0; k < 16; k++)
        if (jmp_ops[k] && strcmp(base, jmp_ops[k]) == 0)
            op = k << 4;
    if (op < 0)
        return 0;
    *handled = true;
    if ((r = need_ops(st, nops, 3, mn)))
        return r;
    struct bpf_insn *in = emit(st);
    if (!in)
        return -ENOMEM;
    if ((r = parse_dst(st, ops[0], in)))
        return r;
    if (is_reg(ops[1])) {
        in->code = cls | (uint8_t)op | BPF_X;
        if ((r = parse_src(st, ops[1], in)))
            return r;
    } else {
        in->code = cls | (uint8_t)op | BPF_K;
        if ((r = parse_imm32(st, ops[1], &in->imm)))
            return r;
    }
    return parse_target(st, ops[2], FIX_OFF, in);
}

/* call 5 | call helper 5 | call local L | call L | call kfunc 7 | call r3 */
static int asm_call(struct asm_state *st, char **ops, int nops)
{
    struct bpf_insn *in;
    const char *mode = NULL, *arg;
    char first[64];
    int r;

    if (nops != 1)
        return need_ops(st, nops, 1, "call");
    /* the mode word is separated from its argument by a space */
    const char *sp = strchr(ops[0], ' ');
    if (sp) {
        size_t ml = (size_t)(sp - ops[0]);
        if (ml >= sizeof(first))
            return fail(st, "bad call operand '%s'", ops[0]);
        memcpy(first, ops[0], ml);
        first[ml] = '\0';
        mode = first;
        arg = sp + 1;
        while (*arg == ' ')
            arg++;
    } else {
        arg = ops[0];
    }
    if (!(in = emit(st)))
        return -ENOMEM;
    if (is_reg(arg) && (!mode || strcmp(mode, "helper") == 0)) {
        in->code = BPF_JMP | BPF_CALL | BPF_X;
        return parse_dst(st, arg, in);
    }
    in->code = BPF_JMP | BPF_CALL | BPF_K;
    if (!mode) {
        int64_t v;
        if (!parse_num(arg, &v) || arg[0] == '+' || arg[0] == '-')
            mode = "local";
        else
            mode = "helper";
    }
    if (strcmp(mode, "helper") == 0)
        return parse_imm32(st, arg, &in->imm);
    if (strcmp(mode, "kfunc") == 0 || strcmp(mode, "runtime") == 0) {
        in->src_reg = BPF_PSEUDO_KFUNC_CALL;
        return parse_imm32(st, arg, &in->imm);
    }
    if (strcmp(mode, "local") == 0) {
        in->src_reg = BPF_PSEUDO_CALL;
        return parse_target(st, arg, FIX_IMM, in);
    }
    r = fail(st, "unknown call kind '%s' (helper, local or kfunc)", mode);
    return r;
}

static int asm_lddw(struct asm_state *st, char **ops, int nops)
{
    int r = need_ops(st, nops, 2, "lddw");
    if (r)
        return r;
    struct bpf_insn *in = emit(st);
    if (!in || !emit(st))
        return -ENOMEM;
    in = &st->insns[st->n - 2];
    in->code = BPF_LD | BPF_IMM | BPF_DW;
    if ((r = parse_dst(st, ops[0], in)))
        return r;

    static const struct { const char *pfx; uint8_t src; bool has_off; } kinds[] = {
        { "mapidxval:", BPF_PSEUDO_MAP_IDX_VALUE, true },
        { "mapidx:", BPF_PSEUDO_MAP_IDX, false },
        { "mapval:", BPF_PSEUDO_MAP_VALUE, true },
        { "map:", BPF_PSEUDO_MAP_FD, false },
        { "btf:", BPF_PSEUDO_BTF_ID, false },
    };
    const char *v = ops[1];
    if (strncmp(v, "func:", 5) == 0) {
        in->src_reg = BPF_PSEUDO_FUNC;
        /* the fixup is recorded against the first slot */
        st->n--;
        r = parse_target(st, v + 5, FIX_IMM, in);
        st->n++;
        return r;
    }
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t pl = strlen(kinds[k].pfx);
        if (strncmp(v, kinds[k].pfx, pl) != 0)
            continue;
        char buf[64];
        if (strlen(v + pl) >= sizeof(buf))
            return fail(st, "bad lddw operand '%s'", v);
        strcpy(buf, v + pl);
        in->src_reg = kinds[k].src;
        if (kinds[k].has_off) {
            char *sign = strpbrk(buf + 1, "+-");
            if (sign) {
                if ((r = parse_imm32(st, sign, &st->insns[st->n - 1].imm)))
                    return r;
                *sign = '\0';
            }
        }
        return parse_imm32(st, buf, &in->imm);
    }
    int64_t x;
    if (!parse_num(v, &x))
        return fail(st, "expected a 64-bit number or map:/mapval:/func: reference, got '%s'", v);
    in->imm = (int32_t)(uint32_t)(uint64_t)x;
    st->insns[st->n - 1].imm = (int32_t)(uint32_t)((uint64_t)x >> 32);
    return 0;
}

static int size_of(const char *s, uint8_t *size)
{
    if (strcmp(s, "b") == 0) *size = BPF_B;
    else if (strcmp(s, "h") == 0) *size = BPF_H;
    else if (strcmp(s, "w") == 0) *size = BPF_W;
    else if (strcmp(s, "dw") == 0) *size = BPF_DW;
    else return -1;
    return 0;
}

static int asm_mem(struct asm_state *st, const char *mn, char **ops, int nops, bool *handled)
{
    uint8_t size;
    struct bpf_insn *in;
    int r;

    *handled = true;
    if (strncmp(mn, "ldxs", 4) == 0 && size_of(mn + 4, &size) == 0 && size != BPF_DW) {
        if ((r = need_ops(st, nops, 2, mn)))
            return r;
        if (!(in = emit(st)))
            return -ENOMEM;
        in->code = BPF_LDX | BPF_MEMSX | size;
        if ((r = parse_dst(st, ops[0], in)))
            return r;
        return parse_mem(st, ops[1], in, false);
    }
    if (strncmp(mn, "ldx", 3) == 0 && size_of(mn + 3, &size) == 0) {
        if ((r = need_ops(st, nops, 2, mn)))
            return r;
        if (!(in = emit(st)))
            return -ENOMEM;
        in->code = BPF_LDX | BPF_MEM | size;
        if ((r = parse_dst(st, ops[0], in)))
            return r;
        return parse_mem(st, ops[1], in, false);
    }
    if (strncmp(mn, "stx", 3) == 0 && size_of(mn + 3, &size) == 0) {
        if ((r = need_ops(st, nops, 2, mn)))
            return r;
        if (!(in = emit(st)))
            return -ENOMEM;
        in->code = BPF_STX | BPF_MEM | size;
        if ((r = parse_mem(st, ops[0], in, true)))
            return r;
        return parse_src(st, ops[1], in);
    }
    if (strncmp(mn, "st", 2) == 0 && size_of(mn + 2, &size) == 0) {
        if ((r = need_ops(st, nops, 2, mn)))
            return r;
        if (!(in = emit(st)))
            return -ENOMEM;
        in->code = BPF_ST | BPF_MEM | size;
        if ((r = parse_mem(st, ops[0], in, true)))
            return r;
        return parse_imm32(st, ops[1], &in->imm);
    }
    *handled = false;
    return 0;
}

/* "add", "fetch add32", "xchg", "cmpxchg32" (after `lock`) or the aliases
 * atomic_add64, atomic_fetch_or32, xchg64, cmpxchg32. */
static int atomic_op(const char *words, int32_t *imm, uint8_t *size)
{
    char w[32];
    if (strlen(words) >= sizeof(w))
        return -1;
    strcpy(w, words);
    for (char *p = w; *p; p++)
        if (*p == ' ' || *p == '_')
            *p = ' ';
    char *s = w;
    if (strncmp(s, "atomic ", 7) == 0)
        s += 7;
    bool fetch = false;
    if (strncmp(s, "fetch ", 6) == 0) {
        fetch = true;
        s += 6;
    }
    size_t len = strlen(s);
    *size = BPF_DW;
    if (len > 2 && strcmp(s + len - 2, "32") == 0) {
        *size = BPF_W;
        s[len - 2] = '\0';
    } else if (len > 2 && strcmp(s + len - 2, "64") == 0) {
        s[len - 2] = '\0';
    }
    if (strcmp(s, "add") == 0) *imm = BPF_ADD;
    else if (strcmp(s, "or") == 0) *imm = BPF_OR;
    else if (strcmp(s, "and") == 0) *imm = BPF_AND;
    else if (strcmp(s, "xor") == 0) *imm = BPF_XOR;
    else if (strcmp(s, "xchg") == 0 && !fetch) { *imm = BPF_XCHG; return 0; }
    else if (strcmp(s, "cmpxchg") == 0 && !fetch) { *imm = BPF_CMPXCHG; return 0; }
    else return -1;
    if (fetch)
        *imm |= BPF_FETCH;
    return 0;
}

static int asm_atomic(struct asm_state *st, const char *words, char **ops, int nops)
{
    int32_t imm;
    uint8_t size;
    int r;
    if (atomic_op(words, &imm, &size))
        return fail(st, "unknown atomic operation '%s'", words);
    if ((r = need_ops(st, nops, 2, words)))
        return r;
    struct bpf_insn *in = emit(st);
    if (!in)
        return -ENOMEM;
    in->code = BPF_STX | BPF_ATOMIC | size;
    in->imm = imm;
    if ((r = parse_mem(st, ops[0], in, true)))
        return r;
    return parse_src(st, ops[1], in);
}

static int asm_raw(struct asm_state *st, char **ops, int nops)
{
    int64_t v[5];
    int r = need_ops(st, nops, 5, ".raw");
    if (r)
        return r;
    for (int k = 0; k < 5; k++)
        if (!parse_num(ops[k], &v[k]))
            return fail(st, "expected a number in .raw, got '%s'", ops[k]);
    if (v[0] < 0 || v[0] > 255 || v[1] < 0 || v[1] > 15 || v[2] < 0 || v[2] > 15
        || v[3] < INT16_MIN || v[3] > UINT16_MAX)
        return fail(st, "%s", ".raw field out of range (code 0-255, regs 0-15, off 16-bit)");
    struct bpf_insn *in = emit(st);
    if (!in)
        return -ENOMEM;
    in->code = (uint8_t)v[0];
    in->dst_reg = (uint8_t)v[1];
    in->src_reg = (uint8_t)v[2];
    in->off = (int16_t)(uint16_t)v[3];
    in->imm = (int32_t)(uint32_t)(uint64_t)v[4];
    return 0;
}

/* ---- lines ------------------------------------------------------------ */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int add_label(struct asm_state *st, const char *name)
{
    for (uint32_t k = 0; k < st->nlabels; k++)
        if (strcmp(st->labels[k].name, name) == 0)
            return fail(st, "label '%s' is defined twice", name);
    if (grow((void **)&st->labels, &st->caplabels, st->nlabels + 1, sizeof(*st->labels)))
        return -ENOMEM;
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    st->labels[st->nlabels++] = (struct label){ copy, st->n };
    return 0;
}

/* Remove spaces inside [...] so "[r10 - 8]" reads as "[r10-8]". */
static void squeeze_brackets(char *s)
{
    bool in = false;
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '[')
            in = true;
        else if (*r == ']')
            in = false;
        if (in && isspace((unsigned char)*r))
            continue;
        *w++ = *r;
    }
    *w = '\0';
}

static int asm_line(struct asm_state *st, char *line)
{
    char *c = strpbrk(line, "#;");
    if (c)
        *c = '\0';
    char *s = trim(line);

    /* leading labels */
    for (;;) {
        char *p = s;
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
            p++;
        if (p == s || *p != ':')
            break;
        *p = '\0';
        int r = add_label(st, s);
        if (r)
            return r;
        s = trim(p + 1);
    }
    if (!*s)
        return 0;
    squeeze_brackets(s);

    /* mnemonic: first word; `lock` takes the op words that follow */
    char *mn = s;
    while (*s && !isspace((unsigned char)*s))
        s++;
    if (*s)
        *s++ = '\0';
    s = trim(s);
    for (char *p = mn; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    char lockwords[40] = "";
    if (strcmp(mn, "lock") == 0) {
        /* "fetch add32 [..], r1" or "add [..], r1" */
        char *bracket = strchr(s, '[');
        if (!bracket)
            return fail(st, "%s", "lock needs an operation and a memory operand");
        size_t wl = (size_t)(bracket - s);
        if (wl >= sizeof(lockwords))
            return fail(st, "bad lock operation '%s'", s);
        memcpy(lockwords, s, wl);
        lockwords[wl] = '\0';
        char *t = trim(lockwords);
        memmove(lockwords, t, strlen(t) + 1);
        s = bracket;
    }

    char *ops[MAX_OPS + 1];
    int nops = 0;
    if (*s) {
        char *tok = s;
        for (;;) {
            char *comma = strchr(tok, ',');
            if (comma)
                *comma = '\0';
            if (nops > MAX_OPS)
                return fail(st, "too many operands for '%s'", mn);
            ops[nops++] = trim(tok);
            if (!comma)
                break;
            tok = comma + 1;
        }
        if (nops > 5)
            return fail(st, "too many operands for '%s'", mn);
    }
    for (int k = 0; k < nops; k++)
        if (!*ops[k])
            return fail(st, "empty operand in '%s'", mn);

    bool handled;
    int r;
    if (strcmp(mn, "lock") == 0)
        return asm_atomic(st, lockwords, ops, nops);
    if (strncmp(mn, "atomic_", 7) == 0 || strncmp(mn, "xchg", 4) == 0
        || strncmp(mn, "cmpxchg", 7) == 0)
        return asm_atomic(st, mn, ops, nops);
    if (strcmp(mn, ".raw") == 0)
        return asm_raw(st, ops, nops);
    if (strcmp(mn, "exit") == 0) {
        if ((r = need_ops(st, nops, 0, mn)))
            return r;
        struct bpf_insn *in = emit(st);
        if (!in)
            return -ENOMEM;
        in->code = BPF_JMP | BPF_EXIT;
        if (st->first_exit < 0)
            st->first_exit = st->n - 1;
        return 0;
    }
    if (strcmp(mn, "ja") == 0 || strcmp(mn, "ja32") == 0 || strcmp(mn, "gotol") == 0) {
        if ((r = need_ops(st, nops, 1, mn)))
            return r;
        struct bpf_insn *in = emit(st);
        if (!in)
            return -ENOMEM;
        bool wide = strcmp(mn, "ja") != 0;
        in->code = (wide ? BPF_JMP32 : BPF_JMP) | BPF_JA;
        return parse_target(st, ops[0], wide ? FIX_IMM : FIX_OFF, in);
    }
    if (strcmp(mn, "call") == 0)
        return asm_call(st, ops, nops);
    if (strcmp(mn, "callx") == 0) {
        if ((r = need_ops(st, nops, 1, mn)))
            return r;
        struct bpf_insn *in = emit(st);
        if (!in)
            return -ENOMEM;
        in->code = BPF_JMP | BPF_CALL | BPF_X;
        return parse_dst(st, ops[0], in);
    }
    if (strcmp(mn, "lddw") == 0)
        return asm_lddw(st, ops, nops);
    if ((r = asm_mem(st, mn, ops, nops, &handled)) || handled)
        return r;
    if ((r = asm_alu(st, mn, ops, nops, &handled)) || handled)
        return r;
    if ((r = asm_jmp(st, mn, ops, nops, &handled)) || handled)
        return r;
    return fail(st, "unknown mnemonic '%s'", mn);
}

static int resolve_fixups(struct asm_state *st)
{
    for (uint32_t k = 0; k < st->nfix; k++) {
        struct fixup *f = &st->fix[k];
        int64_t target = -1;
        for (uint32_t l = 0; l < st->nlabels; l++)
            if (strcmp(st->labels[l].name, f->label) == 0)
                target = st->labels[l].insn;
        if (target < 0 && strcmp(f->label, "exit") == 0)
            target = st->first_exit;
        st->line = f->line;
        if (target < 0)
            return fail(st, "undefined label '%s'", f->label);
        int64_t rel = target - (int64_t)f->insn - 1;
        if (f->kind == FIX_OFF) {
            if (rel < INT16_MIN || rel > INT16_MAX)
                return fail(st, "label '%s' is too far for a 16-bit offset; use gotol",
                            f->label);
            st->insns[f->insn].off = (int16_t)rel;
        } else {
            st->insns[f->insn].imm = (int32_t)rel;
        }
    }
    return 0;
}

static void free_state(struct asm_state *st)
{
    for (uint32_t k = 0; k < st->nfix; k++)
        free(st->fix[k].label);
    for (uint32_t k = 0; k < st->nlabels; k++)
        free(st->labels[k].name);
    free(st->fix);
    free(st->labels);
}

int gvm_asm(const char *text, struct bpf_insn **out, uint32_t *n, struct graft_err *err)
{
    struct asm_state st = { .first_exit = -1, .err = err };
    int r = 0;

    *out = NULL;
    *n = 0;
    if (!text)
        return graft_errf(err, -EINVAL, "no assembler text");
    const char *p = text;
    while (*p && !r) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = malloc(len + 1);
        if (!line) {
            r = -ENOMEM;
            break;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        st.line++;
        r = asm_line(&st, line);
        free(line);
        p = e ? e + 1 : p + len;
    }
    if (!r)
        r = resolve_fixups(&st);
    if (!r && st.n == 0)
        r = graft_errf(err, -EINVAL, "no instructions in assembler text");
    if (r == -ENOMEM)
        graft_errf(err, r, "line %u: out of memory", st.line);
    free_state(&st);
    if (r) {
        free(st.insns);
        return r;
    }
    *out = st.insns;
    *n = st.n;
    return 0;
}
