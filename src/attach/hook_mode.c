/*
 * hook_mode.c - owns the attach lock and the isolation mode (see
 * hook_mode.h for who reads them and why the mode changes only under the
 * lock). A leaf: it calls nothing else in src/attach, so every other file
 * may read the mode without creating a cycle.
 */
#include <pthread.h>

#include "attach/hook_mode.h"

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;
int g_attach_iso GHIDDEN;
int g_attach_xstacks GHIDDEN;

void gattach_lock(void)
{
    pthread_mutex_lock(&attach_lock);
}

void gattach_unlock(void)
{
    pthread_mutex_unlock(&attach_lock);
}

void gattach_mode_set(int iso, int xstacks)
{
    g_attach_iso = !!iso;
    g_attach_xstacks = iso && xstacks;
}
