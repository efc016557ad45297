/*
 * sf_run.h - the soundness fuzzer's oracle: run an accepted program on the
 * VM's checked interpreter (every load and store bounds-checked against
 * ctx, the live stack frames and the memory the program legitimately got a
 * pointer to; stack reads must hit initialised bytes; a step limit) with
 * real maps, several random contexts and map contents, callbacks
 * (bpf_loop, for_each_map_elem), map-in-map and tail calls. Any violation
 * means the verifier accepted an unsafe program.
 *
 * Map-in-map: the outer map's slots are filled on every run with inner maps
 * through the map layer, offering it both the declared template and a map
 * of another shape (which it must refuse; if it took one, the program's
 * accesses to it would overrun and be reported). Tail calls: slot 0 of the
 * prog array is the program itself (a run depends on nothing but the
 * program and the seed), slot 1 is empty.
 */
#ifndef GRAFT_TESTS_FUZZ_SF_RUN_H
#define GRAFT_TESTS_FUZZ_SF_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "vm/isa.h"

struct sf_env;

/* Maps of sf_map_defs() and the helper table. 0, or -1 with err filled. */
int sf_env_new(struct sf_env **out, char *err, size_t errlen);
void sf_env_free(struct sf_env *e);

/* Run insns `runs` times on the checked interpreter, each run with its own
 * context and map contents drawn from seed. Returns 0 when every run was
 * clean, 1 on a violation (described in msg), -1 when it could not run. */
int sf_run(struct sf_env *e, const struct bpf_insn *insns, uint32_t n, int runs,
           uint64_t seed, char *msg, size_t msglen);

/* The same for a packet program (sf_pkt.h): each run with its own packet
 * (random length and metadata) in a region of exactly that size. */
int sf_run_pkt(struct sf_env *e, const struct bpf_insn *insns, uint32_t n, int runs,
               uint64_t seed, char *msg, size_t msglen);

/* Run insns, accepted with the verifier's facts (gver_result.facts, one per
 * insn), on the interpreter and on the JIT given the facts, `runs` times
 * with the same context and map contents for both. Returns 0 when r0 and
 * the maps' contents agreed every time, 1 when not (msg says how), -1 when
 * it could not run. Not for packet programs. */
struct gvm_insn_fact;
int sf_run_diff_facts(struct sf_env *e, const struct bpf_insn *insns, uint32_t n,
                      const struct gvm_insn_fact *facts, int runs, uint64_t seed, char *msg,
                      size_t msglen);

/* Until called again: facts non-NULL (the verifier's, one per insn of the
 * programs run next) makes sf_run and sf_run_pkt check speculative paths
 * too (GVM_F_SPECULATIVE: the other side of each jump the facts say is
 * decided, as the verifier's Spectre rules explore it); NULL: real paths
 * only. */
void sf_env_speculate(struct sf_env *e, const struct gvm_insn_fact *facts);

/* Did the map layer accept an inner map that does not match the outer
 * map's declared template (count since sf_env_new)? */
uint64_t sf_env_bad_inner_accepted(const struct sf_env *e);

#endif
