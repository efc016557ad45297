/*
 * bench_gate.c - what an MPK gate pair costs on this machine.
 *
 * Emits, into a read+execute page, a loop whose body is exactly what a
 * trampoline adds around an extension call: the enter gate (PKRU = ext) and
 * the exit gate (PKRU = host) from giso_emit_gate(). The cost per iteration
 * minus that of the same loop without gates is the gate pair overhead. Also
 * measures two bare WRPKRUs and the C gates (giso_enter/giso_leave). Prints
 * `BENCH <name> <value> <unit>` lines; exits 0 with a note on stderr when the
 * CPU has no PKU (nothing to measure). Best of 5 short runs (~0.1 s total).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "isolation/isolation.h"

typedef void (*loop_fn)(uint64_t n);

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* body(n) in a loop: top: body; dec rdi; jnz top; ret */
static size_t emit_loop(uint8_t *p, const uint8_t *body, size_t blen)
{
    size_t n = 0;
    if (blen)
        memcpy(p, body, blen), n += blen;
    static const uint8_t dec[] = { 0x48, 0xff, 0xcf };   /* dec rdi */
    memcpy(p + n, dec, 3), n += 3;
    int32_t rel = -(int32_t)(n + 6);
    p[n++] = 0x0f, p[n++] = 0x85;                        /* jnz rel32 */
    memcpy(p + n, &rel, 4), n += 4;
    p[n++] = 0xc3;
    return n;
}

static double per_iter(loop_fn f, uint64_t iters)
{
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ns();
        f(iters);
        double t = (now_ns() - t0) / (double)iters;
        if (t < best)
            best = t;
    }
    return best;
}

static double c_gates(uint64_t iters)
{
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            giso_enter();
            giso_leave();
        }
        double t = (now_ns() - t0) / (double)iters;
        if (t < best)
            best = t;
    }
    return best;
}

int main(void)
{
    struct graft_err err = { 0 };
    if (giso_init(NULL, &err) < 0 || !giso_enabled()) {
        fprintf(stderr, "isolation_gate_bench: nothing to measure: %s %s\n",
                giso_status(), err.msg);
        return 0;
    }
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    if (page == MAP_FAILED)
        return perror("mmap"), 1;
    uint8_t body[2 * GISO_GATE_MAX];
    size_t b = giso_emit_gate(body, GISO_GATE_MAX, giso_pkru_ext());
    b += giso_emit_gate(body + b, GISO_GATE_MAX, giso_pkru_host());
    emit_loop(page, body, b);                            /* gate pair */

    uint32_t ext = giso_pkru_ext(), host = giso_pkru_host();
    uint8_t raw[32];
    size_t r = 0;
    raw[r++] = 0x31, raw[r++] = 0xc9, raw[r++] = 0x31, raw[r++] = 0xd2;  /* ecx=edx=0 */
    raw[r++] = 0xb8, memcpy(raw + r, &ext, 4), r += 4;
    raw[r++] = 0x0f, raw[r++] = 0x01, raw[r++] = 0xef;
    raw[r++] = 0xb8, memcpy(raw + r, &host, 4), r += 4;
    raw[r++] = 0x0f, raw[r++] = 0x01, raw[r++] = 0xef;
    emit_loop(page + 1024, raw, r);                      /* two bare WRPKRUs */
    emit_loop(page + 2048, NULL, 0);                     /* empty loop */
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0)
        return perror("mprotect"), 1;
    giso_register_gate_range(page, 4096);

    const uint64_t iters = 200000;
    double empty = per_iter((loop_fn)(void *)(page + 2048), iters);
    double pair = per_iter((loop_fn)(void *)page, iters) - empty;
    double bare = per_iter((loop_fn)(void *)(page + 1024), iters) - empty;
    double cg = c_gates(iters);
    printf("BENCH gate_overhead_ns %.1f ns\n", pair);
    printf("BENCH wrpkru_pair_ns %.1f ns\n", bare);
    printf("BENCH c_gate_pair_ns %.1f ns\n", cg);
    return 0;
}
