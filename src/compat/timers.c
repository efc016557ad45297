/*
 * timers.c - perf events that are timers (software cpu-clock / task-clock
 * with a sample period), with a program attached: bpftrace's `interval:`
 * probes, and any tool's periodic program.
 *
 * In the kernel such a program runs from the timer interrupt, on whatever
 * the CPU was doing. graft has no interrupt: the program runs in the tool's
 * own process, on a thread of the library's that wakes every period (an
 * absolute-deadline clock_nanosleep, so periods do not drift). Its context
 * is a struct bpf_perf_event_data with zeroed registers (nothing was
 * interrupted) and the sample period; helpers answer for the tool's
 * process. Maps are graft's shared-memory maps, so what the program reads
 * and writes is what the targets' programs see, and perf_event_output
 * reaches the tool's perf buffers as from any other program.
 *
 * Sampling the targets - `profile:` probes, libbpf-tools/BCC profilers: a
 * frequency, an event per CPU, or another process's pid - becomes a
 * CPERF_SAMPLE event whose link (GREG_LINK_PERF_SAMPLE: period, cpu) the
 * agents run on a CPU-time timer of each of their threads, in the
 * interrupted thread with its registers (attach/sample.c). bpftrace opens
 * `interval:` on CPU 0 and `profile:ms:N` on every CPU, both in period
 * mode: the CPU 0 event starts as a timer here and becomes a sampler when
 * CPU 1's event of the same program and period is attached (the timer's
 * first run is one period away, so it has not run). A timer event with no
 * program, or a counting event (no sample period), goes to the kernel
 * unchanged.
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/instance.h"

#define KERNEL_PROG_TYPE_PERF_EVENT 7   /* enum bpf_prog_type (linux/bpf.h clashes with vm/isa.h) */
#define MAX_TIMERS 64

/* struct bpf_perf_event_data: pt_regs, sample_period, addr. */
struct perf_event_ctx {
    uint64_t regs[21];
    uint64_t sample_period;
    uint64_t addr;
};

