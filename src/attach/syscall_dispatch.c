/*
 * syscall_dispatch.c - the registry of syscall programs and the C side of
 * the trampoline: build the kernel's context records, run enter programs,
 * make the real syscall from graft's own instruction, run exit programs.
 *
 * Invariants:
 *  - Readers (any thread, inside any syscall, in signal handlers) never
 *    lock: lists are singly linked, pushed at the head and unlinked with
 *    atomic stores under reg_lock; unlinked links are kept (never freed) so
 *    a reader still walking one is safe.
 *  - gsys_in_hook is set while a program runs on this thread; a syscall made
 *    meanwhile (by a helper, or a signal handler interrupting the program)
 *    runs without programs, like the kernel's recursion guard. It and
 *    gsys_tid are initial-exec TLS: the assembly fast path reads them.
 *  - With isolation on every program runs through gattach_call_ext():
 *    between gates and on the thread's extension stack.
 *  - graft_sys_hooked[nr] is GSYS_H_FAST or GSYS_H_CALLS, and
 *    graft_sys_fast[nr] its link, exactly when nr's only program is an
 *    enter program, nr is not special and programs are not isolated
 *    (set_hooked); FAST if it was attached with handler_preserves_fp. The
 *    assembly then runs it without coming here (CALLS: with the run state
 *    set as run_list sets it, and the first override skipping the syscall).
 *  - graft_sys_hooked[nr] is GSYS_H_PAIR, graft_sys_fast[nr] the enter
 *    link and graft_sys_fast_exit[nr] the exit link, exactly when nr's
 *    programs are one enter and one exit program under the same conditions
 *    (pair_links): the assembly runs both around the syscall.
 *  - Overrides: bpf_override_return() sets ghelper_run_state()->override_*;
 *    at enter the first override skips the syscall and is its result; at
 *    exit the last one replaces the result.
 */
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "attach/syscall_hook.h"
#include "attach/thread_state.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"

_Static_assert(offsetof(struct gsys_link, kind) == GSYS_LINK_OFF_KIND &&
               offsetof(struct gsys_link, fn) == GSYS_LINK_OFF_FN &&
               offsetof(struct gsys_link, cookie) == GSYS_LINK_OFF_COOKIE &&
               offsetof(struct gsys_link, calls_nothing) == GSYS_LINK_OFF_CALLS_NOTHING &&
               offsetof(struct gsys_link, keeps_fp) == GSYS_LINK_OFF_KEEPS_FP &&
               sizeof(enum gsys_kind) == 4, "gsys_link layout used by syscall_tramp.c");

#define KINDS 4
#define NR_SLOTS GSYS_TABLE     /* per-number lists; index NR_SLOTS = all */

static struct gsys_link *_Atomic lists[KINDS][NR_SLOTS + 1];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gsys_link *graveyard;
static int n_all;                          /* links with nr == -1 */
static uint16_t n_per_nr[NR_SLOTS];        /* links per number */

__thread int gsys_in_hook GSYS_TLS_IE GSYS_HIDDEN;
__thread int32_t gsys_tid GSYS_TLS_IE GSYS_HIDDEN;
uint8_t graft_sys_hooked[GSYS_TABLE] GSYS_HIDDEN;
struct gsys_link *_Atomic graft_sys_fast[GSYS_TABLE] GSYS_HIDDEN;
struct gsys_link *_Atomic graft_sys_fast_exit[GSYS_TABLE] GSYS_HIDDEN;
static int sys_iso;                        /* gsys_set_isolation */

static void refresh_hooked(void);

void gsys_set_isolation(int on)
{
    pthread_mutex_lock(&reg_lock);
    sys_iso = on;
    refresh_hooked();          /* isolated programs never take the fast path */
    pthread_mutex_unlock(&reg_lock);
}

/* A thread that stays "in the hook" for good: its syscalls run no programs.
 * For graft's own threads (the agent), whose syscalls are not the host's. */
void gsys_ignore_this_thread(void)
{
    gsys_in_hook = 1;
}
volatile int gsys_active GSYS_HIDDEN;
volatile int gsys_mode GSYS_HIDDEN;

void gsys_set_active(int on)
{
    gsys_active = on;
}

void gsys_set_mode(int mode)
{
    gsys_mode = mode;
}

/* ---- registry ---------------------------------------------------------- */

