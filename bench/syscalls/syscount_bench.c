/*
 * syscount_bench.c - the real syscount program (libbpf-tools' syscount
 * logic, written here as eBPF instructions) on every syscall of this
 * process: graft's syscall hooks against the kernel's raw_syscalls
 * tracepoints, the same two programs and maps in both, in one run.
 *
 *   sys_enter: id = get_current_pid_tgid(); if (id >> 32 != PID) return;
 *              ts = ktime_get_ns(); map_update_elem(start, &(u32)id, &ts, 0)
 *   sys_exit:  id = get_current_pid_tgid(); if (ctx->id == -1) return;
 *              if (id >> 32 != PID) return;
 *              t = map_lookup_elem(start, &(u32)id); if (!t) return;
 *              lat = ktime_get_ns() - *t; key = ctx->id;
 *              v = lookup_or_try_init(data, &key, &zero);
 *              atomic v->count += 1; atomic v->total_ns += lat
 *   start: HASH u32 tid -> u64 ns; data: HASH u32 syscall id ->
 *   {u64 count, u64 total_ns, char comm[16]}; 8192 entries each.
 *
 * graft: the programs JIT-compiled, attached as the agent attaches
 * tracepoint programs that call helpers (tracepoint sys_enter/sys_exit on
 * every number, -1). Kernel: BPF_PROG_TYPE_TRACEPOINT programs on
 * raw_syscalls:sys_enter/sys_exit through perf_event_open +
 * PERF_EVENT_IOC_SET_BPF, as libbpf attaches them (root only; skipped with
 * a note otherwise; `--graft-only` leaves the kernel out, for profiling).
 *
 *   syscount_nohook_ns              plain getpid()
 *   syscount_prog_added_ns          graft: what the pair adds per syscall,
 *                                   in alternating blocks (below)
 *   syscount_prog_added_cpu_ns      graft: the same in thread CPU time,
 *                                   the way the kernel's figure is taken
 *   kernel_syscount_prog_added_ns   kernel: the same
 *   syscount_prog_fire_ns           the two programs alone, called in a
 *                                   tight loop on getpid's contexts (no
 *                                   hook, no syscall): added - fire is
 *                                   what the hook path itself costs
 *
 * `--paths` (instead of the above, graft only) takes the hook path apart:
 *
 *   paths_noprog_ns      hooks installed, no program
 *   paths_calls_noop_ns  one enter handler that returns at once, attached
 *                        as a calling program (the CALLS path)
 *   paths_pair_noop_ns   two such handlers, enter and exit (the PAIR path)
 *   paths_pair_noop_nofpsave_ns  the same attached with handler_keeps_fp
 *                        (no xmm0-15 save)
 *   paths_syscount_ns    the syscount pair (as the agent attaches it:
 *                        handler_keeps_fp if ghelper_prog_fp_free)
 *
 * each the median over ROUNDS of the median over 64 blocks of 100 calls of
 * (hooked - plain) in TSC ticks, plain and hooked blocks alternating: load
 * that comes and goes hits both sides of a block pair, so these move less
 * between runs than the figures above (and need an invariant TSC).
 *
 * The others are the median over ROUNDS short interleaved rounds of
 * (variant - plain of the same round), in thread CPU time (see per_call).
 * graft's headline figure is taken both ways, within the same attachment:
 * in blocks, as --paths takes its figures, which the kernel's figure cannot
 * be (its tracepoint sees every syscall, so no unhooked getpid exists while
 * it is attached), and in rounds, like the kernel's. Work the machine does
 * between rounds lands in whichever round comes next - deferred cleanup of
 * the previous attachment, another tenant's burst - and moves a round's
 * figure by several ns; a block pair 36 us long either misses it or is
 * discarded by the median. make bench-syscalls runs this RUNS times
 * (run.sh) and reports the median of each figure: whole runs of this
 * machine are sometimes ~30 % slower, plain getpid included. getpid is `mov $39,%eax; syscall; ret` called
 * through a pointer: one copy in this binary (rewritten) and one in
 * anonymous memory (never rewritten), as in syscall_bench.c. Both data maps
 * must count exactly the getpid calls made, with a mean latency that is
 * positive and below 1 ms (a FAIL line and exit status 1 otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/isa.h"
#include "vm/vm.h"
#include "bench_jit.h"
#include "bench_util.h"
#include "kbpf.h"

#define ROUNDS 31
#define CALLS 20000
#define ENTRIES 8192
#define DATA_SIZE 32

long sc_getpid(void);
__asm__(".text\n.globl sc_getpid\n.type sc_getpid,@function\n"
        "sc_getpid:\n mov $39, %eax\n syscall\n ret\n"
        ".size sc_getpid, .-sc_getpid\n");
typedef long (*getpid_fn)(void);

/* This thread's CPU time, not wall time: on a shared, overloaded machine
 * (load averages of 10-30 on 2 cores here) a round is preempted often, and
 * wall time then measures the other users. Syscall time counts as CPU time. */
