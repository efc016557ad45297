/*
 * thread_state.c - owns the per-thread hook state: every thread that ever
 * ran a hook has a struct gthread on g_threads (mmap'ed, never freed,
 * reused after the thread exits), found through the initial-exec TLS
 * pointer t_self; with extension stacks each struct owns an extension
 * stack and an alternate signal stack for good. Also owns the grace-period
 * counter g_gp of the handlers' read sections and the writer's wait
 * (gthread_synchronize). thread_state.h says who reads what.
 *
 * t_self and g_gp stay plain symbols because the templates reach them by
 * address (patched in by tramp_reloc.c); C code elsewhere reads them only
 * through thread_state.h's accessors.
 *
 * Invariants: t->rcu_ctr is non-zero while a thread runs handlers (its read
 * section, and only then), which makes nested hook hits skip their
 * handlers. t->xtop is the top of t's extension stack while it is free and
 * 0 while an extension runs on it (or, without extension stacks, always
 * 0); gattach_call_ext() is the C paths' way onto it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attach/syscall_hook.h"
#include "attach/thread_state.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"

/* Initial-exec: the templates read t_self at a constant %fs offset. It is 8
 * bytes, well within the static TLS surplus glibc keeps for dlopen'ed
 * libraries (if that ever ran out, dlopen of the agent would fail with
 * "cannot allocate memory in static TLS block", not misbehave). */
__thread struct gthread *t_self __attribute__((tls_model("initial-exec"))) GHIDDEN;
static _Atomic(struct gthread *) g_threads;
_Atomic uint64_t g_gp GHIDDEN = 1;   /* never 0: see gthread_in_handlers */
static pthread_key_t g_thread_key;
static pthread_once_t g_thread_once = PTHREAD_ONCE_INIT;

_Static_assert(offsetof(struct gthread, rcu_ctr) == 0 && offsetof(struct gthread, depth) == 12 &&
               offsetof(struct gthread, rs) == 16 &&
               offsetof(struct gthread, shadow) == GTH_OFF_SHADOW && sizeof(struct gshadow) == 24,
               "gthread layout used by the templates");
_Static_assert(offsetof(struct gthread, xtop) == GTH_OFF_XTOP &&
               offsetof(struct gthread, xctl) == GTH_OFF_XCTL,
               "gthread extension-stack fields used by the templates");

uint64_t gthread_tls_offset(void)
{
    uint64_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return (uint64_t)&t_self - tp;
}

/* The thread's TSD destructor. It is NOT the thread's last hook hit: glibc
 * makes syscalls after the destructors (madvise of the stack, the exit
 * itself, ...), and with a hook on every syscall those run handlers too.
 * So the struct stays the thread's - t_self, the control block bound to
 * its FS base, its extension stack and altstack - until the thread is gone:
 * it is only marked exiting here, and gthread_register takes it once the
 * kernel has no thread with exit_tid in the process (tgkill: ESRCH). Freeing
 * it here, as before, unbound the block under the still-running thread
 * (t_xctl 0, so its next gated entry with the stack trapped, SIGILL) and let
 * another thread take the same extension stack and altstack while it ran. */
static void thread_release(void *p)
{
    struct gthread *t = p;
    t->exit_tid = (int32_t)graft_sys_raw6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    atomic_store(&t->in_use, GTH_EXITING);
}

/* Take t for a new thread: free, or exiting and its owner gone. A thread
 * of another process (we are a fork child) is gone too. A tid reused by a
 * new thread only delays the reuse (tgkill then finds that thread). */
static int thread_take(struct gthread *t)
{
    int expect = GTH_FREE;
    if (atomic_compare_exchange_strong(&t->in_use, &expect, GTH_LIVE))
        return 1;
    if (expect != GTH_EXITING)
        return 0;
    long pid = graft_sys_raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    if (graft_sys_raw6(SYS_tgkill, pid, t->exit_tid, 0, 0, 0, 0) != -ESRCH)
        return 0;
    if (!atomic_compare_exchange_strong(&t->in_use, &expect, GTH_LIVE))
        return 0;
    giso_xctl_release(t->xctl);     /* no owner until bind_control_block */
    atomic_store(&t->rcu_ctr, 0);
    t->xtop = t->xstack;            /* free again; the stack stays with t */
    t->altstack_on = 0;             /* the next owner installs it again */
    return 1;
}

static void thread_key_init(void)
{
    pthread_key_create(&g_thread_key, thread_release);
}

static __thread int t_altstack_changed;    /* gthread_take_altstack_change */