/* nr's program if the assembly can run it: the only program of nr is an
 * enter program, nr is not special, and programs are not isolated (then
 * every program runs through run_list's giso_call_ext). NULL otherwise. */
static struct gsys_link *fast_link(int nr, uint8_t v)
{
    if ((v & GSYS_H_SPECIAL) || sys_iso || gsys_mode != GSYS_MODE_ZPOLINE)
        return NULL;
    struct gsys_link *one = NULL;
    for (int k = 0; k < KINDS; k++)
        for (int all = 0; all < 2; all++)
            for (struct gsys_link *l = atomic_load(&lists[k][all ? NR_SLOTS : nr]); l;
                 l = atomic_load(&l->next)) {
                if (one || k == GSYS_EXIT || k == GSYS_RAW_EXIT)
                    return NULL;
                one = l;
            }
    return one;
}

/* nr's programs if they are one enter and one exit program that the
 * assembly can run around the syscall (conditions as fast_link). */
static int pair_links(int nr, uint8_t v, struct gsys_link **enter, struct gsys_link **exit)
{
    if ((v & GSYS_H_SPECIAL) || sys_iso || gsys_mode != GSYS_MODE_ZPOLINE)
        return 0;
    *enter = *exit = NULL;
    for (int k = 0; k < KINDS; k++)
        for (int all = 0; all < 2; all++)
            for (struct gsys_link *l = atomic_load(&lists[k][all ? NR_SLOTS : nr]); l;
                 l = atomic_load(&l->next)) {
                struct gsys_link **slot = k == GSYS_EXIT || k == GSYS_RAW_EXIT ? exit : enter;
                if (*slot)
                    return 0;
                *slot = l;
            }
    return *enter && *exit;
}

void gsys_mark_special(const int *nrs, size_t n, int on)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *h = &graft_sys_hooked[nrs[i]];
        uint8_t v = on ? (*h | GSYS_H_SPECIAL) : (*h & (uint8_t)~GSYS_H_SPECIAL);
        __atomic_store_n(h, v, __ATOMIC_RELEASE);
    }
}

static void set_hooked(int nr)
{
    uint8_t v = graft_sys_hooked[nr] &
                (uint8_t)~(GSYS_H_PROGS | GSYS_H_FAST | GSYS_H_CALLS | GSYS_H_PAIR);
    struct gsys_link *fast = NULL, *fast_exit = NULL;
    if (gsys_active && (n_all || n_per_nr[nr])) {
        struct gsys_link *pe, *px;
        fast = fast_link(nr, v);
        if (!fast && pair_links(nr, v, &pe, &px)) {
            fast = pe;
            fast_exit = px;
            v |= GSYS_H_PAIR;
        } else {
            v |= !fast ? GSYS_H_PROGS : fast->calls_nothing ? GSYS_H_FAST : GSYS_H_CALLS;
        }
    }
    /* The link is published before the bit that sends the entry to it; a
     * reader that still sees an old FAST/CALLS bit with a NULL link takes
     * the slow path. The assembly takes "calls nothing" from the link it
     * read, not from the bit, so a stale bit never runs a program that calls
     * out without the run state and the xmm save. */
    if (fast_exit)
        atomic_store_explicit(&graft_sys_fast_exit[nr], fast_exit, memory_order_release);
    if (fast)
        atomic_store_explicit(&graft_sys_fast[nr], fast, memory_order_release);
    __atomic_store_n(&graft_sys_hooked[nr], v, __ATOMIC_RELEASE);
    if (!fast)
        atomic_store_explicit(&graft_sys_fast[nr], NULL, memory_order_release);
    if (!fast_exit)
        atomic_store_explicit(&graft_sys_fast_exit[nr], NULL, memory_order_release);
}

/* Recompute every number's PROGS bit (after attach/detach/install). */
static void refresh_hooked(void)
{
    for (int i = 0; i < NR_SLOTS; i++)
        set_hooked(i);
}

void gsys_refresh_hooked(void)
{
    pthread_mutex_lock(&reg_lock);
    refresh_hooked();
    pthread_mutex_unlock(&reg_lock);
}

int gsys_attach(enum gsys_kind kind, int nr, gsys_handler fn, uint64_t cookie,
                struct gsys_link **out, struct graft_err *err)
{
    struct gsys_attach_opts o = {.sz = sizeof(o), .cookie = cookie};
    return gsys_attach_opts(kind, nr, fn, &o, out, err);
}

