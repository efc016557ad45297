/*
 * sample_test.c - sampling programs (src/attach/sample.c) and the
 * tracepoints emulated from syscalls (src/attach/sys_events.c).
 *
 *   sample_test SCENARIO
 *
 * sample   a spinning thread is sampled in tw-like code with its own
 *          registers, a sleeping one is not; the cookie and context reach
 *          the handler; after gsample_stop nothing runs
 * fork     a forked child is sampled too (its timers start anew)
 * busy     the process handles GSAMPLE_SIGNAL: gsample_start is EBUSY and
 *          the process's handler sees no signal
 * taken    the process installs its own handler while sampled: sampling
 *          stops, the host's handler gets no timer signals afterwards
 * nested   samples landing inside a running hook handler are dropped
 * unseen   a timer that expired unseen by the kernel (no tick found the
 *          thread running since) before the thread went to sleep is
 *          fired by the sampler thread: its period is not lost
 * isolation  with isolation on (GRAFT_TEST_ISOLATION, run by pku_suite):
 *          gsample_start is refused with ENOTSUP and one clear line, and
 *          takes nothing (the signal stays SIG_DFL)
 * events   signal_generate records of kill/tkill/tgkill (caught, ignored,
 *          pending), none for signal 0 or a failing kill;
 *          sched_process_exit and the parent's SIGCHLD in a child that exits
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach.h"
#include "tiso.h"

static int failures;
#define CHECK(c, ...)                                                        \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);     \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static volatile unsigned long sink;

__attribute__((noinline, aligned(64))) void spin_work(unsigned long n)
{
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        __asm__ volatile("" : "+r"(x));
    }
    sink = x;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ms of this thread's CPU time (what the timers count), however loaded the machine */
