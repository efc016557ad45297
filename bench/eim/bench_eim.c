/*
 * bench_eim.c - what an EIM entry costs the host while no extension uses it,
 * and (when isolation is built and PKU is usable) one PKRU gate pair.
 *
 *   concealed_entry_delta_ns: ns per loop iteration with a GRAFT_ENTRY() in
 *   the body minus without, the two loops interleaved over many rounds,
 *   medians of each. A concealed entry is a 5-byte NOP, so this is ~0.
 *   wrpkru_pair_ns, gate_overhead_ns: the PKRU floor and one emitted gate
 *   pair (bench/common/iso_gates.c), as in bench-hooks and bench-syscalls;
 *   c_gate_pair_ns: giso_enter() + giso_leave() (the C gates host code uses
 *   around keyed metadata), per pair.
 */
#include <graft/eim.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef GRAFT_BENCH_HAVE_ISOLATION
#include "iso_gates.h"
#include "isolation/isolation.h"
#include "bench_util.h"
#endif

#define ITERS 1000000
#define ROUNDS 31

/* The same work in both loops: a multiply-add chain the compiler cannot
 * fold (the empty asm makes x opaque each iteration). */
__attribute__((noinline)) static uint64_t loop_plain(uint64_t n, uint64_t x)
{
    for (uint64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + i;
        __asm__ __volatile__("" : "+r"(x));
    }
    return x;
}

__attribute__((noinline)) static uint64_t loop_entry(uint64_t n, uint64_t x)
{
    for (uint64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + i;
        __asm__ __volatile__("" : "+r"(x));
        GRAFT_ENTRY(bench_tick, x, i);
    }
    return x;
}

static void bench_concealed(void)
{
    double plain[ROUNDS], entry[ROUNDS];
    volatile uint64_t sink = 0;
    sink += loop_plain(ITERS / 10, 1) + loop_entry(ITERS / 10, 1);   /* warm up */
    for (int r = 0; r < ROUNDS; r++) {
        /* alternate which goes first so drift hits both equally */
        for (int k = 0; k < 2; k++) {
            int which = (r + k) & 1;
            double t0 = bench_mono_ns();
            sink += which ? loop_entry(ITERS, r) : loop_plain(ITERS, r);
            double dt = (bench_mono_ns() - t0) / ITERS;
            (which ? entry : plain)[r] = dt;
        }
    }
    double mp = bench_median(plain, ROUNDS), me = bench_median(entry, ROUNDS);
    fprintf(stderr, "eim: loop without entry %.3f ns/iter, with GRAFT_ENTRY %.3f ns/iter\n", mp, me);
    printf("BENCH concealed_entry_delta_ns %.3f ns\n", me - mp);
    (void)sink;
}

static void bench_gate(void)
{
#ifdef GRAFT_BENCH_HAVE_ISOLATION
    bench_iso_gates(200000, ROUNDS);
    if (!giso_enabled()) {
        printf("# c_gate_pair_ns not measured: no PKU (%s)\n", giso_status());
        return;
    }
    enum { N = 200000 };
    double v[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = bench_mono_ns();
        for (int i = 0; i < N; i++) {
            giso_enter();
            giso_leave();
        }
        v[r] = (bench_mono_ns() - t0) / N;
    }
    printf("BENCH c_gate_pair_ns %.2f ns\n", bench_median(v, ROUNDS));
#else
    printf("# wrpkru_pair_ns, gate_overhead_ns not measured: graft was built without "
           "src/isolation\n");
#endif
}

int main(void)
{
    bench_concealed();
    bench_gate();
    return 0;
}
