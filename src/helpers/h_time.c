/*
 * h_time.c - bpf_ktime_get_ns (and boot/coarse) for programs that run on
 * every syscall: from the TSC where that is what CLOCK_MONOTONIC is made of.
 *
 * clock_gettime through the vDSO costs 20-25 ns here, most of it an ordered
 * TSC read (lfence/rdtscp) and the vDSO's seqlock; syscount calls it twice per
 * syscall. A plain rdtsc costs about half. So where the kernel's clocksource
 * is the TSC and the CPU says it is invariant (CPUID 0x80000007 EDX bit 8:
 * constant rate, runs in every C-state), ktime_get_ns is a line
 *
 *     ns = n0 + ((tsc - t0) * mult) >> 32
 *
 * calibrated against CLOCK_MONOTONIC: the rate is measured between two
 * (tsc, clock_gettime) pairs, and every RESYNC_NS the line is re-anchored at
 * its own value (so it never steps) with a slope that absorbs the difference
 * to clock_gettime over the next interval, as NTP slews a clock. A difference
 * above MAX_SLEW_NS (the line was extrapolated far beyond its interval, e.g.
 * no call for minutes) is stepped away instead. Until the first two pairs
 * are CAL_NS apart, and wherever the TSC is not usable, clock_gettime is used
 * (ghelper_ktime_source() says which, and why). GRAFT_KTIME=clock forces
 * clock_gettime.
 *
 * Guarantees: per thread, values never decrease (each thread keeps its last
 * value and never returns less: a step back after a long pause, or a TSC read
 * on another CPU, holds that thread's clock still for that long instead).
 * The difference to CLOCK_MONOTONIC stays at the pair noise plus the rate
 * error over one interval (well under a microsecond here; the test allows
 * 50 us). The TSC read is unordered (no lfence): it may be taken a few dozen
 * instructions early, which does not matter to a timestamp taken around a
 * syscall (the syscall instruction orders it). If the machine suspends while
 * the TSC keeps counting, the line is stepped back at the next resync and a
 * thread's clock stands still for the suspend's length.
 *
 * The line is process-local (each process calibrates its own); readers check
 * it with a sequence count, one thread at a time re-anchors it (a try-lock:
 * others meanwhile extrapolate the old line). Integer arithmetic only: this
 * file is built with -mgeneral-regs-only like h_task.c.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "helpers/helpers_internal.h"
#include "util/fpsafe.h"
#include "util/settings.h"

#define LOAD(p)         __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQ(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define CAL_NS        2000000ull       /* first rate from pairs >= 2 ms apart */
#define RESYNC_NS     50000000ull      /* re-anchor every 50 ms of use */
#define MAX_SLEW_NS   100000ll         /* larger differences are stepped */
#define PAIR_TRIES    5
#define PAIR_MAX_TICKS 5000ull         /* a pair whose two TSC reads are further
                                        * apart was interrupted */

enum { MODE_UNSET = 0, MODE_CALIBRATING, MODE_TSC, MODE_CLOCK };

/* The line, read by every thread; written by the one holding g_busy. */
struct tsc_line {
    uint32_t seq;                      /* odd while being rewritten */
    uint64_t t0, n0;                   /* the line passes through (t0, n0) */
    uint64_t mult;                     /* ns per tick, << 32 (slew included) */
    uint64_t span;                     /* ticks after t0 before a re-anchor */
    uint64_t rate;                     /* ns per tick, << 32, as measured: the
                                        * slope beyond span (no more slew) */
} __attribute__((aligned(64)));

/* The JIT reads the line inline (ghelper_inline_table, vm.h's
 * GVM_INLINE_TSC_LINE): the same fields at the same places. A line is
 * written only by resync, which makes span non-zero; until then (and for
 * good in clock mode) span is 0 and the inline read calls the helper. */
_Static_assert(offsetof(struct tsc_line, seq) == offsetof(struct gvm_tsc_line, seq) &&
               offsetof(struct tsc_line, t0) == offsetof(struct gvm_tsc_line, t0) &&
               offsetof(struct tsc_line, n0) == offsetof(struct gvm_tsc_line, n0) &&
               offsetof(struct tsc_line, mult) == offsetof(struct gvm_tsc_line, mult) &&
               offsetof(struct tsc_line, span) == offsetof(struct gvm_tsc_line, span),
               "struct tsc_line begins as struct gvm_tsc_line");

static struct tsc_line g_line;
static int g_mode;
static int g_busy;
/* The writer's state (under g_busy): the last pair. */
static uint64_t g_pair_t, g_pair_n;
static char g_source[96] = "ktime: not decided yet (no program created)";

