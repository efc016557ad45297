/*
 * sf_pkt.h - the soundness fuzzer's packet programs: XDP programs (the
 * kernel's xdp_md context, verified with its kernel context rules) that
 * load data, data_end and data_meta, bound packet pointers against the end
 * with random constants in every branch form and operand order, move them
 * by constants and by bounded variable offsets, spill and refill them, load
 * and store at random offsets and sizes, and hand packet bytes to a helper
 * (a map key). Most accesses are inside
 * the checked range; now and then one is just past it, or unchecked, so a
 * verifier that gets a range wrong accepts a program that then runs past
 * data_end (the run puts the packet in a region of its exact size).
 *
 * The context the programs expect: struct xdp_md, SF_PKT_CTX_SIZE bytes
 * (data, data_end, data_meta as 32-bit addresses, then three u32 fields
 * the programs use as variable offsets).
 */
#ifndef GRAFT_TESTS_FUZZ_SF_PKT_H
#define GRAFT_TESTS_FUZZ_SF_PKT_H

#include <stdint.h>

#include "sf_gen.h"
#include "verifier/verifier.h"

#define SF_PKT_CTX_SIZE 24
#define SF_PKT_MAX_LEN  96     /* packet bytes a run may have */
#define SF_PKT_MAX_META 16     /* metadata bytes before the packet */

/* Generate the packet program of seed into *out. */
void sf_generate_pkt(uint64_t seed, struct sf_prog *out);

/* The policy packet programs are verified under: xdp_md with the kernel's
 * xdp rules (malloc'd; free with free()). */
struct gver_policy *sf_pkt_policy(void);

#endif
