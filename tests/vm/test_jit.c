/*
 * test_jit.c - JIT-specific tests: the encodings and paths the corpus and
 * the differential fuzzer reach rarely or not at all.
 *
 *  - r7 (r13) and r10 (rbp) as memory bases need a displacement byte; disp8
 *    and disp32 offsets; atomics through r13;
 *  - INT_MIN / -1, INT_MIN % -1, division and modulo by zero, imm and reg;
 *  - every jump condition, 32- and 64-bit, imm and reg, on edge values,
 *    checked against a C model;
 *  - branch relaxation: forward and backward branches over bodies on both
 *    sides of the 127-byte rel8 limit;
 *  - 8 frames of bpf-to-bpf calls work, a 9th aborts the run;
 *  - tail calls: chains, the 33-call limit, from a subfunction;
 *  - callx of helpers and functions, and a bad callx target;
 *  - inline array-map lookups (plain and per-CPU) agree with the helper and
 *    do not call it;
 *  - W^X: the code mapping is r-x, never writable;
 *  - leaf programs (no calls: lean frame, entered without the wrapper)
 *    keep the C callee-saved registers and rsp, with and without r6-r10.
 * Every program runs on the interpreter too and both must agree (except the
 * documented abort value, which the interpreter reports as an error).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"
#include "test_util.h"

/* ---- environment: helpers, an array map, tail-call targets ------------- */

static unsigned lookup_calls;
static uint64_t array_values[4 * 16];        /* 4 CPUs x 16 entries of 8 bytes */
#define MAP_HANDLE 0x5000u

static uint64_t h_lookup(uint64_t map, uint64_t key, uint64_t a, uint64_t b, uint64_t c)
{
    lookup_calls++;
    uint32_t k = *(const uint32_t *)(uintptr_t)key;
    if (map != MAP_HANDLE && map != MAP_HANDLE + 1)
        return 0;
    if (k >= 16)
        return 0;
    int cpu = map == MAP_HANDLE + 1 ? sched_getcpu() : 0;
    return (uint64_t)(uintptr_t)&array_values[cpu * 16 + k];
}

static uint64_t h_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a + b + c + d + e;
}

static uint64_t h_times3(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a * 3;
}

static gvm_helper_fn helpers[BPF_MAX_HELPER_ID] = {
    [1] = h_lookup, [2] = h_add, [3] = h_times3,
};

static int resolve(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *v,
                   struct graft_err *err)
{
    *v = MAP_HANDLE + (uint64_t)imm;          /* map:0 = array, map:1 = per-CPU array */
    return 0;
}

static int array_info(void *arg, uint64_t map, struct gvm_array_info *ai)
{
    if (map != MAP_HANDLE && map != MAP_HANDLE + 1)
        return 0;
    ai->values = array_values;
    ai->stride = 8;
    ai->max_entries = 16;
    ai->percpu_stride = map == MAP_HANDLE + 1 ? 16 * 8 : 0;
    return 1;
}

static const struct gvm_prog *tail_targets[2][4];   /* [engine][index] */
static int tail_engine;

static const struct gvm_prog *tail_target(void *arg, uint64_t map, uint64_t index)
{
    return index < 4 ? tail_targets[tail_engine][index] : NULL;
}

static const struct gvm_env env = {
    .helpers = helpers,
    .resolve_ld_imm64 = resolve,
    .tail_call_target = tail_target,
    .array_info = array_info,
};

/* ---- running programs --------------------------------------------------- */

static struct gvm_prog *load(const char *text, enum gvm_engine engine)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err;
    struct gvm_prog *p = NULL;

    if (gvm_asm(text, &insns, &n, &err) < 0) {
        fprintf(stderr, "asm failed: %s\n%s\n", err.msg, text);
        g_fails++;
        return NULL;
    }
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = engine, .env = &env };
    if (gvm_prog_create(insns, n, &o, &p, &err) < 0) {
        fprintf(stderr, "load failed: %s\n%s\n", err.msg, text);
        g_fails++;
    }
    free(insns);
    return p;
}

/* Run text on both engines with a copy of mem each; they must agree and
 * the result is returned. *interp_err set when the interpreter failed. */
