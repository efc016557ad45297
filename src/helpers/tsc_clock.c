/*
 * tsc_clock.c - CLOCK_MONOTONIC from the CPU's time-stamp counter, for
 * bpf_ktime_get_ns on every hooked syscall (a vDSO clock_gettime costs
 * about twice an ordered rdtsc here).
 *
 * Used only where the kernel itself keeps time with the TSC
 * (clocksource0/current_clocksource is "tsc": the kernel checked that the
 * counters of all CPUs agree and never stop) and the CPU says constant_tsc
 * and nonstop_tsc; otherwise gh_mono_ns() is clock_gettime(CLOCK_MONOTONIC).
 *
 * ns = base_ns + (tsc - base_tsc) * mult >> SHIFT. Calibration: the first
 * CALIB_NS of calls read clock_gettime (so they are exact) and note the
 * first (tsc, ns) pair; then mult comes from that span and every RESYNC_NS
 * one thread re-anchors: mult from the whole span since the first pair (the
 * error of a pair, tens of ns, shrinks with the span), base_ns continuing
 * the old line at the new base_tsc (never backwards) and either jumping
 * forward to CLOCK_MONOTONIC if behind or, if ahead by d, running slower by
 * d over the next period. So the clock is monotonic and stays within a few
 * microseconds of CLOCK_MONOTONIC (tests/helpers checks both).
 *
 * Readers take no lock: a seqcount around the parameters, and rdtscp (which
 * waits for the earlier loads) inside it, so a reader that sees the new
 * parameters read the counter after the writer's anchor - which is what
 * keeps it monotonic across threads too, as the kernel's rdtsc_ordered.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "helpers/helpers_internal.h"

#define SHIFT      32
#define CALIB_NS   20000000ull      /* 20 ms of exact reads before the first mult */
#define RESYNC_NS  100000000ull     /* re-anchor every 100 ms */

enum { TSC_UNKNOWN, TSC_NO, TSC_CALIBRATING, TSC_ON };

static struct {
    unsigned seq;                   /* odd while the writer changes the rest */
    int state;
    int busy;                       /* a thread is calibrating or re-anchoring */
    uint64_t base_tsc, base_ns, mult, resync_cycles;
    uint64_t first_tsc, first_ns;   /* the first pair: calibration span */
} tc;

#define LOAD(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQ(p)  __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rdtscp(void)
{
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* The first bytes of a procfs/sysfs file, NUL-terminated. No stdio:
 * this may run inside a hooked syscall made by malloc itself. */
static void read_head(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t n = 0;
    ssize_t r;
    while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
}

/* Is word a whole word of the first line of s that starts with key? */
static int line_has_word(const char *s, const char *key, const char *word)
{
    const char *line = strstr(s, key);
    if (!line)
        return 0;
    const char *end = strchr(line + 1, '\n');
    size_t w = strlen(word);
    for (const char *p = strstr(line, word); p && (!end || p < end); p = strstr(p + 1, word))
        if (p[-1] == ' ' && (p[w] == ' ' || p[w] == '\n' || p[w] == '\0'))
            return 1;
    return 0;
}

static int tsc_usable(void)
{
    char buf[8192];
    read_head("/sys/devices/system/clocksource/clocksource0/current_clocksource", buf, 64);
    if (strcmp(buf, "tsc\n") != 0)
        return 0;
    read_head("/proc/cpuinfo", buf, sizeof(buf));      /* the first CPU's flags */
    return line_has_word(buf, "\nflags", "constant_tsc") && line_has_word(buf, "\nflags", "nonstop_tsc");
}

/* A (tsc, ns) pair: the counter read between two clock reads, taken from
 * the tightest of a few tries. */
static void pair(uint64_t *tsc, uint64_t *mid, uint64_t *hi)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = mono_ns(), t = rdtscp(), b = mono_ns();
        if (b - a < best) {
            best = b - a;
            *tsc = t;
            *mid = a + (b - a) / 2;
            *hi = b;
        }
    }
}

