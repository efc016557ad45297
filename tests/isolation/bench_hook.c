/*
 * bench_hook.c - what isolation costs a real hook: a uprobe-style ENTRY
 * hook whose JIT-compiled extension increments a map counter, with the
 * per-site trampoline built without gates (gattach_set_isolation(0)) and
 * with them (1), on two otherwise identical functions in one process.
 *
 * Prints `BENCH <name> <value> <unit>`:
 *   uprobe_iso_off_ns    hooked call, no gates (minus the unhooked call)
 *   uprobe_iso_on_ns     hooked call, entry+exit gate (minus the unhooked call)
 *   hook_gate_overhead_ns  the difference: what the gates add per hit
 * Best of 7 short runs, ~0.2 s in all. Without PKU it says so on stderr and
 * prints nothing (there are no gates to measure).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"
#include "maps/maps.h"
#include "vm/vm.h"

static volatile int g_sink;
__attribute__((noinline)) int bench_plain(int x) { g_sink += x; __asm__ volatile("" ::: "memory"); return x + g_sink; }
__attribute__((noinline)) int bench_off(int x) { g_sink += x; __asm__ volatile("" ::: "memory"); return x + g_sink; }
__attribute__((noinline)) int bench_on(int x) { g_sink += x; __asm__ volatile("" ::: "memory"); return x + g_sink; }

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double per_call(int (*fn)(int), int iters)
{
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        double t0 = now_ns();
        for (int i = 0; i < iters; i++)
            fn(i);
        double t = (now_ns() - t0) / iters;
        if (t < best)
            best = t;
    }
    return best;
}

static int resolve_map(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *value,
                       struct graft_err *err)
{
    (void)src, (void)imm, (void)next, (void)err;
    *value = (uint64_t)(uintptr_t)arg;
    return 0;
}

/* A typical counting extension (map_lookup_elem, then add 1) on a fresh
 * map, tagged with the extension key when keyed. */
static ghook_handler make_ext(int keyed, struct graft_err *err)
{
    struct gmap_def def = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 8,
                            .max_entries = 1, .name = "bench_hook" };
    struct gmap *map;
    if (gmap_create(&def, -1, &map, err) < 0)
        return NULL;
    gmap_unlink(gmap_shm_name(map));        /* gone when the process is */
    if (keyed && gmap_protect_key(map, giso_pkey(), err) < 0)
        return NULL;
    const struct bpf_insn insns[] = {
        BPF_ST_MEM(BPF_W, 10, -4, 0),
        BPF_MOV64_REG(2, 10),
        BPF_ALU64_IMM(BPF_ADD, 2, -4),
        BPF_LD_IMM64_RAW(1, BPF_PSEUDO_MAP_FD, 0),
        BPF_CALL_HELPER(1),
        BPF_JMP_IMM(BPF_JEQ, 0, 0, 3),
        BPF_LDX_MEM(BPF_DW, 1, 0, 0),
        BPF_ALU64_IMM(BPF_ADD, 1, 1),
        BPF_STX_MEM(BPF_DW, 0, 1, 0),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    struct gvm_env env = { .helpers = ghelper_table(), .resolve_ld_imm64 = resolve_map,
                           .arg = map };
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env };
    struct gvm_prog *prog;
    if (gvm_prog_create(insns, sizeof(insns) / sizeof(insns[0]), &po, &prog, err) < 0)
        return NULL;
    return (ghook_handler)gvm_prog_native(prog);
}

int main(void)
{
    struct graft_err err = { 0 };
    if (giso_init(NULL, &err) < 0 || !giso_enabled()) {
        fprintf(stderr, "isolation_hook_bench: nothing to measure: %s\n", giso_status());
        return 0;
    }
    /* Two maps and programs: the gated hook's map carries the extension key,
     * the ungated one's cannot (its program runs with the host's PKRU). */
    ghook_handler h_off = make_ext(0, &err), h_on = make_ext(1, &err);
    struct gattach_opts o = { .sz = sizeof(o) };
    struct ghook *a, *b;
    if (!h_off || !h_on ||
        gattach_install((void *)bench_off, GHOOK_ENTRY, h_off, 0, &o, &a, &err) < 0 ||
        gattach_set_isolation(1, &err) < 0 ||
        gattach_install((void *)bench_on, GHOOK_ENTRY, h_on, 0, &o, &b, &err) < 0) {
        fprintf(stderr, "isolation_hook_bench: %s\n", err.msg);
        return 1;
    }
    const int iters = 200000;
    per_call(bench_on, iters / 10);                 /* warm up */
    double base = per_call(bench_plain, iters);
    double off = per_call(bench_off, iters) - base;
    double on = per_call(bench_on, iters) - base;
    printf("BENCH uprobe_iso_off_ns %.1f ns\n", off);
    printf("BENCH uprobe_iso_on_ns %.1f ns\n", on);
    printf("BENCH hook_gate_overhead_ns %.1f ns\n", on - off);
    gattach_remove(a, &err);
    gattach_remove(b, &err);
    return 0;
}
