/*
 * syscall_hook_test.c - tests of the syscall hooks (src/attach/syscall_*).
 *
 *   syscall_hook_test names            table matches the installed unistd_64.h
 *   syscall_hook_test count [seccomp]  counts of a threaded/forking/signalling
 *                                      workload equal what it knows it did
 *   syscall_hook_test deny [seccomp]   enter override: open fails with EACCES
 *                                      for one path only; exit override
 *   syscall_hook_test bpf              a real eBPF program (VM) counts into an
 *                                      array map shared with forked children
 *   syscall_hook_test strace STRACE    per-syscall counts equal strace -f's
 *   syscall_hook_test fast             the assembly fast path (one enter
 *                                      program that calls nothing): contexts,
 *                                      registers, threads, when it must not
 *                                      be used, a JIT'd program
 *   syscall_hook_test sled             every page-0 entry point and flag
 *                                      state reaches the entry
 *
 * Each check prints what differed; exit status 0 only if all passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fp_util.h"
#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/vm.h"
#include "tiso.h"

extern char **environ;

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)
/* Which path ran (the assembly fast paths or the C dispatcher): with
 * isolation on (GRAFT_TEST_ISOLATION, tiso.h) every program runs through the
 * C dispatcher behind one gate pair by design, and the helpers' run state
 * moves to a keyed page, so these checks only hold without it; the results
 * the paths must agree on are checked either way. */
static int iso_on, path_checks_skipped;
#define PATH_CHECK(c, ...) do { if (iso_on) path_checks_skipped++; else CHECK(c, __VA_ARGS__); } \
    while (0)

#define NR_MAX 512
static _Atomic uint64_t *counts;      /* MAP_SHARED: children count too */
static volatile int counting;

static uint64_t count_raw(void *ctx, uint64_t len)
{
    uint64_t *a = ctx;
    CHECK(len == 16, "raw ctx len %lu", (unsigned long)len);
    if (counting && a[1] < NR_MAX)
        atomic_fetch_add(&counts[a[1]], 1);
    /* the pt_regs record agrees with the id */
    const struct graft_pt_regs *r = (const void *)(uintptr_t)a[0];
    if (r->orig_ax != a[1])
        atomic_fetch_add(&counts[NR_MAX - 1], 1);
    return 0;
}

static void install(int seccomp)
{
    struct gsys_opts o = {.sz = sizeof(o), .flags = seccomp ? GSYS_F_FORCE_SECCOMP : 0};
    struct graft_err err = {0};
    int e = gsys_install(&o, &err);
    if (e < 0) {
        printf("FAIL install: %s\n", err.msg);
        exit(1);
    }
    printf("method: %s (%s)\n", gsys_method(), gsys_install_note());
    CHECK(strcmp(gsys_method(), seccomp ? "seccomp" : "zpoline") == 0, "method %s",
          gsys_method());
}

/* ---- the workload ------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 100
#define SIGNALS 10

static pid_t my_pid, my_ppid;
static long my_egid;

static long inline_getegid(void)
{
    /* a syscall instruction in the test binary itself; xmm5 must survive */
    long ret;
    double x = 1.25, y;
    __asm__ volatile("movsd %2, %%xmm5\n syscall\n movsd %%xmm5, %1"
                     : "=a"(ret), "=m"(y) : "m"(x), "a"((long)SYS_getegid)
                     : "rcx", "r11", "xmm5", "memory");
    CHECK(y == 1.25, "xmm5 clobbered by the hook: %f", y);
    return ret;
}

static void *thread_main(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++)
        CHECK(syscall(SYS_getppid) == my_ppid, "getppid in thread");
    return arg;
}

static void on_usr1(int sig)
{
    for (int i = 0; i < 3; i++)
        syscall(SYS_getpgid, 0);
}

struct expect { int nr; uint64_t n; };

/* Runs the workload; fills exp[] with syscalls whose counts it knows. */
static int workload(struct expect *exp, int seccomp)
{
    int n = 0;
    /* Two rounds: the second's threads may take the first's (exited)
     * per-thread state. A thread's syscalls after its TSD destructors (its
     * SYS_exit included) still run the handlers, with isolation on in the
     * same keyed control block (they used to find it released: SIGILL). */
    pthread_t t[THREADS];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < THREADS; i++)
            pthread_create(&t[i], NULL, thread_main, NULL);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
    }
    /* fork: the child counts through the shared array */
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 50; i++)
            syscall(SYS_getppid);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child status %d", st);
    /* vfork + exec: the exec'd image is not hooked */
    c = vfork();
    if (c == 0) {
        char *argv[] = {"/bin/true", NULL};
        execve("/bin/true", argv, environ);
        _exit(errno == EPERM ? 42 : 127);
    }
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == (seccomp ? 42 : 0), "vfork child status %d", st);
    /* posix_spawn: clone(CLONE_VM|CLONE_VFORK) on a new stack */
    char *argv[] = {"/bin/true", NULL};
    pid_t sp;
    int e = posix_spawn(&sp, "/bin/true", NULL, NULL, argv, environ);
    if (seccomp) {
        CHECK(e == EPERM, "posix_spawn under seccomp: %d", e);
    } else {
        CHECK(e == 0, "posix_spawn: %d", e);
        waitpid(sp, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "spawn child status %d", st);
    }
    /* signals whose handler makes syscalls; rt_sigreturn returns through the hook */
    signal(SIGUSR1, on_usr1);
    for (int i = 0; i < SIGNALS; i++)
        kill(my_pid, SIGUSR1);
    for (int i = 0; i < 7; i++)
        CHECK(inline_getegid() == my_egid, "inline getegid");
    for (int i = 0; i < PER_THREAD; i++)
        syscall(SYS_getppid);
    exp[n++] = (struct expect){SYS_getppid, 2 * THREADS * PER_THREAD + 50 + PER_THREAD};
    exp[n++] = (struct expect){SYS_exit, 2 * THREADS};
    exp[n++] = (struct expect){SYS_getpgid, 3 * SIGNALS};
    exp[n++] = (struct expect){SYS_kill, SIGNALS};
    exp[n++] = (struct expect){SYS_getegid, 7};
    exp[n++] = (struct expect){SYS_vfork, 1};
    exp[n++] = (struct expect){SYS_execve, 2};
    exp[n++] = (struct expect){SYS_clone, 1};
    exp[n++] = (struct expect){SYS_clone3, 2 * THREADS + 1};
    if (!seccomp)     /* the seccomp filter lets rt_sigreturn through unseen */
        exp[n++] = (struct expect){SYS_rt_sigreturn, SIGNALS};
    return n;
}