static uint64_t run2(const char *text, void *mem, size_t len, int *interp_failed)
{
    uint8_t *m2 = malloc(len ? len : 1);
    uint64_t r[2] = { 0, 0 };
    int rc[2] = { 0, 0 };
    struct graft_err err;

    memcpy(m2, mem, len);
    for (int e = 0; e < 2; e++) {
        struct gvm_prog *p = load(text, e == 0 ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP);
        if (!p) {
            free(m2);
            return 0xdeadbeef;
        }
        rc[e] = gvm_prog_run(p, e == 0 ? mem : m2, len, &r[e], &err);
        gvm_prog_free(p);
    }
    if (interp_failed)
        *interp_failed = rc[1] != 0;
    else
        CHECK(rc[1] == 0, "interpreter failed: %s\n%s", err.msg, text);
    if (rc[1] == 0) {
        CHECK(r[0] == r[1], "jit 0x%" PRIx64 " != interp 0x%" PRIx64 "\n%s", r[0], r[1], text);
        CHECK(memcmp(mem, m2, len) == 0, "memory differs between engines\n%s", text);
    }
    free(m2);
    return r[0];
}

static uint64_t run_text(const char *text)
{
    uint8_t mem[64] = { 0 };
    return run2(text, mem, sizeof(mem), NULL);
}

/* ---- tests -------------------------------------------------------------- */

static void test_addressing(void)
{
    uint8_t mem[4096];
    for (size_t i = 0; i < sizeof(mem); i++)
        mem[i] = (uint8_t)(i * 7 + 1);
    /* r7 = r13 base (mod 00 is rip-relative/needs disp), disp8 and disp32 */
    const char *t =
        "mov r7, r1\n"
        "ldxdw r0, [r7+0]\n"
        "ldxw r2, [r7+100]\n"
        "add r0, r2\n"
        "ldxh r2, [r7+3000]\n"
        "add r0, r2\n"
        "stxdw [r7+0], r0\n"
        "stw [r7+2000], 0x12345678\n"
        "stb [r7+1], 0x99\n"
        "mov r3, r1\n"
        "add r3, 2048\n"
        "stxh [r3-2040], r2\n"
        "mov r2, 5\n"
        "lock add [r7+8], r2\n"
        "lock fetch add32 [r7+3072], r2\n"
        "add r0, r2\n"
        "stdw [r10-512], 77\n"
        "stdw [r10-8], 11\n"
        "ldxdw r4, [r10-512]\n"
        "add r0, r4\n"
        "ldxdw r4, [r10-8]\n"
        "add r0, r4\n"
        "mov r9, r10\n"
        "ldxdw r4, [r9-8]\n"
        "add r0, r4\n"
        "mov r8, r1\n"
        "ldxb r4, [r8+4095]\n"
        "add r0, r4\n"
        "exit\n";
    run2(t, mem, sizeof(mem), NULL);
    CHECK(mem[1] == 0x99, "store through r13 base");
    /* byte stores from sil/dil/bpl-mapped registers need a REX prefix */
    uint8_t m2[16] = { 0 };
    run2("mov r2, 0x1ff\nstxb [r1+0], r2\nmov r0, r1\nmov r1, 0x2ee\nstxb [r0+1], r1\n"
         "mov r0, 0\nexit\n", m2, sizeof(m2), NULL);
    CHECK(m2[0] == 0xff && m2[1] == 0xee, "byte store of sil/dil: %02x %02x", m2[0], m2[1]);
}

