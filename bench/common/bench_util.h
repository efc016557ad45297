/*
 * bench_util.h - what every benchmark under bench/ times and summarises
 * with: clocks in nanoseconds and the median of a set of rounds. Header-only
 * (static inline), so each bench binary takes it without a library.
 */
#ifndef GRAFT_BENCH_UTIL_H
#define GRAFT_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

/* Wall-clock time: for what waits on other processes or the kernel. */
static inline double bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* This thread's CPU time: on a shared, loaded machine it leaves out the
 * time other work held the CPU. */
static inline double bench_thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n rounds (the upper one for even n); sorts v. */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return v[n / 2];
}

#endif
