/*
 * func_hook.c - function hooks: the per-address sites, their handler
 * snapshots, install/remove, the isolation switches and the SIGTRAP
 * handler of int3 sites. What a hit runs is hook_hit.c's.
 *
 * The handler list of a site is an immutable snapshot read under a
 * userspace-RCU read section (thread_state.h): a hit stores the current
 * grace-period number in its thread's counter, reads site->hs, runs the
 * handlers and clears the counter. The writer (gattach_remove) publishes a
 * new snapshot, then waits out a grace period (gthread_synchronize: a
 * membarrier(PRIVATE_EXPEDITED) makes every running thread execute a full
 * barrier - so readers need only compiler barriers - then the counter is
 * bumped and the writer waits until no thread is still in a section that
 * started before). Only then is the old snapshot (and the caller's
 * program) freed.
 *
 * Invariants: sites and stubs are never freed (see func_internal.h). The
 * per-thread state, the read sections and the grace-period wait are
 * thread_state.c's (thread_state.h); a nested hook hit skips its handlers
 * (counted as missed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "attach/func_internal.h"

/* ---- isolation ----------------------------------------------------------- */

int gattach_set_isolation(int on, struct graft_err *err)
{
    if (on && !giso_enabled())
        return graft_errf(err, -ENOTSUP, "attach: cannot gate hooks: %s", giso_status());
    if (on) {
        uint8_t probe[GISO_GATE_MAX];
        if (giso_emit_gate(probe, sizeof(probe), giso_pkru_host()) != GGATE_LEN)
            return graft_errf(err, -EPROTO, "attach: internal: giso_emit_gate() no longer "
                              "emits %d bytes; update GGATE_LEN (func_internal.h)", GGATE_LEN);
    }
    gattach_lock();
    gattach_mode_set(on, gattach_xstacks_on());    /* off also ends extension stacks */
    gattach_unlock();
    gsys_set_isolation(!!on);
    return 0;
}

int gattach_isolation(void)
{
    return gattach_iso_on();
}

int gattach_set_ext_stacks(int on, struct graft_err *err)
{
    if (on && !gattach_iso_on())
        return graft_errf(err, -ENOTSUP, "attach: extension stacks need isolation on "
                          "(gattach_set_isolation): %s", giso_status());
    if (on) {
        /* A host handler without SA_ONSTACK that interrupts an extension
         * starts on its stack with the key closed; graft's SIGSEGV handler
         * (on the thread's alternate stack) lets it run. Kept once set:
         * sites keep their variant, and it acts only on that one fault. */
        int rc = ghelper_safe_mem_init(err);
        if (rc < 0)
            return rc;
        ghelper_safe_mem_set_filter(giso_xstack_fault);
    }
    gattach_lock();
    gattach_mode_set(gattach_iso_on(), on);
    gattach_unlock();
    return 0;
}

int gattach_ext_stacks(void)
{
    return gattach_xstacks_on();
}

static _Atomic uint64_t st_traps;

_Static_assert(offsetof(struct gsite, hs) == GSITE_OFF_HS && offsetof(struct gsite, addr) == 0 &&
               offsetof(struct gsite, ret_only) == GSITE_OFF_RET_ONLY,
               "gsite layout used by the templates");
_Static_assert(offsetof(struct ghandlers, flags) == 12 && offsetof(struct ghandlers, entry) == 40 &&
               offsetof(struct ghandlers, ret) == 48 && sizeof(struct gslot) == 24 &&
               offsetof(struct gslot, kind) == 16 && GHOOK_OVERRIDE == 2,
               "ghandlers layout used by the templates");
_Static_assert(offsetof(struct ghelper_run, ctx) == 0 && offsetof(struct ghelper_run, func_ip) == 8 &&
               offsetof(struct ghelper_run, cookie) == 16 &&
               offsetof(struct ghelper_run, override_set) == 24 &&
               offsetof(struct ghelper_run, override_value) == 32 &&
               offsetof(struct ghelper_run, tail_calls) == 40 &&
               offsetof(struct ghelper_run, regs) == 48 &&
               offsetof(struct ghelper_run, func_nargs) == 56 &&
               offsetof(struct ghelper_run, at_return) == 60,
               "ghelper_run layout used by the templates");

