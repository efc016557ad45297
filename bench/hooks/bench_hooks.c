/*
 * bench_hooks.c - what a hook costs per call, in ns, medians of interleaved
 * rounds. The handler is a 4-instruction eBPF program compiled by graft's
 * JIT and called directly by the trampoline; the kernel rows attach the
 * same instructions as a BPF_PROG_TYPE_KPROBE program to the kernel's
 * uprobe PMU (perf_event_open + PERF_EVENT_IOC_SET_BPF).
 *
 * With the path of the graft CLI as argument it also times, in ms, what
 * `graft start -- /bin/true` adds to a plain /bin/true (start_overhead_ms),
 * what the preloaded agent adds to a fork+exec of /bin/true
 * (exec_overhead_ms) and how long `graft attach PID` takes on a sleeping
 * process (attach_ms), on a registry of its own (`--processes GRAFT`: only
 * these).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "iso_gates.h"
#include "isolation/isolation.h"
#include "runtime/registry.h"
#include "util/procmaps.h"
#include "vm/vm.h"
#include "bench_util.h"

__attribute__((noinline)) long bench_target(long x)
{
    __asm__ volatile("");
    return x + 1;
}
__attribute__((noinline)) long bench_unused(long x)
{
    __asm__ volatile("");
    return x + 2;
}
__attribute__((noinline)) long bench_other(long x)
{
    __asm__ volatile("");
    return x + 3;
}
/* bench_target's twin for the gated rows: a site keeps the variant it was
 * first built with, so gated and ungated hooks need functions of their own. */
__attribute__((noinline)) long bench_target_iso(long x)
{
    __asm__ volatile("");
    return x + 1;
}
static long (*volatile target_p)(long) = bench_target;
static long (*volatile target_iso_p)(long) = bench_target_iso;
static long (*volatile unused_p)(long) = bench_unused;

int bench_kernel_prog_load(const void *insns, int n);   /* bench_kernel.c */

static double per_call(long (*volatile *fp)(long), long n)
{
    long (*f)(long) = *fp;
    long acc = 0;
    for (long i = 0; i < n / 10; i++)     /* warm up */
        acc += f(i);
    double t0 = bench_mono_ns();
    for (long i = 0; i < n; i++)
        acc += (*fp)(i);
    double t1 = bench_mono_ns();
    __asm__ volatile("" ::"r"(acc));
    return (t1 - t0) / (double)n;
}

/* ---- kernel uprobes --------------------------------------------------------- */

static struct bpf_insn g_prog[4] = {
    { .code = 0x79, .dst_reg = 0, .src_reg = 1, .off = 112 },   /* r0 = *(u64 *)(r1+112) */
    { .code = 0x07, .dst_reg = 0, .imm = 1 },                    /* r0 += 1 */
    { .code = 0x67, .dst_reg = 0, .imm = 1 },                    /* r0 <<= 1 */
    { .code = 0x95 },                                            /* exit */
};

static int read_int_file(const char *path, int *v)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%d", v) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static uint64_t file_offset(void *addr, char *path, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    uint64_t res = 0;
    while (f && fgets(line, sizeof(line), f)) {
        struct gprocmaps_line m;
        if (gprocmaps_parse(line, &m) == 0 && (uint64_t)addr >= m.lo && (uint64_t)addr < m.hi) {
            snprintf(path, len, "%s", m.path);
            res = (uint64_t)addr - m.lo + m.off;
            break;
        }
    }
    if (f)
        fclose(f);
    return res;
}

/* A perf event for a kernel uprobe (ret: uretprobe) running prog_fd. */
static int kernel_uprobe(int prog_fd, int ret, const char **why)
{
    int type, bit = 0;
    if (read_int_file("/sys/bus/event_source/devices/uprobe/type", &type) < 0) {
        *why = "no uprobe PMU (/sys/bus/event_source/devices/uprobe)";
        return -1;
    }
    FILE *f = fopen("/sys/bus/event_source/devices/uprobe/format/retprobe", "r");
    if (f) {
        if (fscanf(f, "config:%d", &bit) != 1)
            bit = 0;
        fclose(f);
    }
    static char path[4096];
    uint64_t off = file_offset((void *)bench_target, path, sizeof(path));
    struct perf_event_attr a;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.type = (uint32_t)type;
    a.config = ret ? 1ull << bit : 0;
    a.config1 = (uint64_t)path;
    a.config2 = off;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
        *why = "perf_event_open(uprobe) failed (need root)";
        return -1;
    }
    if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
        *why = "PERF_EVENT_IOC_SET_BPF failed";
        close(fd);
        return -1;
    }
    return fd;
}

