/*
 * soundness_fuzz.c - generator-based soundness fuzzing of the verifier.
 *
 * Each iteration generates a structurally valid program (sf_gen.h),
 * verifies it with graft's verifier under a permissive policy (every
 * helper, a read-only 64-byte context) and runs every accepted program on
 * the checked interpreter with several random contexts and map contents
 * (sf_run.h). A violation - an out-of-bounds access, a read of
 * uninitialised stack, the step limit - in an accepted program is a
 * verifier bug: the program is minimised (instructions replaced by no-ops
 * while it still is accepted and still fails, then the no-ops removed) and
 * printed in graft's assembler syntax with its seed.
 *
 * Every accepted program that is not a packet program also runs on the
 * JIT given the verifier's facts (gver_input.record_facts) and on the
 * plain interpreter, with the same contexts and map contents: r0 and the
 * maps must agree, or a fact (or the JIT's use of it) is wrong.
 *
 * Usage: soundness_fuzz [options]
 *   --seconds S       stop after S seconds (default 10)
 *   --iters N         stop after N programs (default: no limit)
 *   --seed X          master seed (default: from the clock; printed)
 *   --prog X          only the program of seed X (as printed on a failure)
 *   --runs R          checked runs per accepted program (default 8)
 *   --max-failures K  stop after K violations (default 1; 0: never)
 *   --min-accept P    fail if fewer than P% of programs are accepted (default 30)
 *   --kernel FILE     also load every program into the kernel and append
 *                     the differences to FILE (Markdown); skipped with a
 *                     note when bpf() cannot be used
 *   --without SHAPE   do not generate SHAPE: callbacks, subprogs, helper_writes,
 *                     map_in_map, tail_calls, packet, spec_join (to see which shape
 *                     finds a bug)
 *   --with SHAPE      generate an optional shape: misaligned_atomics, or
 *                     packet_only (nothing but packet programs)
 *
 * One program in four is a packet program (sf_pkt.h): an XDP program
 * verified with the kernel's xdp_md rules and run with a real packet in a
 * region of its exact size, so a wrong packet range shows up as an access
 * past data_end.
 *   --no-spec-check   do not check speculative paths (below)
 *   --bench           print BENCH lines (programs/s, accepted %); violations are
 *                     counted, listed on one line each and not minimised, and
 *                     do not stop the run or fail it (a benchmark, not a test)
 * Exit: 0 clean, 1 a violation or too few accepted programs, 2 usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sf_gen.h"
#include "sf_kernel.h"
#include "sf_pkt.h"
#include "sf_run.h"
#include "verifier/verifier.h"
#include "vm/jit_opt.h"
#include "vm/vm.h"

struct opts {
    double seconds;
    uint64_t iters;
    uint64_t seed;
    bool have_prog;
    uint64_t prog;
    int runs;
    uint64_t max_failures;
    double min_accept;
    const char *kernel_report;
    bool bench;
    bool no_spec_check;
    struct sf_gen_opts gen;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct gver_policy *g_pol, *g_pkt_pol;
static struct sf_env *g_env;
static bool g_is_pkt;          /* the program at hand is a packet program */
/* Every other program is verified with the default policy's Spectre rules
 * off (spec_bypass, as --privileged has it): the runs check architectural
 * safety, which those rules only narrow, and with them on too few of the
 * generated programs would pass to test much. With them on, the fuzzer
 * still checks that their speculative states never let a real path be
 * pruned unsafely. */
static bool g_spec_off;
/* With the Spectre rules on, the runs also check the speculative paths the
 * verifier explored (GVM_F_SPECULATIVE, given the verifier's facts): a bug
 * in how it explores or prunes them (test_verifier_speculation) shows up as
 * a speculative access out of bounds. */
static bool g_spec_check;
static uint64_t g_spec_progs;      /* accepted programs run with it */

/* The facts of the last accepted program (gver_result.facts), for the run
 * on the JIT with them against the interpreter. */
static struct gvm_insn_fact *g_facts;
static uint32_t g_n_facts;

