/*
 * syscall_fp_test.c - the syscall hooks give a syscall's caller its vector
 * registers back as they were, also where they skip saving them: around
 * programs that call only GHELPER_F_FP_FREE helpers (ghelper_prog_fp_free,
 * attached with handler_keeps_fp as the agent attaches them).
 *
 * A thread loads xmm0-15 (ymm0-15 where the CPU has AVX: the upper halves
 * too, which no path saves, so nothing on the save-free path may touch
 * them - a vzeroupper would clear them) with a pattern, makes a syscall
 * through the hook (the syscall instruction is in this binary, rewritten)
 * and compares all of them afterwards. Programs, JIT-compiled:
 *
 *   fast    the syscount pair (enter: pid_tgid, ktime, update of a present
 *           key; exit: lookup, ktime, update) on every syscall: the PAIR
 *           path without the save, the helpers' common paths. ymm checked.
 *   slow    the same helpers on their general paths, entered through
 *           gfp_call: inserts and deletes under the map's lock, an LRU map,
 *           each thread's first pid_tgid (new threads). xmm0-15 checked
 *           (gfp_call saves those; ymm's upper halves are left to libc, as
 *           on every path that saves).
 *   fp      a program that calls helpers that are not FP-free
 *           (probe_read_user of 256 bytes, get_current_comm): attached with
 *           the xmm save, xmm0-15 checked.
 *   forced  the control: a C handler that clobbers every vector register,
 *           attached with handler_keeps_fp (wrongly): the check must see
 *           the damage - so it would see a save skipped wrongly - and with
 *           the save: no damage to xmm0-15.
 *
 * Each also checks the programs ran (counts) from the assembly path (their
 * context lies close under the caller's stack, not in the C dispatcher).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/vm.h"
#include "fp_util.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

/* fp_syscall_*(in, out, nr): vector registers from in, syscall nr (no
 * arguments), vector registers to out; returns the syscall's result. The
 * syscall instruction is in this binary's text: gsys_install rewrites it. */
