/*
 * test_speculation.c - how the verifier explores speculative paths
 * (src/verifier/speculation.c) and prunes them (verifier.c, prune_point):
 *  - a speculative path is followed SPEC_WINDOW (1024) instructions past
 *    its first misprediction; one that still has more of its window left
 *    than a stored speculative state had is not pruned by it (that state's
 *    paths were cut earlier than this one's may run);
 *  - speculative paths are pruned by range inclusion even once a masked
 *    pointer offset was seen (where real paths need equal values): a loop
 *    the CPU may re-enter speculatively is not unrolled once per value, and
 *    what such paths must prove is still proven;
 *  - the soundness fuzzer's oracle for these rules, the checked
 *    interpreter's speculative mode (GVM_F_SPECULATIVE, src/vm/interp.c):
 *    it flags the load the broken pruning let through, given that verdict;
 *    its stores stay in an overlay; its window is the verifier's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verifier/verifier.h"
#include "vm/vm.h"
#include "tfail.h"

struct text {
    char *s;
    size_t len, cap;
};

static void add(struct text *t, const char *line)
{
    size_t l = strlen(line);
    if (t->len + l + 1 > t->cap) {
        t->cap = (t->len + l + 1) * 2;
        t->s = realloc(t->s, t->cap);
        if (!t->s)
            abort();
    }
    memcpy(t->s + t->len, line, l + 1);
    t->len += l;
}

/* Run text on the checked interpreter, speculatively (GVM_F_SPECULATIVE)
 * when facts are given; 0 clean (r0 in *ret), else the error in err. */
static int run_checked(const char *text, const struct gvm_insn_fact *facts, uint64_t *ret,
                       struct graft_err *err)
{
    struct bpf_insn *p;
    uint32_t n;
    if (gvm_asm(text, &p, &n, err))
        return -1;
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP, .flags = GVM_F_CHECKED,
                               .facts = facts, .n_facts = facts ? n : 0 };
    if (facts)
        o.flags |= GVM_F_SPECULATIVE;
    struct gvm_prog *prog;
    int rc = gvm_prog_create(p, n, &o, &prog, err);
    free(p);
    if (rc)
        return rc;
    uint8_t ctx[64] = { 0 };
    rc = gvm_prog_run(prog, ctx, sizeof(ctx), ret, err);
    gvm_prog_free(prog);
    return rc;
}

static int verify_text(const char *text, const struct gmap_def *maps, uint32_t n_maps,
                       struct gver_policy *pol, struct gver_result *res)
{
    struct bpf_insn *p;
    uint32_t n;
    struct graft_err err;
    if (gvm_asm(text, &p, &n, &err)) {
        fprintf(stderr, "asm: %s\n", err.msg);
        return -1;
    }
    struct gver_input in = { .insns = p, .n = n, .maps = maps, .n_maps = n_maps, .policy = pol,
                             .record_facts = 1 };
    int r = gver_verify(&in, res, &err);
    free(p);
    return r;
}

/* Two mispredictions reach `join`: path A after 1000 instructions of its
 * window, path B after 2. A is explored first (the later push) and cut by
 * the window 24 instructions past `join`; the load through a number 50
 * instructions past `join` is within B's window, so B must be explored
 * there, not pruned by A's state (which covers it otherwise: both have r2
 * unknown, the rest is written before it is read). The kernel follows
 * every speculative path to its end and rejects this program too. */
