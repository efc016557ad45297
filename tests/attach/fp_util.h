/*
 * fp_util.h - shared by the tests of the hooks' vector-register handling
 * (syscall_fp_test.c, func_fp_test.c, comm_rename_test.c): JIT-compiling
 * an assembled program as the agent would, the maps they use, the CPU's
 * AVX support, a clobber of every vector register, and the count of
 * registers a hooked call changed, on one thread and on new ones.
 */
#ifndef GRAFT_TESTS_ATTACH_FP_UTIL_H
#define GRAFT_TESTS_ATTACH_FP_UTIL_H

#include <stdint.h>

#include "maps/maps.h"
#include "vm/vm.h"

/* Assemble and JIT text with graft's helpers, `map:K` (1 <= K < n_maps)
 * standing for maps[K], which must outlive the program; *fp_free =
 * ghelper_prog_fp_free of it. Exits on failure. */
struct gvm_prog *fp_jit(const char *text, struct gmap *const *maps, int n_maps, int *fp_free);
/* A map with 4-byte keys, its shm name already unlinked. Exits on failure. */
struct gmap *fp_make_map(enum gmap_type type, uint32_t value_size, uint32_t entries);
/* 1 if the CPU has AVX and the OS saves its state. */
int fp_cpu_has_avx(void);
/* Sets xmm0-15 to all ones and, with avx, clears the upper halves of
 * ymm0-15 (vzeroupper): what a handler using vector code may do. */
void fp_clobber_vectors(int avx);

/* Registers a caller found changed across its hooked calls. */
struct fp_damage {
    long calls, xmm_bad, upper_bad;   /* calls made, registers found changed */
    char first[160];                  /* the first change, in words */
};
/* Compares registers 0..regs-1 of want and got, `stride` bytes apart (16:
 * xmm images, 32: ymm images): the low 16 bytes of each, and with upper
 * the next 16. The first change is named "WHAT xmmN changed on call CALL"
 * (no "WHAT " when what is NULL). */
void fp_compare(const uint8_t *want, const uint8_t *got, int regs, int stride, int upper,
                const char *what, long call, struct fp_damage *d);
/* run(arg, d) on this thread, then on each of `threads` new threads in
 * turn (whose first helper calls take the per-thread general paths); the
 * damage of all of them summed. */
struct fp_damage fp_on_threads(void (*run)(void *arg, struct fp_damage *d), void *arg,
                               int threads);

#endif