static double per_call(getpid_fn f)
{
    double t0 = bench_thread_ns();
    for (int i = 0; i < CALLS; i++)
        f();
    return (bench_thread_ns() - t0) / CALLS;
}

#define PID_IMM 0   /* patched: this process's pid */
static struct bpf_insn sys_enter[] = {
    /* 0 */ BPF_MOV64_REG(6, 1),
    /* 1 */ BPF_CALL_HELPER(14),                         /* get_current_pid_tgid */
    /* 2 */ BPF_MOV64_REG(7, 0),
    /* 3 */ BPF_ALU64_IMM(BPF_RSH, 0, 32),
    /* 4 */ BPF_JMP_IMM(BPF_JNE, 0, PID_IMM, 11),         /* -> out (16) */
    /* 5 */ BPF_CALL_HELPER(5),                          /* ktime_get_ns */
    /* 6 */ BPF_STX_MEM(BPF_DW, 10, 0, -8),
    /* 7 */ BPF_STX_MEM(BPF_W, 10, 7, -12),
    /* 8 */ BPF_LD_IMM64_RAW(1, 0, 0),                   /* start */
    /* 10 */ BPF_MOV64_REG(2, 10),
    /* 11 */ BPF_ALU64_IMM(BPF_ADD, 2, -12),
    /* 12 */ BPF_MOV64_REG(3, 10),
    /* 13 */ BPF_ALU64_IMM(BPF_ADD, 3, -8),
    /* 14 */ BPF_MOV64_IMM(4, 0),                        /* BPF_ANY */
    /* 15 */ BPF_CALL_HELPER(2),                         /* map_update_elem */
    /* 16 */ BPF_MOV64_IMM(0, 0),
    /* 17 */ BPF_EXIT_INSN(),
};
static const int enter_start[] = {8};

