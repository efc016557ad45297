/*
 * test_vm_roundtrip.c - gvm_asm(gvm_insn_str(x)) == x: over every program of
 * the corpus, and over pseudo-random 8-byte slots (anything the
 * disassembler cannot print canonically must come out as .raw and still
 * round-trip).
 */
#include <stdint.h>

#include "corpus.h"
#include "test_util.h"

/* Disassemble insns[0..n) into one text and reassemble; 0 if identical. */
static int roundtrip(const struct bpf_insn *insns, uint32_t n, const char *what)
{
    size_t cap = (size_t)n * 96 + 1, len = 0;
    char *text = malloc(cap), line[128];
    text[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        gvm_insn_str(insns, n, i, line, sizeof(line));
        len += (size_t)snprintf(text + len, cap - len, "%s\n", line);
        if (strncmp(line, "lddw", 4) == 0)
            i++;
    }
    struct bpf_insn *back;
    uint32_t m;
    struct graft_err err = { 0 };
    int bad = 0;
    if (gvm_asm(text, &back, &m, &err)) {
        fprintf(stderr, "FAIL %s: reassembly: %s\n%s", what, err.msg, text);
        bad = 1;
    } else {
        if (m != n || memcmp(back, insns, (size_t)n * sizeof(*insns)) != 0) {
            fprintf(stderr, "FAIL %s: round trip differs (%u vs %u insns)\n%s", what, m, n,
                    text);
            for (uint32_t i = 0; i < n && i < m; i++)
                if (memcmp(&back[i], &insns[i], sizeof(*insns)))
                    fprintf(stderr, "  insn %u differs\n", i);
            bad = 1;
        }
        free(back);
    }
    free(text);
    return bad;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "corpus";
    char **paths;
    int n = corpus_list(dir, &paths), files = 0;
    CHECK(n > 200, "corpus has %d files", n);
    for (int i = 0; i < n; i++) {
        struct corpus_case c;
        struct graft_err err;
        if (corpus_read(paths[i], &c, &err))
            continue;
        struct bpf_insn *insns;
        uint32_t m;
        if (!gvm_asm(c.asm_text, &insns, &m, &err)) {
            g_fails += roundtrip(insns, m, paths[i]);
            files++;
            free(insns);
        }
        corpus_free(&c);
    }
    corpus_list_free(paths, n);

    /* random slots: fully random, and with a plausible opcode from a
     * random class so the canonical printers are exercised too */
    static const uint8_t codes[] = { 0x07, 0x0f, 0x04, 0x0c, 0x37, 0x3f, 0x97, 0x9f, 0xb7,
                                     0xbf, 0xbc, 0x87, 0x84, 0xd4, 0xdc, 0xd7, 0x05, 0x06,
                                     0x15, 0x1d, 0x16, 0x1e, 0xa5, 0xde, 0x85, 0x8d, 0x95,
                                     0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62,
                                     0x7a, 0x63, 0x7b, 0xc3, 0xdb, 0x00 };
    for (int k = 0; k < 20000; k++) {
        struct bpf_insn in[2];
        uint64_t a = next(), b = next();
        memcpy(&in[0], &a, 8);
        memcpy(&in[1], &b, 8);
        if (k & 1) {
            in[0].code = codes[next() % sizeof(codes)];
            if (next() & 1) {
                in[0].off = (int16_t)(next() % 64) - 32;
                in[0].src_reg = next() % 11;
                in[0].dst_reg = next() % 11;
            }
            if (next() & 1)
                in[0].imm = (int32_t)(next() % 200) - 100;
            if (in[0].code == 0x18 && (next() & 1))
                in[1] = (struct bpf_insn){ .imm = in[1].imm };
        }
        char what[64];
        snprintf(what, sizeof(what), "random slot %d", k);
        g_fails += roundtrip(in, 2, what);
        if (g_fails > 20)
            break;
    }
    if (g_fails)
        return 1;
    printf("asm/disasm round trip: %d corpus files and 20000 random slots\n", files);
    return 0;
}
