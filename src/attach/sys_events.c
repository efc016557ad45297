/*
 * sys_events.c - kernel tracepoints that are not system calls, run from the
 * system calls of the process that causes them (the syscall hooks must be
 * installed: gsys_install):
 *
 *   sched/sched_process_exit  at the entry of exit(2) (a thread) and
 *       exit_group(2) (the calling thread), in that thread, with
 *       task->exit_code = (status & 0xff) << 8 as the kernel sets it
 *       (ghelper_task_set_exit_code) and group_dead when it is the last
 *       thread. Not seen: other threads of an exit_group (the kernel runs
 *       the event in each), and deaths by a signal (nothing runs in the
 *       process then).
 *   signal/signal_generate    at the entry of kill, tkill, tgkill,
 *       rt_sigqueueinfo and rt_tgsigqueueinfo sending a signal (not 0) to
 *       one process or thread, in the sender, as the kernel runs it during
 *       the send: the same call with signal 0 first tells whether the send
 *       will pass the kernel's checks (no event when it fails: ESRCH, EPERM,
 *       as the kernel generates nothing then), the target's
 *       /proc/PID/task/TID/status gives its comm and whether the signal is
 *       ignored or already pending (the record's result). Not seen: signals
 *       the kernel generates itself (SIGCHLD, SIGSEGV, SIGPIPE, timers) and
 *       kill() of a process group (said once on stderr), except the exit
 *       signal (SIGCHLD) to the parent, which the exit hook above generates
 *       as the kernel does when the last thread exits.
 *
 * And gsys_fire_exec_exit(): a successful execve returns in the new image,
 * where the agent starts only after it; the agent calls this once it has
 * installed its links, and the execve exit programs run then (ret 0), in
 * the new image, as the kernel's sys_exit_execve does.
 *
 * Records are the kernel's (tracefs formats), padded with zeros to 64
 * bytes (programs are verified against the 64-byte sys_enter record).
 * Handlers run with the syscall dispatcher's run state; the event's
 * programs get the event's record as their context and their cookie.
 * With isolation on these events are refused (not implemented).
 */
#define _GNU_SOURCE
#include "attach/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "attach/hook_mode.h"
#include "attach/syscall_hook.h"

#define EV_KINDS 2

struct gevent_link {
    struct gevent_link *_Atomic next;
    gsys_handler fn;
    uint64_t cookie;
    _Atomic int dead;
};

static struct gevent_link *_Atomic g_events[EV_KINDS];
static pthread_mutex_t g_ev_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_hooked[EV_KINDS];          /* the internal syscall links exist */

struct proc_exit_rec {                  /* sched_process_exit */
    struct gsys_trace_entry ent;
    char comm[16];                      /* 8 */
    int32_t pid;                        /* 24 */
    int32_t prio;                       /* 28 */
    uint8_t group_dead;                 /* 32 */
    uint8_t pad[31];
};
struct signal_rec {                     /* signal_generate */
    struct gsys_trace_entry ent;
    int32_t sig, err, code;             /* 8, 12, 16 */
    char comm[16];                      /* 20 */
    int32_t pid, group, result;         /* 36, 40, 44 */
    uint8_t pad[16];
};
_Static_assert(sizeof(struct proc_exit_rec) == 64 && sizeof(struct signal_rec) == 64, "64-byte records");

static void run_events(int kind, void *rec, uint64_t len)
{
    struct ghelper_run *st = &ghelper_run_tls;
    struct ghelper_run saved = *st;
    for (struct gevent_link *l = atomic_load_explicit(&g_events[kind], memory_order_acquire); l;
         l = atomic_load_explicit(&l->next, memory_order_acquire)) {
        if (atomic_load_explicit(&l->dead, memory_order_relaxed))
            continue;
        *st = (struct ghelper_run){ .ctx = rec, .cookie = l->cookie, .regs = saved.regs, .func_nargs = 6 };
        l->fn(rec, len);
    }
    *st = saved;
}

static int32_t my_tid(void)
{
    return (int32_t)syscall(SYS_gettid);
}

/* ---- sched_process_exit ---- */

/* The calling thread is the process's last one, graft's own threads
 * ("graft-*": the agent's, the sampler's) not counted. No allocation:
 * getdents64 into a stack buffer. */
static int last_thread(void)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    char buf[4096], path[64], comm[32];
    int32_t me = my_tid();
    int others = 0;
    long n;
    while (!others && (n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < n && !others;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d =
                (void *)(buf + off);
            off += d->reclen;
            if (d->name[0] == '.' || atoi(d->name) == me)
                continue;
            snprintf(path, sizeof(path), "/proc/self/task/%.16s/comm", d->name);
            others = ghelper_read_small(path, comm, sizeof(comm)) > 0 && strncmp(comm, "graft-", 6) != 0;
        }
    }
    close(fd);
    return !others;
}

static void emit_signal(int sig, int code, int group, int32_t tgid, int32_t tid);

