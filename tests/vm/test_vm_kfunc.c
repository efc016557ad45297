/*
 * test_vm_kfunc.c - CALL src_reg BPF_PSEUDO_KFUNC_CALL (host functions, as
 * EIM extensions call them) on the interpreter, the checked interpreter and
 * the JIT: the resolver is asked once per call site with the call's imm,
 * the returned function gets r1-r5 and its result lands in r0, r6-r9 and
 * the stack survive, it works inside bpf-to-bpf functions, and a missing
 * resolver or an unresolvable imm is a load error naming the instruction.
 */
#include <errno.h>
#include <stdint.h>

#include "test_util.h"

static uint64_t last_args[5];
static int n_calls;
static int resolved[8];          /* how often each imm was resolved */

static uint64_t kf_sum(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    last_args[0] = a; last_args[1] = b; last_args[2] = c; last_args[3] = d; last_args[4] = e;
    n_calls++;
    return a + 2 * b + 3 * c + 4 * d + 5 * e;
}

/* Writes through a pointer argument (a host function filling a buffer). */
static uint64_t kf_fill(uint64_t p, uint64_t len, uint64_t v, uint64_t d, uint64_t e)
{
    (void)d; (void)e;
    n_calls++;
    memset((void *)(uintptr_t)p, (int)v, (size_t)len);
    return len;
}

static uint64_t kf_neg(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b; (void)c; (void)d; (void)e;
    n_calls++;
    return (uint64_t)-(int64_t)a;
}

static gvm_helper_fn resolve_kfunc(void *arg, int32_t imm, struct graft_err *err)
{
    (void)arg;
    if (imm >= 0 && imm < 8)
        resolved[imm]++;
    switch (imm) {
    case 3: return kf_sum;
    case 4: return kf_fill;
    case 5: return kf_neg;
    default:
        graft_errf(err, -ENOENT, "host function %d is not in this process", imm);
        return NULL;
    }
}

static const struct gvm_env env = { .resolve_kfunc = resolve_kfunc };

static const char *engine_name(enum gvm_engine e, uint32_t flags)
{
    return flags ? "checked" : e == GVM_ENGINE_JIT ? "jit" : "interp";
}

static uint64_t run(const char *text, enum gvm_engine engine, uint32_t flags, int *ok)
{
    struct gvm_prog *p = NULL;
    struct graft_err err = {0};
    uint64_t ret = 0;
    *ok = 0;
    if (make_prog(text, &env, engine, flags, 0, &p, &err) < 0) {
        CHECK(0, "%s: load failed: %s", engine_name(engine, flags), err.msg);
        return 0;
    }
    if (gvm_prog_run(p, NULL, 0, &ret, &err) < 0)
        CHECK(0, "%s: run failed: %s", engine_name(engine, flags), err.msg);
    else
        *ok = 1;
    gvm_prog_free(p);
    return ret;
}

/* Five arguments reach the function, r0 is its result, callee-saved
 * registers and the stack are intact afterwards. */
static const char *prog_args =
    "mov r6, 66\n"
    "mov r7, 77\n"
    "mov r8, 88\n"
    "mov r9, 99\n"
    "stdw [r10-8], 1234\n"
    "mov r1, 1\n"
    "mov r2, 10\n"
    "mov r3, 100\n"
    "mov r4, 1000\n"
    "lddw r5, 0x100000000\n"
    "call kfunc 3\n"
    "jne r6, 66, bad\n"
    "jne r7, 77, bad\n"
    "jne r8, 88, bad\n"
    "jne r9, 99, bad\n"
    "ldxdw r1, [r10-8]\n"
    "jne r1, 1234, bad\n"
    "exit\n"
    "bad:\n"
    "mov r0, -1\n"
    "exit\n";

/* A kfunc writing the program's stack; two different kfuncs; one called
 * from a bpf-to-bpf function. */
static const char *prog_mixed =
    "mov r1, r10\n"
    "add r1, -16\n"
    "mov r2, 16\n"
    "mov r3, 0x5a\n"
    "call kfunc 4\n"
    "ldxdw r6, [r10-16]\n"
    "ldxdw r7, [r10-8]\n"
    "jne r6, r7, bad\n"
    "lddw r1, 0x5a5a5a5a5a5a5a5a\n"
    "jne r6, r1, bad\n"
    "mov r1, 7\n"
    "call local sub\n"
    "exit\n"
    "bad:\n"
    "mov r0, -1\n"
    "exit\n"
    "sub:\n"
    "call kfunc 5\n"
    "mov r1, r0\n"
    "call kfunc 5\n"
    "add r0, r0\n"
    "exit\n";

static void test_engine(enum gvm_engine engine, uint32_t flags)
{
    const char *name = engine_name(engine, flags);
    int ok;

    memset(resolved, 0, sizeof(resolved));
    n_calls = 0;
    uint64_t r = run(prog_args, engine, flags, &ok);
    CHECK(ok && r == 1 + 20 + 300 + 4000 + 5 * 0x100000000ull,
          "%s: kfunc result r0 = %llu", name, (unsigned long long)r);
    CHECK(last_args[0] == 1 && last_args[1] == 10 && last_args[2] == 100 &&
          last_args[3] == 1000 && last_args[4] == 0x100000000ull,
          "%s: arguments r1-r5 not passed through", name);
    CHECK(n_calls == 1, "%s: %d calls, expected 1", name, n_calls);
    CHECK(resolved[3] == 1, "%s: imm 3 resolved %d times, expected once at load", name,
          resolved[3]);

    n_calls = 0;
    r = run(prog_mixed, engine, flags, &ok);
    /* sub: -(-7) doubled = 14 */
    CHECK(ok && r == 14, "%s: mixed kfuncs returned %lld, expected 14", name, (long long)r);
    CHECK(n_calls == 3, "%s: %d kfunc calls, expected 3", name, n_calls);
    CHECK(resolved[4] == 1 && resolved[5] == 2, "%s: resolved 4:%d 5:%d, expected 1 and 2 "
          "(once per call site)", name, resolved[4], resolved[5]);
}

static void test_errors(void)
{
    struct gvm_prog *p = NULL;
    struct graft_err err = {0};
    const char *text = "mov r1, 1\ncall kfunc 3\nexit\n";

    /* No resolver: the call is a load error that names the instruction. */
    struct gvm_env none = {0};
    int rc = make_prog(text, &none, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(rc < 0 && strstr(err.msg, "insn 1") && strstr(err.msg, "kfunc"),
          "no resolver: rc %d, '%s'", rc, err.msg);
    gvm_prog_free(p);
    p = NULL;

    /* Unresolvable imm: the resolver's message, prefixed with the insn. */
    for (int e = 0; e < 2; e++) {
        rc = make_prog("mov r0, 0\nmov r1, 2\ncall kfunc 6\nexit\n", &env,
                       e ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP, 0, 0, &p, &err);
        CHECK(rc == -ENOENT && strstr(err.msg, "insn 2") &&
              strstr(err.msg, "host function 6 is not in this process"),
              "unresolvable kfunc: rc %d, '%s'", rc, err.msg);
        gvm_prog_free(p);
        p = NULL;
    }
}

int main(void)
{
    test_engine(GVM_ENGINE_INTERP, 0);
    test_engine(GVM_ENGINE_INTERP, GVM_F_CHECKED);
    test_engine(GVM_ENGINE_JIT, 0);
    test_errors();
    if (g_fails) {
        fprintf(stderr, "%d failure(s)\n", g_fails);
        return 1;
    }
    printf("vm kfunc: all passed\n");
    return 0;
}