long fp_syscall_sse(const void *in, void *out, long nr);
long fp_syscall_avx(const void *in, void *out, long nr);
__asm__(".text\n"
        ".globl fp_syscall_sse\n .type fp_syscall_sse, @function\n"
        "fp_syscall_sse:\n"
        "  push %rbx\n mov %rsi, %rbx\n"
        "  movdqu 0(%rdi), %xmm0\n movdqu 16(%rdi), %xmm1\n movdqu 32(%rdi), %xmm2\n"
        "  movdqu 48(%rdi), %xmm3\n movdqu 64(%rdi), %xmm4\n movdqu 80(%rdi), %xmm5\n"
        "  movdqu 96(%rdi), %xmm6\n movdqu 112(%rdi), %xmm7\n movdqu 128(%rdi), %xmm8\n"
        "  movdqu 144(%rdi), %xmm9\n movdqu 160(%rdi), %xmm10\n movdqu 176(%rdi), %xmm11\n"
        "  movdqu 192(%rdi), %xmm12\n movdqu 208(%rdi), %xmm13\n movdqu 224(%rdi), %xmm14\n"
        "  movdqu 240(%rdi), %xmm15\n"
        "  mov %rdx, %rax\n"
        "  syscall\n"
        "  movdqu %xmm0, 0(%rbx)\n movdqu %xmm1, 16(%rbx)\n movdqu %xmm2, 32(%rbx)\n"
        "  movdqu %xmm3, 48(%rbx)\n movdqu %xmm4, 64(%rbx)\n movdqu %xmm5, 80(%rbx)\n"
        "  movdqu %xmm6, 96(%rbx)\n movdqu %xmm7, 112(%rbx)\n movdqu %xmm8, 128(%rbx)\n"
        "  movdqu %xmm9, 144(%rbx)\n movdqu %xmm10, 160(%rbx)\n movdqu %xmm11, 176(%rbx)\n"
        "  movdqu %xmm12, 192(%rbx)\n movdqu %xmm13, 208(%rbx)\n movdqu %xmm14, 224(%rbx)\n"
        "  movdqu %xmm15, 240(%rbx)\n"
        "  pop %rbx\n ret\n"
        ".size fp_syscall_sse, .-fp_syscall_sse\n"
        ".globl fp_syscall_avx\n .type fp_syscall_avx, @function\n"
        "fp_syscall_avx:\n"
        "  push %rbx\n mov %rsi, %rbx\n"
        "  vmovdqu 0(%rdi), %ymm0\n vmovdqu 32(%rdi), %ymm1\n vmovdqu 64(%rdi), %ymm2\n"
        "  vmovdqu 96(%rdi), %ymm3\n vmovdqu 128(%rdi), %ymm4\n vmovdqu 160(%rdi), %ymm5\n"
        "  vmovdqu 192(%rdi), %ymm6\n vmovdqu 224(%rdi), %ymm7\n vmovdqu 256(%rdi), %ymm8\n"
        "  vmovdqu 288(%rdi), %ymm9\n vmovdqu 320(%rdi), %ymm10\n vmovdqu 352(%rdi), %ymm11\n"
        "  vmovdqu 384(%rdi), %ymm12\n vmovdqu 416(%rdi), %ymm13\n vmovdqu 448(%rdi), %ymm14\n"
        "  vmovdqu 480(%rdi), %ymm15\n"
        "  mov %rdx, %rax\n"
        "  syscall\n"
        "  vmovdqu %ymm0, 0(%rbx)\n vmovdqu %ymm1, 32(%rbx)\n vmovdqu %ymm2, 64(%rbx)\n"
        "  vmovdqu %ymm3, 96(%rbx)\n vmovdqu %ymm4, 128(%rbx)\n vmovdqu %ymm5, 160(%rbx)\n"
        "  vmovdqu %ymm6, 192(%rbx)\n vmovdqu %ymm7, 224(%rbx)\n vmovdqu %ymm8, 256(%rbx)\n"
        "  vmovdqu %ymm9, 288(%rbx)\n vmovdqu %ymm10, 320(%rbx)\n vmovdqu %ymm11, 352(%rbx)\n"
        "  vmovdqu %ymm12, 384(%rbx)\n vmovdqu %ymm13, 416(%rbx)\n vmovdqu %ymm14, 448(%rbx)\n"
        "  vmovdqu %ymm15, 480(%rbx)\n"
        "  vzeroupper\n"
        "  pop %rbx\n ret\n"
        ".size fp_syscall_avx, .-fp_syscall_avx\n");

static int has_avx;

/* n syscalls (getppid) with fresh patterns; counts registers changed:
 * xmm (low 16 bytes) and, with AVX, the upper halves. */
static void run_checked(void *arg, struct fp_damage *d)
{
    long n = *(long *)arg;
    uint8_t in[512], out[512];
    long ppid = getppid();
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < 512; k++)
            in[k] = (uint8_t)(k * 7 + i * 13 + 1);
        memset(out, 0, sizeof(out));
        /* a stale override in this thread's run state: the paths must
         * clear it before they run a program */
        struct ghelper_run *rs = ghelper_run_state();
        rs->override_set = 1;
        rs->override_value = 12345;
        long r = has_avx ? fp_syscall_avx(in, out, SYS_getppid) : fp_syscall_sse(in, out, SYS_getppid);
        rs->override_set = 0;   /* before printing: write(2) goes through the hook */
        if (r != ppid)
            CHECK(0, "getppid returned %ld, want %ld", r, ppid);
        d->calls++;
        fp_compare(in, out, 16, has_avx ? 32 : 16, has_avx, NULL, i, d);
    }
}

/* ---- programs ------------------------------------------------------------- */

/* map:1 start (HASH u32 -> u64), map:2 scratch (HASH, 64 entries), map:3
 * an LRU_HASH, map:4 where (ARRAY of 4 u64: the enter context's address,
 * enter runs, exit runs) */
static struct gmap *maps[5];
static uint8_t user_buf[256];


/* where[slot] += 1 (the JIT inlines array lookups: no call) */
#define COUNT_RUN(slot) \
    "stw [r10-60], " #slot "\n lddw r1, map:4\n mov r2, r10\n add r2, -60\n call 1\n" \
    "jeq r0, 0, +2\n mov r1, 1\n lock add [r0+0], r1\n"
