/*
 * func_fp_test.c - function hooks give the hooked function and its caller
 * the vector registers the ABI makes live, also where the trampoline skips
 * saving them: around programs that call only GHELPER_F_FP_FREE helpers
 * (ghelper_prog_fp_free; gattach_opts.handler_keeps_fp, as the agent
 * attaches them).
 *
 * At a function's entry the float arguments are in xmm0-7 (ymm0-7 for
 * __m256 arguments) and at its return the result is in xmm0-1 (ymm0-1):
 * those are what an entry (uprobe/override) and a return (uretprobe) hook
 * must keep; the ABI lets the function clobber the others anyway. The
 * caller below loads ymm0-15 (xmm0-15 without AVX) with a pattern and calls
 * fp_target (entry- and return-hooked), which stores ymm0-7 as it finds
 * them and returns a pattern in ymm0-1, which the caller stores after the
 * call. A hook inside a function (fp_mid_at: not an entry, so the C path,
 * which always saves) must keep all sixteen.
 *
 *   common  the FP-free helpers' common paths (pid_tgid, ktime, lookup and
 *           update of a present key): arguments and results intact, upper
 *           halves too (nothing on this path may touch a vector register).
 *   general the same helpers' general paths behind gfp_call (inserts and
 *           deletes under the lock, each new thread's first pid_tgid): the
 *           xmm halves intact (gfp_call saves xmm0-15, as the save would).
 *   forced  the control: a C handler that clobbers every vector register,
 *           attached with handler_keeps_fp (wrongly) must show the damage on
 *           every argument and result - so the check would see a save
 *           skipped wrongly - and attached without it, none (xmm halves).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/vm.h"
#include "fp_util.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

/* fp_call_{sse,avx}(in, out, fn): vector registers 0-15 from in, call fn,
 * registers 0-1 (the result) to out. fp_target{,_avx}: registers 0-7 (the
 * arguments) to fp_seen, the result pattern fp_ret to registers 0-1.
 * fp_mid: xmm0-15 to fp_seen, stored at fp_mid_at, an instruction boundary
 * inside the function. Slots are 32 bytes. */