int gsys_attach_opts(enum gsys_kind kind, int nr, gsys_handler fn,
                     const struct gsys_attach_opts *opts, struct gsys_link **out,
                     struct graft_err *err)
{
    /* fields beyond what the caller's struct has read as 0 */
    struct gsys_attach_opts o = {0};
    if (opts)
        memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
    if ((unsigned)kind >= KINDS)
        return graft_errf(err, -EINVAL, "gsys_attach: unknown kind %d", (int)kind);
    if (nr < -1 || nr >= NR_SLOTS)
        return graft_errf(err, -EINVAL, "gsys_attach: syscall number %d out of "
                          "range (-1 for all, or 0..%d)", nr, NR_SLOTS - 1);
    if (!fn || !out)
        return graft_errf(err, -EINVAL, "gsys_attach: NULL handler or out pointer");
    struct gsys_link *l = calloc(1, sizeof(*l));
    if (!l)
        return graft_errf(err, -ENOMEM, "gsys_attach: out of memory");
    l->kind = kind;
    l->nr = nr;
    l->fn = fn;
    l->cookie = o.cookie;
    l->calls_nothing = o.handler_preserves_fp != 0;
    l->keeps_fp = o.handler_preserves_fp != 0 || o.handler_keeps_fp != 0;
    int slot = nr < 0 ? NR_SLOTS : nr;
    pthread_mutex_lock(&reg_lock);
    /* Append at the tail: programs run in attach order. */
    struct gsys_link *_Atomic *pp = &lists[kind][slot];
    while (atomic_load(pp))
        pp = &atomic_load(pp)->next;
    atomic_store_explicit(pp, l, memory_order_release);
    if (nr < 0) {
        n_all++;
        refresh_hooked();
    } else {
        n_per_nr[nr]++;
        set_hooked(nr);
    }
    pthread_mutex_unlock(&reg_lock);
    *out = l;
    return 0;
}

int gsys_detach(struct gsys_link *l)
{
    if (!l)
        return -EINVAL;
    pthread_mutex_lock(&reg_lock);
    if (atomic_load(&l->dead)) {
        pthread_mutex_unlock(&reg_lock);
        return -ENOENT;
    }
    int slot = l->nr < 0 ? NR_SLOTS : l->nr;
    struct gsys_link *_Atomic *pp = &lists[l->kind][slot];
    while (atomic_load(pp) && atomic_load(pp) != l)
        pp = &atomic_load(pp)->next;
    if (atomic_load(pp) == l)
        atomic_store(pp, atomic_load(&l->next));
    atomic_store(&l->dead, 1);
    l->grave_next = graveyard;
    graveyard = l;
    if (l->nr < 0) {
        n_all--;
        refresh_hooked();
    } else {
        n_per_nr[l->nr]--;
        set_hooked(l->nr);
    }
    pthread_mutex_unlock(&reg_lock);
    /* l stays allocated: a reader may still hold it (see the invariants). */
    return 0;
}

static int parse_kind(const char *s, enum gsys_kind *kind, const char **name)
{
    static const struct { const char *prefix; enum gsys_kind kind; int raw; } p[] = {
        {"tracepoint/syscalls/sys_enter_", GSYS_ENTER, 0},
        {"tracepoint/syscalls/sys_exit_", GSYS_EXIT, 0},
        {"tp/syscalls/sys_enter_", GSYS_ENTER, 0},
        {"tp/syscalls/sys_exit_", GSYS_EXIT, 0},
        {"raw_tracepoint/sys_enter", GSYS_RAW_ENTER, 1},
        {"raw_tracepoint/sys_exit", GSYS_RAW_EXIT, 1},
        {"raw_tp/sys_enter", GSYS_RAW_ENTER, 1},
        {"raw_tp/sys_exit", GSYS_RAW_EXIT, 1},
    };
    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
        size_t n = strlen(p[i].prefix);
        if (strncmp(s, p[i].prefix, n) != 0)
            continue;
        if (p[i].raw && s[n] != '\0')
            continue;
        *kind = p[i].kind;
        *name = p[i].raw ? NULL : s + n;
        return 0;
    }
    return -EINVAL;
}

