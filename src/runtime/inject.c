/*
 * inject.c - a small ptrace injector: make a running process dlopen() a
 * library.
 *
 * Sequence: PTRACE_SEIZE + PTRACE_INTERRUPT the main thread (other threads
 * keep running; dlopen takes its own locks), save its registers, find
 * dlopen in the libc it has mapped (/proc/PID/maps + the libc ELF .dynsym),
 * write the path below the red zone of its stack, and set up a call to
 * dlopen(path, RTLD_NOW) whose return address is 0: when dlopen returns the
 * thread faults at address 0, which we see as a SIGSEGV stop with rip == 0
 * and suppress. Then registers and stack bytes are restored and we detach.
 * orig_rax is set to -1 for the call so an interrupted system call is not
 * restarted into our call; restoring the saved registers restarts it.
 *
 * Every wait has a timeout and every step checks for the target exiting, so
 * the injector never hangs on a dying process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/inject.h"
#include "util/procmaps.h"

#ifndef RTLD_NOW
#define RTLD_NOW 2
#endif

struct target {
    pid_t pid;
    int timeout_ms;
    int mem_fd;
    int pending_sig;           /* a signal that stopped it first: re-deliver */
    struct user_regs_struct saved;
};

static int gone(struct graft_err *err, pid_t pid, const char *when)
{
    return graft_errf(err, -ESRCH, "inject: process %d exited during the attach (%s)",
                      (int)pid, when);
}

int ginject_check_access(pid_t pid, struct graft_err *err)
{
    char path[64];
    if (pid <= 0 || kill(pid, 0) < 0) {
        if (pid > 0 && errno == EPERM)
            return graft_errf(err, -EPERM, "inject: not allowed to signal pid %d "
                              "(another user's process: run as that user or root)", (int)pid);
        return graft_errf(err, -ESRCH, "inject: no such process %d", (int)pid);
    }
    int scope = 0;
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
    if (f) {
        if (fscanf(f, "%d", &scope) != 1)
            scope = 0;
        fclose(f);
    }
    /* CAP_SYS_PTRACE (bit 19) in our effective set? */
    int cap = 0;
    f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "CapEff:", 7) == 0) {
                unsigned long long v = strtoull(line + 7, NULL, 16);
                cap = (v >> 19) & 1;
            }
        fclose(f);
    }
    if (scope >= 3)
        return graft_errf(err, -EPERM, "inject: kernel.yama.ptrace_scope is 3: ptrace is "
                          "disabled until reboot");
    if (scope == 2 && !cap)
        return graft_errf(err, -EPERM, "inject: kernel.yama.ptrace_scope is 2: only "
                          "processes with CAP_SYS_PTRACE may attach (run as root)");
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return graft_errf(err, -ESRCH, "inject: no such process %d", (int)pid);
    uid_t ruid = (uid_t)-1;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "Uid:", 4) == 0)
            ruid = (uid_t)strtoul(line + 4, NULL, 10);
    fclose(f);
    if (!cap && ruid != getuid())
        return graft_errf(err, -EPERM, "inject: pid %d belongs to uid %u; attaching needs "
                          "the same user or CAP_SYS_PTRACE", (int)pid, (unsigned)ruid);
    if (scope == 1 && !cap)
        return graft_errf(err, -EPERM, "inject: kernel.yama.ptrace_scope is 1: only a parent "
                          "may attach (set it to 0: sysctl kernel.yama.ptrace_scope=0, "
                          "or the target calls prctl(PR_SET_PTRACER), or run as root)");
    return 0;
}

/* ---- finding dlopen in the target's libc --------------------------------- */