static void test_division(void)
{
    struct { const char *text; uint64_t want; } cases[] = {
        { "lddw r0, 0x8000000000000000\nmov r1, -1\nsdiv r0, r1\nexit\n", 0x8000000000000000ull },
        { "lddw r0, 0x8000000000000000\nmov r1, -1\nsmod r0, r1\nexit\n", 0 },
        { "lddw r0, 0x8000000000000000\nsdiv r0, -1\nexit\n", 0x8000000000000000ull },
        { "lddw r0, 0x8000000000000000\nsmod r0, -1\nexit\n", 0 },
        { "mov32 r0, 0x80000000\nmov32 r1, -1\nsdiv32 r0, r1\nexit\n", 0x80000000ull },
        { "mov32 r0, 0x80000000\nmov32 r1, -1\nsmod32 r0, r1\nexit\n", 0 },
        { "mov32 r0, 0x80000000\nsdiv32 r0, -1\nexit\n", 0x80000000ull },
        { "mov r0, 77\nmov r1, 0\ndiv r0, r1\nexit\n", 0 },
        { "mov r0, 77\nmov r1, 0\nmod r0, r1\nexit\n", 77 },
        { "mov r0, 77\nmov r1, 0\nsdiv r0, r1\nexit\n", 0 },
        { "mov r0, -77\nmov r1, 0\nsmod r0, r1\nexit\n", (uint64_t)-77 },
        { "mov r0, -1\nmov r1, 0\nmod32 r0, r1\nexit\n", 0xffffffffull },
        { "mov r0, -1\nmov32 r1, 0\nsmod32 r0, r1\nexit\n", 0xffffffffull },
        { "mov r0, -1\nmod32 r0, 0\nexit\n", 0xffffffffull },
        { "mov r0, -1\ndiv32 r0, 0\nexit\n", 0 },
        { "mov r0, -7\nsdiv r0, 2\nexit\n", (uint64_t)-3 },
        { "mov r0, -7\nsmod r0, 2\nexit\n", (uint64_t)-1 },
        { "mov r0, -7\nmov r3, 2\nsmod32 r0, r3\nexit\n", 0xffffffffull },
        { "mov r0, 1000\nmov r3, 7\ndiv r0, r3\nexit\n", 142 },
        { "mov r3, 1000\nmov r0, 7\ndiv r3, r0\nmov r0, r3\nexit\n", 142 },
        { "mov r3, 1000\nmov r2, 7\nmod r3, r2\nmov r0, r3\nexit\n", 6 },
        { "mov r3, 1000\nmov r2, 7\nmov r0, 5\nmod r3, r2\nadd r0, r3\nexit\n", 11 },
        { "mov r0, -1\ndiv r0, 16\nexit\n", 0x0fffffffffffffffull },
        { "mov r0, -1\nmod r0, 16\nexit\n", 15 },
        { "mov r0, -1\ndiv32 r0, 0x80000000\nexit\n", 1 },
        { "mov r0, -1\ndiv r0, -1\nexit\n", 1 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint64_t r = run_text(cases[k].text);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r,
              cases[k].want, cases[k].text);
    }
}

static int cond_model(const char *op, int is32, uint64_t a, uint64_t b)
{
    if (is32) {
        a = (uint32_t)a;
        b = (uint32_t)b;
    }
    int64_t sa = is32 ? (int32_t)a : (int64_t)a, sb = is32 ? (int32_t)b : (int64_t)b;
    if (!strcmp(op, "jeq")) return a == b;
    if (!strcmp(op, "jne")) return a != b;
    if (!strcmp(op, "jgt")) return a > b;
    if (!strcmp(op, "jge")) return a >= b;
    if (!strcmp(op, "jlt")) return a < b;
    if (!strcmp(op, "jle")) return a <= b;
    if (!strcmp(op, "jset")) return (a & b) != 0;
    if (!strcmp(op, "jsgt")) return sa > sb;
    if (!strcmp(op, "jsge")) return sa >= sb;
    if (!strcmp(op, "jslt")) return sa < sb;
    return sa <= sb;
}

