/*
 * fp_util.c - see fp_util.h.
 */
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>

#include "fp_util.h"
#include "helpers/helpers.h"

struct gvm_prog *fp_jit(const char *text, fp_resolve_fn resolve, int *fp_free)
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
    if (!env)
        exit(1);
    *env = (struct gvm_env){.helpers = ghelper_table(), .resolve_ld_imm64 = resolve};
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
