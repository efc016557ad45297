/*
 * sf_kernel.c - the kernel differential of the soundness fuzzer (see
 * sf_kernel.h). Programs graft accepts and the kernel rejects are grouped
 * by the kernel's reason with the numbers and offsets taken out, so one
 * category is one rule; the report keeps the count and the first few seeds
 * of each, which regenerate the program (soundness_fuzz --prog SEED).
 */
#include "sf_kernel.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../verifier/kload.h"
#include "sf_gen.h"

#define MAX_CATS 64
#define EXAMPLES 3

struct category {
    char key[160];             /* the reason with numbers replaced by N */
    char example[256];         /* one full reason */
    uint64_t count;
    uint64_t seeds[EXAMPLES];
};

struct sf_kernel {
    int fds[SF_N_MAPS];
    int inner_fd;
    uint64_t total, both_ok, both_reject, graft_only, kernel_only;
    struct category cats[MAX_CATS];        /* graft accepts, the kernel rejects */
    int ncats;
    struct category kcats[MAX_CATS];       /* the kernel accepts, graft rejects */
    int nkcats;
};

struct sf_kernel *sf_kernel_new(char *why, size_t whylen)
{
    if (geteuid() != 0) {
        snprintf(why, whylen, "not root");
        return NULL;
    }
    struct sf_kernel *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < SF_N_MAPS; i++)
        k->fds[i] = -1;
    k->inner_fd = -1;
    const struct gmap_def *d = sf_map_defs();
    int fd = 0;
    for (int i = 0; i < SF_N_MAPS && fd >= 0; i++) {
        if (d[i].type == GMAP_ARRAY_OF_MAPS) {
            k->inner_fd = kl_map_create(d[i].inner_map_type, d[i].inner_key_size,
                                        d[i].inner_value_size, d[i].inner_max_entries, 0);
            fd = k->inner_fd < 0 ? k->inner_fd
                                 : kl_map_create_outer(d[i].type, d[i].key_size, d[i].max_entries,
                                                       k->inner_fd);
        } else {
            fd = kl_map_create(d[i].type, d[i].key_size, d[i].value_size, d[i].max_entries, 0);
        }
        k->fds[i] = fd;
    }
    if (fd < 0) {
        snprintf(why, whylen, "cannot create kernel maps: %s", strerror(-fd));
        sf_kernel_free(k);
        return NULL;
    }
    struct bpf_insn t[2] = { BPF_MOV64_IMM(BPF_R0, 0), BPF_EXIT_INSN() };
    fd = kl_prog_load(KL_PROG_TRACEPOINT, t, 2, NULL, 0);
    if (fd < 0) {
        snprintf(why, whylen, "cannot load programs: %s", strerror(-fd));
        sf_kernel_free(k);
        return NULL;
    }
    kl_close(fd);
    return k;
}

void sf_kernel_free(struct sf_kernel *k)
{
    if (!k)
        return;
    for (int i = 0; i < SF_N_MAPS; i++)
        if (k->fds[i] >= 0)
            kl_close(k->fds[i]);
    if (k->inner_fd >= 0)
        kl_close(k->inner_fd);
    free(k);
}

/* The last line of the log that states a reason (the kernel ends with
 * "processed N insns ..." after it). */
static void reason_of(char *log, char *out, size_t outlen)
{
    char *best = NULL;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (*line && strncmp(line, "processed ", 10) && strncmp(line, "verification time", 17))
            best = line;
    snprintf(out, outlen, "%s", best ? best : "(no log)");
}

int sf_kernel_verdict(struct sf_kernel *k, const struct bpf_insn *insns, uint32_t n,
                      char *reason, size_t reasonlen)
{
    static struct bpf_insn p[SF_MAX_INSNS];
    static char log[1 << 20];
    if (n > SF_MAX_INSNS)
        return -1;
    memcpy(p, insns, n * sizeof(*p));
    for (uint32_t i = 0; i + 1 < n; i++) {
        if (!bpf_is_ld_imm64(&p[i]))
            continue;
        if (p[i].src_reg == BPF_PSEUDO_MAP_IDX) {
            if (p[i].imm < 0 || p[i].imm >= SF_N_MAPS)
                return -1;
            p[i].src_reg = BPF_PSEUDO_MAP_FD;
            p[i].imm = k->fds[p[i].imm];
        }
        i++;
    }
    int fd = kl_prog_load(KL_PROG_TRACEPOINT, p, n, log, sizeof(log));
    if (fd >= 0) {
        kl_close(fd);
        reason[0] = 0;
        return 1;
    }
    if (fd == -ENOSPC) {       /* the log did not fit: the verdict is still a rejection */
        snprintf(reason, reasonlen, "(log too long) %s", strerror(-fd));
        return 0;
    }
    if (log[0])
        reason_of(log, reason, reasonlen);
    else
        snprintf(reason, reasonlen, "%s", strerror(-fd));
    return 0;
}

