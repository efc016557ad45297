/*
 * test_unit.c - unit tests of the verifier's pieces:
 *  - abstract scalar arithmetic is sound: for random abstract values A, B and
 *    concrete members x of A, y of B, op(x, y) is a member of op(A, B); branch
 *    refinement never drops a value that satisfies the condition, and
 *    "branch known taken/not taken" is never wrong;
 *  - the checked-execution harness really catches unsafe programs (so the
 *    corpus and fuzzer are not vacuous);
 *  - the public API: policies, result fields, log levels, error paths;
 *  - rights: every policy handed out is observe-only until granted more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "verifier/vinternal.h"
#include "vm/vm.h"
#include "tfail.h"
#include "vtest.h"


static uint64_t rs = 0x1234567887654321ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static int member(const struct scalar *s, uint64_t x)
{
    return x >= s->umin && x <= s->umax && (int64_t)x >= s->smin && (int64_t)x <= s->smax &&
           (uint32_t)x >= s->u32min && (uint32_t)x <= s->u32max &&
           (int32_t)(uint32_t)x >= s->s32min && (int32_t)(uint32_t)x <= s->s32max &&
           (x & ~s->t.mask) == s->t.value;
}

static uint64_t interesting(void)
{
    static const uint64_t v[] = { 0, 1, 2, 7, 8, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff,
                                  0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
                                  0xffffffffffffffffull, 0xfffffffffffffff0ull };
    switch (rnd() % 4) {
    case 0: return v[rnd() % (sizeof(v) / sizeof(v[0]))];
    case 1: return rnd() % 64;
    case 2: return (uint64_t)-(int64_t)(rnd() % 64);
    default: return rnd();
    }
}

/* A random abstract value and one of its members. */
static void random_abs(struct scalar *s, uint64_t *x)
{
    uint64_t a = interesting(), b;
    switch (rnd() % 5) {
    case 0:
        scalar_const(s, a);
        *x = a;
        return;
    case 1:
        b = a + rnd() % 1000;
        if (b < a) b = a;
        scalar_unknown(s);
        s->umin = a;
        s->umax = b;
        scalar_sync(s);
        *x = a + (b > a ? rnd() % (b - a + 1) : 0);
        break;
    case 2: {
        uint64_t mask = rnd() & rnd();
        scalar_unknown(s);
        s->t = (struct tnum){ a & ~mask, mask };
        scalar_sync(s);
        *x = (a & ~mask) | (rnd() & mask);
        break;
    }
    case 3: {
        int64_t lo = (int64_t)a, hi;
        if (__builtin_add_overflow(lo, (int64_t)(rnd() % 300), &hi))
            hi = lo;
        scalar_unknown(s);
        s->smin = lo;
        s->smax = hi;
        scalar_sync(s);
        *x = (uint64_t)lo + rnd() % ((uint64_t)hi - (uint64_t)lo + 1);
        break;
    }
    default:
        scalar_unknown(s);
        s->u32min = (uint32_t)a;
        s->u32max = (uint32_t)a + (uint32_t)(rnd() % 100);
        if (s->u32max < s->u32min) s->u32max = UINT32_MAX;
        scalar_sync(s);
        *x = (rnd() << 32) | (s->u32min + rnd() % ((uint64_t)s->u32max - s->u32min + 1));
        break;
    }
    if (!member(s, *x))
        scalar_const(s, *x = a);
}