long fp_call_sse(const void *in, void *out, void (*fn)(void));
long fp_call_avx(const void *in, void *out, void (*fn)(void));
void fp_target(void), fp_target_avx(void), fp_mid(void), fp_mid_at(void);
uint8_t fp_seen[512] __attribute__((aligned(32)));
uint8_t fp_ret[64] __attribute__((aligned(32)));
__asm__(".text\n"
        ".globl fp_call_sse\n .type fp_call_sse, @function\n"
        "fp_call_sse:\n"
        "  push %rbx\n mov %rsi, %rbx\n"
        "  movdqu 0(%rdi), %xmm0\n movdqu 32(%rdi), %xmm1\n movdqu 64(%rdi), %xmm2\n"
        "  movdqu 96(%rdi), %xmm3\n movdqu 128(%rdi), %xmm4\n movdqu 160(%rdi), %xmm5\n"
        "  movdqu 192(%rdi), %xmm6\n movdqu 224(%rdi), %xmm7\n movdqu 256(%rdi), %xmm8\n"
        "  movdqu 288(%rdi), %xmm9\n movdqu 320(%rdi), %xmm10\n movdqu 352(%rdi), %xmm11\n"
        "  movdqu 384(%rdi), %xmm12\n movdqu 416(%rdi), %xmm13\n movdqu 448(%rdi), %xmm14\n"
        "  movdqu 480(%rdi), %xmm15\n"
        "  call *%rdx\n"
        "  movdqu %xmm0, 0(%rbx)\n movdqu %xmm1, 32(%rbx)\n"
        "  pop %rbx\n ret\n"
        ".size fp_call_sse, .-fp_call_sse\n"
        ".globl fp_call_avx\n .type fp_call_avx, @function\n"
        "fp_call_avx:\n"
        "  push %rbx\n mov %rsi, %rbx\n"
        "  vmovdqu 0(%rdi), %ymm0\n vmovdqu 32(%rdi), %ymm1\n vmovdqu 64(%rdi), %ymm2\n"
        "  vmovdqu 96(%rdi), %ymm3\n vmovdqu 128(%rdi), %ymm4\n vmovdqu 160(%rdi), %ymm5\n"
        "  vmovdqu 192(%rdi), %ymm6\n vmovdqu 224(%rdi), %ymm7\n vmovdqu 256(%rdi), %ymm8\n"
        "  vmovdqu 288(%rdi), %ymm9\n vmovdqu 320(%rdi), %ymm10\n vmovdqu 352(%rdi), %ymm11\n"
        "  vmovdqu 384(%rdi), %ymm12\n vmovdqu 416(%rdi), %ymm13\n vmovdqu 448(%rdi), %ymm14\n"
        "  vmovdqu 480(%rdi), %ymm15\n"
        "  call *%rdx\n"
        "  vmovdqu %ymm0, 0(%rbx)\n vmovdqu %ymm1, 32(%rbx)\n"
        "  vzeroupper\n"
        "  pop %rbx\n ret\n"
        ".size fp_call_avx, .-fp_call_avx\n"
        ".globl fp_target\n .type fp_target, @function\n"
        "fp_target:\n"
        "  movdqu %xmm0, fp_seen+0(%rip)\n movdqu %xmm1, fp_seen+32(%rip)\n"
        "  movdqu %xmm2, fp_seen+64(%rip)\n movdqu %xmm3, fp_seen+96(%rip)\n"
        "  movdqu %xmm4, fp_seen+128(%rip)\n movdqu %xmm5, fp_seen+160(%rip)\n"
        "  movdqu %xmm6, fp_seen+192(%rip)\n movdqu %xmm7, fp_seen+224(%rip)\n"
        "  movdqu fp_ret+0(%rip), %xmm0\n movdqu fp_ret+32(%rip), %xmm1\n"
        "  ret\n"
        ".size fp_target, .-fp_target\n"
        ".globl fp_target_avx\n .type fp_target_avx, @function\n"
        "fp_target_avx:\n"
        "  vmovdqu %ymm0, fp_seen+0(%rip)\n vmovdqu %ymm1, fp_seen+32(%rip)\n"
        "  vmovdqu %ymm2, fp_seen+64(%rip)\n vmovdqu %ymm3, fp_seen+96(%rip)\n"
        "  vmovdqu %ymm4, fp_seen+128(%rip)\n vmovdqu %ymm5, fp_seen+160(%rip)\n"
        "  vmovdqu %ymm6, fp_seen+192(%rip)\n vmovdqu %ymm7, fp_seen+224(%rip)\n"
        "  vmovdqu fp_ret+0(%rip), %ymm0\n vmovdqu fp_ret+32(%rip), %ymm1\n"
        "  ret\n"
        ".size fp_target_avx, .-fp_target_avx\n"
        ".globl fp_mid\n .globl fp_mid_at\n .type fp_mid, @function\n"
        "fp_mid:\n"
        "  mov %rdi, %rax\n mov %rsi, %rcx\n"
        "fp_mid_at:\n"
        "  movdqu %xmm0, fp_seen+0(%rip)\n movdqu %xmm1, fp_seen+32(%rip)\n"
        "  movdqu %xmm2, fp_seen+64(%rip)\n movdqu %xmm3, fp_seen+96(%rip)\n"
        "  movdqu %xmm4, fp_seen+128(%rip)\n movdqu %xmm5, fp_seen+160(%rip)\n"
        "  movdqu %xmm6, fp_seen+192(%rip)\n movdqu %xmm7, fp_seen+224(%rip)\n"
        "  movdqu %xmm8, fp_seen+256(%rip)\n movdqu %xmm9, fp_seen+288(%rip)\n"
        "  movdqu %xmm10, fp_seen+320(%rip)\n movdqu %xmm11, fp_seen+352(%rip)\n"
        "  movdqu %xmm12, fp_seen+384(%rip)\n movdqu %xmm13, fp_seen+416(%rip)\n"
        "  movdqu %xmm14, fp_seen+448(%rip)\n movdqu %xmm15, fp_seen+480(%rip)\n"
        "  ret\n"
        ".size fp_mid, .-fp_mid\n");

static int has_avx;

struct checked {
    void (*fn)(void);
    long n;
};

/* n calls of fn (fp_target: arguments 0-7 and results 0-1 checked;
 * fp_mid: all sixteen at fp_mid_at) with fresh patterns */