static struct bpf_insn sys_exit[] = {
    /* 0 */ BPF_MOV64_REG(6, 1),
    /* 1 */ BPF_CALL_HELPER(14),
    /* 2 */ BPF_MOV64_REG(7, 0),
    /* 3 */ BPF_LDX_MEM(BPF_DW, 1, 6, 8),                /* ctx->id */
    /* 4 */ BPF_JMP_IMM(BPF_JEQ, 1, -1, 42),             /* -> out (47) */
    /* 5 */ BPF_ALU64_IMM(BPF_RSH, 0, 32),
    /* 6 */ BPF_JMP_IMM(BPF_JNE, 0, PID_IMM, 40),         /* -> out */
    /* 7 */ BPF_STX_MEM(BPF_W, 10, 7, -4),               /* tid */
    /* 8 */ BPF_LD_IMM64_RAW(1, 0, 0),                   /* start */
    /* 10 */ BPF_MOV64_REG(2, 10),
    /* 11 */ BPF_ALU64_IMM(BPF_ADD, 2, -4),
    /* 12 */ BPF_CALL_HELPER(1),                         /* map_lookup_elem */
    /* 13 */ BPF_JMP_IMM(BPF_JEQ, 0, 0, 33),             /* -> out */
    /* 14 */ BPF_LDX_MEM(BPF_DW, 8, 0, 0),
    /* 15 */ BPF_CALL_HELPER(5),
    /* 16 */ BPF_ALU64_REG(BPF_SUB, 0, 8),
    /* 17 */ BPF_MOV64_REG(8, 0),                        /* lat */
    /* 18 */ BPF_LDX_MEM(BPF_DW, 1, 6, 8),
    /* 19 */ BPF_STX_MEM(BPF_W, 10, 1, -8),              /* key = ctx->id */
    /* 20 */ BPF_LD_IMM64_RAW(1, 0, 0),                  /* data */
    /* 22 */ BPF_MOV64_REG(2, 10),
    /* 23 */ BPF_ALU64_IMM(BPF_ADD, 2, -8),
    /* 24 */ BPF_CALL_HELPER(1),
    /* 25 */ BPF_JMP_IMM(BPF_JNE, 0, 0, 18),             /* -> add (44) */
    /* 26 */ BPF_ST_MEM(BPF_DW, 10, -40, 0),             /* zero value */
    /* 27 */ BPF_ST_MEM(BPF_DW, 10, -32, 0),
    /* 28 */ BPF_ST_MEM(BPF_DW, 10, -24, 0),
    /* 29 */ BPF_ST_MEM(BPF_DW, 10, -16, 0),
    /* 30 */ BPF_LD_IMM64_RAW(1, 0, 0),                  /* data */
    /* 32 */ BPF_MOV64_REG(2, 10),
    /* 33 */ BPF_ALU64_IMM(BPF_ADD, 2, -8),
    /* 34 */ BPF_MOV64_REG(3, 10),
    /* 35 */ BPF_ALU64_IMM(BPF_ADD, 3, -40),
    /* 36 */ BPF_MOV64_IMM(4, 1),                        /* BPF_NOEXIST */
    /* 37 */ BPF_CALL_HELPER(2),
    /* 38 */ BPF_LD_IMM64_RAW(1, 0, 0),                  /* data */
    /* 40 */ BPF_MOV64_REG(2, 10),
    /* 41 */ BPF_ALU64_IMM(BPF_ADD, 2, -8),
    /* 42 */ BPF_CALL_HELPER(1),
    /* 43 */ BPF_JMP_IMM(BPF_JEQ, 0, 0, 3),              /* -> out */
    /* 44 */ BPF_MOV64_IMM(1, 1),
    /* 45 */ BPF_INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, BPF_ADD),
    /* 46 */ BPF_INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 8, 8, BPF_ADD),
    /* 47 */ BPF_MOV64_IMM(0, 0),
    /* 48 */ BPF_EXIT_INSN(),
};
static const int exit_start[] = {8}, exit_data[] = {20, 30, 38};
#define N_ENTER (sizeof(sys_enter) / sizeof(sys_enter[0]))
#define N_EXIT (sizeof(sys_exit) / sizeof(sys_exit[0]))

/* Point the LD_IMM64 at each index of at[] to a map: src 0 + the handle
 * (graft's loader resolution) or BPF_PSEUDO_MAP_FD + an fd (the kernel). */
static void set_maps(struct bpf_insn *p, const int *at, int n, uint8_t src, uint64_t v)
{
    for (int i = 0; i < n; i++) {
        p[at[i]].src_reg = src;
        p[at[i]].imm = (int32_t)(uint32_t)v;
        p[at[i] + 1].imm = (int32_t)(uint32_t)(v >> 32);
    }
}

static void set_pid(int32_t pid)
{
    sys_enter[4].imm = pid;
    sys_exit[6].imm = pid;
}

/* ---- the kernel: raw bpf(2) through kbpf.h ---- */

/* A perf event on tracefs event raw_syscalls/NAME running prog_fd, as
 * libbpf's bpf_program__attach_tracepoint makes it; -errno on failure. */
static int kernel_attach(const char *name, int prog_fd)
{
    char path[128], buf[32];
    int id = -1;
    const char *roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
    for (int i = 0; i < 2 && id < 0; i++) {
        snprintf(path, sizeof(path), "%s/events/raw_syscalls/%s/id", roots[i], name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            id = atoi(buf);
        }
    }
    if (id < 0)
        return -ENOENT;
    struct perf_event_attr pa;
    memset(&pa, 0, sizeof(pa));
    pa.size = sizeof(pa);
    pa.type = PERF_TYPE_TRACEPOINT;
    pa.config = (uint64_t)id;
    pa.sample_period = 1;
    pa.wakeup_events = 1;
    int pfd = (int)syscall(SYS_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0)
        return -errno;
    if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0 ||
        ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
        int e = -errno;
        close(pfd);
        return e;
    }
    return pfd;
}

