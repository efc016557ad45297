/*
 * thread_state.h - per-thread hook state (struct gthread) and the
 * grace-period counter of the handlers' userspace RCU, both owned by
 * thread_state.c. Not for use outside src/attach/.
 *
 * Who uses what:
 *  - the entry/return templates (tramp_x86.c) read and write the calling
 *    thread's struct gthread at the GTH_OFF_* offsets, reached through the
 *    %fs offset gthread_tls_offset(), and read the counter at
 *    gthread_gp_addr(); tramp_reloc.c patches both into each stub;
 *  - the C hit paths (hook_hit.c, entry_site.c, syscall_dispatch.c) use
 *    gthread_self()/gthread_register(), the read-section inlines below,
 *    gattach_run_state() and gattach_call_ext();
 *  - the writer side (func_hook.c) waits with gthread_synchronize().
 * Every struct gthread lives on one list, is never freed and is reused
 * after its thread exits, so a template may keep a pointer to it.
 */
#ifndef GRAFT_ATTACH_THREAD_STATE_H
#define GRAFT_ATTACH_THREAD_STATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "attach/attach.h"
#include "attach/hook_mode.h"

struct gsite;
struct ghelper_run;

/* Per-thread state (mmap'ed, never freed, reused after the thread
 * exits). Offsets fixed: the templates use them. */
struct gshadow {
    uint64_t slot;                  /* address of the return-address slot */
    uint64_t ret;                   /* the real return address */
    struct gsite *site;
};

struct gthread {
    _Atomic uint64_t rcu_ctr;       /* 0: 0 = not reading; else grace period seen */
    _Atomic int in_use;             /* 8: GTH_FREE, GTH_LIVE or GTH_EXITING */
    uint32_t depth;                 /* 12: shadow entries in use */
    struct ghelper_run *rs;         /* 16: ghelper_run_state() of the thread */
    /* 24 (GTH_OFF_XTOP): the top of this thread's extension stack while it
     * is free, 0 while an extension runs on it (or is suspended in a host
     * call from it) and before it exists. The gated templates take it (set
     * it to 0) when they switch rsp to it around their handler loops, and
     * put it back after; they go to the C path when it is 0. */
    uint64_t xtop;
    /* 32 (GTH_OFF_XCTL): with isolation on, the thread's keyed control
     * block (giso_xctl_new, kept with the struct like xstack, bound to the
     * owning thread): the truth about its extension stack (xtop above is
     * only the host-side hint the templates branch on before their entry
     * gate) and, in its user area, the helpers' run state (rs points
     * there). The gated templates go to the C path while it is NULL (a
     * thread registered before isolation was switched on). */
    struct giso_xctl *xctl;
    struct gshadow shadow[GATTACH_SHADOW_DEPTH];   /* GTH_OFF_SHADOW */
    struct gthread *next;
    /* The extension stack itself (giso_xstack_alloc: tagged with the
     * extension key, isolation on only), allocated at the first hit with
     * isolation on and kept with the struct when it is reused, so a stack
     * is never freed nor shared by two live threads. */
    uint64_t xstack;
    /* With extension stacks, a sigaltstack (untagged) for the thread if it
     * had none, kept with the struct like xstack; altstack_on: installed
     * for the thread that owns the struct now. */
    void *altstack;
    int altstack_on;
    /* The thread's signal alternate stack [sigstk_lo, sigstk_hi) as
     * altstack_ensure found or installed it (0, 0: none). A C path that
     * runs on it (a hook hit inside an SA_ONSTACK handler: graft's SIGSYS
     * handler in the seccomp mode, or a host one) must not switch to the
     * extension stack: the kernel would then think the thread had left the
     * alternate stack and build the next signal's frame at its top, over
     * the frames of the handler still running there. */
    uint64_t sigstk_lo, sigstk_hi;
    /* GTH_EXITING: the kernel tid of the owner, which is past its TSD
     * destructors but may still make syscalls (see thread_release). */
    int32_t exit_tid;
};
/* in_use: a struct is taken only when free, or when exiting and its
 * owner is gone (gthread_register). */
#define GTH_FREE 0
#define GTH_LIVE 1
#define GTH_EXITING 2
#define GTH_OFF_SHADOW 40
#define GTH_ALTSTACK_SIZE (64u * 1024u)
#define GTH_OFF_XTOP 24
#define GTH_OFF_XCTL 32

/* The calling thread's struct gthread, NULL before its first hook hit.
 * Initial-exec TLS (thread_state.c writes it) read at a constant %fs
 * offset, here and by the templates. */
static inline struct gthread *gthread_self(void)
{
    extern __thread struct gthread *t_self
        __attribute__((tls_model("initial-exec"))) GHIDDEN;
    return t_self;
}

/* First hook hit on this thread: take a released struct or map a new one;
 * NULL if none could be mapped, or when called again while this thread
 * registers (a hook on what registering calls: mmap, malloc). */
