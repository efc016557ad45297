/*
 * fp_util.c - see fp_util.h.
 */
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_util.h"
#include "helpers/helpers.h"

struct map_table {
    struct gmap *const *maps;
    int n;
};

static int resolve_map(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *v,
                       struct graft_err *err)
{
    const struct map_table *t = arg;
    (void)next;
    if (src != BPF_PSEUDO_MAP_FD || imm < 1 || imm >= t->n)
        return graft_errf(err, -EINVAL, "unknown map %d", imm);
    *v = (uint64_t)(uintptr_t)t->maps[imm];
    return 0;
}

struct gvm_prog *fp_jit(const char *text, struct gmap *const *maps, int n_maps, int *fp_free)
{
    struct graft_err err = {0};
    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(text, &insns, &n, &err) < 0) {
        printf("FAIL gvm_asm: %s\n%s", err.msg, text);
        exit(1);
    }
    /* the program keeps a pointer to its environment */
    struct gvm_env *env = calloc(1, sizeof(*env));
    struct map_table *table = calloc(1, sizeof(*table));
    if (!env || !table)
        exit(1);
    *table = (struct map_table){.maps = maps, .n = n_maps};
    *env = (struct gvm_env){.helpers = ghelper_table(), .resolve_ld_imm64 = resolve_map,
                            .arg = table};
    struct gvm_prog_opts po = {.sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = env};
    struct gvm_prog *p;
    if (gvm_prog_create(insns, n, &po, &p, &err) < 0) {
        printf("FAIL gvm_prog_create: %s\n", err.msg);
        exit(1);
    }
    *fp_free = ghelper_prog_fp_free(insns, n);
    free(insns);
    return p;
}

struct gmap *fp_make_map(enum gmap_type type, uint32_t value_size, uint32_t entries)
{
    struct gmap_def def = {.type = type, .key_size = 4, .value_size = value_size,
                           .max_entries = entries};
    struct graft_err err = {0};
    struct gmap *m;
    if (gmap_create(&def, -1, &m, &err) < 0) {
        printf("FAIL gmap_create: %s\n", err.msg);
        exit(1);
    }
    gmap_unlink(gmap_shm_name(m));   /* our mapping stays; no file left behind */
    return m;
}

int fp_cpu_has_avx(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;   /* the OS saves SSE and AVX state */
}

void fp_clobber_vectors(int avx)
{
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n movdqa %%xmm0, %%xmm1\n movdqa %%xmm0, %%xmm2\n"
                     "movdqa %%xmm0, %%xmm3\n movdqa %%xmm0, %%xmm4\n movdqa %%xmm0, %%xmm5\n"
                     "movdqa %%xmm0, %%xmm6\n movdqa %%xmm0, %%xmm7\n movdqa %%xmm0, %%xmm8\n"
                     "movdqa %%xmm0, %%xmm9\n movdqa %%xmm0, %%xmm10\n movdqa %%xmm0, %%xmm11\n"
                     "movdqa %%xmm0, %%xmm12\n movdqa %%xmm0, %%xmm13\n movdqa %%xmm0, %%xmm14\n"
                     "movdqa %%xmm0, %%xmm15\n" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
                     "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                     "xmm13", "xmm14", "xmm15");
    if (avx)
        __asm__ volatile("vzeroupper" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                         "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
                         "xmm14", "xmm15");
}

void fp_compare(const uint8_t *want, const uint8_t *got, int regs, int stride, int upper,
                const char *what, long call, struct fp_damage *d)
{
    for (int reg = 0; reg < regs; reg++) {
        const uint8_t *a = want + reg * stride, *b = got + reg * stride;
        int lo = memcmp(a, b, 16) != 0, hi = upper && memcmp(a + 16, b + 16, 16) != 0;
        d->xmm_bad += lo;
        d->upper_bad += hi;
        if ((lo || hi) && !d->first[0])
            snprintf(d->first, sizeof(d->first), "%s%s%s%d changed on call %ld", what ? what : "",
                     what ? " " : "", lo ? "xmm" : "upper half of ymm", reg, call);
    }
}

struct thread_run {
    void (*run)(void *arg, struct fp_damage *d);
    void *arg;
    struct fp_damage d;
};

static void *thread_main(void *p)
{
    struct thread_run *t = p;
    t->run(t->arg, &t->d);
    return NULL;
}

struct fp_damage fp_on_threads(void (*run)(void *arg, struct fp_damage *d), void *arg,
                               int threads)
{
    struct fp_damage d = {0};
    run(arg, &d);
    for (int i = 0; i < threads; i++) {
        struct thread_run t = {.run = run, .arg = arg};
        pthread_t th;
        pthread_create(&th, NULL, thread_main, &t);
        pthread_join(th, NULL);
        d.calls += t.d.calls;
        d.xmm_bad += t.d.xmm_bad;
        d.upper_bad += t.d.upper_bad;
        if (!d.first[0])
            memcpy(d.first, t.d.first, sizeof(d.first));
    }
    return d;
}
