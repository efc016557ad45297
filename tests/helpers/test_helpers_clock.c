/*
 * test_helpers_clock.c - bpf_ktime_get_ns (tsc_clock.c): never goes back,
 * on one thread or from one thread to another, and stays within BOUND_NS of
 * clock_gettime(CLOCK_MONOTONIC), across calibration and several re-anchors
 * (it runs 350 ms: calibration takes 20 ms, re-anchors come every 100).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

#include "helpers/helpers_internal.h"
#include "th.h"

#define BOUND_NS 20000ull          /* 20 us */
#define RUN_NS   350000000ull
#define THREADS  4

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ktime(void)
{
    return H0("ktime_get_ns");
}

/* Each read lies between the clock reads around it, give or take the
 * bound, and is not below the one before. */
static void test_bound_and_monotonic(void)
{
    uint64_t start = mono(), prev = 0, worst = 0;
    long n = 0, back = 0, out = 0;
    for (uint64_t a = start; a - start < RUN_NS; n++) {
        a = mono();
        uint64_t k = ktime(), b = mono();
        if (k < prev)
            back++;
        if (k + BOUND_NS < a || k > b + BOUND_NS)
            out++;
        uint64_t err = k < a ? a - k : k > b ? k - b : 0;
        if (err > worst)
            worst = err;
        prev = k;
    }
    printf("ktime_get_ns: %s, %ld reads, worst distance from CLOCK_MONOTONIC %llu ns\n",
           gh_mono_uses_tsc() ? "TSC" : "clock_gettime", n, (unsigned long long)worst);
    CHECK_EQ(back, 0);
    CHECK_EQ(out, 0);
}

/* A value published by one thread (release) and seen by another (acquire)
 * is never after the other's next read. */
static uint64_t shared_latest;
static long cross_back;

static void *cross_thread(void *arg)
{
    (void)arg;
    uint64_t start = mono();
    long back = 0;
    while (mono() - start < RUN_NS / 2) {
        uint64_t seen = __atomic_load_n(&shared_latest, __ATOMIC_ACQUIRE);
        uint64_t k = ktime();
        if (k < seen)
            back++;
        uint64_t cur = seen;
        while (cur < k && !__atomic_compare_exchange_n(&shared_latest, &cur, k, 0,
                                                       __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            ;
    }
    __atomic_fetch_add(&cross_back, back, __ATOMIC_RELAXED);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, cross_thread, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(cross_back, 0);
}

int main(void)
{
    test_bound_and_monotonic();
    test_threads();
    test_bound_and_monotonic();     /* after the threads' re-anchors */
    TH_DONE();
}
