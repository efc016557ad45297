/*
 * bench_maps.c - ns per map operation, measured from inside eBPF programs.
 *
 * Each operation is one small eBPF program (assembled with gvm_asm) whose
 * bounded loop does the operation 1000 times, on keys 0..999 of a 1024-entry
 * map with 4-byte keys and 8-byte values (pre-populated where the operation
 * needs a present key). The same instructions run twice:
 *   graft:  grt_instance_create() + the JIT, the program called directly;
 *   kernel: bpf(BPF_PROG_LOAD) on kernel maps of the same shape, run with
 *           BPF_PROG_TEST_RUN (repeat, the kernel's own duration).
 * Rounds alternate graft/kernel and the medians are printed as
 * `BENCH <op>_ns <v> ns` and `BENCH kernel_<op>_ns <v> ns`. The figures
 * include the loop's own cost (a few instructions, ~0.3-0.5 ns; printed as
 * loop_overhead_ns), which is the same for both.
 *
 * Program types in the kernel: SOCKET_FILTER (supports test_run with repeat
 * and has the map and ring buffer helpers) for everything; probe_read_user
 * falls back to BPF_PROG_TYPE_SYSCALL when the kernel does not give socket
 * filters that helper; SYSCALL's test_run has no repeat, so it is timed from
 * user space and the cost of an empty SYSCALL program run is subtracted.
 *
 * hash_delete runs 1000 deletes of present keys once per measurement, then
 * the map is refilled outside the timed region (both sides).
 * ringbuf_submit reserves 8 bytes, writes them and submits, with no consumer
 * running; the consumer position is advanced outside the timed region.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_maps.h"
#include "maps/maps.h"
#include "runtime/instance.h"
#include "vm/vm.h"
#include "bench_util.h"

#define OPS       1000          /* operations per program run */
#define NKEYS     1024
#define ROUNDS    31            /* measurements per op and side */
#define DEL_ROUNDS 41
#define TARGET_NS 2000000.0     /* aim for ~2 ms per measurement */
#define RB_SIZE   (2u << 20)
#define RB_MAX_RUNS 60          /* 60 runs * 1000 * 16 bytes < RB_SIZE */

#define M_NONE BK_NONE
#define M_HASH BK_HASH
#define M_ARRAY BK_ARRAY
#define M_PERCPU_HASH BK_PERCPU_HASH
#define M_RINGBUF BK_RINGBUF
#define M_COUNT BK_COUNT
enum mode { PLAIN, DELETE, RINGBUF };

static volatile uint64_t user_word = 0x1122334455667788ull;

struct op {
    const char *name;
    enum bk_map map;
    enum mode mode;
    const char *body;           /* loop body; r6 = i, key i stored at [r10-8] */
};

#define LOOKUP_BODY \
    "lddw r1, map:0\n mov r2, r10\n add r2, -8\n call 1\n jeq r0, 0, next\n add r7, 1\n"
#define UPDATE_BODY \
    "stxdw [r10-16], r6\n lddw r1, map:0\n mov r2, r10\n add r2, -8\n mov r3, r10\n" \
    "add r3, -16\n mov r4, 0\n call 2\n jne r0, 0, next\n add r7, 1\n"
#define DELETE_BODY \
    "lddw r1, map:0\n mov r2, r10\n add r2, -8\n call 3\n jne r0, 0, next\n add r7, 1\n"
#define PROBE_BODY \
    "mov r1, r10\n add r1, -16\n mov r2, 8\n lddw r3, %#llx\n call 112\n jne r0, 0, next\n add r7, 1\n"
#define RINGBUF_BODY \
    "lddw r1, map:0\n mov r2, 8\n mov r3, 0\n call 131\n jeq r0, 0, next\n stxdw [r0+0], r6\n" \
    "mov r1, r0\n mov r2, 0\n call 132\n add r7, 1\n"

