/*
 * test_facts.c - the facts the verifier records for the JIT
 * (gver_input.record_facts, src/verifier/facts.c):
 *  - a range or constant is recorded only where pruning compared it: a
 *    register whose value no check needs may differ on a path pruned
 *    against an explored one, so it gets no fact (the JIT with the facts
 *    then agrees with the interpreter on both paths);
 *  - facts are joined over every path, not taken from one;
 *  - with the Spectre rules on no range is recorded (branch outcomes are);
 *  - what is recorded is what the JIT's rewrite needs (an `and` with a
 *    mask it cannot change goes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/jit_opt.h"
#include "vm/vm.h"
#include "tfail.h"
#include "vtest.h"

/* Verify text with a 64-byte read-only context (Spectre rules as nospec
 * says) and facts recorded; the program in *p, *n. */
static int verify(const char *text, int nospec, struct bpf_insn **p, uint32_t *n,
                  struct gver_result *res)
{
    struct graft_err err;
    if (gvm_asm(text, p, n, &err)) {
        fprintf(stderr, "asm: %s\n", err.msg);
        return -1;
    }
    struct gver_policy *pol = gver_policy_raw(64);
    pol->spec_bypass = nospec;
    struct gver_input in = { .insns = *p, .n = *n, .policy = pol, .record_facts = 1 };
    int rc = gver_verify(&in, res, &err);
    free(pol);
    if (rc || !res->accepted) {
        fprintf(stderr, "not accepted: %s\n", res->reason);
        gver_result_free(res);
        free(*p);
        return -1;
    }
    return 0;
}

/* Run on the interpreter and on the JIT with the facts, ctx[0] = b. */
static int agree(const struct bpf_insn *p, uint32_t n, const struct gver_result *res, uint8_t b)
{
    uint64_t r[2];
    for (int e = 0; e < 2; e++) {
        struct gvm_prog_opts o = { .sz = sizeof(o), .engine = e ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP,
                                   .facts = e ? res->facts : NULL, .n_facts = e ? res->n_facts : 0 };
        struct gvm_prog *prog;
        struct graft_err err;
        uint8_t ctx[64] = { b };
        if (gvm_prog_create(p, n, &o, &prog, &err) || gvm_prog_run(prog, ctx, 64, &r[e], &err)) {
            fprintf(stderr, "run: %s\n", err.msg);
            return 0;
        }
        gvm_prog_free(prog);
    }
    if (r[0] != r[1])
        fprintf(stderr, "ctx[0]=%u: interpreter 0x%llx, JIT with facts 0x%llx\n", b,
                (unsigned long long)r[0], (unsigned long long)r[1]);
    return r[0] == r[1];
}

/* How many insns the facts rewrite. */
static int rewrites(const struct bpf_insn *p, uint32_t n, const struct gver_result *res)
{
    struct bpf_insn *c = malloc(n * sizeof(*c));
    memcpy(c, p, n * sizeof(*c));
    int k = gvm_apply_facts(c, n, res->facts);
    free(c);
    return k;
}

static void test_mask(void)
{
    static const char text[] =
        "ldxb r2, [r1+0]\n"
        "and r2, 255\n"             /* 1: clears nothing */
        "and32 r2, 127\n"           /* 2: clears bit 7 */
        "jgt r2, 100, out\n"        /* the value matters */
        "mov r0, r2\n"
        "exit\n"
        "out:\n"
        "mov r0, 2\n"
        "exit\n";
    struct bpf_insn *p;
    uint32_t n;
    struct gver_result res;
    if (verify(text, 1, &p, &n, &res)) {
        CHECK(0, "mask program");
        return;
    }
    CHECK(res.n_facts == n, "n_facts %u for %u insns", res.n_facts, n);
    CHECK((res.facts[1].flags & GVM_FACT_DST_BITS) && res.facts[1].dst_bits == 0xff,
          "byte load: flags %#x bits %#llx", res.facts[1].flags,
          (unsigned long long)res.facts[1].dst_bits);
    CHECK(rewrites(p, n, &res) == 1, "only the first and goes (%d rewrites)", rewrites(p, n, &res));
    for (unsigned b = 0; b < 256; b += 17)
        CHECK(agree(p, n, &res, (uint8_t)b), "mask program, ctx[0]=%u", b);
    gver_result_free(&res);
    free(p);
    /* the Spectre rules: the mask may be the program's defence, kept */
    if (verify(text, 0, &p, &n, &res) == 0) {
        CHECK(!(res.facts[1].flags & GVM_FACT_DST_BITS), "a range fact with the Spectre rules on");
        CHECK(rewrites(p, n, &res) == 0, "a rewrite with the Spectre rules on");
        gver_result_free(&res);
        free(p);
    }
}

/* r3 is 1 on one path and 1000 on the other; at L nothing checks it, so
 * the second path is pruned against the first whatever r3 holds there. A
 * fact "r3 is constant" at L, read off the one explored state, would make
 * the JIT return that constant on both paths. */
