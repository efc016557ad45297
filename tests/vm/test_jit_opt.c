/*
 * test_jit_opt.c - the JIT's optimizing passes, each against the
 * interpreter and against a C model, on the cases where they could go wrong:
 *
 *  - direct programs (one function, host calls only) save exactly the
 *    callee-saved registers they use (named or holding slots), keep every
 *    one of them for their C caller and rsp aligned at helper calls;
 *  - host calls: `call rel32` when the helper is within reach of the code,
 *    `call [rip+disp32]` through the literal pool when it is not (a helper
 *    placed in its own far mapping), both in one program;
 *  - division and modulo by constants as multiplies (unsigned and signed,
 *    INT_MIN dividends and divisors, powers of two of either sign): every
 *    width and signedness, divisors of every shape (small, odd, even, 2^k +- 1, near
 *    2^31 and 2^32, 64-bit divisors), dividends at the edges, on every BPF
 *    register (r0 and r3 are rax and rdx, which the 64-bit multiply uses);
 *  - stack-slot promotion: slots that are promoted and slots that must not
 *    be (partial-width access, frame pointer copied, atomics, sign-extending
 *    loads), loops that keep slots live across iterations;
 *  - `if (c) goto +1; goto T` as one inverted branch and `if (c) goto +1;
 *    r = v` as a cmov, every condition;
 *  - address arithmetic folded into the access, with the address register
 *    dead or still needed, ALU ops between the accesses;
 *  - 64-bit constants held in registers, folded into their user;
 *  - fill loops as rep stos, every size and form, on either path;
 *  - `and r, m` feeding only a compare as a compare of the low byte or a
 *    test r, m;
 *  - loop latches copied at the jumps to them: plain, as an inverted
 *    branch, with a cmov inside, in a function; the ones not copied.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "jit_canary.h"
#include "test_util.h"
#include "vm/jit_opt.h"

/* ---- environment ---------------------------------------------------------- */

static uint64_t h_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a + b + c + d + e;
}

static uint64_t h_times3(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b; (void)c; (void)d; (void)e;
    return a * 3;
}

static uint64_t h_deref(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b; (void)c; (void)d; (void)e;
    return *(const uint64_t *)(uintptr_t)a;
}

/* a + 1, leaving garbage in r9-r11 as any C function may: a slot the JIT
 * wrongly kept in a scratch register across a call reads it back */
static uint64_t h_trash(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b; (void)c; (void)d; (void)e;
    __asm__ volatile("mov $0x5a5a5a5a, %%r9d\n\tmov %%r9, %%r10\n\tmov %%r9, %%r11"
                     ::: "r9", "r10", "r11");
    return a + 1;
}

/* rsp mod 16 at the call (0 when the caller kept the System V alignment) */
uint64_t jit_opt_h_misalign(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e);
__asm__(".text\n.globl jit_opt_h_misalign\n.type jit_opt_h_misalign, @function\n"
        "jit_opt_h_misalign:\n\tlea 8(%rsp), %rax\n\tand $15, %eax\n\tret\n"
        ".size jit_opt_h_misalign, .-jit_opt_h_misalign\n");

static gvm_helper_fn helpers[BPF_MAX_HELPER_ID] = { [2] = h_add, [3] = h_times3, [4] = h_deref,
                                                    [5] = h_trash, [6] = jit_opt_h_misalign };
static const struct gvm_env env = { .helpers = helpers };

/* Run text on the JIT and the interpreter with copies of mem; they must
 * agree. Returns the JIT's r0; code and code_len get its machine code. */
static uint64_t run_both(const char *text, void *mem, size_t len, const uint8_t **code,
                         size_t *code_len, struct gvm_prog **keep)
{
    uint8_t *m2 = malloc(len ? len : 1);
    uint64_t r[2] = { 0, 0 };
    struct graft_err err;

    if (len)
        memcpy(m2, mem, len);
    for (int e = 0; e < 2; e++) {
        struct gvm_prog *p;
        if (make_prog(text, &env, e ? GVM_ENGINE_INTERP : GVM_ENGINE_JIT, 0, 0, &p, &err)) {
            CHECK(0, "load failed: %s\n%s", err.msg, text);
            free(m2);
            return 0xdeadbeef;
        }
        CHECK(gvm_prog_run(p, e ? m2 : mem, len, &r[e], &err) == 0, "run failed: %s\n%s",
              err.msg, text);
        if (e == 0 && code) {
            *code = (const uint8_t *)(uintptr_t)gvm_prog_native(p);
            *code_len = gvm_prog_code_size(p);
        }
        if (e == 0 && keep)
            *keep = p;
        else
            gvm_prog_free(p);
    }
    CHECK(r[0] == r[1], "jit 0x%" PRIx64 " != interp 0x%" PRIx64 "\n%s", r[0], r[1], text);
    CHECK(!len || memcmp(mem, m2, len) == 0, "memory differs between engines\n%s", text);
    free(m2);
    return r[0];
}

static size_t count_bytes2(const uint8_t *code, size_t len, uint8_t a, uint8_t b)
{
    size_t n = 0;
    for (size_t k = 0; k + 1 < len; k++)
        n += code[k] == a && code[k + 1] == b;
    return n;
}

/* ---- the frame of a direct program (one function, host calls only) ---------- */

/* The callee-saved registers pushed before `push rbp; mov rbp, rsp`, as a
 * bit per register in jit_opt_call_canaries' order; -1: no such frame. */
static int prologue_saves(const uint8_t *code, size_t len)
{
    int saves = 0;
    for (size_t k = 0; k + 3 < len; k++) {
        if (code[k] == 0x55 && code[k + 1] == 0x48 && code[k + 2] == 0x89 && code[k + 3] == 0xe5)
            return saves;
        if (code[k] == 0x53)
            saves |= 1;                                  /* push rbx */
        else if (code[k] == 0x41 && code[k + 1] >= 0x54 && code[k + 1] <= 0x57)
            saves |= 4 << (code[++k] - 0x54);            /* push r12..r15 */
        else
            return -1;
    }
    return -1;
}

static void test_direct_frames(void)
{
    static const struct { const char *name, *text; uint64_t want; int saves; } cases[] = {
        /* r0-r5 only: nothing but rbp */
        { "few", "mov r1, 4\ncall 3\nexit\n", 12, 0 },
        /* r6 (rbx): one save, odd, so 8 bytes of padding keep helpers aligned */
        { "r6", "mov r6, 7\ncall 6\nadd r0, r6\nexit\n", 7, 1 },
        /* r6 and r8 (rbx, r14) */
        { "r6r8", "mov r6, 7\nmov r8, 9\ncall 6\nadd r0, r6\nadd r0, r8\nexit\n", 16, 1 | 16 },
        /* all four homes: the full frame */
        { "all", "mov r6, 1\nmov r7, 2\nmov r8, 3\nmov r9, 4\ncall 6\nadd r0, r6\n"
          "add r0, r7\nadd r0, r8\nadd r0, r9\nexit\n", 10, 1 | 8 | 16 | 32 },
        /* no r6-r9 named, but a slot live across calls takes rbx: saved */
        { "slot", "stdw [r10-8], 5\nmov r1, 1\ncall 3\nldxdw r1, [r10-8]\nadd r0, r1\n"
          "call 6\nldxdw r1, [r10-8]\nadd r0, r1\nexit\n", 5, 1 },
        /* two slots live across calls: rbx and r13 */
        { "slots2", "stdw [r10-8], 5\nstdw [r10-16], 6\ncall 6\nldxdw r1, [r10-8]\n"
          "ldxdw r2, [r10-16]\nadd r0, r1\nadd r0, r2\ncall 6\nldxdw r1, [r10-8]\n"
          "ldxdw r2, [r10-16]\nadd r0, r1\nadd r0, r2\nexit\n", 11, 1 | 8 },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct gvm_prog *p;
        struct graft_err err;
        if (make_prog(cases[c].text, &env, GVM_ENGINE_JIT, 0, 0, &p, &err)) {
            CHECK(0, "direct %s: load failed: %s", cases[c].name, err.msg);
            continue;
        }
        int saves = prologue_saves((const uint8_t *)(uintptr_t)gvm_prog_native(p),
                                   gvm_prog_code_size(p));
        CHECK(saves == cases[c].saves, "direct %s: prologue saves 0x%x, want 0x%x",
              cases[c].name, saves, cases[c].saves);
        /* from C with canaries in every callee-saved register, first (a
         * clobbered one would crash gvm_prog_run's caller): each comes back,
         * and helper 6 sees rsp aligned (it returns the misalignment) */
        uint64_t changed = 0;
        uint64_t r = jit_call_canaries(gvm_prog_native(p), NULL, 0, &changed);
        gvm_prog_free(p);
        CHECK(r == cases[c].want, "direct %s, native: got %" PRIu64 ", want %" PRIu64,
              cases[c].name, r, cases[c].want);
        CHECK(changed == 0, "direct %s: callee-saved registers clobbered (mask 0x%" PRIx64 ")",
              cases[c].name, changed);
        if (changed)
            continue;
        r = run_both(cases[c].text, NULL, 0, NULL, NULL, NULL);
        CHECK(r == cases[c].want, "direct %s: got %" PRIu64, cases[c].name, r);
    }
}

/* ---- host calls ------------------------------------------------------------ */

