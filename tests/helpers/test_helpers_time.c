/*
 * test_helpers_time.c - bpf_ktime_get_ns against CLOCK_MONOTONIC (h_time.c):
 * from the TSC where the kernel's clocksource is the TSC, else (and with
 * GRAFT_KTIME=clock, the second ctest entry) from clock_gettime. Over about
 * two seconds - forty re-anchorings of the TSC line, with pauses longer than
 * an interval in between - from three threads and a forked child: every
 * value lies within BOUND_NS of clock_gettime calls made just before and
 * after it, and no thread ever sees its value decrease. Every other value
 * comes from a JIT'd program that computes it inline (ghelper_inline_table,
 * GVM_INLINE_TSC_LINE), so the two share each thread's last value; on the
 * TSC that program must call the helper rarely (only where the line is
 * being re-anchored or ends), on clock_gettime always.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "th.h"
#include "vm/isa.h"
#include "vm/vm.h"

#define BOUND_NS 50000ll           /* 50 us; measured well under 1 us here */
#define RUN_NS   2000000000ull

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ktime_helper(void)
{
    return ghelper_table()[5](0, 0, 0, 0, 0);
}

/* `call 5; exit`, JIT-compiled with the inline table; its fallback calls
 * are counted. */
static struct gvm_prog *g_ktime_prog;
static gvm_native_fn g_ktime_jit;
static gvm_helper_fn g_counting[BPF_MAX_HELPER_ID];
static long g_fallbacks, g_inline_calls;

static uint64_t counting_ktime(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    __atomic_fetch_add(&g_fallbacks, 1, __ATOMIC_RELAXED);
    return ghelper_table()[5](r1, r2, r3, r4, r5);
}

static void jit_ktime(void)
{
    static struct gvm_env env;
    static const struct bpf_insn insns[] = { BPF_CALL_HELPER(5), BPF_EXIT_INSN() };
    memcpy(g_counting, ghelper_table(), sizeof(g_counting));
    g_counting[5] = counting_ktime;
    env.helpers = g_counting;
    env.helper_inline = ghelper_inline_table();
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env };
    struct graft_err err;
    if (gvm_prog_create(insns, 2, &po, &g_ktime_prog, &err) != 0) {
        fprintf(stderr, "gvm_prog_create: %s\n", err.msg);
        exit(2);
    }
    g_ktime_jit = gvm_prog_native(g_ktime_prog);
    CHECK(g_ktime_jit != NULL);
    CHECK_EQ(ghelper_inline_table()[5].kind, GVM_INLINE_TSC_LINE);
}

/* The helper and the inline read, in turn. */
static uint64_t ktime(void)
{
    static __thread unsigned n;
    if (++n & 1)
        return ktime_helper();
    __atomic_fetch_add(&g_inline_calls, 1, __ATOMIC_RELAXED);
    return g_ktime_jit(NULL, 0);
}

struct run {
    long calls, backwards, outside;
    int64_t worst;                 /* largest distance outside [c1, c2] */
};

static void *run_thread(void *arg)
{
    struct run *r = arg;
    uint64_t end = mono() + RUN_NS, prev = 0;
    for (long i = 0;; i++) {
        uint64_t c1 = mono(), k = ktime(), c2 = mono();
        int64_t off = (int64_t)k < (int64_t)c1 ? (int64_t)(c1 - k)
                    : (int64_t)k > (int64_t)c2 ? (int64_t)(k - c2) : 0;
        if (off > r->worst)
            r->worst = off;
        r->outside += off > BOUND_NS;
        r->backwards += k < prev;
        prev = k;
        r->calls++;
        if (i % 200000 == 199999) {
            /* longer than an interval (50 ms) with no call: the next call
             * re-anchors a line extrapolated beyond its span */
            struct timespec p = {0, 80000000};
            nanosleep(&p, NULL);
        }
        if (c2 > end)
            break;
    }
    return NULL;
}

static void check_run(const char *who, const struct run *r)
{
    fprintf(stderr, "%s: %ld calls, worst distance outside the clock_gettime pair %lld ns\n", who,
            r->calls, (long long)r->worst);
    CHECK(r->calls > 1000);
    CHECK_EQ(r->backwards, 0);
    CHECK_EQ(r->outside, 0);
}

/* The source line names the TSC exactly when it can be used. */
static void test_source(void)
{
    struct timespec p = {0, 5000000};
    nanosleep(&p, NULL);           /* past the 2 ms calibration */
    (void)ktime_helper();
    const char *src = ghelper_ktime_source();
    fprintf(stderr, "%s\n", src);
    char cs[32] = "";
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, cs, sizeof(cs) - 1);
        cs[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    const char *force = getenv("GRAFT_KTIME");
    if (force && strcmp(force, "clock") == 0)
        CHECK(strstr(src, "ktime: clock_gettime (forced by GRAFT_KTIME=clock)") == src);
    else if (strncmp(cs, "tsc", 3) != 0)
        CHECK(strstr(src, "ktime: clock_gettime (") == src);
    else
        /* invariant-TSC machines with the tsc clocksource (every x86-64 VM
         * this runs on); a CPU without it says clock_gettime and why */
        CHECK(strstr(src, "ktime: tsc (") == src || strstr(src, "not invariant") != NULL);
}

static void test_threads(void)
{
    pthread_t th[3];
    struct run r[3];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&th[i], NULL, run_thread, &r[i]) == 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        check_run("thread", &r[i]);
    }
}

static void test_fork(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct run r = {0};
        uint64_t end = mono() + 200000000ull, prev = 0;
        while (mono() < end) {
            uint64_t c1 = mono(), k = ktime(), c2 = mono();
            r.outside += (int64_t)(c1 - k) > BOUND_NS || (int64_t)(k - c2) > BOUND_NS;
            r.backwards += k < prev;
            prev = k;
        }
        _exit(r.outside || r.backwards ? 1 : 0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* On the TSC the inline read answers nearly every call (it falls back
 * where the line ends, at most every 50 ms and after each pause, and while
 * it is rewritten); on clock_gettime it never does. */
static void check_fallbacks(void)
{
    int tsc = strncmp(ghelper_ktime_source(), "ktime: tsc (", 12) == 0;
    fprintf(stderr, "inline ktime: %ld calls, %ld fell back to the helper\n", g_inline_calls,
            g_fallbacks);
    CHECK(g_inline_calls > 1000);
    if (tsc)
        CHECK(g_fallbacks * 100 < g_inline_calls);
    else
        CHECK_EQ(g_fallbacks, g_inline_calls);
}

/* Until the first line is drawn (2 ms after the first call) every read is
 * the helper's: counted from then on. */
static void wait_calibrated(void)
{
    uint64_t end = mono() + 1000000000ull;
    while (strstr(ghelper_ktime_source(), "calibrating") && mono() < end)
        (void)ktime_helper();
    g_fallbacks = g_inline_calls = 0;
}

int main(void)
{
    jit_ktime();
    test_source();
    wait_calibrated();
    test_threads();
    check_fallbacks();
    test_fork();
    gvm_prog_free(g_ktime_prog);
    TH_DONE();
}
