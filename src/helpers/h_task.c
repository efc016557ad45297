/*
 * h_task.c - helpers about the current thread and the probe it is in:
 * CPU, random numbers, ids, comm, the run state (override_return, func_ip,
 * cookie, function arguments) and the user stack.
 *
 * Ids and comm are cached per thread because they are asked for on every
 * event: tid and tgid never change for a thread except across fork, which a
 * pthread_atfork child handler accounts for. comm can be renamed at any time
 * (prctl, pthread_setname_np, a write to /proc/.../comm by a thread of the
 * process; exec starts a new image). Its cache is valid while the thread's
 * copy of g_comm_gen is current. While graft watches renames (the syscall
 * hooks see every prctl: ghelper_comm_watch(GHELPER_COMM_SYSCALLS), and the
 * agent's thread ticks: GHELPER_COMM_TICKS), the generation is bumped by an
 * observed prctl(PR_SET_NAME) (ghelper_comm_renamed: exact) and by every
 * tick (at least every 100 ms: bounds /proc writes, which graft does not
 * see). Otherwise the cache is refreshed at most every COMM_REFRESH_NS
 * using the vDSO's coarse clock, behind gfp_call.
 *
 * get_func_arg/get_func_ret/get_func_arg_cnt and get_stack read the probe's
 * registers from ghelper_run_state()->regs (struct graft_pt_regs, x86-64
 * SysV argument registers) rather than trusting ctx to be a pt_regs.
 *
 * Hot paths (they run on every hooked syscall): the per-thread state is
 * initial-exec TLS (a %fs-relative access, no __tls_get_addr call from the
 * agent library), and this file is compiled with -mgeneral-regs-only and
 * copies comm itself, so the common helpers here (ids, comm, run state)
 * never write a vector register (libc's string functions would).
 * get_current_pid_tgid and get_current_comm are GHELPER_F_FP_FREE: their
 * slow paths (a thread's first ids, a comm refresh) reach libc through
 * gfp_call (util/fpsafe.h); comm's common path is two loads and a compare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "helpers/helpers_internal.h"
#include "util/fpsafe.h"
#include "isolation/isolation.h"
#include "helpers/safe_mem.h"

#define COMM_LEN        16
#define COMM_REFRESH_NS 100000000ull     /* 100 ms */

/* Kernel flag values (uapi/linux/bpf.h). */
#define BPF_F_SKIP_FIELD_MASK 0xffULL
#define BPF_F_USER_STACK      (1ULL << 8)
#define BPF_F_USER_BUILD_ID   (1ULL << 11)
#define MAX_STACK_DEPTH       127          /* kernel.perf_event_max_stack */

struct task_cache {
    union {
        struct { uint32_t tid, tgid; };
        uint64_t ids;                      /* tgid << 32 | tid, set in one store */
    };
    uint64_t comm_at;                      /* coarse ns of the last refresh */
    uint64_t comm_gen;                     /* g_comm_gen it is valid for; 0 never */
    char comm[COMM_LEN];
    uint64_t rnd[2];                       /* xorshift128+ state, 0 = unseeded */
};

#define GH_TLS_IE __attribute__((tls_model("initial-exec")))
static __thread struct task_cache t_task GH_TLS_IE;
__thread struct ghelper_run ghelper_run_tls GH_TLS_IE;
static __thread struct ghelper_run *t_run_moved GH_TLS_IE;   /* ghelper_run_state_set */
#define t_run (*run_state())

/* A moved state (isolation on) is the thread's keyed control block's:
 * t_run_moved is host-writable, so extension-side callers get the block's
 * run state through its validation instead (isolation.h). */
static inline struct ghelper_run *run_state(void)
{
    struct ghelper_run *rs = t_run_moved;
    return __builtin_expect(rs != NULL, 0) ? giso_xctl_user_checked(rs) : &ghelper_run_tls;
}
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

void ghelper_task_forget(void)
{
    memset(&t_task, 0, sizeof(t_task));
}

/* In the child only the forking thread exists: it forgets its ids and seed. */
static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, ghelper_task_forget);
}