static int find_libc(pid_t pid, char *path, size_t len, uint64_t *base)
{
    char mp[64], line[PATH_MAX + 128];
    snprintf(mp, sizeof(mp), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(mp, "re");
    if (!f)
        return -ESRCH;
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        struct gprocmaps_line m;
        if (gprocmaps_parse(line, &m))
            continue;
        const char *p = m.path, *b = strrchr(p, '/');
        uint64_t lo = m.lo;
        b = b ? b + 1 : p;
        if (strncmp(b, "libc.so", 7) && strncmp(b, "libc-", 5))
            continue;
        if (!found || (strcmp(path, p) == 0 && lo < *base)) {
            if (!found)
                snprintf(path, len, "%s", p);
            if (strcmp(path, p) == 0 && (!found || lo < *base))
                *base = lo;
            found = 1;
        }
    }
    fclose(f);
    return found ? 0 : -ENOENT;
}

/* Address of the dynamic symbols names[i] in the libc file mapped at base. */
static int libc_symbols(pid_t pid, const char *path, uint64_t base,
                        const char *const *names, uint64_t *addrs, int n)
{
    char rooted[PATH_MAX + 32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {   /* the target may live in another mount namespace */
        snprintf(rooted, sizeof(rooted), "/proc/%d/root%s", (int)pid, path);
        fd = open(rooted, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return -ENOENT;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    size_t nph = 0;
    if (!e || elf_getphdrnum(e, &nph) < 0) {
        if (e)
            elf_end(e);
        close(fd);
        return -ENOEXEC;
    }
    uint64_t min_vaddr = UINT64_MAX;
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < min_vaddr)
            min_vaddr = ph.p_vaddr;
    }
    uint64_t bias = base - (min_vaddr & ~(uint64_t)4095);
    int got = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym s;
            if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF ||
                GELF_ST_TYPE(s.st_info) != STT_FUNC)
                continue;
            const char *nm = elf_strptr(e, sh.sh_link, s.st_name);
            for (int k = 0; nm && k < n; k++)
                if (!addrs[k] && strcmp(nm, names[k]) == 0) {
                    addrs[k] = bias + s.st_value;
                    got++;
                }
        }
    }
    elf_end(e);
    close(fd);
    return got == n ? 0 : -ENOENT;
}

/* ---- ptrace plumbing ------------------------------------------------------ */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Wait for the next stop of t->pid. 0 with *status, -ESRCH if it exited
 * (left unreaped for its parent, which may be our caller), -ETIMEDOUT. */
static int wait_stop(struct target *t, int *status)
{
    long end = now_ms() + t->timeout_ms;
    /* Poll, backing off from 50 us: most stops come within a few ms (the
     * target's dlopen), and a fixed 500 us step cost 250 us on average. */
    long step_ns = 50000;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        int r = waitid(P_PID, (id_t)t->pid, &si,
                       WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL);
        if (r < 0 && errno != EINTR)
            return -ESRCH;
        if (r == 0 && si.si_pid == t->pid) {
            if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
                return -ESRCH;
            if (waitpid(t->pid, status, __WALL) == t->pid) {
                if (WIFEXITED(*status) || WIFSIGNALED(*status))
                    return -ESRCH;
                return 0;
            }
        }
        if (now_ms() > end)
            return -ETIMEDOUT;
        struct timespec ts = { 0, step_ns };
        nanosleep(&ts, NULL);
        if (step_ns < 1000000)
            step_ns *= 2;
    }
}

static int mem_write(struct target *t, uint64_t addr, const void *buf, size_t n)
{
    return pwrite(t->mem_fd, buf, n, (off_t)addr) == (ssize_t)n ? 0 : -EFAULT;
}

static int mem_read(struct target *t, uint64_t addr, void *buf, size_t n)
{
    return pread(t->mem_fd, buf, n, (off_t)addr) == (ssize_t)n ? 0 : -EFAULT;
}

/* Call fn(a1, a2) in the stopped target with the stack at sp (already
 * below the red zone and our data); *ret gets rax. */
