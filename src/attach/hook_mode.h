/*
 * hook_mode.h - the attach lock and the isolation mode it guards (owned by
 * hook_mode.c). Not for use outside src/attach/.
 *
 * The mode decides which template variant a new site gets and how the C
 * paths run handlers. A site build reads it once and keeps the answer
 * (struct gsite.gated), so the mode may change only under the attach lock,
 * which every site build holds. Hit paths read it without the lock: a hit
 * that sees the old mode behaves as it would have just before the change.
 */
#ifndef GRAFT_ATTACH_HOOK_MODE_H
#define GRAFT_ATTACH_HOOK_MODE_H

#ifndef GHIDDEN
#define GHIDDEN __attribute__((visibility("hidden")))
#endif

/* The lock around everything that changes a site or the mode. */
void gattach_lock(void) GHIDDEN;
void gattach_unlock(void) GHIDDEN;

/* Template variants (struct gsite.gated), one per mode. */
enum { GSITE_PLAIN = 0, GSITE_GATED = 1, GSITE_XSTACK = 2 };

/* The mode is two plain globals (hook_mode.c): g_attach_iso, set by
 * gattach_set_isolation(), and g_attach_xstacks, set by
 * gattach_set_ext_stacks() and only ever 1 with g_attach_iso. Only
 * hook_mode.c writes them; other files read them through the accessors
 * below, which declare them at block scope so that no other file has a
 * name to write through. Accessors, not functions in hook_mode.c, because
 * the C hit paths test the mode on every hit (and a const-qualified view
 * made gcc lay out graft_hook_enter differently).
 *
 * With isolation new sites get the gated templates, the C paths call
 * handlers through gattach_call_ext() and the stub pages' writable views
 * carry the extension key; with extension stacks as well, new sites get
 * the _gs templates and the C paths run handlers on the thread's
 * extension stack. */

/* Set the mode; the caller holds the attach lock. xstacks counts only with
 * iso. */
void gattach_mode_set(int iso, int xstacks) GHIDDEN;

static inline int gattach_iso_on(void)
{
    extern int g_attach_iso GHIDDEN;
    return g_attach_iso;
}

static inline int gattach_xstacks_on(void)
{
    extern int g_attach_xstacks GHIDDEN;
    return g_attach_xstacks;
}

/* The template variant a site built now gets. */
static inline int gattach_iso_mode(void)
{
    return !gattach_iso_on() ? GSITE_PLAIN : gattach_xstacks_on() ? GSITE_XSTACK : GSITE_GATED;
}

#endif