/* The signal the parent gets at exit (field 38 of /proc/self/stat). */
static int exit_signal(void)
{
    char buf[1024];
    if (ghelper_read_small("/proc/self/stat", buf, sizeof(buf)) < 0)
        return SIGCHLD;
    const char *p = strrchr(buf, ')');
    int field = 2;
    for (; p && *p; p++)
        if (*p == ' ' && ++field == 38)
            return atoi(p + 1);
    return SIGCHLD;
}

static uint64_t on_exit_call(void *ctx, uint64_t len)
{
    (void)len;
    const struct gsys_enter_ctx *c = ctx;
    if (!atomic_load_explicit(&g_events[GEVENT_PROC_EXIT], memory_order_acquire) &&
        !atomic_load_explicit(&g_events[GEVENT_SIGNAL_GENERATE], memory_order_acquire))
        return 0;
    struct proc_exit_rec r;
    memset(&r, 0, sizeof(r));
    r.ent.pid = r.pid = my_tid();
    prctl(PR_GET_NAME, r.comm, 0, 0, 0);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    r.prio = 120 + (errno ? 0 : nice);
    /* exit_group: every thread goes; the caller stands for the last */
    r.group_dead = (uint8_t)(c->id == SYS_exit_group || last_thread());
    ghelper_task_set_exit_code((int32_t)((c->args[0] & 0xff) << 8));
    if (atomic_load_explicit(&g_events[GEVENT_PROC_EXIT], memory_order_acquire))
        run_events(GEVENT_PROC_EXIT, &r, sizeof(r));
    /* The last thread out notifies the parent: the kernel generates its
     * exit signal (SIGCHLD, CLD_EXITED) in the exiting process's context. */
    if (r.group_dead && atomic_load_explicit(&g_events[GEVENT_SIGNAL_GENERATE], memory_order_acquire))
        emit_signal(exit_signal(), 1 /* CLD_EXITED */, 1, 0, (int32_t)getppid());
    return 0;
}

/* ---- signal_generate ---- */

/* The 64-bit mask after "\nKEY:" in a status file. */
static uint64_t status_mask(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);
    return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

static int sig_kernel_ignore(int sig)
{
    return sig == SIGCONT || sig == SIGCHLD || sig == SIGWINCH || sig == SIGURG;
}

/* One signal_generate record: sig sent to thread tid of tgid (tgid 0: the
 * process tid), as the kernel describes it. */
static void emit_signal(int sig, int code, int group, int32_t tgid, int32_t tid)
{
    if (sig <= 0 || sig > 64)
        return;
    char path[64], buf[4096];
    struct signal_rec r;
    memset(&r, 0, sizeof(r));
    r.ent.pid = my_tid();
    r.sig = sig;
    r.code = code;
    r.pid = tid;
    r.group = group;
    if (tgid > 0)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)tgid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)tid);
    if (ghelper_read_small(path, buf, sizeof(r.comm) + 1) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        memcpy(r.comm, buf, strnlen(buf, sizeof(r.comm) - 1));
    }
    if (tgid > 0)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)tgid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    if (ghelper_read_small(path, buf, sizeof(buf)) > 0) {
        uint64_t bit = 1ull << (sig - 1);
        int blocked = (status_mask(buf, "\nSigBlk:") & bit) != 0;
        int ign = (status_mask(buf, "\nSigIgn:") & bit) != 0;
        int caught = (status_mask(buf, "\nSigCgt:") & bit) != 0;
        uint64_t pend = status_mask(buf, group ? "\nShdPnd:" : "\nSigPnd:");
        if (!blocked && sig != SIGKILL && (ign || (!caught && sig_kernel_ignore(sig))))
            r.result = 1;   /* TRACE_SIGNAL_IGNORED */
        else if (sig < 32 && (pend & bit))
            r.result = 2;   /* TRACE_SIGNAL_ALREADY_PENDING */
    }
    run_events(GEVENT_SIGNAL_GENERATE, &r, sizeof(r));
}