static uint64_t concrete(uint64_t a, uint64_t b, uint8_t op, int alu32, int sgn)
{
    if (alu32) {
        uint32_t x = (uint32_t)a, y = (uint32_t)b;
        switch (op) {
        case BPF_ADD: return (uint32_t)(x + y);
        case BPF_SUB: return (uint32_t)(x - y);
        case BPF_MUL: return (uint32_t)(x * y);
        case BPF_OR: return x | y;
        case BPF_AND: return x & y;
        case BPF_XOR: return x ^ y;
        case BPF_LSH: return (uint32_t)(x << (y & 31));
        case BPF_RSH: return x >> (y & 31);
        case BPF_ARSH: return (uint32_t)((int32_t)x >> (y & 31));
        case BPF_DIV: return y == 0 ? 0 : sgn ? ((int32_t)x == INT32_MIN && (int32_t)y == -1 ? x : (uint32_t)((int32_t)x / (int32_t)y)) : x / y;
        case BPF_MOD: return y == 0 ? x : sgn ? ((int32_t)y == -1 ? 0 : (uint32_t)((int32_t)x % (int32_t)y)) : x % y;
        }
        return 0;
    }
    switch (op) {
    case BPF_ADD: return a + b;
    case BPF_SUB: return a - b;
    case BPF_MUL: return a * b;
    case BPF_OR: return a | b;
    case BPF_AND: return a & b;
    case BPF_XOR: return a ^ b;
    case BPF_LSH: return a << (b & 63);
    case BPF_RSH: return a >> (b & 63);
    case BPF_ARSH: return (uint64_t)((int64_t)a >> (b & 63));
    case BPF_DIV: return b == 0 ? 0 : sgn ? ((int64_t)a == INT64_MIN && (int64_t)b == -1 ? a : (uint64_t)((int64_t)a / (int64_t)b)) : a / b;
    case BPF_MOD: return b == 0 ? a : sgn ? ((int64_t)b == -1 ? 0 : (uint64_t)((int64_t)a % (int64_t)b)) : a % b;
    }
    return 0;
}

static int cmp_true(uint64_t a, uint64_t b, uint8_t op, int is32)
{
    if (is32) {
        a = (uint32_t)a;
        b = (uint32_t)b;
    }
    int64_t sa = is32 ? (int32_t)a : (int64_t)a, sb = is32 ? (int32_t)b : (int64_t)b;
    switch (op) {
    case BPF_JEQ: return a == b;
    case BPF_JNE: return a != b;
    case BPF_JGT: return a > b;
    case BPF_JGE: return a >= b;
    case BPF_JLT: return a < b;
    case BPF_JLE: return a <= b;
    case BPF_JSGT: return sa > sb;
    case BPF_JSGE: return sa >= sb;
    case BPF_JSLT: return sa < sb;
    case BPF_JSLE: return sa <= sb;
    case BPF_JSET: return (a & b) != 0;
    }
    return 0;
}

static void test_scalar_soundness(void)
{
    static const uint8_t ops[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH,
                                   BPF_RSH, BPF_MOD, BPF_XOR, BPF_ARSH };
    static const uint8_t jops[] = { BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE,
                                    BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE, BPF_JSET };
    int bad = 0;
    for (int it = 0; it < 300000 && bad < 5; it++) {
        struct scalar a, b;
        uint64_t x, y;
        random_abs(&a, &x);
        random_abs(&b, &y);
        if (!member(&a, x) || !member(&b, y))
            continue;
        uint8_t op = ops[rnd() % sizeof(ops)];
        int alu32 = rnd() % 3 == 0, sgn = (op == BPF_DIV || op == BPF_MOD) && rnd() % 2;
        struct scalar r = a;
        scalar_alu(&r, &b, op, alu32, sgn);
        uint64_t z = concrete(x, y, op, alu32, sgn);
        if (!member(&r, z)) {
            char sa[200], sb[200], sr[200];
            scalar_str(sa, sizeof(sa), &a);
            scalar_str(sb, sizeof(sb), &b);
            scalar_str(sr, sizeof(sr), &r);
            CHECK(0, "alu op %#x%s%s: %#llx op %#llx = %#llx not in %s (a=%s b=%s)", op, alu32 ? "32" : "",
                  sgn ? " signed" : "", (unsigned long long)x, (unsigned long long)y, (unsigned long long)z,
                  sr, sa, sb);
            bad++;
        }
        /* negation */
        r = a;
        scalar_neg(&r, alu32);
        z = alu32 ? (uint32_t)(0u - (uint32_t)x) : 0 - x;
        CHECK(member(&r, z), "neg%s of %#llx", alu32 ? "32" : "", (unsigned long long)x);
        /* comparisons */
        uint8_t jop = jops[rnd() % sizeof(jops)];
        int is32 = rnd() % 3 == 0;
        int truth = cmp_true(x, y, jop, is32);
        int known = scalar_branch_taken(&a, &b, jop, is32);
        if (known >= 0 && known != truth) {
            CHECK(0, "branch_taken op %#x%s says %d for %#llx, %#llx", jop, is32 ? "32" : "", known,
                  (unsigned long long)x, (unsigned long long)y);
            bad++;
        }
        struct scalar ra = a, rb = b;
        int feas = scalar_refine(&ra, &rb, jop, truth, is32);
        if (!feas || !member(&ra, x) || !member(&rb, y)) {
            CHECK(0, "refine op %#x%s taken=%d dropped %#llx, %#llx (feasible=%d)", jop, is32 ? "32" : "",
                  truth, (unsigned long long)x, (unsigned long long)y, feas);
            bad++;
        }
        /* sign extension of loads */
        unsigned sz = 1u << (rnd() % 3);
        r = a;
        scalar_sext_size(&r, sz);
        uint64_t sx = (uint64_t)((int64_t)(x << (64 - 8 * sz)) >> (64 - 8 * sz));
        if (member(&a, x) && (scalar_is_const(&a) || 1))
            CHECK(member(&r, sx) || !(a.smin >= -(1ll << (8 * sz - 1)) && a.smax < (1ll << (8 * sz - 1))) ||
                  member(&r, sx), "sext");
    }
}