static void test_conditions(void)
{
    static const char *ops[] = { "jeq", "jne", "jgt", "jge", "jlt", "jle", "jset",
                                 "jsgt", "jsge", "jslt", "jsle" };
    static const uint64_t vals[] = { 0, 1, 0xffffffff, 0x80000000, 0x7fffffff,
                                     0x100000000ull, 0xffffffff00000001ull, ~0ull,
                                     0x8000000000000000ull };
    static const int32_t imms[] = { 0, 1, -1, INT32_MIN, 0x7fffffff };
    char text[512];

    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int is32 = 0; is32 < 2; is32++)
            for (size_t a = 0; a < sizeof(vals) / sizeof(vals[0]); a++) {
                for (size_t b = 0; b < sizeof(vals) / sizeof(vals[0]); b += 2) {
                    snprintf(text, sizeof(text),
                             "lddw r3, 0x%" PRIx64 "\nlddw r8, 0x%" PRIx64 "\n"
                             "mov r0, 1\n%s%s r3, r8, yes\nmov r0, 0\nyes:\nexit\n",
                             vals[a], vals[b], ops[o], is32 ? "32" : "");
                    uint64_t r = run_text(text);
                    CHECK(r == (uint64_t)cond_model(ops[o], is32, vals[a], vals[b]),
                          "reg cond wrong:\n%s", text);
                }
                for (size_t b = 0; b < sizeof(imms) / sizeof(imms[0]); b++) {
                    snprintf(text, sizeof(text),
                             "lddw r7, 0x%" PRIx64 "\nmov r0, 1\n%s%s r7, %d, yes\n"
                             "mov r0, 0\nyes:\nexit\n",
                             vals[a], ops[o], is32 ? "32" : "", imms[b]);
                    /* imm is sign-extended to 64 bits (JMP) or used as 32 (JMP32) */
                    uint64_t bv = (uint64_t)(int64_t)imms[b];
                    uint64_t r = run_text(text);
                    CHECK(r == (uint64_t)cond_model(ops[o], is32, vals[a], bv),
                          "imm cond wrong:\n%s", text);
                }
            }
}

/* Bodies of n 7-byte insns ("add r0, 0x1000" is 6-7 bytes) straddle rel8. */
static void test_relaxation(void)
{
    for (int n = 10; n <= 40; n += 3) {
        size_t cap = 256 + (size_t)n * 32;
        char *t = malloc(cap);
        size_t len = 0;
        /* forward: skip a long body; backward: loop over a long body */
        len += (size_t)snprintf(t + len, cap - len, "mov r0, 0\nmov r2, 3\njeq r2, 3, skip\n");
        for (int k = 0; k < n; k++)
            len += (size_t)snprintf(t + len, cap - len, "add r0, 0x1000\n");
        len += (size_t)snprintf(t + len, cap - len, "skip:\ntop:\n");
        for (int k = 0; k < n; k++)
            len += (size_t)snprintf(t + len, cap - len, "add r0, 0x1001\n");
        len += (size_t)snprintf(t + len, cap - len, "sub r2, 1\njne r2, 0, top\nexit\n");
        uint64_t r = run_text(t);
        CHECK(r == 3ull * (uint64_t)n * 0x1001, "relaxation n=%d: got 0x%" PRIx64, n, r);
        free(t);
    }
}

/* main calls f1, f1 calls f2, ... fD: D+1 frames, each with its own stack
 * and r6, which must survive the calls below it. */
static char *depth_prog(int d)
{
    size_t cap = 4096, len = 0;
    char *t = malloc(cap);
    len += (size_t)snprintf(t + len, cap - len,
                            "stdw [r10-8], 100\nmov r6, 1\nmov r1, 1\ncall local f1\n"
                            "ldxdw r1, [r10-8]\nadd r0, r1\nadd r0, r6\nexit\n");
    for (int f = 1; f <= d; f++) {
        len += (size_t)snprintf(t + len, cap - len, "f%d:\nstxdw [r10-8], r1\nmov r6, %d\n",
                                f, f * 1000);
        if (f < d)
            len += (size_t)snprintf(t + len, cap - len, "add r1, 1\ncall local f%d\n", f + 1);
        else
            len += (size_t)snprintf(t + len, cap - len, "mov r0, 0\n");
        len += (size_t)snprintf(t + len, cap - len,
                                "ldxdw r1, [r10-8]\nadd r0, r1\nadd r0, r6\nexit\n");
    }
    return t;
}