/* 1 accepted, 0 rejected (reason copied if asked), -1 could not verify. */
static int verify(const struct bpf_insn *insns, uint32_t n, char *reason, size_t reasonlen)
{
    struct gver_policy *pol = g_is_pkt ? g_pkt_pol : g_pol;
    pol->spec_bypass = g_spec_off;
    struct gver_input in = { .insns = insns, .n = n, .maps = sf_map_defs(), .n_maps = SF_N_MAPS,
                             .policy = pol, .record_facts = 1 };
    struct gver_result res;
    struct graft_err err = { 0 };
    if (gver_verify(&in, &res, &err)) {
        if (reason)
            snprintf(reason, reasonlen, "verifier error: %.200s", err.msg);
        return -1;
    }
    int ok = res.accepted;
    free(g_facts);
    g_facts = res.facts;           /* kept for the JIT run */
    g_n_facts = res.n_facts;
    res.facts = NULL;
    if (reason && ok)
        reason[0] = 0;
    else if (reason)
        snprintf(reason, reasonlen, "insn %lld: %.200s", (long long)res.fail_insn, res.reason);
    gver_result_free(&res);
    return ok;
}

/* Run an accepted program (a packet program with packets). */
static int run(const struct bpf_insn *insns, uint32_t n, int runs, uint64_t seed, char *msg, size_t len)
{
    /* the facts are those of the program verify() saw last: this one */
    bool spec = g_spec_check && !g_spec_off && g_facts && g_n_facts == n;
    sf_env_speculate(g_env, spec ? g_facts : NULL);
    return g_is_pkt ? sf_run_pkt(g_env, insns, n, runs, seed, msg, len)
                    : sf_run(g_env, insns, n, runs, seed, msg, len);
}

/* Is the program still a counterexample: accepted, and a checked run fails? */
static bool still_fails(const struct bpf_insn *insns, uint32_t n, int runs, uint64_t seed)
{
    char msg[512];
    return verify(insns, n, NULL, 0) == 1 && run(insns, n, runs, seed, msg, sizeof(msg)) == 1;
}

static bool is_nop(const struct bpf_insn *in)
{
    return in->code == (BPF_JMP | BPF_JA) && in->off == 0 && in->imm == 0;
}

/* Relative jump, call or function reference of insns[i]: where it leads, or -1. */
static int64_t target_of(const struct bpf_insn *in, uint32_t i)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (bpf_is_ld_imm64(in) && in->src_reg == BPF_PSEUDO_FUNC)
        return (int64_t)i + 1 + in->imm;
    if ((cls == BPF_JMP || cls == BPF_JMP32) && op == BPF_CALL)
        return in->src_reg == BPF_PSEUDO_CALL ? (int64_t)i + 1 + in->imm : -1;
    if ((cls == BPF_JMP || cls == BPF_JMP32) && op != BPF_EXIT)
        return (int64_t)i + 1 + in->off;
    return -1;
}

/* Drop the no-ops, redirecting jumps and calls to the next kept insn. */
static uint32_t compact(const struct bpf_insn *in, uint32_t n, struct bpf_insn *out)
{
    static uint32_t newidx[SF_MAX_INSNS + 1];
    uint32_t m = 0;
    for (uint32_t i = 0; i <= n; i++) {
        newidx[i] = m;
        if (i < n && !is_nop(&in[i]))
            m++;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (is_nop(&in[i]))
            continue;
        struct bpf_insn x = in[i];
        int64_t t = target_of(&in[i], i);
        if (t >= 0 && t <= n) {
            int32_t rel = (int32_t)newidx[t] - (int32_t)newidx[i] - 1;
            if (BPF_CLASS(x.code) == BPF_LD || BPF_OP(x.code) == BPF_CALL)
                x.imm = rel;
            else
                x.off = (int16_t)rel;
        }
        out[k++] = x;
    }
    return k;
}

/* One pass: replace chunks of `chunk` instructions with no-ops where the
 * program stays a counterexample. Returns whether anything changed. */
static bool nop_pass(struct bpf_insn *p, uint32_t n, uint32_t chunk, int runs, uint64_t seed)
{
    static struct bpf_insn save[SF_MAX_INSNS];
    bool changed = false;
    for (uint32_t i = 0; i < n; i += chunk) {
        uint32_t end = i + chunk < n ? i + chunk : n;
        if (end < n && bpf_is_ld_imm64(&p[end - 1]))
            end++;             /* keep LD_IMM64's two slots together */
        bool any = false;
        for (uint32_t j = i; j < end; j++)
            any |= !is_nop(&p[j]);
        if (!any)
            continue;
        memcpy(save + i, p + i, (end - i) * sizeof(*p));
        for (uint32_t j = i; j < end; j++)
            p[j] = BPF_JMP_A(0);
        if (still_fails(p, n, runs, seed))
            changed = true;
        else
            memcpy(p + i, save + i, (end - i) * sizeof(*p));
    }
    return changed;
}

