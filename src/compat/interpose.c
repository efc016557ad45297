/*
 * interpose.c - the preloaded entry points of libgraft-compat.so and the fd
 * table behind them.
 *
 * syscall() answers __NR_bpf and the perf_event_open calls graft handles;
 * ioctl(), mmap() and close() act on descriptors in the table and pass any
 * other descriptor to libc. The real functions come from dlsym(RTLD_NEXT).
 *
 * Descriptors: an object is named by every descriptor that refers to it,
 * as in the kernel. dup, dup2, dup3, fcntl(F_DUPFD[_CLOEXEC]) add a name
 * (libbpf >= 1.4 dup3()s each map fd onto a placeholder and closes the
 * original); close, close_range, closefrom and a dup2/dup3 onto a tracked
 * descriptor drop one, and the last one releases the object. A forked child
 * inherits the table (its closes never unlink the parent's maps or detach
 * its links); an exec'd image starts with an empty one (fdtrack.c, the
 * seccomp trap that sends direct bpf syscalls here, is in trap.c).
 *
 * Wake-ups: libbpf waits for ring and perf buffers with epoll_wait on the
 * map or perf descriptor. Ours are eventfds; a poller thread checks every
 * watched buffer each GRAFT_COMPAT_POLL_MS (default 1 ms) and makes the
 * eventfd readable while the buffer holds unconsumed data, unreadable once
 * it is empty. So a consumer wakes within about one period of a record being
 * written (the kernel wakes it at once).
 */
#define _GNU_SOURCE
#include "compat/compat.h"
#include "compat/compat_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long (*real_syscall)(long, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_close)(int);

static pthread_mutex_t g_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static struct cobj *g_fds[GC_MAX_FDS];
static uint32_t g_ids;
int gc_debug;

#define GC_MAX_WATCH 512
static struct cobj *g_watch[GC_MAX_WATCH];
static int g_n_watch;
static int g_poller_started;
static int g_poll_ms = 1;

static void resolve_real(void)
{
    if (!real_syscall)
        real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    if (!real_ioctl)
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    if (!real_mmap)
        real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

__attribute__((constructor)) static void gc_init(void)
{
    resolve_real();
    const char *d = getenv(GCOMPAT_ENV_DEBUG);
    gc_debug = d && *d == '1';
    const char *p = getenv(GCOMPAT_ENV_POLL_MS);
    if (p && atoi(p) > 0)
        g_poll_ms = atoi(p);
    gc_fork_handlers();
    gc_exec_cleanup();
    gc_trap_direct_bpf();
}

__attribute__((destructor)) static void gc_fini(void)
{
    gc_cleanup();
}

void gc_lock(void) { pthread_mutex_lock(&g_lock); }
void gc_unlock(void) { pthread_mutex_unlock(&g_lock); }
uint32_t gc_next_id(void) { return __atomic_add_fetch(&g_ids, 1, __ATOMIC_RELAXED); }

void gc_warn(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "graft-compat: %s\n", buf);
}

void gc_warn_once(const char *fmt, ...)
{
    static char seen[32][160];
    static int n_seen;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    gc_lock();
    for (int i = 0; i < n_seen; i++)
        if (strncmp(seen[i], buf, sizeof(seen[i]) - 1) == 0) {
            gc_unlock();
            return;
        }
    if (n_seen < 32) {
        memcpy(seen[n_seen], buf, sizeof(seen[0]) - 1);
        seen[n_seen++][sizeof(seen[0]) - 1] = '\0';
    }
    gc_unlock();
    fprintf(stderr, "graft-compat: %s\n", buf);
}

struct cobj *gc_obj(int fd)
{
    return fd >= 0 && fd < GC_MAX_FDS ? g_fds[fd] : NULL;
}

struct cobj *gc_obj_new(int kind)
{
    struct cobj *o = calloc(1, sizeof(*o));
    if (!o) {
        errno = ENOMEM;
        return NULL;
    }
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        free(o);
        return NULL;
    }
    if (fd >= GC_MAX_FDS) {
        real_close(fd);
        free(o);
        errno = EMFILE;
        return NULL;
    }
    o->fd = fd;
    o->fd_refs = 1;
    o->creator = getpid();
    o->kind = kind;
    o->id = gc_next_id();
    gc_lock();
    g_fds[fd] = o;
    gc_unlock();
    return o;
}

