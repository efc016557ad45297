/*
 * iso_gates.c - see iso_gates.h. The loops are emitted into a read+execute
 * page (registered as a gate range, as graft's own gates are): the same
 * bytes a trampoline inlines, so nothing but the instructions is measured.
 */
#define _GNU_SOURCE
#include "iso_gates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isolation/isolation.h"
#include "bench_util.h"

typedef void (*loop_fn)(uint64_t n);

int bench_quick(void)
{
    return getpid() == 1 || getenv("GRAFT_BENCH_QUICK") != NULL;
}

void bench_init_start(void)
{
    if (getpid() != 1)
        return;
    mount("proc", "/proc", "proc", 0, NULL);
    mkdir("/dev/shm", 01777);
    mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL);
}

void bench_init_done(void)
{
    if (getpid() != 1)
        return;
    printf("BENCH-QEMU: done\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
}

int bench_iso_on(const char *names)
{
    struct graft_err err = { 0 };
    if (giso_init(NULL, &err) < 0 || !giso_enabled()) {
        printf("# %s not measured: no PKU (%s%s%s)\n", names, giso_status(),
               err.msg[0] ? ": " : "", err.msg);
        return 0;
    }
    return 1;
}

/* body; dec rdi; jnz top; ret */
static size_t emit_loop(uint8_t *p, const uint8_t *body, size_t blen)
{
    size_t n = 0;
    if (blen)
        memcpy(p, body, blen), n += blen;
    static const uint8_t dec[] = { 0x48, 0xff, 0xcf };       /* dec rdi */
    memcpy(p + n, dec, 3), n += 3;
    int32_t rel = -(int32_t)(n + 6);
    p[n++] = 0x0f, p[n++] = 0x85;                            /* jnz rel32 */
    memcpy(p + n, &rel, 4), n += 4;
    p[n++] = 0xc3;
    return n;
}

int bench_iso_gates(uint64_t iters, int rounds)
{
    if (!bench_iso_on("wrpkru_pair_ns, gate_overhead_ns"))
        return 0;
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -1;
    uint32_t ext = giso_pkru_ext(), host = giso_pkru_host();
    uint8_t body[2 * GISO_GATE_MAX], raw[32];
    size_t b = giso_emit_gate(body, GISO_GATE_MAX, ext);
    b += giso_emit_gate(body + b, GISO_GATE_MAX, host);
    size_t r = 0;
    raw[r++] = 0x31, raw[r++] = 0xc9, raw[r++] = 0x31, raw[r++] = 0xd2;    /* ecx = edx = 0 */
    raw[r++] = 0xb8, memcpy(raw + r, &ext, 4), r += 4;                    /* mov eax, ext */
    raw[r++] = 0x0f, raw[r++] = 0x01, raw[r++] = 0xef;                    /* wrpkru */
    raw[r++] = 0xb8, memcpy(raw + r, &host, 4), r += 4;                   /* mov eax, host */
    raw[r++] = 0x0f, raw[r++] = 0x01, raw[r++] = 0xef;                    /* wrpkru */
    emit_loop(page, NULL, 0);
    emit_loop(page + 1024, raw, r);
    emit_loop(page + 2048, body, b);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0)
        return -1;
    giso_register_gate_range(page, 4096);
    loop_fn empty = (loop_fn)(void *)page, bare = (loop_fn)(void *)(page + 1024),
            gates = (loop_fn)(void *)(page + 2048);
    double *vb = calloc((size_t)rounds, sizeof(double)), *vg = calloc((size_t)rounds, sizeof(double));
    if (!vb || !vg)
        return -1;
    gates(iters / 10 + 1);                                   /* warm up */
    for (int i = 0; i < rounds; i++) {
        double t0 = bench_mono_ns();
        empty(iters);
        double t1 = bench_mono_ns();
        bare(iters);
        double t2 = bench_mono_ns();
        gates(iters);
        double t3 = bench_mono_ns();
        double e = (t1 - t0) / (double)iters;
        vb[i] = (t2 - t1) / (double)iters - e;
        vg[i] = (t3 - t2) / (double)iters - e;
    }
    qsort(vb, (size_t)rounds, sizeof(double), bench_cmp_double);
    qsort(vg, (size_t)rounds, sizeof(double), bench_cmp_double);
    printf("BENCH wrpkru_pair_ns %.1f ns\n", vb[rounds / 2]);
    printf("BENCH gate_overhead_ns %.1f ns\n", vg[rounds / 2]);
    printf("# gate pair minus the floor: %.1f ns (goal <= 6)\n", vg[rounds / 2] - vb[rounds / 2]);
    free(vb);
    free(vg);
    return 0;
}
