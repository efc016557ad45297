/*
 * bench_vm.c - the VM benchmark: each program in bench/vm/progs runs as BPF
 * on the interpreter and the JIT, and natively (the same C compiled by gcc
 * -O2; helpers, bench_helpers.c, are plain calls there).
 * Engines run interleaved round by round; the median per-run time of each
 * (thread CPU time: the machine may be shared) is reported, with
 * JIT/native ratios and their geometric means. Results of all three must
 * be equal or the bench aborts. BENCH_VM_DUMP=dir writes each program's
 * JIT code there. Also measures JIT compile
 * speed on a synthetic 4800-instruction program and on the bench programs
 * (small: the fixed cost of mapping the code weighs more there).
 *
 * Usage: bench_vm [dir with <prog>.bin files]
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_helpers.h"
#include "vm/vm.h"
#include "bench_util.h"

#define CTX_BYTES (64 + 16384 + 16384 + 64)
#define ROUNDS    31

typedef uint64_t (*native_fn)(void *ctx, uint64_t len);

#define DECL(p) uint64_t native_##p(void *ctx, uint64_t len);
DECL(sieve) DECL(fib) DECL(memcpy) DECL(crc32) DECL(bsort) DECL(strhash) DECL(bits) DECL(fsm)
DECL(helpers) DECL(maplookup) DECL(parse) DECL(adler32) DECL(hprobe) DECL(opswitch)
DECL(hexdec) DECL(substr)

struct bench {
    const char *name;
    native_fn native;
    uint64_t params[3];
    int text;                  /* input is text-like */
};

static struct bench benches[] = {
    { "sieve",   native_sieve,   { 16000 }, 0 },
    { "fib",     native_fib,     { 20000, 0, 1 }, 0 },
    { "memcpy",  native_memcpy,  { 8000 }, 0 },
    { "crc32",   native_crc32,   { 2048 }, 0 },
    { "bsort",   native_bsort,   { 160 }, 0 },
    { "strhash", native_strhash, { 16384 }, 1 },
    { "bits",    native_bits,    { 2048 }, 0 },
    { "fsm",     native_fsm,     { 16384 }, 1 },
    { "helpers", native_helpers, { 2048 }, 0 },
    { "maplookup", native_maplookup, { 8192, 0 /* the map, set in main */ }, 0 },
    { "parse",   native_parse,   { 16384 }, 1 },
    { "adler32", native_adler32, { 16384 }, 0 },
    { "hprobe",  native_hprobe,  { 2048 }, 0 },
    { "opswitch", native_opswitch, { 16384 }, 0 },
    { "hexdec",  native_hexdec,  { 16384 }, 1 },
    { "substr",  native_substr,  { 16384 }, 1 },
};
#define N_BENCH (sizeof(benches) / sizeof(benches[0]))

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_ctx(uint8_t *ctx, const struct bench *b)
{
    static const char alpha[] = "abc_XYZ0123456789 \"\\/=+-*;\nfoo0x1f//";
    memset(ctx, 0, CTX_BYTES);
    memcpy(ctx, b->params, sizeof(b->params));
    for (int i = 0; i < 16384; i++) {
        uint64_t r = rnd();
        ctx[64 + i] = b->text ? (r % 23 == 0 ? 0 : (uint8_t)alpha[r % (sizeof(alpha) - 1)])
                              : (uint8_t)(r >> 24);
    }
}

static struct bpf_insn *read_bin(const char *dir, const char *name, uint32_t *n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_vm: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    struct bpf_insn *insns = malloc((size_t)sz);
    if (!insns || sz <= 0 || sz % 8 || fread(insns, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "bench_vm: %s is not a BPF instruction array\n", path);
        exit(1);
    }
    fclose(f);
    *n = (uint32_t)(sz / 8);
    return insns;
}

/* The helpers bench programs call (prog.h). They take fewer than five
 * arguments; the JIT and the interpreter pass five in the SysV registers,
 * which such a function simply ignores. */
static gvm_helper_fn helpers[BPF_MAX_HELPER_ID];
static const struct gvm_env env = { .helpers = helpers };

static struct gvm_prog *create(const struct bpf_insn *insns, uint32_t n, enum gvm_engine e)
{
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = e, .env = &env };
    struct gvm_prog *p;
    struct graft_err err;
    if (gvm_prog_create(insns, n, &o, &p, &err) < 0) {
        fprintf(stderr, "bench_vm: load failed: %s\n", err.msg);
        exit(1);
    }
    return p;
}