static void spin_ms(unsigned ms)
{
    uint64_t end = cpu_ns() + ms * 1000000ull;
    while (cpu_ns() < end)
        spin_work(100000);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep (wall time) until *count reaches want or ms pass: signals (the
 * samples themselves) interrupt nanosleep. */
static void settle(_Atomic int *count, uint64_t (*missed)(void), int want, unsigned ms)
{
    uint64_t end = mono_ns() + ms * 1000000ull;
    while (mono_ns() < end && atomic_load(count) + (int)missed() < want) {
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
}

/* ---- the "program": records what it was given ---- */

struct perf_ctx {
    struct graft_pt_regs regs;
    uint64_t sample_period;
    uint64_t addr;
};

static _Atomic int samples, in_spin, bad_ctx, bad_cookie, sleeper_samples, nested_seen;
static _Atomic int32_t sleeper_tid;
static _Atomic int in_hook_handler;
static uint64_t want_cookie = 0x5a5a;
#define MAX_IPS 512
static uint64_t sample_ips[MAX_IPS];   /* the interrupted ips, in order */

static uint64_t on_sample(void *ctx, uint64_t len)
{
    const struct perf_ctx *c = ctx;
    int k = atomic_fetch_add(&samples, 1);
    if (k < MAX_IPS)
        sample_ips[k] = c->regs.ip;
    if (len != sizeof(*c) || ghelper_run_state()->ctx != ctx || ghelper_run_state()->regs != &c->regs ||
        c->sample_period != 10000000)
        atomic_fetch_add(&bad_ctx, 1);
    if (ghelper_run_state()->cookie != want_cookie)
        atomic_fetch_add(&bad_cookie, 1);
    if (c->regs.ip - (uint64_t)(uintptr_t)spin_work < 128)   /* spin_work is ~40 bytes */
        atomic_fetch_add(&in_spin, 1);
    if ((int32_t)syscall(SYS_gettid) == atomic_load(&sleeper_tid))
        atomic_fetch_add(&sleeper_samples, 1);
    if (atomic_load(&in_hook_handler))
        atomic_fetch_add(&nested_seen, 1);
    return 0;
}

static void *sleeper(void *arg)
{
    (void)arg;
    atomic_store(&sleeper_tid, (int32_t)syscall(SYS_gettid));
    struct timespec ts = { 0, 600 * 1000000L };
    nanosleep(&ts, NULL);
    return NULL;
}

static int test_sample(void)
{
    struct gsample *h = NULL;
    struct graft_err err = {0};
    uint64_t missed0 = gsample_missed();
    uint64_t cpu0 = cpu_ns();
    int rc = gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err);
    CHECK(rc == 0, "gsample_start: %s", err.msg);
    if (rc)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    spin_ms(400);
    int n_spun = atomic_load(&samples);    /* the samples taken while spinning */
    pthread_join(t, NULL);
    /* Every 10 ms period of CPU this thread used is one sample, or missed
     * (si_overrun: several expiries per signal on a loaded machine). An
     * expiry the kernel has not seen yet (it looks at ticks that find the
     * thread running) is fired by the sampler thread within two scans. */
    int want = (int)((cpu_ns() - cpu0) / 10000000);
    settle(&samples, gsample_missed, want - 1, 2000);
    int n = atomic_load(&samples);
    int missed = (int)(gsample_missed() - missed0);
    int used = (int)((cpu_ns() - cpu0) / 10000000);
    CHECK(n >= 3 && n + missed >= want - 1 && n + missed <= used + 1,
          "%d samples + %d missed for %d to %d periods of CPU", n, missed, want, used);
    /* The thread spins in spin_work and reads its CPU clock between
     * calls: a sample lands where the thread went back to user space,
     * which is clock_gettime's return when the timer fired or the thread
     * was switched out in that system call (common on a loaded machine). */
    int elsewhere = 0;
    for (int i = 0; i < n_spun && i < MAX_IPS; i++) {
        Dl_info di;
        if (sample_ips[i] - (uint64_t)(uintptr_t)spin_work < 128)
            continue;
        if (!dladdr((void *)(uintptr_t)sample_ips[i], &di) || !di.dli_sname || !strstr(di.dli_sname, "clock_gettime")) {
            elsewhere++;
            fprintf(stderr, "sample %d at %#llx (%s)\n", i, (unsigned long long)sample_ips[i],
                    di.dli_sname ? di.dli_sname : "?");
        }
    }
    CHECK(atomic_load(&in_spin) > 0 && elsewhere == 0, "%d of %d samples in spin_work, %d neither there nor in "
          "clock_gettime", atomic_load(&in_spin), n_spun, elsewhere);
    CHECK(atomic_load(&bad_ctx) == 0, "%d samples with a wrong context", atomic_load(&bad_ctx));
    CHECK(atomic_load(&bad_cookie) == 0, "%d samples with a wrong cookie", atomic_load(&bad_cookie));
    CHECK(atomic_load(&sleeper_samples) == 0, "a sleeping thread was sampled %d times",
          atomic_load(&sleeper_samples));
    gsample_stop(h);
    int after = atomic_load(&samples);
    spin_ms(200);
    CHECK(atomic_load(&samples) == after, "%d samples after gsample_stop", atomic_load(&samples) - after);
    printf("sample: %d samples + %d missed for %d periods of CPU, %d in spin_work\n", n, missed, want,
           atomic_load(&in_spin));
    return 0;
}

static int test_fork(void)
{
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct gsample *h = NULL;
    struct graft_err err = {0};
    CHECK(gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err) == 0, "%s", err.msg);
    pid_t c = fork();
    if (c == 0) {
        /* The forked thread's CPU clock starts at 0 and its timer is
         * armed before fork() returns: every period of it counts. */
        int before = atomic_load(&samples);
        uint64_t missed0 = gsample_missed();
        spin_ms(300);
        int want = (int)(cpu_ns() / 10000000);
        settle(&samples, gsample_missed, before + want - 1, 2000);
        shared[0] = atomic_load(&samples) - before;
        shared[1] = (int)(gsample_missed() - missed0);
        shared[2] = want;
        shared[3] = (int)(cpu_ns() / 10000000);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    /* delivered + folded into overruns (a loaded machine: see test_sample) */
    CHECK(shared[0] >= 3 && shared[0] + shared[1] >= shared[2] - 1 && shared[0] + shared[1] <= shared[3] + 1,
          "the child got %d samples + %d missed for %d to %d periods of CPU", shared[0], shared[1], shared[2],
          shared[3]);
    gsample_stop(h);
    printf("fork: the child got %d samples + %d missed for %d periods of CPU\n", shared[0], shared[1], shared[2]);
    return 0;
}

static _Atomic int host_signals;
static void host_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&host_signals, 1);
}