static void test_host_calls(void)
{
    const uint8_t *code;
    size_t len;
    struct gvm_prog *p = NULL;

    uint64_t r = run_both("mov r1, 4\ncall 3\nmov r1, r0\nmov r2, 1\nmov r3, 0\nmov r4, 0\nmov r5, 0\n"
                          "call 2\nexit\n",
                          NULL, 0, &code, &len, &p);
    CHECK(r == 13, "near helpers: got %" PRIu64, r);
    if (p) {
        size_t direct = count_bytes2(code, len, 0x2e, 0xe8);
        size_t pooled = count_bytes2(code, len, 0xff, 0x15);
        CHECK(direct + pooled >= 2, "host calls not found in the code");
        int64_t dist = (int64_t)((uintptr_t)h_add - (uintptr_t)code);
        if (dist > -(1ll << 30) && dist < (1ll << 30))
            CHECK(direct == 2, "helpers 1 GiB from the code still called through the pool");
        gvm_prog_free(p);
    }

    /* A helper in a mapping of its own, placed far from this executable:
     * lea rax, [rdi+rsi]; ret. Calls to it and to h_times3 cannot both be
     * rel32 when the two are more than 2 GiB apart. */
    static const uint8_t far_code[] = { 0x48, 0x8d, 0x04, 0x37, 0xc3 };
    uint8_t *far = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(far != MAP_FAILED, "mmap for the far helper");
    if (far == MAP_FAILED)
        return;
    memcpy(far, far_code, sizeof(far_code));
    CHECK(mprotect(far, 4096, PROT_READ | PROT_EXEC) == 0, "mprotect far helper");
    gvm_helper_fn saved = helpers[2];
    helpers[2] = (gvm_helper_fn)(void *)far;
    r = run_both("mov r1, 5\ncall 3\nmov r1, r0\nmov r2, 7\ncall 2\nmov r1, r0\ncall 3\nexit\n",
                 NULL, 0, &code, &len, &p);
    CHECK(r == 66, "far helper: got %" PRIu64, r);
    if (p) {
        int64_t span = (int64_t)((uintptr_t)far - (uintptr_t)h_times3);
        if (span > (1ll << 32) || span < -(1ll << 32))
            CHECK(count_bytes2(code, len, 0xff, 0x15) >= 1,
                  "targets 4 GiB apart, yet no call went through the pool");
        gvm_prog_free(p);
    }
    helpers[2] = saved;
    munmap(far, 4096);
}

/* ---- division by constants -------------------------------------------------- */

static uint64_t seed = 0x9e3779b97f4a7c15ull;

