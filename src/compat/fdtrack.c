/*
 * fdtrack.c - descriptor operations that copy or drop names of graft
 * objects, so the table (interpose.c) follows them as the kernel's file
 * table follows a bpf object's descriptors.
 *
 * libbpf >= 1.4 makes a placeholder descriptor (fcntl(F_DUPFD_CLOEXEC) of a
 * memfd or /dev/null), dup3()s each map's descriptor onto it with O_CLOEXEC
 * and closes the original; tools and libraries also dup, close_range and
 * closefrom. Each is done by the kernel first (so its errno is the tool's),
 * then the table is updated under the lock. syscall(SYS_dup3, ...) and
 * friends go the same way (gc_fd_syscall).
 *
 * CLOSE_RANGE_CLOEXEC and F_SETFD only mark descriptors close-on-exec: they
 * stay open, and names, until an exec, after which the new image's table
 * is empty anyway (see gc_exec_cleanup).
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

static long raw(long nr, long a1, long a2, long a3)
{
    return gc_real_syscall(nr, a1, a2, a3, 0, 0, 0);
}

/* The kernel made newfd a copy of oldfd (rc is newfd or -1). */
static long copied(int oldfd, long rc)
{
    if (rc >= 0) {
        gc_lock();
        gc_fd_dup(oldfd, (int)rc);
        gc_unlock();
    }
    return rc;
}

static long do_dup3(int oldfd, int newfd, int flags, int is_dup2)
{
    /* dup2(fd, fd) is a no-op that checks fd; dup3(fd, fd) is EINVAL. Both are the kernel's. */
    gc_lock();   /* held across the call: newfd's old name must not be reused in between */
    long rc = is_dup2 ? raw(__NR_dup2, oldfd, newfd, 0) : raw(__NR_dup3, oldfd, newfd, flags);
    if (rc >= 0)
        gc_fd_dup(oldfd, (int)rc);
    gc_unlock();
    return rc;
}

static long do_close_range(unsigned int first, unsigned int last, int flags)
{
    gc_lock();
    long rc = raw(__NR_close_range, first, last, flags);
    if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        for (unsigned int fd = first; fd <= last && fd < GC_MAX_FDS; fd++)
            gc_fd_drop((int)fd);
    gc_unlock();
    return rc;
}

static int is_dupfd(int cmd) { return cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC; }

int dup(int oldfd) { return (int)copied(oldfd, raw(__NR_dup, oldfd, 0, 0)); }
int dup2(int oldfd, int newfd) { return (int)do_dup3(oldfd, newfd, 0, 1); }
int dup3(int oldfd, int newfd, int flags) { return (int)do_dup3(oldfd, newfd, flags, 0); }
int close_range(unsigned int first, unsigned int last, int flags) { return (int)do_close_range(first, last, flags); }

void closefrom(int lowfd)
{
    if (lowfd < 0)
        lowfd = 0;
    if (do_close_range((unsigned int)lowfd, ~0u, 0) == 0)
        return;
    /* No close_range (old kernel): close each, as glibc falls back to. */
    for (int fd = lowfd; fd < GC_MAX_FDS; fd++)
        close(fd);
}

static int fcntl_any(const char *sym, int fd, int cmd, va_list ap)
{
    /* Every fcntl argument is an int, a pointer or absent: one long covers them. */
    long arg = va_arg(ap, long);
    if (is_dupfd(cmd))
        return (int)copied(fd, raw(__NR_fcntl, fd, cmd, arg));
    static int (*real)(int, int, ...);
    static int (*real64)(int, int, ...);
    int (**slot)(int, int, ...) = sym[5] ? &real64 : &real;
    if (!*slot)
        *slot = (int (*)(int, int, ...))dlsym(RTLD_NEXT, sym);
    return *slot ? (*slot)(fd, cmd, arg) : (int)raw(__NR_fcntl, fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int rc = fcntl_any("fcntl", fd, cmd, ap);
    va_end(ap);
    return rc;
}

int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int rc = fcntl_any("fcntl64", fd, cmd, ap);
    va_end(ap);
    return rc;
}

int gc_fd_syscall(long nr, const long a[6], long *ret)
{
    switch (nr) {
    case __NR_close: *ret = close((int)a[0]); return 1;
    case __NR_dup: *ret = dup((int)a[0]); return 1;
    case __NR_dup2: *ret = do_dup3((int)a[0], (int)a[1], 0, 1); return 1;
    case __NR_dup3: *ret = do_dup3((int)a[0], (int)a[1], (int)a[2], 0); return 1;
    case __NR_close_range: *ret = do_close_range((unsigned int)a[0], (unsigned int)a[1], (int)a[2]); return 1;
    case __NR_fcntl:
        if (!is_dupfd((int)a[1]))
            return 0;
        *ret = copied((int)a[0], raw(__NR_fcntl, a[0], a[1], a[2]));
        return 1;
    default:
        return 0;
    }
}
