/*
 * bench_verifier.c - how long verification takes.
 *
 *   BENCH verify_ms_typical_max <ms> ms   slowest of the repository's BPF
 *       programs: every program of every *.bpf.o given on the command line
 *       (run.sh finds them under the build tree), opened with the loader;
 *       when there are none, the corpus cases (tests/verifier/cases).
 *   BENCH verify_ms_largest <ms> ms       slowest of a few synthetic programs
 *       of 4000+ instructions with branches, map lookups, calls and bounded
 *       loops.
 *
 * Each program is verified several times and the median is taken. Details
 * (per-program verdicts and times) go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include "loader/loader.h"
#include "vtest.h"
#include "verifier/verifier.h"
#include "vm/vm.h"

#define REPEAT 5

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median time of REPEAT verifications; verdict in *acc. */
static double time_verify(const struct bpf_insn *p, uint32_t n, const struct gmap_def *maps,
                          uint32_t nm, const struct gver_policy *pol, int *acc, char *why, size_t wl)
{
    double t[REPEAT];
    for (int i = 0; i < REPEAT; i++) {
        struct gver_input in = { .insns = p, .n = n, .maps = maps, .n_maps = nm, .policy = pol };
        struct gver_result res;
        struct graft_err err;
        if (gver_verify(&in, &res, &err)) {
            *acc = -1;
            snprintf(why, wl, "%.200s", err.msg);
            return 0;
        }
        t[i] = res.ms;
        *acc = res.accepted;
        snprintf(why, wl, "%s", res.reason);
        gver_result_free(&res);
    }
    qsort(t, REPEAT, sizeof(double), cmpd);
    return t[REPEAT / 2];
}

/* ---- synthetic programs ---- */

struct gen {
    struct bpf_insn *p;
    uint32_t n, cap;
};

static void emit(struct gen *g, struct bpf_insn in)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->p = realloc(g->p, g->cap * sizeof(*g->p));
        if (!g->p)
            abort();
    }
    g->p[g->n++] = in;
}

/* One block of about 10 instructions; r6 = ctx, r7 = accumulator. */
static void block(struct gen *g, unsigned i, int loops)
{
    switch (i % 4) {
    case 0:            /* diamond on a ctx value, merging into a range */
        emit(g, BPF_LDX_MEM(BPF_W, BPF_R2, BPF_R6, (int16_t)(8 * (i % 8))));
        emit(g, BPF_JMP_IMM(BPF_JGT, BPF_R2, 100, 2));
        emit(g, BPF_MOV64_REG(BPF_R3, BPF_R2));
        emit(g, BPF_JMP_A(1));
        emit(g, BPF_MOV64_IMM(BPF_R3, 5));
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R7, BPF_R3));
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R7, 0xffff));
        break;
    case 1: {          /* map lookup, null check, bounded index into the value */
        struct bpf_insn ld[2] = { BPF_LD_IMM64_RAW(BPF_R1, BPF_PSEUDO_MAP_IDX, 0) };
        emit(g, BPF_ST_MEM(BPF_W, BPF_R10, -4, (int32_t)(i % 16)));
        emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
        emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, -4));
        emit(g, ld[0]);
        emit(g, ld[1]);
        emit(g, BPF_CALL_HELPER(1));
        emit(g, BPF_JMP_IMM(BPF_JEQ, BPF_R0, 0, 5));
        emit(g, BPF_LDX_MEM(BPF_W, BPF_R3, BPF_R0, 0));
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R3, 56));
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R0, BPF_R3));
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R3, BPF_R0, 0));
        emit(g, BPF_ALU64_REG(BPF_XOR, BPF_R7, BPF_R3));
        break;
    }
    case 2:            /* stack traffic: spill, fill, a read at an offset the data picks
                        * (graft's default policy keeps stack offsets constant,
                        * against Spectre v1: a branch picks one) */
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R4, BPF_R6, (int16_t)(8 * (i % 8))));
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R4, -16));
        emit(g, BPF_ST_MEM(BPF_DW, BPF_R10, -24, (int32_t)i));
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R4, BPF_R10, -16));
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R4, 7));
        emit(g, BPF_JMP_IMM(BPF_JGT, BPF_R4, 3, 2));
        emit(g, BPF_LDX_MEM(BPF_B, BPF_R4, BPF_R10, -24));
        emit(g, BPF_JMP_A(1));
        emit(g, BPF_LDX_MEM(BPF_B, BPF_R4, BPF_R10, -20));
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R7, BPF_R4));
        break;
    default:           /* a bounded loop, with a diamond inside */
        if (!loops) {
            emit(g, BPF_ALU64_IMM(BPF_MUL, BPF_R7, 3));
            emit(g, BPF_ALU64_IMM(BPF_RSH, BPF_R7, 1));
            break;
        }
        emit(g, BPF_MOV64_IMM(BPF_R4, 0));
        emit(g, BPF_LDX_MEM(BPF_B, BPF_R2, BPF_R6, (int16_t)(i % 64)));      /* loop head: */
        emit(g, BPF_JMP_REG(BPF_JGT, BPF_R2, BPF_R4, 2));
        emit(g, BPF_MOV64_REG(BPF_R3, BPF_R4));
        emit(g, BPF_JMP_A(1));
        emit(g, BPF_MOV64_IMM(BPF_R3, 1));
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R7, BPF_R3));
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R7, 0xffff));
        emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R4, 1));
        emit(g, BPF_JMP_IMM(BPF_JLT, BPF_R4, 16, -9));
        break;
    }
}

