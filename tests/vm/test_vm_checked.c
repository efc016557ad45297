/*
 * test_vm_checked.c - the checked interpreter catches every kind of
 * violation and names the instruction; tail calls; atomics under threads;
 * speculative paths (GVM_F_SPECULATIVE).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "corpus.h"
#include "test_util.h"

static int checked_run_rc;     /* what the last checked_run's gvm_prog_run returned */

/* Run text in checked mode on ctx; return the error message ("" if none). */
static const char *checked_run(const char *text, const struct gvm_env *env, void *ctx,
                               uint64_t len, uint64_t step_limit, uint64_t *ret)
{
    static struct graft_err err;
    struct gvm_prog *p;
    uint64_t r0 = 0;
    memset(&err, 0, sizeof(err));
    if (make_prog(text, env ? env : corpus_env(), GVM_ENGINE_INTERP, GVM_F_CHECKED,
                  step_limit, &p, &err))
        return err.msg[0] ? err.msg : "create failed";
    checked_run_rc = gvm_prog_run(p, ctx, len, &r0, &err);
    gvm_prog_free(p);
    if (ret)
        *ret = r0;
    return err.msg;
}

static void expect_violation(const char *text, const char *want1, const char *want2)
{
    uint8_t ctx[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const char *msg = checked_run(text, NULL, ctx, sizeof(ctx), 1000, NULL);
    CHECK(strstr(msg, want1) && (!want2 || strstr(msg, want2)),
          "program:\n%s\nexpected '%s'%s%s, got '%s'", text, want1, want2 ? " and " : "",
          want2 ? want2 : "", msg);
}

static void expect_ok(const char *text, uint64_t want)
{
    uint8_t ctx[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint64_t r0 = 0;
    const char *msg = checked_run(text, NULL, ctx, sizeof(ctx), 1000, &r0);
    CHECK(!msg[0] && r0 == want, "program:\n%s\nexpected r0=0x%llx, got 0x%llx '%s'", text,
          (unsigned long long)want, (unsigned long long)r0, msg);
}

/* ---- mem_allowed ------------------------------------------------------ */

static uint8_t extra[32];

static int allow_extra_readonly(void *arg, uint64_t addr, uint64_t size, int write)
{
    uint64_t base = (uint64_t)(uintptr_t)extra;
    return !write && addr >= base && addr + size <= base + sizeof(extra);
}

static void test_mem_allowed(void)
{
    char text[256];
    struct gvm_env env = *corpus_env();
    env.mem_allowed = allow_extra_readonly;
    extra[4] = 0x42;
    snprintf(text, sizeof(text), "lddw r1, 0x%llx\nldxb r0, [r1+4]\nexit",
             (unsigned long long)(uintptr_t)extra);
    uint64_t r0 = 0;
    const char *msg = checked_run(text, &env, NULL, 0, 100, &r0);
    CHECK(!msg[0] && r0 == 0x42, "allowed read: %s", msg);
    snprintf(text, sizeof(text), "lddw r1, 0x%llx\nstb [r1+4], 1\nmov r0, 0\nexit",
             (unsigned long long)(uintptr_t)extra);
    msg = checked_run(text, &env, NULL, 0, 100, NULL);
    CHECK(strstr(msg, "insn 2") && strstr(msg, "write of 1 bytes"), "read-only: %s", msg);
    snprintf(text, sizeof(text), "lddw r1, 0x%llx\nldxw r0, [r1+30]\nexit",
             (unsigned long long)(uintptr_t)extra);
    msg = checked_run(text, &env, NULL, 0, 100, NULL);
    CHECK(strstr(msg, "insn 2") && strstr(msg, "read of 4 bytes"), "past end: %s", msg);
}

/* ---- helper writing to the stack -------------------------------------- */

static uint64_t fill(uint64_t dst, uint64_t size, uint64_t c, uint64_t d, uint64_t e)
{
    memset((void *)(uintptr_t)dst, 0x5a, size);
    return 0;
}

static void test_helper_fills_stack(void)
{
    static gvm_helper_fn table[BPF_MAX_HELPER_ID];
    table[9] = fill;
    struct gvm_env env = { .helpers = table };
    uint64_t r0 = 0;
    const char *msg = checked_run("mov r1, r10\nadd r1, -16\nmov r2, 8\ncall 9\n"
                                  "ldxdw r0, [r10-16]\nexit", &env, NULL, 0, 100, &r0);
    CHECK(!msg[0] && r0 == 0x5a5a5a5a5a5a5a5aull, "helper-filled stack: %s", msg);
    msg = checked_run("mov r1, r10\nadd r1, -16\nmov r2, 8\ncall 9\n"
                      "ldxdw r0, [r10-8]\nexit", &env, NULL, 0, 100, NULL);
    CHECK(strstr(msg, "insn 4") && strstr(msg, "uninitialised"), "unfilled: %s", msg);
}

/* A helper that declares its accesses: writes size bytes at dst after
 * reading 8 bytes at src (r3), as a test's wrapper around a real helper does. */
static uint64_t fill_checked(uint64_t dst, uint64_t size, uint64_t src, uint64_t d, uint64_t e)
{
    if (gvm_checked_helper_access(src, 8, 0) || gvm_checked_helper_access(dst, size, 1))
        return (uint64_t)-EFAULT;
    memset((void *)(uintptr_t)dst, 0x5a, size);
    return 0;
}

static void test_helper_declared_access(void)
{
    static gvm_helper_fn table[BPF_MAX_HELPER_ID];
    table[9] = fill_checked;
    struct gvm_env env = { .helpers = table };
    uint64_t r0 = 0;
    const char *msg = checked_run("stdw [r10-24], 0\nmov r3, r10\nadd r3, -24\n"
                                  "mov r1, r10\nadd r1, -16\nmov r2, 16\ncall 9\n"
                                  "ldxdw r0, [r10-8]\nexit", &env, NULL, 0, 100, &r0);
    CHECK(!msg[0] && r0 == 0x5a5a5a5a5a5a5a5aull, "declared in-frame write: %s", msg);
    msg = checked_run("stdw [r10-8], 0\nmov r3, r10\nadd r3, -8\n"
                      "mov r1, r10\nadd r1, -8\nmov r2, 16\ncall 9\nmov r0, 0\nexit",
                      &env, NULL, 0, 100, NULL);
    CHECK(strstr(msg, "insn 6 (call 9)") && strstr(msg, "write of 16 bytes"),
          "declared write past the frame: %s", msg);
    msg = checked_run("mov r3, r10\nadd r3, -24\nmov r1, r10\nadd r1, -16\nmov r2, 8\n"
                      "call 9\nmov r0, 0\nexit", &env, NULL, 0, 100, NULL);
    CHECK(strstr(msg, "insn 5 (call 9)") && strstr(msg, "uninitialised"),
          "declared read of uninitialised stack: %s", msg);
}

/* A bpf_loop-like helper: calls the callback r1 times with (i, r3). */
static uint64_t loop_cb(uint64_t n, uint64_t fn, uint64_t ctx, uint64_t d, uint64_t e)
{
    for (uint64_t i = 0; i < n; i++)
        if (gvm_invoke_callback(fn, i, ctx, 0, 0, 0))
            return i + 1;
    return n;
}

/* A violation inside a callback fails the whole run, and the callback's
 * instructions count toward the run's step limit. */
static void test_callback_violations(void)
{
    static gvm_helper_fn table[BPF_MAX_HELPER_ID];
    table[9] = loop_cb;
    struct gvm_env env = { .helpers = table };
    uint64_t r0 = 0;
    const char *msg = checked_run("stdw [r10-8], 0\nmov r1, 3\nlddw r2, func:cb\nmov r3, r10\n"
                                  "add r3, -8\ncall 9\nldxdw r0, [r10-8]\nexit\n"
                                  "cb:\nldxdw r0, [r2+0]\nadd r0, r1\nstxdw [r2+0], r0\n"
                                  "mov r0, 0\nexit", &env, NULL, 0, 1000, &r0);
    CHECK(!msg[0] && r0 == 3, "callback writing the caller's stack: %s r0=%llu", msg,
          (unsigned long long)r0);
    msg = checked_run("mov r1, 3\nlddw r2, func:cb\nmov r3, r10\nadd r3, -8\ncall 9\n"
                      "mov r0, 0\nexit\n"
                      "cb:\nldxdw r0, [r2+0]\nmov r0, 0\nexit", &env, NULL, 0, 1000, NULL);
    CHECK(strstr(msg, "uninitialised"), "callback reading uninitialised stack: '%s'", msg);
    CHECK(checked_run_rc != 0, "a violation in a callback must fail the run");
    msg = checked_run("mov r1, 1000\nlddw r2, func:cb\nmov r3, 0\ncall 9\nmov r0, 0\nexit\n"
                      "cb:\nmov r0, 0\nexit", &env, NULL, 0, 1000, NULL);
    CHECK(strstr(msg, "step limit"), "1000 callbacks of 2 insns, limit 1000: '%s'", msg);
}

/* ---- tail calls -------------------------------------------------------- */

static struct gvm_prog *tail_progs[2];

static const struct gvm_prog *tail_lookup(void *arg, uint64_t map, uint64_t index)
{
    return index < 2 ? tail_progs[index] : NULL;
}

static void test_tail_calls(uint32_t flags)
{
    struct graft_err err = { 0 };
    struct gvm_env env = { .tail_call_target = tail_lookup };
    /* prog 0: count in ctx[0], tail-call itself forever; falls through with
     * r0 = -2 once the limit is reached. prog 1: returns ctx[0] * 10. */
    int r = make_prog("ldxdw r2, [r1+0]\nadd r2, 1\nstxdw [r1+0], r2\n"
                      "mov r2, 0\nmov r3, 0\ncall 12\nexit",
                      &env, GVM_ENGINE_INTERP, flags, 0, &tail_progs[0], &err);
    CHECK(!r, "tail prog 0: %s", err.msg);
    r = make_prog("ldxdw r0, [r1+0]\nmul r0, 10\nexit", &env, GVM_ENGINE_INTERP, flags, 0,
                  &tail_progs[1], &err);
    CHECK(!r, "tail prog 1: %s", err.msg);
    struct gvm_prog *entry;
    r = make_prog("stdw [r1+0], 4\nmov r2, 0\nmov r3, 1\ncall 12\nmov r0, 77\nexit",
                  &env, GVM_ENGINE_INTERP, flags, 0, &entry, &err);
    CHECK(!r, "entry: %s", err.msg);
    if (r || !tail_progs[0] || !tail_progs[1])
        return;
    uint64_t ctx[1] = { 0 }, ret = 0;
    r = gvm_prog_run(entry, ctx, sizeof(ctx), &ret, &err);
    CHECK(!r && ret == 40, "tail call to prog 1: r=%d ret=%llu %s", r,
          (unsigned long long)ret, err.msg);
    ctx[0] = 0;
    r = gvm_prog_run(tail_progs[0], ctx, sizeof(ctx), &ret, &err);
    /* 1 initial run + 33 tail calls, then the 34th attempt fails */
    CHECK(!r && ctx[0] == 1 + BPF_MAX_TAIL_CALLS && ret == (uint64_t)-2,
          "tail-call limit: count %llu ret %lld %s", (unsigned long long)ctx[0],
          (long long)ret, err.msg);
    gvm_prog_free(entry);
    gvm_prog_free(tail_progs[0]);
    gvm_prog_free(tail_progs[1]);
    tail_progs[0] = tail_progs[1] = NULL;
}

/* ---- atomics from several threads ------------------------------------- */

struct thr {
    struct gvm_prog *p;
    uint64_t *shared;
    int rc;
};

static void *hammer(void *arg)
{
    struct thr *t = arg;
    struct graft_err err;
    uint64_t ret;
    for (int i = 0; i < 2000 && !t->rc; i++)
        t->rc = gvm_prog_run(t->p, t->shared, 16, &ret, &err);
    return NULL;
}

static void test_atomic_threads(void)
{
    struct graft_err err = { 0 };
    struct gvm_prog *p;
    /* each run adds 1 to ctx[0] and 3 to the low word of ctx[1], 10 times */
    int r = make_prog("mov r2, 1\nmov r3, 3\nmov r4, 10\nloop:\n"
                      "lock add [r1+0], r2\nlock fetch add32 [r1+8], r3\nmov r3, 3\n"
                      "sub r4, 1\njne r4, 0, loop\nmov r0, 0\nexit",
                      NULL, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(!r, "atomic prog: %s", err.msg);
    if (r)
        return;
    uint64_t shared[2] = { 0, 0 };
    pthread_t th[4];
    struct thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){ p, shared, 0 };
        pthread_create(&th[i], NULL, hammer, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(t[i].rc == 0, "thread %d failed", i);
    }
    CHECK(shared[0] == 4 * 2000 * 10 && shared[1] == 3ull * 4 * 2000 * 10,
          "lost atomic updates: %llu %llu", (unsigned long long)shared[0],
          (unsigned long long)shared[1]);
    gvm_prog_free(p);
}

/* ---- speculative paths (GVM_F_SPECULATIVE) ---------------------------- */

/* Run text checked and speculatively, the jump at insn `decided` marked as
 * never taken (as the verifier's facts would); the error message or "". */
static const char *spec_run(const char *text, uint32_t decided, uint64_t *ret)
{
    static struct graft_err err;
    memset(&err, 0, sizeof(err));
    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(text, &insns, &n, &err))
        return err.msg;
    struct gvm_insn_fact *facts = calloc(n, sizeof(*facts));
    if (!facts)
        abort();
    if (decided < n)
        facts[decided].flags = GVM_FACT_NOT_TAKEN;
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP,
                               .flags = GVM_F_CHECKED | GVM_F_SPECULATIVE, .env = corpus_env(),
                               .facts = facts, .n_facts = n };
    struct gvm_prog *p;
    int rc = gvm_prog_create(insns, n, &o, &p, &err);
    free(insns);
    free(facts);
    if (rc)
        return err.msg;
    uint8_t ctx[8] = { 0 };
    *ret = 0;
    gvm_prog_run(p, ctx, sizeof(ctx), ret, &err);
    gvm_prog_free(p);
    return err.msg;
}