#define GH_TLS_IE __attribute__((tls_model("initial-exec")))
static __thread uint64_t t_last GH_TLS_IE;   /* this thread's last ktime_get_ns */

static uint64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t mul_shift(uint64_t d, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)d * mult) >> 32);
}

/* Never less than this thread's last value. */
static inline uint64_t monotonic_for_thread(uint64_t ns)
{
    uint64_t last = t_last;
    if (__builtin_expect(ns < last, 0))
        return last;
    t_last = ns;
    return ns;
}

/* A (tsc, CLOCK_MONOTONIC) pair: the tightest of PAIR_TRIES (the clock is
 * read between two TSC reads; their midpoint is its time); 0 when every try
 * was interrupted. The first call warms the vDSO up (a cold first
 * clock_gettime takes microseconds and would skew the first rate). */
static int take_pair(uint64_t *t, uint64_t *n)
{
    uint64_t best = PAIR_MAX_TICKS;
    (void)clock_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < PAIR_TRIES; i++) {
        uint64_t a = __rdtsc();
        uint64_t c = clock_ns(CLOCK_MONOTONIC);
        uint64_t b = __rdtsc();
        if (b > a && b - a < best) {
            best = b - a;
            *t = a + (b - a) / 2;
            *n = c;
        }
    }
    return best < PAIR_MAX_TICKS;
}

