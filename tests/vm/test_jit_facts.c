/*
 * test_jit_facts.c - the JIT's use of the verifier's facts
 * (gvm_prog_opts.facts, src/vm/jit_facts.c), with facts made by hand:
 *  - each rewrite happens exactly when its fact allows it (mask widths and
 *    sign extension, the second insn of a pair being a jump target, the
 *    constants a K form cannot hold, branches decided either way);
 *  - a program given a true fact runs as on the interpreter, in less code;
 *  - a program given a wrong fact computes something else: facts are used,
 *    and the differential tests (vm_kernel_test_bpf, test_verifier_fuzz)
 *    comparing the JIT with facts to the interpreter catch a wrong one;
 *  - the interpreter ignores facts; a fact array of the wrong length is a
 *    load error.
 */
#include <errno.h>
#include <inttypes.h>

#include "vm/jit_opt.h"
#include "test_util.h"

#define NO_CODE(r) ((struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = (r), .src_reg = (r) })

static bool same(const struct bpf_insn *a, const struct bpf_insn *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* Apply one fact to one insn (followed by `exit`); true when it changed. */
static bool rewrite1(struct bpf_insn in, struct gvm_insn_fact f, struct bpf_insn *out)
{
    struct bpf_insn p[2] = { in, { .code = BPF_JMP | BPF_EXIT } };
    struct gvm_insn_fact fs[2] = { f, { 0 } };
    int k = gvm_apply_facts(p, 2, fs);
    *out = p[0];
    return k > 0;
}

static struct bpf_insn alu(uint8_t cls, uint8_t op, uint8_t src, int dst, int sreg, int16_t off,
                           int32_t imm)
{
    return (struct bpf_insn){ .code = (uint8_t)(cls | op | src), .dst_reg = (uint8_t)dst,
                              .src_reg = (uint8_t)sreg, .off = off, .imm = imm };
}

static void test_rewrites(void)
{
    struct bpf_insn o;
    struct gvm_insn_fact bits = { .flags = GVM_FACT_DST_BITS };
    /* and: removed only when the mask keeps every possible bit */
    bits.dst_bits = 0xff;
    CHECK(rewrite1(alu(BPF_ALU64, BPF_AND, BPF_K, 2, 0, 0, 255), bits, &o) && same(&o, &NO_CODE(2)),
          "and 255 of a byte");
    bits.dst_bits = 0x1ff;
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_AND, BPF_K, 2, 0, 0, 255), bits, &o), "and 255 of 9 bits");
    bits.dst_bits = 0xffffffff00000000ull;
    CHECK(rewrite1(alu(BPF_ALU64, BPF_AND, BPF_K, 2, 0, 0, (int32_t)0x80000000), bits, &o),
          "and64 with a sign-extended mask");
    CHECK(!rewrite1(alu(BPF_ALU, BPF_AND, BPF_K, 2, 0, 0, (int32_t)0x80000000), bits, &o),
          "and32 clears the upper half");
    bits.dst_bits = 0x7f;
    CHECK(rewrite1(alu(BPF_ALU, BPF_AND, BPF_K, 2, 0, 0, 0xff), bits, &o), "and32 255 of 7 bits");
    struct gvm_insn_fact none = { .dst_bits = 0x1 };
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_AND, BPF_K, 2, 0, 0, 255), none, &o), "bits without the flag");
    /* w = w: removed only when the upper half is zero */
    bits.dst_bits = 0xffffffff;
    CHECK(rewrite1(alu(BPF_ALU, BPF_MOV, BPF_X, 3, 3, 0, 0), bits, &o) && same(&o, &NO_CODE(3)),
          "w3 = w3 of 32 bits");
    bits.dst_bits = 0x100000000ull;
    CHECK(!rewrite1(alu(BPF_ALU, BPF_MOV, BPF_X, 3, 3, 0, 0), bits, &o), "w3 = w3 of 33 bits");
    bits.dst_bits = 0xff;
    CHECK(!rewrite1(alu(BPF_ALU, BPF_MOV, BPF_X, 3, 4, 0, 0), bits, &o), "w3 = w4 is a move");
    /* r <<= 32; r >>= 32 */
    struct bpf_insn pair[4] = { alu(BPF_ALU64, BPF_LSH, BPF_K, 1, 0, 0, 32),
                                alu(BPF_ALU64, BPF_RSH, BPF_K, 1, 0, 0, 32),
                                { .code = BPF_JMP | BPF_EXIT }, { .code = BPF_JMP | BPF_EXIT } };
    struct gvm_insn_fact pf[4] = { { .flags = GVM_FACT_DST_BITS, .dst_bits = 0xffffffff } };
    struct bpf_insn p[4];
    memcpy(p, pair, sizeof(p));
    CHECK(gvm_apply_facts(p, 4, pf) == 2 && same(&p[0], &NO_CODE(1)) && same(&p[1], &NO_CODE(1)),
          "zero-extension pair");
    memcpy(p, pair, sizeof(p));
    p[3] = p[2];
    p[2] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA, .off = -2 };   /* jumps to the rsh */
    CHECK(gvm_apply_facts(p, 4, pf) == 0, "pair whose second insn is a jump target");
    /* constant sources */
    struct gvm_insn_fact c = { .flags = GVM_FACT_SRC_CONST, .src_value = 5 };
    CHECK(rewrite1(alu(BPF_ALU64, BPF_ADD, BPF_X, 1, 2, 0, 0), c, &o) &&
          same(&o, &(struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 1, .imm = 5 }),
          "add r1, r2 of 5");
    CHECK(rewrite1(alu(BPF_JMP, BPF_JGT, BPF_X, 1, 2, 3, 0), c, &o) &&
          same(&o, &(struct bpf_insn){ .code = BPF_JMP | BPF_JGT | BPF_K, .dst_reg = 1, .off = 3, .imm = 5 }),
          "jgt r1, r2 of 5");
    c.src_value = 0x80000000u;
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_ADD, BPF_X, 1, 2, 0, 0), c, &o), "64-bit op of 2^31");
    CHECK(!rewrite1(alu(BPF_JMP, BPF_JEQ, BPF_X, 1, 2, 1, 0), c, &o), "64-bit compare with 2^31");
    CHECK(rewrite1(alu(BPF_ALU, BPF_ADD, BPF_X, 1, 2, 0, 0), c, &o) && o.imm == INT32_MIN,
          "32-bit op of 2^31");
    CHECK(rewrite1(alu(BPF_JMP32, BPF_JEQ, BPF_X, 1, 2, 1, 0), c, &o) && o.imm == INT32_MIN,
          "32-bit compare with 2^31");
    c.src_value = 0x100000000ull;
    CHECK(!rewrite1(alu(BPF_ALU, BPF_DIV, BPF_X, 1, 2, 0, 0), c, &o), "div32 by a value whose low half is 0");
    c.src_value = 64;
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_LSH, BPF_X, 1, 2, 0, 0), c, &o), "shift by 64");
    c.src_value = 32;
    CHECK(!rewrite1(alu(BPF_ALU, BPF_LSH, BPF_X, 1, 2, 0, 0), c, &o), "shift32 by 32");
    c.src_value = 7;
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_MOV, BPF_X, 1, 2, 8, 0), c, &o), "movsx");
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_DIV, BPF_X, 1, 2, 1, 0), c, &o), "sdiv");
    CHECK(rewrite1(alu(BPF_ALU64, BPF_MOV, BPF_X, 1, 2, 0, 0), c, &o) && o.code == (BPF_ALU64 | BPF_MOV | BPF_K),
          "mov of a constant");
    /* branches decided on every path */
    struct gvm_insn_fact t = { .flags = GVM_FACT_TAKEN }, nt = { .flags = GVM_FACT_NOT_TAKEN };
    CHECK(rewrite1(alu(BPF_JMP32, BPF_JGT, BPF_K, 1, 0, 7, 3), t, &o) &&
          same(&o, &(struct bpf_insn){ .code = BPF_JMP | BPF_JA, .off = 7 }), "taken: goto");
    CHECK(rewrite1(alu(BPF_JMP, BPF_JSET, BPF_X, 1, 2, 7, 0), nt, &o) && same(&o, &NO_CODE(1)),
          "never taken: no code");
    CHECK(!rewrite1(alu(BPF_ALU64, BPF_ADD, BPF_K, 1, 0, 0, 3), t, &o), "a branch fact on an add");
    CHECK(!rewrite1((struct bpf_insn){ .code = BPF_JMP | BPF_JA, .off = 1 }, nt, &o), "a branch fact on goto");
}

