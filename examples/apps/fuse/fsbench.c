/* fsbench.c - the metadata workloads of use case 6 (FUSE metadata cache).
 *
 *   fsbench mktree ROOT DIRS FILES        create ROOT/dI/fJ (I < DIRS, J < FILES)
 *   fsbench stat ROOT DIRS FILES PASSES   fstatat(AT_FDCWD, "ROOT/dI/fJ") over the tree
 *   fsbench open ROOT DIRS FILES PASSES   openat(AT_FDCWD, ..., O_RDONLY) + close
 *   fsbench dump PATH...                  one line of stat fields per path
 *
 * stat/open do one untimed pass (warm-up), then PASSES timed passes, and
 * print "PER_OP_US OPS ERRORS". Paths are absolute, as given.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > 1000000) {
        fprintf(stderr, "fsbench: %s '%s' is not a number in [0, 1000000]\n", what, s);
        exit(2);
    }
    return v;
}

/* One pass of op over the tree; returns the number of failed calls. */
static long pass(int open_mode, const char *root, long dirs, long files)
{
    char p[PATH_MAX];
    struct stat st;
    long errors = 0;
    for (long d = 0; d < dirs; d++)
        for (long f = 0; f < files; f++) {
            snprintf(p, sizeof(p), "%s/d%ld/f%ld", root, d, f);
            if (open_mode) {
                int fd = openat(AT_FDCWD, p, O_RDONLY);
                if (fd < 0)
                    errors++;
                else
                    close(fd);
            } else if (fstatat(AT_FDCWD, p, &st, 0) < 0) {
                errors++;
            }
        }
    return errors;
}

static int mktree(const char *root, long dirs, long files)
{
    char p[PATH_MAX];
    for (long d = 0; d < dirs; d++) {
        snprintf(p, sizeof(p), "%s/d%ld", root, d);
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            perror(p);
            return 1;
        }
        for (long f = 0; f < files; f++) {
            snprintf(p, sizeof(p), "%s/d%ld/f%ld", root, d, f);
            int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, p, (size_t)(f % 64)) < 0) {
                perror(p);
                return 1;
            }
            close(fd);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "dump") == 0) {
        int rc = 0;
        for (int i = 2; i < argc; i++) {
            struct stat st;
            if (fstatat(AT_FDCWD, argv[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                printf("%s error %d\n", argv[i], errno);
                rc = 1;
                continue;
            }
            printf("%s ino=%lu mode=%o nlink=%lu uid=%u gid=%u size=%ld blocks=%ld blksize=%ld "
                   "mtime=%ld.%09ld ctime=%ld.%09ld\n",
                   argv[i], (unsigned long)st.st_ino, st.st_mode, (unsigned long)st.st_nlink,
                   st.st_uid, st.st_gid, (long)st.st_size, (long)st.st_blocks, (long)st.st_blksize,
                   (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long)st.st_ctim.tv_sec,
                   st.st_ctim.tv_nsec);
        }
        return rc;
    }
    if (argc == 5 && strcmp(argv[1], "mktree") == 0)
        return mktree(argv[2], num(argv[3], "DIRS"), num(argv[4], "FILES"));
    if (argc == 6 && (strcmp(argv[1], "stat") == 0 || strcmp(argv[1], "open") == 0)) {
        int open_mode = argv[1][0] == 'o';
        long dirs = num(argv[3], "DIRS"), files = num(argv[4], "FILES");
        long passes = num(argv[5], "PASSES");
        if (dirs * files == 0 || passes == 0) {
            fprintf(stderr, "fsbench: nothing to do (DIRS, FILES and PASSES must be > 0)\n");
            return 2;
        }
        pass(open_mode, argv[2], dirs, files);
        long errors = 0;
        double t0 = now_us();
        for (long i = 0; i < passes; i++)
            errors += pass(open_mode, argv[2], dirs, files);
        double t1 = now_us();
        long ops = dirs * files * passes;
        printf("%.3f %ld %ld\n", (t1 - t0) / (double)ops, ops, errors);
        return errors ? 1 : 0;
    }
    fprintf(stderr,
            "usage: fsbench mktree ROOT DIRS FILES | stat|open ROOT DIRS FILES PASSES | "
            "dump PATH...\n");
    return 2;
}