/* Out of line: keeps the cached path of the id helpers free of its frame.
 * Both ids in one store: a signal handler's program, or the JIT's inline
 * read (which takes the pair once tid is not 0), never sees half. */
static __attribute__((noinline, cold)) void fill_ids(void)
{
    pthread_once(&g_atfork_once, register_atfork);
    uint64_t ids = (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)syscall(SYS_gettid);
    __atomic_store_n(&t_task.ids, ids, __ATOMIC_RELAXED);
}

/* The JIT's inline bpf_get_current_pid_tgid reads t_task's first 8 bytes
 * as tgid << 32 | tid (little-endian) at a fixed offset from %fs. */
_Static_assert(offsetof(struct task_cache, ids) == 0 && offsetof(struct task_cache, tid) == 0 &&
               offsetof(struct task_cache, tgid) == 4, "t_task starts with tid, tgid");

void gh_pid_tgid_inline(struct gvm_helper_inline *out)
{
    *out = (struct gvm_helper_inline){ .kind = GVM_INLINE_TLS_U64,
                                       .tls_offset = gh_tls_offset(&t_task) };
}

uint32_t gh_tid(void)
{
    if (__builtin_expect(t_task.tid == 0, 0))
        GFP_CALL0(fill_ids);
    return t_task.tid;
}

uint32_t gh_tgid(void)
{
    if (__builtin_expect(t_task.tid == 0, 0))
        GFP_CALL0(fill_ids);
    return t_task.tgid;
}

static uint64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bumped on every rename graft observes and every tick; starts at 1, so a
 * thread's comm_gen of 0 (new thread, after fork, unwatched) never matches. */
static _Atomic uint64_t g_comm_gen = 1;
static _Atomic unsigned g_comm_watch;      /* GHELPER_COMM_* bits set */

void ghelper_comm_watch(unsigned what, int on)
{
    if (on)
        atomic_fetch_or(&g_comm_watch, what);
    else
        atomic_fetch_and(&g_comm_watch, ~what);
    atomic_fetch_add(&g_comm_gen, 1);
}

void ghelper_comm_tick(void)
{
    atomic_fetch_add(&g_comm_gen, 1);
}

void ghelper_comm_renamed(void)
{
    t_task.comm_at = 0;                    /* the coarse-clock cache too */
    t_task.comm_gen = 0;
    atomic_fetch_add(&g_comm_gen, 1);
}

/* The slow path, through gfp_call: refresh when watched (the generation
 * moved) or, unwatched, when the coarse clock says the copy is old. gen is
 * the generation read before the name: a rename after that read bumps it
 * again, so the copy cannot be kept past a rename. */
static __attribute__((noinline, cold)) void comm_refresh(uint64_t gen)
{
    int watched = atomic_load(&g_comm_watch) == (GHELPER_COMM_SYSCALLS | GHELPER_COMM_TICKS);
    uint64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);

    if (watched || t_task.comm[0] == '\0' || now - t_task.comm_at >= COMM_REFRESH_NS) {
        char name[COMM_LEN + 1] = "";
        /* PR_GET_NAME gives this thread's comm, as the kernel's current->comm. */
        if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0) {
            name[0] = '?';
            name[1] = '\0';
        }
        /* cached zero-padded after the NUL: get_current_comm copies words */
        int end = 0;
        for (int i = 0; i < COMM_LEN; i++) {
            end |= name[i] == '\0' || i == COMM_LEN - 1;
            t_task.comm[i] = end ? '\0' : name[i];
        }
        t_task.comm_at = now;
    }
    t_task.comm_gen = watched ? gen : 0;
}

const char *gh_comm(void)
{
    uint64_t gen = atomic_load(&g_comm_gen);
    if (__builtin_expect(t_task.comm_gen != gen, 0))
        GFP_CALL1(comm_refresh, gen);
    return t_task.comm;
}

struct ghelper_run *ghelper_run_state(void)
{
    return run_state();
}

void ghelper_run_state_set(struct ghelper_run *rs)
{
    t_run_moved = rs;
}

GH_FN(get_smp_processor_id)
{
    int cpu = sched_getcpu();     /* rseq-backed in glibc 2.35+: no syscall */
    return cpu < 0 ? 0 : (uint64_t)cpu;
}

