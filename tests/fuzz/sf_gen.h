/*
 * sf_gen.h - the soundness fuzzer's program generator: structurally valid
 * BPF programs (not random bytes) built from the shapes verifier bugs hide
 * in - subprograms and callbacks (bpf_loop, for_each_map_elem) that write
 * the caller's stack, helper writes through variable-offset and
 * variable-size stack pointers, spills and partial spill overwrites, values
 * read back from the stack and used as offsets, branches on ranged scalars
 * joining again, bounded loops, map lookups, map-in-map and tail calls.
 *
 * Programs are shaped so that most of them are safe and accepted: values
 * used as offsets come from a pool of in-bounds constants, and only now and
 * then from "wild" constants, helper-written bytes or context data. A
 * verifier that loses track of where such a value went accepts a program
 * that then runs out of bounds (see sf_run.h).
 *
 * The programs expect the maps of sf_map_defs() and a read-only context of
 * SF_CTX_SIZE bytes. One 64-bit seed gives one program, always the same.
 */
#ifndef GRAFT_TESTS_FUZZ_SF_GEN_H
#define GRAFT_TESTS_FUZZ_SF_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "maps/maps.h"
#include "vm/isa.h"

#define SF_MAX_INSNS 4096
#define SF_CTX_SIZE  64

/* Indices into sf_map_defs(). */
enum {
    SF_MAP_ARRAY = 0,          /* array, 4 x 64-byte values */
    SF_MAP_HASH = 1,           /* hash, 8 x 64-byte values */
    SF_MAP_OUTER = 2,          /* array of maps; inner template: array 2 x 16 bytes */
    SF_MAP_PROGS = 3,          /* prog array, 2 entries */
    SF_N_MAPS
};

/* Which shapes to generate (all by default; turning some off shows which
 * bug a shape finds, and the kernel cannot load callbacks without BTF). */
struct sf_gen_opts {
    bool no_callbacks;         /* bpf_loop / for_each_map_elem */
    bool no_subprogs;          /* bpf-to-bpf calls */
    bool no_helper_writes;     /* probe_read* into the stack */
    bool no_map_in_map;
    bool no_tail_calls;
    /* Off by default: the verifier accepts atomics at misaligned addresses
     * (tests/verifier/fuzz_findings.md), so every run would stop there. */
    bool misaligned_atomics;
};

/* Turn off the shape named name ("callbacks", "subprogs", "helper_writes",
 * "map_in_map", "tail_calls") in opts; -1 if there is none. */
int sf_gen_without(struct sf_gen_opts *opts, const char *name);
/* Turn on an optional shape ("misaligned_atomics"); -1 if there is none. */
int sf_gen_with(struct sf_gen_opts *opts, const char *name);

struct sf_prog {
    struct bpf_insn insns[SF_MAX_INSNS];
    uint32_t n;
};

const struct gmap_def *sf_map_defs(void);

/* Generate the program of seed into *out. */
void sf_generate(uint64_t seed, const struct sf_gen_opts *opts, struct sf_prog *out);

/* xorshift64*, the fuzzer's one random source (state must be non-zero). */
uint64_t sf_rand(uint64_t *state);
/* A well-mixed non-zero state from any 64-bit value. */
uint64_t sf_mix(uint64_t x);

#endif
