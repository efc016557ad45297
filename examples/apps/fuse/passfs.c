/* passfs.c - a small passthrough FUSE filesystem (libfuse3, high-level API)
 * for use case 6: every operation is forwarded to a backing directory.
 *
 *   passfs BACKING MOUNTPOINT [-f] [-s] [-o ...]
 *
 * The kernel is told not to cache anything (entry/attr/negative timeouts 0,
 * as a filesystem whose backing store can change must), so every stat() or
 * open() through the mount asks the daemon; PASSFS_TIMEOUT=SECONDS sets the
 * kernel's timeouts instead (the "kernel cache" reference). st_ino is the
 * backing inode (use_ino).
 *
 * passfs_getattr_path() is the one place metadata is read from the backing
 * directory; it and the mutating handlers are global and noinline so that an
 * extension can hook them by name. The daemon counts the getattr calls that
 * reached the backing store and prints "passfs: backing_getattr N" when it
 * exits (after unmount), and on SIGUSR1 writes the count to the file named
 * by PASSFS_COUNT_FILE.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, used))

static char backing[PATH_MAX];
static size_t backing_len;
static double timeout;
static volatile unsigned long backing_getattr;

/* The backing path of a FUSE path ("/a/b" -> BACKING/a/b). */
static int real_path(char *out, const char *path)
{
    size_t n = strlen(path);
    if (backing_len + n + 1 > PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(out, backing, backing_len);
    memcpy(out + backing_len, path, n + 1);
    return 0;
}

#define REAL(var, path)                   \
    char var[PATH_MAX];                   \
    do {                                  \
        int rc_ = real_path(var, path);   \
        if (rc_)                          \
            return rc_;                   \
    } while (0)

/* getattr of a path: lstat of the backing file. 0 or -errno. */
NOINLINE int passfs_getattr_path(const char *path, struct stat *st)
{
    REAL(p, path);
    __atomic_fetch_add(&backing_getattr, 1, __ATOMIC_RELAXED);
    return lstat(p, st) < 0 ? -errno : 0;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    return passfs_getattr_path(path, st);
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    cfg->entry_timeout = timeout;
    cfg->attr_timeout = timeout;
    cfg->negative_timeout = timeout;
    return NULL;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
    REAL(p, path);
    ssize_t n = readlink(p, buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off, (void)fi, (void)flags;
    REAL(p, path);
    DIR *d = opendir(p);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st = { .st_ino = e->d_ino, .st_mode = (mode_t)DTTOIF(e->d_type) };
        if (fill(buf, e->d_name, &st, 0, 0))
            break;
    }
    closedir(d);
    return 0;
}

/* ---- mutating operations (hooked by the cache to invalidate) ------------ */

NOINLINE int passfs_mknod(const char *path, mode_t mode, dev_t rdev)
{
    REAL(p, path);
    int rc = S_ISFIFO(mode) ? mkfifo(p, mode) : mknod(p, mode, rdev);
    return rc < 0 ? -errno : 0;
}

NOINLINE int passfs_mkdir(const char *path, mode_t mode)
{
    REAL(p, path);
    return mkdir(p, mode) < 0 ? -errno : 0;
}

NOINLINE int passfs_unlink(const char *path)
{
    REAL(p, path);
    return unlink(p) < 0 ? -errno : 0;
}

NOINLINE int passfs_rmdir(const char *path)
{
    REAL(p, path);
    return rmdir(p) < 0 ? -errno : 0;
}

NOINLINE int passfs_symlink(const char *target, const char *path)
{
    REAL(p, path);
    return symlink(target, p) < 0 ? -errno : 0;
}

NOINLINE int passfs_rename(const char *from, const char *to, unsigned int flags)
{
    REAL(a, from);
    REAL(b, to);
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, flags) < 0 ? -errno : 0;
}

NOINLINE int passfs_link(const char *from, const char *to)
{
    REAL(a, from);
    REAL(b, to);
    return link(a, b) < 0 ? -errno : 0;
}

NOINLINE int passfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    REAL(p, path);
    return chmod(p, mode) < 0 ? -errno : 0;
}

NOINLINE int passfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    (void)fi;
    REAL(p, path);
    return lchown(p, uid, gid) < 0 ? -errno : 0;
}

NOINLINE int passfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (fi)
        return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
    REAL(p, path);
    return truncate(p, size) < 0 ? -errno : 0;
}

NOINLINE int passfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)fi;
    REAL(p, path);
    return utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

NOINLINE int passfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    REAL(p, path);
    int fd = open(p, fi->flags, mode);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

NOINLINE int passfs_write(const char *path, const char *buf, size_t size, off_t off,
                          struct fuse_file_info *fi)
{
    (void)path;
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

/* Reading may update the access time. */
NOINLINE int passfs_read(const char *path, char *buf, size_t size, off_t off,
                         struct fuse_file_info *fi)
{
    (void)path;
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

/* ---- the rest ------------------------------------------------------------- */

static int op_open(const char *path, struct fuse_file_info *fi)
{
    REAL(p, path);
    int fd = open(p, fi->flags);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
    return rc < 0 ? -errno : 0;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
    REAL(p, path);
    return statvfs(p, sv) < 0 ? -errno : 0;
}

static const struct fuse_operations ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .readdir = op_readdir,
    .mknod = passfs_mknod,
    .mkdir = passfs_mkdir,
    .unlink = passfs_unlink,
    .rmdir = passfs_rmdir,
    .symlink = passfs_symlink,
    .rename = passfs_rename,
    .link = passfs_link,
    .chmod = passfs_chmod,
    .chown = passfs_chown,
    .truncate = passfs_truncate,
    .utimens = passfs_utimens,
    .create = passfs_create,
    .open = op_open,
    .read = passfs_read,
    .write = passfs_write,
    .release = op_release,
    .fsync = op_fsync,
    .statfs = op_statfs,
};

static void on_usr1(int sig)
{
    (void)sig;
    const char *f = getenv("PASSFS_COUNT_FILE");
    if (!f)
        return;
    char tmp[PATH_MAX], line[32];
    int n = snprintf(line, sizeof(line), "%lu\n", backing_getattr);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", f) >= (int)sizeof(tmp))
        return;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) != n) {
        close(fd);
        return;
    }
    close(fd);
    rename(tmp, f);   /* readers see the whole number or the old file */
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BACKING MOUNTPOINT [fuse options]\n", argv[0]);
        return 2;
    }
    if (!realpath(argv[1], backing)) {
        fprintf(stderr, "passfs: backing directory %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct stat st;
    if (stat(backing, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "passfs: %s is not a directory\n", argv[1]);
        return 2;
    }
    if (strcmp(backing, "/") == 0)
        backing[0] = 0;
    backing_len = strlen(backing);
    const char *t = getenv("PASSFS_TIMEOUT");
    if (t) {
        char *end;
        timeout = strtod(t, &end);
        if (*end || timeout < 0) {
            fprintf(stderr, "passfs: PASSFS_TIMEOUT=%s is not a number of seconds\n", t);
            return 2;
        }
    }
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    argv[1] = argv[0];
    int rc = fuse_main(argc - 1, argv + 1, &ops, NULL);
    fprintf(stderr, "passfs: backing_getattr %lu\n", backing_getattr);
    return rc;
}