int (*gc_real_close(void))(int)
{
    resolve_real();
    return real_close;
}

long gc_real_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    resolve_real();
    return real_syscall(nr, a1, a2, a3, a4, a5, a6);
}

/* ---- epoll wake-ups ---- */

static int buffer_has_data(struct cobj *o)
{
    if (o->kind == COBJ_MAP) {
        uint8_t *pages = gmap_ringbuf_pages(o->map);
        uint64_t cons = __atomic_load_n((uint64_t *)pages, __ATOMIC_ACQUIRE);
        uint64_t prod = __atomic_load_n((uint64_t *)(pages + getpagesize()), __ATOMIC_ACQUIRE);
        /* libbpf's consumer waits at a BUSY record for ever; if the
         * producer that reserved it died, this marks it discarded, which
         * libbpf skips (at once when nothing is BUSY there). */
        if (prod != cons)
            gmap_ringbuf_recover(o->map);
        return prod != cons;
    }
    if (o->kind == COBJ_PERF && o->bound_map) {
        struct perf_event_mmap_page *pg = gmap_perf_page(o->bound_map->map, o->bound_idx);
        return __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE) !=
               __atomic_load_n(&pg->data_tail, __ATOMIC_ACQUIRE);
    }
    return 0;
}

static void *poller(void *arg)
{
    (void)arg;
    struct timespec ts = { .tv_sec = g_poll_ms / 1000, .tv_nsec = (g_poll_ms % 1000) * 1000000L };
    for (;;) {
        gc_lock();
        for (int i = 0; i < g_n_watch; i++) {
            struct cobj *o = g_watch[i];
            if (o->fd < 0)
                continue;
            int has = buffer_has_data(o);
            uint64_t v = 1;
            if (has && !o->signaled) {
                if (write(o->fd, &v, sizeof(v)) == sizeof(v))
                    o->signaled = 1;
            } else if (!has && o->signaled) {
                if (read(o->fd, &v, sizeof(v)) == sizeof(v) || errno == EAGAIN)
                    o->signaled = 0;
            }
        }
        gc_unlock();
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Before a wait: an eventfd the poller made readable while records were
 * waiting stays readable until its next round, after the consumer has read
 * them; epoll_wait would return at once, again and again (the consumer
 * spins). Like the kernel, whose ring buffer is readable only while it holds
 * data, re-check the signaled buffers and clear the ones now empty. */
static void refresh_signaled(void)
{
    if (!__atomic_load_n(&g_n_watch, __ATOMIC_RELAXED))
        return;
    gc_lock();
    for (int i = 0; i < g_n_watch; i++) {
        struct cobj *o = g_watch[i];
        uint64_t v;
        if (o->fd >= 0 && o->signaled && !buffer_has_data(o) &&
            (read(o->fd, &v, sizeof(v)) == sizeof(v) || errno == EAGAIN))
            o->signaled = 0;
    }
    gc_unlock();
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    static int (*real)(int, struct epoll_event *, int, int);
    if (!real)
        real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
    refresh_signaled();
    return real(epfd, events, maxevents, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                const sigset_t *sigmask)
{
    static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);
    if (!real)
        real = (int (*)(int, struct epoll_event *, int, int, const sigset_t *))dlsym(RTLD_NEXT,
                                                                                  "epoll_pwait");
    refresh_signaled();
    return real(epfd, events, maxevents, timeout, sigmask);
}

void gc_watch(struct cobj *o)
{
    gc_lock();
    if (!o->watched && g_n_watch < GC_MAX_WATCH) {
        g_watch[g_n_watch++] = o;
        o->watched = 1;
    }
    if (!g_poller_started) {
        pthread_t t;
        sigset_t all, old;
        sigfillset(&all);
        /* Signals (the tool's Ctrl-C handler) stay with the tool's threads. */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&t, NULL, poller, NULL) == 0) {
            pthread_detach(t);
            g_poller_started = 1;
        } else {
            gc_warn("cannot start the buffer poller thread: epoll on ring/perf buffers will not wake");
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    gc_unlock();
}

static void unwatch(struct cobj *o)
{
    for (int i = 0; i < g_n_watch; i++)
        if (g_watch[i] == o) {
            g_watch[i] = g_watch[--g_n_watch];
            o->watched = 0;
            return;
        }
}

/* ---- interposed functions ---- */

long syscall(long nr, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    resolve_real();
    if (nr == __NR_bpf)
        return gc_bpf((int)a[0], (void *)a[1], (unsigned int)a[2]);
    long fdrc;
    if (gc_fd_syscall(nr, a, &fdrc))   /* close, dup*, fcntl, close_range by number */
        return fdrc;
    if (nr == __NR_perf_event_open) {
        long ret;
        if (gc_perf_open((void *)a[0], (int)a[1], (int)a[2], (int)a[3], (unsigned long)a[4], &ret))
            return ret;
    }
    return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    resolve_real();
    gc_lock();
    struct cobj *o = gc_obj(fd);
    if (o) {
        int rc = gc_perf_ioctl(o, req, arg);
        gc_unlock();
        return rc;
    }
    gc_unlock();
    return real_ioctl(fd, req, arg);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve_real();
    if (fd < 0 || (flags & MAP_ANONYMOUS))
        return real_mmap(addr, len, prot, flags, fd, off);
    gc_lock();
    struct cobj *o = gc_obj(fd);
    void *r = o ? gc_mmap(o, addr, len, prot, flags, off) : NULL;
    gc_unlock();
    return o ? r : real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

/* Dropping the last descriptor of a link detaches it, as in the kernel. A
 * map or program lives on while it is registered (programs and links that
 * agents run refer to it) and goes with the tool at exit. A forked child
 * dropping its inherited copies leaves the parent's objects alone (the
 * kernel keeps them while the parent holds them). */
static void release(struct cobj *o)
{
    int mine = o->creator == getpid();
    if (o->kind == COBJ_LINK || o->kind == COBJ_PERF)
        gc_timer_release(o);   /* a timer program stops (timers.c) */
    if (o->kind == COBJ_PERF)
        gc_sem_release(o);     /* its USDT semaphore is decremented (semaphore.c) */
    if (o->link_reg_id && mine) {
        gc_link_remove(o->link_reg_id);
        o->link_reg_id = 0;
    }
    unwatch(o);
    o->fd = -1;
    if (o->kind == COBJ_MAP && !o->reg_id && !o->refs && o->map) {
        if (mine)
            gmap_unlink(gmap_shm_name(o->map));
        gmap_close(o->map);
        o->map = NULL;
    }
}

/* fd no longer names its object (closed, or replaced by dup2/dup3); the
 * last name releases it. Under the lock. */
void gc_fd_drop(int fd)
{
    struct cobj *o = gc_obj(fd);
    if (!o)
        return;
    g_fds[fd] = NULL;
    if (--o->fd_refs == 0) {
        release(o);
        return;
    }
    if (o->fd == fd)   /* the poller signals, and the library returns, a name still open */
        for (int i = 0; i < GC_MAX_FDS; i++)
            if (g_fds[i] == o) {
                o->fd = i;
                break;
            }
}

/* newfd now names what oldfd names (after a successful dup of oldfd). The
 * kernel closed what newfd named before, if anything. Under the lock. */
void gc_fd_dup(int oldfd, int newfd)
{
    if (newfd < 0 || newfd == oldfd)
        return;
    gc_fd_drop(newfd);
    struct cobj *o = gc_obj(oldfd);
    if (!o)
        return;
    if (newfd >= GC_MAX_FDS) {
        gc_warn("descriptor %d (a copy of %s's %d) is beyond graft's table of %d: graft will not know it",
                newfd, o->name, oldfd, GC_MAX_FDS);
        return;
    }
    g_fds[newfd] = o;
    o->fd_refs++;
}

int close(int fd)
{
    resolve_real();
    if (fd >= 0 && fd < GC_MAX_FDS) {
        gc_lock();
        gc_fd_drop(fd);
        gc_tracefs_close(fd);
        gc_unlock();
    }
    return real_close(fd);
}

/* fork: the child gets the table with the descriptors. The lock is held
 * across fork so the child's copy is consistent; the poller thread does
 * not survive into the child, so the child starts its own when it has
 * buffers to watch. */
static void atfork_prepare(void) { gc_lock(); }
static void atfork_parent(void) { gc_unlock(); }
static void atfork_child(void)
{
    /* The child's thread has another id than the one that took the lock
     * (which a recursive mutex checks): start it afresh. */
    pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    g_lock = fresh;
    g_poller_started = 0;
    gc_lock();
    if (g_n_watch)
        gc_watch(g_watch[0]);
    gc_unlock();
}

void gc_fork_handlers(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