/* Run insns with ctx = *val (8 bytes) on engine e with facts (NULL: none);
 * the JIT's code size in *size. */
static uint64_t run(const char *text, uint64_t val, enum gvm_engine e, const struct gvm_insn_fact *facts,
                    size_t *size)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err;
    uint64_t r = 0xdeadbeef;
    if (gvm_asm(text, &insns, &n, &err)) {
        CHECK(0, "asm: %s", err.msg);
        return r;
    }
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = e, .facts = facts, .n_facts = facts ? n : 0 };
    struct gvm_prog *p;
    if (gvm_prog_create(insns, n, &o, &p, &err) == 0) {
        CHECK(gvm_prog_run(p, &val, sizeof(val), &r, &err) == 0, "run: %s", err.msg);
        if (size)
            *size = gvm_prog_code_size(p);
        gvm_prog_free(p);
    } else {
        CHECK(0, "load: %s", err.msg);
    }
    free(insns);
    return r;
}

static void test_true_and_wrong(void)
{
    static const struct {
        const char *what, *text;
        uint32_t at;               /* the insn the fact is for */
        uint64_t bits;             /* the fact */
        uint64_t ok, bad;          /* a ctx value it holds for, one it does not */
    } cases[] = {
        { "mask", "ldxdw r2, [r1+0]\nand r2, 255\nmov r0, r2\nexit\n", 1, 0xff, 0x7f, 0x1234 },
        { "zext", "ldxdw r2, [r1+0]\nmov32 r2, r2\nmov r0, r2\nexit\n", 1, 0xffffffff, 0x89abcdef,
          0x100000001ull },
        { "pair", "ldxdw r2, [r1+0]\nlsh r2, 32\nrsh r2, 32\nmov r0, r2\nexit\n", 1, 0xffffffff, 7,
          0xff00000007ull },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct gvm_insn_fact f[8] = { { 0 } };
        f[cases[k].at] = (struct gvm_insn_fact){ .flags = GVM_FACT_DST_BITS, .dst_bits = cases[k].bits };
        size_t plain = 0, with = 0;
        uint64_t want = run(cases[k].text, cases[k].ok, GVM_ENGINE_INTERP, NULL, NULL);
        CHECK(run(cases[k].text, cases[k].ok, GVM_ENGINE_JIT, NULL, &plain) == want, "%s: JIT", cases[k].what);
        CHECK(run(cases[k].text, cases[k].ok, GVM_ENGINE_JIT, f, &with) == want, "%s: JIT with a true fact",
              cases[k].what);
        CHECK(with < plain, "%s: %zu bytes with the fact, %zu without", cases[k].what, with, plain);
        /* the fact made wrong by the input: the JIT now differs */
        uint64_t interp = run(cases[k].text, cases[k].bad, GVM_ENGINE_INTERP, NULL, NULL);
        uint64_t jit = run(cases[k].text, cases[k].bad, GVM_ENGINE_JIT, f, NULL);
        CHECK(jit != interp, "%s: a wrong fact went unnoticed (both 0x%" PRIx64 ")", cases[k].what, jit);
        CHECK(run(cases[k].text, cases[k].bad, GVM_ENGINE_INTERP, f, NULL) == interp,
              "%s: the interpreter used a fact", cases[k].what);
    }
    /* a constant source: true, then wrong */
    static const char cs[] = "ldxdw r2, [r1+0]\nmov r3, r2\nmov r0, 100\nadd r0, r3\nexit\n";
    struct gvm_insn_fact f[6] = { [3] = { .flags = GVM_FACT_SRC_CONST, .src_value = 9 } };
    CHECK(run(cs, 9, GVM_ENGINE_JIT, f, NULL) == 109, "a true constant");
    CHECK(run(cs, 10, GVM_ENGINE_JIT, f, NULL) == 109, "a wrong constant went unnoticed");
    /* a branch: true, then wrong */
    static const char br[] = "ldxdw r2, [r1+0]\nmov r0, 1\njgt r2, 5, out\nmov r0, 2\nout:\nexit\n";
    struct gvm_insn_fact fb[6] = { [2] = { .flags = GVM_FACT_NOT_TAKEN } };
    CHECK(run(br, 3, GVM_ENGINE_JIT, fb, NULL) == 2, "a branch never taken");
    CHECK(run(br, 9, GVM_ENGINE_JIT, fb, NULL) == 2 && run(br, 9, GVM_ENGINE_INTERP, NULL, NULL) == 1,
          "a wrong branch fact went unnoticed");
}