static int remote_call(struct target *t, uint64_t fn, uint64_t a1, uint64_t a2,
                       uint64_t sp, uint64_t *ret, struct graft_err *err)
{
    struct user_regs_struct r = t->saved;
    uint64_t zero = 0;
    sp &= ~(uint64_t)15;
    sp -= 8;                               /* as if `call` pushed the return */
    if (mem_write(t, sp, &zero, 8) < 0)
        return graft_errf(err, -EFAULT, "inject: cannot write the stack of pid %d", (int)t->pid);
    r.rip = fn;
    r.rdi = a1;
    r.rsi = a2;
    r.rsp = sp;
    r.rax = 0;
    r.orig_rax = (unsigned long long)-1;   /* no syscall restart into our call */
    if (ptrace(PTRACE_SETREGS, t->pid, NULL, &r) < 0)
        return errno == ESRCH ? gone(err, t->pid, "setting registers")
                              : graft_errf(err, -errno, "inject: PTRACE_SETREGS: %s", strerror(errno));
    int sig = 0;
    for (;;) {
        if (ptrace(PTRACE_CONT, t->pid, NULL, (void *)(long)sig) < 0)
            return gone(err, t->pid, "running the call");
        int st;
        int rc = wait_stop(t, &st);
        if (rc == -ESRCH)
            return gone(err, t->pid, "inside the injected call");
        if (rc == -ETIMEDOUT) {
            /* stop it again so the caller can restore its registers */
            ptrace(PTRACE_INTERRUPT, t->pid, NULL, NULL);
            if (wait_stop(t, &st) == -ESRCH)
                return gone(err, t->pid, "inside the injected call");
            return graft_errf(err, -ETIMEDOUT, "inject: the call in pid %d did not return "
                              "within %d ms", (int)t->pid, t->timeout_ms);
        }
        sig = 0;
        if ((st >> 16) == PTRACE_EVENT_STOP)
            continue;                      /* group-stop or our interrupt: go on */
        if (WSTOPSIG(st) == SIGSEGV) {
            struct user_regs_struct now;
            if (ptrace(PTRACE_GETREGS, t->pid, NULL, &now) < 0)
                return gone(err, t->pid, "reading the result");
            if (now.rip == 0) {
                *ret = now.rax;
                return 0;
            }
        }
        sig = WSTOPSIG(st);                /* not ours: deliver it */
    }
}

static void restore_and_detach(struct target *t, uint64_t lo, const void *saved_stack, size_t n)
{
    if (saved_stack)
        mem_write(t, lo, saved_stack, n);
    ptrace(PTRACE_SETREGS, t->pid, NULL, &t->saved);
    ptrace(PTRACE_DETACH, t->pid, NULL, (void *)(long)t->pending_sig);
}