static uint64_t rnd64(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

/* The multipliers themselves, in C, against the division operator. */
static void test_udiv_magic_model(void)
{
    for (int it = 0; it < 20000; it++) {
        for (int bits = 32; bits <= 64; bits += 32) {
            uint64_t d = rnd64() >> (rnd64() % 64);
            if (bits == 32)
                d = (uint32_t)d;
            if (it < 64)
                d = it < 32 ? (uint64_t)it + 3 : (bits == 32 ? 0xffffffffull : ~0ull) - (uint64_t)(it - 32);
            if (d < 3 || !(d & (d - 1)))
                continue;
            struct gvm_udiv_magic m;
            gvm_udiv_magic(d, bits, &m);
            for (int k = 0; k < 16; k++) {
                uint64_t x = k == 0 ? ~0ull : k == 1 ? d - 1 : k == 2 ? d : k == 3 ? d * 3 - 1 : rnd64();
                if (bits == 32)
                    x = (uint32_t)x;
                uint64_t hi = bits == 32 ? ((uint64_t)(uint32_t)m.magic * x) >> 32
                                         : (uint64_t)(((unsigned __int128)m.magic * x) >> 64);
                uint64_t q = m.add ? (((x - hi) >> 1) + hi) >> m.shift : hi >> m.shift;
                if (q != x / d) {
                    CHECK(0, "magic for %d-bit d=%" PRIu64 ": x=%" PRIu64 " gives %" PRIu64, bits,
                          d, x, q);
                    return;
                }
            }
        }
    }
}

/* JIT'd div/mod by constants on registers that the expansion touches
 * (r0 = rax, r3 = rdx, r4 = rcx) and one it does not; neighbours of the
 * register must survive. Each program divides 16 dividends from memory. */
static void test_udiv_const_jit(void)
{
    static const int32_t divisors[] = { 3, 5, 6, 7, 10, 11, 12, 25, 100, 641, 1000, 1100,
                                        4097, 65535, 65537, 6700417,
                                        0x7fffffff, 0x40000001, 0x3fffffff, 1000000007,
                                        -3, -7, -1000, INT32_MIN + 1, -2 };
    static const char *const ops[] = { "div", "mod", "div32", "mod32" };
    static const int regs[] = { 0, 3, 4, 8 };
    uint64_t mem[18];
    char text[4096];

    for (size_t di = 0; di < sizeof(divisors) / sizeof(divisors[0]); di++) {
        for (int oi = 0; oi < 4; oi++) {
            for (int ri = 0; ri < 4; ri++) {
                int r = regs[ri];
                size_t n = (size_t)snprintf(text, sizeof(text),
                                            "mov r6, r1\nmov r0, 0x1111\nmov r3, 0x3333\n"
                                            "mov r4, 0x4444\nmov r8, 0x8888\n");
                for (int k = 0; k < 16; k++)
                    n += (size_t)snprintf(text + n, sizeof(text) - n,
                                          "ldxdw r%d, [r6+%d]\n%s r%d, %d\nstxdw [r6+%d], r%d\n",
                                          r, 8 * k, ops[oi], r, divisors[di], 8 * k, r);
                snprintf(text + n, sizeof(text) - n,
                         "stxdw [r6+128], r%d\nstxdw [r6+136], r%d\nexit\n", r == 0 ? 3 : 0,
                         r == 4 ? 8 : 4);
                for (int k = 0; k < 16; k++)
                    mem[k] = k == 0 ? ~0ull : k == 1 ? 0 : k == 2 ? (uint64_t)(uint32_t)divisors[di]
                           : k == 3 ? (uint64_t)(int64_t)divisors[di] : k == 4 ? 0x80000000ull
                           : k < 8 ? rnd64() >> (rnd64() % 64) : rnd64();
                uint64_t want[16];
                for (int k = 0; k < 16; k++) {
                    bool is32 = oi >= 2, mod = oi & 1;
                    uint64_t d = is32 ? (uint32_t)divisors[di] : (uint64_t)(int64_t)divisors[di];
                    uint64_t x = is32 ? (uint32_t)mem[k] : mem[k];
                    want[k] = mod ? x % d : x / d;
                }
                run_both(text, mem, sizeof(mem), NULL, NULL, NULL);
                for (int k = 0; k < 16; k++)
                    if (mem[k] != want[k]) {
                        CHECK(0, "%s r%d, %d: dividend #%d gave 0x%" PRIx64 ", want 0x%" PRIx64,
                              ops[oi], r, divisors[di], k, mem[k], want[k]);
                        break;
                    }
                CHECK(mem[16] == (r == 0 ? 0x3333u : 0x1111u)
                      && mem[17] == (r == 4 ? 0x8888u : 0x4444u),
                      "%s r%d, %d clobbered a neighbour", ops[oi], r, divisors[di]);
            }
        }
    }
}

/* The signed multipliers against C's division, both widths, divisors of
 * every size and sign, dividends at the edges (INT_MIN, INT_MAX, -1, 0,
 * multiples of d and their neighbours). */
static void test_sdiv_magic_model(void)
{
    for (int it = 0; it < 20000; it++) {
        for (int bits = 32; bits <= 64; bits += 32) {
            int64_t d = (int64_t)(rnd64() >> (rnd64() % 64));
            if (bits == 32)
                d = (int32_t)d;
            if (it < 64)
                d = it < 32 ? it + 3 : -(it - 29);
            if (it == 64)
                d = bits == 32 ? INT32_MAX : INT64_MAX;
            if (it == 65)
                d = bits == 32 ? INT32_MIN + 1 : INT64_MIN + 1;
            uint64_t ad = (uint64_t)(d < 0 ? -(uint64_t)d : (uint64_t)d);
            if (ad < 2 || !(ad & (ad - 1)))
                continue;
            struct gvm_sdiv_magic m;
            gvm_sdiv_magic(d, bits, &m);
            for (int k = 0; k < 20; k++) {
                int64_t x = k == 0 ? INT64_MIN : k == 1 ? INT64_MAX : k == 2 ? -1 : k == 3 ? 0
                          : k == 4 ? d : k == 5 ? -d : k == 6 ? (int64_t)((uint64_t)d * 3 - 1)
                          : k == 7 ? (int64_t)(1 - (uint64_t)d * 3)
                          : k == 8 ? INT32_MIN : k == 9 ? INT32_MAX : (int64_t)rnd64();
                if (bits == 32)
                    x = (int32_t)x;
                int64_t q, want;
                if (bits == 32) {
                    q = (m.magic * x) >> 32;
                    want = (int32_t)x / (int32_t)d;
                } else {
                    q = (int64_t)(((__int128)m.magic * x) >> 64);
                    want = x / d;
                }
                if (d > 0 && m.magic < 0)
                    q += x;
                if (d < 0 && m.magic > 0)
                    q -= x;
                q >>= m.shift;
                q += q < 0;
                if (q != want) {
                    CHECK(0, "signed magic for %d-bit d=%" PRId64 ": x=%" PRId64 " gives %" PRId64,
                          bits, d, x, q);
                    return;
                }
            }
        }
    }
}

/* sdiv/smod by constants on the JIT: every width, divisors of every shape
 * (powers of two either sign, INT32_MIN, 1, small and large, odd and even)
 * on dividends at the edges, on r0 and r3 (rax, rdx) and others. */
static void test_sdiv_const_jit(void)
{
    static const int32_t divisors[] = { 2, -2, 4, -8, 1 << 30, INT32_MIN, 1, 3, -3, 5, 6, 7, -7,
                                        10, 12, 100, -1000, 641, 65537, 0x7fffffff,
                                        INT32_MIN + 1, 1000000007, -1000000007 };
    static const char *const ops[] = { "sdiv", "smod", "sdiv32", "smod32" };
    static const int regs[] = { 0, 3, 4, 8 };
    uint64_t mem[18];
    char text[4096];

    for (size_t di = 0; di < sizeof(divisors) / sizeof(divisors[0]); di++) {
        for (int oi = 0; oi < 4; oi++) {
            for (int ri = 0; ri < 4; ri++) {
                int r = regs[ri];
                size_t n = (size_t)snprintf(text, sizeof(text),
                                            "mov r6, r1\nmov r0, 0x1111\nmov r3, 0x3333\n"
                                            "mov r4, 0x4444\nmov r8, 0x8888\n");
                for (int k = 0; k < 16; k++)
                    n += (size_t)snprintf(text + n, sizeof(text) - n,
                                          "ldxdw r%d, [r6+%d]\n%s r%d, %d\nstxdw [r6+%d], r%d\n",
                                          r, 8 * k, ops[oi], r, divisors[di], 8 * k, r);
                snprintf(text + n, sizeof(text) - n,
                         "stxdw [r6+128], r%d\nstxdw [r6+136], r%d\nexit\n", r == 0 ? 3 : 0,
                         r == 4 ? 8 : 4);
                for (int k = 0; k < 16; k++)
                    mem[k] = k == 0 ? 0x8000000000000000ull : k == 1 ? 0x80000000ull
                           : k == 2 ? ~0ull : k == 3 ? 0 : k == 4 ? (uint64_t)(int64_t)divisors[di]
                           : k == 5 ? (uint64_t)-(int64_t)divisors[di] : k == 6 ? 0x7fffffffull
                           : k == 7 ? 0x7fffffffffffffffull : k < 10 ? rnd64() >> (rnd64() % 64)
                           : rnd64();
                uint64_t want[16];
                for (int k = 0; k < 16; k++) {
                    bool is32 = oi >= 2, mod = oi & 1;
                    if (is32) {
                        int32_t x = (int32_t)mem[k], d = divisors[di];
                        want[k] = (uint32_t)(mod ? x % d : x / d);
                    } else {
                        int64_t x = (int64_t)mem[k], d = divisors[di];
                        want[k] = (uint64_t)(mod ? x % d : x / d);
                    }
                }
                run_both(text, mem, sizeof(mem), NULL, NULL, NULL);
                for (int k = 0; k < 16; k++)
                    if (mem[k] != want[k]) {
                        CHECK(0, "%s r%d, %d: dividend #%d gave 0x%" PRIx64 ", want 0x%" PRIx64,
                              ops[oi], r, divisors[di], k, mem[k], want[k]);
                        break;
                    }
                CHECK(mem[16] == (r == 0 ? 0x3333u : 0x1111u)
                      && mem[17] == (r == 4 ? 0x8888u : 0x4444u),
                      "%s r%d, %d clobbered a neighbour", ops[oi], r, divisors[di]);
            }
        }
    }
}

/* ---- stack slots in registers ---------------------------------------------- */

static uint64_t run_text(const char *text)
{
    uint8_t mem[64] = { 0 };
    return run_both(text, mem, sizeof(mem), NULL, NULL, NULL);
}

static bool has_frame_setup(const uint8_t *code, size_t len)
{
    for (size_t k = 0; k + 2 < len; k++)
        if (code[k] == 0x48 && code[k + 1] == 0x89 && code[k + 2] == 0xe5)   /* mov rbp, rsp */
            return true;
    return false;
}

static void test_slots(void)
{
    /* A leaf whose six slots all fit in free registers: no frame at all,
     * slots live across loop iterations. */
    static const char leaf6[] =
        "stdw [r10-8], 10\nstdw [r10-16], 0\nstdw [r10-24], 1\nstdw [r10-32], 2\n"
        "stdw [r10-40], 3\nstdw [r10-48], 4\n"
        "loop:\nldxdw r1, [r10-8]\nldxdw r2, [r10-16]\nadd r2, r1\nstxdw [r10-16], r2\n"
        "ldxdw r3, [r10-24]\nldxdw r4, [r10-32]\nadd r3, r4\nstxdw [r10-32], r3\n"
        "ldxdw r4, [r10-48]\nstxdw [r10-40], r4\nadd r4, 1\nstxdw [r10-48], r4\n"
        "sub r1, 1\nstxdw [r10-8], r1\njne r1, 0, loop\n"
        "ldxdw r0, [r10-16]\nldxdw r1, [r10-32]\nlsh r1, 16\nadd r0, r1\n"
        "ldxdw r1, [r10-40]\nlsh r1, 32\nadd r0, r1\nexit\n";
    const uint8_t *code;
    size_t len;
    struct gvm_prog *p = NULL;
    uint64_t r = run_both(leaf6, NULL, 0, &code, &len, &p);
    /* r4 goes 4..14, [-40] ends as 13; [-32] = 2 + 10 * 1 = 12 */
    CHECK(r == 55 + (12ull << 16) + (13ull << 32), "leaf6: got 0x%" PRIx64, r);
    if (p) {
        CHECK(!has_frame_setup(code, len), "leaf with every slot promoted still sets up a frame");
        gvm_prog_free(p);
    }

    struct { const char *text; uint64_t want; } cases[] = {
        /* the frame pointer copied: nothing may be promoted */
        { "mov r9, r10\nstdw [r9-16], 9\nstdw [r10-8], 1\nldxdw r0, [r10-16]\n"
          "ldxdw r2, [r10-8]\nadd r0, r2\nexit\n", 10 },
        /* ... or passed to a helper that reads the slot */
        { "stdw [r10-8], 5\nmov r1, r10\nadd r1, -8\ncall 4\nldxdw r1, [r10-8]\nadd r0, r1\nexit\n",
          10 },
        /* ... or stored, then read back through memory */
        { "stxdw [r10-16], r10\nstdw [r10-8], 7\nldxdw r2, [r10-16]\nldxdw r0, [r2-8]\nexit\n", 7 },
        /* a byte of a slot: the slot stays in memory, its neighbour need not */
        { "stdw [r10-8], 0x1234\nstdw [r10-16], 3\nldxb r0, [r10-7]\nldxdw r1, [r10-16]\n"
          "add r0, r1\nexit\n", 0x15 },
        /* a 4-byte store into the upper half, then the whole slot */
        { "stdw [r10-8], -1\nstw [r10-4], 0\nldxdw r0, [r10-8]\nexit\n", 0xffffffffull },
        /* an unaligned 8-byte access straddling two slots */
        { "stdw [r10-8], 0\nstdw [r10-16], 0\nlddw r1, 0x1122334455667788\nstxdw [r10-12], r1\n"
          "ldxdw r0, [r10-8]\nexit\n", 0x11223344ull },
        /* sign-extending load of a slot */
        { "stdw [r10-8], -2\nldxsw r0, [r10-8]\nexit\n", (uint64_t)-2 },
        /* atomics on a slot */
        { "stdw [r10-8], 5\nmov r1, 3\nlock add [r10-8], r1\nldxdw r0, [r10-8]\nexit\n", 8 },
        { "stdw [r10-8], 5\nmov r1, 3\nlock fetch add [r10-8], r1\nldxdw r0, [r10-8]\n"
          "add r0, r1\nexit\n", 13 },
        /* with calls: r8/r9 unnamed, so slots may take r14/r15 across a helper call */
        { "stdw [r10-8], 7\nstdw [r10-16], 1\nmov r1, 4\ncall 3\nldxdw r1, [r10-8]\nadd r0, r1\n"
          "ldxdw r1, [r10-16]\nadd r0, r1\nexit\n", 20 },
        /* callee and caller both keep a slot in the same register */
        { "stdw [r10-8], 100\ncall fn\nldxdw r1, [r10-8]\nadd r0, r1\nexit\n"
          "fn:\nstdw [r10-8], 5\nldxdw r0, [r10-8]\nexit\n", 105 },
        /* ... and the callee has the caller's slot through a pointer */
        { "stdw [r10-8], 100\nmov r1, r10\nadd r1, -8\ncall fn\nldxdw r1, [r10-8]\nadd r0, r1\n"
          "exit\nfn:\nstdw [r10-8], 5\nldxdw r0, [r1+0]\nstdw [r1+0], 1\nldxdw r2, [r10-8]\n"
          "add r0, r2\nexit\n", 106 },
        /* a leaf whose slots outnumber the free registers */
        { "stdw [r10-8], 1\nstdw [r10-16], 2\nstdw [r10-24], 3\nstdw [r10-32], 4\n"
          "stdw [r10-40], 5\nstdw [r10-48], 6\nstdw [r10-56], 7\nstdw [r10-64], 8\n"
          "stdw [r10-72], 9\nstdw [r10-80], 10\nmov r0, 0\nldxdw r1, [r10-8]\nadd r0, r1\n"
          "ldxdw r1, [r10-16]\nadd r0, r1\nldxdw r1, [r10-24]\nadd r0, r1\n"
          "ldxdw r1, [r10-32]\nadd r0, r1\nldxdw r1, [r10-40]\nadd r0, r1\n"
          "ldxdw r1, [r10-48]\nadd r0, r1\nldxdw r1, [r10-56]\nadd r0, r1\n"
          "ldxdw r1, [r10-64]\nadd r0, r1\nldxdw r1, [r10-72]\nadd r0, r1\n"
          "ldxdw r1, [r10-80]\nadd r0, r1\nmov r6, 1\nmov r7, 1\nmov r8, 1\nmov r9, 1\n"
          "add r0, r6\nadd r0, r7\nadd r0, r8\nadd r0, r9\nexit\n", 59 },
        /* load, update, store of a promoted slot: the update on the slot's
         * register, the loaded register set only when read later */
        { "stdw [r10-8], 5\nstdw [r10-16], -1\nmov r1, 0\nloop:\nldxdw r2, [r10-8]\nadd r2, 3\n"
          "stxdw [r10-8], r2\nldxdw r3, [r10-16]\nxor r3, r1\nstxdw [r10-16], r3\n"
          "ldxdw r4, [r10-8]\nsub r4, r1\nstxdw [r10-8], r4\nadd r1, 1\njlt r1, 10, loop\n"
          "ldxdw r0, [r10-8]\nldxdw r5, [r10-16]\nlsh r5, 8\nadd r0, r5\nexit\n",
          (5 + 30 - 45) + ((uint64_t)(-1 ^ 0 ^ 1 ^ 2 ^ 3 ^ 4 ^ 5 ^ 6 ^ 7 ^ 8 ^ 9) << 8) },
        { "stdw [r10-8], 5\nldxdw r2, [r10-8]\nadd r2, 1\nstxdw [r10-8], r2\nmov r0, r2\n"
          "ldxdw r3, [r10-8]\nadd r3, r3\nstxdw [r10-8], r3\nadd r0, r3\n"
          "ldxdw r3, [r10-8]\nand r3, -4\nstxdw [r10-8], r3\nadd r0, r3\n"
          "ldxdw r3, [r10-8]\nor r3, 0x80000000\nstxdw [r10-8], r3\nldxdw r4, [r10-8]\n"
          "add r0, r4\nexit\n", 6 + 12 + 12 + (12 | 0xffffffff80000000ull) },
        /* a slot load consumed at once by an ALU op or a compare reads the
         * slot's register (the loaded register dead), or copies it (live) */
        { "stdw [r10-8], 7\nstdw [r10-16], 2\nmov r0, 0\nmov r1, 0\nloop:\nldxdw r3, [r10-16]\n"
          "add r0, r3\nldxdw r4, [r10-16]\nmul r0, r4\nldxdw r3, [r10-8]\njge r1, r3, +2\n"
          "add r1, 1\nja loop\nldxdw r5, [r10-8]\nsub r0, r5\nldxdw r5, [r10-8]\n"
          "jgt r5, r1, +1\nadd r0, r5\nexit\n", 0x3fc },
        /* st of a negative imm sign-extends into the promoted slot */
        { "stdw [r10-8], -3\nldxdw r0, [r10-8]\nexit\n", (uint64_t)-3 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        r = run_text(cases[k].text);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r, cases[k].want,
              cases[k].text);
    }
    /* the counter update happens on the slot's register: no add rsi, 3 */
    p = NULL;
    r = run_both("stdw [r10-8], 0\nmov r1, 0\nloop:\nldxdw r2, [r10-8]\nadd r2, 3\n"
                 "stxdw [r10-8], r2\nadd r1, 1\njlt r1, 10, loop\nldxdw r0, [r10-8]\nexit\n",
                 NULL, 0, &code, &len, &p);
    CHECK(r == 30, "slot update: got %" PRIu64, r);
    if (p) {
        size_t on_r2 = 0;
        for (size_t k = 0; k + 3 < len; k++)
            on_r2 += code[k] == 0x48 && code[k + 1] == 0x83 && code[k + 2] == 0xc6 && code[k + 3] == 3;
        CHECK(on_r2 == 0, "slot update: %zu add rsi, 3 left", on_r2);
        gvm_prog_free(p);
    }
}

/* How many 64-bit moves to or from [rbp + disp] (disp8) the code holds. */
static size_t rbp_slot_accesses(const uint8_t *code, size_t len, int disp)
{
    size_t n = 0;
    for (size_t k = 0; k + 3 < len; k++)
        n += (code[k] & 0xf8) == 0x48 && (code[k + 1] == 0x89 || code[k + 1] == 0x8b
                                          || code[k + 1] == 0xc7)
             && (code[k + 2] & 0xc7) == 0x45 && (int8_t)code[k + 3] == disp;
    return n;
}

/* Slots whose live intervals are disjoint share a register (assign_slots,
 * gvm_slot_intervals); a slot live around a loop keeps its register for
 * the whole loop. */
static void test_slot_sharing(void)
{
    /* every BPF register named, so a leaf has at most five free registers;
     * eight slots each live for two insns all fit by sharing: no frame */
    static const char phases[] =
        "mov r0, 0\nmov r2, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\nmov r6, 0\nmov r7, 0\n"
        "mov r8, 0\nmov r9, 0\n"
        "stdw [r10-8], 1\nldxdw r1, [r10-8]\nadd r0, r1\n"
        "stdw [r10-16], 2\nldxdw r1, [r10-16]\nadd r0, r1\n"
        "stdw [r10-24], 3\nldxdw r1, [r10-24]\nadd r0, r1\n"
        "stdw [r10-32], 4\nldxdw r1, [r10-32]\nadd r0, r1\n"
        "stdw [r10-40], 5\nldxdw r1, [r10-40]\nadd r0, r1\n"
        "stdw [r10-48], 6\nldxdw r1, [r10-48]\nadd r0, r1\n"
        "stdw [r10-56], 7\nldxdw r1, [r10-56]\nadd r0, r1\n"
        "stdw [r10-64], 8\nldxdw r1, [r10-64]\nadd r0, r1\n"
        "add r0, r2\nadd r0, r3\nadd r0, r4\nadd r0, r5\nadd r0, r6\nadd r0, r7\n"
        "add r0, r8\nadd r0, r9\nexit\n";
    const uint8_t *code;
    size_t len;
    struct gvm_prog *p = NULL;
    uint64_t r = run_both(phases, NULL, 0, &code, &len, &p);
    CHECK(r == 36, "phases: got %" PRIu64, r);
    if (p) {
        CHECK(!has_frame_setup(code, len), "eight short-lived slots did not share registers");
        gvm_prog_free(p);
    }

    struct { const char *text; uint64_t want; } cases[] = {
        /* [-8] is carried from one iteration to the next but its accesses
         * all come before [-16]'s in the body: only the loop stretching
         * its interval keeps [-16] out of its register */
        { "stdw [r10-8], 1\nmov r0, 0\nmov r2, 0\nloop:\nldxdw r1, [r10-8]\nadd r0, r1\n"
          "add r1, r1\nstxdw [r10-8], r1\nstxdw [r10-16], r2\nldxdw r3, [r10-16]\n"
          "add r0, r3\nadd r2, 1\njlt r2, 5, loop\nexit\n", 31 + 10 },
        /* ... only read in the loop, written before it */
        { "stdw [r10-8], 5\nmov r0, 0\nmov r2, 0\nloop:\nldxdw r1, [r10-8]\nadd r0, r1\n"
          "stxdw [r10-16], r2\nldxdw r3, [r10-16]\nadd r0, r3\nadd r2, 1\njlt r2, 4, loop\n"
          "exit\n", 20 + 6 },
        /* ... the same with a helper call in the loop: r8/r9 unnamed, the
         * slots compete for r14/r15 across the call */
        { "stdw [r10-8], 1\nmov r6, 0\nmov r7, 0\nloop:\nldxdw r1, [r10-8]\nadd r6, r1\n"
          "add r1, r1\nstxdw [r10-8], r1\nstxdw [r10-16], r7\nmov r1, r7\ncall 3\n"
          "ldxdw r3, [r10-16]\nadd r6, r3\nadd r6, r0\nadd r7, 1\njlt r7, 5, loop\n"
          "mov r0, r6\nexit\n", 31 + 10 + 30 },
        /* every callee-saved home named: slots live only between calls
         * take the scratch registers, the one live across a call stays
         * in memory (h_trash garbles the scratch registers) */
        { "mov r6, 1\nmov r7, 2\nmov r8, 3\nmov r9, 4\nstdw [r10-8], 10\n"
          "stdw [r10-16], 20\nldxdw r1, [r10-16]\nadd r6, r1\nstdw [r10-24], 30\n"
          "ldxdw r1, [r10-24]\nadd r7, r1\nmov r1, 5\ncall 5\nadd r8, r0\n"
          "stdw [r10-32], 40\nmov r0, 0\nloop:\nldxdw r1, [r10-32]\nadd r1, 1\n"
          "stxdw [r10-32], r1\nadd r0, 1\njlt r0, 3, loop\nldxdw r1, [r10-32]\n"
          "ldxdw r2, [r10-8]\nadd r0, r1\nadd r0, r2\nadd r0, r6\nadd r0, r7\n"
          "add r0, r8\nadd r0, r9\nexit\n", 3 + 43 + 10 + 21 + 32 + 9 + 4 },
        /* a loop between a slot's store and its load: the slots used in
         * the loop cannot share its register */
        { "stdw [r10-8], 100\nmov r0, 0\nmov r2, 0\nloop:\nstxdw [r10-16], r2\n"
          "ldxdw r3, [r10-16]\nadd r0, r3\nstdw [r10-24], 7\nldxdw r3, [r10-24]\n"
          "add r0, r3\nadd r2, 1\njlt r2, 3, loop\nldxdw r1, [r10-8]\nadd r0, r1\nexit\n",
          3 + 21 + 100 },
        /* a forward jump over a slot's store to its load: the value read
         * is the one stored before, kept from the slot used in between */
        { "stdw [r10-8], 9\nmov r0, 0\njeq r0, 0, skip\nstdw [r10-8], 1\nskip:\n"
          "stdw [r10-16], 4\nldxdw r2, [r10-16]\nadd r0, r2\nldxdw r1, [r10-8]\n"
          "add r0, r1\nexit\n", 13 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        r = run_text(cases[k].text);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r, cases[k].want,
              cases[k].text);
    }

    /* with calls and r6-r9 named: the slots live between calls only are
     * in registers, the one live across the call in memory */
    static const char between[] =
        "mov r6, 1\nmov r7, 2\nmov r8, 3\nmov r9, 4\nstdw [r10-8], 10\nstdw [r10-16], 20\n"
        "ldxdw r1, [r10-16]\nadd r6, r1\nmov r1, 5\ncall 5\nstdw [r10-24], 30\n"
        "ldxdw r1, [r10-24]\nadd r7, r1\nldxdw r0, [r10-8]\nadd r0, r6\nadd r0, r7\n"
        "add r0, r8\nadd r0, r9\nexit\n";
    p = NULL;
    r = run_both(between, NULL, 0, &code, &len, &p);
    CHECK(r == 10 + 21 + 32 + 3 + 4, "between calls: got %" PRIu64, r);
    if (p) {
        CHECK(rbp_slot_accesses(code, len, -8) == 2, "slot across the call not in memory");
        CHECK(rbp_slot_accesses(code, len, -16) == 0 && rbp_slot_accesses(code, len, -24) == 0,
              "slots between calls not in registers");
        gvm_prog_free(p);
    }
}

/* ---- repeated tests (jit_thread.c) ------------------------------------------ */

/* J1: if (c) goto J2; A; J2: if (c) goto +1; B: J1 jumps to J2's target,
 * J2 emits nothing, unless A writes a tested register or something else
 * jumps to J2 or into A. Every condition, both widths, register and
 * immediate, values either side of the edge, against the interpreter. */
static void test_repeated_tests(void)
{
    static const char *const ops[] = { "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt",
                                       "jsge", "jslt", "jsle", "jset" };
    static const int64_t vals[] = { 0, 1, -1, 5, 6, 4, INT32_MIN, INT32_MAX, 0x100000005ll };
    /* A between the tests: keeps them, writes the tested register, writes
     * the register compared against, or is jumped into */
    static const char *const betweens[] = {
        "add r3, 1\nstxdw [r10-8], r3\n", "add r1, 1\nadd r3, 1\n", "add r3, 1\nmov r2, 4\n",
        "add r3, 1\nin:\nadd r3, 1\n" };
    char text[512];
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int w = 0; w < 2; w++)
            for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
                for (int x = 0; x < 2; x++)
                    for (size_t b = 0; b < sizeof(betweens) / sizeof(betweens[0]); b++) {
                        const char *t = x ? "r2" : "5", *ww = w ? "32" : "";
                        snprintf(text, sizeof(text),
                                 "lddw r1, %lld\nmov r2, 5\nmov r0, 1\nmov r3, 10\n"
                                 "%s%s%s r1, %s, j2\n%sj2:\n%s%s r1, %s, +1\n"
                                 "mov r0, 2\nadd r0, r3\nlsh r0, 8\nadd r0, r1\nexit\n",
                                 (long long)vals[v], b == 3 ? "jeq r1, 6, in\n" : "", ops[o], ww, t,
                                 betweens[b], ops[o], ww, t);
                        run_text(text);
                    }
    /* a second jump to J2 with the same test */
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
            snprintf(text, sizeof(text),
                     "lddw r1, %lld\nmov r0, 1\nmov r3, 10\n%s r1, 5, j2\n%s r1, 5, j2\n"
                     "add r3, 1\nj2:\n%s r1, 5, +1\nmov r0, 2\nadd r0, r3\nexit\n",
                     (long long)vals[v], ops[o], ops[o], ops[o]);
            run_text(text);
        }
    /* the shape clang gives log2 steps: one compare per step left */
    static const char steps[] =
        "ldxdw r1, [r1+0]\nmov r4, 0\njlt r1, 0x10000, +1\nor r4, 16\n"
        "jlt r1, 0x10000, +1\nrsh r1, 16\njlt r1, 0x100, +1\nor r4, 8\njlt r1, 0x100, +1\n"
        "rsh r1, 8\nmov r0, r1\nlsh r0, 8\nadd r0, r4\nexit\n";
    static const uint64_t inputs[] = { 0, 0xff, 0x100, 0xffff, 0x10000, 0x123456, 0xffffffff };
    for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
        uint64_t mem[8] = { inputs[k] };
        const uint8_t *code;
        size_t len;
        struct gvm_prog *p = NULL;
        uint64_t x = inputs[k], lg = 0;
        if (x >= 0x10000) { lg |= 16; x >>= 16; }
        if (x >= 0x100) { lg |= 8; x >>= 8; }
        uint64_t r = run_both(steps, mem, sizeof(mem), &code, &len, &p);
        CHECK(r == (x << 8) + lg, "steps(0x%" PRIx64 "): got 0x%" PRIx64, inputs[k], r);
        if (p) {
            size_t cmps = 0;
            for (size_t b = 0; b + 2 < len; b++)
                cmps += code[b] == 0x48 && code[b + 1] == 0x81 && code[b + 2] == 0xff;
            CHECK(cmps == 2, "steps: %zu compares of rdi, want 2", cmps);
            gvm_prog_free(p);
        }
    }
}