int gsys_attach_section(const char *section, gsys_handler fn, uint64_t cookie,
                        struct gsys_link **out, struct graft_err *err)
{
    enum gsys_kind kind;
    const char *name;
    if (!section || parse_kind(section, &kind, &name) < 0)
        return graft_errf(err, -EINVAL, "syscall hooks: section '%s' is not "
                          "tracepoint/syscalls/sys_{enter,exit}_NAME or "
                          "raw_tracepoint/sys_{enter,exit}", section ? section : "(null)");
    int nr = -1;
    if (name) {
        nr = gsyscall_tracepoint_nr(name);
        if (nr < 0)
            return graft_errf(err, -ENOENT, "syscall hooks: section '%s': no x86-64 "
                              "syscall named '%s'", section, name);
    }
    return gsys_attach(kind, nr, fn, cookie, out, err);
}

/* ---- running programs --------------------------------------------------- */

static int32_t my_tid(void)
{
    if (!gsys_tid)
        gsys_tid = (int32_t)gsys_raw(SYS_gettid, 0, 0, 0);
    return gsys_tid;
}

static void fill_regs(struct graft_pt_regs *r, const struct gsys_frame *f,
                      uint64_t ax)
{
    memset(r, 0, sizeof(*r));
    r->di = f->args[0];
    r->si = f->args[1];
    r->dx = f->args[2];
    r->r10 = f->args[3];
    r->r8 = f->args[4];
    r->r9 = f->args[5];
    r->bx = f->rbx;
    r->orig_ax = f->nr;
    r->ax = ax;
}

/* One list run behind a single gate pair (isolation on): the run state is
 * keyed and the programs run on the extension stack, so the whole loop -
 * filling the state, calling each live program, reading its override -
 * runs as extension-side code, called once through gattach_call_ext. One
 * entry and one exit gate per list, however many programs are on it (not
 * four C gate pairs per program). The struct is on the host stack (key 0,
 * which extensions may use). */
struct list_run {
    struct gsys_link *l;
    void *ctx;
    uint64_t len;
    const struct graft_pt_regs *regs;
    struct ghelper_run *rs;
    int at_return, hit;
    uint64_t override;
};

static uint64_t run_list_inside(void *arg, uint64_t unused)
{
    struct list_run *a = arg;
    struct ghelper_run *rs = gattach_run_state_inside(a->rs);   /* keyed, validated */
    (void)unused;
    for (struct gsys_link *l = a->l; l; l = atomic_load_explicit(&l->next, memory_order_acquire)) {
        if (atomic_load_explicit(&l->dead, memory_order_relaxed))
            continue;
        *rs = (struct ghelper_run){ .ctx = a->ctx, .cookie = l->cookie, .regs = a->regs,
                                    .func_nargs = 6, .at_return = a->at_return };
        l->fn(a->ctx, a->len);
        if (rs->override_set && !(a->hit && !a->at_return)) {
            a->override = rs->override_value;
            a->hit = 1;
        }
    }
    return 0;
}

/* Run one list; returns 1 if a program called bpf_override_return. */
static int run_list(struct gsys_link *l, void *ctx, uint64_t len,
                    const struct graft_pt_regs *regs, int at_return,
                    uint64_t *override)
{
    if (!l)             /* callers pass the per-number and the all-syscalls list */
        return 0;       /* alike: an empty one must not cost a gate pair */
    if (__builtin_expect(sys_iso, 0)) {
        struct list_run a = { .l = l, .ctx = ctx, .len = len, .regs = regs,
                              .rs = gattach_run_state(), .at_return = at_return };
        gattach_call_ext(run_list_inside, &a, 0);
        if (a.hit)
            *override = a.override;
        return a.hit;
    }
    int hit = 0;
    for (; l; l = atomic_load_explicit(&l->next, memory_order_acquire)) {
        if (atomic_load_explicit(&l->dead, memory_order_relaxed))
            continue;
        struct ghelper_run *st = &ghelper_run_tls;    /* initial-exec: no call */
        *st = (struct ghelper_run){ .ctx = ctx, .cookie = l->cookie, .regs = regs,
                                    .func_nargs = 6, .at_return = at_return };
        l->fn(ctx, len);
        if (st->override_set && !(hit && !at_return)) {
            *override = st->override_value;
            hit = 1;
        }
    }
    return hit;
}

static struct gsys_link *list_of(int kind, int slot)
{
    return atomic_load_explicit(&lists[kind][slot], memory_order_acquire);
}

