/*
 * sample.c - sampling programs (perf_event programs on a CPU clock: the
 * kernel's `profile:` probes) run inside this process, on the interrupted
 * thread, with its registers as the program's pt_regs.
 *
 * The kernel samples from the timer interrupt. Here every thread of the
 * process gets a POSIX timer on its own CPU-time clock (the thread CPU
 * clock of its tid, created by the sampler thread; SIGEV_THREAD_ID) that
 * sends GSAMPLE_SIGNAL to that very thread every period of CPU time it
 * uses: a thread running flat out is sampled F times a second, as the
 * kernel's per-CPU sampling hits it, and a sleeping one not at all. The
 * handler builds struct bpf_perf_event_data from the signal's ucontext and
 * runs the program there (bpf_get_stackid/ustack walk the interrupted
 * thread's stack).
 *
 * Rules that keep the target safe:
 *  - The signal is taken only if the process left it at SIG_DFL (otherwise
 *    the start fails with EBUSY: graft never takes a signal a program
 *    uses); the disposition is checked again at every rescan, and if the
 *    host installed its own handler since, every timer is deleted (said on
 *    stderr), so the host's handler is not fed graft's signals.
 *  - A sample that lands while the thread runs a graft program or helper
 *    (a hook, a syscall program) is dropped (counted as missed), as the
 *    kernel's recursion guard drops it: maps' locks are never re-entered.
 *    The thread's helper run state is saved and restored around the run.
 *  - SA_RESTART, errno saved; graft's own threads (named "graft-*") and
 *    threads that block the signal are never sampled.
 *  - Groups are never freed; a signal still queued for a stopped group
 *    finds it dead (generation check) and returns.
 * POSIX CPU timers are checked at the scheduler tick, so a thread gets at
 * most CONFIG_HZ samples a second (the kernel's perf timer is an
 * hrtimer): shorter periods' overruns are counted as missed.
 * The kernel checks a thread's CPU timers only at a tick that lands while
 * that thread is the one running. Under contention (another process's
 * threads preempting it between ticks) its expiries went unseen for up to
 * 150 ms of its CPU time, and a thread that blocks right after an unseen
 * expiry keeps it unseen while it sleeps: those periods were neither
 * sampled nor counted. So every timer is armed at a known phase
 * (TIMER_ABSTIME: expiries at first + k * period) and every signal adds
 * its 1 + si_overrun periods to the thread's count; a timer the scanner
 * finds expired-but-unfired (timer_gettime: 1 ns) at two scans in a row
 * with no period counted in between is re-armed at its pending expiry
 * (first + count * period, in the past), which makes the kernel fire it
 * from the scanner at once (posix_cpu_timer_set), and the signal's
 * si_overrun again counts every period since: nothing is lost, a late
 * sample is at most two scans late.
 * Threads that start later get their timer at the next rescan (every
 * GSAMPLE_RESCAN_MS). Timers do not survive exec (the kernel deletes them)
 * nor fork (the child's sampler starts anew from the atfork handler).
 * With isolation (PKU) on, sampling is refused (not implemented).
 */
#define _GNU_SOURCE
#include "attach/attach.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "attach/hook_mode.h"
#include "attach/syscall_hook.h"
#include "attach/thread_state.h"

#define GSAMPLE_GROUPS     64
#define GSAMPLE_CPUS       256     /* links (one per CPU event) a group holds */
#define GSAMPLE_THREADS    4096    /* timers per group */
#define GSAMPLE_RESCAN_MS  50

/* struct bpf_perf_event_data */
struct perf_event_ctx {
    struct graft_pt_regs regs;
    uint64_t sample_period;
    uint64_t addr;
};

struct sample_thread {
    int32_t tid;               /* 0: a free entry (entries keep their index: signals carry it) */
    int timer;                 /* kernel timer id */
    uint64_t first_ns;         /* the first expiry on the thread's CPU clock */
    _Atomic uint64_t periods;  /* periods its signals accounted for (1 + si_overrun each) */
    uint64_t seen_periods;     /* periods at the scan that found it overdue */
    int overdue;               /* that scan found it expired but not fired */
};