/* kind 0: straight code with diamonds/lookups; 1: plus loops; 2: the blocks
 * spread over subprograms called from main. */
static struct gen synth(int kind, uint32_t target)
{
    struct gen g = { 0 };
    emit(&g, BPF_MOV64_REG(BPF_R6, BPF_R1));
    emit(&g, BPF_MOV64_IMM(BPF_R7, 0));
    if (kind < 2) {
        for (unsigned i = 0; g.n < target; i++)
            block(&g, i, kind == 1);
        emit(&g, BPF_MOV64_REG(BPF_R0, BPF_R7));
        emit(&g, BPF_EXIT_INSN());
        return g;
    }
    /* main: call each of 8 functions, adding their results */
    enum { NF = 8 };
    uint32_t call_at[NF];
    for (int f = 0; f < NF; f++) {
        emit(&g, BPF_MOV64_REG(BPF_R1, BPF_R6));
        call_at[f] = g.n;
        emit(&g, BPF_INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0));
        emit(&g, BPF_ALU64_REG(BPF_ADD, BPF_R7, BPF_R0));
    }
    emit(&g, BPF_MOV64_REG(BPF_R0, BPF_R7));
    emit(&g, BPF_EXIT_INSN());
    for (int f = 0; f < NF; f++) {
        g.p[call_at[f]].imm = (int32_t)(g.n - call_at[f] - 1);
        emit(&g, BPF_MOV64_REG(BPF_R6, BPF_R1));
        emit(&g, BPF_MOV64_IMM(BPF_R7, 0));
        for (unsigned i = 0; g.n < target * (f + 1) / NF; i++)
            block(&g, i + (unsigned)f, 1);
        emit(&g, BPF_MOV64_REG(BPF_R0, BPF_R7));
        emit(&g, BPF_EXIT_INSN());
    }
    return g;
}

/* ---- the repository's programs ---- */