struct ctimer {
    struct cobj *perf;             /* the timer event */
    struct cobj *link;             /* the link naming it, if made by BPF_LINK_CREATE */
    struct grt_instance *inst;
    struct cobj *prog;
    uint64_t period_ns;
    pid_t owner;                   /* the process whose thread runs it */
    int enabled, stop, started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static struct ctimer *g_timers[MAX_TIMERS];

static struct ctimer *timer_of(const struct cobj *o)
{
    for (int i = 0; i < MAX_TIMERS; i++)
        if (g_timers[i] && (g_timers[i]->perf == o || g_timers[i]->link == o))
            return g_timers[i];
    return NULL;
}

/* A sampler: the program runs in the targets (attach/sample.c), on a
 * CPU-time timer of each of their threads, with the interrupted registers. */
static int open_sampler(const struct perf_event_attr *attr, int pid, int cpu, long *ret)
{
    uint64_t period = attr->freq ? (attr->sample_freq ? 1000000000ull / attr->sample_freq : 0) : attr->sample_period;
    if (!period) {
        *ret = -1;
        errno = EINVAL;
        return 1;
    }
    gc_lock();
    struct cobj *o = gc_obj_new(COBJ_PERF);
    int e = errno;
    if (o) {
        o->perf_kind = CPERF_SAMPLE;
        o->pid = pid == -1 ? 0 : pid;    /* 0: every agent */
        o->cpu = cpu;
        o->syscall_nr = cpu;             /* the link's cpu (-1: any) */
        o->offset = period;              /* ns of the thread's CPU time */
        snprintf(o->tp_name, sizeof(o->tp_name), "sample/%lluns/cpu%d", (unsigned long long)period, cpu);
    }
    gc_unlock();
    if (!o) {
        *ret = -1;
        errno = e;
        return 1;
    }
    *ret = o->fd;
    return 1;
}

int gc_timer_open(const void *uattr, int pid, int cpu, long *ret)
{
    const struct perf_event_attr *attr = uattr;
    if (attr->type != PERF_TYPE_SOFTWARE ||
        (attr->config != PERF_COUNT_SW_CPU_CLOCK && attr->config != PERF_COUNT_SW_TASK_CLOCK) ||
        !attr->sample_period)
        return 0;   /* counting, or no timer: the kernel's */
    /* A frequency, a CPU other than 0 or another process: a profiler of
     * the targets. Period mode on CPU 0 of every process is bpftrace's
     * interval probe, run here - unless more CPUs of the same program and
     * period follow (a profile:ms/us/s probe; gc_timer_to_sampler). */
    if (attr->freq || cpu > 0 || (pid != -1 && pid != 0 && pid != getpid()))
        return open_sampler(attr, pid, cpu, ret);
    gc_lock();
    struct cobj *o = gc_obj_new(COBJ_PERF);
    int e = errno;
    if (o) {
        o->perf_kind = CPERF_TIMER;
        o->pid = getpid();
        o->cpu = cpu;
        o->syscall_nr = -1;
        o->offset = attr->sample_period;   /* the period, in ns (cpu-clock counts ns) */
        o->signaled = !attr->disabled;     /* enabled from the start unless disabled */
        snprintf(o->tp_name, sizeof(o->tp_name), "timer/%lluns", (unsigned long long)attr->sample_period);
    }
    gc_unlock();
    if (!o) {
        *ret = -1;
        errno = e;
        return 1;
    }
    *ret = o->fd;
    return 1;
}

static void *timer_thread(void *arg)
{
    struct ctimer *t = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        uint64_t ns = (uint64_t)next.tv_nsec + t->period_ns;
        next.tv_sec += (time_t)(ns / 1000000000u);
        next.tv_nsec = (long)(ns % 1000000000u);
        while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &next) != ETIMEDOUT)
            ;
        if (t->stop)
            break;
        if (!t->enabled)
            continue;
        struct perf_event_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        ctx.sample_period = t->period_ns;
        uint64_t r0;
        struct graft_err err = {0};
        pthread_mutex_unlock(&t->mu);
        int rc = gvm_prog_run(t->inst->prog, &ctx, sizeof(ctx), &r0, &err);
        pthread_mutex_lock(&t->mu);
        if (rc < 0) {
            gc_warn("timer program: %s; the timer stops", err.msg);
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* prog on the timer event perf; link: the link descriptor (NULL for
 * ioctl(PERF_EVENT_IOC_SET_BPF)). 0 or -errno. Under the lock. */
int gc_timer_attach(struct cobj *perf, struct cobj *prog, struct cobj *link)
{
    if (prog->prog_type != KERNEL_PROG_TYPE_PERF_EVENT)
        return -EINVAL;
    struct ctimer *t = timer_of(perf);
    if (t)
        return -EEXIST;
    int slot = 0;
    while (slot < MAX_TIMERS && g_timers[slot])
        slot++;
    if (slot == MAX_TIMERS) {
        gc_warn("timer programs: more than %d", MAX_TIMERS);
        return -E2BIG;
    }
    /* The program object keeps its maps (their refs) for the tool's life. */
    struct gmap *maps[GC_PROG_MAPS];
    for (uint32_t i = 0; i < prog->n_maps; i++)
        maps[i] = prog->maps[i]->map;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    struct graft_err err = {0};
    int rc = grt_instance_create((const struct bpf_insn *)prog->insns, prog->n_insns, maps, prog->n_maps,
                                 GVM_ENGINE_JIT, &t->inst, &err);
    if (rc < 0) {
        gc_warn("timer program %s: %s", prog->name, err.msg);
        free(t);
        return rc;
    }
    t->perf = perf;
    t->link = link;
    t->prog = prog;
    t->period_ns = perf->offset ? perf->offset : 1;
    t->owner = getpid();
    t->enabled = perf->signaled;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* the tool's signal handlers stay on its threads */
    rc = pthread_create(&t->thread, NULL, timer_thread, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        gc_warn("timer program %s: cannot start its thread: %s", prog->name, strerror(rc));
        grt_instance_free(t->inst);
        free(t);
        return -rc;
    }
    t->started = 1;
    g_timers[slot] = t;
    if (link)
        link->link_prog_id = prog->id;
    return 0;
}

static void timer_free(struct ctimer *t);

void gc_timer_to_sampler(const struct cobj *sample, struct cobj *prog)
{
    if (sample->pid != 0 || sample->cpu <= 0)
        return;
    for (int i = 0; i < MAX_TIMERS; i++) {
        struct ctimer *t = g_timers[i];
        if (!t || t->prog != prog || t->period_ns != sample->offset || t->perf->cpu != 0 || t->owner != getpid())
            continue;
        struct cobj *holder = t->link ? t->link : t->perf;
        g_timers[i] = NULL;
        timer_free(t);
        uint32_t id = 0;
        if (gc_link_add(prog, CLINK_PERF_SAMPLE, 0, "", "", sample->offset, 0, 0, &id) == 0) {
            holder->link_reg_id = id;
            holder->link_prog_id = prog->id;
        }
        return;
    }
}

int gc_timer_ioctl(struct cobj *perf, unsigned long req)
{
    struct ctimer *t = timer_of(perf);
    int on = req == PERF_EVENT_IOC_ENABLE;
    perf->signaled = on;   /* for a program attached later */
    if (t) {
        pthread_mutex_lock(&t->mu);
        t->enabled = on;
        pthread_mutex_unlock(&t->mu);
    }
    return 0;
}

/* o's last descriptor is gone: a timer it drives stops (its thread is
 * joined, so the program no longer runs when this returns). Under the lock;
 * the timer thread never takes it. */
void gc_timer_release(struct cobj *o)
{
    struct ctimer *t = timer_of(o);
    if (!t)
        return;
    /* The timer lives while the event or the link naming it does. */
    if (t->link && o == t->perf && t->link->fd >= 0)
        return;
    for (int i = 0; i < MAX_TIMERS; i++)
        if (g_timers[i] == t)
            g_timers[i] = NULL;
    if (t->owner != getpid())   /* a forked child's copy: its thread is the parent's, never here */
        return;
    timer_free(t);
}

/* Stop t's thread (joined: the program no longer runs) and free it. */
static void timer_free(struct ctimer *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->started && !pthread_equal(t->thread, pthread_self()))
        pthread_join(t->thread, NULL);
    grt_instance_free(t->inst);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

/* BPF_PROG_TEST_RUN of a raw tracepoint program: run it once, here, with the
 * tool's arguments as its context (u64 args[], at most 12, as the kernel
 * allows). bpftrace runs its BEGIN and END probes this way. Other program
 * types, and data_in/data_out (packets), are refused as unsupported. */
#define KERNEL_PROG_TYPE_RAW_TRACEPOINT 17
struct test_run_attr {          /* the test member of union bpf_attr */
    uint32_t prog_fd, retval, data_size_in, data_size_out;
    uint64_t data_in, data_out;
    uint32_t repeat, duration, ctx_size_in, ctx_size_out;
    uint64_t ctx_in, ctx_out;
    uint32_t flags, cpu, batch_size;
};

int gc_prog_test_run(void *uattr, unsigned int size)
{
    struct test_run_attr a;
    memset(&a, 0, sizeof(a));
    memcpy(&a, uattr, size < sizeof(a) ? size : sizeof(a));
    gc_lock();
    struct cobj *p = gc_obj((int)a.prog_fd);
    int ok = p && p->kind == COBJ_PROG;
    uint32_t type = ok ? p->prog_type : 0;
    gc_unlock();
    if (!ok)
        return -EBADF;
    if (type != KERNEL_PROG_TYPE_RAW_TRACEPOINT) {
        gc_warn_once("BPF_PROG_TEST_RUN: graft runs raw tracepoint programs only (program %s is type %u)", p->name,
                     type);
        return -EOPNOTSUPP;
    }
    if (a.data_in || a.data_out || a.data_size_in || a.data_size_out || a.ctx_out || a.ctx_size_out ||
        a.ctx_size_in > 96 || (a.ctx_size_in % 8) || (a.ctx_size_in && !a.ctx_in) || a.repeat > 1 || a.flags)
        return -EINVAL;   /* as the kernel's bpf_prog_test_run_raw_tp (cpu pinning flag not supported) */
    uint64_t args[12] = {0};
    if (a.ctx_size_in)
        memcpy(args, (void *)(uintptr_t)a.ctx_in, a.ctx_size_in);
    struct gmap *maps[GC_PROG_MAPS];
    for (uint32_t i = 0; i < p->n_maps; i++)
        maps[i] = p->maps[i]->map;
    struct grt_instance *inst;
    struct graft_err err = {0};
    int rc = grt_instance_create((const struct bpf_insn *)p->insns, p->n_insns, maps, p->n_maps,
                                 GVM_ENGINE_INTERP, &inst, &err);
    if (rc < 0) {
        gc_warn("BPF_PROG_TEST_RUN %s: %s", p->name, err.msg);
        return rc;
    }
    uint64_t r0 = 0;
    rc = gvm_prog_run(inst->prog, args, sizeof(args), &r0, &err);
    grt_instance_free(inst);
    if (rc < 0) {
        gc_warn("BPF_PROG_TEST_RUN %s: %s", p->name, err.msg);
        return -EINVAL;
    }
    ((struct test_run_attr *)uattr)->retval = (uint32_t)r0;
    return 0;
}