static int test_busy(void)
{
    signal(GSAMPLE_SIGNAL, host_handler);
    struct gsample *h = NULL;
    struct graft_err err = {0};
    int rc = gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err);
    CHECK(rc == -EBUSY, "gsample_start with the signal in use: %d (%s)", rc, err.msg);
    spin_ms(100);
    CHECK(atomic_load(&host_signals) == 0, "the host's handler got %d signals", atomic_load(&host_signals));
    printf("busy: %s\n", err.msg);
    return 0;
}

static int test_taken(void)
{
    struct gsample *h = NULL;
    struct graft_err err = {0};
    CHECK(gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err) == 0, "%s", err.msg);
    spin_ms(100);
    CHECK(atomic_load(&samples) > 0, "no samples before the host took the signal");
    signal(GSAMPLE_SIGNAL, host_handler);
    spin_ms(300);   /* the sampler notices within GSAMPLE_RESCAN_MS of CPU-idle time */
    int got = atomic_load(&host_signals);
    spin_ms(300);
    CHECK(atomic_load(&host_signals) == got, "the host's handler still gets timer signals (%d, then %d)", got,
          atomic_load(&host_signals));
    gsample_stop(h);
    printf("taken: the host's handler got %d signals before sampling stopped\n", got);
    return 0;
}

/* A hook handler that runs long: samples inside it must be dropped. */
__attribute__((noinline)) void hooked_fn(void)
{
    __asm__ volatile("" ::: "memory");
}

static uint64_t slow_handler(void *ctx, uint64_t len)
{
    (void)ctx;
    (void)len;
    atomic_store(&in_hook_handler, 1);
    for (int i = 0; i < 20; i++)
        spin_work(100000);
    atomic_store(&in_hook_handler, 0);
    return 0;
}

static int test_nested(void)
{
    struct ghook *hk = NULL;
    struct graft_err err = {0};
    CHECK(gattach_install((void *)hooked_fn, GHOOK_ENTRY, slow_handler, 0, NULL, &hk, &err) == 0, "%s", err.msg);
    struct gsample *h = NULL;
    CHECK(gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err) == 0, "%s", err.msg);
    uint64_t missed0 = gsample_missed();
    uint64_t end = cpu_ns() + 400000000ull;
    while (cpu_ns() < end)
        hooked_fn();
    gsample_stop(h);
    gattach_remove(hk, &err);
    CHECK(gsample_missed() > missed0, "no sample was dropped inside the hook handler");
    CHECK(atomic_load(&nested_seen) == 0, "%d samples ran inside a hook handler", atomic_load(&nested_seen));
    printf("nested: %llu samples dropped inside the handler, %d run outside\n",
           (unsigned long long)(gsample_missed() - missed0), atomic_load(&samples));
    return 0;
}

/* graft's timer for this thread, from /proc/self/timers ("notify: signal/tid.N"). */
static int own_timer_id(void)
{
    FILE *f = fopen("/proc/self/timers", "re");
    if (!f)
        return -1;
    char line[128], want[32];
    snprintf(want, sizeof(want), "tid.%d\n", (int)syscall(SYS_gettid));
    int id = -1, found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "ID: ", 4))
            id = atoi(line + 4);
        else if (!strncmp(line, "notify: ", 8) && strstr(line, want))
            found = id;
    }
    fclose(f);
    return found;
}