static void test_window_not_shared_by_pruning(void)
{
    struct text t = { 0 };
    add(&t, "mov r2, 0\n"
            "jeq r2, 1, b\n"          /* pushed first: explored last */
            "jeq r2, 1, a\n"          /* pushed second: explored first */
            "mov r0, 0\n"
            "exit\n"
            "a: mov r0, 0\n");
    for (int i = 0; i < 999; i++)
        add(&t, "mov r0, 0\n");
    add(&t, "join: mov r0, 0\n");
    for (int i = 0; i < 49; i++)
        add(&t, "mov r0, 0\n");
    add(&t, "ldxb r0, [r2+0]\n"       /* r2 is any number on these paths */
            "exit\n"
            "b: ja join\n");
    struct gver_policy *pol = gver_policy_raw(64);
    struct gver_result res;
    CHECK(verify_text(t.s, NULL, 0, pol, &res) == 0 && !res.accepted &&
          strstr(res.reason, "(speculative execution)"),
          "a path with more window left is pruned by one with less: %s",
          res.accepted ? "accepted" : res.reason);
    gver_result_free(&res);
    /* without the Spectre rules the load never runs */
    pol->spec_bypass = 1;
    CHECK(verify_text(t.s, NULL, 0, pol, &res) == 0 && res.accepted, "nospec: %s", res.reason);
    /* The checker of the soundness fuzzer: given that verdict as if it
     * were the Spectre rules' (what the broken pruning said), the checked
     * interpreter's speculative mode runs B's misprediction of insn 1 and
     * flags its load (insn 1055); real paths alone are clean. */
    uint64_t r0 = 1;
    struct graft_err err = { 0 };
    CHECK(res.facts && run_checked(t.s, NULL, &r0, &err) == 0 && r0 == 0, "real paths: %s", err.msg);
    int rc = res.facts ? run_checked(t.s, res.facts, &r0, &err) : 0;
    CHECK(rc != 0 && strstr(err.msg, "insn 1055 (ldxb r0, [r2+0])") &&
          strstr(err.msg, "speculative path of a misprediction of insn 1 (jeq r2, 1, "),
          "the speculative checker misses the load B reaches: rc %d, %s", rc, err.msg);
    fprintf(stderr, "speculative checker: %s\n", err.msg);
    gver_result_free(&res);
    free(pol);
    free(t.s);
}

/* A bounded loop after a masked pointer offset (explore_alu_limits: real
 * paths are pruned only on equal values). On its last pass the decided
 * `jlt r4, 16` is mispredicted back into the loop with r4 unknown; that
 * speculative pass refines r4 to [0, 15], the next to [1, 15], ...: by
 * equal values each is a new state and the loop is unrolled again per
 * value (452 insns explored, where 177 are without the Spectre rules);
 * by inclusion the second speculative pass is covered by the first (212). */
static void test_speculative_loop_pruned_by_inclusion(void)
{
    static const char prog[] =
        "mov r6, r1\n"
        "mov r7, 0\n"
        "stw [r10-4], 1\n"
        "mov r2, r10\n"
        "add r2, -4\n"
        "lddw r1, mapidx:0\n"
        "call 1\n"
        "jeq r0, 0, none\n"
        "ldxw r3, [r0+0]\n"
        "and r3, 56\n"
        "add r0, r3\n"                 /* a masked offset */
        "ldxdw r3, [r0+0]\n"
        "xor r7, r3\n"
        "none: mov r4, 0\n"
        "loop: ldxb r2, [r6+3]\n"
        "jgt r2, r4, one\n"
        "mov r3, r4\n"
        "ja sum\n"
        "one: mov r3, 1\n"
        "sum: add r7, r3\n"
        "and r7, 65535\n"
        "add r4, 1\n"
        "jlt r4, 16, loop\n"
        "mov r0, r7\n"
        "exit\n";
    struct gmap_def map = { .type = GMAP_HASH, .key_size = 4, .value_size = 64, .max_entries = 16 };
    struct gver_policy *pol = gver_policy_raw(64);
    struct gver_result spec, nospec;
    CHECK(verify_text(prog, &map, 1, pol, &spec) == 0 && spec.accepted, "spectre rules: %s", spec.reason);
    pol->spec_bypass = 1;
    CHECK(verify_text(prog, &map, 1, pol, &nospec) == 0 && nospec.accepted, "nospec: %s", nospec.reason);
    fprintf(stderr, "loop after a masked offset: %llu insns explored, %llu without the Spectre rules\n",
            (unsigned long long)spec.states_explored, (unsigned long long)nospec.states_explored);
    CHECK(spec.states_explored * 2 <= nospec.states_explored * 3,
          "speculative passes of the loop not pruned: %llu insns explored, %llu without the Spectre rules",
          (unsigned long long)spec.states_explored, (unsigned long long)nospec.states_explored);
    gver_result_free(&spec);
    gver_result_free(&nospec);
    free(pol);
}