/* ---- branch layout ------------------------------------------------------------ */

/* `if (c) goto +1; goto T` becomes one inverted branch: every condition,
 * both widths, register and immediate, on values either side of the edge;
 * plus a loop closed that way, and the jump's own target kept reachable. */
static void test_inverted_branches(void)
{
    static const char *const ops[] = { "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt",
                                       "jsge", "jslt", "jsle", "jset" };
    static const int64_t vals[] = { 0, 1, -1, 5, 6, 4, INT32_MIN, INT32_MAX, 0x100000005ll };
    char text[512];
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int w = 0; w < 2; w++)
            for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
                for (int x = 0; x < 2; x++) {
                    snprintf(text, sizeof(text),
                             "lddw r1, %lld\nmov r2, 5\nmov r0, 1\n%s%s r1, %s, +1\nja out\n"
                             "mov r0, 2\nout:\nexit\n",
                             (long long)vals[v], ops[o], w ? "32" : "", x ? "r2" : "5");
                    run_text(text);
                }
    /* `if (c) goto +1; r = v` as a cmov: constants (0 must not become a
     * flag-clobbering xor), mov32 (zero-extends only when it happens),
     * mov64 of a register, and the moved register read by the test. */
    static const char *const moves[] = { "mov r0, 0", "mov r0, 1", "mov r0, -1", "mov32 r0, -1",
                                         "mov32 r0, 0", "mov r0, r2", "mov r0, 0x7fffffff" };
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int w = 0; w < 2; w++)
            for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v += 2)
                for (size_t m = 0; m < sizeof(moves) / sizeof(moves[0]); m++) {
                    snprintf(text, sizeof(text),
                             "lddw r1, %lld\nmov r2, 5\nlddw r0, 0x123456789\n%s%s r%d, %s, +1\n"
                             "%s\nexit\n",
                             (long long)vals[v], ops[o], w ? "32" : "", m % 2 ? 0 : 1,
                             m % 3 ? "r2" : "5", moves[m]);
                    run_text(text);
                }
    /* a leaf naming every register, with slots in most free registers:
     * the slots must not take the one cmov loads constants into, and
     * each keeps its value across the cmov (a loop runs it both ways) */
    static const char crowded[] =
        "mov r0, 0\nmov r2, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\nmov r6, 0\nmov r7, 0\n"
        "mov r8, 0\nmov r9, 0\nstdw [r10-8], 0\nstdw [r10-16], 100\nstdw [r10-24], 0\n"
        "stdw [r10-32], 0\nmov r1, 0\n"
        "loop:\nldxdw r3, [r10-8]\nadd r3, 1\nstxdw [r10-8], r3\n"
        "ldxdw r4, [r10-16]\nsub r4, 1\nstxdw [r10-16], r4\n"
        "mov r2, 1\njgt r1, 4, +1\nmov r2, 0\n"
        "ldxdw r5, [r10-24]\nadd r5, r2\nstxdw [r10-24], r5\n"
        "ldxdw r6, [r10-32]\nadd r6, r1\nstxdw [r10-32], r6\n"
        "add r1, 1\njlt r1, 10, loop\n"
        "ldxdw r0, [r10-8]\nldxdw r7, [r10-16]\nlsh r7, 8\nadd r0, r7\n"
        "ldxdw r7, [r10-24]\nlsh r7, 16\nadd r0, r7\nldxdw r7, [r10-32]\nlsh r7, 24\n"
        "add r0, r7\nadd r0, r8\nadd r0, r9\nexit\n";
    const uint8_t *code;
    size_t len;
    struct gvm_prog *p = NULL;
    uint64_t r = run_both(crowded, NULL, 0, &code, &len, &p);
    CHECK(r == (10 | 90 << 8 | 5 << 16 | 45ull << 24), "crowded cmov: got 0x%" PRIx64, r);
    if (p) {
        size_t cmovs = 0;
        for (size_t k = 0; k + 2 < len; k++)
            cmovs += (code[k] & 0xf8) == 0x48 && code[k + 1] == 0x0f && (code[k + 2] & 0xf0) == 0x40;
        CHECK(cmovs == 1, "crowded leaf: %zu cmovs, want 1", cmovs);
        gvm_prog_free(p);
    }
    r = run_text("mov r0, 0\nmov r1, 0\nloop:\nadd r0, r1\nadd r1, 1\n"
                          "jlt r1, 10, +1\nja out\nja loop\nout:\nexit\n");
    CHECK(r == 45, "loop closed by an inverted branch: got %" PRIu64, r);
    /* the ja is itself a jump target: not folded */
    r = run_text("mov r0, 0\nmov r1, 3\njeq r1, 3, mid\njgt r1, 1, +1\nmid:\nja out\n"
                 "mov r0, 7\nout:\nadd r0, 1\nexit\n");
    CHECK(r == 1, "jump to the ja of a jcc +1: got %" PRIu64, r);
    r = run_text("mov r0, 0\nmov r1, 3\njeq r1, 4, mid\njgt r1, 1, +1\nmid:\nja out\n"
                 "mov r0, 7\nout:\nadd r0, 1\nexit\n");
    CHECK(r == 8, "jcc +1 over a ja that is a jump target: got %" PRIu64, r);
    r = run_text("mov r0, 0\nmov r1, 3\njeq r1, 4, mid\njgt r1, 5, +1\nmid:\nja out\n"
                 "mov r0, 7\nout:\nadd r0, 1\nexit\n");
    CHECK(r == 1, "jcc +1 falling into a ja that is a jump target: got %" PRIu64, r);
}