/* Links of one program at one period share the timers: one per thread. */
struct sample_group {
    _Atomic uint32_t gen;      /* bumped when the group stops */
    _Atomic int live;
    _Atomic int running;       /* handlers inside the program now */
    gsys_handler fn;
    uint64_t period_ns;
    struct { int cpu; uint64_t cookie; int used; } ents[GSAMPLE_CPUS];
    int n_ents;
    struct sample_thread threads[GSAMPLE_THREADS];
    int n_threads;             /* entries in use or freed: [0, n_threads) */
};

struct gsample {
    struct sample_group *g;
    int ent;
};

static struct sample_group g_groups[GSAMPLE_GROUPS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_handler_set;          /* our handler is installed */
static int g_disabled;             /* the host took the signal: sampling stopped */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_t g_scanner;
static int g_scanner_running;      /* started once; idles while no group lives */
static _Atomic uint64_t g_missed;
static _Atomic uint64_t g_kicked;  /* overdue timers fired by the scanner */

/* A signal's si_value: group slot, thread entry, group generation. */
#define SV_SLOT_BITS 6
#define SV_IDX_BITS  12
#define SV_GEN_MASK  ((1u << (32 - SV_SLOT_BITS - SV_IDX_BITS)) - 1)
_Static_assert(GSAMPLE_GROUPS <= (1 << SV_SLOT_BITS) && GSAMPLE_THREADS <= (1 << SV_IDX_BITS), "si_value fields");

/* ---- the signal handler ---- */

static void regs_from(struct graft_pt_regs *r, const ucontext_t *uc)
{
    const greg_t *g = uc->uc_mcontext.gregs;
    r->r15 = (uint64_t)g[REG_R15]; r->r14 = (uint64_t)g[REG_R14];
    r->r13 = (uint64_t)g[REG_R13]; r->r12 = (uint64_t)g[REG_R12];
    r->bp = (uint64_t)g[REG_RBP];  r->bx = (uint64_t)g[REG_RBX];
    r->r11 = (uint64_t)g[REG_R11]; r->r10 = (uint64_t)g[REG_R10];
    r->r9 = (uint64_t)g[REG_R9];   r->r8 = (uint64_t)g[REG_R8];
    r->ax = (uint64_t)g[REG_RAX];  r->cx = (uint64_t)g[REG_RCX];
    r->dx = (uint64_t)g[REG_RDX];  r->si = (uint64_t)g[REG_RSI];
    r->di = (uint64_t)g[REG_RDI];  r->orig_ax = (uint64_t)-1;
    r->ip = (uint64_t)g[REG_RIP];  r->cs = 0x33;
    r->flags = (uint64_t)g[REG_EFL]; r->sp = (uint64_t)g[REG_RSP];
    r->ss = 0x2b;
}

static void on_sample(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    if (si->si_code != SI_TIMER)
        return;                            /* someone's kill(): not a sample */
    uint32_t v = (uint32_t)si->si_value.sival_int;
    uint32_t slot = v & ((1u << SV_SLOT_BITS) - 1), idx = (v >> SV_SLOT_BITS) & ((1u << SV_IDX_BITS) - 1),
             gen = v >> (SV_SLOT_BITS + SV_IDX_BITS);
    if (slot >= GSAMPLE_GROUPS)
        return;
    struct sample_group *g = &g_groups[slot];
    int saved_errno = errno;
    atomic_fetch_add_explicit(&g->running, 1, memory_order_acq_rel);
    if (!atomic_load_explicit(&g->live, memory_order_acquire) ||
        (atomic_load_explicit(&g->gen, memory_order_acquire) & SV_GEN_MASK) != gen) {
        atomic_fetch_sub_explicit(&g->running, 1, memory_order_release);
        errno = saved_errno;
        return;
    }
    /* The periods this signal stands for: what the scanner's re-arm of an
     * overdue timer starts from. */
    uint64_t periods = 1 + (uint64_t)(si->si_overrun > 0 ? si->si_overrun : 0);
    atomic_fetch_add_explicit(&g->threads[idx].periods, periods, memory_order_relaxed);
    struct gthread *t = gthread_self();
    if (gsys_in_hook || (t && gthread_in_handlers(t))) {
        atomic_fetch_add_explicit(&g_missed, periods, memory_order_relaxed);
        atomic_fetch_sub_explicit(&g->running, 1, memory_order_release);
        errno = saved_errno;
        return;
    }
    int cpu = sched_getcpu();
    uint64_t cookie = 0;
    int found = 0;
    for (int i = 0; i < g->n_ents && !found; i++)
        if (g->ents[i].used && (g->ents[i].cpu < 0 || g->ents[i].cpu == cpu)) {
            cookie = g->ents[i].cookie;
            found = 1;
        }
    /* Periods shorter than the scheduler tick expire several times per
     * signal (POSIX CPU timers are checked at the tick): one run, the rest
     * counted as missed. */
    if (si->si_overrun > 0)
        atomic_fetch_add_explicit(&g_missed, (uint64_t)si->si_overrun, memory_order_relaxed);
    if (found) {
        struct perf_event_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        regs_from(&ctx.regs, ucv);
        ctx.sample_period = g->period_ns;
        struct ghelper_run saved = ghelper_run_tls;
        ghelper_run_tls = (struct ghelper_run){ .ctx = &ctx, .cookie = cookie, .regs = &ctx.regs,
                                                 .func_nargs = 6 };
        gsys_in_hook = 1;                  /* helpers' syscalls run no programs */
        g->fn(&ctx, sizeof(ctx));
        gsys_in_hook = 0;
        ghelper_run_tls = saved;
    }
    atomic_fetch_sub_explicit(&g->running, 1, memory_order_release);
    errno = saved_errno;
}

/* ---- timers ---- */

static struct timespec ts_of(uint64_t ns)
{
    return (struct timespec){ (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
}

/* Arm timer kid of thread entry e to expire at `at` on the thread's CPU
 * clock, then every period. */
static int arm_at(const struct sample_group *g, int kid, uint64_t at)
{
    struct itimerspec its = { .it_interval = ts_of(g->period_ns), .it_value = ts_of(at) };
    return syscall(SYS_timer_settime, kid, TIMER_ABSTIME, &its, NULL) == 0 ? 0 : -errno;
}

/* A timer on the CPU clock of thread tid for entry idx of group g. */
static int thread_timer(struct sample_group *g, int slot, int idx, int32_t tid)
{
    /* The CPU-time clock of thread tid (glibc's make_thread_cpuclock). */
    clockid_t clk = (clockid_t)((~(unsigned)tid << 3) | 6);
    struct timespec now;
    if (clock_gettime(clk, &now) != 0)
        return -errno;
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = GSAMPLE_SIGNAL;
    sev.sigev_value.sival_int = (int)((uint32_t)slot | (uint32_t)idx << SV_SLOT_BITS |
                                      (atomic_load(&g->gen) & SV_GEN_MASK) << (SV_SLOT_BITS + SV_IDX_BITS));
    sev._sigev_un._tid = tid;
    int kid;
    if (syscall(SYS_timer_create, clk, &sev, &kid) != 0)
        return -errno;
    struct sample_thread *e = &g->threads[idx];
    e->first_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec + g->period_ns;
    atomic_store(&e->periods, 0);
    e->overdue = 0;
    int rc = arm_at(g, kid, e->first_ns);
    if (rc < 0) {
        syscall(SYS_timer_delete, kid);
        return rc;
    }
    e->timer = kid;
    e->tid = tid;
    return 0;
}

/* A free entry of g (a thread's timer goes there), or -1. */
static int free_entry(struct sample_group *g)
{
    for (int i = 0; i < g->n_threads; i++)
        if (!g->threads[i].tid)
            return i;
    return g->n_threads < GSAMPLE_THREADS ? g->n_threads : -1;
}

/* Give thread tid a timer in group g; 0 or -errno (counted, said once). */
static int add_thread(struct sample_group *g, int slot, int32_t tid)
{
    int idx = free_entry(g);
    if (idx < 0)
        return -E2BIG;
    int rc = thread_timer(g, slot, idx, tid);
    if (rc == 0) {
        if (idx == g->n_threads)
            g->n_threads++;
        return 0;
    }
    /* Not silent: a thread without a timer is a thread never sampled. */
    static _Atomic int said;
    if (rc != -EINVAL && !atomic_exchange(&said, 1))   /* EINVAL: it exited meanwhile */
        fprintf(stderr, "graft-agent[%d]: sampling: no CPU-time timer for thread %d: %s (retried every %d ms)\n",
                getpid(), (int)tid, strerror(-rc), GSAMPLE_RESCAN_MS);
    return rc;
}

/* The kernel looks at a thread's CPU timers only at a tick that finds the
 * thread running: fire the one that expired unseen (see the top). */
static void kick_if_overdue(struct sample_group *g, struct sample_thread *e)
{
    struct itimerspec cur;
    if (syscall(SYS_timer_gettime, e->timer, &cur) != 0)
        return;
    if (cur.it_value.tv_sec != 0 || cur.it_value.tv_nsec != 1) {   /* 1 ns: "expired, not fired yet" */
        e->overdue = 0;
        return;
    }
    uint64_t periods = atomic_load_explicit(&e->periods, memory_order_relaxed);
    if (!e->overdue || periods != e->seen_periods) {
        e->overdue = 1;                    /* give the tick (and a queued signal) one scan */
        e->seen_periods = periods;
        return;
    }
    /* Still unseen a scan later and no signal since: its pending expiry is
     * first + periods * period, in the past, so this fires it now. */
    if (arm_at(g, e->timer, e->first_ns + periods * g->period_ns) == 0)
        atomic_fetch_add_explicit(&g_kicked, 1, memory_order_relaxed);
    e->overdue = 0;
}

static int graft_thread(int32_t tid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;                          /* gone */
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "graft-", 6) == 0;
}

/* The disposition of the signal is still ours. Under g_lock. */
static int still_ours(void)
{
    struct sigaction cur;
    if (sigaction(GSAMPLE_SIGNAL, NULL, &cur) != 0)
        return 0;
    return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sample;
}

static void group_delete_timers(struct sample_group *g)
{
    for (int i = 0; i < g->n_threads; i++)
        if (g->threads[i].tid)
            syscall(SYS_timer_delete, g->threads[i].timer);
    g->n_threads = 0;
}

/* Give every thread a timer, drop those of threads gone. Under g_lock. */
static void rescan_locked(void)
{
    if (g_disabled)
        return;
    if (g_handler_set && !still_ours()) {
        g_disabled = 1;
        for (int s = 0; s < GSAMPLE_GROUPS; s++)
            if (atomic_load(&g_groups[s].live))
                group_delete_timers(&g_groups[s]);
        fprintf(stderr, "graft-agent[%d]: sampling stopped: the process installed its own handler for signal %d, "
                        "which graft's sampling timers used\n", getpid(), GSAMPLE_SIGNAL);
        return;
    }
    int32_t tids[GSAMPLE_THREADS];
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && n < GSAMPLE_THREADS)
        if (de->d_name[0] != '.')
            tids[n++] = (int32_t)atoi(de->d_name);
    closedir(d);
    for (int s = 0; s < GSAMPLE_GROUPS; s++) {
        struct sample_group *g = &g_groups[s];
        if (!atomic_load(&g->live))
            continue;
        for (int i = 0; i < g->n_threads; i++) {
            struct sample_thread *e = &g->threads[i];
            if (!e->tid)
                continue;
            int alive = 0;
            for (int j = 0; j < n && !alive; j++)
                alive = tids[j] == e->tid;
            if (alive) {
                kick_if_overdue(g, e);
            } else {
                syscall(SYS_timer_delete, e->timer);
                e->tid = 0;
            }
        }
        while (g->n_threads > 0 && !g->threads[g->n_threads - 1].tid)
            g->n_threads--;
        for (int j = 0; j < n; j++) {
            int known = 0;
            for (int i = 0; i < g->n_threads && !known; i++)
                known = g->threads[i].tid == tids[j];
            if (!known && !graft_thread(tids[j]))
                add_thread(g, s, tids[j]);
        }
    }
}

static int any_live(void)
{
    for (int s = 0; s < GSAMPLE_GROUPS; s++)
        if (atomic_load(&g_groups[s].live))
            return 1;
    return 0;
}

static void *scanner(void *arg)
{
    (void)arg;
    gsys_ignore_this_thread();
    prctl(PR_SET_NAME, "graft-sampler", 0, 0, 0);
    pthread_mutex_lock(&g_lock);
    for (;;) {
        while (!any_live() || g_disabled)
            pthread_cond_wait(&g_wake, &g_lock);
        rescan_locked();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GSAMPLE_RESCAN_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g_wake, &g_lock, &ts);
    }
    return NULL;
}

