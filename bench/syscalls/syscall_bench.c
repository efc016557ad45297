/*
 * syscall_bench.c - what a graft syscall hook adds to one getpid(), against
 * the kernel's raw_syscalls:sys_enter tracepoint running the same eBPF
 * program (loaded with bpf(2) BPF_PROG_LOAD + BPF_RAW_TRACEPOINT_OPEN, root only;
 * raw bpf(2) because linux/bpf.h and graft's vm/isa.h both define
 * struct bpf_insn).
 *
 * The syscall is `mov $SYS_getpid,%eax; syscall; ret` called through a
 * pointer: one copy in this binary (rewritten by gsys_install) and one in
 * anonymous executable memory (never scanned), so "no hook" and "hook" run
 * identical code. Rounds are short and interleaved; each value is the
 * median over rounds of (variant - plain of the same round), which keeps
 * the noise of a shared machine out of the differences.
 *
 *   syscall_nohook_ns               plain getpid()
 *   syscall_hook_noprog_added_ns    hooks installed, no program on getpid
 *   syscall_hook_added_ns           raw sys_enter program attached with
 *                                   handler_preserves_fp (it calls nothing):
 *                                   the assembly fast path
 *   syscall_hook_tp_added_ns        same, tracepoint sys_enter_getpid kind
 *   syscall_hook_dispatch_added_ns  same program without the flag: the C
 *                                   dispatcher (what helper-calling programs pay)
 *   kernel_tp_added_ns              kernel raw_syscalls:sys_enter, same program
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "vm/vm.h"

#define ROUNDS 31
#define CALLS 20000

long bench_getpid(void);
__asm__(".text\n.globl bench_getpid\n.type bench_getpid,@function\n"
        "bench_getpid:\n mov $39, %eax\n syscall\n ret\n"
        ".size bench_getpid, .-bench_getpid\n");

typedef long (*getpid_fn)(void);

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double per_call(getpid_fn f)
{
    double t0 = now_ns();
    for (int i = 0; i < CALLS; i++)
        f();
    return (now_ns() - t0) / CALLS;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_d);
    return v[n / 2];
}

/* r0 = ctx[1] (the syscall id); r0 += 1; r0 = 0; exit */
static const char *prog_text =
    "ldxdw r0, [r1+8]\n"
    "add r0, 1\n"
    "mov r0, 0\n"
    "exit\n";

/* The leading fields of union bpf_attr for the two commands used. */
struct kattr_load {
    uint32_t prog_type, insn_cnt;
    uint64_t insns, license;
    uint32_t log_level, log_size;
    uint64_t log_buf;
    uint32_t kern_version, prog_flags;
    char pad[96];
};
struct kattr_rawtp {
    uint64_t name;
    uint32_t prog_fd;
    char pad[116];
};
#define K_BPF_PROG_LOAD 5
#define K_BPF_RAW_TRACEPOINT_OPEN 17
#define K_BPF_PROG_TYPE_RAW_TRACEPOINT 17

static int kernel_prog(const struct bpf_insn *insns, uint32_t n)
{
    struct kattr_load a;
    memset(&a, 0, sizeof(a));
    a.prog_type = K_BPF_PROG_TYPE_RAW_TRACEPOINT;
    a.insn_cnt = n;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.license = (uint64_t)(uintptr_t)"GPL";
    long fd = syscall(SYS_bpf, K_BPF_PROG_LOAD, &a, sizeof(a));
    return fd < 0 ? -errno : (int)fd;
}

static int bpf_raw_tracepoint_open(const char *name, int prog_fd)
{
    struct kattr_rawtp a;
    memset(&a, 0, sizeof(a));
    a.name = (uint64_t)(uintptr_t)name;
    a.prog_fd = (uint32_t)prog_fd;
    return (int)syscall(SYS_bpf, K_BPF_RAW_TRACEPOINT_OPEN, &a, sizeof(a));
}

int main(void)
{
    /* the anonymous, never-rewritten copy */
    void *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(anon, (void *)bench_getpid, 8);
    mprotect(anon, 4096, PROT_READ | PROT_EXEC);
    getpid_fn plain = (getpid_fn)anon;

    struct graft_err err = {0};
    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(prog_text, &insns, &n, &err) < 0) {
        fprintf(stderr, "gvm_asm: %s\n", err.msg);
        return 1;
    }
    struct gvm_env env = {.helpers = ghelper_table()};
    struct gvm_prog_opts po = {.sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env};
    struct gvm_prog *prog;
    if (gvm_prog_create(insns, n, &po, &prog, &err) < 0) {
        fprintf(stderr, "gvm_prog_create: %s\n", err.msg);
        return 1;
    }
    gvm_native_fn fn = gvm_prog_native(prog);
    if (!fn) {
        fprintf(stderr, "no JIT entry\n");
        return 1;
    }
    int kfd = kernel_prog(insns, n);
    if (kfd < 0)
        fprintf(stderr, "kernel tracepoint skipped: BPF_PROG_LOAD: %s\n", strerror(-kfd));
    if (gsys_install(NULL, &err) < 0) {
        fprintf(stderr, "gsys_install: %s\n", err.msg);
        return 1;
    }
    if (strcmp(gsys_method(), "zpoline") != 0)
        fprintf(stderr, "note: syscall hooks use %s\n", gsys_method());
    enum { NOPROG, FAST, TP, DISPATCH, KTP, NV };
    static const char *names[NV] = {"syscall_hook_noprog_added_ns", "syscall_hook_added_ns",
                                    "syscall_hook_tp_added_ns", "syscall_hook_dispatch_added_ns",
                                    "kernel_tp_added_ns"};
    double base[ROUNDS], d[NV][ROUNDS];
    int nk = 0;
    struct gsys_attach_opts fast = {.sz = sizeof(fast), .handler_preserves_fp = 1};
    for (int r = 0; r < ROUNDS; r++) {
        struct gsys_link *l;
        base[r] = per_call(plain);
        d[NOPROG][r] = per_call(bench_getpid) - base[r];
        gsys_attach_opts(GSYS_RAW_ENTER, SYS_getpid, fn, &fast, &l, &err);
        d[FAST][r] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        gsys_attach_opts(GSYS_ENTER, SYS_getpid, fn, &fast, &l, &err);
        d[TP][r] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        gsys_attach(GSYS_RAW_ENTER, SYS_getpid, fn, 0, &l, &err);
        d[DISPATCH][r] = per_call(bench_getpid) - base[r];
        gsys_detach(l);
        if (kfd >= 0) {
            int tp = bpf_raw_tracepoint_open("sys_enter", kfd);
            if (tp >= 0) {
                d[KTP][nk++] = per_call(plain) - base[r];
                close(tp);
            } else if (r == 0) {
                fprintf(stderr, "kernel tracepoint skipped: raw_tracepoint_open: %s\n",
                        strerror(errno));
            }
        }
    }
    printf("BENCH syscall_nohook_ns %.1f ns\n", median(base, ROUNDS));
    for (int v = 0; v < NV; v++) {
        int n = v == KTP ? nk : ROUNDS;
        if (n)
            printf("BENCH %s %.1f ns\n", names[v], median(d[v], n));
    }
    gsys_uninstall();
    gvm_prog_free(prog);
    free(insns);
    return 0;
}
