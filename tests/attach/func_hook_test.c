/*
 * func_hook_test.c - function hooks end to end: resolve, entry / return /
 * override / replace, relocation of awkward entries, the int3 fallback,
 * handler order, recursion, longjmp, libc hooks, a JIT'd program as handler,
 * and 8 threads calling a function while it is attached and detached 1,000
 * times.
 *
 * argv[1]: directory holding the libfunc_target_*.so variants (gcc/clang,
 * -O0/-O2, with/without -fcf-protection).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "vm/vm.h"
#include "tiso.h"

static int g_fail, g_checks;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        g_checks++;                                                           \
        if (!(cond)) {                                                        \
            g_fail++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)
#define MUST(expr)                                                            \
    do {                                                                      \
        struct graft_err e_ = { 0 };                                          \
        int rc_ = (expr);                                                     \
        if (rc_ < 0) {                                                        \
            fprintf(stderr, "FATAL %s:%d: %s: %d %s\n", __FILE__, __LINE__,   \
                    #expr, rc_, e_.msg);                                      \
            exit(1);                                                          \
        }                                                                     \
    } while (0)
#define E (&e_)

/* ---- recording handlers ---------------------------------------------------- */

#define REC_MAX 64
static _Atomic uint64_t n_entry, n_ret;
static uint64_t last_di, last_si, last_ax, last_ip, last_cookie;
static uint64_t order[REC_MAX];
static int n_order;

static uint64_t h_entry(void *ctx, uint64_t len)
{
    struct graft_pt_regs *r = ctx;
    last_di = r->di;
    last_si = r->si;
    last_ip = r->ip;
    last_cookie = ghelper_run_state()->cookie;
    atomic_fetch_add(&n_entry, 1);
    return len == sizeof(struct graft_pt_regs) ? 0 : 1;
}

static uint64_t h_ret(void *ctx, uint64_t len)
{
    struct graft_pt_regs *r = ctx;
    last_ax = r->ax;
    atomic_fetch_add(&n_ret, 1);
    return 0;
}

static uint64_t h_order(void *ctx, uint64_t len)
{
    if (n_order < REC_MAX)
        order[n_order++] = ghelper_run_state()->cookie;
    return 0;
}

/* What bpf_override_return does: di == 5 -> return 4242 without running. */
static uint64_t h_override(void *ctx, uint64_t len)
{
    struct graft_pt_regs *r = ctx;
    if (r->di == 5) {
        ghelper_run_state()->override_set = 1;
        ghelper_run_state()->override_value = 4242;
    }
    return 0;
}

static uint64_t h_replace(void *ctx, uint64_t len)
{
    struct graft_pt_regs *r = ctx;
    return r->di * 1000 + r->si;
}

static uint64_t h_mt_count(void *ctx, uint64_t len)
{
    atomic_fetch_add(&n_entry, 1);
    return 0;
}

static void reset(void)
{
    n_entry = n_ret = 0;
    last_di = last_si = last_ax = last_ip = last_cookie = 0;
    n_order = 0;
}

/* ---- pieces ------------------------------------------------------------------ */

typedef long (*fn1)(long);
typedef long (*fn2)(long, long);

extern int asm_riprel(int), asm_lea(int), asm_branch(int), asm_endbr(int),
    asm_call(int), asm_short(void), asm_loop(int), asm_tail_a(int), asm_tail_b(int),
    asm_stripped(int, int);
extern char asm_stripped_mid[];
extern int asm_g;

static struct ghook *hook(void *addr, enum ghook_kind k, ghook_handler fn, uint64_t cookie)
{
    struct ghook *h = NULL;
    MUST(gattach_install(addr, k, fn, cookie, NULL, &h, E));
    return h;
}

static void unhook(struct ghook *h)
{
    MUST(gattach_remove(h, E));
}

static __attribute__((noinline)) int local_static_fn(int x)
{
    __asm__ volatile("");
    return x ^ 0x55;
}
static int (*volatile local_fn_p)(int) = local_static_fn;

__attribute__((noinline)) long jit_two(long a, long b)
{
    __asm__ volatile("");
    return a - b;
}

static void test_resolve(void)
{
    struct graft_err err = { 0 };
    void *a = NULL;
    uint64_t size = 0;
    CHECK(gattach_resolve_sym(NULL, "local_static_fn", 0, &a, &size, &err) == 0, "%s", err.msg);
    CHECK(a == (void *)local_static_fn, "static symbol %p vs %p", a, (void *)local_static_fn);
    CHECK(size > 0, "size of local_static_fn");
    CHECK(gattach_resolve(NULL, "asm_riprel", 0, &a, &err) == 0 && a == (void *)asm_riprel,
          "asm_riprel: %s", err.msg);
    /* compare with libc's own definition (in a non-PIE binary
     * dlsym(RTLD_DEFAULT) may give the executable's PLT entry) */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK(gattach_resolve("libc.so.6", "malloc", 0, &a, &err) == 0 &&
          a == dlsym(libc, "malloc"), "libc malloc %p: %s", a, err.msg);
    CHECK(gattach_resolve("libc", "getpid", 0, &a, &err) == 0 &&
          a == dlsym(libc, "getpid"), "libc getpid: %s", err.msg);
    dlclose(libc);
    CHECK(gattach_resolve(NULL, "no_such_symbol_xyz", 0, &a, &err) == -ENOENT &&
          strstr(err.msg, "no_such_symbol_xyz"), "missing symbol: %s", err.msg);
    CHECK(gattach_resolve("libnotloaded.so", "f", 0, &a, &err) == -ENOENT &&
          strstr(err.msg, "not mapped"), "missing lib: %s", err.msg);
    CHECK(gattach_resolve(NULL, "asm_loop", 2, &a, &err) == 0 && a == (char *)asm_loop + 2,
          "offset");
}