static void test_harness_catches(void)
{
    /* If the harness did not catch these, the corpus/fuzzer runs would prove nothing. */
    static const char *bad[] = {
        "ldxdw r0, [r10-8]\nexit\n",                                    /* uninitialised stack */
        "ldxdw r0, [r1+64]\nexit\n",                                    /* past the ctx */
        ("stw [r10-4], 0\nmov r2, r10\nadd r2, -4\nlddw r1, mapidx:0\ncall 1\n"
         "jeq r0, 0, +1\nldxdw r0, [r0+16]\nexit\n"),                   /* past the value */
        "mov r0, 0\nl: add r0, 1\nja l\n",                              /* never ends */
    };
    struct gmap_def m = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 16, .max_entries = 1 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bpf_insn *p;
        uint32_t n;
        struct graft_err err;
        CHECK(gvm_asm(bad[i], &p, &n, &err) == 0, "asm: %s", err.msg);
        char msg[512] = "";
        int r = vt_run_checked(p, n, &m, 1, 64, 2, 1, msg, sizeof(msg));
        CHECK(r == 1, "harness did not flag unsafe program %zu (r=%d %s)", i, r, msg);
        /* and the verifier rejects each of them */
        struct gver_policy *pol = gver_policy_raw(64);
        struct gver_input in = { .insns = p, .n = n, .maps = &m, .n_maps = 1, .policy = pol };
        struct gver_result res;
        CHECK(gver_verify(&in, &res, &err) == 0 && !res.accepted, "verifier accepted unsafe %zu", i);
        gver_result_free(&res);
        free(pol);
        free(p);
    }
}

static int verify_text(const char *text, struct gver_policy *pol, int level, struct gver_result *res)
{
    struct bpf_insn *p;
    uint32_t n;
    struct graft_err err;
    if (gvm_asm(text, &p, &n, &err))
        return -1;
    struct gver_input in = { .insns = p, .n = n, .policy = pol, .log_level = level };
    int r = gver_verify(&in, res, &err);
    free(p);
    return r;
}

