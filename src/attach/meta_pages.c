/*
 * meta_pages.c - the metadata that steers function-hook trampolines, kept
 * read-only except while graft itself changes it.
 *
 * A trampoline finds its handlers through its struct gsite (a constant in
 * the stub) and the site's current snapshot (struct ghandlers: function
 * pointers and cookies); the SIGTRAP handler finds sites through the site
 * table. A stray or hostile host write to any of these would make the next
 * hook hit call code of the host's choosing - with the extension key
 * enabled when isolation is on. The trampolines read them before their
 * entry gate, so they cannot carry the extension key; instead they live in
 * one arena that is mapped read-only, and made writable only between
 * gmeta_open() and gmeta_close(), which func_hook.c and entry_site.c call
 * around every change they make. Two mprotect() calls per attach or
 * detach, nothing on the hook path. The window has its own (recursive)
 * lock, taken after the callers' own locks, never before.
 *
 * Allocation: first fit over 64-byte units of a reserved region (sites are
 * never freed; snapshots are, after their grace period). The allocator's
 * own bitmap is ordinary memory: corrupting it can only make graft reuse
 * or waste arena space, not redirect a hook.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attach/func_internal.h"

#define META_UNIT 64u
#define META_ARENA (32u << 20)                  /* reserved, not committed */
#define META_UNITS (META_ARENA / META_UNIT)

static uint8_t *g_base;
static size_t g_high;                           /* bytes ever handed out, page-rounded */
static uint64_t g_used[META_UNITS / 64];        /* one bit per unit */
static int g_open;                              /* nesting of gmeta_open() */
static pthread_mutex_t g_meta_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) & ~(pg - 1);
}

static int arena_init(void)
{
    if (g_base)
        return 0;
    void *p = mmap(NULL, META_ARENA, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    g_base = p;
    return 0;
}

void gmeta_open(void)
{
    pthread_mutex_lock(&g_meta_lock);
    if (g_open++ == 0 && g_high)
        mprotect(g_base, g_high, PROT_READ | PROT_WRITE);
}

void gmeta_close(void)
{
    if (--g_open == 0 && g_high)
        mprotect(g_base, g_high, PROT_READ);
    pthread_mutex_unlock(&g_meta_lock);
}

static int unit_used(size_t u)
{
    return (g_used[u / 64] >> (u % 64)) & 1;
}

static void units_mark(size_t u, size_t n, int used)
{
    for (size_t i = u; i < u + n; i++) {
        if (used)
            g_used[i / 64] |= 1ull << (i % 64);
        else
            g_used[i / 64] &= ~(1ull << (i % 64));
    }
}

void *gmeta_alloc(size_t size)
{
    if (!g_open || !size || arena_init() < 0)
        return NULL;
    size_t need = (size + META_UNIT - 1) / META_UNIT;
    for (size_t u = 0; u + need <= META_UNITS;) {
        size_t run = 0;
        while (run < need && !unit_used(u + run))
            run++;
        if (run < need) {
            u += run + 1;
            continue;
        }
        size_t end = page_round((u + need) * META_UNIT);
        if (end > g_high) {                     /* new pages: writable while open */
            if (mprotect(g_base + g_high, end - g_high, PROT_READ | PROT_WRITE) < 0)
                return NULL;
            g_high = end;
        }
        units_mark(u, need, 1);
        void *p = g_base + u * META_UNIT;
        memset(p, 0, need * META_UNIT);
        return p;
    }
    return NULL;
}

void gmeta_free(void *p, size_t size)
{
    if (!p)
        return;
    size_t u = (size_t)((uint8_t *)p - g_base) / META_UNIT;
    units_mark(u, (size + META_UNIT - 1) / META_UNIT, 0);
}