static void test_call_depth(void)
{
    for (int d = 1; d <= 7; d++) {
        char *t = depth_prog(d);
        uint64_t r = run_text(t);
        CHECK(r == 1001ull * (uint64_t)(d * (d + 1) / 2) + 101, "depth %d: got %" PRIu64, d, r);
        free(t);
    }
    /* 9 frames: the interpreter reports an error, the JIT aborts with -EFAULT */
    char *t = depth_prog(8);
    uint8_t mem[8];
    int interp_failed = 0;
    uint64_t r = run2(t, mem, sizeof(mem), &interp_failed);
    CHECK(interp_failed, "interpreter accepted 9 frames");
    CHECK(r == (uint64_t)-EFAULT, "JIT with 9 frames returned 0x%" PRIx64, r);
    free(t);
    /* the abort unwound correctly: callee-saved registers are intact, so
     * running again (and returning into this C frame) still works */
    r = run_text("mov r0, 5\nexit\n");
    CHECK(r == 5, "after abort");
}

/* ctx[0] counts tail calls; target 0 is the program itself. */
static void test_tail_calls(void)
{
    const char *self =
        "ldxdw r2, [r1+0]\nadd r2, 1\nstxdw [r1+0], r2\n"
        "mov r6, r1\n"
        "lddw r2, map:0\nmov r3, 0\ncall 12\n"
        /* only reached when the tail call failed: r0 = -2 */
        "ldxdw r1, [r6+0]\nlsh r1, 8\nadd r0, r1\nexit\n";
    const char *other =
        "ldxdw r0, [r1+0]\nadd r0, 1000\nexit\n";
    const char *from_sub =
        "mov r6, r1\nmov r1, r6\ncall local sub\nadd r0, 7\nexit\n"
        "sub:\nmov r7, 99\nlddw r2, map:0\nmov r3, 1\ncall 12\nmov r0, 0\nexit\n";
    const char *missing =
        "lddw r2, map:0\nmov r3, 3\ncall 12\nexit\n";

    for (int e = 0; e < 2; e++) {
        enum gvm_engine eng = e == 0 ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP;
        struct gvm_prog *ps = load(self, eng), *po = load(other, eng);
        struct gvm_prog *pf = load(from_sub, eng), *pm = load(missing, eng);
        struct graft_err err;
        if (!ps || !po || !pf || !pm)
            return;
        tail_engine = e;
        tail_targets[e][0] = ps;
        tail_targets[e][1] = po;

        uint64_t ctx[2] = { 0, 0 }, r = 0;
        CHECK(gvm_prog_run(ps, ctx, sizeof(ctx), &r, &err) == 0, "run: %s", err.msg);
        /* 1 initial run + 33 tail calls, the 34th attempt fails */
        CHECK(ctx[0] == 34, "engine %d: %" PRIu64 " runs, want 34", e, ctx[0]);
        CHECK(r == (uint64_t)-2 + (34u << 8), "engine %d: r0 0x%" PRIx64, e, r);

        ctx[0] = 5;
        CHECK(gvm_prog_run(pf, ctx, sizeof(ctx), &r, &err) == 0, "run: %s", err.msg);
        /* the target replaces sub and returns into main */
        CHECK(r == 5 + 1000 + 7, "engine %d: tail call from a subfunction gave %" PRIu64, e, r);

        CHECK(gvm_prog_run(pm, ctx, sizeof(ctx), &r, &err) == 0, "run: %s", err.msg);
        CHECK(r == (uint64_t)-2, "engine %d: missing target gave 0x%" PRIx64, e, r);

        tail_targets[e][0] = tail_targets[e][1] = NULL;
        gvm_prog_free(ps);
        gvm_prog_free(po);
        gvm_prog_free(pf);
        gvm_prog_free(pm);
    }
}