/* where[0] = ctx (r6) */
#define STORE_CTX \
    "stw [r10-60], 0\n lddw r1, map:4\n mov r2, r10\n add r2, -60\n call 1\n" \
    "jeq r0, 0, +1\n stxdw [r0+0], r6\n"

/* syscount's enter and exit (bench/syscalls/syscount_bench.c) */
static const char *fast_enter =
    "mov r6, r1\n"
    "call 14\n"
    "stxw [r10-12], r0\n"
    "call 5\n"
    "stxdw [r10-8], r0\n"
    "lddw r1, map:1\n mov r2, r10\n add r2, -12\n mov r3, r10\n add r3, -8\n mov r4, 0\n"
    "call 2\n"
    STORE_CTX
    COUNT_RUN(1)
    "mov r0, 0\n exit\n";
static const char *fast_exit =
    "mov r6, r1\n"
    "call 14\n"
    "stxw [r10-4], r0\n"
    "lddw r1, map:1\n mov r2, r10\n add r2, -4\n"
    "call 1\n"
    "jeq r0, 0, out\n"
    "ldxdw r7, [r0+0]\n"
    "call 5\n"
    "sub r0, r7\n"
    "stxdw [r10-16], r0\n"
    "stw [r10-20], 7\n"            /* a fixed key: present after the first */
    "lddw r1, map:2\n mov r2, r10\n add r2, -20\n mov r3, r10\n add r3, -16\n mov r4, 0\n"
    "call 2\n"
    "out:\n"
    COUNT_RUN(2)
    "mov r0, 0\n exit\n";

/* The general paths: a key that changes every call (inserts; the map
 * fills, so some updates fail with E2BIG, also a general path), deletes,
 * LRU lookups and updates. */
static const char *slow_enter =
    "mov r6, r1\n"
    "call 14\n"
    "call 5\n"
    "stxdw [r10-8], r0\n"
    "rsh r0, 3\n and r0, 127\n stxw [r10-12], r0\n"
    "lddw r1, map:2\n mov r2, r10\n add r2, -12\n mov r3, r10\n add r3, -8\n mov r4, 0\n"
    "call 2\n"
    "lddw r1, map:3\n mov r2, r10\n add r2, -12\n mov r3, r10\n add r3, -8\n mov r4, 0\n"
    "call 2\n"
    "lddw r1, map:3\n mov r2, r10\n add r2, -12\n"
    "call 1\n"
    STORE_CTX
    COUNT_RUN(1)
    "mov r0, 0\n exit\n";
static const char *slow_exit =
    "call 5\n"
    "rsh r0, 5\n and r0, 127\n stxw [r10-12], r0\n"
    "lddw r1, map:2\n mov r2, r10\n add r2, -12\n"
    "call 3\n"
    "lddw r1, map:3\n mov r2, r10\n add r2, -12\n"
    "call 3\n"
    COUNT_RUN(2)
    "mov r0, 0\n exit\n";

/* probe_read_user of 256 bytes to the stack, get_current_comm: helpers
 * that are not FP-free */
static char fp_enter_text[1024];
static const char *fp_enter_fmt =
    "mov r6, r1\n"
    "mov r1, r10\n add r1, -256\n mov r2, 256\n lddw r3, %#lx\n"
    "call 112\n"
    "mov r1, r10\n add r1, -256\n mov r2, 16\n"
    "call 16\n"
    STORE_CTX
    COUNT_RUN(1)
    "mov r0, 0\n exit\n";

static struct gvm_prog *jit(const char *text, int *fp_free)
{
    return fp_jit(text, maps, (int)(sizeof(maps) / sizeof(maps[0])), fp_free);
}

static uint64_t where(uint32_t slot)
{
    uint64_t *v = gmap_lookup(maps[4], &slot);
    return v ? *v : 0;
}

static void reset_where(void)
{
    for (uint32_t k = 0; k < 4; k++) {
        uint64_t z = 0;
        gmap_update(maps[4], &k, &z, 0);
    }
}

/* How far below a frame of the syscall's caller the enter program's
 * context was: the assembly paths build it right under the red zone. */
static long ctx_depth(void)
{
    volatile char here;
    struct fp_damage d = {0};
    long one = 1;
    run_checked(&one, &d);
    return (long)((uintptr_t)&here - (uintptr_t)where(0));
}