static void test_asm_entries(void)
{
    struct {
        const char *name;
        void *fn;
        enum gattach_method want;
    } t[] = {
        { "asm_riprel", (void *)asm_riprel, GATTACH_METHOD_JUMP },
        { "asm_lea", (void *)asm_lea, GATTACH_METHOD_JUMP },
        { "asm_branch", (void *)asm_branch, GATTACH_METHOD_JUMP },
        { "asm_endbr", (void *)asm_endbr, GATTACH_METHOD_JUMP },
        { "asm_call", (void *)asm_call, GATTACH_METHOD_JUMP },
        { "asm_short", (void *)asm_short, GATTACH_METHOD_TRAP },
        { "asm_loop", (void *)asm_loop, GATTACH_METHOD_TRAP },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        unsigned char before[8];
        memcpy(before, t[i].fn, 8);
        reset();
        struct ghook *he = hook(t[i].fn, GHOOK_ENTRY, h_entry, 77 + i);
        struct ghook *hr = hook(t[i].fn, GHOOK_RETURN, h_ret, 0);
        CHECK(gattach_hook_method(he) == t[i].want, "%s: method %s (%s)", t[i].name,
              gattach_method_name(gattach_hook_method(he)), gattach_hook_note(he));
        CHECK(memcmp(before, t[i].fn, 8) != 0, "%s: entry not patched", t[i].name);
        int r[4];
        switch (i) {
        case 0: r[0] = asm_riprel(2); r[1] = asm_riprel(-40); CHECK(r[0] == 42 && r[1] == 0, "riprel %d %d", r[0], r[1]); break;
        case 1: r[0] = asm_lea(2); CHECK(r[0] == 38, "lea %d", r[0]); break;
        case 2: r[0] = asm_branch(0); r[1] = asm_branch(9); CHECK(r[0] == 100 && r[1] == 10, "branch %d %d", r[0], r[1]); break;
        case 3: r[0] = asm_endbr(21); CHECK(r[0] == 42, "endbr %d", r[0]); break;
        case 4: r[0] = asm_call(20); CHECK(r[0] == 41, "call %d", r[0]); break;
        case 5: r[0] = asm_short(); CHECK(r[0] == 0, "short %d", r[0]); break;
        case 6: r[0] = asm_loop(5); CHECK(r[0] == 5, "loop %d", r[0]); break;
        }
        uint64_t want_calls = (i == 0 || i == 2) ? 2 : 1;
        CHECK(n_entry == want_calls && n_ret == want_calls, "%s: %lu entries %lu returns, want %lu",
              t[i].name, (unsigned long)n_entry, (unsigned long)n_ret, (unsigned long)want_calls);
        CHECK(last_ip == (uint64_t)t[i].fn, "%s: ctx ip", t[i].name);
        CHECK(last_cookie == 77 + i, "%s: cookie %lu", t[i].name, (unsigned long)last_cookie);
        unhook(he);
        unhook(hr);
        CHECK(memcmp(before, t[i].fn, 8) == 0, "%s: original bytes not restored", t[i].name);
        reset();
        asm_riprel(1);
        asm_short();
        CHECK(n_entry == 0 && n_ret == 0, "%s: hook still runs after remove", t[i].name);
    }
    /* Options: force int3 on a jump-capable function; refuse fallback. */
    struct gattach_opts o = { .sz = sizeof(o), .no_trap_fallback = 1 };
    struct ghook *h = NULL;
    struct graft_err err = { 0 };
    int rc = gattach_install((void *)asm_short, GHOOK_ENTRY, h_entry, 0, &o, &h, &err);
    CHECK(rc == -ENOTSUP && strstr(err.msg, "shorter"), "no fallback: %d %s", rc, err.msg);
    /* a probe inside a function (offset) preserves registers and flags */
    reset();
    h = hook((char *)asm_loop + 2, GHOOK_ENTRY, h_entry, 0);
    CHECK(asm_loop(4) == 4 && n_entry == 4, "offset probe: %lu hits", (unsigned long)n_entry);
    rc = gattach_install((char *)asm_loop + 2, GHOOK_RETURN, h_ret, 0, NULL, &h, &err);
    CHECK(rc == -EINVAL, "return probe inside a function must be refused: %d", rc);
    unhook(h);
}