static const struct op ops[] = {
    { "loop_overhead", M_NONE, PLAIN, "add r7, 1\n" },
    { "hash_lookup", M_HASH, PLAIN, LOOKUP_BODY },
    { "hash_update", M_HASH, PLAIN, UPDATE_BODY },
    { "hash_delete", M_HASH, DELETE, DELETE_BODY },
    { "array_lookup", M_ARRAY, PLAIN, LOOKUP_BODY },
    { "array_update", M_ARRAY, PLAIN, UPDATE_BODY },
    { "percpu_hash_update", M_PERCPU_HASH, PLAIN, UPDATE_BODY },
    { "percpu_hash_lookup", M_PERCPU_HASH, PLAIN, LOOKUP_BODY },
    { "probe_read_user", M_NONE, PLAIN, PROBE_BODY },
    { "ringbuf_submit", M_RINGBUF, RINGBUF, RINGBUF_BODY },
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

struct side {
    /* graft */
    struct gmap *gm[M_COUNT];
    int k_ok;                   /* kernel maps could be created */
};

static struct side S;

static int build_insns(const struct op *op, struct bpf_insn **insns, uint32_t *n)
{
    char body[1024], text[4096];
    snprintf(body, sizeof(body), op->body, (unsigned long long)(uintptr_t)&user_word);
    snprintf(text, sizeof(text),
             "mov r6, 0\n mov r7, 0\n stdw [r10-8], 0\n stdw [r10-16], 0\n"
             "loop:\n stxw [r10-8], r6\n%s"
             "next:\n add r6, 1\n jlt r6, %d, loop\n mov r0, r7\n exit\n",
             body, OPS);
    struct graft_err err = { 0 };
    int r = gvm_asm(text, insns, n, &err);
    if (r)
        fprintf(stderr, "bench_maps: %s: assembling failed: %s\n", op->name, err.msg);
    return r;
}

/* ---- map setup ---- */

static struct gmap *graft_map(uint32_t type, uint32_t ks, uint32_t vs, uint32_t max)
{
    struct gmap_def d = { .type = type, .key_size = ks, .value_size = vs, .max_entries = max };
    snprintf(d.name, sizeof(d.name), "bench_%u", type);
    struct gmap *m;
    struct graft_err err = { 0 };
    if (gmap_create(&d, -1, &m, &err)) {
        fprintf(stderr, "bench_maps: gmap_create: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static void fill_graft(struct gmap *m)
{
    for (uint32_t k = 0; k < NKEYS; k++) {
        uint64_t v = k;
        if (gmap_update(m, &k, &v, GMAP_ANY)) {
            fprintf(stderr, "bench_maps: filling graft map failed at key %u\n", k);
            exit(1);
        }
    }
}

static void setup_graft(void)
{
    S.gm[M_HASH] = graft_map(GMAP_HASH, 4, 8, NKEYS);
    S.gm[M_ARRAY] = graft_map(GMAP_ARRAY, 4, 8, NKEYS);
    S.gm[M_PERCPU_HASH] = graft_map(GMAP_PERCPU_HASH, 4, 8, NKEYS);
    S.gm[M_RINGBUF] = graft_map(GMAP_RINGBUF, 0, 0, RB_SIZE);
    fill_graft(S.gm[M_HASH]);
    fill_graft(S.gm[M_ARRAY]);
    fill_graft(S.gm[M_PERCPU_HASH]);
}

/* ---- graft side ---- */

struct gprog {
    struct grt_instance *inst;
    gvm_native_fn fn;
};

static int graft_load(const struct op *op, const struct bpf_insn *insns, uint32_t n, struct gprog *g)
{
    struct gmap *maps[1] = { op->map == M_NONE ? S.gm[M_HASH] : S.gm[op->map] };
    struct graft_err err = { 0 };
    if (grt_instance_create(insns, n, maps, 1, GVM_ENGINE_JIT, &g->inst, &err)) {
        fprintf(stderr, "bench_maps: %s: graft load failed: %s\n", op->name, err.msg);
        return -1;
    }
    g->fn = gvm_prog_native(g->inst->prog);
    if (!g->fn) {
        fprintf(stderr, "bench_maps: %s: the JIT did not compile the program\n", op->name);
        return -1;
    }
    return 0;
}

static void graft_rb_reset(void)
{
    uint64_t *cons = gmap_ringbuf_pages(S.gm[M_RINGBUF]);
    uint64_t *prod = (uint64_t *)((char *)cons + 4096);
    __atomic_store_n(cons, __atomic_load_n(prod, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

/* ns per operation over k runs; -1 when a run did not do all its ops */
static double graft_measure(const struct op *op, struct gprog *g, int k)
{
    uint8_t ctx[64] = { 0 };
    uint64_t want = OPS, ret = 0;
    if (op->mode == RINGBUF)
        graft_rb_reset();
    double t0 = bench_mono_ns();
    for (int i = 0; i < k; i++)
        ret = g->fn(ctx, sizeof(ctx));
    double t = bench_mono_ns() - t0;
    if (op->mode == DELETE)
        fill_graft(S.gm[M_HASH]);
    if (ret != want) {
        fprintf(stderr, "bench_maps: %s: graft program did %llu of %d ops\n", op->name,
                (unsigned long long)ret, OPS);
        return -1;
    }
    return t / k / OPS;
}

/* ---- kernel side (bench_kernel.c) ---- */

static double kernel_measure(const struct op *op, const struct bk_prog *kp, int k)
{
    double ns;
    uint32_t ret = 0;
    if (op->mode == RINGBUF)
        bk_rb_reset();
    int r = bk_run(kp, k, &ns, &ret);
    if (op->mode == DELETE)
        bk_fill(BK_HASH);
    if (r) {
        fprintf(stderr, "bench_maps: %s: BPF_PROG_TEST_RUN failed: %s\n", op->name, strerror(-r));
        return -1;
    }
    if (ret != OPS) {
        fprintf(stderr, "bench_maps: %s: kernel program did %u of %d ops\n", op->name, ret, OPS);
        return -1;
    }
    return ns / OPS;
}

/* ---- driver ---- */

static int runs_for(double ns_per_op, enum mode mode)
{
    if (mode == DELETE)
        return 1;
    double per_run = ns_per_op * OPS;
    int k = per_run > 0 ? (int)(TARGET_NS / per_run) : 1000;
    if (k < 1)
        k = 1;
    if (k > 20000)
        k = 20000;
    if (mode == RINGBUF && k > RB_MAX_RUNS)
        k = RB_MAX_RUNS;
    return k;
}

static void bench_op(const struct op *op)
{
    struct bpf_insn *insns;
    uint32_t n;
    if (build_insns(op, &insns, &n))
        return;
    struct gprog g = { 0 };
    struct bk_prog kp = { .fd = -1, .empty_fd = -1 };
    int have_g = graft_load(op, insns, n, &g) == 0;
    int have_k = S.k_ok && bk_load(op->name, insns, n, op->map, op->map == M_NONE, &kp) == 0;
    int rounds = op->mode == DELETE ? DEL_ROUNDS : ROUNDS;
    double gv[DEL_ROUNDS], kv[DEL_ROUNDS];
    int ng = 0, nk = 0;
    /* warm up and calibrate */
    double g1 = have_g ? graft_measure(op, &g, 1) : -1;
    double k1 = have_k ? kernel_measure(op, &kp, 1) : -1;
    have_g = have_g && g1 >= 0;
    have_k = have_k && k1 >= 0;
    int kg = runs_for(g1, op->mode), kk = runs_for(k1, op->mode);
    for (int i = 0; i < rounds; i++) {
        double v;
        if (have_g && (v = graft_measure(op, &g, kg)) >= 0)
            gv[ng++] = v;
        if (have_k && (v = kernel_measure(op, &kp, kk)) >= 0)
            kv[nk++] = v;
    }
    if (ng == rounds)
        printf("BENCH %s_ns %.2f ns\n", op->name, bench_median(gv, ng));
    if (nk == rounds)
        printf("BENCH kernel_%s_ns %.2f ns\n", op->name, bench_median(kv, nk));
    fflush(stdout);
    if (g.inst)
        grt_instance_free(g.inst);
    bk_close(&kp);
    free(insns);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    setup_graft();
    S.k_ok = bk_setup(NKEYS, RB_SIZE) == 0;
    for (size_t i = 0; i < NOPS; i++)
        if (!only || strstr(ops[i].name, only))
            bench_op(&ops[i]);
    for (int i = M_HASH; i < M_COUNT; i++) {
        const char *name = gmap_shm_name(S.gm[i]);
        char copy[64];
        snprintf(copy, sizeof(copy), "%s", name);
        gmap_close(S.gm[i]);
        gmap_unlink(copy);
    }
    return 0;
}