static double bench_objects(int argc, char **argv, int *count)
{
    double worst = 0;
    for (int a = 0; a < argc; a++) {
        struct gobj *obj;
        struct graft_err err;
        if (gobj_open_file(argv[a], NULL, &obj, &err)) {
            fprintf(stderr, "skip %s: %s\n", argv[a], err.msg);
            continue;
        }
        struct gmap_def *defs = calloc(obj->n_maps + 1, sizeof(*defs));
        for (uint32_t m = 0; m < obj->n_maps; m++) {
            defs[m] = obj->maps[m].def;
            if (obj->maps[m].kind == GOBJ_MAP_RODATA)
                defs[m].map_flags |= GMAP_F_RDONLY_PROG;
        }
        for (uint32_t i = 0; i < obj->n_progs; i++) {
            struct gobj_prog *p = &obj->progs[i];
            struct gver_policy *pol = gver_policy_for_prog_type(p->type);
            if (!pol)
                pol = gver_policy_raw(4096);
            /* what is timed is the analysis: programs that change the host
             * (override, probe_write_user) are verified in full, as under
             * the class or --allow that would grant them */
            gver_policy_grant(pol, GVER_RIGHTS_HOST_WRITES);
            int acc;
            char why[256];
            double ms = time_verify(p->insns, p->n_insns, defs, obj->n_maps, pol, &acc, why, sizeof(why));
            fprintf(stderr, "%-50s %-28s %6u insns %8.3f ms %s %s\n", argv[a], p->name, p->n_insns, ms,
                    acc > 0 ? "accepted" : "rejected:", acc > 0 ? "" : why);
            if (ms > worst)
                worst = ms;
            (*count)++;
            free(pol);
        }
        free(defs);
        gobj_free(obj);
    }
    return worst;
}

/* Fallback when no objects exist yet: the corpus cases the verifier accepts. */
static double bench_corpus(const char *dir, int *count)
{
    double worst = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".txt"))
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct vcase *cs;
        int n = vt_parse_file(path, &cs);
        for (int i = 0; i < n; i++) {
            struct bpf_insn *p;
            uint32_t ni;
            struct graft_err err;
            if (!cs[i].expect_accept || !cs[i].text || gvm_asm(cs[i].text, &p, &ni, &err))
                continue;
            struct gver_policy *pol = vt_policy(&cs[i]);
            int acc;
            char why[256];
            double ms = time_verify(p, ni, cs[i].maps, cs[i].n_maps, pol, &acc, why, sizeof(why));
            if (ms > worst)
                worst = ms;
            (*count)++;
            free(pol);
            free(p);
        }
        if (n > 0)
            vt_free_cases(cs, n);
    }
    if (d)
        closedir(d);
    fprintf(stderr, "corpus: %d accepted cases, slowest %.3f ms\n", *count, worst);
    return worst;
}

int main(int argc, char **argv)
{
    int count = 0;
    const char *cases = NULL;
    if (argc > 2 && !strcmp(argv[1], "--cases")) {
        cases = argv[2];
        argc -= 2;
        argv += 2;
    }
    double typical = bench_objects(argc - 1, argv + 1, &count);
    if (count == 0 && cases) {
        fprintf(stderr, "no BPF objects under the build tree yet: timing the corpus instead\n");
        typical = bench_corpus(cases, &count);
    }
    printf("BENCH verify_ms_typical_max %.3f ms\n", typical);

    struct gmap_def map = { .type = GMAP_HASH, .key_size = 4, .value_size = 64, .max_entries = 1024 };
    struct gver_policy *pol = gver_policy_raw(64);
    double largest = 0;
    static const char *names[] = { "straight+lookups", "loops", "subprograms" };
    for (int k = 0; k < 3; k++) {
        struct gen g = synth(k, 4400);
        int acc;
        char why[256];
        double ms = time_verify(g.p, g.n, &map, 1, pol, &acc, why, sizeof(why));
        fprintf(stderr, "synthetic %-18s %6u insns %8.3f ms %s %s\n", names[k], g.n, ms,
                acc > 0 ? "accepted" : "rejected:", acc > 0 ? "" : why);
        if (acc <= 0) {
            fprintf(stderr, "synthetic program %s must verify\n", names[k]);
            return 1;
        }
        if (ms > largest)
            largest = ms;
        free(g.p);
    }
    free(pol);
    printf("BENCH verify_ms_largest %.3f ms\n", largest);
    return 0;
}
