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
 *
 * Each check prints what differed; exit status 0 only if all passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/vm.h"

extern char **environ;

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

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
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, thread_main, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
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
    exp[n++] = (struct expect){SYS_getppid, THREADS * PER_THREAD + 50 + PER_THREAD};
    exp[n++] = (struct expect){SYS_getpgid, 3 * SIGNALS};
    exp[n++] = (struct expect){SYS_kill, SIGNALS};
    exp[n++] = (struct expect){SYS_getegid, 7};
    exp[n++] = (struct expect){SYS_vfork, 1};
    exp[n++] = (struct expect){SYS_execve, 2};
    exp[n++] = (struct expect){SYS_clone, 1};
    exp[n++] = (struct expect){SYS_clone3, THREADS + 1};
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
    install(seccomp);
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
    int seccomp = argc > 2 && strcmp(argv[2], "seccomp") == 0;
    if (strcmp(mode, "names") == 0)
        test_names();
    else if (strcmp(mode, "count") == 0)
        test_count(seccomp);
    else if (strcmp(mode, "deny") == 0)
        test_deny(seccomp);
    else if (strcmp(mode, "bpf") == 0)
        test_bpf();
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
    printf("%s: %s\n", mode, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
