/*
 * vtest.h - shared by the verifier's tests: the corpus case format, policy
 * building, and running accepted programs under the VM's checked
 * interpreter (the ground truth for soundness).
 *
 * Case files (cases/NAME.txt):
 *   == name                      starts a case
 *   expect: accept               or: expect: reject "substring of the reason"
 *   ctx: raw N | rawrw N | pt_regs | sys_enter | none      (default raw 64)
 *   maps: hash k=4 v=8 n=16; array v=16 n=4; ringbuf n=4096; array v=8 rdonly
 *         lock=OFF: the value's BTF puts its bpf_spin_lock at OFF (lock=none:
 *         the value has none; not given: unknown, as without BTF)
 *   policy: leaks | ld_pkt | uninit | nospec | strict_align | budget N | states N | deny ID | mem N | ret MIN MAX
 *   policy: own_copy             graft compat's: probe_read_kernel[_str] denied but for
 *                                copies of the program's own memory (kernel_reads_own_mem)
 *   policy: kfunc ID NAME [scalar:MIN:MAX|any|mem|size|ctx]... [ret:MIN:MAX|void]
 *   policy: ksym ID SIZE [rw]    host variable for LD_IMM64 btf:ID
 *   kernel: skip "why"           not comparable with the kernel (graft-only feature)
 *   then gvm_asm text up to the next "==".
 */
#ifndef GRAFT_TESTS_VTEST_H
#define GRAFT_TESTS_VTEST_H

#include <stdint.h>

#include "verifier/verifier.h"

#define VT_MAX_MAPS 8
#define VT_MAX_KF 4

struct vcase {
    char name[128];
    const char *file;
    int line;
    int expect_accept;
    char substr[256];
    int ctx_kind;              /* 0 raw, 1 rawrw, 2 pt_regs, 3 sys_enter, 4 none */
    uint32_t ctx_size;
    struct gmap_def maps[VT_MAX_MAPS];
    int32_t lock_offs[VT_MAX_MAPS];   /* gver_input.map_lock_offs */
    struct gver_map_kptrs kptrs[VT_MAX_MAPS];   /* gver_input.map_kptrs */
    uint32_t n_maps;
    int leaks;
    int ld_pkt;
    int uninit;                /* allow_uninit_stack (the kernel's root rule) */
    int nospec;                /* spec_bypass (the kernel's root rule: no Spectre v1 rules) */
    int strict_align;          /* gver_policy.strict_align */
    int own_copy;              /* kernel_reads_own_mem, 113 and 115 denied */
    int ret_checked;           /* policy: ret given (even "ret 0 0") */                /* LD_ABS / LD_IND allowed (a socket filter's) */
    uint64_t budget, states, mem;
    int64_t ret_min, ret_max;
    uint32_t deny[8];
    int n_deny;
    struct gver_kfunc kf[VT_MAX_KF];
    char kf_names[VT_MAX_KF][32];
    int n_kf;
    struct gver_ksym ks[VT_MAX_KF];
    int n_ks;
    int kernel_skip;
    char *text;                /* assembly, malloc'd */
};

/* The case files (*.txt) of dir, sorted, as malloc'd paths in files[];
 * returns how many (at most max), or -1 (said on stderr) when dir cannot
 * be read. */
int vt_case_files(const char *dir, char **files, int max);

/* Parse a whole case file; returns the number of cases or -1. */
int vt_parse_file(const char *path, struct vcase **out);
void vt_free_cases(struct vcase *c, int n);

/* A policy for the case (free with free()). */
struct gver_policy *vt_policy(const struct vcase *c);

/* Run insns under the checked interpreter with `runs` random contexts and
 * real maps. Returns 0 if no run hit a violation, 1 on a violation (message
 * in msg), -1 if it could not run. */
int vt_run_checked(const struct bpf_insn *insns, uint32_t n, const struct gmap_def *maps,
                   uint32_t n_maps, uint32_t ctx_size, int runs, uint64_t seed,
                   char *msg, size_t msglen);

/* Run insns (accepted with gver_input.record_facts) on the interpreter and
 * on the JIT given facts->facts, `runs` times with random contexts and
 * fresh maps filled alike (ktime returning a constant). Returns 0 when
 * every run gave the same r0 and map contents, 1 when not (msg says how),
 * -1 if it could not run. */
int vt_run_diff_facts(const struct bpf_insn *insns, uint32_t n, const struct gmap_def *maps,
                      uint32_t n_maps, uint32_t ctx_size, int runs, uint64_t seed,
                      const struct gver_result *facts, char *msg, size_t msglen);

/* A program of a kernel program type (enum gprog_ktype), verified offline
 * with the type's context rules, helper set and, when privileged, the
 * kernel's root rules; expect NULL wants it accepted, else rejected with a
 * reason containing expect. */
struct vt_kcase {
    const char *name;
    int ktype;
    const char *section;
    int privileged;
    const char *expect;
    const char *text;
};

/* Verify c against maps. Prints "FAIL ..." and returns 1 when the verdict
 * or the reason is not the expected one. */
int vt_kernel_case(const struct vt_kcase *c, const struct gmap_def *maps, uint32_t n_maps);
/* The same under the kernel's strict alignment (BPF_F_STRICT_ALIGNMENT). */
int vt_kernel_case_strict(const struct vt_kcase *c, const struct gmap_def *maps, uint32_t n_maps);

#endif