static struct gmap *graft_hash_map(uint32_t value_size)
{
    struct gmap_def def = {.type = GMAP_HASH, .key_size = 4, .value_size = value_size,
                           .max_entries = ENTRIES};
    struct gmap *m;
    struct graft_err err = {0};
    if (gmap_create(&def, -1, &m, &err) < 0) {
        fprintf(stderr, "gmap_create: %s\n", err.msg);
        exit(1);
    }
    return m;
}

/* {count, total_ns} of getpid in a data map: FAIL line unless count ==
 * want and the mean latency is in (0, 1 ms). */
static int check_counts(const char *who, const uint64_t *v, long want)
{
    if ((long)v[0] != want) {
        printf("FAIL: %s's syscount counted %ld getpid calls, %ld were made\n", who,
               (long)v[0], want);
        return 1;
    }
    double mean = v[0] ? (double)v[1] / (double)v[0] : 0;
    if (!(mean > 0 && mean < 1e6)) {
        printf("FAIL: %s's syscount measured a mean getpid latency of %.1f ns\n", who, mean);
        return 1;
    }
    return 0;
}

static void free_maps_progs(struct gmap *a, struct gmap *b, struct gvm_prog *pe, struct gvm_prog *px)
{
    gmap_unlink(gmap_shm_name(a));
    gmap_unlink(gmap_shm_name(b));
    gmap_close(a);
    gmap_close(b);
    gvm_prog_free(pe);
    gvm_prog_free(px);
}

/* --paths: (hooked - plain) per call, ns, median over 64 alternating
 * blocks of 100 calls each (TSC ticks / ghz). */
#define BLOCKS 64
#define BLOCK_LEN 100
#define BLOCK_CALLS (BLOCKS * BLOCK_LEN)   /* hooked calls per paired_block */
static double paired_block(getpid_fn plain, double ghz)
{
    double d[BLOCKS];
    for (int k = 0; k < BLOCKS; k++) {
        uint64_t t0 = __rdtsc();
        for (int i = 0; i < BLOCK_LEN; i++)
            plain();
        uint64_t t1 = __rdtsc();
        for (int i = 0; i < BLOCK_LEN; i++)
            sc_getpid();
        uint64_t t2 = __rdtsc();
        d[k] = ((double)(t2 - t1) - (double)(t1 - t0)) / BLOCK_LEN / ghz;
    }
    return bench_median(d, BLOCKS);
}

static uint64_t noop_handler(void *ctx, uint64_t len)
{
    (void)ctx;
    (void)len;
    return 0;
}

/* Attach enter (and exit, if not NULL) as calling programs on every
 * syscall (keeps_fp: promising to leave the vector registers alone), time,
 * detach. */
static double paths_round(getpid_fn plain, double ghz, gsys_handler enter, gsys_handler exit_fn,
                          int keeps_fp)
{
    struct gsys_attach_opts calls = {.sz = sizeof(calls), .handler_keeps_fp = keeps_fp};
    struct gsys_link *le = NULL, *lx = NULL;
    struct graft_err err = {0};
    if (gsys_attach_opts(GSYS_ENTER, -1, enter, &calls, &le, &err) < 0 ||
        (exit_fn && gsys_attach_opts(GSYS_EXIT, -1, exit_fn, &calls, &lx, &err) < 0)) {
        fprintf(stderr, "gsys_attach: %s\n", err.msg);
        exit(1);
    }
    double d = paired_block(plain, ghz);
    gsys_detach(le);
    if (lx)
        gsys_detach(lx);
    return d;
}

/* TSC ticks per ns against CLOCK_MONOTONIC over 20 ms */
static double tsc_ghz(void)
{
    double m0 = bench_mono_ns();
    uint64_t c0 = __rdtsc();
    while (bench_mono_ns() - m0 < 2e7)
        ;
    return (double)(__rdtsc() - c0) / (bench_mono_ns() - m0);
}