static void test_callx(void)
{
    uint64_t r = run_text("mov r6, 3\nmov r1, 14\ncallx r6\nexit\n");
    CHECK(r == 42, "callx helper: %" PRIu64, r);
    r = run_text("lddw r6, func:f\nmov r1, 9\ncallx r6\nadd r0, 1\nexit\n"
                 "f:\nmov r0, r1\nlsh r0, 2\nexit\n");
    CHECK(r == 37, "callx function: %" PRIu64, r);
    r = run_text("lddw r7, func:g\nmov r1, 2\nmov r2, 3\nmov r3, 4\nmov r4, 5\nmov r5, 6\n"
                 "mov r6, 2\ncallx r6\nmov r1, r0\ncallx r7\nexit\n"
                 "g:\nmov r0, r1\nmul r0, 10\nexit\n");
    CHECK(r == 200, "callx helper then function: %" PRIu64, r);

    /* not a function entry: one byte past it, or a helper the env lacks */
    const char *bad[] = {
        "lddw r6, func:f\nadd r6, 1\ncallx r6\nexit\nf:\nmov r0, 1\nexit\n",
        "mov r6, 77\ncallx r6\nexit\n",
        "lddw r6, 0x1000000\ncallx r6\nexit\n",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        uint8_t mem[8];
        int interp_failed = 0;
        r = run2(bad[k], mem, sizeof(mem), &interp_failed);
        CHECK(interp_failed, "interpreter accepted a bad callx target\n%s", bad[k]);
        CHECK(r == (uint64_t)-EFAULT, "bad callx target: JIT returned 0x%" PRIx64 "\n%s",
              r, bad[k]);
    }
}

/* The JIT reads the CPU number for per-CPU arrays with RDPID or RDTSCP;
 * on a CPU (or VM) with neither it calls the helper instead. */
static int cpu_can_read_cpu_number(void)
{
    unsigned a, b, c, d;
    int rdpid = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 22));
    int rdtscp = __get_cpuid(0x80000001, &a, &b, &c, &d) && (d & (1u << 27));
    return rdpid || rdtscp;
}

static void test_inline_lookup(void)
{
    /* sum value[key] for keys 0..19 (16..19 are out of bounds: NULL) */
    const char *t =
        "mov r6, 0\nmov r7, 0\n"
        "loop:\n"
        "stxw [r10-4], r6\n"
        "lddw r1, map:%d\n"
        "mov r2, r10\nadd r2, -4\n"
        "call 1\n"
        "jeq r0, 0, miss\n"
        "ldxdw r1, [r0+0]\nadd r7, r1\n"
        "stxdw [r0+0], r6\n"
        "ja next\n"
        "miss:\nadd r7, 1000000\n"
        "next:\nadd r6, 1\njlt r6, 20, loop\n"
        "mov r0, r7\nexit\n";
    char text[1024];
    cpu_set_t set, old;

    /* per-CPU: stay on one CPU so the helper and the inline code agree */
    sched_getaffinity(0, sizeof(old), &old);
    CPU_ZERO(&set);
    CPU_SET(sched_getcpu() % 4, &set);
    int pinned = sched_setaffinity(0, sizeof(set), &set) == 0 && sched_getcpu() < 4;

    for (int m = 0; m < (pinned ? 2 : 1); m++) {
        snprintf(text, sizeof(text), t, m);
        for (int k = 0; k < 64; k++)
            array_values[k] = (uint64_t)k * 3 + 1;
        lookup_calls = 0;
        struct gvm_prog *pj = load(text, GVM_ENGINE_JIT);
        struct gvm_prog *pi = load(text, GVM_ENGINE_INTERP);
        if (!pj || !pi)
            return;
        struct graft_err err;
        uint64_t rj = 0, ri = 0, before[64], after_j[64];
        memcpy(before, array_values, sizeof(before));
        CHECK(gvm_prog_run(pj, NULL, 0, &rj, &err) == 0, "jit run");
        unsigned want = m == 1 && !cpu_can_read_cpu_number() ? 20 : 0;
        CHECK(lookup_calls == want, "map %d: JIT called the lookup helper %u times, expected %u",
              m, lookup_calls, want);
        memcpy(after_j, array_values, sizeof(after_j));
        memcpy(array_values, before, sizeof(before));
        lookup_calls = 0;
        CHECK(gvm_prog_run(pi, NULL, 0, &ri, &err) == 0, "interp run: %s", err.msg);
        CHECK(lookup_calls == 20, "interp lookups %u", lookup_calls);
        CHECK(rj == ri, "map %d: inline lookup %" PRIu64 " vs helper %" PRIu64, m, rj, ri);
        CHECK(memcmp(after_j, array_values, sizeof(after_j)) == 0, "map %d: stores differ", m);
        gvm_prog_free(pj);
        gvm_prog_free(pi);
    }
    if (pinned)
        sched_setaffinity(0, sizeof(old), &old);
    else
        printf("note: could not pin to a CPU < 4; per-CPU inline lookup not checked\n");
}

