/*
 * test_kernel_bpf.c - the Linux kernel's own eBPF test table (lib/test_bpf.c,
 * from Debian's linux-source package, compiled at build time) on both
 * engines: every eBPF case must load and run on the JIT and the
 * interpreter alike and return the kernel's expected (32-bit) result for
 * each of its data sizes.
 *
 * Not run, and counted as such: classic-BPF cases (graft runs eBPF only),
 * cases the kernel generates at run time (fill_helper: kernel code), and
 * cases graft does not load (legacy packet access LD_ABS/LD_IND, which
 * needs an skb) or refuses by its own load rules (a function whose code
 * runs past its last exit: the kernel's interpreter tolerates the dead
 * tail) - both engines must then refuse them alike.
 *
 * Every case graft's verifier accepts (a read-only context of the data's
 * size, the kernel's root rules, so that range facts are recorded) runs a
 * third time: on the JIT given the verifier's facts (gvm_prog_opts.facts),
 * which must return the kernel's result too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_bpf.h"
#include "verifier/verifier.h"
#include "vm/jit_opt.h"
#include "vm/vm.h"

static bool uses_packet_access(const struct ktb_case *c)
{
    for (uint32_t i = 0; i < c->n_insns; i++) {
        uint8_t mode = BPF_MODE(c->insns[i].code), cls = BPF_CLASS(c->insns[i].code);
        if (cls == BPF_LD && (mode == BPF_ABS || mode == BPF_IND))
            return true;
    }
    return false;
}

/* Run on one engine (with facts: the JIT given them); 0 with *r0 set, or
 * the load/run error. */
static int run(const struct ktb_case *c, enum gvm_engine e, const struct gver_result *facts,
               uint8_t *ctx, size_t len, uint64_t *r0, struct graft_err *err)
{
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = e };
    if (facts) {
        o.facts = facts->facts;
        o.n_facts = facts->n_facts;
    }
    struct gvm_prog *p;
    int rc = gvm_prog_create(c->insns, c->n_insns, &o, &p, err);
    if (rc)
        return rc;
    rc = gvm_prog_run(p, ctx, len, r0, err);
    gvm_prog_free(p);
    return rc;
}

/* Verify c for a context of its smallest data size with facts recorded;
 * true when accepted (res then holds the facts). */
static bool verify(const struct ktb_case *c, struct gver_result *res)
{
    uint32_t ctx = c->no_data ? 0 : UINT32_MAX;
    for (int k = 0; k < KTB_MAX_SUBTESTS && !c->no_data; k++) {
        if (c->sub[k].data_size == 0 && c->sub[k].result == 0)
            break;
        if ((uint32_t)c->sub[k].data_size < ctx)
            ctx = (uint32_t)c->sub[k].data_size;
    }
    struct gver_policy *pol = gver_policy_raw(ctx == UINT32_MAX ? 0 : ctx);
    if (!pol)
        return false;
    pol->spec_bypass = 1;
    struct gver_input in = { .insns = c->insns, .n = c->n_insns, .policy = pol, .record_facts = 1 };
    struct graft_err err;
    bool ok = gver_verify(&in, res, &err) == 0 && res->accepted;
    free(pol);
    if (!ok)
        gver_result_free(res);
    return ok;
}