/* Replace ever smaller chunks of instructions with no-ops while the
 * program still is a counterexample, single instructions until nothing
 * more goes; then remove the no-ops. */
static uint32_t minimise(struct bpf_insn *p, uint32_t n, int runs, uint64_t seed)
{
    static struct bpf_insn packed[SF_MAX_INSNS];
    for (uint32_t chunk = 16; chunk > 1; chunk /= 2)
        nop_pass(p, n, chunk, runs, seed);
    for (int pass = 0; pass < 4 && nop_pass(p, n, 1, runs, seed); pass++)
        ;
    uint32_t m = compact(p, n, packed);
    if (still_fails(packed, m, runs, seed)) {
        memcpy(p, packed, m * sizeof(*p));
        return m;
    }
    return n;
}

static void dump(FILE *f, const struct bpf_insn *p, uint32_t n)
{
    char buf[160];
    for (uint32_t i = 0; i < n; i++) {
        gvm_insn_str(p, n, i, buf, sizeof(buf));
        fprintf(f, "    %-40s # %u\n", buf, i);
        if (bpf_is_ld_imm64(&p[i]))
            i++;
    }
}

/* Which of the generator's risky shapes the (minimised) program still has:
 * a first hint at the bug class. */
static void print_shapes(const struct bpf_insn *p, uint32_t n)
{
    bool sub = false, cb = false, hw = false, mim = false, tail = false;
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &p[i];
        if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL)
            sub = true;
        if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == 0) {
            hw |= in->imm == 4 || in->imm == 112 || in->imm == 113;
            cb |= in->imm == 181 || in->imm == 164;
            tail |= in->imm == 12;
        }
        if (bpf_is_ld_imm64(in) && in->src_reg == BPF_PSEUDO_MAP_IDX && in->imm == SF_MAP_OUTER)
            mim = true;
    }
    printf("  shapes left: %s%s%s%s%s\n", sub ? "subprogram-call " : "", cb ? "callback " : "",
           hw ? "helper-stack-write " : "", mim ? "map-in-map " : "", tail ? "tail-call " : "");
}