static void test_variant(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(dl, "dlopen %s: %s", path, dlerror());
    if (!dl)
        return;
    fn2 add = NULL;
    fn1 fib = NULL, gplus = NULL, branchy = NULL;
    MUST(gattach_resolve(path, "tgt_add", 0, (void **)&add, E));
    MUST(gattach_resolve(path, "tgt_fib", 0, (void **)&fib, E));
    MUST(gattach_resolve(path, "tgt_global_plus", 0, (void **)&gplus, E));
    MUST(gattach_resolve(path, "tgt_branchy", 0, (void **)&branchy, E));
    CHECK(add == dlsym(dl, "tgt_add"), "%s: resolve tgt_add", path);

    /* entry + return */
    reset();
    struct ghook *he = hook((void *)add, GHOOK_ENTRY, h_entry, 9);
    struct ghook *hr = hook((void *)add, GHOOK_RETURN, h_ret, 9);
    long v = add(30, 12);
    CHECK(v == 42 && last_di == 30 && last_si == 12 && last_ax == 42 && n_entry == 1 &&
          n_ret == 1, "%s: entry/return di=%lu si=%lu ax=%lu v=%ld (%s)", path,
          (unsigned long)last_di, (unsigned long)last_si, (unsigned long)last_ax, v,
          gattach_method_name(gattach_hook_method(he)));
    unhook(hr);
    /* override: only di == 5 is overridden; the return probe must not fire */
    struct ghook *ho = hook((void *)add, GHOOK_OVERRIDE, h_override, 0);
    hr = hook((void *)add, GHOOK_RETURN, h_ret, 0);
    reset();
    long a = add(5, 1), b = add(6, 1);
    CHECK(a == 4242 && b == 7 && n_entry == 2 && n_ret == 1,
          "%s: override %ld %ld entries %lu returns %lu", path, a, b,
          (unsigned long)n_entry, (unsigned long)n_ret);
    unhook(ho);
    unhook(hr);
    /* replace */
    struct ghook *hp = hook((void *)add, GHOOK_REPLACE, h_replace, 0);
    struct ghook *hp2 = NULL;
    struct graft_err err = { 0 };
    CHECK(gattach_install((void *)add, GHOOK_REPLACE, h_replace, 0, NULL, &hp2, &err) == -EBUSY,
          "second replace must be refused");
    reset();
    v = add(3, 4);
    CHECK(v == 3004 && n_entry == 1, "%s: replace %ld", path, v);
    unhook(hp);
    unhook(he);
    CHECK(add(3, 4) == 7, "%s: after remove", path);

    /* recursion: fib(15) makes 1973 calls at -O0; compilers turn part of
     * the recursion into a loop at -O2, so count what the body saw */
    volatile long *calls = dlsym(dl, "tgt_fib_calls");
    long calls0 = *calls;
    reset();
    he = hook((void *)fib, GHOOK_ENTRY, h_entry, 0);
    hr = hook((void *)fib, GHOOK_RETURN, h_ret, 0);
    v = fib(15);
    long ncalls = *calls - calls0;
    CHECK(v == 610 && ncalls == 1973 && (long)n_entry == ncalls && (long)n_ret == ncalls &&
          last_ax == 610, "%s: fib %ld calls %ld entries %lu returns %lu last %lu", path, v,
          ncalls, (unsigned long)n_entry, (unsigned long)n_ret, (unsigned long)last_ax);
    unhook(he);
    unhook(hr);

    /* RIP-relative and branchy entries */
    reset();
    he = hook((void *)gplus, GHOOK_ENTRY, h_entry, 0);
    hr = hook((void *)branchy, GHOOK_RETURN, h_ret, 0);
    CHECK(gplus(35) == 42 && branchy(0) == 100 && branchy(4) == 12 && n_entry == 1 &&
          n_ret == 2, "%s: global/branchy (%s, %s)", path,
          gattach_method_name(gattach_hook_method(he)), gattach_method_name(gattach_hook_method(hr)));
    unhook(he);
    unhook(hr);
    /* the library's code pages must be identical to the file again */
    dlclose(dl);
    printf("ok %s\n", strrchr(path, '/') + 1);
}

static void test_order(void)
{
    struct ghook *h[4];
    reset();
    for (int i = 0; i < 4; i++)
        h[i] = hook((void *)local_static_fn, GHOOK_ENTRY, h_order, 10 + i);
    CHECK(local_fn_p(1) == (1 ^ 0x55), "result");
    CHECK(n_order == 4 && order[0] == 10 && order[1] == 11 && order[2] == 12 && order[3] == 13,
          "attach order: %d", n_order);
    unhook(h[1]);
    n_order = 0;
    local_fn_p(2);
    CHECK(n_order == 3 && order[0] == 10 && order[1] == 12 && order[2] == 13, "after remove");
    unhook(h[0]);
    unhook(h[2]);
    unhook(h[3]);
}

/* longjmp out of a return-probed frame leaves a stale shadow entry. */
static jmp_buf g_jb;
__attribute__((noinline)) int jumper(int x);
static int (*volatile jumper_p)(int) = jumper;
__attribute__((noinline)) int jumper(int x)
{
    __asm__ volatile("");
    if (x)
        longjmp(g_jb, 1);
    return 5;
}

static void test_longjmp(void)
{
    struct gattach_stats s0, s1;
    gattach_get_stats(&s0);
    reset();
    struct ghook *hr = hook((void *)jumper, GHOOK_RETURN, h_ret, 0);
    for (int i = 0; i < 3; i++)
        if (!setjmp(g_jb))
            jumper_p(1);
    int v = jumper_p(0);
    gattach_get_stats(&s1);
    CHECK(v == 5 && n_ret == 1, "longjmp: v=%d returns=%lu", v, (unsigned long)n_ret);
    CHECK(s1.stale_discarded - s0.stale_discarded >= 3, "stale entries dropped: %lu",
          (unsigned long)(s1.stale_discarded - s0.stale_discarded));
    unhook(hr);
}

/* The templates' fast paths: return hooks alone (no pt_regs at entry),
 * deep recursion past the shadow stack, overrides among entry hooks. */
__attribute__((noinline)) long deep(long n);
static long (*volatile deep_p)(long) = deep;
__attribute__((noinline)) long deep(long n)
{
    __asm__ volatile("");
    return n ? deep_p(n - 1) + 1 : 0;
}

__attribute__((noinline)) long ovr_target(long a, long b)
{
    __asm__ volatile("");
    return a + b;
}
static long (*volatile ovr_p)(long, long) = ovr_target;

