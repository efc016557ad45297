/*
 * fuzz_decode.c - libFuzzer target: any byte string, read as instructions,
 * must either be rejected by gvm_prog_create() with a message or run on the
 * checked interpreter to completion or to a reported violation - never
 * crash, hang or trip a sanitizer. Every slot must also survive an
 * asm/disasm round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

static void check_roundtrip(const struct bpf_insn *insns, uint32_t n)
{
    char line[128];
    for (uint32_t i = 0; i < n; i++) {
        gvm_insn_str(insns, n, i, line, sizeof(line));
        struct bpf_insn *back;
        uint32_t m;
        struct graft_err err;
        if (gvm_asm(line, &back, &m, &err))
            abort();
        uint32_t want = strncmp(line, "lddw", 4) == 0 ? 2 : 1;
        if (m != want || memcmp(back, &insns[i], m * sizeof(*back)))
            abort();
        free(back);
        i += want - 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t n = (uint32_t)(size / sizeof(struct bpf_insn));
    if (n == 0 || n > 4096)
        return 0;
    struct bpf_insn *insns = malloc(n * sizeof(*insns));
    memcpy(insns, data, n * sizeof(*insns));
    check_roundtrip(insns, n);

    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP,
                               .flags = GVM_F_CHECKED, .step_limit = 20000,
                               .env = corpus_env() };
    struct gvm_prog *p;
    struct graft_err err = { 0 };
    if (gvm_prog_create(insns, n, &o, &p, &err) == 0) {
        uint8_t ctx[64];
        for (int i = 0; i < 64; i++)
            ctx[i] = (uint8_t)i;
        uint64_t ret;
        err.msg[0] = '\0';
        if (gvm_prog_run(p, ctx, sizeof(ctx), &ret, &err) != 0 && !err.msg[0])
            abort();   /* a violation must say what happened */
        gvm_prog_free(p);
    } else if (!err.msg[0]) {
        abort();
    }
    free(insns);
    return 0;
}