static int run_paths(getpid_fn plain, gvm_native_fn fe, gvm_native_fn fx)
{
    double ghz = tsc_ghz();
    struct graft_err err = {0};
    if (gsys_install(NULL, &err) < 0) {
        fprintf(stderr, "gsys_install: %s\n", err.msg);
        return 1;
    }
    enum { NOPROG, CALLS1, PAIR0, PAIR0_NOFP, SYSC, NV };
    static const char *names[NV] = {"paths_noprog_ns", "paths_calls_noop_ns",
                                    "paths_pair_noop_ns", "paths_pair_noop_nofpsave_ns",
                                    "paths_syscount_ns"};
    int sysc_keeps_fp = ghelper_prog_fp_free(sys_enter, N_ENTER) && ghelper_prog_fp_free(sys_exit, N_EXIT);
    double v[NV][ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        v[NOPROG][r] = paired_block(plain, ghz);
        v[CALLS1][r] = paths_round(plain, ghz, noop_handler, NULL, 0);
        v[PAIR0][r] = paths_round(plain, ghz, noop_handler, noop_handler, 0);
        v[PAIR0_NOFP][r] = paths_round(plain, ghz, noop_handler, noop_handler, 1);
        v[SYSC][r] = paths_round(plain, ghz, fe, fx, sysc_keeps_fp);
    }
    gsys_uninstall();
    for (int k = 0; k < NV; k++)
        printf("BENCH %s %.1f ns\n", names[k], bench_median(v[k], ROUNDS));
    return 0;
}

