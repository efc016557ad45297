/*
 * tracefs.c - uprobes made the legacy way, through tracefs, become graft's.
 *
 * BCC (and bpftrace when the uprobe PMU refuses a probe) writes a probe
 * definition to <tracefs>/uprobe_events ("p:GROUP/NAME PATH:0xOFF", "r:..."
 * for a return probe, "(0xREF)" after the offset for a USDT semaphore,
 * "-:GROUP/NAME" to remove it), reads the new event's id from
 * <tracefs>/events/GROUP/NAME/id and opens that id with perf_event_open
 * (PERF_TYPE_TRACEPOINT). Under graft nothing is registered in the kernel:
 * opening uprobe_events for writing gives a descriptor whose writes the
 * library parses and keeps (a memfd: nothing reaches tracefs); the id file
 * of such an event opens as a memfd holding its id; perf.c turns the id
 * into a graft uprobe (symbol + delta), so the program attached to it
 * becomes a registry link agents install.
 *
 * Ids start at GC_TRACEFS_ID_BASE, above the kernel's 16-bit trace event
 * type numbers, so they never name a real tracepoint. Definitions graft
 * cannot run (fetch arguments, malformed lines) fail as the kernel fails
 * them (EINVAL), with one line.
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GC_TRACEFS_ID_BASE (1u << 20)
#define MAX_EVENTS 1024
#define MAX_WFDS 64

struct tevent {
    char group[64], name[128];
    char path[4096];
    uint64_t offset, ref_ctr;
    int retprobe, used;
    uint32_t id;
};

static struct tevent g_events[MAX_EVENTS];
static uint32_t g_next_id;
static int g_wfds[MAX_WFDS];   /* descriptors of uprobe_events opened for writing, +1 (0: free) */
static int g_n_wfds;

static const char *const roots[] = { "/sys/kernel/tracing/", "/sys/kernel/debug/tracing/" };

/* The part of path after a tracefs root, or NULL. */
static const char *under_tracefs(const char *path)
{
    for (int i = 0; path && i < 2; i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(path, roots[i], n) == 0)
            return path + n;
    }
    return NULL;
}

static struct tevent *find(const char *group, const char *name)
{
    for (int i = 0; i < MAX_EVENTS; i++)
        if (g_events[i].used && !strcmp(g_events[i].group, group) && !strcmp(g_events[i].name, name))
            return &g_events[i];
    return NULL;
}

/* "GROUP/NAME" or "NAME" (group uprobes). */
static int split_event(const char *s, size_t len, char *group, char *name)
{
    const char *slash = memchr(s, '/', len);
    size_t glen = slash ? (size_t)(slash - s) : 7;
    const char *g = slash ? s : "uprobes";
    const char *nm = slash ? slash + 1 : s;
    size_t nlen = len - (size_t)(nm - s);
    if (!glen || glen >= 64 || !nlen || nlen >= 128)
        return -EINVAL;
    memcpy(group, g, glen);
    group[glen] = '\0';
    memcpy(name, nm, nlen);
    name[nlen] = '\0';
    return 0;
}

static int bad(const char *line, const char *why)
{
    gc_warn("uprobe_events: '%s': %s", line, why);
    return -EINVAL;
}

/* One command of an uprobe_events write. Under the lock. */
static int command(char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (!*line || *line == '#')
        return 0;
    char whole[512];   /* for messages: parsing cuts line up */
    snprintf(whole, sizeof(whole), "%s", line);
    char group[64], name[128];
    if (line[0] == '-' && line[1] == ':') {
        if (split_event(line + 2, strcspn(line + 2, " \t"), group, name) < 0)
            return bad(whole, "malformed event name");
        struct tevent *e = find(group, name);
        if (!e)
            return -ENOENT;
        e->used = 0;
        return 0;
    }
    if ((line[0] != 'p' && line[0] != 'r') || line[1] != ':')
        return bad(whole, "graft handles p:GROUP/NAME PATH:OFFSET, r:... and -:GROUP/NAME only");
    char *ev = line + 2, *sp = strpbrk(ev, " \t");
    if (!sp)
        return bad(whole, "no probe location");
    if (split_event(ev, (size_t)(sp - ev), group, name) < 0)
        return bad(whole, "malformed event name");
    char *loc = sp + strspn(sp, " \t");
    size_t loclen = strcspn(loc, " \t");
    if (loc[loclen] && loc[loclen + strspn(loc + loclen, " \t")])
        return bad(whole, "fetch arguments are not supported by graft (the program reads pt_regs itself)");
    loc[loclen] = '\0';
    char *colon = strrchr(loc, ':');
    if (!colon || colon == loc)
        return bad(whole, "the location must be PATH:OFFSET");
    *colon = '\0';
    char *end;
    errno = 0;
    uint64_t off = strtoull(colon + 1, &end, 0), ref = 0;
    if (errno || end == colon + 1)
        return bad(whole, "the offset must be a number (uprobes take file offsets, not symbols)");
    if (*end == '(') {
        char *rend;
        ref = strtoull(end + 1, &rend, 0);
        if (rend == end + 1 || *rend != ')' || rend[1])
            return bad(whole, "malformed semaphore offset");
    } else if (*end) {
        return bad(whole, "the offset must be a number");
    }
    if (find(group, name))
        return -EEXIST;
    for (int i = 0; i < MAX_EVENTS; i++) {
        struct tevent *e = &g_events[i];
        if (e->used)
            continue;
        memset(e, 0, sizeof(*e));
        snprintf(e->group, sizeof(e->group), "%s", group);
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->path, sizeof(e->path), "%s", loc);
        e->offset = off;
        e->ref_ctr = ref;
        e->retprobe = line[0] == 'r';
        e->id = GC_TRACEFS_ID_BASE + g_next_id++;
        e->used = 1;
        if (gc_debug)
            gc_warn("uprobe_events: %s/%s = %s:%#llx (ref %#llx)%s, id %u", group, name, loc,
                    (unsigned long long)off, (unsigned long long)ref, e->retprobe ? " return" : "", e->id);
        return 0;
    }
    return -ENOSPC;
}