/* ---- address folding ----------------------------------------------------------- */

/* mov x, b; add x, i|imm; access [x+off] -> one access at [b+i+imm+off]:
 * x dead or still read after, the load writing x, b or i, every size and
 * sign extension, stores of registers and immediates, r7/r10 (rbp/r13 need
 * a displacement byte) as bases. Memory: 64 bytes, bytes k = k. */
static void test_address_folding(void)
{
    struct { const char *text; uint64_t want; } cases[] = {
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\nexit\n", 9 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\nldxb r4, [r3+0]\nadd r0, r4\nexit\n",
          17 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxh r3, [r3+2]\nmov r0, r3\nexit\n", 0x0b0a },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxw r1, [r3+0]\nmov r0, r1\nexit\n", 0x0b0a0908 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxdw r2, [r3+0]\nmov r0, r2\nexit\n",
          0x0f0e0d0c0b0a0908ull },
        { "mov r2, 60\nmov r3, r1\nadd r3, r2\nstb [r3+3], 0x80\nldxsb r0, [r3+3]\nexit\n",
          (uint64_t)-128 },
        { "mov r3, r1\nadd r3, 16\nmov r4, 0x1234\nstxh [r3+4], r4\nldxh r0, [r1+20]\nexit\n",
          0x1234 },
        { "mov r7, r1\nmov r3, r7\nadd r3, 40\nstw [r3-8], -1\nldxw r0, [r1+32]\nexit\n",
          0xffffffffull },
        { "stdw [r10-16], 77\nmov r2, -16\nmov r3, r10\nadd r3, r2\nldxdw r0, [r3+0]\nexit\n", 77 },
        { "mov r6, r1\nmov r2, 9\nmov r3, r6\nadd r3, r2\nstxb [r3+0], r2\nldxb r0, [r6+9]\n"
          "exit\n", 9 },
        { "mov r4, 5\nmov r2, 9\nmov r3, r1\nadd r3, r2\nstxb [r3+1], r4\nldxb r0, [r1+10]\n"
          "exit\n", 5 },
        /* constant moves between the add and the access */
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nmov r4, 3\nmov32 r5, -1\nldxb r0, [r3+1]\n"
          "add r0, r4\nadd r0, r5\nexit\n", 9 + 3 + 0xffffffffull },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nmov r4, 3\nstxb [r3+1], r4\nldxb r0, [r1+9]\n"
          "exit\n", 3 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nmov r0, 3\nldxb r0, [r3+1]\nexit\n", 9 },
        /* ALU ops between, on other registers; one reading the scaled index */
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nadd r5, 1\nmov r5, 7\n"
          "ldxb r0, [r3+1]\nadd r0, r5\nexit\n", 20 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nmov r5, 1\nadd r5, r2\n"
          "ldxb r0, [r3+1]\nadd r0, r5\nexit\n", 26 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nxor32 r4, 1\n"
          "ldxb r0, [r3+1]\nadd r0, r4\nexit\n", 15 },
        /* a move into the base or index register ends the pattern */
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nmov r2, 1\nldxb r0, [r3+1]\nadd r0, r2\nexit\n",
          10 },
        /* several accesses through one address */
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\nstxb [r3+2], r0\n"
          "ldxb r4, [r3+2]\nadd r0, r4\nexit\n", 18 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxdw r4, [r3+0]\nstxdw [r3+16], r4\n"
          "ldxb r0, [r1+24]\nexit\n", 8 },
        /* a load into the index or the base ends the chain */
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r2, [r3+2]\nldxb r0, [r3+3]\nadd r0, r2\n"
          "exit\n", 21 },
        { "mov r6, r1\nmov r2, 8\nmov r3, r6\nadd r3, r2\nldxdw r6, [r3+8]\nldxb r0, [r3+3]\n"
          "exit\n", 11 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+2]\nldxb r3, [r3+3]\nadd r0, r3\n"
          "exit\n", 21 },
        /* a scaled index (mov i, s; lsh i, k), i dead or still read */
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\nexit\n",
          13 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 3\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\n"
          "add r0, r2\nexit\n", 25 + 24 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 1\nmov r3, r1\nadd r3, r2\nstxb [r3+0], r2\n"
          "ldxb r0, [r1+6]\nexit\n", 6 },
        { "mov r4, 2\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r2, [r3+0]\n"
          "ldxb r0, [r3+1]\nadd r0, r2\nexit\n", 17 },
        { "mov r4, 2\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\n"
          "ldxb r0, [r3+1]\nadd r0, r4\nexit\n", 17 },
        { "mov r4, 2\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+0]\n"
          "add r0, r3\nsub r0, r1\nexit\n", 16 },
        /* load, modify, store through one address: ALU ops between the
         * accesses, unless they touch the address, base, index or the
         * scaled index, or there are more than two */
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxdw r4, [r3+0]\nadd r4, 1\nstxdw [r3+16], r4\n"
          "ldxdw r0, [r1+24]\nexit\n", 0x0f0e0d0c0b0a0909ull },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nmov r5, 2\nmul32 r4, 3\n"
          "stxb [r3+1], r4\nldxb r0, [r1+9]\nadd r0, r5\nexit\n", 26 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r4, 1\nxor r4, 3\n"
          "stxb [r3+1], r4\nldxb r0, [r1+9]\nexit\n", 10 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r4, 1\nxor r4, 3\nsub r4, 1\n"
          "stxb [r3+1], r4\nldxb r0, [r1+9]\nexit\n", 9 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r1, 1\nstxb [r3+1], r4\n"
          "ldxb r0, [r1+8]\nexit\n", 8 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r2, 1\nstxb [r3+1], r4\n"
          "ldxb r0, [r1+9]\nadd r0, r2\nexit\n", 17 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r3, 1\nstxb [r3+1], r4\n"
          "ldxb r0, [r1+10]\nexit\n", 8 },
        { "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxb r4, [r3+0]\nadd r4, r3\nsub r4, r1\n"
          "stxb [r3+1], r4\nldxb r0, [r1+9]\nexit\n", 16 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\n"
          "add r0, r2\nstxb [r3+2], r0\nldxb r0, [r1+14]\nexit\n", 25 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+1]\n"
          "add32 r0, -1\nstxb [r3+2], r0\nmov r5, 1\nldxb r4, [r3+2]\nadd r0, r4\n"
          "add r0, r5\nexit\n", 25 },
        /* the load overwrites the scaled index (which then need not be
         * computed), after a store of it or an ALU op reading it */
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nldxb r2, [r3+1]\n"
          "mov r0, r2\nexit\n", 13 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nstxb [r3+0], r2\n"
          "ldxb r2, [r3+0]\nmov r0, r2\nexit\n", 12 },
        { "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nmov r5, r2\n"
          "ldxb r2, [r3+1]\nadd r2, r5\nmov r0, r2\nexit\n", 25 },
        { "mov r0, 0\nmov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\nadd r0, r2\n"
          "ldxb r2, [r3+1]\nadd r0, r2\nexit\n", 25 },
        /* the address kept for a later access on another path */
        { "mov r2, 2\nmov r3, r1\nadd r3, r2\nldxb r0, [r3+0]\njeq r0, 2, l\nmov r3, r1\nl:\n"
          "ldxb r4, [r3+1]\nadd r0, r4\nexit\n", 5 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint8_t mem[64];
        for (int b = 0; b < 64; b++)
            mem[b] = (uint8_t)b;
        uint64_t r = run_both(cases[k].text, mem, sizeof(mem), NULL, NULL, NULL);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r, cases[k].want,
              cases[k].text);
    }
}