static int start_scanner(void)
{
    if (g_scanner_running) {
        pthread_cond_signal(&g_wake);
        return 0;
    }
    sigset_t all, old;
    gattach_async_signals(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* never sampled, never the host's signals */
    int rc = pthread_create(&g_scanner, NULL, scanner, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        /* Named before the caller's rescan (it holds g_lock, which the new
         * thread waits for): the scan never gives the sampler a timer. */
        pthread_setname_np(g_scanner, "graft-sampler");
        pthread_detach(g_scanner);
        g_scanner_running = 1;
    }
    return -rc;
}

void gattach_async_signals(sigset_t *set)
{
    sigfillset(set);
    static const int sync_sigs[] = { SIGTRAP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS };
    for (size_t i = 0; i < sizeof(sync_sigs) / sizeof(sync_sigs[0]); i++)
        sigdelset(set, sync_sigs[i]);
}

/* A forked child has no timers (not inherited) and no scanner thread. */
static void atfork_child(void)
{
    pthread_mutex_init(&g_lock, NULL);
    pthread_cond_init(&g_wake, NULL);
    g_scanner_running = 0;
    for (int s = 0; s < GSAMPLE_GROUPS; s++)
        g_groups[s].n_threads = 0;
    if (!any_live() || g_disabled)
        return;
    /* The forking thread, the child's only one, is sampled from here on,
     * not from whenever the new scanner thread first gets a CPU. */
    char comm[16] = "";
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    if (strncmp(comm, "graft-", 6) != 0)
        for (int s = 0; s < GSAMPLE_GROUPS; s++)
            if (atomic_load(&g_groups[s].live))
                add_thread(&g_groups[s], s, (int32_t)syscall(SYS_gettid));
    start_scanner();
}

int gsample_start(gsys_handler fn, uint64_t cookie, uint64_t period_ns, int cpu, struct gsample **out,
                  struct graft_err *err)
{
    if (!fn || !period_ns)
        return graft_errf(err, -EINVAL, "sampling: no program or a zero period");
    if (gattach_iso_on())
        return graft_errf(err, -ENOTSUP, "sampling (profile) programs are not supported with isolation (PKU) on");
    if (period_ns < 100000)
        period_ns = 100000;   /* at most 10 kHz of a thread's CPU time */
    struct gsample *h = calloc(1, sizeof(*h));
    if (!h)
        return graft_errf(err, -ENOMEM, "sampling: out of memory");
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    if (g_disabled) {
        rc = graft_errf(err, -EBUSY, "sampling: signal %d was taken by the process", GSAMPLE_SIGNAL);
        goto out;
    }
    if (!g_handler_set) {
        struct sigaction cur;
        if (sigaction(GSAMPLE_SIGNAL, NULL, &cur) != 0 || (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler != SIG_DFL)) {
            rc = graft_errf(err, -EBUSY, "sampling needs signal %d (SIGRTMAX-%d), which the process already "
                            "handles: graft does not take a signal a program uses", GSAMPLE_SIGNAL,
                            SIGRTMAX - GSAMPLE_SIGNAL);
            goto out;
        }
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sample;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigfillset(&sa.sa_mask);
        if (sigaction(GSAMPLE_SIGNAL, &sa, NULL) != 0) {
            rc = graft_errf(err, -errno, "sampling: sigaction(%d): %s", GSAMPLE_SIGNAL, strerror(errno));
            goto out;
        }
        g_handler_set = 1;
        static int forked;
        if (!forked++)
            pthread_atfork(NULL, NULL, atfork_child);
    }
    struct sample_group *g = NULL;
    int free_slot = -1;
    for (int s = 0; s < GSAMPLE_GROUPS && !g; s++) {
        if (atomic_load(&g_groups[s].live) && g_groups[s].fn == fn && g_groups[s].period_ns == period_ns)
            g = &g_groups[s];
        else if (!atomic_load(&g_groups[s].live) && free_slot < 0)
            free_slot = s;
    }
    if (!g) {
        if (free_slot < 0) {
            rc = graft_errf(err, -E2BIG, "sampling: more than %d programs", GSAMPLE_GROUPS);
            goto out;
        }
        g = &g_groups[free_slot];
        g->fn = fn;
        g->period_ns = period_ns;
        g->n_ents = 0;
        g->n_threads = 0;
        atomic_store(&g->live, 1);
    }
    int e = 0;
    while (e < g->n_ents && g->ents[e].used)
        e++;
    if (e == GSAMPLE_CPUS) {
        rc = graft_errf(err, -E2BIG, "sampling: more than %d events of one program", GSAMPLE_CPUS);
        goto out;
    }
    g->ents[e].cpu = cpu;
    g->ents[e].cookie = cookie;
    __atomic_store_n(&g->ents[e].used, 1, __ATOMIC_RELEASE);
    if (e == g->n_ents)
        __atomic_store_n(&g->n_ents, e + 1, __ATOMIC_RELEASE);
    h->g = g;
    h->ent = e;
    if ((rc = start_scanner()) < 0) {
        graft_errf(err, rc, "sampling: cannot start the sampler thread");
        __atomic_store_n(&g->ents[e].used, 0, __ATOMIC_RELEASE);
        if (g->n_threads == 0 && e == 0) {   /* the group was made for this link */
            atomic_fetch_add(&g->gen, 1);
            atomic_store(&g->live, 0);
        }
        goto out;
    }
    rescan_locked();
out:
    pthread_mutex_unlock(&g_lock);
    if (rc < 0) {
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void gsample_stop(struct gsample *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&g_lock);
    struct sample_group *g = h->g;
    __atomic_store_n(&g->ents[h->ent].used, 0, __ATOMIC_RELEASE);
    int left = 0;
    for (int i = 0; i < g->n_ents; i++)
        left += g->ents[i].used;
    if (!left) {
        atomic_fetch_add(&g->gen, 1);
        atomic_store(&g->live, 0);
        group_delete_timers(g);
        /* no handler may still run the program when this returns */
        while (atomic_load_explicit(&g->running, memory_order_acquire))
            sched_yield();
    }
    pthread_mutex_unlock(&g_lock);
    free(h);
}

/* Samples dropped: inside a graft program, or overruns of a period shorter than the tick. */
uint64_t gsample_missed(void)
{
    return atomic_load(&g_missed);
}

/* Expired timers the kernel had not seen, fired by the scanner. */
uint64_t gsample_kicked(void)
{
    return atomic_load(&g_kicked);
}