static void test_fast_paths(void)
{
    struct gattach_stats s0, s1;
    reset();
    struct ghook *hr = hook((void *)deep, GHOOK_RETURN, h_ret, 0);
    long v = deep_p(100);
    CHECK(v == 100 && n_ret == 101 && last_ax == 100, "return-only recursion: v=%ld returns=%lu "
          "last ax=%lu", v, (unsigned long)n_ret, (unsigned long)last_ax);
    /* past GATTACH_SHADOW_DEPTH: the innermost calls are not probed */
    const long deep_n = GATTACH_SHADOW_DEPTH + 50;
    gattach_get_stats(&s0);
    reset();
    v = deep_p(deep_n);
    gattach_get_stats(&s1);
    CHECK(v == deep_n && n_ret == GATTACH_SHADOW_DEPTH &&
          s1.shadow_overflows - s0.shadow_overflows == (uint64_t)(deep_n + 1 - GATTACH_SHADOW_DEPTH),
          "overflow: v=%ld returns=%lu overflows=%lu", v, (unsigned long)n_ret,
          (unsigned long)(s1.shadow_overflows - s0.shadow_overflows));
    /* an entry hook joins (the site leaves return-only mode), then goes */
    struct ghook *he = hook((void *)deep, GHOOK_ENTRY, h_entry, 3);
    reset();
    v = deep_p(20);
    CHECK(v == 20 && n_entry == 21 && n_ret == 21 && last_cookie == 3,
          "entry+return: v=%ld entries=%lu returns=%lu", v, (unsigned long)n_entry,
          (unsigned long)n_ret);
    unhook(he);
    reset();
    v = deep_p(20);
    CHECK(v == 20 && n_entry == 0 && n_ret == 21, "return-only again: entries=%lu returns=%lu",
          (unsigned long)n_entry, (unsigned long)n_ret);
    unhook(hr);

    /* entry, override, entry (+ return): an override ends the handler list
     * and skips the function and its return hooks */
    struct ghook *h1 = hook((void *)ovr_target, GHOOK_ENTRY, h_order, 1);
    struct ghook *ho = hook((void *)ovr_target, GHOOK_OVERRIDE, h_override, 0);
    struct ghook *h2 = hook((void *)ovr_target, GHOOK_ENTRY, h_order, 2);
    hr = hook((void *)ovr_target, GHOOK_RETURN, h_ret, 0);
    reset();
    long a = ovr_p(5, 1);
    CHECK(a == 4242 && n_order == 1 && order[0] == 1 && n_ret == 0,
          "overridden: %ld, %d handlers ran, %lu returns", a, n_order, (unsigned long)n_ret);
    reset();
    long b = ovr_p(6, 1);
    CHECK(b == 7 && n_order == 2 && order[0] == 1 && order[1] == 2 && n_ret == 1 && last_ax == 7,
          "not overridden: %ld, %d handlers ran, %lu returns", b, n_order, (unsigned long)n_ret);
    unhook(h1);
    unhook(ho);
    unhook(h2);
    unhook(hr);
    CHECK(ovr_p(5, 1) == 6, "after remove");
}

/* A return-probed function that tail-calls (jmp) another return-probed one
 * - glibc's realloc(NULL, n) jumps into malloc, which BCC's memleak probes
 * both - shares its return slot with it: both return probes run, the inner
 * one first, and the caller gets the right value. (Before, the inner
 * entry dropped the outer one as stale, and the outer return template then
 * found no shadow entry and aborted the process.) */
static void test_tail_call(void)
{
    int (*volatile tail_a)(int) = asm_tail_a;
    struct gattach_stats s0, s1;
    gattach_get_stats(&s0);
    reset();
    struct ghook *ha = hook((void *)asm_tail_a, GHOOK_RETURN, h_order, 1);
    struct ghook *hb = hook((void *)asm_tail_b, GHOOK_RETURN, h_order, 2);
    int r = tail_a(20);
    CHECK(r == 42 && n_order == 2 && order[0] == 2 && order[1] == 1,
          "return-only tail call: %d, %d return handlers", r, n_order);
    /* entry hooks too: the full entry path pushes the chained entry */
    struct ghook *he = hook((void *)asm_tail_b, GHOOK_ENTRY, h_entry, 3);
    struct ghook *hr = hook((void *)asm_tail_a, GHOOK_RETURN, h_ret, 0);
    reset();
    r = tail_a(1);
    CHECK(r == 4 && n_entry == 1 && last_di == 2 && n_ret == 1 && last_ax == 4 && n_order == 2 &&
          order[0] == 2 && order[1] == 1, "tail call with entry hooks: %d, %lu entries, %d returns",
          r, (unsigned long)n_entry, n_order);
    /* a tail call inside the return handlers' own frames is no stale entry */
    gattach_get_stats(&s1);
    CHECK(s1.stale_discarded == s0.stale_discarded, "tail calls counted as stale: %lu",
          (unsigned long)(s1.stale_discarded - s0.stale_discarded));
    unhook(he);
    unhook(hr);
    unhook(ha);
    unhook(hb);
    /* glibc's own: realloc(NULL, n) -> malloc, both return-probed */
    void *ml = NULL, *rl = NULL, *fr = NULL;
    MUST(gattach_resolve("libc.so.6", "malloc", 0, &ml, E));
    MUST(gattach_resolve("libc.so.6", "realloc", 0, &rl, E));
    MUST(gattach_resolve("libc.so.6", "free", 0, &fr, E));
    reset();
    struct ghook *hm = hook(ml, GHOOK_RETURN, h_order, 5);
    struct ghook *hre = hook(rl, GHOOK_RETURN, h_order, 6);
    void *(*volatile realloc_p)(void *, size_t) = (void *(*)(void *, size_t))rl;
    void *m = realloc_p(NULL, 777);
    CHECK(m && n_order >= 2 && order[n_order - 1] == 6, "realloc(NULL) -> malloc: %d returns, last %lu",
          n_order, n_order ? (unsigned long)order[n_order - 1] : 0ul);
    unhook(hm);
    unhook(hre);
    ((void (*)(void *))fr)(m);
}

/* A hook on what a thread's first hit calls to set the thread up (libc's
 * mmap: BCC's memleak probes it) must not recurse: the hit inside the
 * set-up runs no handlers (before, each registered again until the stack
 * ran out). And a thread graft ignores (the agent's) runs none at all. */
static void *(*volatile g_mmap_p)(void *, size_t, int, int, int, off_t);
static pthread_barrier_t g_reg_bar;
#define REG_MARK_LEN (3 * 4096)

static uint64_t h_mmap_marked(void *ctx, uint64_t len)
{
    if (((struct graft_pt_regs *)ctx)->si == REG_MARK_LEN)   /* the workers' own call */
        atomic_fetch_add(&n_entry, 1);
    return 0;
}

static void *reg_worker(void *arg)
{
    if (arg)
        CHECK(gattach_ignore_this_thread() == 0, "ignore a fresh thread");
    pthread_barrier_wait(&g_reg_bar);      /* all alive: each needs its own state */
    void *m = g_mmap_p(NULL, REG_MARK_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED)
        munmap(m, REG_MARK_LEN);
    return NULL;
}