static int test_count(int seccomp)
{
    counts = mmap(NULL, NR_MAX * 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct gsys_link *l;
    struct graft_err err;
    CHECK(gsys_attach(GSYS_RAW_ENTER, -1, count_raw, 0, &l, &err) == 0, "attach: %s", err.msg);
    install(seccomp);
    struct expect exp[16];
    counting = 1;
    int n = workload(exp, seccomp);
    counting = 0;
    for (int i = 0; i < n; i++)
        CHECK(counts[exp[i].nr] == exp[i].n, "%s: counted %lu, made %lu",
              gsyscall_name(exp[i].nr), (unsigned long)counts[exp[i].nr],
              (unsigned long)exp[i].n);
    CHECK(counts[NR_MAX - 1] == 0, "pt_regs orig_ax != id %lu times",
          (unsigned long)counts[NR_MAX - 1]);
    /* detach stops counting; uninstall restores the code */
    gsys_detach(l);
    uint64_t before = counts[SYS_getppid];
    counting = 1;
    syscall(SYS_getppid);
    counting = 0;
    CHECK(counts[SYS_getppid] == before, "handler ran after detach");
    struct gsys_stats st;
    gsys_get_stats(&st);
    printf("sites rewritten %lu, regions %lu, skipped %lu, desyncs %lu\n",
           (unsigned long)st.sites_rewritten, (unsigned long)st.regions_scanned,
           (unsigned long)st.regions_skipped, (unsigned long)st.desyncs);
    if (!seccomp)
        CHECK(st.sites_rewritten > 10, "only %lu sites rewritten", (unsigned long)st.sites_rewritten);
    gsys_uninstall();
    CHECK(strcmp(gsys_method(), "none") == 0, "method after uninstall %s", gsys_method());
    return 0;
}

/* ---- deny and modify ---------------------------------------------------- */

static char deny_path[64];
static _Atomic int exit_seen;

static uint64_t deny_open(void *ctx, uint64_t len)
{
    struct gsys_enter_ctx *c = ctx;
    CHECK(len == 64 && c->id == SYS_openat, "enter ctx len %lu id %ld", (unsigned long)len,
          (long)c->id);
    CHECK(c->ent.pid == (int32_t)syscall(SYS_gettid), "trace_entry pid %d", c->ent.pid);
    const char *p = (const char *)(uintptr_t)c->args[1];
    if (p && strcmp(p, deny_path) == 0)
        ghelper_proto(58)->fn((uint64_t)(uintptr_t)ctx, (uint64_t)-EACCES, 0, 0, 0);
    return 0;
}

static uint64_t exit_getppid(void *ctx, uint64_t len)
{
    struct gsys_exit_ctx *c = ctx;
    CHECK(len == 24 && c->id == SYS_getppid && c->ret == getppid(),
          "exit ctx len %lu id %ld ret %ld", (unsigned long)len, (long)c->id, (long)c->ret);
    atomic_fetch_add(&exit_seen, 1);
    ghelper_proto(58)->fn((uint64_t)(uintptr_t)ctx, 4242, 0, 0, 0);
    return 0;
}

static _Atomic int newfstat_seen;

static uint64_t count_newfstat(void *ctx, uint64_t len)
{
    struct gsys_enter_ctx *c = ctx;
    CHECK(len == 64 && c->id == SYS_fstat, "newfstat ctx len %lu id %ld", (unsigned long)len, (long)c->id);
    atomic_fetch_add(&newfstat_seen, 1);
    return 0;
}

static int test_deny(int seccomp)
{
    snprintf(deny_path, sizeof(deny_path), "/tmp/graft-deny-%d", getpid());
    char ok_path[64];
    snprintf(ok_path, sizeof(ok_path), "/tmp/graft-ok-%d", getpid());
    struct gsys_link *l1, *l2;
    struct graft_err err;
    CHECK(gsys_attach_section("tracepoint/syscalls/sys_enter_openat", deny_open, 7, &l1,
                              &err) == 0, "attach: %s", err.msg);
    CHECK(gsys_attach(GSYS_EXIT, SYS_getppid, exit_getppid, 0, &l2, &err) == 0, "attach: %s",
          err.msg);
    CHECK(gsys_attach_section("tracepoint/syscalls/sys_enter_nosuch", deny_open, 0, &l1,
                              &err) == -ENOENT, "bad section accepted");
    /* The kernel's name for fstat's tracepoint (glibc's fstat() is
     * newfstatat, so the test calls it by number). */
    struct gsys_link *l3;
    CHECK(gsys_attach_section("tracepoint/syscalls/sys_enter_newfstat", count_newfstat, 0, &l3, &err) == 0,
          "attach sys_enter_newfstat: %s", err.msg);
    install(seccomp);
    struct stat st;
    for (int i = 0; i < 3; i++)
        CHECK(syscall(SYS_fstat, 1, &st) == 0, "fstat: %s", strerror(errno));
    CHECK(newfstat_seen == 3, "sys_enter_newfstat ran %d times for 3 fstat calls", newfstat_seen);
    gsys_detach(l3);
    int fd = open(deny_path, O_CREAT | O_WRONLY, 0600);
    CHECK(fd < 0 && errno == EACCES, "open(deny) = %d errno %d", fd, errno);
    CHECK(access(deny_path, F_OK) != 0, "denied file was created");
    fd = open(ok_path, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0, "open(ok) failed: %s", strerror(errno));
    if (fd >= 0) {
        CHECK(write(fd, "x", 1) == 1, "write");
        close(fd);
    }
    unlink(ok_path);
    CHECK(syscall(SYS_getppid) == 4242, "exit override not applied");
    CHECK(exit_seen == 1, "exit handler ran %d times", exit_seen);
    gsys_detach(l2);
    CHECK(syscall(SYS_getppid) == getppid() && getppid() != 4242, "override after detach");
    gsys_detach(l1);
    gsys_uninstall();
    return 0;
}

/* ---- a real eBPF program through the VM ---------------------------------- */

static struct gmap *the_map;

static int resolve(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *v,
                   struct graft_err *err)
{
    if (src != BPF_PSEUDO_MAP_FD || imm != 1)
        return graft_errf(err, -EINVAL, "unknown map %d", imm);
    *v = (uint64_t)(uintptr_t)the_map;
    return 0;
}

static int test_bpf(void)
{
    struct gmap_def def = {.type = GMAP_ARRAY, .key_size = 4, .value_size = 8,
                           .max_entries = NR_MAX};
    struct graft_err err = {0};
    if (gmap_create(&def, -1, &the_map, &err) < 0) {
        printf("FAIL gmap_create: %s\n", err.msg);
        return 1;
    }
    gmap_unlink(gmap_shm_name(the_map));   /* our mapping stays; no file left behind */
    /* raw_tracepoint/sys_enter: count[id]++ */
    const char *text =
        "ldxdw r6, [r1+8]\n"
        "stxw [r10-4], r6\n"
        "lddw r1, map:1\n"
        "mov r2, r10\n"
        "add r2, -4\n"
        "call 1\n"
        "jeq r0, 0, out\n"
        "mov r1, 1\n"
        "lock add [r0+0], r1\n"
        "out:\n"
        "mov r0, 0\n"
        "exit\n";
    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(text, &insns, &n, &err) < 0) {
        printf("FAIL gvm_asm: %s\n", err.msg);
        return 1;
    }
    struct gvm_env env = {.helpers = ghelper_table(), .resolve_ld_imm64 = resolve};
    int ok = 0;
    for (int engine = 0; engine < 2; engine++) {
        struct gvm_prog_opts po = {.sz = sizeof(po), .engine = engine, .env = &env};
        struct gvm_prog *prog;
        if (gvm_prog_create(insns, n, &po, &prog, &err) < 0) {
            printf("FAIL gvm_prog_create(%s): %s\n", engine ? "interp" : "jit", err.msg);
            failures++;
            continue;
        }
        gvm_native_fn fn = gvm_prog_native(prog);
        if (!fn) {
            printf("engine %d has no native entry; skipping it\n", engine);
            gvm_prog_free(prog);
            continue;
        }
        for (uint32_t k = 0; k < NR_MAX; k++) {
            uint64_t z = 0;
            gmap_update(the_map, &k, &z, 0);
        }
        struct gsys_link *l;
        CHECK(gsys_attach_section("raw_tracepoint/sys_enter", fn, 0, &l, &err) == 0,
              "attach: %s", err.msg);
        install(0);
        for (int i = 0; i < 300; i++)
            syscall(SYS_getppid);
        pid_t c = fork();
        if (c == 0) {
            for (int i = 0; i < 20; i++)
                syscall(SYS_getppid);
            _exit(0);
        }
        waitpid(c, NULL, 0);
        gsys_detach(l);
        uint32_t k = SYS_getppid;
        uint64_t *v = gmap_lookup(the_map, &k);
        CHECK(v && *v == 320, "eBPF count of getppid %lu, made 320", v ? (unsigned long)*v : 0);
        k = SYS_wait4;
        v = gmap_lookup(the_map, &k);
        CHECK(v && *v == 1, "eBPF count of wait4 %lu", v ? (unsigned long)*v : 0);
        gsys_uninstall();
        gvm_prog_free(prog);
        ok++;
    }
    CHECK(ok > 0, "no engine ran the program");
    free(insns);
    return 0;
}


