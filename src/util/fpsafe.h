/*
 * fpsafe.h - calling ordinary C from code that runs without a saved
 * floating-point state.
 *
 * The syscall hooks' assembly paths skip saving xmm0-15 when the program
 * calls only helpers marked GHELPER_F_FP_FREE (helpers.h). Such helpers, and
 * everything they reach on their common path, are compiled with
 * -mgeneral-regs-only (the compiler then emits no SSE, AVX or x87
 * instruction) and call nothing else directly: every call of theirs into
 * code that may use vector registers (libc's memcpy, clock_gettime,
 * pthread_once, the maps' general paths) goes through gfp_call, which
 * saves xmm0-15 around it as the hooks' general path does.
 * tests/helpers/fp_free_check.py checks this on the built library.
 */
#ifndef GRAFT_UTIL_FPSAFE_H
#define GRAFT_UTIL_FPSAFE_H

#include <stdint.h>

/* fn(a1, ..., a5) with xmm0-15 saved and restored around it; fn takes up
 * to five integer or pointer arguments and returns an integer or pointer
 * (in rax). Costs about what the hooks' xmm save costs (a few ns). */
uint64_t gfp_call(const void *fn, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                  uint64_t a5) __attribute__((visibility("hidden")));

#define GFP_U(x) ((uint64_t)(uintptr_t)(x))
#define GFP_CALL0(fn) gfp_call((const void *)(fn), 0, 0, 0, 0, 0)
#define GFP_CALL1(fn, a) gfp_call((const void *)(fn), GFP_U(a), 0, 0, 0, 0)
#define GFP_CALL2(fn, a, b) gfp_call((const void *)(fn), GFP_U(a), GFP_U(b), 0, 0, 0)
#define GFP_CALL4(fn, a, b, c, d) \
    gfp_call((const void *)(fn), GFP_U(a), GFP_U(b), GFP_U(c), GFP_U(d), 0)
#define GFP_CALL5(fn, a, b, c, d, e) \
    gfp_call((const void *)(fn), GFP_U(a), GFP_U(b), GFP_U(c), GFP_U(d), GFP_U(e))

#endif