static void test_register_reentry(void)
{
    void *mm = NULL;
    MUST(gattach_resolve("libc.so.6", "mmap", 0, &mm, E));
    g_mmap_p = (void *(*)(void *, size_t, int, int, int, off_t))mm;
    reset();
    struct ghook *h = hook(mm, GHOOK_ENTRY, h_mmap_marked, 0);
    enum { N = 4 };
    pthread_t th[N + 1];
    pthread_barrier_init(&g_reg_bar, NULL, N + 1);
    for (int i = 0; i <= N; i++)
        pthread_create(&th[i], NULL, reg_worker, i == N ? (void *)1 : NULL);
    for (int i = 0; i <= N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_reg_bar);
    /* each of the N threads' own call ran the handler; the ignored one's did not */
    CHECK(n_entry == N, "mmap hook on new threads: %lu handler runs, want %d", (unsigned long)n_entry, N);
    unhook(h);
    CHECK(gattach_ignore_this_thread() == -EBUSY, "the main thread already has hook state");
}

/* Stripped code: an address no function symbol covers (a USDT probe in a
 * static function of a stripped binary) resolves by its link-time address
 * (symbol "") and is hooked with int3 through the C path, which keeps the
 * live flags; return hooks there are refused. */
static void test_stripped(void)
{
    uint64_t bias = 0;
    char path[4096];
    void *a = NULL;
    MUST(gattach_binary_info(NULL, path, sizeof(path), &bias, E));
    MUST(gattach_resolve(NULL, "", (uint64_t)asm_stripped_mid - bias, &a, E));
    CHECK(a == (void *)asm_stripped_mid, "link-time address resolves: %p, not %p", a, (void *)asm_stripped_mid);
    struct graft_err err = { 0 };
    CHECK(gattach_resolve(NULL, "", (uint64_t)&asm_g - bias, &a, &err) == -EINVAL,
          "an address outside the code is refused: %s", err.msg);
    reset();
    struct ghook *h = hook(asm_stripped_mid, GHOOK_ENTRY, h_entry, 9);
    CHECK(gattach_hook_method(h) == GATTACH_METHOD_TRAP && strstr(gattach_hook_note(h), "no function symbol"),
          "stripped code: %s (%s)", gattach_method_name(gattach_hook_method(h)), gattach_hook_note(h));
    int (*volatile fp)(int, int) = asm_stripped;
    int lt = fp(1, 2), ge = fp(3, 2);
    CHECK(lt == 1 && ge == 0 && n_entry == 2 && last_ip == (uint64_t)asm_stripped_mid && last_di == 3,
          "flags kept across the probe: %d %d, %lu hits", lt, ge, (unsigned long)n_entry);
    struct ghook *hr = NULL;
    CHECK(gattach_install(asm_stripped_mid, GHOOK_RETURN, h_ret, 0, NULL, &hr, &err) == -EINVAL,
          "a return hook in stripped code is refused");
    unhook(h);
    CHECK(fp(1, 2) == 1, "after remove");
}

static void test_libc(void)
{
    void *gp = NULL, *ml = NULL;
    MUST(gattach_resolve("libc", "getpid", 0, &gp, E));
    MUST(gattach_resolve("libc.so.6", "malloc", 0, &ml, E));
    reset();
    struct ghook *h = hook(gp, GHOOK_RETURN, h_ret, 0);
    pid_t (*volatile getpid_p)(void) = (pid_t (*)(void))gp;
    pid_t p = getpid_p();
    CHECK(n_ret == 1 && last_ax == (uint64_t)p, "getpid return probe: %lu %lu",
          (unsigned long)n_ret, (unsigned long)last_ax);
    unhook(h);
    reset();
    h = hook(ml, GHOOK_ENTRY, h_entry, 0);
    struct ghook *h2 = hook(ml, GHOOK_RETURN, h_ret, 0);
    void *(*volatile malloc_p)(size_t) = (void *(*)(size_t))ml;
    void *m = malloc_p(12345);
    CHECK(n_entry >= 1 && last_di == 12345 && last_ax == (uint64_t)m,
          "malloc hooks: %lu di=%lu (%s)", (unsigned long)n_entry, (unsigned long)last_di,
          gattach_method_name(gattach_hook_method(h)));
    unhook(h);
    unhook(h2);
    /* libc's free, not the one in this binary (ASan interposes malloc) */
    void *fr = NULL;
    MUST(gattach_resolve("libc.so.6", "free", 0, &fr, E));
    ((void (*)(void *))fr)(m);
}

/* A JIT-compiled program as the handler, called directly by the trampoline. */
static void test_jit_handler(void)
{
    struct bpf_insn *ins = NULL;
    uint32_t n = 0;
    struct gvm_prog *prog = NULL;
    struct graft_err err = { 0 };
    /* r0 = di * 2 + si (pt_regs: si at 104, di at 112) */
    const char *src = "ldxdw r0, [r1+112]\nlsh r0, 1\nldxdw r2, [r1+104]\n"
                      "add r0, r2\nexit\n";
    if (gvm_asm(src, &ins, &n, &err) < 0) {
        CHECK(0, "gvm_asm: %s", err.msg);
        return;
    }
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_JIT };
    if (gvm_prog_create(ins, n, &o, &prog, &err) < 0 || !gvm_prog_native(prog)) {
        CHECK(0, "JIT not available: %s", err.msg);
        free(ins);
        return;
    }
    free(ins);
    struct ghook *h = hook((void *)jit_two, GHOOK_REPLACE,
                           (ghook_handler)gvm_prog_native(prog), 0);
    long (*volatile f)(long, long) = jit_two;
    long v = f(20, 3);
    CHECK(v == 43, "jit replace %ld", v);
    printf("ok JIT program as replace handler\n");
    unhook(h);
    CHECK(f(20, 3) == 17, "after remove");
    gvm_prog_free(prog);
}