/* The reason with register numbers, offsets and sizes replaced by N. */
static void category_key(const char *reason, char *key, size_t keylen)
{
    if (keylen)
        key[0] = 0;
    size_t o = 0;
    for (const char *s = reason; *s && o + 2 < keylen; s++) {
        if (isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))) {
            while (s[1] && (isxdigit((unsigned char)s[1]) || s[1] == 'x'))
                s++;
            key[o++] = 'N';
        } else {
            key[o++] = *s;
        }
    }
    key[o] = 0;
}

static void add_to(struct category *cats, int *ncats, uint64_t seed, const char *reason)
{
    char key[160];
    category_key(reason, key, sizeof(key));
    int i;
    for (i = 0; i < *ncats && strcmp(cats[i].key, key); i++)
        ;
    if (i == *ncats) {
        if (*ncats == MAX_CATS)
            i = MAX_CATS - 1;  /* lump the rest into the last */
        else {
            (*ncats)++;
            memset(&cats[i], 0, sizeof(cats[i]));
            snprintf(cats[i].key, sizeof(cats[i].key), "%s", key);
            snprintf(cats[i].example, sizeof(cats[i].example), "%s", reason);
        }
    }
    if (cats[i].count < EXAMPLES)
        cats[i].seeds[cats[i].count] = seed;
    cats[i].count++;
}

void sf_kernel_record(struct sf_kernel *k, uint64_t seed, int graft_ok, int kernel_ok,
                      const char *kernel_reason, const char *graft_reason, int violated)
{
    char tagged[300];
    if (violated) {
        snprintf(tagged, sizeof(tagged), "[unsafe in graft's checked run] %s", kernel_reason);
        kernel_reason = tagged;
    }
    k->total++;
    if (graft_ok && kernel_ok)
        k->both_ok++;
    else if (!graft_ok && !kernel_ok)
        k->both_reject++;
    else if (graft_ok) {
        k->graft_only++;
        add_to(k->cats, &k->ncats, seed, kernel_reason);
    } else {
        k->kernel_only++;
        add_to(k->kcats, &k->nkcats, seed, graft_reason);
    }
}

static int by_count(const void *a, const void *b)
{
    const struct category *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void table(FILE *out, struct category *cats, int n)
{
    qsort(cats, (size_t)n, sizeof(*cats), by_count);
    fprintf(out, "| count | reason (numbers as N) | example | program seeds |\n|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        fprintf(out, "| %llu | `%s` | `%s` |", (unsigned long long)cats[i].count, cats[i].key,
                cats[i].example);
        for (uint64_t j = 0; j < cats[i].count && j < EXAMPLES; j++)
            fprintf(out, " %#llx", (unsigned long long)cats[i].seeds[j]);
        fprintf(out, " |\n");
    }
}

void sf_kernel_report(struct sf_kernel *k, FILE *out, uint64_t master_seed)
{
    printf("kernel differential: %llu programs, both accept %llu, both reject %llu, "
           "graft only %llu, kernel only %llu\n",
           (unsigned long long)k->total, (unsigned long long)k->both_ok,
           (unsigned long long)k->both_reject, (unsigned long long)k->graft_only,
           (unsigned long long)k->kernel_only);
    if (!out)
        return;
    fprintf(out, "## Run: master seed %#llx\n\n", (unsigned long long)master_seed);
    fprintf(out, "Programs generated without callbacks (the kernel needs BTF for them); one is "
                 "regenerated with `soundness_fuzz --prog SEED --without callbacks`.\n\n");
    fprintf(out, "%llu programs (tracepoint type in the kernel): both accept %llu, both reject %llu, "
            "graft accepts and the kernel rejects %llu, the kernel accepts and graft rejects %llu.\n\n",
            (unsigned long long)k->total, (unsigned long long)k->both_ok,
            (unsigned long long)k->both_reject, (unsigned long long)k->graft_only,
            (unsigned long long)k->kernel_only);
    fprintf(out, "### graft accepts, the kernel rejects (by the kernel's reason)\n\n");
    table(out, k->cats, k->ncats);
    fprintf(out, "\n### the kernel accepts, graft rejects (by graft's reason)\n\n");
    table(out, k->kcats, k->nkcats);
    fprintf(out, "\n");
}