static void run_checked(void *arg, struct fp_damage *d)
{
    const struct checked *c = arg;
    void (*fn)(void) = c->fn;
    long n = c->n;
    uint8_t in[512], out[64];
    int mid = fn == fp_mid;
    if (fn == fp_target && has_avx)
        fn = fp_target_avx;
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < 512; k++)
            in[k] = (uint8_t)(k * 7 + i * 13 + 1);
        for (int k = 0; k < 64; k++)
            fp_ret[k] = (uint8_t)(k * 5 + i * 3 + 2);
        if (!has_avx)   /* the SSE caller loads and stores the low halves only */
            for (int k = 0; k < 512; k += 32)
                memset(in + k + 16, 0, 16);
        memset(out, 0, sizeof(out));
        memset(fp_seen, 0, sizeof(fp_seen));
        if (has_avx)
            fp_call_avx(in, out, fn);
        else
            fp_call_sse(in, out, fn);
        d->calls++;
        /* fp_mid stores the low halves only */
        fp_compare(in, fp_seen, mid ? 16 : 8, 32, has_avx && !mid, mid ? "inside:" : "argument",
                   i, d);
        if (!mid)
            fp_compare(fp_ret, out, 2, 32, has_avx, "result", i, d);
    }
}

/* ---- programs ------------------------------------------------------------- */

/* map:1 HASH u32 -> u64 (1024), map:2 HASH (64 entries: fills), map:3
 * ARRAY of 4 u64 run counts */
static struct gmap *maps[4];


/* runs[0] += 1 (the JIT inlines array lookups: no call) */
#define COUNT_RUN \
    "stw [r10-60], 0\n lddw r1, map:3\n mov r2, r10\n add r2, -60\n call 1\n" \
    "jeq r0, 0, +2\n mov r1, 1\n lock add [r0+0], r1\n"

/* pid_tgid, ktime, update and lookup of a present key (after the first) */
static const char *common_prog =
    "call 14\n"
    "stxw [r10-12], r0\n"
    "call 5\n"
    "stxdw [r10-8], r0\n"
    "lddw r1, map:1\n mov r2, r10\n add r2, -12\n mov r3, r10\n add r3, -8\n mov r4, 0\n"
    "call 2\n"
    "lddw r1, map:1\n mov r2, r10\n add r2, -12\n"
    "call 1\n"
    COUNT_RUN
    "mov r0, 0\n exit\n";
/* a key that changes every call (inserts; the map fills, so some updates
 * fail with E2BIG), then deletes of another */
static const char *general_prog =
    "call 14\n"
    "call 5\n"
    "stxdw [r10-8], r0\n"
    "rsh r0, 3\n and r0, 127\n stxw [r10-12], r0\n"
    "lddw r1, map:2\n mov r2, r10\n add r2, -12\n mov r3, r10\n add r3, -8\n mov r4, 0\n"
    "call 2\n"
    "ldxdw r0, [r10-8]\n rsh r0, 5\n and r0, 127\n stxw [r10-12], r0\n"
    "lddw r1, map:2\n mov r2, r10\n add r2, -12\n"
    "call 3\n"
    COUNT_RUN
    "mov r0, 0\n exit\n";

static struct gvm_prog *jit(const char *text, int *fp_free)
{
    return fp_jit(text, maps, (int)(sizeof(maps) / sizeof(maps[0])), fp_free);
}

static uint64_t runs(void)
{
    uint32_t k = 0;
    uint64_t *v = gmap_lookup(maps[3], &k), r = v ? *v : 0;
    if (v)
        *v = 0;
    return r;
}

