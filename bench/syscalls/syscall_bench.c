/*
 * syscall_bench.c - what a graft syscall hook adds to one getpid(), against
 * the kernel's raw_syscalls:sys_enter tracepoint running the same eBPF
 * programs (loaded with bpf(2) BPF_PROG_LOAD + BPF_RAW_TRACEPOINT_OPEN, root
 * only; raw bpf(2) because linux/bpf.h and graft's vm/isa.h both define
 * struct bpf_insn).
 *
 * The benchmark links libgraft-agent.so, as a process extended by graft
 * does, so the hooks and helpers pay what they pay there (e.g. thread-local
 * storage through the dynamic linker); it sets GRAFT_AGENT_OFF (re-executing
 * itself if needed) so that the agent's constructor stays idle.
 *
 * The syscall is `mov $SYS_getpid,%eax; syscall; ret` called through a
 * pointer: one copy in this binary (rewritten by gsys_install) and one in
 * anonymous executable memory (never scanned), so "no hook" and "hook" run
 * identical code. Rounds are short and interleaved; each value is the
 * median over rounds of (variant - plain of the same round), which keeps
 * the noise of a shared machine out of the differences.
 *
 *   syscall_nohook_ns                plain getpid()
 *   syscall_hook_noprog_added_ns     hooks installed, no program on getpid
 *   syscall_hook_added_ns            raw sys_enter program (4 instructions)
 *                                    attached with handler_preserves_fp (it
 *                                    calls nothing): the assembly fast path
 *   syscall_hook_tp_added_ns         same, tracepoint sys_enter_getpid kind
 *   syscall_hook_dispatch_added_ns   same program without the flag: the
 *                                    general (C) path
 *   syscall_hook_helpers_added_ns    a syscount-like program on every
 *                                    syscall (raw sys_enter, attached as the
 *                                    agent attaches a program that calls
 *                                    helpers, all FP-free: no xmm save; a
 *                                    thread ticks the comm cache as the
 *                                    agent's does): bpf_get_current_comm and
 *                                    bpf_get_current_pid_tgid filters, hash
 *                                    map lookup, atomic add (update with
 *                                    BPF_NOEXIST the first time)
 *   syscall_iso_added_ns             the 4-instruction program with isolation
 *                                    on as the agent sets it up (gates and
 *                                    extension stacks; the general path),
 *                                    when the CPU has PKU; then also the
 *                                    PKRU floor (wrpkru_pair_ns) and the gate
 *                                    pair (gate_overhead_ns) of this run
 *   kernel_tp_added_ns               kernel raw_syscalls:sys_enter, the
 *                                    4-instruction program
 *   kernel_tp_helpers_added_ns       kernel, the syscount-like program
 *
 * Both syscount-like programs count this process's getpid calls into a hash
 * map; the counts are checked against the calls made (a FAIL line and exit
 * status 1 otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "iso_gates.h"
#include "isolation/isolation.h"
#include "maps/maps.h"
#include "vm/isa.h"
#include "vm/vm.h"
#include "bench_jit.h"
#include "bench_util.h"
#include "kbpf.h"

#define ROUNDS 31
static int CALLS = 20000;

long bench_getpid(void);
__asm__(".text\n.globl bench_getpid\n.type bench_getpid,@function\n"
        "bench_getpid:\n mov $39, %eax\n syscall\n ret\n"
        ".size bench_getpid, .-bench_getpid\n");

typedef long (*getpid_fn)(void);

static double per_call(getpid_fn f)
{
    double t0 = bench_mono_ns();
    for (int i = 0; i < CALLS; i++)
        f();
    return (bench_mono_ns() - t0) / CALLS;
}

/* r0 = ctx[1] (the syscall id); r0 += 1; r0 = 0; exit */
static const struct bpf_insn trivial[] = {
    BPF_LDX_MEM(BPF_DW, 0, 1, 8),
    BPF_ALU64_IMM(BPF_ADD, 0, 1),
    BPF_MOV64_IMM(0, 0),
    BPF_EXIT_INSN(),
};

