/*
 * scan_find.c - find and classify every WRPKRU/XRSTOR/XRSTORS in a buffer of
 * code (scan_internal.h).
 *
 * Pattern first: every executable 0f 01 ef (WRPKRU), 0f ae /5 and 0f c7 /3
 * with a memory operand (XRSTOR, XRSTORS; a REX or other prefix before the
 * 0f only changes the operand size) is a candidate, wherever it is - a jump
 * to its 0f byte executes it, so an occurrence inside another instruction
 * counts too (ERIM's rule). Only buffers with candidates are decoded, and
 * only the symbol region holding them, up to the candidate: that tells
 * whether the occurrence is on an instruction boundary of the code's own
 * control flow (decoded linearly from the last ELF function symbol before
 * it, never across the next, undecodable bytes stepped over one at a time,
 * exactly as the full-decode scanner this replaced) and gives the
 * instructions around it for the classification:
 *
 *   checked   WRPKRU followed by cmp eax, imm32; je/jne (graft's gate
 *             shape): the code writes that immediate or traps
 *   fixed     WRPKRU right after mov eax, imm32 (no branch between): its own
 *             path writes that value
 *   rmw       WRPKRU after an RDPKRU in the same function (glibc's pkey_set):
 *             changes the key bits its caller asks for
 *   masked    XRSTOR(S) right after mov eax, imm32 / xor eax, eax whose bit
 *             9 (PKRU) is clear: the requested-feature bitmap EDX:EAX leaves
 *             PKRU alone on its own path (ld.so's lazy-binding trampolines)
 *   open      anything else on an instruction boundary
 *   unaligned inside another instruction (or across two mappings): reached
 *             only by a jump into the middle of code
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "isolation/scan_internal.h"
#include "util/pkru_pattern.h"

#define PKRU_XFEATURE_BIT (1u << 9)

/* The patterns themselves are util/pkru_pattern.h's, shared with the JIT. */
_Static_assert((int)GISO_INSN_WRPKRU == (int)GPKRU_WRPKRU && (int)GISO_INSN_XRSTOR == (int)GPKRU_XRSTOR
               && (int)GISO_INSN_XRSTORS == (int)GPKRU_XRSTORS, "giso_insn mirrors gpkru_insn");

int gscan_candidate(const uint8_t *c, size_t avail, enum giso_insn *kind)
{
    enum gpkru_insn k = gpkru_pattern_at(c, avail);
    if (k == GPKRU_NONE)
        return 0;
    *kind = (enum giso_insn)k;
    return 1;
}

const char *gscan_insn_name(enum giso_insn k)
{
    return k == GISO_INSN_WRPKRU ? "wrpkru" : k == GISO_INSN_XRSTOR ? "xrstor" : "xrstors";
}

static int is_prefix(uint8_t b)
{
    return (b >= 0x40 && b <= 0x4f) || b == 0x66 || b == 0x67 || b == 0xf2 || b == 0xf3 ||
           b == 0xf0 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 ||
           b == 0x65;
}

static int ours(ZydisMnemonic m, enum giso_insn *kind)
{
    switch (m) {
    case ZYDIS_MNEMONIC_WRPKRU: *kind = GISO_INSN_WRPKRU; return 1;
    case ZYDIS_MNEMONIC_XRSTOR:
    case ZYDIS_MNEMONIC_XRSTOR64: *kind = GISO_INSN_XRSTOR; return 1;
    case ZYDIS_MNEMONIC_XRSTORS:
    case ZYDIS_MNEMONIC_XRSTORS64: *kind = GISO_INSN_XRSTORS; return 1;
    default: return 0;
    }
}

/* ---- classification ---------------------------------------------------- */

#define LOOKBACK 16

struct ctx {
    ZydisDecoder min, full;
    const uint8_t *code;
    size_t len;
};

static int decode_full(const struct ctx *x, size_t at, size_t end, ZydisDecodedInstruction *in,
                       ZydisDecodedOperand *ops)
{
    return at < end && ZYAN_SUCCESS(ZydisDecoderDecodeFull(&x->full, x->code + at, end - at,
                                                           in, ops));
}

static int is_eax_family(ZydisRegister r)
{
    return r == ZYDIS_REGISTER_EAX || r == ZYDIS_REGISTER_RAX || r == ZYDIS_REGISTER_AX ||
           r == ZYDIS_REGISTER_AL || r == ZYDIS_REGISTER_AH;
}