/* A load, modify, store through one address folds both accesses: no lea
 * is left for the address register. */
static void test_fold_chain_code(void)
{
    static const char text[] =
        "mov r2, 8\nmov r3, r1\nadd r3, r2\nldxdw r4, [r3+0]\nadd r4, 1\nstxdw [r3+16], r4\n"
        "ldxdw r0, [r1+24]\nexit\n";
    uint8_t mem[64];
    for (int b = 0; b < 64; b++)
        mem[b] = (uint8_t)b;
    const uint8_t *code;
    size_t len;
    struct gvm_prog *p = NULL;
    run_both(text, mem, sizeof(mem), &code, &len, &p);
    if (!p)
        return;
    size_t leas = 0;   /* but the abort stub's lea rsp, [rsp+r11+F] */
    for (size_t k = 0; k + 2 < len; k++)
        leas += (code[k] & 0xf0) == 0x40 && code[k + 1] == 0x8d && code[k + 2] != 0xa4;
    CHECK(leas == 0, "load, modify, store: %zu lea left", leas);
    gvm_prog_free(p);

    /* a scaled index the load then overwrites is never computed: no shl */
    static const char reload[] = "mov r4, 3\nmov r2, r4\nlsh r2, 2\nmov r3, r1\nadd r3, r2\n"
                                 "ldxb r2, [r3+1]\nmov r0, r2\nexit\n";
    p = NULL;
    uint64_t r = run_both(reload, mem, sizeof(mem), &code, &len, &p);
    CHECK(r == 13, "reloaded index: got %" PRIu64, r);
    if (!p)
        return;
    size_t shifts = 0;
    for (size_t k = 0; k + 2 < len; k++)
        shifts += (code[k] & 0xf0) == 0x40 && code[k + 1] == 0xc1 && (code[k + 2] & 0xf8) == 0xe0;
    CHECK(shifts == 0, "reloaded index: %zu shl left", shifts);
    gvm_prog_free(p);
}

/* ---- 64-bit constants in registers ------------------------------------------ */

/* movabs r64, imm64: REX.W (0x48/0x49) then 0xb8+r */
static size_t count_movabs(const uint8_t *code, size_t len)
{
    size_t n = 0;
    for (size_t k = 0; k + 10 <= len; k++)
        n += (code[k] == 0x48 || code[k] == 0x49) && (code[k + 1] & 0xf8) == 0xb8;
    return n;
}

/* A leaf loop uses each constant: and, mul, add, sub, or, xor and compares
 * read the held register directly when the lddw's register dies there,
 * get a copy when it does not; constants that fit 32 bits (INT32_MIN,
 * 0x80000000, -1) and ones with 0x0f bytes (loaded without them) too; a
 * 32-bit compare of a held constant (only its low half counts); more
 * distinct constants than free registers. */