static void test_api(void)
{
    struct gver_result res;
    /* NULL policy means raw with no ctx */
    CHECK(verify_text("mov r0, 0\nexit\n", NULL, 0, &res) == 0 && res.accepted, "null policy");
    CHECK(res.fail_insn == -1 && res.reason[0] == 0, "accepted result fields");
    CHECK(res.max_path_insns == 2, "max path %llu", (unsigned long long)res.max_path_insns);
    gver_result_free(&res);
    CHECK(verify_text("ldxdw r0, [r1+0]\nexit\n", NULL, 0, &res) == 0 && !res.accepted, "no ctx");
    gver_result_free(&res);

    /* rejection: insn index, reason, log with path and state at level 1 */
    struct gver_policy *pol = gver_policy_raw(16);
    CHECK(pol && pol->ctx && pol->ctx->size == 16 && pol->max_states == 1000000, "policy_raw");
    CHECK(gver_policy_helper_allowed(pol, 1) && gver_policy_helper_allowed(pol, 181), "std helpers");
    CHECK(!gver_policy_helper_allowed(pol, 0) && !gver_policy_helper_allowed(pol, 255), "unknown helpers");
    const char *prog = "mov r2, 1\nmov r3, 2\njeq r2, 1, +1\nmov r0, 0\nldxdw r0, [r10-16]\nexit\n";
    CHECK(verify_text(prog, pol, 1, &res) == 0 && !res.accepted, "reject");
    CHECK(res.fail_insn == 4, "fail_insn %lld", (long long)res.fail_insn);
    CHECK(strstr(res.reason, "invalid read from stack R10 off=-16 size=8: uninitialised") != NULL, "reason: %s", res.reason);
    CHECK(res.log && strstr(res.log, "path to the rejection") && strstr(res.log, "2: jeq") &&
          strstr(res.log, "R2=1") && strstr(res.log, "R3=2"), "log1: %s", res.log);
    gver_result_free(&res);
    CHECK(verify_text(prog, pol, 2, &res) == 0 && !res.accepted, "reject2");
    CHECK(res.log && strstr(res.log, "0: mov r2, 1") && strstr(res.log, "R10=fp0"), "log2: %s", res.log);
    gver_result_free(&res);
    CHECK(verify_text(prog, pol, 0, &res) == 0 && res.log && !strstr(res.log, "path to"), "log0");
    gver_result_free(&res);
    gver_policy_allow_helper(pol, 5, 0);
    CHECK(!gver_policy_helper_allowed(pol, 5), "deny");
    free(pol);

    struct graft_err err;
    CHECK(gver_verify(NULL, &res, &err) < 0, "null input");
    struct gver_input in = { .insns = NULL, .n = 0 };
    CHECK(gver_verify(&in, &res, &err) == 0 && !res.accepted && strstr(res.reason, "empty"), "empty");
    gver_result_free(&res);

    /* prog-type policies */
    static const struct { int t; uint32_t sz; } pt[] = { { 1, 168 }, { 2, 168 }, { 4, 64 }, { 5, 96 }, { 8, 4096 } };
    for (size_t i = 0; i < sizeof(pt) / sizeof(pt[0]); i++) {
        struct gver_policy *p = gver_policy_for_prog_type(pt[i].t);
        CHECK(p && p->ctx && p->ctx->size == pt[i].sz, "prog type %d", pt[i].t);
        free(p);
    }
    CHECK(gver_policy_for_prog_type(999) == NULL, "unknown prog type");

    /* stack depth: combined along the call chain */
    CHECK(verify_text("stdw [r10-64], 0\ncall f\nmov r0, 0\nexit\nf: stdw [r10-128], 0\nmov r0, 0\nexit\n",
                      NULL, 0, &res) == 0 && res.accepted && res.max_stack_depth == 192,
          "stack depth %u", res.max_stack_depth);
    gver_result_free(&res);
    /* budget of explored instructions */
    struct gver_policy *small = gver_policy_raw(0);
    small->max_states = 50;
    CHECK(verify_text("mov r0, 0\nmov r1, 0\nl: add r1, 1\njlt r1, 100, l\nexit\n", small, 0, &res) == 0 &&
          !res.accepted && strstr(res.reason, "too complex"), "budget");
    gver_result_free(&res);
    free(small);
}

/* Accepted under pol with exactly `want` worst-case instructions. */
static void check_bound(const char *what, const char *text, struct gver_policy *pol, uint64_t want)
{
    struct gver_result res;
    CHECK(verify_text(text, pol, 0, &res) == 0 && res.accepted && res.max_path_insns == want,
          "%s: %llu, not %llu (%s)", what, (unsigned long long)res.max_path_insns,
          (unsigned long long)want, res.reason);
    gver_result_free(&res);
}

/* The worst-case instruction count in the result (issue 14, item 4): exact
 * on these programs, whose counts are worked out in the comments. */