/* ---- a new task's ids: fork-like clone, vfork, clone on our TLS ------------ */

/* A sys_enter program that stores bpf_get_current_pid_tgid() in
 * the_map[slot] for getppid(slot): which task the helpers think is running,
 * read inline by the JIT and through the helper. A child of a raw clone
 * (no glibc fork handlers) must see its own ids, and so must one that runs
 * on our TLS (vfork, clone(CLONE_VM|CLONE_VFORK) as posix_spawn makes it),
 * after which the parent must see its own again. */
static int ids_child(void *arg)
{
    syscall(SYS_getppid, (long)(intptr_t)arg);
    return 0;
}

static uint64_t ids_of(pid_t pid)
{
    return (uint64_t)(uint32_t)pid << 32 | (uint32_t)pid;
}

/* A tracepoint handler in C: the thread id the syscall path put in the
 * record (its own per-thread cache, gsys_tid), in the_map[8 + slot]. */
static uint64_t record_tp_pid(void *ctx, uint64_t len)
{
    const struct gsys_enter_ctx *c = ctx;
    (void)len;
    uint32_t k = 8 + (uint32_t)c->args[0];
    uint64_t v = (uint64_t)(uint32_t)c->ent.pid;
    if (c->args[0] < 8)
        gmap_update(the_map, &k, &v, 0);
    return 0;
}

/* The calls of test_ids; kids[] gets the children's pids. */
static void ids_workload(pid_t kids[3])
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    syscall(SYS_getppid, 0L);                          /* the parent's ids cached */
    kids[0] = (pid_t)syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    if (kids[0] == 0) {
        syscall(SYS_getppid, 1L);
        _exit(0);
    }
    waitpid(kids[0], NULL, 0);
    kids[1] = vfork();
    if (kids[1] == 0) {
        syscall(SYS_getppid, 2L);
        _exit(0);
    }
    waitpid(kids[1], NULL, 0);
    syscall(SYS_getppid, 3L);                          /* the parent again */
    kids[2] = clone(ids_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD,
                    (void *)(intptr_t)4);
    waitpid(kids[2], NULL, 0);
    syscall(SYS_getppid, 5L);
}

static const char *ids_what[6] = {"parent", "raw fork-like clone child", "vfork child",
                                  "parent after vfork", "CLONE_VM|CLONE_VFORK child",
                                  "parent after it"};

static int test_ids(int seccomp)
{
    struct gmap_def def = {.type = GMAP_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 16};
    struct graft_err err = {0};
    if (gmap_create(&def, -1, &the_map, &err) < 0) {
        printf("FAIL gmap_create: %s\n", err.msg);
        return 1;
    }
    gmap_unlink(gmap_shm_name(the_map));   /* shared with the children */
    const char *text =
        "ldxdw r6, [r1+8]\n"
        "jne r6, 110, out\n"          /* SYS_getppid */
        "ldxdw r7, [r1+0]\n"
        "ldxdw r7, [r7+112]\n"        /* pt_regs.di: the slot */
        "call 14\n"
        "stxw [r10-4], r7\n"
        "stxdw [r10-16], r0\n"
        "lddw r1, map:1\n"
        "mov r2, r10\n"
        "add r2, -4\n"
        "mov r3, r10\n"
        "add r3, -16\n"
        "mov r4, 0\n"
        "call 2\n"
        "out:\n"
        "mov r0, 0\n"
        "exit\n";
    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(text, &insns, &n, &err) < 0) {
        printf("FAIL gvm_asm: %s\n", err.msg);
        return 1;
    }
    install(seccomp);
    pid_t kids[3];
    for (int inl = 1; inl >= 0; inl--) {
        struct gvm_env env = {.helpers = ghelper_table(),
                              .helper_inline = inl ? ghelper_inline_table() : NULL,
                              .resolve_ld_imm64 = resolve};
        struct gvm_prog_opts po = {.sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env};
        struct gvm_prog *prog;
        if (gvm_prog_create(insns, n, &po, &prog, &err) < 0) {
            printf("FAIL gvm_prog_create: %s\n", err.msg);
            failures++;
            continue;
        }
        for (uint32_t k = 0; k < 8; k++) {
            uint64_t z = 0;
            gmap_update(the_map, &k, &z, 0);
        }
        struct gsys_link *l = NULL;
        int rc = gsys_attach_section("raw_tracepoint/sys_enter", gvm_prog_native(prog), 0, &l,
                                     &err);
        CHECK(rc == 0, "attach: %s", err.msg);
        if (rc)
            continue;
        ids_workload(kids);
        gsys_detach(l);
        pid_t want[6] = {my_pid, kids[0], kids[1], my_pid, kids[2], my_pid};
        for (uint32_t k = 0; k < 6; k++) {
            uint64_t *v = gmap_lookup(the_map, &k);
            CHECK(v && *v == ids_of(want[k]), "%s: pid_tgid %#lx, want %#lx (%s)", ids_what[k],
                  v ? (unsigned long)*v : 0UL, (unsigned long)ids_of(want[k]),
                  inl ? "read inline" : "the helper");
        }
        gvm_prog_free(prog);
    }
    /* the thread id in a tracepoint record */
    struct gsys_link *l = NULL;
    CHECK(gsys_attach(GSYS_ENTER, SYS_getppid, record_tp_pid, 0, &l, &err) == 0, "attach: %s",
          err.msg);
    ids_workload(kids);
    gsys_detach(l);
    pid_t want[6] = {my_pid, kids[0], kids[1], my_pid, kids[2], my_pid};
    for (uint32_t k = 0; k < 6; k++) {
        uint32_t key = 8 + k;
        uint64_t *v = gmap_lookup(the_map, &key);
        CHECK(v && *v == (uint64_t)(uint32_t)want[k], "%s: tracepoint record pid %lu, want %d",
              ids_what[k], v ? (unsigned long)*v : 0UL, want[k]);
    }
    gsys_uninstall();
    free(insns);
    return 0;
}

/* ---- the assembly fast path ----------------------------------------------- */

/* Handlers for handler_preserves_fp: they call nothing and, with volatile
 * element copies, the compiler cannot vectorise them into xmm code. */
static __thread volatile uint64_t rec[24];   /* per thread: threads check their own */
static _Atomic uint64_t fast_hits, other_hits;