int gsys_run_enter(struct gsys_frame *f, uint64_t *override)
{
    if (gsys_in_hook || f->nr >= NR_SLOTS || !gsys_active)
        return 0;
    int nr = (int)f->nr;
    struct gsys_link *tp[2] = {list_of(GSYS_ENTER, nr), list_of(GSYS_ENTER, NR_SLOTS)};
    struct gsys_link *raw[2] = {list_of(GSYS_RAW_ENTER, nr), list_of(GSYS_RAW_ENTER, NR_SLOTS)};
    if (!tp[0] && !tp[1] && !raw[0] && !raw[1])
        return 0;
    gsys_in_hook = 1;
    int hit = 0;
    struct graft_pt_regs regs;
    fill_regs(&regs, f, (uint64_t)-ENOSYS);
    if (tp[0] || tp[1]) {
        struct gsys_enter_ctx c = {.ent = {.pid = my_tid()}, .id = nr};
        memcpy(c.args, f->args, sizeof(c.args));
        for (int i = 0; i < 2 && !hit; i++)
            hit = run_list(tp[i], &c, sizeof(c), &regs, 0, override);
    }
    if (raw[0] || raw[1]) {
        uint64_t c[2] = {(uint64_t)(uintptr_t)&regs, (uint64_t)nr};
        for (int i = 0; i < 2 && !hit; i++)
            hit = run_list(raw[i], c, sizeof(c), &regs, 0, override);
    }
    gsys_in_hook = 0;
    return hit;
}

void gsys_run_exit(struct gsys_frame *f)
{
    if (gsys_in_hook || f->nr >= NR_SLOTS || !gsys_active)
        return;
    int nr = (int)f->nr;
    struct gsys_link *tp[2] = {list_of(GSYS_EXIT, nr), list_of(GSYS_EXIT, NR_SLOTS)};
    struct gsys_link *raw[2] = {list_of(GSYS_RAW_EXIT, nr), list_of(GSYS_RAW_EXIT, NR_SLOTS)};
    if (!tp[0] && !tp[1] && !raw[0] && !raw[1])
        return;
    gsys_in_hook = 1;
    uint64_t ov;
    struct graft_pt_regs regs;
    fill_regs(&regs, f, f->ret);
    if (tp[0] || tp[1]) {
        struct gsys_exit_ctx c = {.ent = {.pid = my_tid()}, .id = nr, .ret = (int64_t)f->ret};
        for (int i = 0; i < 2; i++)
            if (run_list(tp[i], &c, sizeof(c), &regs, 1, &ov)) {
                f->ret = ov;
                c.ret = (int64_t)ov;
                regs.ax = ov;
            }
    }
    if (raw[0] || raw[1]) {
        uint64_t c[2] = {(uint64_t)(uintptr_t)&regs, f->ret};
        for (int i = 0; i < 2; i++)
            if (run_list(raw[i], c, sizeof(c), &regs, 1, &ov)) {
                f->ret = ov;
                c[1] = ov;
                regs.ax = ov;
            }
    }
    gsys_in_hook = 0;
}

static int is_exec_prot(uint64_t prot)
{
    return (prot & PROT_EXEC) != 0;
}

/* Did the new task of this clone run on our TLS (vfork, CLONE_VM without
 * CLONE_SETTLS: posix_spawn)? Whatever it cached per thread is its own. */
static int child_used_our_tls(const struct gsys_frame *f)
{
    uint64_t flags;
    if (f->nr == SYS_vfork)
        return 1;
    if (f->nr == SYS_clone)
        flags = f->args[0];
    else if (f->nr == SYS_clone3)
        flags = ((const struct clone_args *)(uintptr_t)f->args[0])->flags;
    else
        return 0;
    return (flags & CLONE_VM) && !(flags & CLONE_SETTLS);
}

void gsys_new_task_caches(const struct gsys_frame *f)
{
    if ((long)f->ret == 0 || child_used_our_tls(f)) {
        gsys_tid = 0;            /* refilled by graft's own gettid */
        /* The helpers refill theirs through libc's getpid/gettid from inside
         * a program; under seccomp with isolation that nested SIGSYS, taken
         * on a keyed extension stack, stops the programs from running (seen
         * under QEMU; docs/syscalls.md "Limits"). There the child keeps the
         * parent's ids, as before. */
        if (!(sys_iso && gsys_mode != GSYS_MODE_ZPOLINE))
            ghelper_task_forget();
    }
}

/* After a successful mmap/mprotect that made memory executable, rewrite the
 * new code (dlopen, and ld.so mapping libraries). */