/* syscount-like (examples/apps/nginx/syscount.bpf.c plus a pid filter):
 *   if (get_current_comm(buf, 16) < 0 || first 4 bytes of buf != COMM) return 0;
 *   if (get_current_pid_tgid() >> 32 != PID) return 0;
 *   u32 id = ctx->args[1]; u64 *v = map_lookup_elem(map, &id);
 *   if (v) atomic add 1 else map_update_elem(map, &id, &one, BPF_NOEXIST);
 * The two 64-bit loads (insns 12 and 23) get the map; MAPSRC/MAPVAL say how. */
#define INS_COMM 5
#define INS_PID 8
#define INS_MAP1 12
#define INS_MAP2 23
static struct bpf_insn syscount[] = {
    /* 0 */ BPF_MOV64_REG(6, 1),
    /* 1 */ BPF_MOV64_REG(1, 10),
    /* 2 */ BPF_ALU64_IMM(BPF_ADD, 1, -16),
    /* 3 */ BPF_MOV64_IMM(2, 16),
    /* 4 */ BPF_CALL_HELPER(16),
    /* 5 */ BPF_JMP_IMM(BPF_JSLT, 0, 0, 25),              /* -> out (31) */
    /* 6 */ BPF_LDX_MEM(BPF_W, 1, 10, -16),
    /* 7 */ BPF_INSN(BPF_JMP32 | BPF_JNE | BPF_K, 1, 0, 23, 0),   /* imm: comm */
    /* 8 */ BPF_CALL_HELPER(14),
    /* 9 */ BPF_ALU64_IMM(BPF_RSH, 0, 32),
    /* 10 */ BPF_INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 20, 0),   /* imm: pid */
    /* 11 */ BPF_LDX_MEM(BPF_DW, 1, 6, 8),
    /* 12 */ BPF_STX_MEM(BPF_W, 10, 1, -4),
    /* 13 */ BPF_LD_IMM64_RAW(1, 0, 0),
    /* 15 */ BPF_MOV64_REG(2, 10),
    /* 16 */ BPF_ALU64_IMM(BPF_ADD, 2, -4),
    /* 17 */ BPF_CALL_HELPER(1),
    /* 18 */ BPF_JMP_IMM(BPF_JEQ, 0, 0, 3),                /* -> update (22) */
    /* 19 */ BPF_MOV64_IMM(1, 1),
    /* 20 */ BPF_INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, BPF_ADD),
    /* 21 */ BPF_JMP_A(9),                                 /* -> out (31) */
    /* 22 */ BPF_ST_MEM(BPF_DW, 10, -24, 1),
    /* 23 */ BPF_LD_IMM64_RAW(1, 0, 0),
    /* 25 */ BPF_MOV64_REG(2, 10),
    /* 26 */ BPF_ALU64_IMM(BPF_ADD, 2, -4),
    /* 27 */ BPF_MOV64_REG(3, 10),
    /* 28 */ BPF_ALU64_IMM(BPF_ADD, 3, -24),
    /* 29 */ BPF_MOV64_IMM(4, 1),                          /* BPF_NOEXIST */
    /* 30 */ BPF_CALL_HELPER(2),
    /* 31 */ BPF_MOV64_IMM(0, 0),
    /* 32 */ BPF_EXIT_INSN(),
};
#define SC_LEN (sizeof(syscount) / sizeof(syscount[0]))
#define MAP_INS_A 13
#define MAP_INS_B 23

static void set_map(uint8_t src, uint64_t v)
{
    int at[2] = {MAP_INS_A, MAP_INS_B};
    for (int i = 0; i < 2; i++) {
        syscount[at[i]].src_reg = src;
        syscount[at[i]].imm = (int32_t)(uint32_t)v;
        syscount[at[i] + 1].imm = (int32_t)(uint32_t)(v >> 32);
    }
}

/* BPF_RAW_TRACEPOINT_OPEN's leading fields (the others: kbpf.h). */
struct kattr_rawtp {
    uint64_t name;
    uint32_t prog_fd;
    char pad[116];
};

static uint64_t kernel_map_get(int fd, uint32_t key)
{
    uint64_t v = 0;
    return kbpf_map_get(fd, key, &v) < 0 ? 0 : v;
}

static int bpf_raw_tracepoint_open(const char *name, int prog_fd)
{
    struct kattr_rawtp a;
    memset(&a, 0, sizeof(a));
    a.name = (uint64_t)(uintptr_t)name;
    a.prog_fd = (uint32_t)prog_fd;
    return (int)syscall(SYS_bpf, K_BPF_RAW_TRACEPOINT_OPEN, &a, sizeof(a));
}