static uint64_t rec_ctx(void *ctx, uint64_t len)
{
    const volatile uint64_t *c = ctx;
    for (uint64_t i = 0; i < len / 8 && i < 2 + 8; i++)
        rec[i] = c[i];
    rec[23] = len;
    if (len == 16) {
        const volatile uint64_t *r = (const volatile uint64_t *)(uintptr_t)c[0];
        for (int i = 0; i < 21; i++)
            rec[2 + i] = r[i];
    }
    atomic_fetch_add_explicit(&fast_hits, 1, memory_order_relaxed);
    return 0;
}

static uint64_t count_other(void *ctx, uint64_t len)
{
    atomic_fetch_add_explicit(&other_hits, 1, memory_order_relaxed);
    return 0;
}

/* getppid from a rewritten instruction with known values in every
 * register; checks the ones the kernel preserves came back unchanged. */
static long getppid_regs(void)
{
    register long r10 __asm__("r10") = 44;
    register long r8 __asm__("r8") = 55;
    register long r9 __asm__("r9") = 66;
    register long r12 __asm__("r12") = 77;
    long ax = SYS_getppid, di = 11, si = 22, dx = 33, bx = 0x1234;
    double x = 2.5, y;
    __asm__ volatile("movsd %[x], %%xmm3\n xchg %[bx], %%rbx\n syscall\n"
                     "xchg %[bx], %%rbx\n movsd %%xmm3, %[y]"
                     : "+a"(ax), "+D"(di), "+S"(si), "+d"(dx), "+r"(r10), "+r"(r8),
                       "+r"(r9), "+r"(r12), [bx] "+r"(bx), [y] "=m"(y)
                     : [x] "m"(x)
                     : "rcx", "r11", "xmm3", "memory");
    CHECK(di == 11 && si == 22 && dx == 33 && r10 == 44 && r8 == 55 && r9 == 66 &&
          r12 == 77 && bx == 0x1234, "registers not preserved: %ld %ld %ld %ld %ld %ld %ld %lx",
          di, si, dx, (long)r10, (long)r8, (long)r9, (long)r12, bx);
    CHECK(y == 2.5, "xmm3 clobbered: %f", y);
    return ax;
}

static void *fast_thread(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++)
        CHECK(syscall(SYS_getppid) == my_ppid, "getppid in thread");
    if (arg) {
        CHECK(rec[0] >> 32 == (uint64_t)syscall(SYS_gettid), "trace_entry pid %lu, tid %ld",
              (unsigned long)(rec[0] >> 32), syscall(SYS_gettid));
    }
    return NULL;
}

static void *ignored_thread(void *arg)
{
    gsys_ignore_this_thread();
    for (int i = 0; i < PER_THREAD; i++)
        syscall(SYS_getppid);
    return NULL;
}

static void run_threads(void *(*fn)(void *), void *arg)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, fn, arg);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void fast_jit(void)
{
    static uint64_t jit_count;
    char text[256];
    snprintf(text, sizeof(text),
             "lddw r2, %#llx\n"
             "ldxdw r3, [r2+0]\n"
             "ldxdw r4, [r1+8]\n"           /* id */
             "jne r4, %d, out\n"
             "add r3, 1\n"
             "stxdw [r2+0], r3\n"
             "out:\n"
             "mov r0, 0\n"
             "exit\n", (unsigned long long)(uintptr_t)&jit_count, SYS_getppid);
    struct graft_err err = {0};
    struct bpf_insn *insns;
    uint32_t n;
    struct gvm_prog *prog;
    struct gvm_prog_opts po = {.sz = sizeof(po), .engine = GVM_ENGINE_JIT};
    if (gvm_asm(text, &insns, &n, &err) < 0 || gvm_prog_create(insns, n, &po, &prog, &err) < 0) {
        printf("FAIL JIT program: %s\n", err.msg);
        failures++;
        return;
    }
    struct gsys_attach_opts o = {.sz = sizeof(o), .handler_preserves_fp = 1};
    struct gsys_link *l;
    CHECK(gsys_attach_opts(GSYS_ENTER, SYS_getppid, gvm_prog_native(prog), &o, &l, &err) == 0,
          "attach: %s", err.msg);
    for (int i = 0; i < 250; i++)
        getppid_regs();
    gsys_detach(l);
    getppid_regs();
    CHECK(jit_count == 250, "JIT'd program counted %lu, made 250", (unsigned long)jit_count);
    gvm_prog_free(prog);
    free(insns);
}