static void test_speculative(void)
{
    /* atomics and loads on the path see its own stores; memory does not */
    static const char atomics[] =
        "mov r2, 0\n"
        "stdw [r10-8], 5\n"
        "jeq r2, 1, spec\n"            /* insn 2, never taken */
        "ldxdw r0, [r10-8]\n"
        "exit\n"
        "spec: mov r3, 3\n"
        "lock add [r10-8], r3\n"       /* 8 */
        "mov r4, 10\n"
        "lock fetch add [r10-8], r4\n" /* r4 = 8, 18 */
        "mov r0, 18\n"
        "lock cmpxchg [r10-8], r2\n"   /* equal: 0 */
        "ldxdw r5, [r10-8]\n"
        "add r5, r4\n"
        "jeq r5, 8, ok\n"
        "ldxb r0, [r2+0]\n"            /* only if the overlay went wrong */
        "ok: mov r0, 0\n"
        "exit\n";
    uint64_t r0 = 0;
    const char *msg = spec_run(atomics, 2, &r0);
    CHECK(!msg[0] && r0 == 5, "speculative atomics: r0 %llu, %s", (unsigned long long)r0, msg);
    static const char load[] =
        "mov r2, 0\n"
        "jeq r2, 1, spec\n"
        "mov r0, 0\n"
        "exit\n"
        "spec: ldxb r0, [r2+0]\n"
        "exit\n";
    msg = spec_run(load, 1, &r0);
    CHECK(strstr(msg, "insn 4 (ldxb r0, [r2+0])") && strstr(msg, "misprediction of insn 1 (jeq r2, 1, +2)"),
          "speculative load: %s", msg);
    /* only the jumps the facts mark are mispredicted; a path ends at a call */
    msg = spec_run(load, UINT32_MAX, &r0);
    CHECK(!msg[0], "undecided jump: %s", msg);
    msg = spec_run("mov r2, 0\njeq r2, 1, spec\nmov r0, 0\nexit\nspec: call 7\nldxb r0, [r2+0]\nexit", 1, &r0);
    CHECK(!msg[0], "past a call: %s", msg);
    /* it needs the facts and the checked mode */
    struct graft_err err = { 0 };
    struct bpf_insn exit_prog[] = { BPF_MOV64_IMM(BPF_R0, 0), BPF_EXIT_INSN() };
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP,
                               .flags = GVM_F_CHECKED | GVM_F_SPECULATIVE };
    struct gvm_prog *p = NULL;
    CHECK(gvm_prog_create(exit_prog, 2, &o, &p, &err) == -EINVAL && strstr(err.msg, "facts"),
          "no facts: %s", err.msg);
}