/* the control: clobbers every vector register (upper halves too) */
static uint64_t clobber_all(void *ctx, uint64_t len)
{
    (void)ctx;
    (void)len;
    fp_clobber_vectors(has_avx);
    uint32_t k = 0;
    uint64_t *v = gmap_lookup(maps[3], &k);
    if (v)
        __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Hook fn's address (fp_target: entry and return; fp_mid: fp_mid_at) with
 * h, run n checked calls here and on `threads` new threads, unhook. */
static struct fp_damage run_hooked(const char *what, void (*fn)(void), ghook_handler h, int keeps,
                                   long n, int threads)
{
    struct graft_err err = {0};
    struct gattach_opts o = {.sz = sizeof(o), .handler_keeps_fp = keeps};
    struct ghook *e = NULL, *r = NULL;
    struct fp_damage d = {0};
    void *at = fn == fp_mid ? (void *)fp_mid_at : (void *)(has_avx ? fp_target_avx : fp_target);
    if (gattach_install(at, GHOOK_ENTRY, h, 0, &o, &e, &err) < 0 ||
        (fn != fp_mid && gattach_install(at, GHOOK_RETURN, h, 0, &o, &r, &err) < 0)) {
        CHECK(0, "%s: attach: %s", what, err.msg);
        return d;
    }
    CHECK(fn == fp_mid || gattach_hook_method(e) == GATTACH_METHOD_JUMP,
          "%s: not a jump hook (%s)", what, gattach_hook_note(e));
    runs();
    d = fp_on_threads(run_checked, &(struct checked){.fn = fn, .n = n}, threads);
    uint64_t ran = runs(), want = (uint64_t)d.calls * (fn == fp_mid ? 1 : 2);
    CHECK(ran == want, "%s: handlers ran %llu times, want %llu", what, (unsigned long long)ran,
          (unsigned long long)want);
    if (r)
        gattach_remove(r, NULL);
    gattach_remove(e, NULL);
    printf("%-48s %ld calls, %ld xmm, %ld upper halves changed\n", what, d.calls, d.xmm_bad,
           d.upper_bad);
    return d;
}


int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    has_avx = fp_cpu_has_avx();
    printf("checking %s\n", has_avx ? "ymm (xmm and upper halves)" : "xmm (no AVX)");
    maps[1] = fp_make_map(GMAP_HASH, 8, 1024);
    maps[2] = fp_make_map(GMAP_HASH, 8, 64);
    maps[3] = fp_make_map(GMAP_ARRAY, 8, 4);
    int ff[2];
    struct gvm_prog *pc = jit(common_prog, &ff[0]), *pg = jit(general_prog, &ff[1]);
    CHECK(ff[0] && ff[1], "ghelper_prog_fp_free: %d %d, want 1 1", ff[0], ff[1]);
    ghelper_time_init();
    ghook_handler common = (ghook_handler)gvm_prog_native(pc);
    ghook_handler general = (ghook_handler)gvm_prog_native(pg);

    struct fp_damage d = run_hooked("common paths, no save", fp_target, common, 1, 20000, 2);
    CHECK(d.xmm_bad == 0 && d.upper_bad == 0, "common: %ld xmm, %ld upper halves changed (%s)",
          d.xmm_bad, d.upper_bad, d.first);
    d = run_hooked("general paths (gfp_call), no save", fp_target, general, 1, 20000, 4);
    CHECK(d.xmm_bad == 0, "general: %ld xmm changed (%s)", d.xmm_bad, d.first);
    d = run_hooked("inside a function (C path), keeps_fp", fp_mid, common, 1, 5000, 1);
    CHECK(d.xmm_bad == 0, "inside: %ld xmm changed (%s)", d.xmm_bad, d.first);

    /* the control: the check sees a save skipped wrongly ... */
    d = run_hooked("forced (clobbering handler, keeps_fp)", fp_target, clobber_all, 1, 200, 0);
    CHECK(d.xmm_bad == 10 * d.calls, "forced: only %ld of %ld xmm changes seen", d.xmm_bad,
          10 * d.calls);
    if (has_avx)
        CHECK(d.upper_bad == 10 * d.calls, "forced: only %ld of %ld upper-half changes seen",
              d.upper_bad, 10 * d.calls);
    /* ... and the save keeps xmm0-7 / xmm0-1 after the same handler */
    d = run_hooked("clobbering handler, saved", fp_target, clobber_all, 0, 200, 0);
    CHECK(d.xmm_bad == 0, "saved: %ld xmm changed (%s)", d.xmm_bad, d.first);
    d = run_hooked("clobbering handler inside a function, keeps_fp", fp_mid, clobber_all, 1,
                   200, 0);
    CHECK(d.xmm_bad == 0, "inside, clobbering: %ld xmm changed (%s)", d.xmm_bad, d.first);

    gvm_prog_free(pc);
    gvm_prog_free(pg);
    printf("func_fp: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
