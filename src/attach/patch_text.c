/*
 * patch_text.c - writing code bytes of the running process safely.
 *
 * Cross-modifying code that other threads may be executing follows the
 * int3-first protocol (as Linux's text_poke_bp): write 0xCC over byte 0,
 * serialise every core, write bytes 1..n-1, serialise, write byte 0,
 * serialise. At any moment a thread sees either the old instruction, the
 * int3 (our SIGTRAP handler sends it to the site's stub, which behaves like
 * the original code plus hooks) or the complete new jump. Restoring the
 * original bytes runs the same steps in the same order.
 *
 * The jump covers more than one original instruction when the first is
 * shorter than 5 bytes; threads stopped between them are moved out first
 * (thread_park.c) and, if that cannot be done, the int3 stays.
 *
 * Bytes are written through /proc/self/mem, which ignores page protections,
 * so text pages never become writable; if that fails we fall back to
 * mprotect(RWX) around the write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attach/func_internal.h"

static int g_mem_fd = -2;
static int g_sync_core = -1;

int gpatch_write(uint64_t addr, const void *bytes, size_t n, struct graft_err *err)
{
    if (g_mem_fd == -2)
        g_mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (g_mem_fd >= 0 && pwrite(g_mem_fd, bytes, n, (off_t)addr) == (ssize_t)n)
        return 0;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t lo = addr & ~(uint64_t)(pg - 1);
    uint64_t hi = (addr + n + pg - 1) & ~(uint64_t)(pg - 1);
    if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC) < 0)
        return graft_errf(err, -errno, "attach: cannot write code at %p: %s",
                          (void *)addr, strerror(errno));
    memcpy((void *)addr, bytes, n);
    mprotect((void *)lo, hi - lo, PROT_READ | PROT_EXEC);
    return 0;
}

/* Make every thread of the process execute a serialising instruction, so
 * none keeps running stale pre-decoded bytes. */
void gpatch_sync_cores(void)
{
    if (g_sync_core < 0)
        g_sync_core = syscall(SYS_membarrier,
                              MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0;
    if (g_sync_core &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0)
        return;
    /* Fallback: a protection change forces a TLB-shootdown IPI to every CPU
     * running this mm; returning from the interrupt serialises. */
    static void *page;
    if (!page)
        page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page && page != MAP_FAILED) {
        *(volatile char *)page = 1;
        mprotect(page, 4096, PROT_READ);
        mprotect(page, 4096, PROT_READ | PROT_WRITE);
    }
}

/* The int3-first protocol in its two halves: the int3 over byte 0, then
 * (once nothing else has to happen in between) bytes 1..len-1 and byte 0. */
static int patch_begin(uint64_t addr, struct graft_err *err)
{
    static const uint8_t int3 = 0xCC;
    int rc = gpatch_write(addr, &int3, 1, err);
    if (rc == 0)
        gpatch_sync_cores();
    return rc;
}

static int patch_finish(uint64_t addr, const uint8_t *new, size_t len, struct graft_err *err)
{
    int rc;
    if (len > 1) {
        if ((rc = gpatch_write(addr + 1, new + 1, len - 1, err)) < 0)
            return rc;
        gpatch_sync_cores();
    }
    if ((rc = gpatch_write(addr, new, 1, err)) < 0)
        return rc;
    gpatch_sync_cores();
    return 0;
}

/* Replace the len bytes at addr with new[], int3 first. */
int gpatch_replace(uint64_t addr, const uint8_t *new, size_t len, struct graft_err *err)
{
    int rc = patch_begin(addr, err);
    return rc < 0 ? rc : patch_finish(addr, new, len, err);
}

int gpatch_apply(struct gsite *site, struct graft_err *err)
{
    uint8_t code[GPATCH_LEN] = { 0xCC };
    if (site->method == GATTACH_METHOD_JUMP) {
        int32_t rel = (int32_t)((int64_t)site->stub - (int64_t)(site->addr + GPATCH_LEN));
        code[0] = 0xE9;
        memcpy(code + 1, &rel, 4);
    }
    int rc;
    if (site->method != GATTACH_METHOD_JUMP || site->n_inner == 0) {
        if ((rc = gpatch_replace(site->addr, code, site->patch_len, err)) == 0)
            site->patched = 1;
        return rc;
    }
    /* Several instructions under the jump: between the int3 and the rest,
     * move the threads stopped between them. */
    int32_t *tids = NULL;
    int n = 0;
    if ((rc = gpark_list_threads(&tids, &n)) < 0)
        return graft_errf(err, rc, "attach: cannot list the threads of the process: %s",
                          strerror(-rc));
    if ((rc = patch_begin(site->addr, err)) < 0) {
        free(tids);
        return rc;
    }
    site->patched = 1;              /* from here the int3 sends threads to the stub */
    char why[120];
    rc = gpark_threads_out(site, tids, n, why, sizeof(why));
    free(tids);
    if (rc < 0) {
        /* The int3 alone is a complete hook: the original bytes after it
         * are untouched and the stub's relocated copy covers them. */
        site->method = GATTACH_METHOD_TRAP;
        site->patch_len = 1;
        site->int3_kept = 1;
        snprintf(site->note, sizeof(site->note), "int3 kept: %s", why);
        return 0;
    }
    return patch_finish(site->addr, code, GPATCH_LEN, err);
}

int gpatch_revert(struct gsite *site, struct graft_err *err)
{
    int rc = gpatch_replace(site->addr, site->orig, site->patch_len, err);
    if (rc == 0) {
        site->patched = 0;
        if (site->int3_kept) {      /* try the jump again next time */
            site->int3_kept = 0;
            site->method = GATTACH_METHOD_JUMP;
            site->patch_len = GPATCH_LEN;
            site->note[0] = 0;
        }
    }
    return rc;
}