static void test_held_consts(void)
{
    struct { const char *text; uint64_t want; } cases[] = {
        /* popcount-style: each constant used once per iteration, dead after */
        { "mov r0, 0\nmov r1, 0\nlddw r5, 0x0123456789abcdef\n"
          "loop:\nmov r3, r5\nrsh r3, 1\nlddw r2, 0x5555555555555555\nand r3, r2\n"
          "lddw r2, 0x0101010101010101\nmul r3, r2\nadd r0, r3\n"
          "lddw r4, 0x100000000\njlt r5, r4, +1\nadd r0, 1\n"
          "lddw r4, 0x8000000000000000\njsgt r4, r5, +1\nadd r0, 2\n"
          "add r5, r1\nadd r1, 1\njlt r1, 50, loop\nexit\n", 0 },
        /* held constants and slots as shift counts (masked to 63) */
        { "mov r0, 0\nmov r1, 0\nstdw [r10-8], 3\nloop:\nlddw r3, 0x8000000000000041\n"
          "lddw r2, 0x1000000000000005\nrsh r3, r2\nadd r0, r3\nlddw r3, -0x1000\n"
          "lddw r2, 0x2000000000000004\narsh r3, r2\nadd r0, r3\nmov r3, 1\n"
          "ldxdw r2, [r10-8]\nlsh r3, r2\nadd r0, r3\nadd r1, 1\njlt r1, 4, loop\nexit\n", 0 },
        /* the constant's register still read after its use */
        { "mov r0, 0\nmov r1, 0\nloop:\nlddw r2, 0x7777777700000001\nadd r0, r2\n"
          "add r0, r2\nadd r1, 1\njlt r1, 5, loop\nexit\n", 0 },
        /* constants that fit 32 bits, and ones full of 0x0f and gadget bytes */
        { "mov r0, 0\nmov r1, 0\nloop:\nlddw r2, 0xffffffff80000000\nadd r0, r2\n"
          "lddw r2, 0x80000000\nxor r0, r2\nlddw r2, -1\nsub r0, r2\n"
          "lddw r3, 0x0f0f0f0f0f0f0f0f\nand r3, r0\nadd r0, r3\n"
          "lddw r3, 0x0fef01ef0f0f01ef\nor r0, r3\nlddw r3, 0x2fae0f00000000ff\nmul r0, r3\n"
          "add r1, 1\njlt r1, 9, loop\nexit\n", 0 },
        /* 32-bit compares and ALU32 ops with a held constant */
        { "mov r0, 0\nmov r1, 0\nloop:\nlddw r2, 0x1234567800000005\njlt32 r1, r2, +1\n"
          "add r0, 1\nlddw r2, 0x1234567800000003\nadd32 r0, r2\nadd r1, 1\n"
          "jlt r1, 9, loop\nexit\n", 0 },
        /* the user writes the constant's own register: no fold */
        { "mov r0, 0\nmov r1, 0\nloop:\nlddw r2, 0x1111111122222222\nadd r2, r2\n"
          "add r0, r2\nlddw r3, 0x3333333344444444\njeq r3, r3, +1\nadd r0, 1\n"
          "add r1, 1\njlt r1, 3, loop\nexit\n", 0 },
        /* compares folded with the inverted branch and the cmov that follow */
        { "mov r0, 0\nmov r1, 0\nlddw r5, 0x4000000000000000\nloop:\n"
          "lddw r2, 0x4000000000000003\njgt r5, r2, +1\nja skip\nadd r0, 100\nskip:\n"
          "lddw r2, 0x4000000000000002\njge r5, r2, +1\nmov r0, 7\nadd r0, 1\nadd r5, 1\n"
          "add r1, 1\njlt r1, 6, loop\nexit\n", 0 },
        /* more constants than registers left free by the program */
        { "mov r0, 0\nmov r1, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\nmov r6, 0\nmov r7, 0\n"
          "mov r8, 0\nmov r9, 0\nloop:\nlddw r2, 0x1000000000000001\nadd r0, r2\n"
          "lddw r2, 0x2000000000000002\nadd r3, r2\nlddw r2, 0x3000000000000003\nadd r4, r2\n"
          "lddw r2, 0x4000000000000004\nadd r5, r2\nlddw r2, 0x5000000000000005\nadd r6, r2\n"
          "lddw r2, 0x6000000000000006\nadd r7, r2\nlddw r2, 0x7000000000000007\nadd r8, r2\n"
          "lddw r2, 0x8000000000000008\nadd r9, r2\nadd r1, 1\njlt r1, 3, loop\n"
          "add r0, r3\nadd r0, r4\nadd r0, r5\nadd r0, r6\nadd r0, r7\nadd r0, r8\n"
          "add r0, r9\nexit\n", 0 },
    };
    /* the models */
    uint64_t w0 = 0, r5 = 0x0123456789abcdefull;
    for (uint64_t r1 = 0; r1 < 50; r1++) {
        w0 += ((r5 >> 1) & 0x5555555555555555ull) * 0x0101010101010101ull;
        w0 += r5 < 0x100000000ull ? 0 : 1;
        w0 += (int64_t)0x8000000000000000ull > (int64_t)r5 ? 0 : 2;
        r5 += r1;
    }
    cases[0].want = w0;
    cases[1].want = 4 * ((0x8000000000000041ull >> 5) + (uint64_t)(-0x1000 >> 4) + 8);
    cases[2].want = 10 * 0x7777777700000001ull;
    uint64_t w2 = 0;
    for (int k = 0; k < 9; k++) {
        w2 += 0xffffffff80000000ull;
        w2 ^= 0x80000000ull;
        w2 -= ~0ull;
        w2 += w2 & 0x0f0f0f0f0f0f0f0full;
        w2 |= 0x0fef01ef0f0f01efull;
        w2 *= 0x2fae0f00000000ffull;
    }
    cases[3].want = w2;
    uint32_t w3 = 0;
    for (uint32_t r1 = 0; r1 < 9; r1++) {
        w3 += r1 < 5 ? 0 : 1;
        w3 += 3;
    }
    cases[4].want = w3;
    cases[5].want = 3 * 2 * 0x1111111122222222ull;
    uint64_t w5 = 0;
    for (uint64_t r1 = 0, v = 0x4000000000000000ull; r1 < 6; r1++, v++) {
        if (v > 0x4000000000000003ull)
            w5 += 100;
        if (v < 0x4000000000000002ull)
            w5 = 7;
        w5 += 1;
    }
    cases[6].want = w5;
    uint64_t w6 = 0;
    for (uint64_t k = 1; k <= 8; k++)
        w6 += 3 * (k << 60 | k);
    cases[7].want = w6;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const uint8_t *code;
        size_t len;
        struct gvm_prog *p = NULL;
        uint64_t r = run_both(cases[k].text, NULL, 0, &code, &len, &p);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r, cases[k].want,
              cases[k].text);
        /* case 0: no movabs into r2 (rsi) or r4 (rcx) is left: the loop's
         * constants are loaded once, into other registers, and used there;
         * four in the prologue and r5's outside the loop */
        if (p && k == 0) {
            size_t in_loop = count_bytes2(code, len, 0x48, 0xbe) + count_bytes2(code, len, 0x48, 0xb9);
            CHECK(in_loop == 0 && count_movabs(code, len) == 5,
                  "held constants: %zu movabs into r2/r4, %zu in all", in_loop,
                  count_movabs(code, len));
        }
        if (p)
            gvm_prog_free(p);
    }
}

/* ---- byte compares ------------------------------------------------------------- */

/* `and r, 0xff; [mov; ] if r op k goto` with r dead after: every condition
 * it applies to (and jsgt, which it must not take), both widths, k at the
 * byte's edges, values whose low byte and whole differ, registers that
 * need a REX prefix for their low byte (rsi, rdi) and ones that do not;
 * r still read after the jump, or written by the mov between: no fusion. */
static void test_byte_compares(void)
{
    static const char *const ops[] = { "jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt" };
    static const int64_t vals[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1ff, -1, -0x80, 0x12345678 };
    static const int ks[] = { 0, 1, 0x7f, 0x80, 0xfe, 0xff };
    static const int regs[] = { 0, 1, 2, 6, 7 };
    char text[512];
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++)
            for (size_t k = 0; k < sizeof(ks) / sizeof(ks[0]); k++) {
                int r = regs[(o + v + k) % 5], w = (int)((o + k) % 2);
                snprintf(text, sizeof(text),
                         "lddw r%d, %lld\n%s r%d, 0xff\nmov r5, 3\n%s%s r%d, %d, +2\n"
                         "mov r%d, 9\nmov r5, 4\nmov r0, r5\nexit\n",
                         r, (long long)vals[v], (v + k) % 2 ? "and" : "and32", r, ops[o],
                         w ? "32" : "", r, ks[k], r);
                run_text(text);
            }
    /* any mask against 0 (jeq, jne): test r, m, on all 64 bits only when
     * both the and and the jump are 64-bit */
    static const int64_t masks[] = { 1, 0x80, 0x7fffffff, INT32_MIN, -1, 0, 0x100 };
    static const int64_t mvals[] = { 0, 1, 0x100000000ll, INT64_MIN, 0x80000000ll, 0x180, -1 };
    for (size_t m = 0; m < sizeof(masks) / sizeof(masks[0]); m++)
        for (size_t v = 0; v < sizeof(mvals) / sizeof(mvals[0]); v++)
            for (int form = 0; form < 8; form++) {
                int r = regs[(m + v + (size_t)form) % 5];
                snprintf(text, sizeof(text),
                         "lddw r%d, %lld\n%s r%d, %lld\nmov r5, 3\nmov r4, 8\n%s%s r%d, 0, +2\n"
                         "mov r%d, 9\nmov r5, 4\nmov r0, r5\nadd r0, r4\nexit\n",
                         r, (long long)mvals[v], form & 1 ? "and" : "and32", r, (long long)masks[m],
                         form & 4 ? "jne" : "jeq", form & 2 ? "32" : "", r, r);
                run_text(text);
            }
    struct { const char *text; uint64_t want; } cases[] = {
        /* r read after the jump: the mask stays */
        { "lddw r2, 0x1ff\nand r2, 0xff\njgt r2, 0xf0, +1\nadd r2, 1\nmov r0, r2\nexit\n",
          0xff },
        /* the mov between writes r */
        { "lddw r2, 0x1ff\nand r2, 0xff\nmov r2, 7\njgt r2, 0xf0, +1\nmov r2, 1\nmov r0, r2\n"
          "exit\n", 1 },
        /* a cmov after the compare */
        { "lddw r2, 0x305\nmov r0, 1\nand32 r2, 0xff\njlt r2, 6, +1\nmov r0, 2\nexit\n", 1 },
        { "lddw r2, 0x306\nmov r0, 1\nand32 r2, 0xff\njlt r2, 6, +1\nmov r0, 2\nexit\n", 2 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint64_t r = run_text(cases[k].text);
        CHECK(r == cases[k].want, "got 0x%" PRIx64 " want 0x%" PRIx64 "\n%s", r, cases[k].want,
              cases[k].text);
    }
    /* the fused form has no and $0xff left (0x81 /4 or 0x25 with imm 0xff) */
    const uint8_t *code;
    size_t len;
    struct gvm_prog *p = NULL;
    run_both("mov r0, 0\nlddw r2, 0x1ff\nand r2, 0xff\njlt r2, 0x30, +1\nmov r0, 1\nexit\n", NULL,
             0, &code, &len, &p);
    if (p) {
        size_t ands = 0;
        for (size_t c = 0; c + 5 < len; c++)
            ands += code[c] == 0x81 && (code[c + 1] & 0xf8) == 0xe0 && code[c + 2] == 0xff
                    && code[c + 3] == 0 && code[c + 4] == 0;
        CHECK(ands == 0, "byte compare: %zu and $0xff left", ands);
        gvm_prog_free(p);
    }
    /* `and r, 1; jne r, 0` (booleans) is one test: no and $1 (0x83 /4 ib) */
    p = NULL;
    run_both("mov r0, 0\nmov r2, 3\nand32 r2, 1\nmov r3, 1\njne r2, 0, +1\nmov r0, 1\n"
             "add r0, r3\nexit\n", NULL, 0, &code, &len, &p);
    if (p) {
        size_t ands = 0;
        for (size_t c = 0; c + 2 < len; c++)
            ands += code[c] == 0x83 && (code[c + 1] & 0xf8) == 0xe0 && code[c + 2] == 1;
        CHECK(ands == 0, "mask test: %zu and $1 left", ands);
        gvm_prog_free(p);
    }
}

/* ---- fill loops as rep stos --------------------------------------------------- */

/* Every store size and loop form of jit_x86_fill.c, on counts either side
 * of its threshold, one store when the index starts at or past the bound,
 * a bound of exactly 2^64 - S (the index wraps around to reach the buffer),
 * the stack as the buffer, the address register read after the loop; the
 * memory and r0 (index and address left by the loop) must match the
 * interpreter's. Memory: 512 bytes at r1, byte k = k. */
