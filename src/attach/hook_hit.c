/*
 * hook_hit.c - what a function-hook hit runs in C: graft_hook_enter and
 * graft_hook_return (the shared trampoline bodies of tramp_x86.c call them;
 * so do the per-site templates, on their slow paths: first hit on a
 * thread, recursion, replace, a full shadow stack), the per-thread shadow
 * stack of return probes, and the counters of what was skipped. Also the
 * continuation graft_tramp_skip that graft_hook_enter picks to skip a
 * function: it is defined here, not with the bodies, so that this file
 * needs nothing from tramp_x86.c.
 *
 * Hot path: for hooks at a function entry it is the per-site templates
 * (which read struct gthread and the snapshot directly, with the same
 * protocol as below); this is the path of mid-function probes. No locks,
 * no atomics with lock prefix: the snapshot is read inside the thread's
 * read section (thread_state.h); a hit while the thread already runs
 * handlers skips its own (counted in st_missed).
 *
 * st_missed is a plain symbol because the return templates count into it
 * by address (ghit_missed_addr, patched in by tramp_reloc.c).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "attach/func_internal.h"

/* The stub's slot and gap are still on the stack: drop them and return to
 * the caller with the override value already in rax. */
__asm__(
    "  .text\n"
    "  .globl graft_tramp_skip\n"
    "  .hidden graft_tramp_skip\n"
    "  .type graft_tramp_skip, @function\n"
    "  .p2align 4\n"
    "graft_tramp_skip:\n"
    "  lea 136(%rsp), %rsp\n"
    "  ret\n"
    "  .size graft_tramp_skip, .-graft_tramp_skip\n");

_Atomic uint64_t st_missed GHIDDEN;
static _Atomic uint64_t st_overflow, st_stale;

uint64_t ghit_missed_addr(void)
{
    return (uint64_t)&st_missed;
}

void ghit_get_stats(struct gattach_stats *st)
{
    st->shadow_overflows = atomic_load(&st_overflow);
    st->missed_recursion = atomic_load(&st_missed);
    st->stale_discarded = atomic_load(&st_stale);
}

/* The handlers of one hit on a C path, in order, with the run state filled
 * for them: for isolation, one loop behind one gate pair on the extension
 * stack (gattach_call_ext), however many handlers share the site - not a C
 * gate pair around each fill and read of the keyed run state and a call
 * gate per handler. The struct lives on the host stack (key 0, which
 * extension-side code may use). */
struct hit_run {
    struct ghelper_run *rs;
    const struct ghandlers *hs;
    struct graft_pt_regs *regs;
    uint64_t func_ip;
    int at_return;
    int skip;                       /* entry: an override or replace decided */
    uint64_t value;                 /* ... the return value */
};

/* Run one handler with its cookie; 1 if it called bpf_override_return. */
static int hit_call(struct hit_run *h, struct ghelper_run *rs, const struct gslot *s,
                    uint64_t *ret)
{
    rs->cookie = s->cookie;
    *ret = s->fn(h->regs, sizeof(*h->regs));
    return rs->override_set;
}

static uint64_t hit_entry(void *arg, uint64_t unused)
{
    struct hit_run *h = arg;
    const struct ghandlers *hs = h->hs;
    uint64_t r;
    /* the keyed run state from the validated control block, not h->rs */
    struct ghelper_run *rs = gattach_run_state_inside(h->rs);
    (void)unused;
    *rs = (struct ghelper_run){ .ctx = h->regs, .regs = h->regs, .func_ip = h->func_ip };
    for (uint32_t i = 0; i < hs->n_entry; i++)
        if (hit_call(h, rs, &hs->entry[i], &r) && hs->entry[i].kind == GHOOK_OVERRIDE) {
            h->skip = 1;
            h->value = rs->override_value;
            return 0;
        }
    if (hs->has_replace) {
        hit_call(h, rs, &hs->replace, &r);
        h->skip = 1;
        h->value = r;
    }
    return 0;
}

static uint64_t hit_return(void *arg, uint64_t unused)
{
    struct hit_run *h = arg;
    uint64_t r;
    struct ghelper_run *rs = gattach_run_state_inside(h->rs);
    (void)unused;
    *rs = (struct ghelper_run){ .ctx = h->regs, .regs = h->regs, .func_ip = h->func_ip,
                                .at_return = 1 };
    for (uint32_t i = 0; i < h->hs->n_ret; i++)
        hit_call(h, rs, &h->hs->ret[i], &r);
    return 0;
}

static inline void run_handlers(struct hit_run *h, uint64_t (*fn)(void *, uint64_t))
{
    if (__builtin_expect(gattach_iso_on(), 0))
        gattach_call_ext(fn, h, 0);
    else
        fn(h, 0);
}

/* Before a shadow push for slot: drop the entries of frames that are gone,
 * those at or below the slot (longjmp, exceptions: the slot is reused) -
 * but not a live one at this very slot, which the slot still shows by
 * holding its site's return template: that function tail-called (jmp)
 * this one, as glibc's realloc(NULL, n) does malloc, and the two share
 * the return. Both entries stay; the return runs the inner one's handlers,
 * then returns into the outer one's template, which finds its own entry
 * on top (the kernel chains its uretprobe instances the same way). */
