/*
 * sf_kernel.h - the soundness fuzzer's optional kernel differential: load
 * the generated programs into the running kernel as tracepoint programs
 * (a read-only context, like the fuzzer's raw 64-byte one) with kernel maps
 * of the same shapes, and compare the kernel's verdict with graft's. Every
 * program graft accepts and the kernel rejects is put in a category by the
 * kernel's reason and written to a Markdown report.
 */
#ifndef GRAFT_TESTS_FUZZ_SF_KERNEL_H
#define GRAFT_TESTS_FUZZ_SF_KERNEL_H

#include <stdint.h>
#include <stdio.h>

#include "vm/isa.h"

struct sf_kernel;

/* NULL (with why) when bpf() cannot be used here: not root, no BPF. */
struct sf_kernel *sf_kernel_new(char *why, size_t whylen);
void sf_kernel_free(struct sf_kernel *k);

/* Load insns (graft's MAP_IDX references) into the kernel: 1 accepted, 0
 * rejected (the reason's last line in reason), -1 could not try. */
int sf_kernel_verdict(struct sf_kernel *k, const struct bpf_insn *insns, uint32_t n,
                      char *reason, size_t reasonlen);

/* Record a comparison: graft's and the kernel's verdicts for the program
 * of seed, with the kernel's reason when it rejected; violated: graft
 * accepted it and the checked run found it unsafe (a known graft bug, kept
 * apart in the report). */
void sf_kernel_record(struct sf_kernel *k, uint64_t seed, int graft_ok, int kernel_ok,
                      const char *kernel_reason, const char *graft_reason, int violated);

/* Write the report (Markdown) and a one-line summary to stdout. */
void sf_kernel_report(struct sf_kernel *k, FILE *out, uint64_t master_seed);

#endif
