/*
 * bench_kernel_load.c - the kernel's own verifier against graft's on the
 * same programs: every program of the kernel's verifier selftests
 * (verifier_*.o under OBJDIR, built by tests/verifier/kernel_selftests/
 * build_corpus.sh) that the running kernel loads, each loaded alone
 * (kload_obj.c times its BPF_PROG_LOAD, as root) and verified by graft
 * in-process under `graft verify --privileged`'s policy (the kernel's
 * rules for root; raw_input.c, the command's own code).
 *
 * The set: programs the kernel loads in the first round (the ones it
 * refuses are left out of both sums, whatever graft says). Rounds
 * interleave kernel and graft per program, alternating which goes first;
 * each figure is the median of the rounds' sums.
 *
 * Usage: bench_kernel_load OBJDIR [ROUNDS (default 3)] [-v]
 * (-v: each loaded program's times in the first round, on stderr)
 * Prints BENCH kernel_selftests_kernel_load_s and
 * BENCH kernel_selftests_graft_verify_loadable_s.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kload_obj.h"
#include "loader/loader.h"
#include "raw_input.h"

struct prog_ref {
    char path[512];
    uint32_t index;            /* in its gobj */
    char name[64];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* graft's time to verify prog (its verdict does not matter here) */
static double graft_time(const struct gobj *obj, const struct gobj_prog *p)
{
    struct gver_result res = {0};
    struct graft_err err = {0};
    double t0 = now_s();
    raw_verify_kernel_prog(obj, p, KMODE_PRIVILEGED, 0, 0, 0, 0, &res, &err);
    double dt = now_s() - t0;
    gver_result_free(&res);
    return dt;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_kernel_load OBJDIR [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    int verbose = argc > 3 && !strcmp(argv[3], "-v");
    if (rounds < 1 || rounds > 99)
        rounds = 3;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    char **files = NULL;
    size_t n_files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 3 || strcmp(e->d_name + l - 2, ".o") || strncmp(e->d_name, "verifier_", 9))
            continue;
        files = realloc(files, (n_files + 1) * sizeof(*files));
        if (!files || asprintf(&files[n_files], "%s/%s", argv[1], e->d_name) < 0)
            return 2;
        n_files++;
    }
    closedir(d);
    qsort(files, n_files, sizeof(*files), cmp_str);

    struct gobj_opts oopts = { .sz = sizeof(oopts), .keep_broken_progs = true };
    struct gobj **objs = calloc(n_files ? n_files : 1, sizeof(*objs));
    double *ksum = calloc((size_t)rounds, sizeof(double)), *gsum = calloc((size_t)rounds, sizeof(double));
    if (!objs || !ksum || !gsum)
        return 2;
    unsigned total = 0, loaded = 0, not_graft = 0;
    unsigned char **ok = calloc(n_files ? n_files : 1, sizeof(*ok));
    for (size_t f = 0; f < n_files; f++) {
        struct graft_err err = {0};
        if (gobj_open_file(files[f], &oopts, &objs[f], &err) < 0)
            objs[f] = NULL;
    }
    for (int r = 0; r < rounds; r++) {
        for (size_t f = 0; f < n_files; f++) {
            struct gobj *o = objs[f];
            if (!o)
                continue;
            if (!ok[f] && !(ok[f] = calloc(o->n_progs ? o->n_progs : 1, 1)))
                return 2;
            for (uint32_t i = 0; i < o->n_progs; i++) {
                const struct gobj_prog *p = &o->progs[i];
                if (r == 0)
                    total++;
                if (r > 0 && !ok[f][i])
                    continue;
                if (p->load_error[0]) {
                    /* the kernel may load what graft cannot build: counted
                     * out of both, and said */
                    if (r == 0)
                        not_graft++;
                    continue;
                }
                double kt = 0, gt = 0;
                int kernel_first = (r + (int)i) % 2 == 0;
                if (!kernel_first)
                    gt = graft_time(o, p);
                int krc = ko_load_one(files[f], p->name, &kt);
                if (kernel_first && krc == 0)
                    gt = graft_time(o, p);
                if (krc < 0)
                    continue;
                if (r == 0) {
                    ok[f][i] = 1;
                    loaded++;
                    if (verbose)
                        fprintf(stderr, "%.6f %.6f %s %s\n", kt, gt, files[f], p->name);
                }
                ksum[r] += kt;
                gsum[r] += gt;
            }
        }
    }
    qsort(ksum, (size_t)rounds, sizeof(double), cmp_dbl);
    qsort(gsum, (size_t)rounds, sizeof(double), cmp_dbl);
    printf("# the kernel's verifier selftests (%zu objects, %u programs): the running kernel loads %u; "
           "both figures are over those %u (graft verify --privileged's policy, in-process), the median "
           "of %d rounds; %u programs graft cannot build are left out\n",
           n_files, total, loaded, loaded, rounds, not_graft);
    printf("BENCH kernel_selftests_kernel_load_s %.3f s\n", ksum[rounds / 2]);
    printf("BENCH kernel_selftests_graft_verify_loadable_s %.3f s\n", gsum[rounds / 2]);
    for (size_t f = 0; f < n_files; f++) {
        gobj_free(objs[f]);
        free(ok[f]);
        free(files[f]);
    }
    free(ok);
    free(objs);
    free(files);
    free(ksum);
    free(gsum);
    return loaded ? 0 : 1;
}