/* ---- sites --------------------------------------------------------------- */

#define GSITE_TABLE 4096            /* power of two; insert-only */
static _Atomic(struct gsite *) *g_site_table;   /* GSITE_TABLE entries, meta arena */

static inline uint32_t site_hash(uint64_t addr)
{
    return (uint32_t)((addr * 0x9E3779B97F4A7C15ull) >> 52) & (GSITE_TABLE - 1);
}

/* Lock-free: called from the SIGTRAP handler. */
struct gsite *gsite_lookup(uint64_t addr)
{
    if (!g_site_table)
        return NULL;
    uint32_t h = site_hash(addr);
    for (uint32_t i = 0; i < GSITE_TABLE; i++) {
        struct gsite *s = atomic_load(&g_site_table[(h + i) & (GSITE_TABLE - 1)]);
        if (!s)
            return NULL;
        if (s->addr == addr)
            return s;
    }
    return NULL;
}

/* Insert s, or replace the site for the same address (whose code was
 * unloaded: the old site and stub are leaked, never freed). */
static struct gsite *g_retired;   /* replaced sites, kept (and reachable) */

static int site_insert(struct gsite *s)
{
    if (!g_site_table &&
        !(g_site_table = gmeta_alloc(GSITE_TABLE * sizeof(*g_site_table))))
        return -ENOMEM;
    uint32_t h = site_hash(s->addr);
    for (uint32_t i = 0; i < GSITE_TABLE; i++) {
        _Atomic(struct gsite *) *p = &g_site_table[(h + i) & (GSITE_TABLE - 1)];
        struct gsite *cur = atomic_load(p);
        if (!cur || cur->addr == s->addr) {
            if (cur) {
                cur->retired_next = g_retired;
                g_retired = cur;
            }
            atomic_store(p, s);
            return 0;
        }
    }
    return -ENOSPC;
}

/* ---- SIGTRAP: int3 fallback hooks and threads caught mid-patch ----------- */

static struct sigaction g_old_trap;
static int g_trap_installed;

static void on_sigtrap(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    struct gsite *s = gsite_lookup(rip - 1);

    if (s && s->stub) {
        atomic_fetch_add_explicit(&st_traps, 1, memory_order_relaxed);
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)s->stub;
        return;
    }
    gtrap_pass_on(&g_old_trap, sig, si, ucv);
}

void gtrap_pass_on(const struct sigaction *old, int sig, siginfo_t *si, void *uc)
{
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Not ours and nobody else wants it: die as without us. */
    signal(SIGTRAP, SIG_DFL);
    raise(SIGTRAP);
}

static int trap_handler_install(struct graft_err *err)
{
    struct sigaction sa;
    if (g_trap_installed)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigtrap;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTRAP, &sa, &g_old_trap) < 0)
        return graft_errf(err, -errno, "attach: cannot install the SIGTRAP handler: %s",
                          strerror(errno));
    g_trap_installed = 1;
    return 0;
}

/* ---- snapshots ------------------------------------------------------------ */

static size_t snapshot_size(uint32_t n_entry, uint32_t n_ret)
{
    return sizeof(struct ghandlers) + (n_entry + n_ret) * sizeof(struct gslot);
}

/* Build the snapshot for site's current hook list (NULL when empty). */
static int snapshot_build(struct gsite *site, struct ghandlers **out)
{
    uint32_t n = 0, ne = 0, nr = 0;
    struct ghook *h;
    for (h = site->hooks; h; h = h->next) {
        n++;
        if (h->kind == GHOOK_ENTRY || h->kind == GHOOK_OVERRIDE)
            ne++;
        else if (h->kind == GHOOK_RETURN)
            nr++;
    }
    *out = NULL;
    if (!n)
        return 0;
    struct ghandlers *hs = gmeta_alloc(snapshot_size(ne, nr));
    if (!hs)
        return -ENOMEM;
    hs->entry = hs->slots;
    hs->ret = hs->slots + ne;
    for (h = site->hooks; h; h = h->next) {
        struct gslot sl = { h->fn, h->cookie, (uint32_t)h->kind };
        if (!h->preserves_fp)
            hs->flags |= GHS_NEED_RS;
        if (!h->preserves_fp && !h->keeps_fp)
            hs->flags |= GHS_SAVE_FP;
        if (h->kind == GHOOK_OVERRIDE)
            hs->flags |= GHS_NEED_RS;    /* override_set must start at 0 */
        if (h->kind == GHOOK_REPLACE)
            hs->flags |= GHS_SLOW;
        if (h->kind == GHOOK_ENTRY || h->kind == GHOOK_OVERRIDE)
            hs->entry[hs->n_entry++] = sl;
        else if (h->kind == GHOOK_RETURN)
            hs->ret[hs->n_ret++] = sl;
        else {
            hs->has_replace = 1;
            hs->replace = sl;
        }
    }
    *out = hs;
    return 0;
}