static void test_worst_case_bound(void)
{
    struct gver_policy *pol = gver_policy_raw(8);
    /* 5 up to the call, 10 iterations of 2, then 2 */
    check_bound("bpf_loop of 10",
                "mov r1, 10\nlddw r2, func:cb\nmov r3, 0\nmov r4, 0\ncall 181\n"
                "mov r0, 0\nexit\ncb: mov r0, 0\nexit\n", pol, 27);
    /* nested: 10 x (7 + 20 x 2) + 7 */
    check_bound("nested bpf_loop",
                "mov r1, 10\nlddw r2, func:outer\nmov r3, 0\nmov r4, 0\ncall 181\n"
                "mov r0, 0\nexit\nouter: mov r1, 20\nlddw r2, func:inner\nmov r3, 0\n"
                "mov r4, 0\ncall 181\nmov r0, 0\nexit\ninner: mov r0, 0\nexit\n", pol, 477);
    /* One bpf_loop call reached twice: its callback takes 3 instructions
     * the first time (NULL context), 6 the second. The worst iteration of
     * that call is known only after the second, so the exploration runs
     * again and both are charged 10 x 6: 2 + (5 + 60 + 2) + 3 + 67 + 2. */
    check_bound("one loop call reached twice",
                "mov r1, 0\ncall f\nmov r1, r10\nadd r1, -8\ncall f\nmov r0, 0\nexit\n"
                "f: mov r3, r1\nmov r1, 10\nlddw r2, func:cb\nmov r4, 0\ncall 181\n"
                "mov r0, 0\nexit\n"
                "cb: jeq r2, 0, short\nmov r0, 0\nmov r0, 0\nmov r0, 0\nshort: mov r0, 0\nexit\n",
                pol, 141);
    /* no budget in the policy: the default one applies */
    const char *big = "ldxdw r1, [r1+0]\nlddw r2, func:cb\nmov r3, 0\nmov r4, 0\ncall 181\n"
                      "mov r0, 0\nexit\ncb: mov r0, 0\nexit\n";
    struct gver_result res;
    CHECK(pol->insn_budget == 0 && verify_text(big, pol, 0, &res) == 0 && !res.accepted &&
          strstr(res.reason, "the default budget allows 1000000") && res.fail_insn == 5,
          "default budget: %s", res.reason);
    gver_result_free(&res);
    pol->insn_budget = 20000000;
    check_bound("raised budget", big, pol, 5 + 2 * 8388608 + 2);
    free(pol);
}

/* The policies the verifier gives out, and a NULL policy, are observe-only:
 * every helper that changes the host needs an explicit grant, so an
 * embedder who sets nothing gets the safe policy. */
static void test_rights(void)
{
    static const uint32_t changing[] = { 36, 58, 109, 117 };
    for (int t = 0; t <= 10; t++) {
        struct gver_policy *p = t ? gver_policy_for_prog_type(t) : gver_policy_raw(64);
        for (size_t i = 0; p && i < sizeof(changing) / sizeof(changing[0]); i++)
            CHECK(!gver_policy_helper_allowed(p, changing[i]), "type %d: helper %u allowed by default", t,
                  changing[i]);
        if (p) {
            CHECK(gver_policy_helper_allowed(p, 112) && gver_policy_helper_allowed(p, 1),
                  "type %d: probe_read_user and map lookups stay allowed", t);
            gver_policy_grant(p, GVER_RIGHT_WRITE_USER | GVER_RIGHT_SIGNAL);
            CHECK(gver_policy_helper_allowed(p, 36) && gver_policy_helper_allowed(p, 109) &&
                  gver_policy_helper_allowed(p, 117) && !gver_policy_helper_allowed(p, 58),
                  "type %d: grant gives exactly the rights' helpers", t);
        }
        free(p);
    }
    static const char *write_user =
        "stdw [r10-8], 0\nmov r1, 0\nmov r2, r10\nadd r2, -8\nmov r3, 8\ncall 36\nmov r0, 0\nexit\n";
    static const char *signal = "mov r1, 10\ncall 109\nmov r0, 0\nexit\n";
    static const char *override = "mov r2, 0\ncall 58\nmov r0, 0\nexit\n";
    struct gver_result res;
    CHECK(verify_text(write_user, NULL, 0, &res) == 0 && !res.accepted && res.fail_insn == 5,
          "NULL policy refuses probe_write_user: %s", res.reason);
    gver_result_free(&res);
    CHECK(verify_text(signal, NULL, 0, &res) == 0 && !res.accepted, "NULL policy refuses send_signal");
    gver_result_free(&res);
    struct gver_policy *up = gver_policy_for_prog_type(GPROG_UPROBE);
    CHECK(verify_text(override, up, 0, &res) == 0 && !res.accepted, "uprobe policy refuses override_return");
    gver_result_free(&res);
    gver_policy_grant(up, GVER_RIGHT_OVERRIDE);
    CHECK(verify_text(override, up, 0, &res) == 0 && res.accepted, "granted override: %s", res.reason);
    gver_result_free(&res);
    free(up);
    struct gver_policy *raw = gver_policy_raw(0);
    gver_policy_grant(raw, GVER_RIGHTS_HOST_WRITES);
    CHECK(verify_text(write_user, raw, 0, &res) == 0 && res.accepted, "granted write-user: %s", res.reason);
    gver_result_free(&res);
    CHECK(verify_text(signal, raw, 0, &res) == 0 && res.accepted, "granted signal: %s", res.reason);
    gver_result_free(&res);
    free(raw);

    /* names, parsing, what a program uses */
    uint32_t r = 0;
    struct graft_err err = {0};
    CHECK(gver_rights_parse("write-user,signal", &r, &err) == 0 &&
          r == (GVER_RIGHT_WRITE_USER | GVER_RIGHT_SIGNAL), "parse list: %#x", r);
    CHECK(gver_rights_parse("all", &r, &err) == 0 && r == GVER_RIGHTS_HOST_WRITES, "parse all");
    CHECK(gver_rights_parse("override,bogus", &r, &err) == -EINVAL && strstr(err.msg, "'bogus'") &&
          strstr(err.msg, "write-user, override, signal"), "unknown right named: %s", err.msg);
    CHECK(gver_rights_parse("read-host", &r, &err) == -EINVAL, "read-host is not a grant");
    CHECK(gver_rights_parse("", &r, &err) == -EINVAL, "empty list");
    CHECK(!strcmp(gver_right_name(GVER_RIGHT_OVERRIDE), "override") && !gver_right_name(0x80), "names");
    struct bpf_insn *p;
    uint32_t n;
    CHECK(gvm_asm(write_user, &p, &n, &err) == 0, "asm");
    int64_t first[9];
    CHECK(gver_rights_used(p, n, first) == GVER_RIGHT_WRITE_USER && first[0] == 5 && first[1] == -1,
          "write_user program uses write-user at insn 5");
    free(p);
}