int main(int argc, char **argv)
{
    /* --graft-only: no kernel rounds (for profiling graft's side alone) */
    int graft_only = argc > 1 && strcmp(argv[1], "--graft-only") == 0;
    if (!getenv("GRAFT_AGENT_OFF")) {
        setenv("GRAFT_AGENT_OFF", "1", 1);   /* the agent's constructor stays idle */
        execv("/proc/self/exe", argv);
        perror("re-exec with GRAFT_AGENT_OFF=1");
        return 1;
    }
    void *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(anon, (void *)sc_getpid, 8);
    mprotect(anon, 4096, PROT_READ | PROT_EXEC);
    getpid_fn plain = (getpid_fn)anon;
    set_pid(getpid());

    struct gmap *g_start = graft_hash_map(8), *g_data = graft_hash_map(DATA_SIZE);
    set_maps(sys_enter, enter_start, 1, 0, (uint64_t)(uintptr_t)g_start);
    set_maps(sys_exit, exit_start, 1, 0, (uint64_t)(uintptr_t)g_start);
    set_maps(sys_exit, exit_data, 3, 0, (uint64_t)(uintptr_t)g_data);
    struct gvm_prog *pe, *px;
    gvm_native_fn fe = bench_jit(sys_enter, N_ENTER, &pe), fx = bench_jit(sys_exit, N_EXIT, &px);
    ghelper_time_init();   /* as the runtime does when it creates a program */
    if (argc > 1 && strcmp(argv[1], "--paths") == 0) {
        int rc = run_paths(plain, fe, fx);
        free_maps_progs(g_start, g_data, pe, px);
        return rc;
    }

    int k_start = -1, k_data = -1, ke = -1, kx = -1;
    if (!graft_only) {
        k_start = kbpf_hash_map(8, ENTRIES);
        k_data = kbpf_hash_map(DATA_SIZE, ENTRIES);
    }
    if (graft_only) {
        /* kx stays -1: no kernel rounds */
    } else if (k_start < 0 || k_data < 0) {
        fprintf(stderr, "kernel syscount skipped: BPF_MAP_CREATE: %s\n",
                strerror(-(k_start < 0 ? k_start : k_data)));
    } else {
        set_maps(sys_enter, enter_start, 1, BPF_PSEUDO_MAP_FD, (uint32_t)k_start);
        set_maps(sys_exit, exit_start, 1, BPF_PSEUDO_MAP_FD, (uint32_t)k_start);
        set_maps(sys_exit, exit_data, 3, BPF_PSEUDO_MAP_FD, (uint32_t)k_data);
        ke = kbpf_prog_load(K_BPF_PROG_TYPE_TRACEPOINT, sys_enter, N_ENTER);
        kx = ke < 0 ? ke : kbpf_prog_load(K_BPF_PROG_TYPE_TRACEPOINT, sys_exit, N_EXIT);
        if (kx < 0)
            fprintf(stderr, "kernel syscount skipped: BPF_PROG_LOAD: %s\n%s\n", strerror(-kx), klog);
    }

    struct graft_err err = {0};
    if (gsys_install(NULL, &err) < 0) {
        fprintf(stderr, "gsys_install: %s\n", err.msg);
        return 1;
    }
    if (strcmp(gsys_method(), "zpoline") != 0)
        fprintf(stderr, "note: syscall hooks use %s\n", gsys_method());

    double ghz = tsc_ghz();
    double base[ROUNDS], dg[ROUNDS], dg_cpu[ROUNDS], dk[ROUNDS], fire[ROUNDS];
    struct gsys_enter_ctx ectx = {.ent = {.pid = (int32_t)syscall(SYS_gettid)}, .id = SYS_getpid};
    struct gsys_exit_ctx xctx = {.ent = ectx.ent, .id = SYS_getpid, .ret = getpid()};
    int nk = 0;
    long graft_calls = 0, kernel_calls = 0;
    /* as the agent attaches tracepoint programs that call helpers: without
     * the xmm save where every helper they call is GHELPER_F_FP_FREE */
    struct gsys_attach_opts calls_e = {.sz = sizeof(calls_e),
                                       .handler_keeps_fp = ghelper_prog_fp_free(sys_enter, N_ENTER)};
    struct gsys_attach_opts calls_x = {.sz = sizeof(calls_x),
                                       .handler_keeps_fp = ghelper_prog_fp_free(sys_exit, N_EXIT)};
    if (!calls_e.handler_keeps_fp || !calls_x.handler_keeps_fp)
        fprintf(stderr, "note: syscount's helpers are not all GHELPER_F_FP_FREE: xmm saved\n");
    for (int r = 0; r < ROUNDS; r++) {
        base[r] = per_call(plain);
        struct gsys_link *le, *lx;
        if (gsys_attach_opts(GSYS_ENTER, -1, fe, &calls_e, &le, &err) < 0 ||
            gsys_attach_opts(GSYS_EXIT, -1, fx, &calls_x, &lx, &err) < 0) {
            fprintf(stderr, "gsys_attach: %s\n", err.msg);
            return 1;
        }
        dg_cpu[r] = per_call(sc_getpid) - base[r];
        dg[r] = paired_block(plain, ghz);
        gsys_detach(le);
        gsys_detach(lx);
        graft_calls += CALLS + BLOCK_CALLS;
        double t0 = bench_thread_ns();
        for (int i = 0; i < CALLS; i++) {
            fe(&ectx, sizeof(ectx));
            fx(&xctx, sizeof(xctx));
        }
        fire[r] = (bench_thread_ns() - t0) / CALLS;
        graft_calls += CALLS;
        if (kx >= 0) {
            int pe_fd = kernel_attach("sys_enter", ke);
            int px_fd = pe_fd < 0 ? pe_fd : kernel_attach("sys_exit", kx);
            if (px_fd < 0) {
                fprintf(stderr, "kernel syscount skipped: perf_event_open/SET_BPF: %s\n",
                        strerror(-px_fd));
                if (pe_fd >= 0)
                    close(pe_fd);
                kx = -1;
                continue;
            }
            dk[nk++] = per_call(plain) - base[r];
            close(px_fd);
            close(pe_fd);
            kernel_calls += CALLS;
        }
    }
    gsys_uninstall();
    printf("BENCH syscount_nohook_ns %.1f ns\n", bench_median(base, ROUNDS));
    printf("BENCH syscount_prog_added_ns %.1f ns\n", bench_median(dg, ROUNDS));
    printf("BENCH syscount_prog_added_cpu_ns %.1f ns\n", bench_median(dg_cpu, ROUNDS));
    if (nk)
        printf("BENCH kernel_syscount_prog_added_ns %.1f ns\n", bench_median(dk, nk));
    printf("BENCH syscount_prog_fire_ns %.1f ns\n", bench_median(fire, ROUNDS));
    fprintf(stderr, "note: %s\n", ghelper_ktime_source());   /* where the programs' time came from */

    int bad = 0;
    uint32_t key = SYS_getpid;
    uint64_t *gv = gmap_lookup(g_data, &key), zero[2] = {0, 0};
    bad |= check_counts("graft", gv ? gv : zero, graft_calls);
    if (nk) {
        uint64_t kv[DATA_SIZE / 8] = {0};
        kbpf_map_get(k_data, key, kv);
        bad |= check_counts("the kernel", kv, kernel_calls);
    }
    free_maps_progs(g_start, g_data, pe, px);
    return bad;
}