int main(void)
{
    unsigned n = ktb_count(), ok = 0, bad = 0, classic = 0, generated = 0, refused = 0,
             expected_fail = 0, dead_tail = 0, verified = 0, rewritten = 0,
             insns_rewritten = 0;

    for (unsigned i = 0; i < n; i++) {
        struct ktb_case c;
        ktb_get(i, &c);
        if (!c.internal) {
            classic++;
            continue;
        }
        if (c.generated) {
            generated++;
            continue;
        }
        struct graft_err err;
        struct gvm_prog *pj = NULL, *pi = NULL;
        struct gvm_prog_opts oj = { .sz = sizeof(oj), .engine = GVM_ENGINE_JIT };
        struct gvm_prog_opts oi = { .sz = sizeof(oi), .engine = GVM_ENGINE_INTERP };
        int lj = gvm_prog_create(c.insns, c.n_insns, &oj, &pj, &err);
        int li = gvm_prog_create(c.insns, c.n_insns, &oi, &pi, &err);
        gvm_prog_free(pj);
        gvm_prog_free(pi);
        if (lj || li) {
            if (!lj != !li) {
                fprintf(stderr, "FAIL #%u %s: JIT %s, interpreter %s\n", i, c.descr,
                        lj ? "refused it" : "loaded it", li ? "refused it" : "loaded it");
                bad++;
            } else if (c.expected_fail) {
                expected_fail++;
            } else if (uses_packet_access(&c)) {
                refused++;
            } else if (strstr(err.msg, "does not end in exit")) {
                dead_tail++;                /* graft's load rule; the kernel runs them */
            } else {
                fprintf(stderr, "FAIL #%u %s: not loaded: %s\n", i, c.descr, err.msg);
                bad++;
            }
            continue;
        }
        bool good = true;
        struct gver_result vres;
        bool with_facts = verify(&c, &vres);
        verified += with_facts;
        if (with_facts) {
            struct bpf_insn *copy = malloc(c.n_insns * sizeof(*copy));
            if (!copy) {
                perror("malloc");
                return 2;
            }
            memcpy(copy, c.insns, c.n_insns * sizeof(*copy));
            int changed = gvm_apply_facts(copy, c.n_insns, vres.facts);
            rewritten += changed > 0;
            insns_rewritten += (unsigned)changed;
            free(copy);
        }
        for (int k = 0; k < KTB_MAX_SUBTESTS; k++) {
            if (c.sub[k].data_size == 0 && c.sub[k].result == 0)
                break;
            uint64_t r[3] = { 0, 0, 0 };
            int rc[3] = { 0, 0, 0 };
            /* r1: the case's data, data_size bytes (FLAG_LARGE_MEM cases
             * use all of them), at least the table's MAX_DATA */
            size_t len = c.no_data ? 0 : (size_t)c.sub[k].data_size;
            size_t cap = len > c.data_max ? len : c.data_max;
            for (int e = 0; e < (with_facts ? 3 : 2); e++) {
                uint8_t *ctx = calloc(1, cap);
                if (!ctx) {
                    perror("calloc");
                    return 2;
                }
                memcpy(ctx, c.data, c.data_max);
                rc[e] = run(&c, e == 1 ? GVM_ENGINE_INTERP : GVM_ENGINE_JIT, e == 2 ? &vres : NULL,
                            ctx, len, &r[e], &err);
                free(ctx);
            }
            if (rc[0] || rc[1] || r[0] != r[1] || (uint32_t)r[0] != c.sub[k].result) {
                fprintf(stderr, "FAIL #%u %s [%d]: JIT %s0x%" PRIx64 ", interpreter %s0x%" PRIx64
                        ", kernel expects 0x%" PRIx32 "\n", i, c.descr, k,
                        rc[0] ? "error " : "", r[0], rc[1] ? "error " : "", r[1],
                        c.sub[k].result);
                good = false;
            }
            if (with_facts && (rc[2] || (uint32_t)r[2] != c.sub[k].result)) {
                fprintf(stderr, "FAIL #%u %s [%d]: JIT with the verifier's facts %s0x%" PRIx64
                        ", kernel expects 0x%" PRIx32 "\n", i, c.descr, k,
                        rc[2] ? "error " : "", r[2], c.sub[k].result);
                good = false;
            }
        }
        if (with_facts)
            gver_result_free(&vres);
        good ? ok++ : bad++;
    }
    printf("kernel test_bpf: %u eBPF cases agree with the kernel on both engines, %u do not; "
           "not run: %u classic, %u generated by kernel code, %u packet access, "
           "%u expected to fail (refused here too), %u refused by graft for code past "
           "the last exit\n",
           ok, bad, classic, generated, refused, expected_fail, dead_tail);
    printf("kernel test_bpf: %u cases accepted by graft's verifier also ran on the JIT with its "
           "facts, %u of them rewritten by the facts (%u insns)\n", verified, rewritten,
           insns_rewritten);
    if (verified < 100 || rewritten < 20) {
        fprintf(stderr, "FAIL: only %u cases verified: the facts path was hardly run\n", verified);
        return 1;
    }
    return bad ? 1 : 0;
}