static int test_fast(void)
{
    install(0);
    struct graft_err err = {0};
    struct gsys_attach_opts o = {.sz = sizeof(o), .handler_preserves_fp = 1};
    struct gsys_link *l, *l2, *l3;
    /* raw sys_enter: {pt_regs *, id} */
    /* the C dispatcher sets the helpers' run state, the fast path does not */
    struct ghelper_run *rs = ghelper_run_state();
    CHECK(gsys_attach_opts(GSYS_RAW_ENTER, SYS_getppid, rec_ctx, &o, &l, &err) == 0,
          "attach: %s", err.msg);
    rs->ctx = NULL;
    CHECK(getppid_regs() == my_ppid, "getppid result");
    PATH_CHECK(rs->ctx == NULL, "raw: the fast path was not taken");
    CHECK(fast_hits == 1 && rec[23] == 16 && rec[1] == SYS_getppid, "raw: hits %lu len %lu id %lu",
          (unsigned long)fast_hits, (unsigned long)rec[23], (unsigned long)rec[1]);
    /* pt_regs words: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss */
    static const uint64_t want[21] = {0, 0, 0, 0, 0, 0x1234, 0, 44, 66, 55, (uint64_t)-ENOSYS, 0,
                                      33, 22, 11, SYS_getppid, 0, 0, 0, 0, 0};
    for (int i = 0; i < 21; i++)
        CHECK(rec[2 + i] == want[i], "pt_regs word %d = %#lx, want %#lx", i,
              (unsigned long)rec[2 + i], (unsigned long)want[i]);
    fast_hits = 0;
    run_threads(fast_thread, NULL);
    CHECK(fast_hits == THREADS * PER_THREAD, "raw fast path counted %lu in threads, made %d",
          (unsigned long)fast_hits, THREADS * PER_THREAD);
    /* a thread whose syscalls are not traced */
    fast_hits = 0;
    run_threads(ignored_thread, NULL);
    CHECK(fast_hits == 0, "ignored threads were counted %lu times", (unsigned long)fast_hits);
    gsys_detach(l);
    fast_hits = 0;
    getppid_regs();
    CHECK(fast_hits == 0, "handler ran after detach");

    /* tracepoint sys_enter: trace_entry, id, args; pid is each thread's tid */
    CHECK(gsys_attach_opts(GSYS_ENTER, SYS_getppid, rec_ctx, &o, &l, &err) == 0,
          "attach: %s", err.msg);
    for (int i = 0; i < 3; i++) {   /* the first may take the slow path (tid) */
        rs->ctx = NULL;
        getppid_regs();
    }
    PATH_CHECK(rs->ctx == NULL, "tp: the fast path was not taken");
    CHECK(fast_hits == 3 && rec[23] == 64 && rec[1] == SYS_getppid, "tp: hits %lu len %lu id %lu",
          (unsigned long)fast_hits, (unsigned long)rec[23], (unsigned long)rec[1]);
    CHECK((uint32_t)rec[0] == 0 && rec[0] >> 32 == (uint64_t)syscall(SYS_gettid),
          "trace_entry %#lx", (unsigned long)rec[0]);
    static const uint64_t args[6] = {11, 22, 33, 44, 55, 66};
    for (int i = 0; i < 6; i++)
        CHECK(rec[2 + i] == args[i], "tp arg %d = %lu", i, (unsigned long)rec[2 + i]);
    fast_hits = 0;
    run_threads(fast_thread, (void *)1);
    CHECK(fast_hits == THREADS * PER_THREAD, "tp fast path counted %lu in threads, made %d",
          (unsigned long)fast_hits, THREADS * PER_THREAD);
    /* fork: the child's own tid */
    pid_t c = fork();
    if (c == 0) {
        getppid_regs();
        _exit(rec[0] >> 32 == (uint64_t)syscall(SYS_gettid) ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child saw a wrong pid (%d)", st);

    /* the fast path must step aside for a second program, an exit program,
     * and a program that may call helpers: all of them still run */
    fast_hits = other_hits = 0;
    CHECK(gsys_attach(GSYS_RAW_ENTER, -1, count_other, 0, &l2, &err) == 0, "attach");
    getppid_regs();
    PATH_CHECK(rs->ctx != NULL, "fast path taken with two programs");
    CHECK(fast_hits == 1 && other_hits >= 1, "with an all-syscalls program: %lu %lu",
          (unsigned long)fast_hits, (unsigned long)other_hits);
    gsys_detach(l2);
    fast_hits = other_hits = 0;
    CHECK(gsys_attach_opts(GSYS_EXIT, SYS_getppid, count_other, &o, &l2, &err) == 0, "attach");
    getppid_regs();
    CHECK(fast_hits == 1 && other_hits == 1, "with an exit program: %lu %lu",
          (unsigned long)fast_hits, (unsigned long)other_hits);
    gsys_detach(l2);
    fast_hits = other_hits = 0;
    CHECK(gsys_attach_opts(GSYS_ENTER, SYS_getppid, count_other, &o, &l2, &err) == 0, "attach");
    CHECK(gsys_attach(GSYS_ENTER, SYS_getppid, count_other, 0, &l3, &err) == 0, "attach");
    getppid_regs();
    CHECK(fast_hits == 1 && other_hits == 2, "three enter programs: %lu %lu",
          (unsigned long)fast_hits, (unsigned long)other_hits);
    gsys_detach(l3);
    gsys_detach(l2);
    fast_hits = 0;
    rs->ctx = NULL;
    getppid_regs();
    PATH_CHECK(rs->ctx == NULL, "fast path not taken again after detaching the others");
    CHECK(fast_hits == 1, "back to one program: %lu", (unsigned long)fast_hits);
    gsys_detach(l);
    fast_jit();
    gsys_uninstall();
    return 0;
}

/* ---- one enter program that calls out: the assembly CALLS path ----------- */

/* A C handler (attached without handler_preserves_fp): it records its
 * context and the helpers' run state, calls real helpers, clobbers every
 * xmm register and, when asked, overrides the result. */
static _Atomic long calls_override;
static __thread volatile uint64_t crec[40];

/* Fill the stack below this frame with a pattern: a syscall made right
 * after builds graft's frame there, so a field it does not write is not 0. */
static __attribute__((noinline)) void dirty_stack(void)
{
    volatile uint8_t buf[4096];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = 0xa5;
}

static uint64_t rec_calls(void *ctx, uint64_t len)
{
    const volatile uint64_t *c = ctx;
    for (uint64_t i = 0; i < len / 8 && i < 8; i++)
        crec[i] = c[i];
    crec[8] = len;
    crec[9] = (uint64_t)(uintptr_t)ctx;
    struct ghelper_run *rs = ghelper_run_state();
    crec[10] = rs->ctx == ctx;
    crec[11] = (uint64_t)(uintptr_t)rs->regs;
    crec[12] = rs->cookie;
    crec[13] = rs->func_nargs;
    crec[14] = (uint64_t)rs->at_return | (uint64_t)rs->override_set << 8;
    crec[15] = ghelper_proto(14)->fn(0, 0, 0, 0, 0);       /* get_current_pid_tgid */
    uint64_t arg0 = 0;
    crec[16] = ghelper_proto(183)->fn((uint64_t)(uintptr_t)ctx, 0,   /* get_func_arg(0) */
                                      (uint64_t)(uintptr_t)&arg0, 0, 0);
    crec[17] = arg0;
    if (len == 16) {
        const volatile uint64_t *r = (const volatile uint64_t *)(uintptr_t)c[0];
        for (int i = 0; i < 21; i++)
            crec[18 + i] = r[i];
    }
    fp_clobber_vectors(0);
    atomic_fetch_add_explicit(&fast_hits, 1, memory_order_relaxed);
    long ov = atomic_load(&calls_override);
    if (ov)
        ghelper_proto(58)->fn((uint64_t)(uintptr_t)ctx, (uint64_t)ov, 0, 0, 0);
    return 0;
}

static void *calls_thread(void *arg)
{
    long tid = syscall(SYS_gettid);
    for (int i = 0; i < PER_THREAD; i++) {
        CHECK(getppid_regs() == my_ppid, "getppid in thread");
        CHECK(crec[15] == ((uint64_t)my_pid << 32 | (uint64_t)tid),
              "pid_tgid %#lx in thread %ld", (unsigned long)crec[15], tid);
        if (arg && i > 0)
            CHECK(crec[0] >> 32 == (uint64_t)tid, "trace_entry pid %lu, tid %ld",
                  (unsigned long)(crec[0] >> 32), tid);
    }
    return NULL;
}

/* How far below this frame the handler's context was: the assembly path
 * builds it right under the caller's red zone, the C dispatcher much lower. */
static long ctx_depth(void)
{
    volatile char here;
    getppid_regs();
    return (long)((uintptr_t)&here - (uintptr_t)crec[9]);
}

static int test_calls(void)
{
    install(0);
    struct graft_err err = {0};
    struct gsys_link *l, *l2;
    long tid = syscall(SYS_gettid);
    uint64_t pid_tgid = (uint64_t)my_pid << 32 | (uint64_t)tid;
    /* raw sys_enter: {pt_regs *, id}; the run state points at both */
    CHECK(gsys_attach(GSYS_RAW_ENTER, SYS_getppid, rec_calls, 77, &l, &err) == 0,
          "attach: %s", err.msg);
    fast_hits = 0;
    dirty_stack();   /* so that a pt_regs field left unwritten shows */
    CHECK(getppid_regs() == my_ppid, "raw: getppid result");
    CHECK(fast_hits == 1 && crec[8] == 16 && crec[1] == SYS_getppid, "raw: hits %lu len %lu id %lu",
          (unsigned long)fast_hits, (unsigned long)crec[8], (unsigned long)crec[1]);
    CHECK(crec[10] == 1 && crec[11] == crec[0] && crec[12] == 77 && crec[13] == 6 && crec[14] == 0,
          "raw: run state ctx %lu regs %#lx/%#lx cookie %lu nargs %lu flags %#lx",
          (unsigned long)crec[10], (unsigned long)crec[11], (unsigned long)crec[0],
          (unsigned long)crec[12], (unsigned long)crec[13], (unsigned long)crec[14]);
    CHECK(crec[15] == pid_tgid, "raw: pid_tgid %#lx", (unsigned long)crec[15]);
    CHECK(crec[16] == 0 && crec[17] == 11, "raw: get_func_arg(0) = %ld, %lu", (long)crec[16],
          (unsigned long)crec[17]);
    /* pt_regs words: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss */
    static const uint64_t want[21] = {0, 0, 0, 0, 0, 0x1234, 0, 44, 66, 55, (uint64_t)-ENOSYS, 0,
                                      33, 22, 11, SYS_getppid, 0, 0, 0, 0, 0};
    for (int i = 0; i < 21; i++)
        CHECK(crec[18 + i] == want[i], "raw: pt_regs word %d = %#lx, want %#lx", i,
              (unsigned long)crec[18 + i], (unsigned long)want[i]);
    long asm_depth = ctx_depth();
    /* a second program sends the number to the C dispatcher: same results */
    CHECK(gsys_attach(GSYS_RAW_ENTER, -1, count_other, 0, &l2, &err) == 0, "attach");
    long c_depth = ctx_depth();
    CHECK(crec[10] == 1 && crec[11] == crec[0] && crec[12] == 77 && crec[15] == pid_tgid,
          "raw via C: run state");
    gsys_detach(l2);
    PATH_CHECK(asm_depth > 0 && asm_depth < c_depth, "the assembly path was not taken (context %ld "
          "bytes down, %ld through C)", asm_depth, c_depth);
    printf("context depth: assembly %ld bytes, C dispatcher %ld bytes\n", asm_depth, c_depth);
    /* an override: the syscall is not made, registers still preserved */
    atomic_store(&calls_override, 4242);
    CHECK(getppid_regs() == 4242, "raw: override not applied");
    int fds[2];
    CHECK(gsys_attach(GSYS_RAW_ENTER, SYS_pipe2, rec_calls, 0, &l2, &err) == 0, "attach");
    CHECK(syscall(SYS_pipe2, fds, 0) == 4242, "pipe2 override");
    atomic_store(&calls_override, 0);
    CHECK(syscall(SYS_pipe2, fds, 0) == 0 && fds[0] >= 0, "pipe2 after override");
    close(fds[0]);
    close(fds[1]);
    gsys_detach(l2);
    fast_hits = 0;
    run_threads(calls_thread, NULL);
    CHECK(fast_hits == THREADS * PER_THREAD, "raw: counted %lu in threads, made %d",
          (unsigned long)fast_hits, THREADS * PER_THREAD);
    gsys_detach(l);
    fast_hits = 0;
    getppid_regs();
    CHECK(fast_hits == 0, "handler ran after detach");

    /* tracepoint sys_enter: trace_entry {.., tid}, id, args */
    CHECK(gsys_attach(GSYS_ENTER, SYS_getppid, rec_calls, 5, &l, &err) == 0, "attach: %s", err.msg);
    for (int i = 0; i < 3; i++)    /* the first may go through C (tid) */
        CHECK(getppid_regs() == my_ppid, "tp: getppid result");
    CHECK(fast_hits == 3 && crec[8] == 64 && crec[1] == SYS_getppid, "tp: hits %lu len %lu id %lu",
          (unsigned long)fast_hits, (unsigned long)crec[8], (unsigned long)crec[1]);
    CHECK((uint32_t)crec[0] == 0 && crec[0] >> 32 == (uint64_t)tid, "tp: trace_entry %#lx",
          (unsigned long)crec[0]);
    static const uint64_t args[6] = {11, 22, 33, 44, 55, 66};
    for (int i = 0; i < 6; i++)
        CHECK(crec[2 + i] == args[i], "tp: arg %d = %lu", i, (unsigned long)crec[2 + i]);
    CHECK(crec[10] == 1 && crec[11] != 0 && crec[12] == 5 && crec[16] == 0 && crec[17] == 11,
          "tp: run state ctx %lu regs %#lx cookie %lu func_arg %ld/%lu", (unsigned long)crec[10],
          (unsigned long)crec[11], (unsigned long)crec[12], (long)crec[16],
          (unsigned long)crec[17]);
    long tp_depth = ctx_depth();
    PATH_CHECK(tp_depth > 0 && tp_depth < c_depth, "tp: the assembly path was not taken (%ld, %ld)",
          tp_depth, c_depth);
    atomic_store(&calls_override, -EPERM);
    errno = 0;
    CHECK(syscall(SYS_getppid) == -1 && errno == EPERM, "tp: override");
    atomic_store(&calls_override, 0);
    fast_hits = 0;
    run_threads(calls_thread, (void *)1);
    CHECK(fast_hits == THREADS * PER_THREAD, "tp: counted %lu in threads, made %d",
          (unsigned long)fast_hits, THREADS * PER_THREAD);
    /* fork: the child has its own tid in trace_entry and pid_tgid */
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 2; i++)
            getppid_regs();
        long me = syscall(SYS_gettid);
        _exit(crec[0] >> 32 == (uint64_t)me && crec[15] >> 32 == (uint64_t)me ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child saw a wrong pid (%d)", st);
    gsys_detach(l);
    gsys_uninstall();
    return failures;
}

/* ---- one enter and one exit program (GSYS_H_PAIR) ------------------------ */

/* The exit half: records its context, the run state and (raw) pt_regs,
 * clobbers every xmm register, overrides the result when asked. */
static _Atomic long exit_override;
static _Atomic unsigned long exit_hits;
static __thread volatile uint64_t xrec[16];

static uint64_t rec_exit(void *ctx, uint64_t len)
{
    const volatile uint64_t *c = ctx;
    for (uint64_t i = 0; i < len / 8 && i < 3; i++)
        xrec[i] = c[i];
    xrec[3] = len;
    xrec[4] = (uint64_t)(uintptr_t)ctx;
    struct ghelper_run *rs = ghelper_run_state();
    xrec[5] = rs->ctx == ctx;
    xrec[6] = rs->cookie;
    xrec[7] = (uint64_t)rs->at_return;
    xrec[8] = (uint64_t)(uintptr_t)rs->regs;
    if (len == 16) {
        const volatile struct graft_pt_regs *r = (const volatile struct graft_pt_regs *)(uintptr_t)c[0];
        xrec[9] = r->ax;
        xrec[10] = r->orig_ax;
        xrec[11] = r->di;
    }
    xrec[12] = ghelper_proto(14)->fn(0, 0, 0, 0, 0);       /* get_current_pid_tgid */
    __asm__ volatile("pcmpeqd %%xmm3, %%xmm3\n movdqa %%xmm3, %%xmm0\n movdqa %%xmm3, %%xmm15\n"
                     ::: "xmm0", "xmm3", "xmm15");
    atomic_fetch_add_explicit(&exit_hits, 1, memory_order_relaxed);
    long ov = atomic_load(&exit_override);
    if (ov)
        ghelper_proto(58)->fn((uint64_t)(uintptr_t)ctx, (uint64_t)ov, 0, 0, 0);
    return 0;
}

static void *pair_thread(void *arg)
{
    (void)arg;
    long tid = syscall(SYS_gettid);
    for (int i = 0; i < PER_THREAD; i++) {
        CHECK(getppid_regs() == my_ppid, "pair: getppid in thread");
        CHECK(xrec[12] == ((uint64_t)my_pid << 32 | (uint64_t)tid), "pair: pid_tgid in thread");
    }
    return NULL;
}

static int test_pair(void)
{
    install(0);
    struct graft_err err = {0};
    struct gsys_link *le, *lx, *l3;
    long tid = syscall(SYS_gettid);
    /* raw: {pt_regs *, ret} at exit, pt_regs.ax = the result */
    CHECK(gsys_attach(GSYS_RAW_ENTER, SYS_getppid, rec_calls, 7, &le, &err) == 0, "attach: %s", err.msg);
    CHECK(gsys_attach(GSYS_RAW_EXIT, SYS_getppid, rec_exit, 8, &lx, &err) == 0, "attach: %s", err.msg);
    fast_hits = exit_hits = 0;
    CHECK(getppid_regs() == my_ppid, "raw pair: getppid result");
    CHECK(fast_hits == 1 && exit_hits == 1, "raw pair: enter %lu exit %lu",
          (unsigned long)fast_hits, (unsigned long)exit_hits);
    CHECK(xrec[3] == 16 && xrec[1] == (uint64_t)my_ppid && xrec[0] == crec[0],
          "raw pair: exit ctx len %lu ret %ld regs %#lx (enter's %#lx)", (unsigned long)xrec[3],
          (long)xrec[1], (unsigned long)xrec[0], (unsigned long)crec[0]);
    CHECK(xrec[9] == (uint64_t)my_ppid && xrec[10] == SYS_getppid && xrec[11] == 11,
          "raw pair: pt_regs ax %ld orig_ax %lu di %lu", (long)xrec[9], (unsigned long)xrec[10],
          (unsigned long)xrec[11]);
    CHECK(xrec[5] == 1 && xrec[6] == 8 && xrec[7] == 1 && xrec[8] == xrec[0],
          "raw pair: exit run state ctx %lu cookie %lu at_return %lu regs %#lx",
          (unsigned long)xrec[5], (unsigned long)xrec[6], (unsigned long)xrec[7],
          (unsigned long)xrec[8]);
    CHECK(crec[12] == 7 && crec[14] == 0, "raw pair: enter run state cookie %lu flags %#lx",
          (unsigned long)crec[12], (unsigned long)crec[14]);
    long pair_depth = ctx_depth();
    /* a third program sends the number to the C dispatcher */
    CHECK(gsys_attach(GSYS_RAW_EXIT, -1, count_other, 0, &l3, &err) == 0, "attach");
    long c_depth = ctx_depth();
    gsys_detach(l3);
    PATH_CHECK(pair_depth > 0 && pair_depth < c_depth, "pair: the assembly path was not taken "
          "(context %ld bytes down, %ld through C)", pair_depth, c_depth);
    /* an exit override replaces the result; an enter override skips the
     * syscall and the exit program */
    atomic_store(&exit_override, 999);
    CHECK(getppid_regs() == 999, "pair: exit override not applied");
    atomic_store(&exit_override, 0);
    atomic_store(&calls_override, 4242);
    exit_hits = 0;
    CHECK(getppid_regs() == 4242 && exit_hits == 0, "pair: enter override (exit ran %lu times)",
          (unsigned long)exit_hits);
    atomic_store(&calls_override, 0);
    fast_hits = exit_hits = 0;
    run_threads(pair_thread, NULL);
    CHECK(fast_hits == THREADS * PER_THREAD && exit_hits == THREADS * PER_THREAD,
          "pair: counted %lu/%lu in threads, made %d", (unsigned long)fast_hits,
          (unsigned long)exit_hits, THREADS * PER_THREAD);
    gsys_detach(lx);
    gsys_detach(le);

    /* tracepoint kinds: exit ctx {trace_entry {.., tid}, id, ret} */
    CHECK(gsys_attach(GSYS_ENTER, SYS_getppid, rec_calls, 0, &le, &err) == 0, "attach: %s", err.msg);
    CHECK(gsys_attach(GSYS_EXIT, SYS_getppid, rec_exit, 9, &lx, &err) == 0, "attach: %s", err.msg);
    fast_hits = exit_hits = 0;
    for (int i = 0; i < 3; i++)
        CHECK(getppid_regs() == my_ppid, "tp pair: getppid result");
    CHECK(fast_hits == 3 && exit_hits == 3, "tp pair: enter %lu exit %lu",
          (unsigned long)fast_hits, (unsigned long)exit_hits);
    CHECK(xrec[3] == 24 && xrec[0] == (uint64_t)tid << 32 && xrec[1] == SYS_getppid &&
          xrec[2] == (uint64_t)my_ppid, "tp pair: exit ctx len %lu ent %#lx id %lu ret %ld",
          (unsigned long)xrec[3], (unsigned long)xrec[0], (unsigned long)xrec[1], (long)xrec[2]);
    CHECK(xrec[5] == 1 && xrec[6] == 9 && xrec[7] == 1 && xrec[8] != 0, "tp pair: exit run state");
    long tp_depth = ctx_depth();
    PATH_CHECK(tp_depth > 0 && tp_depth < c_depth, "tp pair: the assembly path was not taken (%ld, %ld)",
          tp_depth, c_depth);
    atomic_store(&exit_override, -EPERM);
    errno = 0;
    CHECK(syscall(SYS_getppid) == -1 && errno == EPERM, "tp pair: exit override");
    atomic_store(&exit_override, 0);
    /* fork (a special number: through C) and the child's own syscalls */
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 2; i++)
            getppid_regs();
        long me = syscall(SYS_gettid);
        _exit(xrec[0] >> 32 == (uint64_t)me && xrec[12] >> 32 == (uint64_t)me ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pair: fork child saw a wrong pid (%d)", st);
    gsys_detach(lx);
    gsys_detach(le);
    exit_hits = 0;
    getppid_regs();
    CHECK(exit_hits == 0, "exit program ran after detach");
    gsys_uninstall();
    return failures;
}

/* ---- the page-0 sled ------------------------------------------------------- */

/* Syscall number nr (not a syscall: -ENOSYS) from a rewritten instruction
 * with the flags left by `cmp b, a`: the sled's jle/jg must work from every
 * entry offset and flag state. */
static long nosys(long nr, int a, int b)
{
    long ax = nr;
    __asm__ volatile("cmp %[b], %[a]\n syscall"
                     : "+a"(ax) : [a] "r"(a), [b] "r"(b) : "rcx", "r11", "memory", "cc");
    return ax;
}

static int test_sled(void)
{
    install(0);
    static const int flags[][2] = {{1, 0}, {1, 2}, {1, 1}, {INT32_MIN, 1}, {-1, INT32_MAX}};
    /* not syscalls on x86-64 (335/336 are uretprobe/uprobe since 6.11-6.16,
     * which kill callers outside a probe; 512-547 are x32-only) */
    static const int ranges[][2] = {{400, 424}, {512, 548}, {548, 649}, {661, 1200}, {4070, 4080}};
    /* real syscalls without arguments or effects, at entry offsets of all
     * four sled phases */
    struct { int nr; long want; } real[] = {
        {SYS_sched_yield, 0}, {SYS_getpid, my_pid}, {SYS_getuid, getuid()},
        {SYS_getgid, getgid()}, {SYS_geteuid, geteuid()}, {SYS_getegid, getegid()},
        {SYS_getppid, my_ppid}, {SYS_getpgrp, getpgrp()}, {SYS_gettid, syscall(SYS_gettid)}};
    int tried = 0;
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
        for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++)
            for (int nr = ranges[r][0]; nr < ranges[r][1]; nr++, tried++) {
                long v = nosys(nr, flags[f][0], flags[f][1]);
                CHECK(v == -ENOSYS, "number %d (flags %zu) returned %ld", nr, f, v);
            }
        for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++, tried++) {
            long v = nosys(real[i].nr, flags[f][0], flags[f][1]);
            CHECK(v == real[i].want, "%s (flags %zu) returned %ld, want %ld",
                  gsyscall_name(real[i].nr), f, v, real[i].want);
        }
    }
    printf("%d entry points tried\n", tried);
    gsys_uninstall();
    return 0;
}