/* The checker's speculative paths: stores go into an overlay that later
 * loads of the path read (also where the stack is uninitialised for real
 * paths), nothing reaches memory, and a path ends at its window. */
static void test_checker_overlay_and_window(void)
{
    struct text t = { 0 };
    add(&t, "mov r2, 0\n"
            "stdw [r10-8], 5\n"
            "jeq r2, 1, spec\n"          /* known not taken: insn 2 */
            "jeq r2, 2, far\n"           /* known not taken: insn 3 */
            "ldxdw r0, [r10-8]\n"        /* 5: the speculative store is gone */
            "exit\n"
            "spec: stdw [r10-8], 7\n"
            "stdw [r10-16], 9\n"         /* never initialised for real */
            "ldxdw r3, [r10-8]\n"
            "ldxdw r4, [r10-16]\n"
            "add r3, r4\n"
            "jeq r3, 16, ok\n"           /* the overlay's values: 7 + 9 */
            "ldxb r0, [r2+0]\n"          /* else a read at address 0 */
            "ok: mov r0, 1\n"
            "exit\n"
            "far: mov r0, 0\n");
    for (int i = 0; i < GVM_SPEC_WINDOW - 1; i++)   /* the load is insn 1025 of the path */
        add(&t, "mov r0, 0\n");
    add(&t, "ldxb r0, [r2+0]\n"
            "exit\n");
    struct gver_policy *pol = gver_policy_raw(64);
    pol->spec_bypass = 1;
    struct gver_result res;
    CHECK(verify_text(t.s, NULL, 0, pol, &res) == 0 && res.accepted && res.facts, "nospec: %s", res.reason);
    uint64_t r0 = 0;
    struct graft_err err = { 0 };
    int rc = res.facts ? run_checked(t.s, res.facts, &r0, &err) : -1;
    CHECK(rc == 0 && r0 == 5, "overlay: rc %d r0 %llu %s", rc, (unsigned long long)r0, rc ? err.msg : "");
    gver_result_free(&res);
    free(t.s);

    /* one instruction less and `far`'s load is inside the window */
    t = (struct text){ 0 };
    add(&t, "mov r2, 0\n"
            "jeq r2, 2, far\n"
            "mov r0, 0\n"
            "exit\n"
            "far: mov r0, 0\n");
    for (int i = 0; i < GVM_SPEC_WINDOW - 2; i++)   /* the load is insn 1024 */
        add(&t, "mov r0, 0\n");
    add(&t, "ldxb r0, [r2+0]\n"
            "exit\n");
    CHECK(verify_text(t.s, NULL, 0, pol, &res) == 0 && res.accepted && res.facts, "nospec: %s", res.reason);
    rc = res.facts ? run_checked(t.s, res.facts, &r0, &err) : 0;
    CHECK(rc != 0 && strstr(err.msg, "misprediction of insn 1 "), "window: rc %d %s", rc, err.msg);
    gver_result_free(&res);
    /* the verifier's window is the same: with the rules on, it rejects this */
    pol->spec_bypass = 0;
    CHECK(verify_text(t.s, NULL, 0, pol, &res) == 0 && !res.accepted, "the verifier's window differs");
    gver_result_free(&res);
    free(pol);
    free(t.s);
}

int main(void)
{
    test_checker_overlay_and_window();
    test_window_not_shared_by_pruning();
    test_speculative_loop_pruned_by_inclusion();
    if (g_fails) {
        printf("%d failures\n", g_fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