static void seed_prandom(void)
{
    uint64_t s[2] = { 0, 0 };
    if (getrandom(s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        s[0] = clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)gh_tid() << 32);
        s[1] = (uint64_t)(uintptr_t)&t_task * 0x9e3779b97f4a7c15ull;
    }
    if ((s[0] | s[1]) == 0)
        s[0] = 1;                 /* the all-zero state is a fixed point */
    t_task.rnd[0] = s[0];
    t_task.rnd[1] = s[1];
}

/* xorshift128+: not cryptographic, like the kernel's prandom. */
GH_FN(get_prandom_u32)
{
    if (__builtin_expect((t_task.rnd[0] | t_task.rnd[1]) == 0, 0))
        seed_prandom();
    uint64_t a = t_task.rnd[0];
    const uint64_t b = t_task.rnd[1];
    t_task.rnd[0] = b;
    a ^= a << 23;
    t_task.rnd[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return (uint32_t)((t_task.rnd[1] + b) >> 32);
}

static __attribute__((noinline, cold)) uint64_t pid_tgid_first(void)
{
    GFP_CALL0(fill_ids);   /* libc (pthread_once, getpid): xmm saved */
    return (uint64_t)t_task.tgid << 32 | t_task.tid;
}

/* Two loads once the ids are cached; the first call per thread goes out of
 * line (a tail call), so the common path sets up no frame. */
GH_FN(get_current_pid_tgid)
{
    uint64_t ids = __atomic_load_n(&t_task.ids, __ATOMIC_RELAXED);
    if (__builtin_expect((uint32_t)ids == 0, 0))
        return pid_tgid_first();
    return ids;   /* what the JIT's inline read returns too (ghelper_inline_table) */
}

/* Credentials can change (setuid), so they are not cached. */
GH_FN(get_current_uid_gid)
{
    return (uint64_t)getgid() << 32 | (uint32_t)getuid();
}

/* get_current_comm(char *buf, u32 size): copy of comm, NUL-terminated and
 * truncated to size; the rest of buf zeroed (strscpy_pad in the kernel). */
GH_FN(get_current_comm)
{
    char *buf = (char *)r1;
    uint32_t size = (uint32_t)r2;

    if (size == 0)
        return GH_ERR(-EINVAL);
    const char *comm = gh_comm();
    if (size >= COMM_LEN) {
        /* comm is zero-padded to COMM_LEN with comm[COMM_LEN - 1] == 0 */
        uint64_t w[2];
        __builtin_memcpy(w, comm, COMM_LEN);      /* two word moves */
        __builtin_memcpy(buf, w, COMM_LEN);
        /* integer stores (memset would be libc's, which may use xmm) */
        for (uint32_t i = COMM_LEN; i < size; i++)
            ((volatile char *)buf)[i] = '\0';
        return 0;
    }
    /* a short buffer: truncate, NUL-terminate, zero the rest */
    for (uint32_t i = 0; i < size; i++)
        ((volatile char *)buf)[i] = i + 1 < size ? comm[i] : '\0';
    return 0;
}

/* send_signal(sig) / send_signal_thread(sig): signal the current process /
 * thread. The kernel queues the signal for delivery when the program's task
 * returns to user space; here it is a real kill/tgkill, so a handler may run
 * while the helper returns (nested hooks in it are skipped as missed, like
 * any re-entry). 0, or -EINVAL for a number outside 1..64, or the syscall's
 * -errno. The kernel also refuses signals to kernel threads and init; there
 * is no such case in a user process. */
static uint64_t send_signal_to(uint32_t sig, int whole_process)
{
    if (sig == 0 || sig > 64)
        return GH_ERR(-EINVAL);
    long rc = whole_process ? syscall(SYS_kill, (pid_t)gh_tgid(), (int)sig)
                            : syscall(SYS_tgkill, (pid_t)gh_tgid(), (pid_t)gh_tid(), (int)sig);
    return rc == 0 ? 0 : GH_ERR(-errno);
}

GH_FN(send_signal)        { return send_signal_to((uint32_t)r1, 1); }
GH_FN(send_signal_thread) { return send_signal_to((uint32_t)r1, 0); }

/* override_return(ctx, rc): the hook makes the probed function return rc. */
GH_FN(override_return)
{
    t_run.override_set = 1;
    t_run.override_value = r2;
    return 0;
}

GH_FN(get_func_ip)       { return t_run.func_ip; }
GH_FN(get_attach_cookie) { return t_run.cookie; }

static uint32_t func_nargs(void)
{
    return t_run.func_nargs ? t_run.func_nargs : 6;
}

/* get_func_arg(ctx, n, u64 *value): argument n (from 0) of the probed
 * function; -EINVAL past the last argument, *value then 0. Arguments past
 * the six register ones live on the caller's stack and are not reachable
 * from the registers alone. */
GH_FN(get_func_arg)
{
    const struct graft_pt_regs *regs = t_run.regs;
    uint64_t *out = (uint64_t *)r3;
    uint32_t n = (uint32_t)r2;

    if (!regs || n >= func_nargs() || n >= 6) {
        *out = 0;
        return GH_ERR(-EINVAL);
    }
    const uint64_t args[6] = { regs->di, regs->si, regs->dx,
                               regs->cx, regs->r8, regs->r9 };
    *out = args[n];
    return 0;
}

/* get_func_ret(ctx, u64 *value): the return value, only at a return probe. */
GH_FN(get_func_ret)
{
    uint64_t *out = (uint64_t *)r2;

    if (!t_run.regs || !t_run.at_return) {
        *out = 0;
        return GH_ERR(-EOPNOTSUPP);
    }
    *out = t_run.regs->ax;
    return 0;
}

GH_FN(get_func_arg_cnt)
{
    return func_nargs();
}

/* Walk the user stack by frame pointers: ip, then the return address above
 * each saved rbp. Every read goes through the safe reader, and frames must
 * move strictly up the stack, so a corrupt chain ends the walk. */
uint32_t gh_user_stack(const struct graft_pt_regs *regs, uint64_t *ips, uint32_t max, uint32_t skip)
{
    uint32_t n = 0, seen = 0;
    uint64_t fp = regs->bp;

    if (regs->ip == 0)
        return 0;
    if (seen++ >= skip)
        ips[n++] = regs->ip;
    while (n < max && seen < MAX_STACK_DEPTH + skip) {
        uint64_t frame[2];     /* saved rbp, return address */
        if (fp == 0 || (fp & 7) || gsafe_copy(frame, (const void *)fp, sizeof(frame)) != 0)
            break;
        if (frame[1] == 0)
            break;
        if (seen++ >= skip)
            ips[n++] = frame[1];
        if (frame[0] <= fp)
            break;
        fp = frame[0];
    }
    return n;
}

/* get_stack(ctx, buf, size, flags): the user stack as u64 addresses; returns
 * bytes written, the rest of buf zeroed; on error all of buf zeroed. There is
 * no kernel stack in a userspace process: without BPF_F_USER_STACK -EFAULT. */
GH_FN(get_stack)
{
    void *buf = (void *)r2;
    uint32_t size = (uint32_t)r3;
    uint64_t flags = r4;
    int err;

    if (flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) {
        err = -EINVAL;
    } else if (flags & BPF_F_USER_BUILD_ID) {
        err = -EINVAL;             /* build-id stacks are not supported */
    } else if (size % 8) {
        err = -EINVAL;
    } else if (!(flags & BPF_F_USER_STACK) || !t_run.regs) {
        err = -EFAULT;
    } else {
        uint64_t ips[MAX_STACK_DEPTH];
        uint32_t max = size / 8 < MAX_STACK_DEPTH ? size / 8 : MAX_STACK_DEPTH;
        uint32_t n = gh_user_stack(t_run.regs, ips, max,
                                     (uint32_t)(flags & BPF_F_SKIP_FIELD_MASK));
        memcpy(buf, ips, n * 8u);
        memset((char *)buf + n * 8u, 0, size - n * 8u);
        return n * 8u;
    }
    if (size)
        memset(buf, 0, size);
    return GH_ERR(err);
}