/* The kernel tracepoint with program fd kfd: per-call cost, or -1. */
static double kernel_round(int kfd, getpid_fn plain, int *warned)
{
    int tp = bpf_raw_tracepoint_open("sys_enter", kfd);
    if (tp < 0) {
        if (!(*warned)++)
            fprintf(stderr, "kernel tracepoint skipped: raw_tracepoint_open: %s\n",
                    strerror(errno));
        return -1;
    }
    double v = per_call(plain);
    close(tp);
    return v;
}

/* The agent's thread's part for bpf_get_current_comm's cache (the agent
 * is off here): a tick every 100 ms (helpers.h, ghelper_comm_watch). */
static void *comm_ticker(void *arg)
{
    (void)arg;
    gsys_ignore_this_thread();
    for (;;) {
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
        ghelper_comm_tick();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_init_start();
    if (!getenv("GRAFT_AGENT_OFF")) {
        /* the agent's constructor must not start a registry thread here */
        setenv("GRAFT_AGENT_OFF", "1", 1);
        execv("/proc/self/exe", argv);
        perror("re-exec with GRAFT_AGENT_OFF=1");
        return 1;
    }
    int quick = bench_quick(), rounds = quick ? 3 : ROUNDS;
    if (quick)
        CALLS = 200;
    /* the anonymous, never-rewritten copy */
    void *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(anon, (void *)bench_getpid, 8);
    mprotect(anon, 4096, PROT_READ | PROT_EXEC);
    getpid_fn plain = (getpid_fn)anon;

    char comm[17] = "";
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    int32_t comm4;
    memcpy(&comm4, comm, 4);
    syscount[7].imm = comm4;
    syscount[10].imm = getpid();

    struct graft_err err = {0};
    struct gvm_prog *p_triv, *p_sc;
    gvm_native_fn fn = bench_jit(trivial, 4, &p_triv);
    struct gmap_def def = {.type = GMAP_HASH, .key_size = 4, .value_size = 8, .max_entries = 512};
    struct gmap *map;
    if (gmap_create(&def, -1, &map, &err) < 0) {
        fprintf(stderr, "gmap_create: %s\n", err.msg);
        return 1;
    }
    set_map(0, (uint64_t)(uintptr_t)map);   /* the loader's resolution: the handle itself */
    gvm_native_fn fn_sc = bench_jit(syscount, SC_LEN, &p_sc);

    int have_iso = bench_iso_on("syscall_iso_added_ns");
    int kfd = quick ? -EPERM : kbpf_prog_load(K_BPF_PROG_TYPE_RAW_TRACEPOINT, trivial, 4), kfd_sc = -1,
        kmap = quick ? -EPERM : kbpf_hash_map(8, 512);
    if (kfd < 0)
        fprintf(stderr, "kernel tracepoint skipped: BPF_PROG_LOAD: %s\n", strerror(-kfd));
    if (kmap >= 0) {
        set_map(BPF_PSEUDO_MAP_FD, (uint32_t)kmap);
        kfd_sc = kbpf_prog_load(K_BPF_PROG_TYPE_RAW_TRACEPOINT, syscount, SC_LEN);
        if (kfd_sc < 0)
            fprintf(stderr, "kernel syscount program skipped: BPF_PROG_LOAD: %s\n%s\n",
                    strerror(-kfd_sc), klog);
    } else {
        fprintf(stderr, "kernel syscount program skipped: BPF_MAP_CREATE: %s\n", strerror(-kmap));
    }

    if (gsys_install(NULL, &err) < 0) {
        fprintf(stderr, "gsys_install: %s\n", err.msg);
        return 1;
    }
    if (strcmp(gsys_method(), "zpoline") != 0)
        fprintf(stderr, "note: syscall hooks use %s\n", gsys_method());
    ghelper_comm_watch(GHELPER_COMM_TICKS, 1);
    pthread_t ticker;
    pthread_create(&ticker, NULL, comm_ticker, NULL);
    enum { NOPROG, FAST, TP, DISPATCH, HELPERS, ISO, KTP, KTP_HELPERS, NV };
    static const char *names[NV] = {
        "syscall_hook_noprog_added_ns", "syscall_hook_added_ns", "syscall_hook_tp_added_ns",
        "syscall_hook_dispatch_added_ns", "syscall_hook_helpers_added_ns",
        "syscall_iso_added_ns", "kernel_tp_added_ns", "kernel_tp_helpers_added_ns"};
    double base[ROUNDS], d[NV][ROUNDS];
    int n[NV] = {0}, warned = 0;
    long graft_calls = 0, kernel_calls = 0;
    struct gsys_attach_opts fast = {.sz = sizeof(fast), .handler_preserves_fp = 1};
    /* as the agent attaches a program that calls helpers: without the xmm
     * save only if they are all GHELPER_F_FP_FREE (this one's are) */
    struct gsys_attach_opts calls = {.sz = sizeof(calls),
                                     .handler_keeps_fp = ghelper_prog_fp_free(syscount, SC_LEN)};
    for (int r = 0; r < rounds; r++) {
        struct gsys_link *l;
        base[r] = per_call(plain);
        d[NOPROG][n[NOPROG]++] = per_call(bench_getpid) - base[r];
        gsys_attach_opts(GSYS_RAW_ENTER, SYS_getpid, fn, &fast, &l, &err);
        d[FAST][n[FAST]++] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        gsys_attach_opts(GSYS_ENTER, SYS_getpid, fn, &fast, &l, &err);
        d[TP][n[TP]++] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        gsys_attach(GSYS_RAW_ENTER, SYS_getpid, fn, 0, &l, &err);
        d[DISPATCH][n[DISPATCH]++] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        /* as the agent attaches a raw_tracepoint/sys_enter program that calls out */
        gsys_attach_opts(GSYS_RAW_ENTER, -1, fn_sc, &calls, &l, &err);
        d[HELPERS][n[HELPERS]++] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        graft_calls += CALLS;
        if (have_iso) {
            /* isolation as the agent sets it up: gates and extension stacks */
            if (gattach_set_isolation(1, &err) < 0 || gattach_set_ext_stacks(1, &err) < 0 ||
                gsys_attach(GSYS_RAW_ENTER, SYS_getpid, fn, 0, &l, &err) < 0) {
                fprintf(stderr, "isolated syscall hook: %s\n", err.msg);
                return 1;
            }
            d[ISO][n[ISO]++] = per_call(bench_getpid) - base[r];
            gsys_detach(l);
            gattach_set_isolation(0, &err);
        }
        double v;
        if (kfd >= 0 && (v = kernel_round(kfd, plain, &warned)) >= 0)
            d[KTP][n[KTP]++] = v - base[r];
        if (kfd_sc >= 0 && (v = kernel_round(kfd_sc, plain, &warned)) >= 0) {
            d[KTP_HELPERS][n[KTP_HELPERS]++] = v - base[r];
            kernel_calls += CALLS;
        }
    }
    printf("BENCH syscall_nohook_ns %.1f ns\n", bench_median(base, rounds));
    double med[NV];
    for (int v = 0; v < NV; v++)
        if (n[v]) {
            med[v] = bench_median(d[v], n[v]);
            printf("BENCH %s %.1f ns\n", names[v], med[v]);
        }
    if (n[ISO])
        printf("# isolation adds %.1f ns to a syscall program on the general path\n",
               med[ISO] - med[DISPATCH]);
    gsys_uninstall();
    bench_iso_gates(quick ? 2000 : 200000, quick ? 3 : 11);

    int bad = 0;
    uint32_t key = SYS_getpid;
    uint64_t *gv = gmap_lookup(map, &key);
    long got = gv ? (long)*gv : 0;
    if (got != graft_calls) {
        printf("FAIL: graft's syscount program counted %ld getpid calls, %ld were made\n",
               got, graft_calls);
        bad = 1;
    }
    if (n[KTP_HELPERS]) {
        long kgot = (long)kernel_map_get(kmap, key);
        if (kgot != kernel_calls) {
            printf("FAIL: the kernel's syscount program counted %ld getpid calls, %ld were made\n",
                   kgot, kernel_calls);
            bad = 1;
        }
    }
    gmap_unlink(gmap_shm_name(map));
    gmap_close(map);
    gvm_prog_free(p_triv);
    gvm_prog_free(p_sc);
    bench_init_done();
    return bad;
}