static int test_unseen(void)
{
    struct gsample *h = NULL;
    struct graft_err err = {0};
    CHECK(gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err) == 0, "%s", err.msg);
    int id = own_timer_id();
    CHECK(id >= 0, "no timer of this thread in /proc/self/timers");
    if (id < 0)
        return 1;
    uint64_t kicked0 = gsample_kicked();
    int rounds = 0, caught = 0;
    for (int tries = 0; rounds < 3 && tries < 100; tries++) {
        /* Run until the timer has expired but the kernel has not fired it
         * (timer_gettime says 1 ns): no tick found this thread running
         * since. Then sleep: no tick will while it sleeps. */
        int before = atomic_load(&samples) + (int)gsample_missed();
        struct itimerspec cur;
        do {
            spin_work(2000);
            syscall(SYS_timer_gettime, id, &cur);
        } while (!(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 1) &&
                 atomic_load(&samples) + (int)gsample_missed() == before);
        if (atomic_load(&samples) + (int)gsample_missed() != before)
            continue;                      /* the kernel saw it first: again */
        rounds++;
        settle(&samples, gsample_missed, before + 1, 1000);
        caught += atomic_load(&samples) + (int)gsample_missed() > before;
    }
    CHECK(rounds == 3, "could not catch an expired, unfired timer (%d times)", rounds);
    CHECK(caught == rounds, "%d of %d periods that expired unseen before a sleep were never sampled", rounds - caught,
          rounds);
    CHECK(gsample_kicked() > kicked0, "the sampler fired no overdue timer");
    gsample_stop(h);
    printf("unseen: %d of %d expiries the kernel had not seen sampled during the sleep after them (%llu fired by the "
           "sampler)\n", caught, rounds, (unsigned long long)(gsample_kicked() - kicked0));
    return 0;
}

static int test_isolation(void)
{
    if (!tiso_setup("sample_test")) {
        fprintf(stderr, "sample_test isolation: wants GRAFT_TEST_ISOLATION (pku_suite runs it)\n");
        return 1;
    }
    struct gsample *h = NULL;
    struct graft_err err = {0};
    int rc = gsample_start(on_sample, want_cookie, 10000000, -1, &h, &err);
    CHECK(rc == -ENOTSUP && h == NULL && strstr(err.msg, "isolation"), "gsample_start with isolation on: %d (%s)",
          rc, err.msg);
    struct sigaction cur;
    sigaction(GSAMPLE_SIGNAL, NULL, &cur);
    CHECK(!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL, "the refused start took signal %d",
          GSAMPLE_SIGNAL);
    printf("isolation: %s\n", err.msg);
    return 0;
}

/* ---- events ---- */

struct signal_rec {
    uint8_t ent[8];
    int32_t sig, err, code;
    char comm[16];
    int32_t pid, group, result;
};
struct exit_rec {
    uint8_t ent[8];
    char comm[16];
    int32_t pid, prio;
    uint8_t group_dead;
};

#define MAX_RECS 32
static struct { int n; struct signal_rec sig[MAX_RECS]; struct exit_rec ex; int ex_seen; } *rec;

static uint64_t on_signal_rec(void *ctx, uint64_t len)
{
    if (len >= sizeof(struct signal_rec) && rec->n < MAX_RECS)
        memcpy(&rec->sig[rec->n++], ctx, sizeof(struct signal_rec));
    return 0;
}

static uint64_t on_exit_rec(void *ctx, uint64_t len)
{
    if (len >= sizeof(struct exit_rec)) {
        memcpy(&rec->ex, ctx, sizeof(struct exit_rec));
        rec->ex_seen++;
    }
    return 0;
}

static void on_usr1(int sig)
{
    (void)sig;
}