static uint64_t noop(void *ctx, uint64_t len)
{
    (void)ctx;
    (void)len;
    return 0;
}

/* Attach enter (and exit) on every syscall as the agent does, run the
 * checked syscalls, detach; returns the damage seen. */
static struct fp_damage run_pair(const char *what, gsys_handler enter, int enter_keeps,
                                 gsys_handler exit_fn, int exit_keeps, long n, int threads)
{
    struct graft_err err = {0};
    struct gsys_attach_opts oe = {.sz = sizeof(oe), .handler_keeps_fp = enter_keeps};
    struct gsys_attach_opts ox = {.sz = sizeof(ox), .handler_keeps_fp = exit_keeps};
    struct gsys_link *le = NULL, *lx = NULL;
    reset_where();
    if (gsys_attach_opts(GSYS_ENTER, -1, enter, &oe, &le, &err) < 0 ||
        (exit_fn && gsys_attach_opts(GSYS_EXIT, -1, exit_fn, &ox, &lx, &err) < 0)) {
        printf("FAIL %s: gsys_attach: %s\n", what, err.msg);
        exit(1);
    }
    long depth = ctx_depth();
    /* the same with one more program: through the C dispatcher */
    struct gsys_link *lc = NULL;
    long c_depth = 0;
    if (gsys_attach(GSYS_ENTER, -1, noop, 0, &lc, &err) == 0) {
        c_depth = ctx_depth();
        gsys_detach(lc);
    }
    reset_where();
    struct fp_damage d = fp_on_threads(run_checked, &n, threads);
    gsys_detach(le);
    if (lx)
        gsys_detach(lx);
    uint64_t runs_enter = where(1), runs_exit = where(2);
    long want = d.calls;
    CHECK((long)runs_enter >= want && (!exit_fn || (long)runs_exit >= want),
          "%s: programs ran %lu / %lu times for %ld checked syscalls", what,
          (unsigned long)runs_enter, (unsigned long)runs_exit, want);
    CHECK(depth > 0 && depth < c_depth, "%s: the assembly path was not taken (context %ld bytes "
          "below the caller, %ld through the C dispatcher)", what, depth, c_depth);
    printf("%s: %ld syscalls, %ld xmm and %ld upper halves changed%s%s; context %ld bytes "
           "down (%ld through C)\n", what, d.calls, d.xmm_bad, d.upper_bad,
           d.first[0] ? ": first " : "", d.first, depth, c_depth);
    return d;
}

/* ---- the control: a handler that clobbers every vector register ----------- */

static _Atomic long clobber_runs;