static void test_fill_loops(void)
{
    struct { const char *text; bool rep; } cases[] = {
        { "mov r2, 0\nmov r3, 100\nmov r5, 0x1234\nl:\nmov r4, r1\nadd r4, r2\n"
          "stxb [r4+0], r5\nadd r2, 1\njlt r2, r3, l\nmov r0, r4\nsub r0, r1\nlsh r0, 16\n"
          "add r0, r2\nexit\n", true },
        { "mov r2, 3\nmov r3, 3\nl:\nmov r4, r1\nadd r4, r2\nstb [r4+5], 0x77\nadd r2, 1\n"
          "jlt r2, r3, l\nmov r0, r2\nexit\n", false },
        { "mov r2, 40\nmov r3, 7\nl:\nmov r4, r1\nadd r4, r2\nstb [r4+5], 0x77\nadd r2, 1\n"
          "jlt r2, r3, l\nmov r0, r2\nexit\n", false },
        { "mov r2, 0\nmov r3, 31\nl:\nmov r4, r1\nadd r4, r2\nstb [r4+0], -1\nadd r2, 1\n"
          "jlt r2, r3, l\nmov r0, r2\nexit\n", false },
        { "mov r2, 0\nmov r3, 32\nl:\nmov r4, r1\nadd r4, r2\nstb [r4+0], -1\nadd r2, 1\n"
          "jlt r2, r3, l\nmov r0, r2\nexit\n", true },
        { "mov r2, 2\nmov r3, 101\nmov r0, -2\nl:\nmov r4, r1\nadd r4, r2\nstxh [r4+1], r0\n"
          "add r2, 2\njlt r2, r3, l\nmov r0, r2\nexit\n", true },
        { "mov r2, 0\nmov r0, -1\nl:\nmov r4, r1\nadd r4, r2\nstxw [r4+0], r0\nadd r2, 4\n"
          "jne r2, 400, l\nmov r0, r4\nsub r0, r1\nexit\n", true },
        { "mov r2, 8\nlddw r7, 0x0102030405060708\nl:\nmov r4, r1\nadd r4, r2\n"
          "stxdw [r4-8], r7\nadd r2, 8\njeq r2, 264, +1\nja l\nmov r0, r2\nexit\n", true },
        { "mov r2, 8\nl:\nmov r4, r1\nadd r4, r2\nstdw [r4+0], 0\nadd r2, 8\njne r2, 256, l\n"
          "mov r0, r2\nexit\n", false },
        /* an odd start with a 2-byte step (unaligned stores) */
        { "mov r2, 1\nl:\nmov r4, r1\nadd r4, r2\nsth [r4+0], 0x5555\nadd r2, 2\n"
          "jne r2, 301, l\nmov r0, r2\nexit\n", true },
        /* the index starts far below 2^64 and wraps onto the buffer */
        { "mov r5, r1\nadd r5, 300\nmov r2, -300\nmov r3, -4\nmov r0, 0x42\nl:\nmov r4, r5\n"
          "add r4, r2\nstxw [r4+0], r0\nadd r2, 4\njlt r2, r3, l\nmov r0, r2\nexit\n", true },
        /* the stack as the buffer, then read back */
        { "mov r2, -256\nmov r6, 0x3c\nl:\nmov r4, r10\nadd r4, r2\n"
          "stxb [r4+0], r6\nadd r2, 1\njne r2, 0, l\nldxdw r0, [r10-8]\nldxdw r3, [r10-256]\n"
          "add r0, r3\nexit\n", true },
        /* V is r0 / r4 (rax / rcx, which rep stos uses), I is r1's neighbour */
        { "mov r4, 0\nmov r3, 200\nmov r0, 0x99\nmov r6, r1\nl:\nmov r2, r6\nadd r2, r4\n"
          "stxb [r2+0], r0\nadd r4, 1\njlt r4, r3, l\nmov r0, r4\nexit\n", true },
        { "mov r0, 0\nmov r3, 200\nmov r4, 0x5a\nl:\nmov r2, r1\nadd r2, r0\n"
          "stxb [r2+0], r4\nadd r0, 1\njlt r0, r3, l\nexit\n", true },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        static uint8_t mem[512];
        for (int b = 0; b < 512; b++)
            mem[b] = (uint8_t)b;
        const uint8_t *code;
        size_t len;
        struct gvm_prog *p = NULL;
        run_both(cases[k].text, mem, sizeof(mem), &code, &len, &p);
        if (!p)
            continue;
        size_t reps = 0;
        for (size_t c = 0; c + 2 < len; c++)
            reps += code[c] == 0xf3 && (code[c + 1] == 0xaa || code[c + 1] == 0xab
                                        || ((code[c + 1] == 0x48 || code[c + 1] == 0x66)
                                            && code[c + 2] == 0xab));
        CHECK(reps == 1, "fill loop %zu: %zu rep stos\n%s", k, reps, cases[k].text);
        gvm_prog_free(p);
    }
    /* a model for the first: 100 bytes of 0x34, r2 = 100, r4 = r1 + 99 */
    uint8_t mem[512];
    for (int b = 0; b < 512; b++)
        mem[b] = (uint8_t)b;
    uint64_t r = run_both(cases[0].text, mem, sizeof(mem), NULL, NULL, NULL);
    CHECK(r == (99u << 16 | 100u) && mem[0] == 0x34 && mem[99] == 0x34 && mem[100] == 100,
          "fill loop 0: r0 0x%" PRIx64 ", bytes %u %u %u", r, mem[0], mem[99], mem[100]);
}

/* ---- loop latches copied at jumps to them ---------------------------------------- */

/* A loop whose body ends in several places (a switch), each with `goto
 * latch`: the latch (i += 1; if i < n goto head) is copied at each jump.
 * The latch's compare also as an inverted `jcc +1; ja head` and with a
 * cmov inside; in a called function; the fall-through of every copy
 * reaches the code after the latch. */
static uint64_t latch_model(int variant)
{
    uint64_t r0 = 0, r4 = 0;
    for (uint64_t i = 0; i < 20;) {
        uint64_t k = i & 3;
        r0 += k == 0 ? 1 : k == 1 ? i : 100;
        i++;
        if (variant == 2)
            r4 = i > 5 ? r4 : 9;
    }
    return r0 + r4 * 1000;
}

/* add rbx, 1 or inc rbx (rbx is r6) in code */
static size_t count_inc_rbx(const uint8_t *code, size_t len)
{
    size_t n = 0;
    for (size_t k = 0; k + 3 < len; k++)
        n += (code[k] == 0x48 && code[k + 1] == 0xff && code[k + 2] == 0xc3)
             || (code[k] == 0x48 && code[k + 1] == 0x83 && code[k + 2] == 0xc3 && code[k + 3] == 1);
    return n;
}

static void test_latch_copies(void)
{
    static const char body[] =
        "head:\nmov r3, r6\nand r3, 3\njeq r3, 0, c0\njeq r3, 1, c1\nadd r0, 100\nja latch\n"
        "c0:\nadd r0, 1\nja latch\nc1:\nadd r0, r6\nja latch\nout:\nmov r4, r4\nmul r4, 1000\n"
        "add r0, r4\nexit\n";
    static const char *const latches[] = {
        "latch:\nadd r6, 1\njlt r6, r7, head\nja out\n",
        "latch:\nadd r6, 1\njge r6, r7, +1\nja head\nja out\n",
        "latch:\nadd r6, 1\njgt r6, 5, +1\nmov r4, 9\njlt r6, r7, head\nja out\n",
    };
    char text[1024];
    for (int v = 0; v < 3; v++)
        for (int sub = 0; sub < 2; sub++) {
            snprintf(text, sizeof(text), "%smov r0, 0\nmov r6, 0\nmov r7, 20\nmov r4, 0\n"
                     "ja head\n%s%s", sub ? "call f\nexit\nf:\n" : "", latches[v], body);
            const uint8_t *code;
            size_t len;
            struct gvm_prog *p = NULL;
            uint64_t r = run_both(text, NULL, 0, &code, &len, &p);
            CHECK(r == latch_model(v), "latch %d%s: got %" PRIu64 ", want %" PRIu64, v,
                  sub ? " in a function" : "", r, latch_model(v));
            if (!p)
                continue;
            /* once per copy, and once in the latch itself */
            size_t incs = count_inc_rbx(code, len);
            CHECK(incs == 4, "latch %d%s: %zu increments of r6, want 4 (3 copies)", v,
                  sub ? " in a function" : "", incs);
            gvm_prog_free(p);
        }
    /* not copied: a lone compare (a loop guard), a latch too long, a
     * latch ending in something other than a conditional jump, the jump
     * into a loop (before its head: it runs once) */
    static const char *const kept[] = {
        ("mov r0, 0\nmov r6, 0\nloop:\nadd r6, 1\njgt r6, 4, skip\nadd r0, 2\nja l\nskip:\n"
         "add r0, 3\nl:\njlt r6, 9, loop\nexit\n"),
        ("mov r0, 0\nmov r6, 0\nja l\nloop:\nadd r0, 2\nja l\nl:\nadd r6, 1\nadd r0, 1\nadd r0, 1\n"
         "add r0, 1\nadd r0, 1\njlt r6, 9, loop\nexit\n"),
        "mov r0, 0\nmov r6, 0\nja l\nloop:\nadd r0, 2\nja l\nl:\nadd r6, 1\nexit\n",
        "mov r0, 0\nmov r6, 0\nja l\nloop:\nadd r0, 2\nl:\nadd r6, 1\njlt r6, 9, loop\nexit\n",
    };
    static const uint64_t kept_r0[] = { 4 * 2 + 5 * 3, 9 * 4 + 8 * 2, 0, 16 };
    for (int k = 0; k < 4; k++) {
        const uint8_t *code;
        size_t len;
        struct gvm_prog *p = NULL;
        uint64_t r = run_both(kept[k], NULL, 0, &code, &len, &p);
        CHECK(r == kept_r0[k], "kept %d: got %" PRIu64 ", want %" PRIu64, k, r, kept_r0[k]);
        if (!p)
            continue;
        size_t incs = count_inc_rbx(code, len), cmps = 0;
        for (size_t b = 0; b + 3 < len; b++)   /* cmp rbx, 9 */
            cmps += code[b] == 0x48 && code[b + 1] == 0x83 && code[b + 2] == 0xfb && code[b + 3] == 9;
        CHECK(incs == 1 && cmps <= 1, "kept %d: %zu increments of r6, %zu compares with 9, "
              "want 1 and at most 1 (no copy)", k, incs, cmps);
        gvm_prog_free(p);
    }
}

int main(void)
{
    test_host_calls();
    test_direct_frames();
    test_udiv_magic_model();
    test_udiv_const_jit();
    test_sdiv_magic_model();
    test_sdiv_const_jit();
    test_slots();
    test_slot_sharing();
    test_inverted_branches();
    test_repeated_tests();
    test_address_folding();
    test_fold_chain_code();
    test_held_consts();
    test_fill_loops();
    test_byte_compares();
    test_latch_copies();
    if (g_fails) {
        fprintf(stderr, "%d failures\n", g_fails);
        return 1;
    }
    printf("test_jit_opt: ok\n");
    return 0;
}
