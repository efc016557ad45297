/*
 * bench_helpers.c - cost of the hot helpers, called through the helper
 * table as a program would. Prints `BENCH <name> <value> ns` lines; runs in
 * well under a second. process_vm_readv is measured as the baseline the
 * safe reader replaces.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "helpers/helpers.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static gvm_helper_fn fn(const char *name)
{
    return ghelper_table()[ghelper_by_name(name)->id];
}

#define BENCH(label, iters, body)                                           \
    do {                                                                    \
        uint64_t t0_ = now_ns();                                            \
        for (long i_ = 0; i_ < (iters); i_++) {                             \
            body;                                                           \
            __asm__ volatile("" ::: "memory");                              \
        }                                                                   \
        printf("BENCH %s %.1f ns\n", label,                                 \
               (double)(now_ns() - t0_) / (double)(iters));                 \
    } while (0)

int main(void)
{
    static char src[256] = "a string of some thirty-two bytes";
    char dst[256];
    gvm_helper_fn rd = fn("probe_read_user"), rds = fn("probe_read_user_str");
    gvm_helper_fn kt = fn("ktime_get_ns"), pt = fn("get_current_pid_tgid");
    gvm_helper_fn cm = fn("get_current_comm");
    uint64_t s = (uint64_t)(uintptr_t)src, d = (uint64_t)(uintptr_t)dst;

    rd(d, 8, s, 0, 0);                        /* install the handler */
    BENCH("helpers.probe_read_user_8", 2000000, rd(d, 8, s, 0, 0));
    BENCH("helpers.probe_read_user_64", 2000000, rd(d, 64, s, 0, 0));
    BENCH("helpers.probe_read_user_str_32", 2000000, rds(d, 64, s, 0, 0));
    BENCH("helpers.probe_read_user_fault", 20000, rd(d, 8, 4096 * 3, 0, 0));
    BENCH("helpers.ktime_get_ns", 2000000, kt(0, 0, 0, 0, 0));
    BENCH("helpers.get_current_pid_tgid", 2000000, pt(0, 0, 0, 0, 0));
    BENCH("helpers.get_current_comm", 2000000, cm(d, 16, 0, 0, 0));

    pid_t self = getpid();
    BENCH("helpers.process_vm_readv_8_baseline", 200000, ({
        struct iovec l = { dst, 8 }, r = { src, 8 };
        process_vm_readv(self, &l, 1, &r, 1, 0);
    }));
    return 0;
}
