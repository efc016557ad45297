/*
 * iso_gates.h - the PKRU figures every benchmark area prints in its own run
 * (bench/hooks, bench/syscalls, bench/eim), so a gated hook's cost can be
 * read against the hardware floor measured on the same machine, same run.
 */
#ifndef GRAFT_BENCH_ISO_GATES_H
#define GRAFT_BENCH_ISO_GATES_H

#include <stdint.h>

/* giso_init() and whether isolation is on; when it is not, prints
 * "# <names> not measured: no PKU (<status>)" and returns 0. */
int bench_iso_on(const char *names);

/* With isolation on: prints
 *   BENCH wrpkru_pair_ns   two bare WRPKRUs (ext, host) per iteration of an
 *                          emitted loop, minus the empty loop: the floor
 *   BENCH gate_overhead_ns one giso_emit_gate() pair (what a trampoline
 *                          adds) per iteration, minus the empty loop
 * rounds interleaved, medians; iters per loop. Otherwise the "not measured"
 * line. Returns 0, or -1 when the loops could not be built. */
int bench_iso_gates(uint64_t iters, int rounds);

/* 1 when the benchmark should run tiny (GRAFT_BENCH_QUICK set, or we are
 * the /init of a QEMU guest), so the code paths are exercised, not timed. */
int bench_quick(void);

/* As /init of a QEMU guest: mount /proc and /dev/shm. bench_init_done()
 * powers the guest off (no-ops unless pid 1). */
void bench_init_start(void);
void bench_init_done(void);

#endif