static void drop_stale(struct gthread *t, const uint64_t *slot)
{
    while (t->depth) {
        const struct gshadow *top = &t->shadow[t->depth - 1];
        if (top->slot > (uint64_t)slot ||
            (top->slot == (uint64_t)slot && *slot == top->site->ret_tramp))
            break;
        t->depth--;
        atomic_fetch_add_explicit(&st_stale, 1, memory_order_relaxed);
    }
}

uint64_t graft_hook_enter(struct graft_pt_regs *regs, struct gsite *site)
{
    struct gthread *t = gthread_self();
    uint64_t cont = site->cont;

    regs->ip = site->addr;
    if (__builtin_expect(!t, 0)) {
        t = gthread_register();
        if (!t)
            return cont;
    }
    if (gthread_in_handlers(t) && !gthread_release_stale(t, (uint64_t)regs)) {
        atomic_fetch_add_explicit(&st_missed, 1, memory_order_relaxed);
        return cont;
    }
    if (__builtin_expect(gattach_iso_on(), 0))
        gthread_xstack_ensure(t);           /* a thread registered before isolation */
    gthread_read_begin(t);
    const struct ghandlers *hs = atomic_load_explicit(&site->hs, memory_order_acquire);
    if (hs) {
        struct hit_run h = { .rs = t->rs, .hs = hs, .regs = regs, .func_ip = site->addr };
        run_handlers(&h, hit_entry);
        int skip = h.skip;
        uint64_t value = h.value;
        if (skip) {
            regs->ax = value;
            cont = (uint64_t)graft_tramp_skip;
        } else if (hs->n_ret) {
            uint64_t *slot = (uint64_t *)regs->sp;
            drop_stale(t, slot);
            if (t->depth < GATTACH_SHADOW_DEPTH) {
                struct gshadow *e = &t->shadow[t->depth++];
                e->slot = (uint64_t)slot;
                e->ret = *slot;
                e->site = site;
                *slot = site->ret_tramp;
            } else {
                atomic_fetch_add_explicit(&st_overflow, 1, memory_order_relaxed);
            }
        }
    }
    gthread_read_end(t);
    return cont;
}

int graft_hook_enter_slow(struct graft_pt_regs *regs, struct gsite *site)
{
    return graft_hook_enter(regs, site) == (uint64_t)graft_tramp_skip;
}

/* Shadow push when the fast path saw stale entries on top (or an entry at
 * this slot: a tail call, see drop_stale) or a full stack. */
void graft_shadow_push_slow(struct gthread *t, uint64_t *slot, struct gsite *site)
{
    drop_stale(t, slot);
    if (t->depth < GATTACH_SHADOW_DEPTH) {
        struct gshadow *e = &t->shadow[t->depth++];
        e->slot = (uint64_t)slot;
        e->ret = *slot;
        e->site = site;
        *slot = site->ret_tramp;
    } else {
        atomic_fetch_add_explicit(&st_overflow, 1, memory_order_relaxed);
    }
}

static __attribute__((noreturn, cold)) void shadow_lost(uint64_t *slot)
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg),
                     "graft: return probe trampoline hit with no shadow-stack "
                     "entry for slot %p (stack switched?); aborting\n",
                     (void *)slot);
    if (n > 0)
        (void)!write(2, msg, (size_t)n);
    abort();
}

uint64_t graft_hook_return(struct graft_pt_regs *regs, uint64_t *slot)
{
    struct gthread *t = gthread_self();
    struct gshadow *e = NULL;

    if (!t)
        shadow_lost(slot);
    while (t->depth) {
        struct gshadow *top = &t->shadow[t->depth - 1];
        if (top->slot == (uint64_t)slot) {
            e = top;
            break;
        }
        if (top->slot > (uint64_t)slot)
            break;          /* an outer frame: ours is missing */
        t->depth--;         /* a frame skipped by longjmp */
        atomic_fetch_add_explicit(&st_stale, 1, memory_order_relaxed);
    }
    if (!e)
        shadow_lost(slot);
    t->depth--;
    uint64_t ret = e->ret;
    struct gsite *site = e->site;

    regs->ip = ret;
    if (gthread_in_handlers(t)) {
        atomic_fetch_add_explicit(&st_missed, 1, memory_order_relaxed);
        return ret;
    }
    if (__builtin_expect(gattach_iso_on(), 0))
        gthread_xstack_ensure(t);
    gthread_read_begin(t);
    const struct ghandlers *hs = atomic_load_explicit(&site->hs, memory_order_acquire);
    if (hs && hs->n_ret) {
        struct hit_run h = { .rs = t->rs, .hs = hs, .regs = regs, .func_ip = site->addr,
                             .at_return = 1 };
        run_handlers(&h, hit_return);
    }
    gthread_read_end(t);
    return ret;
}