/* Does the instruction write (e)ax? If it sets it to a constant, *value. */
static int writes_eax(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
                      int *is_const, uint32_t *value)
{
    int w = 0;
    for (int i = 0; i < in->operand_count; i++)
        if (ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER && is_eax_family(ops[i].reg.value) &&
            (ops[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
            w = 1;
    *is_const = 0;
    if (!w)
        return 0;
    if (in->mnemonic == ZYDIS_MNEMONIC_MOV && in->operand_count_visible == 2 &&
        (ops[0].reg.value == ZYDIS_REGISTER_EAX || ops[0].reg.value == ZYDIS_REGISTER_RAX) &&
        ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        *is_const = 1, *value = (uint32_t)ops[1].imm.value.u;
    else if ((in->mnemonic == ZYDIS_MNEMONIC_XOR || in->mnemonic == ZYDIS_MNEMONIC_SUB) &&
             in->operand_count_visible == 2 && ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
             ops[0].reg.value == ops[1].reg.value &&
             (ops[0].reg.value == ZYDIS_REGISTER_EAX || ops[0].reg.value == ZYDIS_REGISTER_RAX))
        *is_const = 1, *value = 0;
    return 1;
}

static int ends_straight_line(const ZydisDecodedInstruction *in)
{
    return in->meta.category == ZYDIS_CATEGORY_RET ||
           in->meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
           in->meta.category == ZYDIS_CATEGORY_CALL;
}

/* prev[0..nprev) are the offsets of the instructions decoded before the hit,
 * oldest first, all inside [region_start, hit). */
static void classify(const struct ctx *x, struct gscan_hit *h, size_t insn_len, size_t end,
                     const size_t *prev, size_t nprev)
{
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    h->cls = GISO_CLASS_OPEN;
    if (h->insn == GISO_INSN_WRPKRU && decode_full(x, h->off + insn_len, end, &in, ops) &&
        in.mnemonic == ZYDIS_MNEMONIC_CMP && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
        ops[0].reg.value == ZYDIS_REGISTER_EAX && ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
        size_t next = h->off + insn_len + in.length;
        uint32_t imm = (uint32_t)ops[1].imm.value.u;
        if (decode_full(x, next, end, &in, ops) &&
            (in.mnemonic == ZYDIS_MNEMONIC_JZ || in.mnemonic == ZYDIS_MNEMONIC_JNZ)) {
            h->cls = GISO_CLASS_CHECKED, h->has_value = 1, h->value = imm;
            return;
        }
    }
    int eax_known = 0;          /* the last eax writer was seen */
    for (size_t i = nprev; i-- > 0;) {
        if (!decode_full(x, prev[i], end, &in, ops))
            break;
        if (in.mnemonic == ZYDIS_MNEMONIC_RDPKRU && h->insn == GISO_INSN_WRPKRU) {
            h->cls = GISO_CLASS_RMW;
            return;
        }
        if (ends_straight_line(&in))
            break;
        int is_const;
        uint32_t v;
        if (!eax_known && writes_eax(&in, ops, &is_const, &v)) {
            eax_known = 1;
            if (!is_const)
                continue;       /* keep looking for an RDPKRU before it */
            h->has_value = 1, h->value = v;
            if (h->insn == GISO_INSN_WRPKRU)
                h->cls = GISO_CLASS_FIXED;
            else if (!(v & PKRU_XFEATURE_BIT))
                h->cls = GISO_CLASS_MASKED;
            return;
        }
    }
}

/* ---- the sweep --------------------------------------------------------- */

/* Is there a candidate starting in [from, to)? First and last, if so. The
 * candidate's own bytes may run up to 2 bytes past to (len bounds them). */
static int candidate_span(const uint8_t *c, size_t len, size_t from, size_t to, size_t *first,
                          size_t *last)
{
    enum giso_insn k;
    size_t i = from;
    for (;; i++) {
        const uint8_t *p = i < to ? memchr(c + i, 0x0f, to - i) : NULL;
        if (!p)
            return 0;
        i = (size_t)(p - c);
        if (gscan_candidate(p, len - i, &k))
            break;
    }
    *first = *last = i;
    for (size_t j = to; j-- > i;)
        if (c[j] == 0x0f && gscan_candidate(c + j, len - j, &k)) {
            *last = j;
            break;
        }
    return 1;
}

/* Decode [from, to) linearly, as the full scanner did, up to the last
 * candidate, and report each candidate starting in [from, to) once. */
static size_t sweep_region(struct ctx *x, size_t from, size_t to, gscan_hit_fn fn, void *arg)
{
    size_t first = 0, last = 0;
    if (!candidate_span(x->code, x->len, from, to, &first, &last))
        return 0;
    size_t prev[LOOKBACK], nprev = 0, pos = from, found = 0;
    while (pos <= last) {
        ZydisDecodedInstruction in;
        size_t len = 1;
        int ok = ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&x->min, NULL, x->code + pos,
                                                            to - pos, &in));
        if (ok)
            len = in.length;
        enum giso_insn kind;
        int mine = ok && ours(in.mnemonic, &kind);
        /* every candidate this instruction (or undecodable byte) covers */
        for (size_t c = pos > first ? pos : first; c < pos + len && c <= last; c++) {
            struct gscan_hit h = { .off = c, .cls = GISO_CLASS_UNALIGNED };
            if (x->code[c] != 0x0f || !gscan_candidate(x->code + c, x->len - c, &h.insn))
                continue;
            int head = mine && h.insn == kind;
            for (size_t k = pos; head && k < c; k++)
                head = is_prefix(x->code[k]);
            if (head) {
                h.off = pos, h.aligned = 1;
                snprintf(h.name, sizeof(h.name), "%s", ZydisMnemonicGetString(in.mnemonic));
                classify(x, &h, len, to, prev, nprev);
            } else {
                snprintf(h.name, sizeof(h.name), "%s", gscan_insn_name(h.insn));
            }
            fn(&h, arg);
            found++;
        }
        if (ok) {
            if (nprev == LOOKBACK)
                memmove(prev, prev + 1, (LOOKBACK - 1) * sizeof(prev[0])), nprev--;
            prev[nprev++] = pos;
        }
        pos += len;
    }
    return found;
}

int gscan_buffer(const uint8_t *code, size_t len, const struct gscan_sym *syms, size_t nsyms,
                 gscan_hit_fn fn, void *arg)
{
    struct ctx x = { .code = code, .len = len };
    if (!code && len)
        return -EINVAL;
    if (ZYAN_FAILED(ZydisDecoderInit(&x.min, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)) ||
        ZYAN_FAILED(ZydisDecoderInit(&x.full, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)))
        return -EINVAL;
    ZydisDecoderEnableMode(&x.min, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE);
    size_t pos = 0, found = 0;
    for (size_t i = 0; i <= nsyms; i++) {
        size_t next = i < nsyms ? (size_t)syms[i].off : len;
        if (next > len)
            next = len;
        if (next > pos) {
            found += sweep_region(&x, pos, next, fn, arg);
            pos = next;
        }
    }
    return (int)found;
}