/* ---- names -------------------------------------------------------------- */

static int test_names(void)
{
    FILE *f = fopen("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "r");
    if (!f) {
        printf("SKIP: no unistd_64.h\n");
        return 0;
    }
    char line[256], name[128];
    int nr, seen = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "#define __NR_%127s %d", name, &nr) == 2) {
            seen++;
            CHECK(gsyscall_nr(name) == nr, "%s: table %d, header %d", name,
                  gsyscall_nr(name), nr);
            CHECK(gsyscall_name(nr) && strcmp(gsyscall_name(nr), name) == 0,
                  "name of %d", nr);
        }
    fclose(f);
    CHECK(seen > 300, "only %d entries in the header", seen);
    CHECK(gsyscall_nr("nosuch") == -1 && gsyscall_name(100000) == NULL, "unknown");
    /* Tracepoints the kernel names after the implementation, not the call. */
    static const struct { const char *event; int nr; } aliases[] = {
        {"newstat", SYS_stat},   {"newfstat", SYS_fstat}, {"newlstat", SYS_lstat},
        {"newuname", SYS_uname}, {"umount", SYS_umount2}, {"sendfile64", SYS_sendfile},
        {"newfstatat", SYS_newfstatat}, {"openat", SYS_openat},
    };
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        CHECK(gsyscall_tracepoint_nr(aliases[i].event) == aliases[i].nr, "tracepoint sys_enter_%s: %d, want %d",
              aliases[i].event, gsyscall_tracepoint_nr(aliases[i].event), aliases[i].nr);
    CHECK(gsyscall_tracepoint_nr("nosuch") == -1, "unknown tracepoint");
    return 0;
}