static void test_pruned_imprecise(void)
{
    static const char text[] =
        "ldxb r2, [r1+0]\n"
        "mov r3, 1\n"
        "jgt r2, 10, l\n"
        "mov r3, 1000\n"
        "l:\n"
        "mov r0, r3\n"              /* 4: r0 is returned, which no rule checks */
        "add r0, r3\n"              /* 5 */
        "exit\n";
    struct bpf_insn *p;
    uint32_t n;
    struct gver_result res;
    if (verify(text, 1, &p, &n, &res)) {
        CHECK(0, "pruned program");
        return;
    }
    CHECK(res.states_explored < 9, "the second path was not pruned (%llu insns explored): the test "
          "no longer tests pruning", (unsigned long long)res.states_explored);
    CHECK(!(res.facts[4].flags & GVM_FACT_SRC_CONST) && !(res.facts[5].flags & GVM_FACT_SRC_CONST),
          "a constant fact for a register pruning never compared");
    CHECK(agree(p, n, &res, 5) && agree(p, n, &res, 50), "pruned program on the JIT with facts");
    gver_result_free(&res);
    free(p);
}

/* The same shape with r3 checked after L: both paths are explored and
 * joined; a constant is recorded only when both give the same. */
static void test_joined(void)
{
    static const char *const texts[2] = {
        "ldxb r2, [r1+0]\nmov r3, 1\njgt r2, 10, l\nmov r3, 1000\nl:\nmov r0, 7\n"
        "add r0, r3\njgt r0, 500, m\nmov r0, 0\nm:\nexit\n",
        "ldxb r2, [r1+0]\nmov r3, 9\njgt r2, 10, l\nmov r3, 9\nl:\nmov r0, 7\n"
        "add r0, r3\njgt r0, 500, m\nmov r0, 0\nm:\nexit\n",
    };
    for (int k = 0; k < 2; k++) {
        struct bpf_insn *p;
        uint32_t n;
        struct gver_result res;
        if (verify(texts[k], 1, &p, &n, &res)) {
            CHECK(0, "joined program %d", k);
            continue;
        }
        const struct gvm_insn_fact *f = &res.facts[5];
        if (k == 0)
            CHECK(!(f->flags & GVM_FACT_SRC_CONST), "one path's constant taken for both");
        else
            CHECK((f->flags & GVM_FACT_SRC_CONST) && f->src_value == 9, "the common constant: flags %#x",
                  f->flags);
        CHECK(agree(p, n, &res, 5) && agree(p, n, &res, 50), "joined program %d", k);
        gver_result_free(&res);
        free(p);
    }
}

/* A branch the ranges decide on every path, with and without the Spectre
 * rules (an architectural fact); one decided differently on two paths. */
static void test_branches(void)
{
    static const char decided[] =
        "ldxb r2, [r1+0]\n"
        "mov r0, 1\n"
        "jgt r2, 300, out\n"       /* 2: a byte never is */
        "mov r0, 2\n"
        "out:\n"
        "exit\n";
    for (int nospec = 0; nospec < 2; nospec++) {
        struct bpf_insn *p;
        uint32_t n;
        struct gver_result res;
        if (verify(decided, nospec, &p, &n, &res)) {
            CHECK(0, "decided program");
            continue;
        }
        CHECK((res.facts[2].flags & (GVM_FACT_TAKEN | GVM_FACT_NOT_TAKEN)) == GVM_FACT_NOT_TAKEN,
              "nospec %d: flags %#x", nospec, res.facts[2].flags);
        CHECK(agree(p, n, &res, 200), "decided program");
        gver_result_free(&res);
        free(p);
    }
    static const char split[] =
        "ldxb r2, [r1+0]\n"
        "mov r3, 0\n"
        "jgt r2, 10, l\n"
        "mov r3, 20\n"
        "l:\n"
        "mov r0, 1\n"
        "jgt r3, 5, out\n"         /* 5: taken on one path only */
        "mov r0, 2\n"
        "out:\n"
        "exit\n";
    struct bpf_insn *p;
    uint32_t n;
    struct gver_result res;
    if (verify(split, 1, &p, &n, &res)) {
        CHECK(0, "split program");
        return;
    }
    CHECK(!(res.facts[5].flags & (GVM_FACT_TAKEN | GVM_FACT_NOT_TAKEN)), "one path's outcome taken for both");
    CHECK(agree(p, n, &res, 5) && agree(p, n, &res, 50), "split program");
    gver_result_free(&res);
    free(p);
}

/* No facts unless asked; a rejected program has none. */
static void test_api(void)
{
    struct bpf_insn *p;
    uint32_t n;
    struct graft_err err;
    CHECK(gvm_asm("mov r0, 0\nexit\n", &p, &n, &err) == 0, "asm");
    struct gver_input in = { .insns = p, .n = n };
    struct gver_result res;
    CHECK(gver_verify(&in, &res, &err) == 0 && res.accepted && !res.facts && !res.n_facts,
          "facts without record_facts");
    gver_result_free(&res);
    free(p);
    CHECK(gvm_asm("exit\n", &p, &n, &err) == 0, "asm");
    in = (struct gver_input){ .insns = p, .n = n, .record_facts = 1 };
    CHECK(gver_verify(&in, &res, &err) == 0 && !res.accepted && !res.facts, "facts of a rejected program");
    gver_result_free(&res);
    free(p);
}

int main(void)
{
    test_mask();
    test_pruned_imprecise();
    test_joined();
    test_branches();
    test_api();
    if (!g_fails)
        printf("verifier facts: all passed\n");
    return g_fails != 0;
}