enum { C_NOHOOK, C_UPROBE, C_URET, C_BOTH, C_OVERRIDE, C_UNUSED_BASE, C_UNUSED_HOOKED,
       C_UPROBE_FP, C_URET_FP, C_UPROBE_FPFREE, C_URET_FPFREE, C_UPROBE_FPFREE_SAVE,
       C_URET_FPFREE_SAVE, C_UPROBE_ISO, C_URET_ISO, C_KUPROBE, C_KURET, C_N };
static const char *names[C_N] = { "nohook_ns", "uprobe_ns", "uretprobe_ns", "uprobe_uretprobe_ns",
                                  "override_ns", NULL, NULL, "uprobe_fpsave_ns",
                                  "uretprobe_fpsave_ns", "uprobe_fpfree_ns", "uretprobe_fpfree_ns",
                                  "uprobe_fpfree_fpsave_ns", "uretprobe_fpfree_fpsave_ns",
                                  "uprobe_iso_ns", "uretprobe_iso_ns",
                                  "kernel_uprobe_ns", "kernel_uretprobe_ns" };

/* The program calls no helpers, so (as the runtime does for such programs)
 * it is attached with handler_preserves_fp; the *_fpsave rows attach it
 * without, as for a program that calls helpers. The *_fpfree rows run a
 * program that calls bpf_get_current_pid_tgid twice (GHELPER_F_FP_FREE, and
 * cheap: two TLS loads), attached as the runtime attaches it
 * (handler_keeps_fp: no xmm save); *_fpfree_fpsave the same program with
 * the save, as before handler_keeps_fp existed for function hooks. */
static int g_save_fp, g_keeps_fp;

static struct bpf_insn g_fpfree_prog[5] = {
    { .code = 0x85, .imm = 14 },                                 /* call get_current_pid_tgid */
    { .code = 0xbf, .dst_reg = 6, .src_reg = 0 },                /* r6 = r0 */
    { .code = 0x85, .imm = 14 },                                 /* call get_current_pid_tgid */
    { .code = 0x0f, .dst_reg = 0, .src_reg = 6 },                /* r0 += r6 */
    { .code = 0x95 },                                            /* exit */
};

/* The gated rows hook with isolation as the agent sets it up by default:
 * gates and extension stacks. */