static void test_errors(void)
{
    struct bpf_insn insns[2] = { { .code = BPF_ALU64 | BPF_MOV | BPF_K }, { .code = BPF_JMP | BPF_EXIT } };
    struct gvm_insn_fact f[1] = { { 0 } };
    struct gvm_prog_opts o = { .sz = sizeof(o), .facts = f, .n_facts = 1 };
    struct gvm_prog *p = NULL;
    struct graft_err err = { 0 };
    CHECK(gvm_prog_create(insns, 2, &o, &p, &err) == -EINVAL && strstr(err.msg, "1 facts for 2"),
          "facts of the wrong length: %s", err.msg);
}

/* gvm_prog_facts_rewritten: what `graft list` reports per agent */
static void test_count(void)
{
    struct bpf_insn insns[3] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 7 },
        { .code = BPF_ALU64 | BPF_AND | BPF_K, .dst_reg = 0, .imm = 15 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    struct gvm_insn_fact f[3] = { [1] = { .flags = GVM_FACT_DST_BITS, .dst_bits = 7 } };
    for (int e = 0; e < 2; e++)
        for (int with = 0; with < 2; with++) {
            struct gvm_prog_opts o = { .sz = sizeof(o), .engine = e ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP,
                                       .facts = with ? f : NULL, .n_facts = with ? 3 : 0 };
            struct gvm_prog *p = NULL;
            struct graft_err err = { 0 };
            uint64_t r = 0;
            if (gvm_prog_create(insns, 3, &o, &p, &err) != 0) {
                CHECK(0, "load: %s", err.msg);
                continue;
            }
            CHECK(gvm_prog_run(p, NULL, 0, &r, &err) == 0 && r == 7, "count: result %" PRIu64, r);
            CHECK(gvm_prog_facts_rewritten(p) == (uint32_t)(e && with), "engine %d facts %d: %u rewritten",
                  e, with, gvm_prog_facts_rewritten(p));
            gvm_prog_free(p);
        }
}

int main(void)
{
    test_rewrites();
    test_true_and_wrong();
    test_errors();
    test_count();
    if (g_fails) {
        fprintf(stderr, "%d failures\n", g_fails);
        return 1;
    }
    printf("test_jit_facts: ok\n");
    return 0;
}
