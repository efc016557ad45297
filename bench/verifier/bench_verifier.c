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
 *   BENCH verify_ms_typical_max_nospec, verify_ms_largest_nospec: the same
 *       programs verified without the Spectre v1 rules (policy spec_bypass,
 *       the kernel's root rule), to show what the speculative paths cost.
 *
 * Each program is verified several times under each policy, the two
 * interleaved, and the medians are taken. Details (per-program verdicts,
 * times, instructions explored and states stored) go to stderr.
 */
#include <inttypes.h>
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

struct timing {
    double ms;                 /* median */
    int acc;                   /* 1 accepted, 0 rejected, -1 error */
    uint64_t explored, stored;
    char why[256];
};

/* Verify p REPEAT times under pol[0] and pol[1] (when given), alternating,
 * so that both see the same machine load; medians into t[0], t[1]. */
static void time_verify(const struct bpf_insn *p, uint32_t n, const struct gmap_def *maps, uint32_t nm,
                        struct gver_policy *const pol[2], struct timing t[2])
{
    double ms[2][REPEAT];
    memset(t, 0, 2 * sizeof(*t));
    for (int i = 0; i < REPEAT; i++) {
        for (int k = 0; k < 2 && pol[k]; k++) {
            struct gver_input in = { .insns = p, .n = n, .maps = maps, .n_maps = nm, .policy = pol[k] };
            struct gver_result res;
            struct graft_err err;
            if (gver_verify(&in, &res, &err)) {
                t[k].acc = -1;
                snprintf(t[k].why, sizeof(t[k].why), "%.200s", err.msg);
                ms[k][i] = 0;
                continue;
            }
            ms[k][i] = res.ms;
            t[k].acc = res.accepted;
            t[k].explored = res.states_explored;
            t[k].stored = res.states_stored;
            snprintf(t[k].why, sizeof(t[k].why), "%s", res.reason);
            gver_result_free(&res);
        }
    }
    for (int k = 0; k < 2 && pol[k]; k++) {
        qsort(ms[k], REPEAT, sizeof(double), cmpd);
        t[k].ms = ms[k][REPEAT / 2];
    }
}

/* pol's twin without the Spectre v1 rules (NULL when it has none). */
static struct gver_policy *nospec_twin(const struct gver_policy *pol)
{
    struct gver_policy *q = malloc(sizeof(*q));
    if (q) {
        *q = *pol;
        q->spec_bypass = 1;
    }
    return q;
}

static void report(const char *what, const char *name, uint32_t n, const struct timing t[2])
{
    fprintf(stderr, "%-50s %-28s %6u insns %8.3f ms %8.3f ms nospec; explored %" PRIu64 "/%" PRIu64
                    ", stored %" PRIu64 "/%" PRIu64 " %s %s\n",
            what, name, n, t[0].ms, t[1].ms, t[0].explored, t[1].explored, t[0].stored, t[1].stored,
            t[0].acc > 0 ? "accepted" : "rejected:", t[0].acc > 0 ? "" : t[0].why);
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

static void bench_objects(int argc, char **argv, int *count, double worst[2])
{
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
            struct gver_policy *pols[2] = { pol, nospec_twin(pol) };
            struct timing t[2];
            time_verify(p->insns, p->n_insns, defs, obj->n_maps, pols, t);
            report(argv[a], p->name, p->n_insns, t);
            for (int k = 0; k < 2; k++)
                if (t[k].ms > worst[k])
                    worst[k] = t[k].ms;
            (*count)++;
            free(pols[1]);
            free(pol);
        }
        free(defs);
        gobj_free(obj);
    }
}

/* Fallback when no objects exist yet: the corpus cases the verifier accepts. */
static void bench_corpus(const char *dir, int *count, double worst[2])
{
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
            struct gver_policy *pols[2] = { pol, nospec_twin(pol) };
            struct timing t[2];
            time_verify(p, ni, cs[i].maps, cs[i].n_maps, pols, t);
            for (int k = 0; k < 2; k++)
                if (t[k].ms > worst[k])
                    worst[k] = t[k].ms;
            (*count)++;
            free(pols[1]);
            free(pol);
            free(p);
        }
        if (n > 0)
            vt_free_cases(cs, n);
    }
    if (d)
        closedir(d);
    fprintf(stderr, "corpus: %d accepted cases, slowest %.3f ms (%.3f ms without the Spectre rules)\n", *count,
            worst[0], worst[1]);
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
    double typical[2] = { 0, 0 };
    bench_objects(argc - 1, argv + 1, &count, typical);
    if (count == 0 && cases) {
        fprintf(stderr, "no BPF objects under the build tree yet: timing the corpus instead\n");
        bench_corpus(cases, &count, typical);
    }

    struct gmap_def map = { .type = GMAP_HASH, .key_size = 4, .value_size = 64, .max_entries = 1024 };
    struct gver_policy *pol = gver_policy_raw(64);
    struct gver_policy *pols[2] = { pol, nospec_twin(pol) };
    double largest[2] = { 0, 0 };
    static const char *names[] = { "straight+lookups", "loops", "subprograms" };
    for (int k = 0; k < 3; k++) {
        struct gen g = synth(k, 4400);
        struct timing t[2];
        time_verify(g.p, g.n, &map, 1, pols, t);
        report("synthetic", names[k], g.n, t);
        if (t[0].acc <= 0 || t[1].acc <= 0) {
            fprintf(stderr, "synthetic program %s must verify\n", names[k]);
            return 1;
        }
        for (int j = 0; j < 2; j++)
            if (t[j].ms > largest[j])
                largest[j] = t[j].ms;
        free(g.p);
    }
    free(pols[1]);
    free(pol);
    printf("BENCH verify_ms_typical_max %.3f ms\n", typical[0]);
    printf("BENCH verify_ms_largest %.3f ms\n", largest[0]);
    printf("BENCH verify_ms_typical_max_nospec %.3f ms\n", typical[1]);
    printf("BENCH verify_ms_largest_nospec %.3f ms\n", largest[1]);
    return 0;
}