static int site_publish(struct gsite *site)
{
    struct ghandlers *hs;
    int rc = snapshot_build(site, &hs);
    if (rc < 0)
        return rc;
    struct ghandlers *old = atomic_exchange(&site->hs, hs);
    /* After hs: a thread that still sees the old value behaves as if it
     * had entered just before this publish. */
    atomic_store(&site->ret_only, hs && hs->n_entry == 0 && !hs->has_replace && hs->n_ret > 0);
    if (old) {
        gthread_synchronize();
        gmeta_free(old, snapshot_size(old->n_entry, old->n_ret));
    }
    return 0;
}

/* ---- public API ----------------------------------------------------------- */

static const char *kind_name(enum ghook_kind k)
{
    switch (k) {
    case GHOOK_ENTRY: return "entry";
    case GHOOK_RETURN: return "return";
    case GHOOK_OVERRIDE: return "override";
    case GHOOK_REPLACE: return "replace";
    }
    return "?";
}

static int site_get(uint64_t addr, const struct gattach_opts *opts,
                    struct gsite **out, struct graft_err *err)
{
    struct gsite *s = gsite_lookup(addr);
    /* Reuse the stub unless the code under it changed (library unloaded
     * and another mapped there): then build a new site. */
    if (s && (s->patched || (memcmp((void *)addr, s->orig, s->patch_len) == 0 &&
                             memcmp((void *)addr, s->orig_long, sizeof(s->orig_long)) == 0))) {
        if (s->method == GATTACH_METHOD_TRAP && opts && opts->no_trap_fallback)
            return graft_errf(err, -ENOTSUP, "attach: cannot put a jump at %p: %s "
                              "(int3 fallback disabled)", (void *)addr, s->note);
        if (s->method == GATTACH_METHOD_JUMP && opts && opts->force_trap)
            return graft_errf(err, -EBUSY, "attach: %p is already hooked with a jump; "
                              "force_trap applies only to its first hook", (void *)addr);
        *out = s;
        return 0;
    }
    s = gmeta_alloc(sizeof(*s));
    if (!s)
        return graft_errf(err, -ENOMEM, "attach: out of memory for hook metadata");
    s->addr = addr;
    uint64_t start = 0, size = 0;
    s->is_entry = 1;
    int unknown = 0, rc = gsym_containing(addr, &start, &size);
    if (rc == 0) {
        s->is_entry = start == addr;
        size = size - (addr - start);
    } else {
        size = 0;
        unknown = rc == -ESRCH && !(opts && opts->func_size);
    }
    if (opts && opts->func_size)
        size = opts->func_size;
    /* In a file but in no function symbol (stripped code; not anonymous
     * memory, a JIT's, hooked as before): the function's bounds, so the branches
     * into the bytes a jump would cover, are unknown, and it may be
     * anywhere inside one (flags live): int3, the C path's full save. */
    if (unknown)
        s->is_entry = 0;
    rc = gtramp_build(s, size, (opts && opts->force_trap) || unknown,
                          opts && opts->no_trap_fallback, err);
    if (rc < 0) {
        gmeta_free(s, sizeof(*s));
        return rc;
    }
    if (unknown && !(opts && opts->force_trap))
        snprintf(s->note, sizeof(s->note), "no function symbol covers the address");
    if (site_insert(s) < 0) {
        gmeta_free(s, sizeof(*s));     /* stub memory stays reserved; harmless */
        return graft_errf(err, -ENOSPC, "attach: too many hooked addresses (max %d)",
                          GSITE_TABLE);
    }
    *out = s;
    return 0;
}

