/*
 * ktv.h - the kernel 6.1 test_verifier table
 * (the verifier/ directory of tools/testing/selftests/bpf in Debian's linux-source-6.1),
 * seen through plain types: the table is compiled at build time in its own
 * translation unit, against the kernel's headers (gen_table.py), and the
 * runner reads it through these accessors without including them.
 */
#ifndef GRAFT_TESTS_VERIFIER_KTV_H
#define GRAFT_TESTS_VERIFIER_KTV_H

#include <stdint.h>

/* The kernel's fixup arrays, in struct bpf_test's order: each binds the
 * ld_imm64 instructions at its indexes to one map the test driver creates. */
enum ktv_fixup {
    KTV_MAP_HASH_8B,          /* hash, key 8, value 8 */
    KTV_MAP_HASH_48B,         /* hash, key 8, value 48 (struct test_val) */
    KTV_MAP_HASH_16B,         /* hash, key 8, value 16 (struct other_val) */
    KTV_MAP_ARRAY_48B,        /* array, key 4, value 48, 1 entry */
    KTV_MAP_SOCKMAP,
    KTV_MAP_SOCKHASH,
    KTV_MAP_XSKMAP,
    KTV_MAP_STACKTRACE,
    KTV_PROG1,                /* prog array, 4 entries */
    KTV_PROG2,                /* prog array, 8 entries */
    KTV_MAP_IN_MAP,           /* array of maps, inner: array key 4 value 4 */
    KTV_CGROUP_STORAGE,
    KTV_PERCPU_CGROUP_STORAGE,
    KTV_MAP_SPIN_LOCK,        /* array, value { int cnt; struct bpf_spin_lock l; } */
    KTV_MAP_ARRAY_RO,         /* array 48, BPF_F_RDONLY_PROG */
    KTV_MAP_ARRAY_WO,         /* array 48, BPF_F_WRONLY_PROG */
    KTV_MAP_ARRAY_SMALL,      /* array, value 1 byte */
    KTV_SK_STORAGE_MAP,
    KTV_MAP_EVENT_OUTPUT,     /* perf event array */
    KTV_MAP_REUSEPORT_ARRAY,
    KTV_MAP_RINGBUF,          /* ring buffer, 4096 bytes */
    KTV_MAP_TIMER,            /* array, value { struct bpf_timer t; } */
    KTV_MAP_KPTR,             /* array, value of three kptrs */
    KTV_N_FIXUPS
};

#define KTV_MAX_FIXUPS 8      /* the kernel's MAX_FIXUPS */

/* The kernel's expected results (enum in struct bpf_test). */
enum ktv_result { KTV_UNDEF, KTV_ACCEPT, KTV_REJECT, KTV_VERBOSE_ACCEPT };

struct ktv_case {
    const char *descr;
    const uint64_t *insns;    /* struct bpf_insn, 8 bytes each, little-endian layout */
    uint32_t n_insns;
    int result, result_unpriv;                /* enum ktv_result */
    const char *errstr, *errstr_unpriv;
    uint32_t prog_type;                       /* BPF_PROG_TYPE_*; 0 means socket filter */
    uint32_t expected_attach_type;
    uint32_t flags;                           /* F_NEEDS_EFFICIENT_UNALIGNED_ACCESS = 1,
                                               * F_LOAD_WITH_STRICT_ALIGNMENT = 2, BPF_F_* */
    int fixups[KTV_N_FIXUPS][KTV_MAX_FIXUPS]; /* instruction indexes, 0-terminated */
    const char *kfunc_fixup[KTV_MAX_FIXUPS];  /* kfunc names bound by BTF id (NULL-terminated) */
    int kfunc_fixup_insn[KTV_MAX_FIXUPS];
    const char *attach_kfunc;                 /* tracing/lsm: the kernel function attached to */
    int has_btf;                              /* brings its own BTF or func_info */
    void *fill;                               /* generated program (freed by ktv_release) */
};

unsigned ktv_count(void);
/* Fills c with test i; generated programs (fill_helper) are built here. */
void ktv_get(unsigned i, struct ktv_case *c);
void ktv_release(struct ktv_case *c);

#endif