static uint64_t run_prog(struct gvm_prog *p, uint8_t *ctx)
{
    uint64_t r;
    struct graft_err err;
    if (gvm_prog_run(p, ctx, CTX_BYTES, &r, &err) < 0) {
        fprintf(stderr, "bench_vm: run failed: %s\n", err.msg);
        exit(1);
    }
    return r;
}

/* ns per run of a batch of k runs on engine e (0 native, 1 jit, 2 interp) */
static double time_batch(int e, const struct bench *b, struct gvm_prog *pj,
                         struct gvm_prog *pi, uint8_t *ctx, int k, uint64_t want)
{
    uint64_t r = 0;
    double t0 = bench_thread_ns();
    for (int i = 0; i < k; i++) {
        if (e == 0)
            r = b->native(ctx, CTX_BYTES);
        else
            r = run_prog(e == 1 ? pj : pi, ctx);
        __asm__ volatile("" : : "r"(r) : "memory");
    }
    double t = (bench_thread_ns() - t0) / k;
    if (r != want) {
        fprintf(stderr, "bench_vm: %s: %s result 0x%llx != native 0x%llx\n", b->name,
                e == 1 ? "JIT" : "interpreter", (unsigned long long)r,
                (unsigned long long)want);
        abort();
    }
    return t;
}

/* BENCH_VM_DUMP=dir: write each program's JIT code to dir/<prog>.jit, to
 * read with objdump -D -b binary -mi386:x86-64. */
static void dump_code(const struct gvm_prog *p, const char *name)
{
    const char *dir = getenv("BENCH_VM_DUMP");
    if (!dir)
        return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.jit", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(gvm_prog_code(p), 1, gvm_prog_code_size(p), f) != gvm_prog_code_size(p)) {
        fprintf(stderr, "bench_vm: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fclose(f);
}

static void bench_programs(const char *dir, double *jit_geo, double *interp_geo)
{
    uint8_t *ctx = aligned_alloc(64, CTX_BYTES);
    double lj = 0, li = 0;

    for (size_t bi = 0; bi < N_BENCH; bi++) {
        struct bench *b = &benches[bi];
        uint32_t n;
        struct bpf_insn *insns = read_bin(dir, b->name, &n);
        struct gvm_prog *pj = create(insns, n, GVM_ENGINE_JIT);
        struct gvm_prog *pi = create(insns, n, GVM_ENGINE_INTERP);
        dump_code(pj, b->name);
        fill_ctx(ctx, b);
        uint64_t want = b->native(ctx, CTX_BYTES);
        uint64_t rj = run_prog(pj, ctx), ri = run_prog(pi, ctx);
        if (rj != want || ri != want) {
            fprintf(stderr, "bench_vm: %s: native 0x%llx jit 0x%llx interp 0x%llx\n", b->name,
                    (unsigned long long)want, (unsigned long long)rj, (unsigned long long)ri);
            abort();
        }
        /* batch sizes: ~1 ms of native work, ~2 ms of interpreter work */
        double tn = time_batch(0, b, pj, pi, ctx, 3, want);
        double ti = time_batch(2, b, pj, pi, ctx, 1, want);
        int kn = (int)(1e6 / (tn > 1 ? tn : 1)) + 1;
        int ki = (int)(2e6 / (ti > 1 ? ti : 1)) + 1;
        double vn[ROUNDS], vj[ROUNDS], vi[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            vn[r] = time_batch(0, b, pj, pi, ctx, kn, want);
            vj[r] = time_batch(1, b, pj, pi, ctx, kn, want);
            vi[r] = time_batch(2, b, pj, pi, ctx, ki, want);
        }
        double mn = bench_median(vn, ROUNDS), mj = bench_median(vj, ROUNDS), mi = bench_median(vi, ROUNDS);
        printf("BENCH %s_native_ns %.0f ns\n", b->name, mn);
        printf("BENCH %s_jit_ns %.0f ns\n", b->name, mj);
        printf("BENCH %s_interp_ns %.0f ns\n", b->name, mi);
        printf("BENCH jit_native_ratio_%s %.3f ratio\n", b->name, mj / mn);
        fflush(stdout);
        lj += log(mj / mn);
        li += log(mi / mn);
        gvm_prog_free(pj);
        gvm_prog_free(pi);
        free(insns);
    }
    *jit_geo = exp(lj / N_BENCH);
    *interp_geo = exp(li / N_BENCH);
    free(ctx);
}

/* A synthetic program: ALU, loads/stores, forward branches, a loop. */
static struct bpf_insn *synthetic(uint32_t *n_out)
{
    uint32_t cap = 5000, n = 0;
    struct bpf_insn *p = malloc(cap * sizeof(*p));
    p[n++] = BPF_MOV64_IMM(BPF_R0, 0);
    p[n++] = BPF_MOV64_IMM(BPF_R2, 1);
    p[n++] = BPF_ST_MEM(BPF_DW, BPF_R10, -8, 5);
    while (n < 4790) {
        p[n++] = BPF_ALU64_REG(BPF_ADD, BPF_R0, BPF_R2);
        p[n++] = BPF_MOV64_REG(BPF_R3, BPF_R0);
        p[n++] = BPF_ALU64_IMM(BPF_RSH, BPF_R3, 3);
        p[n++] = BPF_JMP_IMM(BPF_JGT, BPF_R3, 100, 2);
        p[n++] = BPF_LDX_MEM(BPF_DW, BPF_R4, BPF_R10, -8);
        p[n++] = BPF_ALU64_REG(BPF_XOR, BPF_R0, BPF_R4);
        p[n++] = BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R0, -16);
        p[n++] = BPF_ALU32_IMM(BPF_MUL, BPF_R2, 7);
        p[n++] = BPF_ALU64_IMM(BPF_AND, BPF_R2, 0xfff);
        int16_t skip = n + 61 < 4790 ? 60 : 0;
        p[n++] = BPF_JMP_REG(BPF_JEQ, BPF_R2, BPF_R3, skip);
    }
    p[n++] = BPF_EXIT_INSN();
    *n_out = n;
    return p;
}