/* kernel_reads_own_mem (graft compat): the result names exactly the calls
 * proven to copy the program's own memory - the ones the caller runs as
 * bpf_probe_read[_str] - and the flag changes the policy's tag. */
static void test_own_copies(void)
{
    struct gver_policy *pol = gver_policy_raw(8);
    gver_policy_allow_helper(pol, 113, 0);
    gver_policy_allow_helper(pol, 115, 0);
    uint64_t tag_without = gver_policy_tag(pol);
    pol->kernel_reads_own_mem = 1;
    CHECK(gver_policy_tag(pol) != tag_without, "the flag is part of the policy tag");
    const char *prog = "stdw [r10-8], 1\n"
                       "mov r1, r10\nadd r1, -16\nmov r2, 8\nmov r3, r10\nadd r3, -8\ncall 113\n"   /* 6 */
                       "mov r1, r10\nadd r1, -24\nmov r2, 8\nmov r3, r10\nadd r3, -8\ncall 115\n"   /* 12 */
                       "mov r1, r10\nadd r1, -32\nmov r2, 8\nmov r3, r10\nadd r3, -8\ncall 4\n"
                       "mov r0, 0\nexit\n";
    struct gver_result res;
    CHECK(verify_text(prog, pol, 0, &res) == 0 && res.accepted, "own copies accepted: %s", res.reason);
    CHECK(res.n_own_copies == 2 && res.own_copies && res.own_copies[0] == 6 && res.own_copies[1] == 12,
          "own copies listed: %u", res.n_own_copies);
    gver_result_free(&res);
    CHECK(res.own_copies == NULL && res.n_own_copies == 0, "freed");
    pol->kernel_reads_own_mem = 0;
    CHECK(verify_text(prog, pol, 0, &res) == 0 && !res.accepted && res.fail_insn == 6,
          "without the flag: refused at 6 (%s)", res.reason);
    gver_result_free(&res);
    free(pol);
}

int main(void)
{
    ghelper_set_trace_sink(NULL, NULL);
    test_scalar_soundness();
    test_harness_catches();
    test_api();
    test_worst_case_bound();
    test_rights();
    test_own_copies();
    if (g_fails) {
        printf("%d failures\n", g_fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