/* Float arguments and results survive a handler that clobbers xmm0-7 (the
 * trampoline saves them unless handler_preserves_fp), and a handler that
 * calls the hooked function is skipped on the nested call (recursion guard). */
__attribute__((noinline)) double fp_target(double a, double b)
{
    __asm__ volatile("");
    return a * 2 + b;
}

static uint64_t h_clobber_fp(void *ctx, uint64_t len)
{
    __asm__ volatile("xorps %%xmm0, %%xmm0\n xorps %%xmm1, %%xmm1\n xorps %%xmm7, %%xmm7"
                     ::: "xmm0", "xmm1", "xmm7");
    atomic_fetch_add(&n_entry, 1);
    return 0;
}

static double (*volatile fp_target_p)(double, double) = fp_target;

static uint64_t h_reenter(void *ctx, uint64_t len)
{
    atomic_fetch_add(&n_entry, 1);
    fp_target_p(1.0, 1.0);      /* nested: its hooks must be skipped */
    return 0;
}

static void test_fp_and_recursion(void)
{
    reset();
    struct ghook *he = hook((void *)fp_target, GHOOK_ENTRY, h_clobber_fp, 0);
    struct ghook *hr = hook((void *)fp_target, GHOOK_RETURN, h_clobber_fp, 0);
    double v = fp_target_p(1.5, 0.25);
    CHECK(v == 3.25 && n_entry == 2, "float args/result across a clobbering handler: %g (%lu)",
          v, (unsigned long)n_entry);
    unhook(he);
    unhook(hr);
    struct gattach_stats s0, s1;
    gattach_get_stats(&s0);
    reset();
    he = hook((void *)fp_target, GHOOK_ENTRY, h_reenter, 0);
    hr = hook((void *)fp_target, GHOOK_RETURN, h_reenter, 0);
    v = fp_target_p(2.0, 1.0);
    gattach_get_stats(&s1);
    CHECK(v == 5.0 && n_entry == 2 && s1.missed_recursion - s0.missed_recursion == 2,
          "recursion guard: v=%g runs=%lu missed=%lu", v, (unsigned long)n_entry,
          (unsigned long)(s1.missed_recursion - s0.missed_recursion));
    unhook(he);
    unhook(hr);
    /* handler_preserves_fp: same results with a handler that keeps them */
    struct gattach_opts o = { .sz = sizeof(o), .handler_preserves_fp = 1 };
    MUST(gattach_install((void *)fp_target, GHOOK_ENTRY, h_mt_count, 0, &o, &he, E));
    MUST(gattach_install((void *)fp_target, GHOOK_RETURN, h_mt_count, 0, &o, &hr, E));
    reset();
    v = fp_target_p(1.5, 0.25);
    CHECK(v == 3.25 && n_entry == 2, "preserves_fp: %g (%lu)", v, (unsigned long)n_entry);
    unhook(he);
    unhook(hr);
}

/* ---- threads ------------------------------------------------------------------ */

/* x * 2 + 1 with the frame an -O0 compiler builds: the jump covers three
 * instructions (push %rbp; mov %rsp,%rbp; lea ...), so a thread preempted
 * after the push or the mov while the jump is written would resume inside
 * it unless the patcher moves it to the trampoline's copy. */
long mt_target(long x);
__asm__(".text\n.globl mt_target\n.type mt_target,@function\n"
        "mt_target:\n"
        "  push %rbp\n"
        "  mov %rsp, %rbp\n"
        "  lea 1(%rdi,%rdi,1), %rax\n"
        "  pop %rbp\n"
        "  ret\n"
        ".size mt_target, .-mt_target\n");

static _Atomic uint64_t mt_hits, mt_calls, mt_bad;
static _Atomic int mt_stop;

static uint64_t h_mt(void *ctx, uint64_t len)
{
    atomic_fetch_add_explicit(&mt_hits, 1, memory_order_relaxed);
    return 0;
}

static void *mt_worker(void *arg)
{
    long (*volatile f)(long) = mt_target;
    uint64_t calls = 0;
    long i = (long)(intptr_t)arg;
    while (!atomic_load_explicit(&mt_stop, memory_order_relaxed)) {
        if (f(i) != i * 2 + 1)
            atomic_fetch_add(&mt_bad, 1);
        i++;
        calls++;
    }
    atomic_fetch_add(&mt_calls, calls);
    return NULL;
}

static void test_threads(void)
{
    enum { NT = 8, N_PER = 20000 };
    pthread_t th[NT];
    long (*volatile f)(long) = mt_target;
    /* Steady state: attached the whole time, so every call is counted. */
    struct ghook *h = hook((void *)mt_target, GHOOK_ENTRY, h_mt, 0);
    mt_hits = 0;
    for (int i = 0; i < N_PER; i++)
        f(i);
    CHECK(mt_hits == N_PER, "steady: %lu", (unsigned long)mt_hits);
    unhook(h);
    /* Churn: 1,000 attach/detach cycles while 8 threads call (fewer with
     * GRAFT_TEST_CHURN_CYCLES, for the emulated run of tests/qemu). */
    const char *cycles_env = getenv("GRAFT_TEST_CHURN_CYCLES");
    int cycles = cycles_env && atoi(cycles_env) > 0 ? atoi(cycles_env) : 1000;
    mt_hits = mt_calls = mt_bad = 0;
    mt_stop = 0;
    for (int i = 0; i < NT; i++)
        pthread_create(&th[i], NULL, mt_worker, (void *)(intptr_t)(i * 1000000));
    struct ghook *hr = NULL;
    for (int i = 0; i < cycles; i++) {
        h = hook((void *)mt_target, GHOOK_ENTRY, h_mt, 0);
        if (i % 2)
            hr = hook((void *)mt_target, GHOOK_RETURN, h_mt, 0);
        unhook(h);
        if (hr) {
            unhook(hr);
            hr = NULL;
        }
    }
    uint64_t hits_at_detach = mt_hits;
    for (volatile int spin = 0; spin < 2000000; spin++)
        ;
    uint64_t hits_later = mt_hits;
    mt_stop = 1;
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    CHECK(mt_bad == 0, "wrong results under churn: %lu", (unsigned long)mt_bad);
    CHECK(hits_later == hits_at_detach, "hook ran after final detach: %lu vs %lu",
          (unsigned long)hits_later, (unsigned long)hits_at_detach);
    CHECK(mt_hits <= 2 * mt_calls && mt_calls > 0, "hits %lu calls %lu",
          (unsigned long)mt_hits, (unsigned long)mt_calls);
    printf("threads: %lu calls, %lu hook runs during %d attach/detach cycles\n",
           (unsigned long)mt_calls, (unsigned long)mt_hits, cycles);
}