/* A signal that interrupts an extension would be delivered on its stack,
 * which its handler, starting with the kernel's default PKRU, cannot use:
 * graft's own handlers (SIGSEGV for the helpers' fault-tolerant copies,
 * SIGTRAP, the patching ping, SIGSYS) are SA_ONSTACK, so give the thread an
 * alternate stack in untagged memory unless it has one of its own. */
static void altstack_ensure(struct gthread *t)
{
    stack_t cur;
    t->altstack_on = 1;
    t->sigstk_lo = t->sigstk_hi = 0;
    if (sigaltstack(NULL, &cur) < 0)
        return;
    if (!(cur.ss_flags & SS_DISABLE)) {
        /* the thread's own (or ours) is in place */
        t->sigstk_lo = (uint64_t)(uintptr_t)cur.ss_sp;
        t->sigstk_hi = t->sigstk_lo + cur.ss_size;
        return;
    }
    if (!t->altstack) {
        void *p = mmap(NULL, GTH_ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (p == MAP_FAILED)
            return;
        t->altstack = p;
    }
    stack_t ss = { .ss_sp = t->altstack, .ss_size = GTH_ALTSTACK_SIZE, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) == 0) {
        t->sigstk_lo = (uint64_t)(uintptr_t)t->altstack;
        t->sigstk_hi = t->sigstk_lo + GTH_ALTSTACK_SIZE;
        t_altstack_changed = 1;
    }
}

int gthread_take_altstack_change(void)
{
    int c = t_altstack_changed;
    t_altstack_changed = 0;
    return c;
}

/* 1 when the caller runs on t's signal alternate stack (see sigstk_lo). */
static inline int on_sigaltstack(const struct gthread *t)
{
    uint64_t sp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
    return sp >= t->sigstk_lo && sp < t->sigstk_hi;
}

_Static_assert(sizeof(struct ghelper_run) <= GISO_XCTL_USER,
               "the run state lives in the control block's user area");

/* With isolation on, t's keyed control block (allocated once, kept with t)
 * bound to this thread, and the run state in it; 0, or -1 when isolation
 * is on and no block could be had (the thread then runs no extension). */
static int bind_control_block(struct gthread *t)
{
    if (!gattach_iso_on()) {
        ghelper_run_state_set(NULL);
        t->rs = ghelper_run_state();
        return 0;
    }
    if (!t->xctl && !(t->xctl = giso_xctl_new(NULL)))
        return -1;
    giso_xctl_bind(t->xctl);
    if (t->xstack)
        t->xtop = t->xstack;        /* released with the struct: free */
    t->rs = giso_xctl_user(t->xctl);
    ghelper_run_state_set(t->rs);
    return 0;
}

/* With extension stacks on (gthread_xstack_ensure tested that), give t an
 * extension stack (kept with t for good, so a reused struct brings its
 * stack) and bind it as this thread's for giso_call_ext() and the host-call
 * thunks. Allocation failure leaves xtop 0: handlers then run on the
 * thread's own stack, as without this. */
void gthread_xstack_setup(struct gthread *t)
{
    if (!t->xctl && bind_control_block(t) < 0)
        return;                     /* no control block: no extension stack */
    if (!gattach_xstacks_on())
        return;
    if (!t->xstack && (t->xstack = giso_xstack_alloc(NULL)) != 0) {
        giso_xctl_set_stack(t->xctl, t->xstack);
        t->xtop = t->xstack;        /* nobody can be on a new stack */
    }
    if (!t->altstack_on)
        altstack_ensure(t);
}

int gthread_release_stale(struct gthread *t, uint64_t frame)
{
    stack_t ss;
    if (!gattach_iso_on() || !t->xctl)
        return 0;
    /* A handler on an alternate signal stack can sit above the thread's
     * stack while the extension it interrupted is still suspended. */
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_ONSTACK))
        return 0;
    if (!giso_xctl_release_stale(frame))
        return 0;
    t->xtop = t->xstack;
    gthread_read_end(t);
    return 1;
}

struct ghelper_run *gattach_run_state_inside(struct ghelper_run *fallback)
{
    if (!gattach_iso_on())
        return fallback;
    struct giso_xctl *c = giso_xctl_self();
    return c ? giso_xctl_user(c) : fallback;
}

/* First hook hit on this thread: take a released struct or map a new one
 * (mmap, not malloc: malloc itself may be hooked). */
