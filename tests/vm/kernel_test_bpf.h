/*
 * kernel_test_bpf.h - one case of the Linux kernel's lib/test_bpf.c table,
 * as gen_kernel_test_bpf.py makes it available (the table is compiled from
 * the Debian linux-source package at build time, never copied here).
 */
#ifndef GRAFT_TESTS_VM_KERNEL_TEST_BPF_H
#define GRAFT_TESTS_VM_KERNEL_TEST_BPF_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/isa.h"

#define KTB_MAX_SUBTESTS 3

struct ktb_case {
    const char *descr;
    bool internal;             /* eBPF (INTERNAL); else classic BPF */
    bool generated;            /* built by a fill_helper at run time in the kernel */
    bool expected_fail;        /* FLAG_EXPECTED_FAIL: the kernel rejects it */
    bool no_data;              /* FLAG_NO_DATA */
    bool skb_frag;             /* FLAG_SKB_FRAG */
    const struct bpf_insn *insns;
    uint32_t n_insns;          /* up to the last non-zero instruction, as the kernel counts */
    const uint8_t *data;       /* MAX_DATA bytes */
    uint32_t data_max;
    struct { int data_size; uint32_t result; } sub[KTB_MAX_SUBTESTS];
};

unsigned ktb_count(void);
void ktb_get(unsigned i, struct ktb_case *c);

#endif
