/*
 * semaphore.c - USDT semaphores of uprobes graft runs.
 *
 * A USDT probe with a semaphore fires only while its semaphore (a u16 in
 * the probed binary's .probes section) is non-zero; a tracer increments it
 * while attached. The kernel does it for a uprobe given a ref_ctr_offset
 * (libbpf, bpftrace through the uprobe PMU; `path:0xOFF(0xREF)` in
 * uprobe_events). graft's uprobes are not the kernel's, so the library
 * does it: the semaphore's file offset becomes an address through the
 * target's /proc/PID/maps, and the counter is incremented through
 * /proc/PID/mem when the event is opened and decremented when its last
 * descriptor closes. That needs the process: an event for every process
 * (pid -1) with a semaphore is refused (EOPNOTSUPP, one line).
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEMS 256

struct sem {
    const struct cobj *owner;
    int pid;
    uint64_t addr;
};

static struct sem g_sems[MAX_SEMS];

/* The address in pid of file offset off of the file path (same inode). */
static int sem_address(int pid, const char *path, uint64_t off, uint64_t *addr)
{
    struct stat want;
    if (stat(path, &want) < 0)
        return -errno;
    char mp[64];
    snprintf(mp, sizeof(mp), "/proc/%d/maps", pid);
    FILE *f = fopen(mp, "re");
    if (!f)
        return -errno;
    char line[PATH_MAX + 128];
    int rc = -ENOENT;
    while (rc < 0 && fgets(line, sizeof(line), f)) {
        uint64_t lo, hi, moff, ino;
        unsigned int maj, min;
        char perms[8];
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64, &lo, &hi, perms, &moff, &maj,
                   &min, &ino) != 7)
            continue;
        if (ino != (uint64_t)want.st_ino || off < moff || off >= moff + (hi - lo) || perms[1] != 'w')
            continue;
        *addr = lo + (off - moff);
        rc = 0;
    }
    fclose(f);
    return rc;
}

static int sem_add(int pid, uint64_t addr, int delta)
{
    char mp[64];
    snprintf(mp, sizeof(mp), "/proc/%d/mem", pid);
    int fd = open(mp, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint16_t v;
    int rc = 0;
    if (pread(fd, &v, 2, (off_t)addr) != 2) {
        rc = -EFAULT;
    } else {
        v = (uint16_t)(v + delta);
        if (pwrite(fd, &v, 2, (off_t)addr) != 2)
            rc = -EFAULT;
    }
    close(fd);
    return rc;
}

/* Whether file offset off of path lies in a writable loadable segment, the
 * only place a semaphore can be: the kernel looks for a writable mapping
 * of it and, finding none, never touches anything. (BCC 0.26 sets the
 * offset field to a stray value on every uprobe it opens through the PMU,
 * 6 here; the kernel ignores it for that reason.) */
static int in_writable_segment(const char *path, uint64_t off)
{
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    size_t n = 0;
    int found = 0;
    if (e && elf_getphdrnum(e, &n) == 0)
        for (size_t i = 0; i < n && !found; i++) {
            GElf_Phdr ph;
            found = gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_W) &&
                    off >= ph.p_offset && off + 2 <= ph.p_offset + ph.p_filesz;
        }
    if (e)
        elf_end(e);
    close(fd);
    return found;
}

int gc_sem_get(const struct cobj *owner, int pid, const char *path, uint64_t ref_off)
{
    if (!in_writable_segment(path, ref_off)) {
        if (gc_debug)
            gc_warn("uprobe %s: semaphore offset %#" PRIx64 " is in no writable segment: ignored, as the kernel "
                    "does", path, ref_off);
        return 0;
    }
    if (pid <= 0) {
        gc_warn("uprobe %s: a USDT semaphore (ref_ctr_offset %#" PRIx64 ") for every process: graft sets it "
                "per process only; give the tool a pid (-p)", path, ref_off);
        return -EOPNOTSUPP;
    }
    int slot = 0;
    while (slot < MAX_SEMS && g_sems[slot].owner)
        slot++;
    if (slot == MAX_SEMS)
        return -E2BIG;
    uint64_t addr;
    int rc = sem_address(pid, path, ref_off, &addr);
    if (rc == 0)
        rc = sem_add(pid, addr, 1);
    if (rc < 0) {
        gc_warn("uprobe %s: cannot set its USDT semaphore (file offset %#" PRIx64 ") in process %d: %s", path,
                ref_off, pid, strerror(-rc));
        return rc;
    }
    g_sems[slot] = (struct sem){ owner, pid, addr };
    return 0;
}

void gc_sem_release(const struct cobj *owner)
{
    for (int i = 0; i < MAX_SEMS; i++)
        if (g_sems[i].owner == owner) {
            if (owner->creator == getpid())   /* a forked child's closes leave the parent's */
                sem_add(g_sems[i].pid, g_sems[i].addr, -1);   /* the process may be gone */
            g_sems[i].owner = NULL;
        }
}