struct gthread *gthread_register(void) GHIDDEN;

/* With isolation on, make sure t has its keyed control block and, with
 * extension stacks, its extension stack (and an alternate signal stack);
 * for a thread registered before the mode was switched on. Split so that the
 * hit paths test the mode inline, as they did when this was a static
 * function next to them. */
void gthread_xstack_setup(struct gthread *t) GHIDDEN;
static inline void gthread_xstack_ensure(struct gthread *t)
{
    if (!gattach_iso_on() || (t->xctl && !gattach_xstacks_on()))
        return;
    gthread_xstack_setup(t);
}

/* ---- the handlers' read sections (userspace RCU) -------------------------
 * A thread stores the current grace period in t->rcu_ctr, reads a site's
 * snapshot, runs its handlers and clears the counter; the writer bumps the
 * counter and waits for every thread still inside an older section
 * (gthread_synchronize). The counter starts at 1 and only grows, so
 * rcu_ctr != 0 means "inside". */

static inline const _Atomic uint64_t *gthread_gp(void)
{
    extern _Atomic uint64_t g_gp GHIDDEN;
    return &g_gp;
}

/* For the templates, which load the counter from this address. */
static inline uint64_t gthread_gp_addr(void)
{
    return (uint64_t)gthread_gp();
}

/* %fs offset of this thread's struct gthread pointer, for the templates. */
uint64_t gthread_tls_offset(void) GHIDDEN;

/* Inside a read section = running handlers. */
static inline int gthread_in_handlers(struct gthread *t)
{
    return atomic_load_explicit(&t->rcu_ctr, memory_order_relaxed) != 0;
}

static inline void gthread_read_begin(struct gthread *t)
{
    atomic_store_explicit(&t->rcu_ctr,
                          atomic_load_explicit(gthread_gp(), memory_order_relaxed),
                          memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void gthread_read_end(struct gthread *t)
{
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&t->rcu_ctr, 0, memory_order_release);
}

/* A hit that finds t inside a read section: is that section left over
 * from a host function that longjmp'd out of an extension (frame, the new
 * trampoline frame, at or above the host call the thunk recorded in the
 * keyed block, on the thread's own stack)? Then release it (stack free,
 * section ended) and return 1; 0 for real nesting. */
int gthread_release_stale(struct gthread *t, uint64_t frame) GHIDDEN;

/* Wait until no other thread's keyed control block says an extension is
 * on its stack (each seen free once): for removers whose own in-flight
 * count is host-writable (GRAFT_ENTRY sites). No-op without isolation. */
void gthread_wait_ext_idle(void) GHIDDEN;

/* Wait until no thread is inside a read section that began before now
 * (except the caller's own: a remove from inside a handler). */
void gthread_synchronize(void) GHIDDEN;

/* ---- running handlers from C ---------------------------------------------- */

/* Call one handler between gates on this thread's extension stack (thread_state.c):
 * registers the thread's struct gthread and allocates its stack if needed
 * (binding it, giso_xstack_bind), and runs fn through giso_call_ext_on() on
 * it unless it is busy (nested: then on the caller's stack) or could not be
 * allocated. For the C paths, the syscall
 * dispatcher's included. Only with isolation on. */
uint64_t gattach_call_ext(uint64_t (*fn)(void *ctx, uint64_t len), void *ctx,
                          uint64_t len) GHIDDEN;
/* The C paths (hook_hit.c, entry_site.c, syscall_dispatch.c) run a hit's
 * handlers as one loop: directly when isolation is off, else through one
 * gattach_call_ext() - one gate pair, on the extension stack - inside which
 * the keyed run state (struct ghelper_run, gthread.rs) is filled and read
 * without further gates. */

/* This thread's run state for a C path: its gthread's (registering the
 * thread if needed, so with isolation on it is the keyed one). With
 * isolation on the pointer is only a host-side value: the handler loops,
 * running behind the gate, take gattach_run_state_inside() instead. */
struct ghelper_run *gattach_run_state(void) GHIDDEN;
/* Extension-side (PKRU ext, or isolation off): the run state to fill, from
 * this thread's validated control block (never a host-writable pointer);
 * with isolation off, or no block, `fallback`. */
struct ghelper_run *gattach_run_state_inside(struct ghelper_run *fallback) GHIDDEN;

/* 1 (once) when this thread's signal alternate stack was installed by graft
 * (altstack_ensure) since the last call. The seccomp mode's SIGSYS handler
 * asks at its end: a sigaltstack() made inside a signal handler is undone
 * by that handler's rt_sigreturn (the kernel restores the altstack the
 * frame saved, uc_stack), and with every syscall trapped the first hook hit
 * of a thread is always inside the handler - so it copies the stack into
 * its frame's uc_stack to keep it. */
int gthread_take_altstack_change(void) GHIDDEN;

#endif