static void report_violation(uint64_t master, uint64_t pseed, struct sf_prog *p, int runs,
                             const char *msg, double t)
{
    printf("\nVERIFIER BUG: an accepted program violates safety after %.1f s\n", t);
    printf("  master seed %#llx, program seed %#llx (reproduce: soundness_fuzz --prog %#llx)\n",
           (unsigned long long)master, (unsigned long long)pseed, (unsigned long long)pseed);
    printf("  %s\n", msg);
    if (g_is_pkt)
        printf("  packet program: xdp_md context (kernel xdp rules), packets of 0..%d bytes after 0..%d of metadata\n",
               SF_PKT_MAX_LEN, SF_PKT_MAX_META);
    else
        printf("  maps: 0 array k=4 v=64 n=4; 1 hash k=4 v=64 n=8; 2 array_of_maps (inner array v=16 n=2); "
               "3 prog_array n=2; ctx: 64 read-only bytes\n");
    fflush(stdout);
    uint32_t n0 = p->n;
    uint32_t m = minimise(p->insns, p->n, runs, pseed);
    char again[512] = "";
    verify(p->insns, m, NULL, 0);  /* the facts of this program, for its speculative run */
    run(p->insns, m, runs, pseed, again, sizeof(again));
    printf("  minimised from %u to %u instructions; it fails with: %s\n", n0, m, again);
    print_shapes(p->insns, m);
    dump(stdout, p->insns, m);
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: soundness_fuzz [--seconds S] [--iters N] [--seed X] [--prog X] [--runs R]\n"
                    "                      [--max-failures K] [--min-accept PCT] [--kernel FILE] [--bench]\n"
                    "                      [--no-spec-check]\n"
                    "                      [--without callbacks|subprogs|helper_writes|map_in_map|tail_calls|packet|spec_join]...\n"
                    "                      [--with misaligned_atomics|packet_only]\n");
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){ .seconds = 10, .runs = 8, .max_failures = 1, .min_accept = 30 };
    o->seed = sf_mix((uint64_t)time(NULL) ^ ((uint64_t)clock() << 32));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--bench")) {
            o->bench = true;
            continue;
        }
        if (!strcmp(a, "--no-spec-check")) {
            o->no_spec_check = true;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(a, "--iters")) o->iters = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--prog")) { o->prog = strtoull(v, NULL, 0); o->have_prog = true; }
        else if (!strcmp(a, "--runs")) o->runs = atoi(v);
        else if (!strcmp(a, "--max-failures")) o->max_failures = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--min-accept")) o->min_accept = atof(v);
        else if (!strcmp(a, "--kernel")) o->kernel_report = v;
        else if (!strcmp(a, "--without")) {
            if (sf_gen_without(&o->gen, v))
                return usage();
        } else if (!strcmp(a, "--with")) {
            if (sf_gen_with(&o->gen, v))
                return usage();
        }
        else return usage();
    }
    return o->runs > 0 ? 0 : usage();
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o))
        return 2;
    char err[256];
    g_pol = gver_policy_raw(SF_CTX_SIZE);
    g_pkt_pol = sf_pkt_policy();
    if (!g_pol || !g_pkt_pol || sf_env_new(&g_env, err, sizeof(err))) {
        fprintf(stderr, "soundness_fuzz: cannot set up: %s\n", g_pol ? err : "out of memory");
        return 1;
    }
    struct sf_kernel *kern = NULL;
    FILE *kout = NULL;
    struct sf_gen_opts gopts = o.gen;
    if (o.kernel_report) {
        char why[128];
        if (!(kern = sf_kernel_new(why, sizeof(why)))) {
            printf("kernel differential skipped: %s\n", why);
        } else {
            /* the kernel needs BTF for callbacks, which raw instructions do not carry */
            gopts.no_callbacks = true;
            if (!(kout = fopen(o.kernel_report, "a")))
                perror(o.kernel_report);
        }
    }
    if (o.bench)
        o.max_failures = 0;
    if (o.have_prog) {
        o.iters = 1;
        o.seconds = 1e9;
    }
    printf("soundness fuzz: master seed %#llx, %s%.0f s, %d runs per accepted program\n",
           (unsigned long long)o.seed, o.iters ? "bounded by iterations, " : "", o.seconds, o.runs);
    fflush(stdout);

    static struct sf_prog prog;
    uint64_t total = 0, accepted = 0, failures = 0, run_errors = 0, diffed = 0, rewritten = 0;
    double t0 = now(), t_verify = 0;
    while ((!o.iters || total < o.iters) && now() - t0 < o.seconds) {
        uint64_t pseed = o.have_prog ? o.prog : sf_mix(o.seed + total);
        g_is_pkt = !gopts.no_packet && (gopts.packet_only || pseed % 4 == 0);
        g_spec_off = (pseed >> 8) % 2 == 0;
        g_spec_check = !o.no_spec_check;
        if (g_is_pkt)
            sf_generate_pkt(pseed, &prog);
        else
            sf_generate(pseed, &gopts, &prog);
        total++;
        char reason[256];
        double tv = now();
        int ok = verify(prog.insns, prog.n, reason, sizeof(reason));
        t_verify += now() - tv;
        if (ok < 0) {
            printf("FAIL: program %#llx: %s\n", (unsigned long long)pseed, reason);
            failures++;
            break;
        }
        if (o.have_prog) {
            printf("program %#llx: %u insns, %s %s\n", (unsigned long long)pseed, prog.n,
                   ok ? "accepted" : "rejected:", reason);
            dump(stdout, prog.insns, prog.n);
        }
        int kok = -1;
        char kreason[256];
        if (kern && !g_is_pkt)   /* the differential loads tracepoint programs */
            kok = sf_kernel_verdict(kern, prog.insns, prog.n, kreason, sizeof(kreason));
        if (kok >= 0 && !ok)
            sf_kernel_record(kern, pseed, ok, kok, kreason, reason, 0);
        if (!ok)
            continue;
        accepted++;
        g_spec_progs += g_spec_check && !g_spec_off;
        char msg[512];
        int rc = run(prog.insns, prog.n, o.runs, pseed, msg, sizeof(msg));
        if (kok >= 0)
            sf_kernel_record(kern, pseed, ok, kok, kreason, reason, rc == 1);
        if (rc < 0) {
            run_errors++;
            printf("cannot run program %#llx: %s\n", (unsigned long long)pseed, msg);
        } else if (rc == 1) {
            failures++;
            if (o.bench)
                printf("violation: program %#llx: %s\n", (unsigned long long)pseed, msg);
            else
                report_violation(o.seed, pseed, &prog, o.runs, msg, now() - t0);
            if (o.max_failures && failures >= o.max_failures)
                break;
        } else if (!g_is_pkt && g_facts) {
            rc = sf_run_diff_facts(g_env, prog.insns, prog.n, g_facts, o.runs, pseed, msg, sizeof(msg));
            if (rc < 0) {
                run_errors++;
                printf("cannot run program %#llx on the JIT: %s\n", (unsigned long long)pseed, msg);
            } else if (rc == 1) {
                failures++;
                printf("JIT WITH FACTS DISAGREES: program %#llx: %s\n", (unsigned long long)pseed, msg);
                dump(stdout, prog.insns, prog.n);
                if (o.max_failures && failures >= o.max_failures)
                    break;
            } else {
                diffed++;
                struct bpf_insn copy[SF_MAX_INSNS];
                memcpy(copy, prog.insns, prog.n * sizeof(*copy));
                rewritten += gvm_apply_facts(copy, prog.n, g_facts) > 0;
            }
        }
    }
    free(g_facts);
    g_facts = NULL;
    double secs = now() - t0;
    double pct = total ? 100.0 * (double)accepted / (double)total : 0;
    printf("%llu programs in %.1f s (%.0f/s, verifier %.0f%% of the time), %llu accepted (%.1f%%), "
           "%llu violations\n",
           (unsigned long long)total, secs, (double)total / secs, 100 * t_verify / secs,
           (unsigned long long)accepted, pct, (unsigned long long)failures);
    struct gvm_spec_stats ss;
    gvm_spec_stats_get(&ss);
    printf("%llu accepted programs (Spectre rules on) were also checked on their speculative paths: "
           "%llu paths, %llu insns (%.0f insns per program run)\n",
           (unsigned long long)g_spec_progs, (unsigned long long)ss.paths, (unsigned long long)ss.insns,
           g_spec_progs ? (double)ss.insns / ((double)g_spec_progs * o.runs) : 0.0);
    printf("%llu accepted programs ran on the JIT with the verifier's facts against the interpreter, "
           "%llu of them rewritten by the facts\n", (unsigned long long)diffed,
           (unsigned long long)rewritten);
    if (sf_env_bad_inner_accepted(g_env)) {
        printf("MAP BUG: the map layer took an inner map unlike the declared template %llu times\n",
               (unsigned long long)sf_env_bad_inner_accepted(g_env));
        failures++;
    }
    if (o.bench) {
        printf("BENCH soundness_fuzz_progs_per_s %.0f progs/s\n", (double)total / secs);
        printf("BENCH soundness_fuzz_accepted_pct %.1f %%\n", pct);
        failures = 0;
    }
    if (kern) {
        sf_kernel_report(kern, kout, o.seed);
        sf_kernel_free(kern);
    }
    if (kout)
        fclose(kout);
    sf_env_free(g_env);
    free(g_pol);
    free(g_pkt_pol);
    if (run_errors)
        failures++;
    struct gvm_spec_stats ss_end;
    gvm_spec_stats_get(&ss_end);
    if (!o.no_spec_check && g_spec_progs >= 100 && !ss_end.paths) {
        printf("FAIL: %llu programs were checked speculatively and no speculative path ran: "
               "the speculative oracle is off\n", (unsigned long long)g_spec_progs);
        return 1;
    }
    if (!o.have_prog && total >= 100 && pct < o.min_accept) {
        printf("FAIL: only %.1f%% of the programs were accepted (at least %.0f%% wanted): "
               "the fuzzer would test little\n", pct, o.min_accept);
        return 1;
    }
    return failures ? 1 : 0;
}