int main(void)
{
    /* ctx bounds */
    expect_violation("ldxw r0, [r1+6]\nexit", "insn 0 (ldxw r0, [r1+6])", "outside ctx");
    expect_violation("mov r0, 0\nstdw [r1+1], 0\nexit", "insn 1", "write of 8 bytes at ctx+1");
    expect_violation("ldxb r0, [r1-1]\nexit", "insn 0", "read of 1 bytes");
    expect_ok("ldxdw r0, [r1+0]\nexit", 0x0807060504030201ull);
    expect_ok("ldxb r0, [r1+7]\nexit", 8);
    /* wild pointers */
    expect_violation("lddw r1, 0x1000\nldxb r0, [r1+0]\nexit", "insn 2",
                     "outside ctx, the live stack");
    /* stack: initialisation, bounds, dead frames */
    expect_violation("ldxdw r0, [r10-8]\nexit", "insn 0",
                     "uninitialised stack byte fp-8");
    expect_violation("stw [r10-8], 1\nldxdw r0, [r10-8]\nexit", "insn 1",
                     "uninitialised stack byte fp-4");
    expect_ok("stw [r10-8], 1\nstw [r10-4], 2\nldxdw r0, [r10-8]\nexit", 0x200000001ull);
    expect_violation("stb [r10-513], 1\nmov r0, 0\nexit", "insn 0",
                     "outside the live stack frames");
    expect_violation("stb [r10+0], 1\nmov r0, 0\nexit", "insn 0", "outside the live stack");
    expect_violation("stdw [r10-4], 1\nmov r0, 0\nexit", "insn 0", "outside the live stack");
    expect_violation("call f\nstdw [r0+0], 1\nmov r0, 0\nexit\n"
                     "f:\nstdw [r10-8], 5\nmov r0, r10\nadd r0, -8\nexit",
                     "insn 1", "outside the live stack frames");
    expect_violation("call f\nmov r0, 0\nexit\nf:\nldxdw r0, [r10-8]\nexit", "insn 3",
                     "uninitialised");
    /* registers */
    expect_violation("mov r0, r3\nexit", "insn 0", "reads r3, which is not initialised");
    expect_violation("exit", "insn 0 (exit)", "reads r0");
    expect_violation("call 7\nmov r0, r1\nexit", "insn 1", "reads r1");
    expect_violation("mov r6, 1\ncall f\nexit\nf:\nmov r0, r6\nexit", "insn 3", "reads r6");
    expect_violation("mov r1, 1\ncall f\nmov r0, r1\nexit\nf:\nmov r0, 0\nexit", "insn 2",
                     "reads r1");
    expect_ok("mov r6, 5\ncall f\nmov r0, r6\nexit\nf:\nmov r0, 0\nexit", 5);
    expect_ok("mov r0, r2\nexit", 8);   /* r2 = ctx length is initialised */
    /* atomics */
    expect_violation("stdw [r10-8], 0\nmov r2, 1\nlock add [r10-6], r2\nmov r0, 0\nexit",
                     "insn 2", "not 8-byte aligned");
    expect_violation("mov r2, 1\nlock add32 [r10-8], r2\nmov r0, 0\nexit", "insn 1",
                     "uninitialised");
    /* step limit */
    expect_violation("mov r0, 0\nja -1", "insn 1", "step limit of 1000");
    /* callx */
    expect_violation("lddw r3, 0x7fff0000\ncallx r3\nexit", "insn 2", "neither a helper");

    test_mem_allowed();
    test_helper_fills_stack();
    test_helper_declared_access();
    test_callback_violations();
    test_tail_calls(0);
    test_tail_calls(GVM_F_CHECKED);
    test_atomic_threads();
    test_speculative();
    if (g_fails)
        return 1;
    printf("vm checked-mode tests passed\n");
    return 0;
}