static uint64_t clobber_all(void *ctx, uint64_t len)
{
    (void)ctx;
    (void)len;
    fp_clobber_vectors(has_avx);
    atomic_fetch_add_explicit(&clobber_runs, 1, memory_order_relaxed);
    /* ctx (for ctx_depth) and the run count as the programs keep them */
    uint32_t k = 0;
    uint64_t *v = gmap_lookup(maps[4], &k);
    if (v)
        *v = (uint64_t)(uintptr_t)ctx;
    k = 1;
    if ((v = gmap_lookup(maps[4], &k)))
        __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    has_avx = fp_cpu_has_avx();
    printf("checking %s\n", has_avx ? "ymm0-15 (xmm and upper halves)" : "xmm0-15 (no AVX)");
    maps[1] = fp_make_map(GMAP_HASH, 8, 1024);
    maps[2] = fp_make_map(GMAP_HASH, 8, 64);
    maps[3] = fp_make_map(GMAP_LRU_HASH, 8, 64);
    maps[4] = fp_make_map(GMAP_ARRAY, 8, 4);
    for (int i = 0; i < 256; i++)
        user_buf[i] = (uint8_t)i;
    snprintf(fp_enter_text, sizeof(fp_enter_text), fp_enter_fmt,
             (unsigned long)(uintptr_t)user_buf);

    int ff[5];
    struct gvm_prog *p_fe = jit(fast_enter, &ff[0]), *p_fx = jit(fast_exit, &ff[1]);
    struct gvm_prog *p_se = jit(slow_enter, &ff[2]), *p_sx = jit(slow_exit, &ff[3]);
    struct gvm_prog *p_fp = jit(fp_enter_text, &ff[4]);
    CHECK(ff[0] && ff[1] && ff[2] && ff[3], "ghelper_prog_fp_free: %d %d %d %d, want all 1",
          ff[0], ff[1], ff[2], ff[3]);
    CHECK(!ff[4], "ghelper_prog_fp_free of a program calling probe_read_user: %d", ff[4]);
    ghelper_time_init();

    struct graft_err err = {0};
    if (gsys_install(NULL, &err) < 0) {
        printf("FAIL install: %s\n", err.msg);
        return 1;
    }
    CHECK(strcmp(gsys_method(), "zpoline") == 0, "method %s", gsys_method());

    gsys_handler fe = (gsys_handler)gvm_prog_native(p_fe), fx = (gsys_handler)gvm_prog_native(p_fx);
    gsys_handler se = (gsys_handler)gvm_prog_native(p_se), sx = (gsys_handler)gvm_prog_native(p_sx);
    gsys_handler fp = (gsys_handler)gvm_prog_native(p_fp);

    /* fast: every register, upper halves included, intact */
    struct fp_damage d = run_pair("fast", fe, ff[0], fx, ff[1], 20000, 2);
    CHECK(d.xmm_bad == 0 && d.upper_bad == 0, "fast: %ld xmm, %ld upper halves changed (%s)",
          d.xmm_bad, d.upper_bad, d.first);
    /* also as CALLS (an enter program alone) */
    d = run_pair("fast enter alone", fe, ff[0], NULL, 0, 5000, 1);
    CHECK(d.xmm_bad == 0 && d.upper_bad == 0, "fast enter alone: %ld xmm, %ld upper halves "
          "changed (%s)", d.xmm_bad, d.upper_bad, d.first);
    /* slow: the general paths behind gfp_call keep xmm0-15 */
    d = run_pair("slow", se, ff[2], sx, ff[3], 20000, 4);
    CHECK(d.xmm_bad == 0, "slow: %ld xmm changed (%s)", d.xmm_bad, d.first);
    /* a program whose helpers need the save gets it */
    d = run_pair("fp helpers", fp, ff[4], NULL, 0, 5000, 1);
    CHECK(d.xmm_bad == 0, "fp helpers: %ld xmm changed (%s)", d.xmm_bad, d.first);
    d = run_pair("fp helpers pair", fp, ff[4], fx, ff[1], 5000, 1);
    CHECK(d.xmm_bad == 0, "fp helpers pair: %ld xmm changed (%s)", d.xmm_bad, d.first);

    /* the control: the check sees a save skipped wrongly ... */
    d = run_pair("forced (clobbering handler, handler_keeps_fp)", clobber_all, 1, NULL, 0, 200, 0);
    CHECK(d.xmm_bad == 16 * d.calls, "forced: only %ld of %ld xmm changes seen", d.xmm_bad,
          16 * d.calls);
    if (has_avx)
        CHECK(d.upper_bad == 16 * d.calls, "forced: only %ld of %ld upper-half changes seen",
              d.upper_bad, 16 * d.calls);
    d = run_pair("forced pair", clobber_all, 1, fx, ff[1], 200, 0);
    CHECK(d.xmm_bad == 16 * d.calls, "forced pair: only %ld of %ld xmm changes seen",
          d.xmm_bad, 16 * d.calls);
    /* ... and the save restores xmm0-15 after the same handler */
    d = run_pair("clobbering handler, saved", clobber_all, 0, NULL, 0, 200, 0);
    CHECK(d.xmm_bad == 0, "saved: %ld xmm changed (%s)", d.xmm_bad, d.first);
    d = run_pair("clobbering handler, saved, pair with an FP-free exit", clobber_all, 0, fx, 1,
                 200, 0);
    CHECK(d.xmm_bad == 0, "saved pair: %ld xmm changed (%s)", d.xmm_bad, d.first);

    gsys_uninstall();
    gvm_prog_free(p_fe);
    gvm_prog_free(p_fx);
    gvm_prog_free(p_se);
    gvm_prog_free(p_sx);
    gvm_prog_free(p_fp);
    printf("syscall_fp: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
