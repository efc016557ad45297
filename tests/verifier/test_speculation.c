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
 *    what such paths must prove is still proven.
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
    struct gver_input in = { .insns = p, .n = n, .maps = maps, .n_maps = n_maps, .policy = pol };
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
    gver_result_free(&res);
    free(pol);
    free(t.s);
}

int main(void)
{
    test_window_not_shared_by_pruning();
    if (g_fails) {
        printf("%d failures\n", g_fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