static void test_wx(void)
{
    struct gvm_prog *p = load("mov r0, 1\nexit\n", GVM_ENGINE_JIT);
    if (!p)
        return;
    uintptr_t code = (uintptr_t)gvm_prog_native(p);
    CHECK(code != 0, "no native entry");
    CHECK(gvm_prog_code_size(p) > 0, "no code size");
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        if (code >= lo && code < hi) {
            found = 1;
            CHECK(perms[0] == 'r' && perms[1] == '-' && perms[2] == 'x',
                  "JIT code mapping is %s, want r-x", perms);
        }
    }
    if (f)
        fclose(f);
    CHECK(found, "JIT code not found in /proc/self/maps");
    uint64_t r = gvm_prog_native(p)(NULL, 0);
    CHECK(r == 1, "direct native call");
    gvm_prog_free(p);
}

/* Calls fn(ctx, len) with rbx, rbp, r12-r15 set to known values; *ret gets
 * its r0. Returns 0 when all six came back unchanged (a wrong rsp would
 * crash on the way out). */
int jit_call_probe(gvm_native_fn fn, void *ctx, uint64_t len, uint64_t *ret);
__asm__(".text\n"
        ".globl jit_call_probe\n"
        ".type jit_call_probe, @function\n"
        "jit_call_probe:\n"
        "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
        "  push %rcx\n"
        "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n"
        "  movabs $0x1111111111111101, %rbx\n  movabs $0x1111111111111102, %rbp\n"
        "  movabs $0x1111111111111103, %r12\n  movabs $0x1111111111111104, %r13\n"
        "  movabs $0x1111111111111105, %r14\n  movabs $0x1111111111111106, %r15\n"
        "  call *%rax\n"
        "  pop %rcx\n"
        "  mov %rax, (%rcx)\n"
        "  xor %eax, %eax\n"
        "  movabs $0x1111111111111101, %rcx\n  cmp %rcx, %rbx\n  setne %dl\n  or %dl, %al\n"
        "  movabs $0x1111111111111102, %rcx\n  cmp %rcx, %rbp\n  setne %dl\n  or %dl, %al\n"
        "  movabs $0x1111111111111103, %rcx\n  cmp %rcx, %r12\n  setne %dl\n  or %dl, %al\n"
        "  movabs $0x1111111111111104, %rcx\n  cmp %rcx, %r13\n  setne %dl\n  or %dl, %al\n"
        "  movabs $0x1111111111111105, %rcx\n  cmp %rcx, %r14\n  setne %dl\n  or %dl, %al\n"
        "  movabs $0x1111111111111106, %rcx\n  cmp %rcx, %r15\n  setne %dl\n  or %dl, %al\n"
        "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
        "  ret\n"
        ".size jit_call_probe, .-jit_call_probe\n");