/* ---- hook metadata is read-only outside graft's updates ----------------------- */

static sigjmp_buf ro_jb;
static volatile int ro_code;
static void ro_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    ro_code = si->si_code;
    siglongjmp(ro_jb, 1);
}

/* Flip a byte at p: the SIGSEGV si_code if that faulted, else 0. */
static int write_fault_code(volatile uint8_t *p)
{
    struct sigaction sa = { .sa_sigaction = ro_segv, .sa_flags = SA_SIGINFO }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old);
    ro_code = 0;
    if (sigsetjmp(ro_jb, 1) == 0)
        *p ^= 0xff;
    sigaction(SIGSEGV, &old, NULL);
    return ro_code;
}

/* A hook handle is the struct graft keeps for the hook (kind, handler,
 * cookie: what the next snapshot is built from); like the snapshots and
 * sites it lives in the read-only arena. A host write to it faults, and the
 * hook keeps working and detaches normally. */
static void test_metadata_readonly(void)
{
    struct ghook *h = hook((void *)local_static_fn, GHOOK_ENTRY, h_entry, 77);
    int code = write_fault_code((volatile uint8_t *)h + 8);   /* somewhere in the handle */
    CHECK(code == SEGV_ACCERR, "a host write to hook metadata faults (code %d)", code);
    reset();
    int v = local_fn_p(1);
    CHECK(v == (1 ^ 0x55) && n_entry == 1 && last_cookie == 77,
          "the hook still runs as attached (%d, %lu runs, cookie %lu)", v,
          (unsigned long)n_entry, (unsigned long)last_cookie);
    unhook(h);
    reset();
    local_fn_p(2);
    CHECK(n_entry == 0, "detached after the fault");
}

/* A source entry (the 5-byte NOP GRAFT_ENTRY emits, here written out) with
 * one argument, 8 bytes in %rdi: its link record is read-only too. */
long src_entry_target(long x);
__asm__(".text\n.globl src_entry_target\n.type src_entry_target,@function\n"
        "src_entry_target:\n"
        "  .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n"
        "  lea 7(%rdi), %rax\n"
        "  ret\n"
        ".size src_entry_target, .-src_entry_target\n");

static volatile uint64_t src_seen, src_runs;
static uint64_t h_src(void *ctx, uint64_t len)
{
    src_seen = len == 8 ? ((uint64_t *)ctx)[0] : ~0ull;
    src_runs++;
    return 0;
}

static void test_source_entry_readonly(void)
{
    struct gentry_link *l = NULL;
    MUST(gattach_entry_install((void *)src_entry_target, "8@%rdi", h_src, 5, &l, E));
    long (*volatile f)(long) = src_entry_target;
    CHECK(f(35) == 42 && src_runs == 1 && src_seen == 35, "source entry ran (%lu runs, saw %lu)",
          (unsigned long)src_runs, (unsigned long)src_seen);
    int code = write_fault_code((volatile uint8_t *)l + 8);
    CHECK(code == SEGV_ACCERR, "a host write to a source entry's link faults (code %d)", code);
    CHECK(f(1) == 8 && src_runs == 2 && src_seen == 1, "the source entry still runs");
    MUST(gattach_entry_remove(l, E));
    CHECK(f(2) == 9 && src_runs == 2, "removed");
}

/* ---- a thread stopped inside the bytes the jump covers ----------------------- */

/* push %rbp; mov (%rdi),%rax; pop %rbp; ret: the jump covers the first
 * three. A thread that loads through a userfaultfd page we have not filled
 * blocks at offset 1 - inside the jump - for as long as we like. */
long park_target(const long *p);
__asm__(".text\n.globl park_target\n.type park_target,@function\n"
        "park_target:\n"
        "  push %rbp\n"
        "  mov (%rdi), %rax\n"
        "  pop %rbp\n"
        "  ret\n"
        ".size park_target, .-park_target\n");

struct park_arg {
    long *page;
    int block_sigs;                  /* the thread blocks every signal it can */
    _Atomic int32_t tid;
    long first, second;
};

static void *park_worker(void *argp)
{
    struct park_arg *a = argp;
    long (*volatile f)(const long *) = park_target;
    sigset_t set, old;
    sigfillset(&set);
    if (a->block_sigs)
        pthread_sigmask(SIG_BLOCK, &set, &old);
    atomic_store(&a->tid, (int32_t)syscall(SYS_gettid));
    a->first = f(a->page);          /* blocks at park_target+1 until filled */
    if (a->block_sigs)              /* the late ping must be harmless */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    a->second = f(a->page);
    return NULL;
}

/* The user pc of thread tid when it is blocked, else 0. */
static uint64_t blocked_pc(int32_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *last = strrchr(buf, ' ');
    return strncmp(buf, "running", 7) && last ? strtoull(last + 1, NULL, 16) : 0;
}

/* Returns 0 when userfaultfd is not available (the test is then skipped
 * and says so). */
