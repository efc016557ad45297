/*
 * thread_park.c - moving threads out of the bytes a jump is about to cover.
 *
 * A jump over a function's entry covers more than one original instruction
 * when the first is shorter than 5 bytes (endbr64; push %rbp; mov %rsp,%rbp;
 * ...). A thread that was stopped between two of them - preempted, or
 * blocked in a page fault - would resume in the middle of the jump. So
 * once patch_text.c's int3 is in place (nobody new can enter) and before
 * the tail is written, every other thread that may be inside the displaced
 * bytes is sent a queued signal
 * with a marker; graft's handler moves the thread's instruction pointer to
 * the same instruction in the trampoline's relocated copy, which is
 * equivalent code, and acknowledges. Threads that /proc/self/task/TID/syscall
 * shows blocked at an address outside the bytes are left alone (no signal,
 * so no EINTR).
 *
 * The signal is a real-time one that nobody handles (graft takes the
 * highest free one at the first such patch), not SIGTRAP: a classic signal
 * is pending at most once, so a thread that hit the int3 while our SIGTRAP
 * was pending would lose its trap and then be "moved" as if it had run the
 * first instruction. Real-time signals queue, and the kernel delivers the
 * synchronous trap first.
 *
 * If a thread can neither be moved nor seen to be outside (it blocks the
 * signal while running, or no real-time signal is free), the site keeps
 * the int3 and becomes a trap hook, which needs no tail at all. Not seen:
 * a thread inside a signal handler whose interrupted context is in the
 * bytes (its registers are in a frame on its stack, not ours to read).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "attach/func_internal.h"

#define PING_TAG 0x67726674ull      /* "grft": high half of the marker */
#define PING_WAIT_NS 500000000L     /* give up (and use the int3) after this */

/* The one patch in progress (writers hold the attach lock); read by the
 * handler of every thread. gen is 0 between patches. */
static struct {
    _Atomic uint64_t gen;
    const struct gsite *site;
    int32_t *tids;                  /* threads asked to move */
    _Atomic int *acked;
    int n;
    _Atomic int stuck;              /* a thread inside but not at an instruction start */
    _Atomic int inflight;           /* handlers between their gen check and return */
} g_park;
static uint64_t g_park_gen;
static _Atomic uint64_t st_moved;
static int g_ping_sig;              /* 0: none chosen (yet) */

uint64_t gpark_threads_moved(void)
{
    return atomic_load_explicit(&st_moved, memory_order_relaxed);
}

/* Async-signal-safe: raw system calls and atomics only. */
static void on_ping(int sig, siginfo_t *si, void *ucv)
{
    uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
    if (si->si_code != SI_QUEUE || (v >> 32) != PING_TAG ||
        si->si_pid != (pid_t)syscall(SYS_getpid)) {
        /* Not ours: what the signal would have done without us. */
        signal(sig, SIG_DFL);
        syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), sig);
        return;
    }
    atomic_fetch_add(&g_park.inflight, 1);
    uint64_t gen = atomic_load(&g_park.gen);
    if (gen == 0 || (uint32_t)v != (uint32_t)gen) {
        atomic_fetch_sub(&g_park.inflight, 1);
        return;                     /* a late ping from a finished patch */
    }
    ucontext_t *uc = ucv;
    const struct gsite *s = g_park.site;
    uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    if (rip > s->addr && rip < s->addr + s->reloc_len) {
        uint32_t i = 0;
        while (i < s->n_inner && s->addr + s->inner_off[i] != rip)
            i++;
        if (i < s->n_inner) {
            uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(s->stub + s->inner_stub[i]);
            atomic_fetch_add_explicit(&st_moved, 1, memory_order_relaxed);
        } else {
            atomic_store(&g_park.stuck, 1);
        }
    }
    int32_t me = (int32_t)syscall(SYS_gettid);
    for (int i = 0; i < g_park.n; i++)
        if (g_park.tids[i] == me) {
            atomic_store_explicit(&g_park.acked[i], 1, memory_order_release);
            break;
        }
    atomic_fetch_sub(&g_park.inflight, 1);
}

/* The ping signal: still ours, or the highest real-time signal nobody
 * handles (taken now). 0 when there is none. */
static int ping_signal(void)
{
    struct sigaction cur;
    if (g_ping_sig > 0 && sigaction(g_ping_sig, NULL, &cur) == 0 &&
        (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_ping)
        return g_ping_sig;
    g_ping_sig = 0;
    for (int sig = SIGRTMAX; sig >= SIGRTMIN; sig--) {
        if (sigaction(sig, NULL, &cur) < 0 || cur.sa_handler != SIG_DFL ||
            (cur.sa_flags & SA_SIGINFO))
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_ping;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) == 0)
            return g_ping_sig = sig;
    }
    return 0;
}

/* The process's other threads, read before the int3 goes in (threads
 * created later start in libc's clone, never inside the bytes). */
int gpark_list_threads(int32_t **out, int *n_out)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -errno;
    int32_t self = (int32_t)syscall(SYS_gettid);
    int n = 0, cap = 16;
    int32_t *t = malloc(cap * sizeof(*t));
    struct dirent *de;
    while (t && (de = readdir(d)) != NULL) {
        int32_t tid = (int32_t)atoi(de->d_name);
        if (tid <= 0 || tid == self)
            continue;
        if (n == cap) {
            int32_t *nt = realloc(t, (cap *= 2) * sizeof(*t));
            if (!nt) {
                free(t);
                t = NULL;
                break;
            }
            t = nt;
        }
        t[n++] = tid;
    }
    closedir(d);
    if (!t)
        return -ENOMEM;
    *out = t;
    *n_out = n;
    return 0;
}