static inline uint64_t line_at(uint64_t base_tsc, uint64_t base_ns, uint64_t mult, uint64_t t)
{
    uint64_t d = t > base_tsc ? t - base_tsc : 0;
    return base_ns + (uint64_t)(((unsigned __int128)d * mult) >> SHIFT);
}

/* Under busy: publish new parameters anchored now. */
static void anchor(void)
{
    STORE(&tc.seq, tc.seq + 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint64_t t, mid, hi;
    pair(&t, &mid, &hi);
    uint64_t span_ns = mid - tc.first_ns, span_tsc = t - tc.first_tsc;
    uint64_t mult = span_tsc ? (uint64_t)(((unsigned __int128)span_ns << SHIFT) / span_tsc) : 0;
    /* the first line starts at the pair's upper bound: no value read
     * before it (exact, while calibrating) can be later */
    uint64_t base_ns = tc.state == TSC_ON ? mid : hi;
    if (tc.state == TSC_ON) {
        uint64_t cont = line_at(tc.base_tsc, tc.base_ns, tc.mult, t);
        if (cont > mid) {
            /* ahead by d: never step back; run slower until the next anchor */
            uint64_t d = cont - mid;
            if (d > RESYNC_NS / 2)
                d = RESYNC_NS / 2;
            mult = (uint64_t)(((unsigned __int128)mult * (RESYNC_NS - d)) / RESYNC_NS);
            base_ns = cont;
        }
    }
    if (mult) {
        tc.base_tsc = t;
        tc.base_ns = base_ns;
        tc.mult = mult;
        tc.resync_cycles = (uint64_t)(((unsigned __int128)RESYNC_NS << SHIFT) / mult);
        __atomic_store_n(&tc.state, TSC_ON, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&tc.seq, tc.seq + 1, __ATOMIC_RELEASE);
}

/* Re-anchor unless another thread is at it; 1 if this one did. */
static __attribute__((noinline)) int try_anchor(void)
{
    if (__atomic_exchange_n(&tc.busy, 1, __ATOMIC_ACQUIRE))
        return 0;
    anchor();
    __atomic_store_n(&tc.busy, 0, __ATOMIC_RELEASE);
    return 1;
}

/* Not (yet) on the TSC: find out, calibrate, or read the clock. */
static __attribute__((noinline)) uint64_t not_on(int st)
{
    if (st == TSC_UNKNOWN && !__atomic_exchange_n(&tc.busy, 1, __ATOMIC_ACQUIRE)) {
        if (LOAD(&tc.state) == TSC_UNKNOWN) {
            uint64_t hi;
            int ok = tsc_usable();
            if (ok)
                pair(&tc.first_tsc, &tc.first_ns, &hi);
            __atomic_store_n(&tc.state, ok ? TSC_CALIBRATING : TSC_NO, __ATOMIC_RELEASE);
        }
        __atomic_store_n(&tc.busy, 0, __ATOMIC_RELEASE);
    }
    uint64_t now = mono_ns();
    if (st == TSC_CALIBRATING && now - tc.first_ns >= CALIB_NS)
        try_anchor();
    return now;
}

uint64_t gh_mono_ns(void)
{
    for (;;) {
        unsigned s = LOAD_ACQ(&tc.seq);
        int st = LOAD(&tc.state);
        if (__builtin_expect(st != TSC_ON, 0))
            return not_on(st);
        if (s & 1)
            continue;
        uint64_t bt = LOAD(&tc.base_tsc), bn = LOAD(&tc.base_ns), m = LOAD(&tc.mult);
        uint64_t rc = LOAD(&tc.resync_cycles);
        uint64_t t = rdtscp();
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__builtin_expect(LOAD(&tc.seq) != s, 0))
            continue;
        if (__builtin_expect(t > bt && t - bt >= rc, 0) && try_anchor())
            continue;           /* read again with the new line */
        return line_at(bt, bn, m, t);
    }
}

int gh_mono_uses_tsc(void)
{
    gh_mono_ns();
    return LOAD_ACQ(&tc.state) != TSC_NO;
}