static int read_clocksource(char *buf, size_t cap)
{
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* The reason the TSC cannot be used, or NULL when it can. */
static const char *tsc_unusable(char *cs, size_t cap)
{
    const char *force = gsetting("GRAFT_KTIME");
    if (force && strcmp(force, "clock") == 0)
        return "forced by GRAFT_KTIME=clock";
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007 ||
        !__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return "the CPU's TSC is not invariant";
    if (read_clocksource(cs, cap) < 0)
        return "the kernel's clocksource is unknown";
    if (strcmp(cs, "tsc") != 0)
        return "the kernel's clocksource is not tsc";
    return NULL;
}

static void after_fork_child(void)
{
    /* the thread that was re-anchoring does not exist in the child */
    if (LOAD(&g_line.seq) & 1)
        STORE(&g_line.seq, g_line.seq + 1);
    STORE(&g_busy, 0);
}

/* Decide once per process: TSC (after calibration) or clock_gettime. The
 * runtime calls it (ghelper_time_init) when it creates a program, so a
 * program's helper call does not open files; a process that never creates
 * one pays nothing at load (no constructor). */
static void time_init(void)
{
    int unset = MODE_UNSET;
    if (!__atomic_compare_exchange_n(&g_mode, &unset, MODE_CALIBRATING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    char cs[32] = "?";
    const char *why = tsc_unusable(cs, sizeof(cs));
    if (!why && !take_pair(&g_pair_t, &g_pair_n))
        why = "no undisturbed (tsc, clock) pair";
    if (why) {
        snprintf(g_source, sizeof(g_source), "ktime: clock_gettime (%s%s%s)", why,
                 strcmp(cs, "?") ? ": " : "", strcmp(cs, "?") ? cs : "");
        STORE_REL(&g_mode, MODE_CLOCK);
        return;
    }
    pthread_atfork(NULL, NULL, after_fork_child);
    snprintf(g_source, sizeof(g_source), "ktime: tsc (invariant, clocksource tsc; calibrating)");
}

void ghelper_time_init(void)
{
    if (!LOAD_ACQ(&g_mode))
        time_init();
}

const char *ghelper_ktime_source(void)
{
    return g_source;
}

/* The line's value at tsc t, also before t0 or beyond its span (where it
 * goes on at the measured rate: the slew was for the span only). */
static uint64_t line_at(uint64_t t, const struct tsc_line *l)
{
    uint64_t t0 = LOAD(&l->t0), n0 = LOAD(&l->n0), mult = LOAD(&l->mult), span = LOAD(&l->span);
    if (t < t0)
        return n0 - mul_shift(t0 - t, mult);
    if (t - t0 <= span)
        return n0 + mul_shift(t - t0, mult);
    return n0 + mul_shift(span, mult) + mul_shift(t - t0 - span, LOAD(&l->rate));
}

/* Re-anchor (or, while calibrating, first draw) the line. Holding g_busy. */
static void resync(void)
{
    uint64_t t, c;
    if (!take_pair(&t, &c) || t <= g_pair_t || c <= g_pair_n)
        return;
    uint64_t dt = t - g_pair_t, dn = c - g_pair_n;
    int first = LOAD(&g_mode) == MODE_CALIBRATING;
    if (first && dn < CAL_NS)
        return;
    /* ns per tick over the last interval (CLOCK_MONOTONIC's own rate,
     * NTP's adjustment included) */
    uint64_t rate = (uint64_t)(((unsigned __int128)dn << 32) / dt);
    if (rate == 0)
        return;
    /* The rate's error is about the pair noise over dn: trust the line for
     * at most 2 dn, so the first lines (dn a few ms) are re-anchored soon. */
    uint64_t span_ns = dn * 2 < RESYNC_NS ? dn * 2 : RESYNC_NS;
    uint64_t span = (uint64_t)(((unsigned __int128)span_ns << 32) / rate);
    uint64_t n0 = c, mult = rate;
    if (!first && span) {
        uint64_t o = line_at(t, &g_line);
        int64_t err = (int64_t)(c - o);
        if (err < MAX_SLEW_NS && err > -MAX_SLEW_NS && err > -(int64_t)span_ns / 2) {
            /* start at the old line's value, reach clock + span_ns after span */
            n0 = o;
            mult = (uint64_t)((((unsigned __int128)(uint64_t)((int64_t)span_ns + err)) << 32) / span);
        }
    }
    uint32_t s = g_line.seq;
    STORE(&g_line.seq, s + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    STORE(&g_line.t0, t);
    STORE(&g_line.n0, n0);
    STORE(&g_line.mult, mult);
    STORE(&g_line.span, span);
    STORE(&g_line.rate, rate);
    STORE_REL(&g_line.seq, s + 2);
    g_pair_t = t;
    g_pair_n = c;
    if (first) {
        snprintf(g_source, sizeof(g_source), "ktime: tsc (invariant, clocksource tsc; %llu kHz)",
                 (unsigned long long)(((unsigned __int128)1000000 << 32) / rate));
        STORE_REL(&g_mode, MODE_TSC);
    }
}

static __attribute__((noinline)) uint64_t ktime_slow(void)
{
    int mode = LOAD_ACQ(&g_mode);
    if (mode == MODE_UNSET) {
        time_init();   /* helpers called without the runtime (tests, benches) */
        mode = LOAD_ACQ(&g_mode);
    }
    if (mode == MODE_CLOCK)
        return monotonic_for_thread(clock_ns(CLOCK_MONOTONIC));
    if (!__atomic_exchange_n(&g_busy, 1, __ATOMIC_ACQUIRE)) {
        resync();
        STORE_REL(&g_busy, 0);
    }
    if (LOAD_ACQ(&g_mode) != MODE_TSC)
        return monotonic_for_thread(clock_ns(CLOCK_MONOTONIC));
    for (int i = 0; i < 4; i++) {
        uint32_t s = LOAD_ACQ(&g_line.seq);
        if (s & 1)
            continue;
        uint64_t ns = line_at(__rdtsc(), &g_line);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD(&g_line.seq) == s)
            return monotonic_for_thread(ns);
    }
    /* the re-anchoring thread was preempted mid-write */
    return monotonic_for_thread(clock_ns(CLOCK_MONOTONIC));
}

GH_FN(ktime_get_ns)
{
    if (__builtin_expect(LOAD(&g_mode) == MODE_TSC, 1)) {
        uint32_t s = LOAD_ACQ(&g_line.seq);
        uint64_t t = __rdtsc();
        uint64_t d = t - LOAD(&g_line.t0);
        if (__builtin_expect(!(s & 1) && d < LOAD(&g_line.span), 1)) {
            uint64_t ns = LOAD(&g_line.n0) + mul_shift(d, LOAD(&g_line.mult));
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__builtin_expect(LOAD(&g_line.seq) == s, 1))
                return monotonic_for_thread(ns);
        }
    }
    return GFP_CALL0(ktime_slow);   /* clock_gettime, calibration: xmm saved */
}

void gh_ktime_inline(struct gvm_helper_inline *out)
{
    *out = (struct gvm_helper_inline){ .kind = GVM_INLINE_TSC_LINE,
                                       .tls_offset = gh_tls_offset(&t_last),
                                       .line = (const struct gvm_tsc_line *)&g_line };
}

/* These two are called rarely: straight from the vDSO. */
GH_FN(ktime_get_boot_ns)   { return clock_ns(CLOCK_BOOTTIME); }
GH_FN(ktime_get_coarse_ns) { return clock_ns(CLOCK_MONOTONIC_COARSE); }