/* Why this thread gets no state, so that hook hits on it run no handlers
 * (gthread_register gives NULL; the templates, finding no state, take the
 * C path, which then returns): REGISTERING while it registers - that calls
 * libc (mmap, pthread_*), which a tool may have hooked (BCC's memleak
 * probes mmap and malloc), and a hit on a thread with no state registers
 * it: without this, again and again until the stack ran out; IGNORED for
 * graft's own threads (gattach_ignore_this_thread). Initial-exec: reading
 * it allocates nothing. */
#define NOSTATE_REGISTERING 0x1
#define NOSTATE_IGNORED     0x2
static __thread int t_nostate __attribute__((tls_model("initial-exec")));

static struct gthread *register_thread(void);

__attribute__((noinline)) struct gthread *gthread_register(void)
{
    if (t_nostate)
        return NULL;
    t_nostate = NOSTATE_REGISTERING;
    struct gthread *t = register_thread();
    t_nostate = 0;
    return t;
}

int gattach_ignore_this_thread(void)
{
    if (t_self)
        return -EBUSY;
    t_nostate |= NOSTATE_IGNORED;
    return 0;
}

static struct gthread *register_thread(void)
{
    struct gthread *t;
    pthread_once(&g_thread_once, thread_key_init);
    for (t = atomic_load(&g_threads); t; t = t->next)
        if (thread_take(t))
            goto got;
    t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED)
        return NULL;
    atomic_store(&t->in_use, GTH_LIVE);
    t->next = atomic_load(&g_threads);
    while (!atomic_compare_exchange_weak(&g_threads, &t->next, t))
        ;
got:
    t->depth = 0;
    if (bind_control_block(t) < 0) {
        atomic_store(&t->in_use, GTH_FREE);
        return NULL;
    }
    pthread_setspecific(g_thread_key, t);
    gthread_xstack_ensure(t);
    /* last: until t is complete (its extension stack mapped), a hit on a
     * function the set-up calls finds no state and runs nothing */
    t_self = t;
    return t;
}

uint64_t gattach_call_ext(uint64_t (*fn)(void *ctx, uint64_t len), void *ctx, uint64_t len)
{
    struct gthread *t = t_self;
    if (!t)
        t = gthread_register();      /* allocates and binds the stack */
    else
        gthread_xstack_ensure(t);
    /* none, or busy (nested), or we are in a signal handler on the
     * alternate stack, which must stay the stack of record (sigstk_lo):
     * gates only, the extension's frames below the handler's */
    if (!t || !t->xtop || on_sigaltstack(t))
        return giso_call_ext(fn, ctx, len);
    uint64_t top = t->xtop;
    t->xtop = 0;
    uint64_t r = giso_call_ext_on(fn, ctx, len, top);
    t->xtop = top;
    return r;
}

static int g_membarrier_ok = -1;

/* A full memory barrier on every thread of the process. */
static void barrier_all_threads(void)
{
    if (g_membarrier_ok < 0)
        g_membarrier_ok = syscall(SYS_membarrier,
                                  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    if (g_membarrier_ok &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
    /* Fallback: changing a page's protection shoots down the TLB on every
     * CPU running this mm, which interrupts (and so serialises) them. */
    static void *page;
    if (!page)
        page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED && page) {
        *(volatile char *)page = 1;
        mprotect(page, 4096, PROT_READ);
        mprotect(page, 4096, PROT_READ | PROT_WRITE);
    }
    atomic_thread_fence(memory_order_seq_cst);
}

/* Bump the grace period, then wait for every thread whose read section
 * began before (see thread_state.h). */
void gthread_synchronize(void)
{
    barrier_all_threads();
    uint64_t gp = atomic_fetch_add(&g_gp, 1) + 1;
    barrier_all_threads();
    for (struct gthread *t = atomic_load(&g_threads); t; t = t->next) {
        if (t == t_self)
            continue;   /* remove() from inside a handler: don't wait on us */
        /* rcu_ctr is host-writable: also wait while the thread's keyed
         * block says an extension is on its stack (a host that clears or
         * raises the counter cannot make us free code still running). */
        for (;;) {
            uint64_t c = atomic_load(&t->rcu_ctr);
            if ((c == 0 || c >= gp) && !giso_xctl_busy(t->xctl))
                break;
            sched_yield();
        }
    }
}

void gthread_wait_ext_idle(void)
{
    if (!gattach_iso_on())
        return;
    for (struct gthread *t = atomic_load(&g_threads); t; t = t->next)
        if (t != t_self)
            while (giso_xctl_busy(t->xctl))
                sched_yield();
}

struct ghelper_run *gattach_run_state(void)
{
    struct gthread *t = t_self;
    if (__builtin_expect(!t, 0))
        t = gthread_register();
    return t ? t->rs : ghelper_run_state();
}