static int park_once(int block_sigs)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (uffd < 0)
        uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (uffd < 0) {
        printf("SKIP parked threads: userfaultfd: %s\n", strerror(errno));
        return 0;
    }
    struct uffdio_api api = { .api = UFFD_API };
    CHECK(ioctl(uffd, UFFDIO_API, &api) == 0, "UFFDIO_API: %s", strerror(errno));
    long pg = sysconf(_SC_PAGESIZE);
    long *page = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register reg = { .range = { (uint64_t)page, (uint64_t)pg },
                                   .mode = UFFDIO_REGISTER_MODE_MISSING };
    CHECK(ioctl(uffd, UFFDIO_REGISTER, &reg) == 0, "UFFDIO_REGISTER: %s", strerror(errno));

    struct park_arg a = { .page = page, .block_sigs = block_sigs };
    pthread_t th;
    pthread_create(&th, NULL, park_worker, &a);
    uint64_t at = (uint64_t)park_target + 1, pc = 0;
    for (int i = 0; i < 5000 && pc != at; i++) {
        usleep(1000);
        if (atomic_load(&a.tid))
            pc = blocked_pc(atomic_load(&a.tid));
    }
    CHECK(pc == at, "the thread did not block at park_target+1 (pc %#lx)", (unsigned long)pc);

    struct gattach_stats s0, s1;
    gattach_get_stats(&s0);
    n_entry = 0;
    struct ghook *h = hook((void *)park_target, GHOOK_ENTRY, h_entry, 0);
    gattach_get_stats(&s1);
    if (block_sigs) {
        /* It cannot be asked to move: the hook keeps the int3. */
        CHECK(gattach_hook_method(h) == GATTACH_METHOD_TRAP, "method %s with a blocked thread inside",
              gattach_method_name(gattach_hook_method(h)));
        CHECK(strstr(gattach_hook_note(h), "does not take signal"), "note: %s", gattach_hook_note(h));
    } else {
        CHECK(gattach_hook_method(h) == GATTACH_METHOD_JUMP, "method %s: %s",
              gattach_method_name(gattach_hook_method(h)), gattach_hook_note(h));
        CHECK(s1.threads_moved == s0.threads_moved + 1, "threads moved: %lu -> %lu",
              (unsigned long)s0.threads_moved, (unsigned long)s1.threads_moved);
        pc = blocked_pc(atomic_load(&a.tid));
        CHECK(pc < (uint64_t)park_target || pc > (uint64_t)park_target + 5,
              "the thread is still inside the jump (pc %#lx)", (unsigned long)pc);
    }
    /* Let the load finish: the thread must return the value, then make a
     * second call that the hook sees. */
    static long fill[1024];
    fill[0] = 4242;
    struct uffdio_copy cp = { .dst = (uint64_t)page, .src = (uint64_t)fill, .len = (uint64_t)pg };
    CHECK(ioctl(uffd, UFFDIO_COPY, &cp) == 0, "UFFDIO_COPY: %s", strerror(errno));
    pthread_join(th, NULL);
    CHECK(a.first == 4242 && a.second == 4242, "parked thread got %ld, then %ld", a.first, a.second);
    CHECK(n_entry == 1, "hook ran %lu times, want 1 (the second call)", (unsigned long)n_entry);
    unhook(h);
    if (block_sigs) {
        /* Nobody is parked now: hooking again gets the jump back. */
        h = hook((void *)park_target, GHOOK_ENTRY, h_entry, 0);
        CHECK(gattach_hook_method(h) == GATTACH_METHOD_JUMP, "re-hook: %s",
              gattach_method_name(gattach_hook_method(h)));
        CHECK(park_target(&fill[0]) == 4242, "re-hooked call");
        unhook(h);
    }
    munmap(page, pg);
    close(uffd);
    return 1;
}

static void test_parked_threads(void)
{
    if (park_once(0))
        park_once(1);
}

/* A SIGTRAP that is not graft's (a debugger's breakpoint, an int3 the
 * program placed itself) reaches the handler the program installed before
 * graft did. Runs first, before graft installs its own trap handler. */
static volatile int foreign_traps;
static void foreign_trap(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    foreign_traps++;
}

static void test_foreign_sigtrap(void)
{
    struct sigaction sa = { .sa_sigaction = foreign_trap, .sa_flags = SA_SIGINFO }, old;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGTRAP, &sa, &old) == 0, "sigaction");
    struct ghook *h = hook((void *)local_static_fn, GHOOK_ENTRY, h_entry, 0);   /* graft's handler goes in */
    __asm__ volatile("int3");
    CHECK(foreign_traps == 1, "a foreign int3 reached the earlier handler %d times", foreign_traps);
    unhook(h);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    tiso_setup("func_hook_test");
    test_foreign_sigtrap();
    test_resolve();
    test_asm_entries();
    test_order();
    test_longjmp();
    test_fast_paths();
    test_libc();
    test_tail_call();
    test_register_reentry();
    test_stripped();
    test_jit_handler();
    test_fp_and_recursion();
    if (argc > 1) {
        DIR *d = opendir(argv[1]);
        struct dirent *de;
        int n = 0;
        CHECK(d, "no variant dir %s", argv[1]);
        while (d && (de = readdir(d))) {
            if (strncmp(de->d_name, "libfunc_target_", 15) || !strstr(de->d_name, ".so"))
                continue;
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", argv[1], de->d_name);
            test_variant(p);
            n++;
        }
        if (d)
            closedir(d);
        CHECK(n == 8, "expected 8 target variants, found %d", n);
    }
    test_parked_threads();
    test_metadata_readonly();
    test_source_entry_readonly();
    test_threads();
    struct gattach_stats st;
    gattach_get_stats(&st);
    printf("stats: traps %lu stale %lu missed %lu overflow %lu moved %lu\n",
           (unsigned long)st.trap_hits, (unsigned long)st.stale_discarded,
           (unsigned long)st.missed_recursion, (unsigned long)st.shadow_overflows,
           (unsigned long)st.threads_moved);
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