int gattach_install(void *addr, enum ghook_kind kind, ghook_handler fn,
                    uint64_t cookie, const struct gattach_opts *opts,
                    struct ghook **out, struct graft_err *err)
{
    struct gsite *site = NULL;
    int rc;

    if (!addr || !fn || !out)
        return graft_errf(err, -EINVAL, "attach: address, handler and out are required");
    if ((unsigned)kind > GHOOK_REPLACE)
        return graft_errf(err, -EINVAL, "attach: unknown hook kind %d", (int)kind);
    gattach_lock();
    gmeta_open();
    rc = trap_handler_install(err);
    if (rc < 0)
        goto out;
    rc = site_get((uint64_t)addr, opts, &site, err);
    if (rc < 0)
        goto out;
    if (kind != GHOOK_ENTRY && !site->is_entry) {
        rc = graft_errf(err, -EINVAL,
                        "attach: %s hooks need a function's first instruction; %p is "
                        "inside a function", kind_name(kind), addr);
        goto out;
    }
    if (kind == GHOOK_REPLACE) {
        for (struct ghook *h = site->hooks; h; h = h->next)
            if (h->kind == GHOOK_REPLACE) {
                rc = graft_errf(err, -EBUSY,
                                "attach: %p already has a replace hook; remove it first", addr);
                goto out;
            }
    }
    struct ghook *h = gmeta_alloc(sizeof(*h));   /* next publish reads it */
    if (!h) {
        rc = graft_errf(err, -ENOMEM, "attach: out of memory for hook metadata");
        goto out;
    }
    h->site = site;
    h->kind = kind;
    h->fn = fn;
    h->cookie = cookie;
    h->preserves_fp = opts && opts->sz >= offsetof(struct gattach_opts, handler_preserves_fp) +
                                              sizeof(int) && opts->handler_preserves_fp;
    h->keeps_fp = opts && opts->sz >= offsetof(struct gattach_opts, handler_keeps_fp) +
                                          sizeof(int) && opts->handler_keeps_fp;
    struct ghook **pp = &site->hooks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = h;
    rc = site_publish(site);
    if (rc == 0 && !site->patched)
        rc = gpatch_apply(site, err);
    if (rc < 0) {
        *pp = NULL;
        site_publish(site);
        gmeta_free(h, sizeof(*h));
        if (err && !err->code)
            graft_errf(err, rc, "attach: cannot hook %p", addr);
        goto out;
    }
    *out = h;
out:
    gmeta_close();
    gattach_unlock();
    return rc;
}

int gattach_remove(struct ghook *h, struct graft_err *err)
{
    int rc = 0;
    if (!h)
        return 0;
    gattach_lock();
    gmeta_open();
    struct gsite *site = h->site;
    struct ghook **pp = &site->hooks;
    while (*pp && *pp != h)
        pp = &(*pp)->next;
    if (!*pp) {
        gmeta_close();
        gattach_unlock();
        return graft_errf(err, -ENOENT, "attach: hook %p is not installed", (void *)h);
    }
    *pp = h->next;
    if (!site->hooks && site->patched)
        rc = gpatch_revert(site, err);
    /* Publishing waits out a grace period, so no thread still runs h->fn. */
    int prc = site_publish(site);
    if (prc < 0 && rc == 0)
        rc = graft_errf(err, prc, "attach: out of memory detaching %p", (void *)site->addr);
    if (!atomic_load(&site->hs) && prc < 0)
        gthread_synchronize();
    gmeta_free(h, sizeof(*h));
    gmeta_close();
    gattach_unlock();
    return rc;
}

enum gattach_method gattach_hook_method(const struct ghook *h)
{
    return h ? h->site->method : GATTACH_METHOD_NONE;
}

const char *gattach_method_name(enum gattach_method m)
{
    switch (m) {
    case GATTACH_METHOD_JUMP: return "jump";
    case GATTACH_METHOD_TRAP: return "int3";
    default: return "none";
    }
}

const char *gattach_hook_note(const struct ghook *h)
{
    return h ? h->site->note : "";
}

void gattach_get_stats(struct gattach_stats *st)
{
    ghit_get_stats(st);
    st->trap_hits = atomic_load(&st_traps);
    st->threads_moved = gpark_threads_moved();
}
