/*
 * prog.h - one source, two compilers: each bench program is compiled by
 * clang as a BPF program (section "prog", r1 = ctx, r2 = len) and by gcc as
 * a native function native_<name>(ctx, len) linked into the bench.
 * Programs use no globals and no maps (no relocations), keep every helper
 * function always_inline (no bpf-to-bpf calls), and read their inputs from
 * ctx so nothing is constant-folded. They must be idempotent: each run
 * leaves ctx so the next run computes the same result.
 *
 * Host helpers (bench_helpers.c) are BPF helper calls by id on the BPF side
 * and plain calls of the same C functions natively, so both pay one call.
 */
#ifndef BENCH_VM_PROG_H
#define BENCH_VM_PROG_H

typedef __UINT64_TYPE__ u64;
typedef __UINT32_TYPE__ u32;
typedef __UINT16_TYPE__ u16;
typedef __UINT8_TYPE__ u8;
typedef __INT64_TYPE__ s64;

#define INLINE static inline __attribute__((always_inline))

#ifdef __bpf__
#define PROG(name) __attribute__((section("prog"), used)) u64 name(void *ctx, u64 len)
#else
#define PROG(name) u64 native_##name(void *ctx, u64 len)
#endif

/* Helpers: bench_mix(a, b) a 64-bit mix; bench_lookup(map, &key) the
 * value (u64) of u32 key in a hash map (map = CTX_PARAM 1), NULL if absent. */
#ifdef __bpf__
static u64 (*const bench_mix)(u64 a, u64 b) = (void *)2;
static u64 *(*const bench_lookup)(u64 map, const u32 *key) = (void *)1;
#else
u64 bench_mix(u64 a, u64 b);
u64 *bench_lookup(u64 map, const u32 *key);
#endif

/* ctx layout shared with bench_vm.c */
#define CTX_PARAM(c, i) (((const u64 *)(c))[i])   /* 8 u64 parameters */
#define CTX_DATA(c)     ((u8 *)(c) + 64)          /* input bytes */
#define CTX_SCRATCH(c)  ((u8 *)(c) + 64 + 16384)  /* work area */

#endif