int gc_tracefs_event(uint64_t id, char *path, size_t pathlen, uint64_t *offset, uint64_t *ref_ctr, int *retprobe)
{
    if (id < GC_TRACEFS_ID_BASE)
        return 0;
    gc_lock();
    int found = 0;
    for (int i = 0; i < MAX_EVENTS && !found; i++) {
        struct tevent *e = &g_events[i];
        if (e->used && e->id == id) {
            snprintf(path, pathlen, "%s", e->path);
            *offset = e->offset;
            *ref_ctr = e->ref_ctr;
            *retprobe = e->retprobe;
            found = 1;
        }
    }
    gc_unlock();
    return found;
}

static int is_wfd(int fd)
{
    for (int i = 0; i < MAX_WFDS; i++)
        if (g_wfds[i] == fd + 1)
            return 1;
    return 0;
}

void gc_tracefs_close(int fd)
{
    if (!__atomic_load_n(&g_n_wfds, __ATOMIC_RELAXED))
        return;
    for (int i = 0; i < MAX_WFDS; i++)
        if (g_wfds[i] == fd + 1) {
            g_wfds[i] = 0;
            __atomic_sub_fetch(&g_n_wfds, 1, __ATOMIC_RELAXED);
        }
}

static int memfd_with(const char *name, const char *text)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* open() of a tracefs file graft answers: 1 and *ret set, else 0. */
static int tracefs_open(const char *path, int flags, int *ret)
{
    const char *rel = under_tracefs(path);
    if (!rel)
        return 0;
    if (strcmp(rel, "uprobe_events") == 0 && (flags & O_ACCMODE) != O_RDONLY) {
        gc_lock();
        if (flags & O_TRUNC)   /* the kernel removes every uprobe event: ours are all graft has */
            for (int i = 0; i < MAX_EVENTS; i++)
                g_events[i].used = 0;
        int fd = memfd_create("graft-uprobe_events", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
        int slot = 0;
        while (fd >= 0 && slot < MAX_WFDS && g_wfds[slot])
            slot++;
        if (fd >= 0 && slot < MAX_WFDS) {
            g_wfds[slot] = fd + 1;
            __atomic_add_fetch(&g_n_wfds, 1, __ATOMIC_RELAXED);
        }
        else if (fd >= 0) {
            close(fd);
            fd = -1;
            errno = EMFILE;
        }
        gc_unlock();
        *ret = fd;
        return 1;
    }
    char group[64], name[128];
    if (strncmp(rel, "events/", 7) != 0)
        return 0;
    const char *ev = rel + 7, *tail = strrchr(ev, '/');
    if (!tail || strcmp(tail, "/id") != 0 || split_event(ev, (size_t)(tail - ev), group, name) < 0)
        return 0;
    gc_lock();
    struct tevent *e = find(group, name);
    char id[24];
    if (e)
        snprintf(id, sizeof(id), "%u\n", e->id);
    gc_unlock();
    if (!e)
        return 0;   /* a kernel event's id */
    *ret = memfd_with("graft-event-id", id);
    return 1;
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode, int at)
{
    static int (*real_open)(const char *, int, ...);
    static int (*real_openat)(int, const char *, int, ...);
    int ret;
    if ((!at || dirfd == AT_FDCWD || (path && path[0] == '/')) && tracefs_open(path, flags, &ret))
        return ret;
    if (at) {
        if (!real_openat)
            real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
        return real_openat(dirfd, path, flags, mode);
    }
    if (!real_open)
        real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    return real_open(path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, flags, m, 0);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return open_common(dirfd, path, flags, m, 1);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (fd < 0 || !__atomic_load_n(&g_n_wfds, __ATOMIC_RELAXED))   /* nothing of ours is open */
        return real_write(fd, buf, n);
    gc_lock();
    int ours = fd >= 0 && is_wfd(fd);
    if (!ours) {
        gc_unlock();
        return real_write(fd, buf, n);
    }
    char *copy = malloc(n + 1);
    int rc = copy ? 0 : -ENOMEM;
    if (copy) {
        memcpy(copy, buf, n);
        copy[n] = '\0';
        char *save = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save))
            rc = command(line);
        free(copy);
    }
    gc_unlock();
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return (ssize_t)n;
}