static void set_iso(int on)
{
    struct graft_err err = { 0 };
    if (gattach_set_isolation(on, &err) < 0 || (on && gattach_set_ext_stacks(1, &err) < 0)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
}

static struct ghook *hook(void *addr, enum ghook_kind k, ghook_handler fn)
{
    struct ghook *h = NULL;
    struct graft_err err = { 0 };
    struct gattach_opts o = { .sz = sizeof(o), .handler_preserves_fp = !g_save_fp,
                              .handler_keeps_fp = g_keeps_fp };
    if (gattach_install(addr, k, fn, 0, &o, &h, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    return h;
}

/* ---- graft start / graft attach ----------------------------------------------- */

extern char **environ;

/* Spawn argv (stdout/stderr to /dev/null); its pid, or -1. */
static pid_t spawn_quiet(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

/* Wall time of running argv to its end, in ms; negative if it failed. */
static double run_ms(char *const argv[])
{
    double t0 = bench_mono_ns();
    pid_t pid = spawn_quiet(argv);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    double ms = (bench_mono_ns() - t0) / 1e6;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms : -1;
}

/* The agent library next to the CLI (../lib), as `graft start` finds it. */
static int agent_lib(const char *graft, char *buf, size_t len)
{
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s", graft);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(buf, len, "%s/../lib/libgraft-agent.so", dir);
    return access(buf, R_OK);
}

/* Wall time of fork+exec+wait of argv with environment envp, in ms. */
static double run_env_ms(char *const argv[], char *const envp[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    double t0 = bench_mono_ns();
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    double ms = (bench_mono_ns() - t0) / 1e6;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms : -1;
}

/* What the agent adds to every program started under it (children of a
 * `graft start`ed process inherit the preload): fork+exec of /bin/true with
 * LD_PRELOAD of the agent minus without, no extension loaded. Pairs
 * interleaved (which goes first alternates), medians of each. */
static void bench_exec(const char *graft)
{
    enum { R = 201 };
    char lib[4096], preload[4200], regvar[128];
    if (agent_lib(graft, lib, sizeof(lib)) < 0) {
        printf("# exec_overhead_ms skipped: no agent library next to %s\n", graft);
        return;
    }
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
    snprintf(regvar, sizeof(regvar), "GRAFT_REGISTRY=%s", getenv("GRAFT_REGISTRY"));
    char *true_argv[] = { "/bin/true", NULL };
    char *plain_env[] = { "PATH=/usr/bin:/bin", regvar, NULL };
    char *agent_env[] = { "PATH=/usr/bin:/bin", regvar, preload, NULL };
    static double plain[R], agent[R];
    for (int r = 0; r < R; r++) {
        for (int k = 0; k < 2; k++) {
            int with = (r + k) & 1;
            double ms = run_env_ms(true_argv, with ? agent_env : plain_env);
            if (ms < 0) {
                printf("# exec_overhead_ms skipped: /bin/true under the agent failed\n");
                return;
            }
            (with ? agent : plain)[r] = ms;
        }
    }
    double mp = bench_median(plain, R), ma = bench_median(agent, R);
    printf("# fork+exec /bin/true %.3f ms, with the agent preloaded %.3f ms (medians of %d, "
           "interleaved)\n", mp, ma, R);
    printf("BENCH exec_overhead_ms %.3f ms\n", ma - mp);
}

static void bench_cli(const char *graft)
{
    enum { R = 21, RA = 11 };
    char *true_argv[] = { "/bin/true", NULL };
    char *start_argv[] = { (char *)graft, "start", "--", "/bin/true", NULL };
    char *help_argv[] = { (char *)graft, "attach", "--help", NULL };
    double plain[R], started[R], cli[R];
    for (int r = 0; r < R; r++) {
        plain[r] = run_ms(true_argv);
        started[r] = run_ms(start_argv);
        cli[r] = run_ms(help_argv);
        if (plain[r] < 0 || started[r] < 0) {
            printf("# start_overhead_ms skipped: %s -- /bin/true failed\n", graft);
            return;
        }
    }
    double mp = bench_median(plain, R), ms = bench_median(started, R), mc = bench_median(cli, R);
    printf("# /bin/true %.2f ms, graft start -- /bin/true %.2f ms, graft CLI alone "
           "(attach --help) %.2f ms (medians of %d)\n", mp, ms, mc, R);
    printf("BENCH start_overhead_ms %.2f ms\n", ms - mp);

    double att[RA];
    for (int r = 0; r < RA; r++) {
        char *sleep_argv[] = { "/bin/sleep", "30", NULL };
        pid_t target = spawn_quiet(sleep_argv);
        if (target < 0) {
            printf("# attach_ms skipped: cannot run /bin/sleep\n");
            return;
        }
        nanosleep(&(struct timespec){ 0, 30 * 1000 * 1000 }, NULL);   /* let it start */
        char pid_s[24];
        snprintf(pid_s, sizeof(pid_s), "%d", (int)target);
        char *attach_argv[] = { (char *)graft, "attach", pid_s, NULL };
        att[r] = run_ms(attach_argv);
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
        if (att[r] < 0) {
            printf("# attach_ms skipped: graft attach failed (needs ptrace rights)\n");
            return;
        }
    }
    printf("BENCH attach_ms %.2f ms\n", bench_median(att, RA));
}

/* What the first extension in a process pays for the scan: giso_scan() of
 * this process with an empty per-file cache (a fresh directory each time)
 * and from the cache, 7 rounds each, medians. */
static void bench_scan(void)
{
    enum { R = 7 };
    double cold[R], warm[R];
    int found = 0;
    for (int r = 0; r < R; r++) {
        char dir[] = "/tmp/graft-bench-scan.XXXXXX";
        if (!mkdtemp(dir)) {
            printf("# scan_ms skipped: mkdtemp failed\n");
            return;
        }
        /* the cache directory is read once per process: a child per round */
        int pfd[2];
        if (pipe(pfd) != 0)
            return;
        pid_t pid = fork();
        if (pid == 0) {
            setenv("GRAFT_SCAN_CACHE", dir, 1);
            double t[2];
            for (int k = 0; k < 2; k++) {
                double t0 = bench_mono_ns();
                found = giso_scan(NULL, NULL, NULL);
                t[k] = (bench_mono_ns() - t0) / 1e6;
            }
            if (write(pfd[1], t, sizeof(t)) != sizeof(t) || write(pfd[1], &found, sizeof(found)) < 0)
                _exit(1);
            _exit(0);
        }
        double t[2] = { -1, -1 };
        if (read(pfd[0], t, sizeof(t)) != sizeof(t) || read(pfd[0], &found, sizeof(found)) < 0)
            t[0] = t[1] = -1;
        close(pfd[0]);
        close(pfd[1]);
        waitpid(pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0 || t[0] < 0) {
            printf("# scan_ms skipped: the scan failed\n");
            return;
        }
        cold[r] = t[0], warm[r] = t[1];
    }
    printf("# giso_scan of this process: %d findings (medians of %d)\n", found, R);
    printf("BENCH scan_cold_ms %.2f ms\n", bench_median(cold, R));
    printf("BENCH scan_cached_ms %.3f ms\n", bench_median(warm, R));
}

/* The process-level figures, on a registry of this run's own. */
static void bench_processes(const char *graft)
{
    char reg[64];
    int own = !getenv("GRAFT_REGISTRY");
    snprintf(reg, sizeof(reg), "/graft.bench.%d", (int)getpid());
    if (own)
        setenv("GRAFT_REGISTRY", reg, 1);
    bench_exec(graft);
    bench_cli(graft);
    bench_scan();
    if (own) {   /* with the status objects of the agents attach_ms killed */
        struct graft_err err = { 0 };
        if (greg_destroy(reg, &err) < 0)
            printf("# cannot remove registry %s: %s\n", reg, err.msg);
    }
}

int main(int argc, char **argv)
{
    struct graft_err err = { 0 };
    if (argc > 2 && strcmp(argv[1], "--processes") == 0) {   /* only those */
        bench_processes(argv[2]);
        return 0;
    }
    bench_init_start();
    int quick = bench_quick();
    struct gvm_prog *prog = NULL;
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_JIT };
    if (gvm_prog_create(g_prog, 4, &o, &prog, &err) < 0 || !gvm_prog_native(prog)) {
        fprintf(stderr, "bench: JIT unavailable: %s\n", err.msg);
        return 1;
    }
    ghook_handler fn = (ghook_handler)gvm_prog_native(prog);
    static struct gvm_env env;
    env = (struct gvm_env){ .helpers = ghelper_table() };
    struct gvm_prog_opts of = { .sz = sizeof(of), .engine = GVM_ENGINE_JIT, .env = &env };
    struct gvm_prog *fpfree = NULL;
    if (gvm_prog_create(g_fpfree_prog, 5, &of, &fpfree, &err) < 0 || !gvm_prog_native(fpfree) ||
        !ghelper_prog_fp_free(g_fpfree_prog, 5)) {
        fprintf(stderr, "bench: the FP-free helper program: %s\n", err.msg);
        return 1;
    }
    ghook_handler fn_fpfree = (ghook_handler)gvm_prog_native(fpfree);

    const char *kwhy = quick ? "quick run" : NULL;
    int kprog = quick ? -1 : bench_kernel_prog_load(g_prog, 4);
    if (kprog < 0 && !kwhy)
        kwhy = "bpf_prog_load(KPROBE) failed (need root / CAP_BPF)";
    int have_iso = bench_iso_on("uprobe_iso_ns, uretprobe_iso_ns");

    enum { ROUNDS = 7 };
    const int rounds = quick ? 3 : ROUNDS;
    const long N = quick ? 20000 : 2000000, NK = 20000;
    double res[C_N][ROUNDS];
    int have_k = kprog >= 0;
    for (int r = 0; r < rounds; r++) {
        for (int c = 0; c < C_N; c++) {
            struct ghook *h1 = NULL, *h2 = NULL;
            int kfd = -1;
            long (*volatile *fp)(long) = &target_p;
            long n = N;
            g_save_fp = c == C_UPROBE_FP || c == C_URET_FP ||
                        (c >= C_UPROBE_FPFREE && c <= C_URET_FPFREE_SAVE);
            g_keeps_fp = c == C_UPROBE_FPFREE || c == C_URET_FPFREE;
            switch (c) {
            case C_UPROBE_FPFREE:
            case C_UPROBE_FPFREE_SAVE:
                h1 = hook((void *)bench_target, GHOOK_ENTRY, fn_fpfree);
                break;
            case C_URET_FPFREE:
            case C_URET_FPFREE_SAVE:
                h1 = hook((void *)bench_target, GHOOK_RETURN, fn_fpfree);
                break;
            case C_UPROBE_FP: h1 = hook((void *)bench_target, GHOOK_ENTRY, fn); break;
            case C_URET_FP: h1 = hook((void *)bench_target, GHOOK_RETURN, fn); break;
            case C_UPROBE: h1 = hook((void *)bench_target, GHOOK_ENTRY, fn); break;
            case C_URET: h1 = hook((void *)bench_target, GHOOK_RETURN, fn); break;
            case C_BOTH:
                h1 = hook((void *)bench_target, GHOOK_ENTRY, fn);
                h2 = hook((void *)bench_target, GHOOK_RETURN, fn);
                break;
            case C_OVERRIDE: h1 = hook((void *)bench_target, GHOOK_OVERRIDE, fn); break;
            case C_UNUSED_BASE: fp = &unused_p; break;
            case C_UNUSED_HOOKED:
                fp = &unused_p;
                h1 = hook((void *)bench_other, GHOOK_ENTRY, fn);
                break;
            case C_UPROBE_ISO:
            case C_URET_ISO:
                if (!have_iso) {
                    res[c][r] = 0;
                    continue;
                }
                set_iso(1);
                fp = &target_iso_p;
                h1 = hook((void *)bench_target_iso, c == C_URET_ISO ? GHOOK_RETURN : GHOOK_ENTRY,
                          fn);
                set_iso(0);
                break;
            case C_KUPROBE:
            case C_KURET:
                if (!have_k) {
                    res[c][r] = 0;
                    continue;
                }
                kfd = kernel_uprobe(kprog, c == C_KURET, &kwhy);
                if (kfd < 0) {
                    have_k = 0;
                    continue;
                }
                n = NK;
                break;
            }
            res[c][r] = per_call(fp, n);
            if (h2)
                gattach_remove(h2, NULL);
            if (h1)
                gattach_remove(h1, NULL);
            if (kfd >= 0)
                close(kfd);
        }
    }
    double med[C_N];
    for (int c = 0; c < C_N; c++) {
        qsort(res[c], (size_t)rounds, sizeof(double), bench_cmp_double);
        med[c] = res[c][rounds / 2];
    }
    printf("# handler: 4-insn eBPF program, graft JIT (%zu bytes of x86)\n",
           gvm_prog_code_size(prog));
    for (int c = 0; c < C_N; c++) {
        if (!names[c])
            continue;
        if ((c == C_KUPROBE || c == C_KURET) && !have_k) {
            printf("# %s skipped: %s\n", names[c], kwhy ? kwhy : "unavailable");
            continue;
        }
        if ((c == C_UPROBE_ISO || c == C_URET_ISO) && !have_iso)
            continue;
        printf("BENCH %s %.1f ns\n", names[c], med[c]);
    }
    printf("BENCH unused_entry_delta_ns %.2f ns\n", med[C_UNUSED_HOOKED] - med[C_UNUSED_BASE]);
    if (have_iso)
        printf("# isolation adds per hit: uprobe %.1f ns, uretprobe %.1f ns (gates and "
               "extension stack)\n", med[C_UPROBE_ISO] - med[C_UPROBE], med[C_URET_ISO] - med[C_URET]);
    bench_iso_gates(quick ? 2000 : 200000, quick ? 3 : 11);
    gvm_prog_free(prog);
    gvm_prog_free(fpfree);
    if (argc > 1)
        bench_processes(argv[1]);
    else
        printf("# start_overhead_ms, exec_overhead_ms, attach_ms skipped: no graft CLI path given\n");
    bench_init_done();
    return 0;
}