static uint64_t on_signal_call(void *ctx, uint64_t len)
{
    (void)len;
    const struct gsys_enter_ctx *c = ctx;
    long nr = c->id;
    int32_t tgid = 0, tid = 0;
    int sig, group, code;
    long probe;
    switch (nr) {
    case SYS_kill:
        if ((int32_t)c->args[0] <= 0) {
            static _Atomic int said;
            if ((int32_t)c->args[1] && !atomic_exchange(&said, 1))
                fprintf(stderr, "graft-agent[%d]: signal_generate: kill() of a process group or of every process "
                                "is not traced (only kill of one process, tkill, tgkill)\n", getpid());
            return 0;
        }
        tgid = tid = (int32_t)c->args[0];
        sig = (int)c->args[1];
        group = 1;
        code = SI_USER;
        probe = syscall(SYS_kill, tgid, 0);
        break;
    case SYS_tkill:
        tid = (int32_t)c->args[0];
        sig = (int)c->args[1];
        group = 0;
        code = SI_TKILL;
        probe = tid > 0 ? syscall(SYS_tkill, tid, 0) : -1;
        break;
    case SYS_tgkill:
        tgid = (int32_t)c->args[0];
        tid = (int32_t)c->args[1];
        sig = (int)c->args[2];
        group = 0;
        code = SI_TKILL;
        probe = tgid > 0 && tid > 0 ? syscall(SYS_tgkill, tgid, tid, 0) : -1;
        break;
    case SYS_rt_sigqueueinfo:
    case SYS_rt_tgsigqueueinfo: {
        int tg = nr == SYS_rt_tgsigqueueinfo;
        tgid = (int32_t)c->args[0];
        tid = tg ? (int32_t)c->args[1] : tgid;
        sig = (int)c->args[tg ? 2 : 1];
        group = !tg;
        siginfo_t si;
        struct iovec local = { &si, sizeof(si) }, remote = { (void *)(uintptr_t)c->args[tg ? 3 : 2], sizeof(si) };
        if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof(si))
            return 0;   /* the call fails with EFAULT */
        code = si.si_code;
        /* the kernel's rule: user-made codes only, unless to itself */
        if ((code >= 0 || code == SI_TKILL) && tgid != getpid())
            return 0;
        probe = tgid <= 0 ? -1 : tg ? syscall(SYS_tgkill, tgid, tid, 0) : syscall(SYS_kill, tgid, 0);
        break;
    }
    default:
        return 0;
    }
    if (sig <= 0 || sig > 64 || probe != 0)
        return 0;   /* signal 0 generates nothing; a failing send neither */
    emit_signal(sig, code, group, tgid, tid);
    return 0;
}

/* ---- links ---- */

/* The internal syscall links (kept for the life of the process: an empty
 * event list costs a loop): exit and exit_group for both kinds (a process's
 * exit also generates the parent's SIGCHLD), the kill family for signals. */
static int hook_nrs(const int *nrs, size_t n, gsys_handler fn, struct graft_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct gsys_link *l;
        if (gsys_attach(GSYS_ENTER, nrs[i], fn, 0, &l, err) < 0)
            return -1;
    }
    return 0;
}

static int hook_kind(int kind, struct graft_err *err)
{
    static const int exit_nrs[] = { SYS_exit, SYS_exit_group };
    static const int sig_nrs[] = { SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo };
    static int exits_hooked;
    if (!exits_hooked) {
        if (hook_nrs(exit_nrs, 2, on_exit_call, err) < 0)
            return -1;
        exits_hooked = 1;
    }
    return kind == GEVENT_SIGNAL_GENERATE ? hook_nrs(sig_nrs, 5, on_signal_call, err) : 0;
}

int gevent_attach(enum gevent_kind kind, gsys_handler fn, uint64_t cookie, struct gevent_link **out,
                  struct graft_err *err)
{
    if ((unsigned)kind >= EV_KINDS || !fn)
        return graft_errf(err, -EINVAL, "event kind %d", (int)kind);
    if (gattach_iso_on())
        return graft_errf(err, -ENOTSUP, "%s programs are not supported with isolation (PKU) on",
                          kind == GEVENT_PROC_EXIT ? "sched_process_exit" : "signal_generate");
    struct gevent_link *l = calloc(1, sizeof(*l));
    if (!l)
        return graft_errf(err, -ENOMEM, "out of memory");
    l->fn = fn;
    l->cookie = cookie;
    pthread_mutex_lock(&g_ev_lock);
    if (!g_hooked[kind]) {
        if (hook_kind(kind, err) < 0) {
            pthread_mutex_unlock(&g_ev_lock);
            free(l);
            return err ? err->code : -EINVAL;
        }
        g_hooked[kind] = 1;
    }
    atomic_store_explicit(&l->next, atomic_load(&g_events[kind]), memory_order_relaxed);
    atomic_store_explicit(&g_events[kind], l, memory_order_release);
    pthread_mutex_unlock(&g_ev_lock);
    *out = l;
    return 0;
}

/* Unlinked, marked dead and kept (never freed): a reader may still be on it. */
void gevent_detach(struct gevent_link *l)
{
    if (!l)
        return;
    atomic_store(&l->dead, 1);
    pthread_mutex_lock(&g_ev_lock);
    for (int k = 0; k < EV_KINDS; k++)
        for (struct gevent_link *_Atomic *pp = &g_events[k]; *pp; pp = &(*pp)->next)
            if (*pp == l) {
                atomic_store_explicit(pp, atomic_load(&l->next), memory_order_release);
                goto out;
            }
out:
    pthread_mutex_unlock(&g_ev_lock);
}

void gsys_fire_exec_exit(void)
{
    /* A syscall frame as if execve had just returned 0 here. */
    struct gsys_frame f;
    memset(&f, 0, sizeof(f));
    f.nr = SYS_execve;
    f.ret = 0;
    gsys_run_exit(&f);
}