static double compile_us_per_kinsn(double *load_us)
{
    uint32_t n;
    struct bpf_insn *insns = synthetic(&n);
    enum { REPS = 101 };
    double tj[REPS], ti[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_mono_ns();
        struct gvm_prog *p = create(insns, n, GVM_ENGINE_INTERP);
        double t1 = bench_mono_ns();
        gvm_prog_free(p);
        double t2 = bench_mono_ns();
        p = create(insns, n, GVM_ENGINE_JIT);
        double t3 = bench_mono_ns();
        gvm_prog_free(p);
        ti[r] = t1 - t0;
        tj[r] = t3 - t2;
    }
    double mj = bench_median(tj, REPS), mi = bench_median(ti, REPS);
    free(insns);
    *load_us = mj / 1e3 / (n / 1000.0);
    return (mj - mi) / 1e3 / (n / 1000.0);   /* JIT only: minus checking */
}

/* The same over the bench programs themselves (real clang output, where
 * the optimizing passes find work): total JIT-only time over total insns. */
static double compile_us_per_kinsn_progs(const char *dir)
{
    enum { REPS = 21 };
    double total_us = 0, total_insns = 0;
    for (size_t bi = 0; bi < N_BENCH; bi++) {
        uint32_t n;
        struct bpf_insn *insns = read_bin(dir, benches[bi].name, &n);
        double tj[REPS], ti[REPS];
        for (int r = 0; r < REPS; r++) {
            double t0 = bench_mono_ns();
            struct gvm_prog *p = create(insns, n, GVM_ENGINE_INTERP);
            double t1 = bench_mono_ns();
            gvm_prog_free(p);
            double t2 = bench_mono_ns();
            p = create(insns, n, GVM_ENGINE_JIT);
            double t3 = bench_mono_ns();
            gvm_prog_free(p);
            ti[r] = t1 - t0;
            tj[r] = t3 - t2;
        }
        total_us += (bench_median(tj, REPS) - bench_median(ti, REPS)) / 1e3;
        total_insns += n;
        free(insns);
    }
    return total_us / (total_insns / 1000.0);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : BENCH_VM_BIN_DIR;
    double jg, ig, load_us;

    helpers[1] = (gvm_helper_fn)(void *)bench_lookup;
    helpers[2] = (gvm_helper_fn)(void *)bench_mix;
    for (size_t k = 0; k < N_BENCH; k++)
        if (strcmp(benches[k].name, "maplookup") == 0)
            benches[k].params[1] = bench_map_make();

    bench_programs(dir, &jg, &ig);
    printf("BENCH jit_native_ratio_geomean %.3f ratio\n", jg);
    printf("BENCH interp_native_ratio_geomean %.3f ratio\n", ig);
    double c = compile_us_per_kinsn(&load_us);
    printf("BENCH jit_compile_us_per_kinsn %.2f us\n", c);
    printf("BENCH jit_load_us_per_kinsn %.2f us\n", load_us);
    printf("BENCH jit_compile_us_per_kinsn_progs %.2f us\n", compile_us_per_kinsn_progs(dir));
    return 0;
}