/* ---- strace comparison --------------------------------------------------- */

#define MARK_BEGIN "/graft-syscall-test-begin"
#define MARK_END "/graft-syscall-test-end"

/* Run under strace: count between the markers and write "name count" lines. */
static int strace_child(const char *out)
{
    counts = mmap(NULL, NR_MAX * 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct gsys_link *l;
    struct graft_err err;
    gsys_attach(GSYS_RAW_ENTER, -1, count_raw, 0, &l, &err);
    install(0);
    struct expect exp[16];
    access(MARK_BEGIN, F_OK);
    counting = 1;
    workload(exp, 0);
    counting = 0;
    access(MARK_END, F_OK);
    FILE *f = fopen(out, "w");
    for (int i = 0; i < NR_MAX; i++)
        if (counts[i] && gsyscall_name(i))
            fprintf(f, "%s %lu\n", gsyscall_name(i), (unsigned long)counts[i]);
    fclose(f);
    return failures ? 1 : 0;
}

/* strace pads the result: "...)      = 0" */
static int returned_zero(const char *line)
{
    const char *eq = strrchr(line, '=');
    return eq && eq > line && eq[-1] == ' ' && strtol(eq + 1, NULL, 10) == 0 &&
           strchr(eq, '0');
}

static int test_strace(const char *self, const char *strace)
{
    if (access(strace, X_OK) != 0) {
        printf("SKIP: %s not installed\n", strace);
        return 0;
    }
    char trace[64], mine[64], cmd[512];
    snprintf(trace, sizeof(trace), "/tmp/graft-strace-%d.txt", getpid());
    snprintf(mine, sizeof(mine), "/tmp/graft-mine-%d.txt", getpid());
    snprintf(cmd, sizeof(cmd), "%s -f -qq -o %s %s strace-child %s", strace, trace, self, mine);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);   /* LSan cannot run under ptrace */
    int rc = system(cmd);
    CHECK(rc == 0, "traced run failed (%d)", rc);
    uint64_t theirs[NR_MAX] = {0};
    FILE *f = fopen(trace, "r");
    if (!f) {
        printf("FAIL: no strace output\n");
        return 1;
    }
    char line[4096];
    int on = 0;
    int execd[64], nexecd = 0;
    while (fgets(line, sizeof(line), f)) {
        int pid, off = 0;
        char name[64];
        if (sscanf(line, "%d %63[a-z0-9_]%n", &pid, name, &off) != 2 || line[off] != '(') {
            /* "<... execve resumed>) = 0" ends hooking in that process */
            if (sscanf(line, "%d <... execve resumed>%n", &pid, &off) == 1 && off &&
                returned_zero(line) && nexecd < 64)
                execd[nexecd++] = pid;
            continue;
        }
        if (strstr(line, MARK_BEGIN)) { on = 1; continue; }
        if (strstr(line, MARK_END)) { on = 0; continue; }
        int skip = 0;
        for (int i = 0; i < nexecd; i++)
            skip |= execd[i] == pid;
        if (!on || skip)
            continue;
        int nr = gsyscall_nr(name);
        if (nr >= 0 && nr < NR_MAX)
            theirs[nr]++;
        if (strcmp(name, "execve") == 0 && returned_zero(line) && nexecd < 64)
            execd[nexecd++] = pid;
    }
    fclose(f);
    uint64_t ours[NR_MAX] = {0};
    f = fopen(mine, "r");
    if (!f) {
        printf("FAIL: the traced run wrote no counts\n");
        return 1;
    }
    char name[64];
    unsigned long v;
    while (fscanf(f, "%63s %lu", name, &v) == 2)
        ours[gsyscall_nr(name)] = v;
    fclose(f);
    int compared = 0;
    for (int i = 0; i < NR_MAX; i++) {
        if (ours[i] || theirs[i])
            compared++;
        CHECK(ours[i] == theirs[i], "%s: graft %lu, strace %lu", gsyscall_name(i),
              (unsigned long)ours[i], (unsigned long)theirs[i]);
    }
    printf("compared %d syscalls with strace\n", compared);
    CHECK(compared > 10, "too few syscalls compared");
    unlink(trace);
    unlink(mine);
    return 0;
}