int ginject_load_library_opts(pid_t pid, const char *so_path,
                              const struct ginject_opts *opts, struct graft_err *err)
{
    struct target t = { .pid = pid, .timeout_ms = 5000, .mem_fd = -1 };
    char abs[PATH_MAX], libc[PATH_MAX] = "";
    uint64_t libc_base = 0;
    int rc;

    if (opts && opts->timeout_ms > 0)
        t.timeout_ms = opts->timeout_ms;
    if (!so_path || !realpath(so_path, abs))
        return graft_errf(err, -ENOENT, "inject: library %s not found", so_path ? so_path : "(null)");
    if ((rc = ginject_check_access(pid, err)) < 0)
        return rc;
    if ((rc = find_libc(pid, libc, sizeof(libc), &libc_base)) < 0)
        return rc == -ESRCH ? graft_errf(err, rc, "inject: no such process %d", (int)pid)
                            : graft_errf(err, rc, "inject: pid %d has no libc mapped "
                                         "(static binary?); cannot call dlopen", (int)pid);
    const char *names[2] = { "dlopen", "dlerror" };
    uint64_t fns[2] = { 0, 0 };
    if (libc_symbols(pid, libc, libc_base, names, fns, 2) < 0)
        return graft_errf(err, -ENOENT, "inject: dlopen/dlerror not found in %s of pid %d "
                          "(glibc older than 2.34 keeps them in libdl)", libc, (int)pid);

    if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0) {
        int e = errno;
        if (e == ESRCH)
            return graft_errf(err, -ESRCH, "inject: no such process %d", (int)pid);
        return graft_errf(err, -e, "inject: PTRACE_SEIZE pid %d: %s%s", (int)pid, strerror(e),
                          e == EPERM ? " (check kernel.yama.ptrace_scope, CAP_SYS_PTRACE, "
                                       "or whether another debugger is attached)" : "");
    }
    if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        return gone(err, pid, "interrupting");
    }
    int st;
    rc = wait_stop(&t, &st);
    if (rc < 0) {
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        return rc == -ESRCH ? gone(err, pid, "stopping it")
                            : graft_errf(err, rc, "inject: pid %d did not stop within %d ms",
                                         (int)pid, t.timeout_ms);
    }
    if ((st >> 16) != PTRACE_EVENT_STOP && WSTOPSIG(st) != SIGTRAP)
        t.pending_sig = WSTOPSIG(st);      /* a real signal got there first */
    if (ptrace(PTRACE_GETREGS, pid, NULL, &t.saved) < 0) {
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        return gone(err, pid, "reading registers");
    }
    char mp[64];
    snprintf(mp, sizeof(mp), "/proc/%d/mem", (int)pid);
    t.mem_fd = open(mp, O_RDWR | O_CLOEXEC);
    if (t.mem_fd < 0) {
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        return graft_errf(err, -EPERM, "inject: cannot open %s: %s", mp, strerror(errno));
    }

    /* Scratch below the red zone: [lo, hi) holds the path; the call's frame
     * goes below lo. Save it all to put back afterwards. */
    size_t plen = strlen(abs) + 1;
    uint64_t hi = t.saved.rsp - 128;
    uint64_t lo = (hi - plen) & ~(uint64_t)15;
    uint64_t save_lo = lo - 64;
    size_t save_n = hi - save_lo;
    char *saved_stack = malloc(save_n);
    if (!saved_stack || mem_read(&t, save_lo, saved_stack, save_n) < 0) {
        free(saved_stack);
        restore_and_detach(&t, 0, NULL, 0);
        close(t.mem_fd);
        return graft_errf(err, -EFAULT, "inject: cannot read the stack of pid %d", (int)pid);
    }
    uint64_t handle = 0;
    rc = mem_write(&t, lo, abs, plen);
    if (rc < 0)
        graft_errf(err, rc, "inject: cannot write the stack of pid %d", (int)pid);
    else
        rc = remote_call(&t, fns[0], lo, RTLD_NOW, lo - 16, &handle, err);
    if (rc == 0 && handle == 0) {
        /* dlopen failed: fetch dlerror() while we still hold the thread. */
        uint64_t msg = 0;
        char text[512] = "unknown reason";
        if (remote_call(&t, fns[1], 0, 0, lo - 16, &msg, NULL) == 0 && msg) {
            /* byte by byte: the string may end just before an unmapped page */
            size_t i = 0;
            for (; i < sizeof(text) - 1 && mem_read(&t, msg + i, text + i, 1) == 0; i++)
                if (!text[i])
                    break;
            text[i] = '\0';
        }
        rc = graft_errf(err, -ELIBBAD, "inject: dlopen(\"%s\") failed in pid %d: %s", abs,
                        (int)pid, text);
    }
    if (rc == -ESRCH) {
        free(saved_stack);
        close(t.mem_fd);
        return rc;
    }
    restore_and_detach(&t, save_lo, saved_stack, save_n);
    free(saved_stack);
    close(t.mem_fd);
    return rc;
}

int ginject_load_library(pid_t pid, const char *so_path, struct graft_err *err)
{
    return ginject_load_library_opts(pid, so_path, NULL, err);
}