/* /proc/self/task/TID/NAME into buf (NUL-terminated): bytes read, 0 for
 * an empty file, -errno when it cannot be opened. */
static ssize_t read_task_file(int32_t tid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? n : 0;
}

/* Where the kernel says thread tid is: 1 = gone or blocked outside
 * (lo, hi), 0 = running or blocked inside (must be asked to move). */
static int thread_outside(int32_t tid, uint64_t lo, uint64_t hi)
{
    char buf[256];
    ssize_t n = read_task_file(tid, "syscall", buf, sizeof(buf));
    if (n < 0)
        return n == -ENOENT || n == -ESRCH;
    if (n == 0 || strncmp(buf, "running", 7) == 0)
        return 0;
    /* "NR args... sp pc" or "-1 sp pc": the user pc is the last field */
    char *last = strrchr(buf, ' ');
    if (!last)
        return 0;
    uint64_t pc = strtoull(last + 1, NULL, 16);
    return !(pc > lo && pc < hi);
}

/* 1 when thread tid has sig blocked (a ping would only stay pending). */
static int thread_blocks(int32_t tid, int sig)
{
    char buf[2048];
    if (read_task_file(tid, "status", buf, sizeof(buf)) <= 0)
        return 0;
    const char *p = strstr(buf, "\nSigBlk:");
    if (!p)
        return 0;
    unsigned long long mask = strtoull(p + 8, NULL, 16);
    return (mask >> (sig - 1)) & 1;
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* With the int3 at site->addr in place: make sure no other thread is
 * stopped inside the displaced bytes. 0 when none is (any that were have
 * been moved), else -1 with why[] saying which thread could not be. */
int gpark_threads_out(const struct gsite *site, const int32_t *tids, int n,
                      char *why, size_t why_len)
{
    uint64_t lo = site->addr, hi = site->addr + site->reloc_len;
    _Atomic int *acked = calloc(n ? n : 1, sizeof(*acked));
    int32_t *asked = malloc((n ? n : 1) * sizeof(*asked));
    if (!acked || !asked) {
        free(acked);
        free(asked);
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    int na = 0;
    for (int i = 0; i < n; i++)
        if (!thread_outside(tids[i], lo, hi))
            asked[na++] = tids[i];
    if (na == 0) {
        free(acked);
        free(asked);
        return 0;
    }
    int sig = ping_signal();
    if (!sig) {
        snprintf(why, why_len, "thread %d may be inside the first %u bytes and no real-time "
                 "signal is free to move it", (int)asked[0], site->reloc_len);
        free(acked);
        free(asked);
        return -1;
    }
    uint32_t gen = (uint32_t)++g_park_gen;
    if (gen == 0)
        gen = (uint32_t)++g_park_gen;
    g_park.site = site;
    g_park.tids = asked;
    g_park.acked = acked;
    g_park.n = na;
    atomic_store(&g_park.stuck, 0);
    atomic_store_explicit(&g_park.gen, gen, memory_order_release);

    pid_t pid = (pid_t)syscall(SYS_getpid);
    for (int i = 0; i < na; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        si.si_signo = sig;
        si.si_code = SI_QUEUE;
        si.si_pid = pid;
        si.si_uid = getuid();
        si.si_value.sival_ptr = (void *)(uintptr_t)(PING_TAG << 32 | gen);
        if (thread_blocks(asked[i], sig))
            continue;               /* left to the /proc checks below */
        if (syscall(SYS_rt_tgsigqueueinfo, pid, asked[i], sig, &si) < 0 && errno == ESRCH)
            atomic_store(&acked[i], 1);          /* it exited */
    }
    int rc = 0;
    long deadline = now_ns() + PING_WAIT_NS;
    for (int round = 0;; round++) {
        int left = -1;
        for (int i = 0; i < na; i++) {
            if (atomic_load_explicit(&acked[i], memory_order_acquire))
                continue;
            /* Every few rounds ask the kernel: gone, or blocked (with the
             * ping pending because the signal is blocked) outside the bytes. */
            if (round % 8 == 7 && thread_outside(asked[i], lo, hi)) {
                atomic_store(&acked[i], 1);
                continue;
            }
            left = i;
        }
        if (atomic_load(&g_park.stuck)) {
            snprintf(why, why_len, "a thread stopped inside the first %u bytes at no "
                     "instruction start", site->reloc_len);
            rc = -1;
            break;
        }
        if (left < 0)
            break;
        if (now_ns() > deadline) {
            snprintf(why, why_len, "thread %d may be inside the first %u bytes and does "
                     "not take signal %d", (int)asked[left], site->reloc_len, sig);
            rc = -1;
            break;
        }
        struct timespec ts = { 0, round < 16 ? 20000 : 1000000 };
        nanosleep(&ts, NULL);
    }
    /* Later pings see gen 0 and touch nothing; wait for handlers that
     * saw the old gen before freeing what they read. */
    atomic_store(&g_park.gen, 0);
    while (atomic_load(&g_park.inflight))
        sched_yield();
    g_park.n = 0;
    free(acked);
    free(asked);
    return rc;
}