int main(int argc, char **argv)
{
    my_pid = getpid();
    my_ppid = getppid();
    my_egid = getegid();
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "count";
    if (strcmp(mode, "strace-child"))
        iso_on = tiso_setup("syscall_hook_test");
    int seccomp = argc > 2 && strcmp(argv[2], "seccomp") == 0;
    if (strcmp(mode, "names") == 0)
        test_names();
    else if (strcmp(mode, "count") == 0)
        test_count(seccomp);
    else if (strcmp(mode, "deny") == 0)
        test_deny(seccomp);
    else if (strcmp(mode, "bpf") == 0)
        test_bpf();
    else if (strcmp(mode, "fast") == 0)
        test_fast();
    else if (strcmp(mode, "calls") == 0)
        test_calls();
    else if (strcmp(mode, "pair") == 0)
        test_pair();
    else if (strcmp(mode, "sled") == 0)
        test_sled();
    else if (strcmp(mode, "ids") == 0)
        test_ids(seccomp);
    else if (strcmp(mode, "strace") == 0)
    {
        char self[512];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        test_strace(self, argc > 2 ? argv[2] : "/usr/bin/strace");
    }
    else if (strcmp(mode, "strace-child") == 0)
        return strace_child(argv[2]);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (path_checks_skipped)
        printf("%d checks of which path ran skipped: isolated programs always take the C "
               "dispatcher\n", path_checks_skipped);
    printf("%s: %s\n", mode, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