static void after_syscall(struct gsys_frame *f)
{
    long r = (long)f->ret;
    if (r < 0 && r > -4096)
        return;
    switch (f->nr) {
    case SYS_mmap:
        if (is_exec_prot(f->args[2]))
            gsys_scan_range(f->ret, f->ret + f->args[1]);
        break;
    case SYS_mprotect:
    case SYS_pkey_mprotect:
        if (is_exec_prot(f->args[2]))
            gsys_scan_range(f->args[0], f->args[0] + f->args[1]);
        break;
    case SYS_clone:
    case SYS_clone3:
    case SYS_fork:
        gsys_new_task_caches(f);
        break;
    }
}

uint64_t gsys_run_plain(struct gsys_frame *f)
{
    uint64_t ov;
    if (gsys_run_enter(f, &ov)) {
        f->ret = ov;
        return ov;
    }
    f->ret = (uint64_t)graft_sys_raw6((long)f->nr, (long)f->args[0], (long)f->args[1],
                                      (long)f->args[2], (long)f->args[3],
                                      (long)f->args[4], (long)f->args[5]);
    if (gsys_mode == GSYS_MODE_ZPOLINE)
        after_syscall(f);
    /* a rename of this thread: bpf_get_current_comm's cache is stale (exit
     * programs of this prctl already see the new name, as in the kernel) */
    if (f->nr == SYS_prctl && f->args[0] == PR_SET_NAME && f->ret == 0)
        ghelper_comm_renamed();
    gsys_run_exit(f);
    return f->ret;
}

/* clone(flags, stack, ...) / clone3(args, size) with a new stack: put
 * {nr, return address} on top of it so the child leaves through
 * graft_sys_exit_entry (see syscall_tramp.c). Returns 1 if prepared. */
static int prepare_child_stack(struct gsys_frame *f)
{
    uint64_t retaddr = *(uint64_t *)((char *)f + GSYS_FRAME_RETADDR);
    uint64_t *top;
    if (f->nr == SYS_clone) {
        if (!f->args[1])
            return 0;
        top = (uint64_t *)(uintptr_t)f->args[1];
        f->args[1] -= 16;
    } else {
        struct clone_args *ca = (struct clone_args *)(uintptr_t)f->args[0];
        if (!ca || f->args[1] < 64 || !ca->stack || ca->stack_size < 16)
            return 0;
        top = (uint64_t *)(uintptr_t)(ca->stack + ca->stack_size);
        ca->stack_size -= 16;
    }
    top[-1] = retaddr;
    top[-2] = f->nr;
    return 1;
}

int graft_sys_dispatch(struct gsys_frame *f)
{
    uint64_t ov;
    switch (f->nr) {
    case SYS_rt_sigreturn:
        gsys_run_enter(f, &ov);     /* cannot be skipped: it has no result */
        return GSYS_ACT_SIGRETURN;
    case SYS_vfork:
        if (gsys_run_enter(f, &ov)) {
            f->ret = ov;
            return GSYS_ACT_RETURN;
        }
        return GSYS_ACT_VFORK;
    case SYS_clone:
    case SYS_clone3:
        if (gsys_run_enter(f, &ov)) {
            f->ret = ov;
            return GSYS_ACT_RETURN;
        }
        if (prepare_child_stack(f))
            return GSYS_ACT_CLONE;
        /* no new stack: fork-like, the child returns through this frame */
        f->ret = (uint64_t)graft_sys_raw6((long)f->nr, (long)f->args[0], (long)f->args[1],
                                          (long)f->args[2], (long)f->args[3],
                                          (long)f->args[4], (long)f->args[5]);
        after_syscall(f);
        gsys_run_exit(f);
        return GSYS_ACT_RETURN;
    default:
        gsys_run_plain(f);
        return GSYS_ACT_RETURN;
    }
}

/* Exit half for the paths that made the syscall in assembly. */
void graft_sys_dispatch_exit(struct gsys_frame *f)
{
    if (f->nr == SYS_clone3 && (long)f->ret != 0) {
        /* parent: undo the 16 bytes taken from the child's stack size */
        struct clone_args *ca = (struct clone_args *)(uintptr_t)f->args[0];
        ca->stack_size += 16;
    }
    if (f->nr == SYS_clone)
        f->args[1] += 16;  /* the caller's rsi, in parent and child alike */
    gsys_new_task_caches(f);   /* child; vfork shares TLS, so the parent too */
    gsys_run_exit(f);
}