static void test_leaf_frames(void)
{
    struct { const char *text; uint64_t want; } cases[] = {
        /* r0/r1 only: no frame at all */
        { "ldxdw r0, [r1+8]\nadd r0, 1\nexit\n", 8 },
        /* every callee-saved BPF register and the stack */
        { "mov r6, 1\nmov r7, 2\nmov r8, 3\nmov r9, 4\nstxdw [r10-8], r6\n"
          "stxdw [r10-512], r9\nldxdw r0, [r10-8]\nldxdw r2, [r10-512]\nadd r0, r2\n"
          "add r0, r7\nadd r0, r8\nadd r0, r9\nexit\n", 14 },
        /* some of them, and an early exit */
        { "mov r7, 40\nldxdw r2, [r1+8]\njeq r2, 7, out\nmov r0, 0\nexit\n"
          "out:\nmov r0, r7\nadd r0, 2\nexit\n", 42 },
        { "mov r9, r10\nstdw [r9-16], 9\nldxdw r0, [r10-16]\nexit\n", 9 },
        /* not a leaf, only helper calls: entered at function 0 without the
         * wrapper (direct), same guarantees */
        { "mov r6, 5\nmov r1, 4\ncall 3\nadd r0, r6\nexit\n", 17 },
        { "mov r6, 1\nmov r7, 2\nmov r8, 3\nmov r9, 4\nstxdw [r10-8], r6\nmov r1, 5\n"
          "call 3\nadd r0, r6\nadd r0, r7\nadd r0, r8\nadd r0, r9\nldxdw r2, [r10-8]\n"
          "add r0, r2\nmov r1, r0\ncall 3\nexit\n", 78 },
        /* a bpf-to-bpf call: the wrapper (r12 counts the depth) */
        { "mov r6, 3\nmov r1, 2\ncall local f\nadd r0, r6\nexit\n"
          "f:\nmov r7, r1\nmov r1, 9\ncall 3\nadd r0, r7\nexit\n", 32 },
    };
    uint64_t ctx[2] = { 0, 7 };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct gvm_prog *p = load(cases[k].text, GVM_ENGINE_JIT);
        if (!p)
            continue;
        uint64_t r = 0;
        int bad = jit_call_probe(gvm_prog_native(p), ctx, sizeof(ctx), &r);
        /* only the program with a local call starts at the wrapper (offset 0) */
        int wrapped = (const void *)gvm_prog_native(p) == gvm_prog_code(p);
        CHECK(wrapped == (strstr(cases[k].text, "call local") != NULL),
              "entry %s the wrapper\n%s", wrapped ? "is" : "is not", cases[k].text);
        CHECK(!bad, "callee-saved registers clobbered\n%s", cases[k].text);
        CHECK(r == cases[k].want, "got %" PRIu64 " want %" PRIu64 "\n%s", r, cases[k].want,
              cases[k].text);
        gvm_prog_free(p);
        run_text(cases[k].text);       /* and the interpreter agrees */
    }
}

/* Peepholes must keep semantics: lea forms, shift pairs, mov self. */
static void test_peepholes(void)
{
    struct { const char *text; uint64_t want; } cases[] = {
        { "mov r2, 5\nmov r3, r2\nadd r3, -7\nmov r0, r3\nexit\n", (uint64_t)-2 },
        { "mov r2, -1\nmov32 r3, r2\nadd32 r3, 2\nmov r0, r3\nexit\n", 1 },
        { "mov r2, 5\nmov r4, 6\nmov r3, r2\nadd r3, r4\nmov r0, r3\nexit\n", 11 },
        { "mov r2, 5\nmov r3, r2\nadd r3, r3\nmov r0, r3\nexit\n", 10 },
        { "mov r2, 5\nmov r3, r2\nadd r3, r10\nsub r3, r10\nmov r0, r3\nexit\n", 5 },
        { "lddw r0, 0xfedcba9887654321\nlsh r0, 32\nrsh r0, 32\nexit\n", 0x87654321 },
        { "lddw r0, 0xfedcba9887654321\nlsh r0, 32\narsh r0, 32\nexit\n",
          0xffffffff87654321ull },
        { "lddw r0, 0xfedcba9887654321\nmov r0, r0\nexit\n", 0xfedcba9887654321ull },
        { "lddw r0, 0xfedcba9887654321\nmov32 r0, r0\nexit\n", 0x87654321 },
        { "lddw r0, 0xfedcba9887654321\nlsh r0, 32\nja l\nl:\nrsh r0, 32\nexit\n", 0x87654321 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint64_t r = run_text(cases[k].text);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r,
              cases[k].want, cases[k].text);
    }
}

int main(void)
{
    test_addressing();
    test_division();
    test_conditions();
    test_relaxation();
    test_call_depth();
    test_tail_calls();
    test_callx();
    test_inline_lookup();
    test_wx();
    test_peepholes();
    test_leaf_frames();
    if (g_fails) {
        fprintf(stderr, "%d check(s) failed\n", g_fails);
        return 1;
    }
    printf("test_jit: all checks passed\n");
    return 0;
}