static int test_events(void)
{
    rec = mmap(NULL, sizeof(*rec), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct graft_err err = {0};
    if (gsys_install(NULL, &err) < 0) {
        printf("SKIP: syscall hooks: %s\n", err.msg);
        return 0;
    }
    struct gevent_link *ls = NULL, *le = NULL;
    CHECK(gevent_attach(GEVENT_SIGNAL_GENERATE, on_signal_rec, 7, &ls, &err) == 0, "%s", err.msg);
    CHECK(gevent_attach(GEVENT_PROC_EXIT, on_exit_rec, 8, &le, &err) == 0, "%s", err.msg);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    int tid = (int)syscall(SYS_gettid);
    kill(getpid(), SIGUSR1);                       /* caught: 0 */
    syscall(SYS_tkill, tid, SIGUSR2);               /* ignored: 1 */
    syscall(SYS_tgkill, getpid(), tid, SIGWINCH);   /* default-ignored: 1 */
    kill(getpid(), 0);                              /* nothing */
    kill(999999999, SIGUSR1);                       /* ESRCH: nothing */
    sigset_t hup, old;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    signal(SIGHUP, on_usr1);
    sigprocmask(SIG_BLOCK, &hup, &old);
    kill(getpid(), SIGHUP);                         /* 0 */
    kill(getpid(), SIGHUP);                         /* already pending: 2 */
    sigprocmask(SIG_SETMASK, &old, NULL);
    static const struct { int sig, code, group, result; } want[] = {
        { SIGUSR1, 0, 1, 0 }, { SIGUSR2, -6, 0, 1 }, { SIGWINCH, -6, 0, 1 }, { SIGHUP, 0, 1, 0 }, { SIGHUP, 0, 1, 2 },
    };
    int nw = (int)(sizeof(want) / sizeof(want[0]));
    CHECK(rec->n == nw, "%d signal_generate records, want %d", rec->n, nw);
    for (int i = 0; i < nw && i < rec->n; i++) {
        const struct signal_rec *r = &rec->sig[i];
        CHECK(r->sig == want[i].sig && r->code == want[i].code && r->group == want[i].group &&
              r->result == want[i].result && r->pid == tid && r->err == 0,
              "record %d: sig %d code %d group %d result %d pid %d, want sig %d code %d group %d result %d pid %d",
              i, r->sig, r->code, r->group, r->result, r->pid, want[i].sig, want[i].code, want[i].group,
              want[i].result, tid);
    }
    rec->n = 0;
    pid_t c = fork();
    if (c == 0)
        syscall(SYS_exit_group, 5);
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "child status %#x", st);
    CHECK(rec->ex_seen == 1 && rec->ex.pid == c && rec->ex.group_dead == 1 && rec->ex.prio == 120 &&
              strncmp(rec->ex.comm, "sample_test", 11) == 0,
          "exit record: seen %d pid %d (child %d) group_dead %d prio %d comm %.16s", rec->ex_seen, rec->ex.pid,
          (int)c, rec->ex.group_dead, rec->ex.prio, rec->ex.comm);
    CHECK(rec->n == 1 && rec->sig[0].sig == SIGCHLD && rec->sig[0].pid == getpid() && rec->sig[0].code == 1,
          "the child's exit generated %d signals (first: sig %d pid %d code %d), want SIGCHLD to %d", rec->n,
          rec->n ? rec->sig[0].sig : 0, rec->n ? rec->sig[0].pid : 0, rec->n ? rec->sig[0].code : 0, getpid());
    gevent_detach(ls);
    gevent_detach(le);
    rec->n = 0;
    kill(getpid(), SIGUSR1);
    CHECK(rec->n == 0, "%d records after detach", rec->n);
    printf("events: signal_generate and sched_process_exit records as the kernel's\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sample_test sample|fork|busy|taken|nested|unseen|isolation|events\n");
        return 2;
    }
    const char *s = argv[1];
    int rc = !strcmp(s, "sample") ? test_sample() : !strcmp(s, "fork") ? test_fork()
           : !strcmp(s, "busy") ? test_busy() : !strcmp(s, "taken") ? test_taken()
           : !strcmp(s, "nested") ? test_nested() : !strcmp(s, "unseen") ? test_unseen()
           : !strcmp(s, "isolation") ? test_isolation()
           : !strcmp(s, "events") ? test_events() : 2;
    if (rc == 2)
        fprintf(stderr, "unknown scenario %s\n", s);
    return rc || failures ? 1 : 0;
}
