/*
 * scan_cache.c - the scanner's results per file, shared by this user's
 * processes, so a library is decoded once and not at every start.
 *
 * One small file per (file identity, mapped range) in a directory of the
 * user's own: $GRAFT_SCAN_CACHE if set ("off" disables the cache), else
 * $XDG_CACHE_HOME/graft/scan, else $HOME/.cache/graft/scan. The identity
 * is device, inode, size, mtime and ctime: a rewritten or replaced library
 * has a new inode or ctime (which no unprivileged process can set back), so
 * its old entry is never used. An entry is trusted only if the directory
 * and the file are owned by this effective uid and not writable by group or
 * others (no symlinks followed); otherwise the scan simply runs. Entries
 * are written to a temporary file and renamed into place, so a reader sees
 * a whole entry or none; a damaged one (wrong size or key) is a miss.
 *
 * Trust: the cache can only hide a finding from a process of the same user
 * that could already write the cache - i.e. rewrite its own memory. It is
 * never consulted for memory that differs from the file (scan.c checks
 * pagemap first).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isolation/scan_internal.h"
#include "util/settings.h"

#define CACHE_MAGIC   0x43534647u      /* "GFSC" */
#define CACHE_VERSION 1u               /* bump when scan_find.c's results change */
#define CACHE_MAX     4096             /* findings per entry */

struct header {
    uint32_t magic, version;
    struct gscan_key key;
    uint32_t n, pad;
};

int gscan_key_of(const struct stat *st, uint64_t map_off, uint64_t map_len,
                 struct gscan_key *key)
{
    memset(key, 0, sizeof(*key));
    key->dev = (uint64_t)st->st_dev, key->ino = (uint64_t)st->st_ino;
    key->size = (uint64_t)st->st_size;
    key->mtime_s = st->st_mtim.tv_sec, key->mtime_ns = st->st_mtim.tv_nsec;
    key->ctime_s = st->st_ctim.tv_sec, key->ctime_ns = st->st_ctim.tv_nsec;
    key->map_off = map_off, key->map_len = map_len;
    return 0;
}

static char g_dir[PATH_MAX];
static int g_dir_state;                /* 0 unknown, 1 usable, -1 off */

/* mkdir -p with mode 0700 for the components we create. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static int owned_private(const struct stat *st)
{
    return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

const char *gscan_cache_dir(void)
{
    if (g_dir_state)
        return g_dir_state > 0 ? g_dir : "";
    const char *env = gsetting("GRAFT_SCAN_CACHE"), *xdg = gsetting("XDG_CACHE_HOME"),
               *home = gsetting("HOME");
    g_dir_state = -1;
    if (env && *env) {
        if (!strcmp(env, "off"))
            return "";
        snprintf(g_dir, sizeof(g_dir), "%s", env);
    } else if (xdg && xdg[0] == '/') {
        snprintf(g_dir, sizeof(g_dir), "%s/graft/scan", xdg);
    } else if (home && home[0] == '/') {
        snprintf(g_dir, sizeof(g_dir), "%s/.cache/graft/scan", home);
    } else {
        return "";
    }
    struct stat st;
    if (make_dirs(g_dir) != 0 || lstat(g_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        !owned_private(&st))
        return "";
    g_dir_state = 1;
    return g_dir;
}

static int entry_path(const struct gscan_key *k, char *buf, size_t len)
{
    const char *dir = gscan_cache_dir();
    if (!dir[0])
        return -1;
    int n = snprintf(buf, len, "%s/%" PRIx64 "-%" PRIx64 "-%" PRIx64 "-%" PRIx64 ".v%u", dir,
                     k->dev, k->ino, k->map_off, k->map_len, CACHE_VERSION);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int gscan_cache_get(const struct gscan_key *key, struct gscan_rec **recs, size_t *n)
{
    char path[PATH_MAX + 96];
    if (entry_path(key, path, sizeof(path)) < 0)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    struct header h;
    int hit = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && owned_private(&st) &&
        pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.magic == CACHE_MAGIC &&
        h.version == CACHE_VERSION && !memcmp(&h.key, key, sizeof(*key)) && h.n <= CACHE_MAX &&
        (size_t)st.st_size == sizeof(h) + h.n * sizeof(struct gscan_rec)) {
        struct gscan_rec *v = malloc(h.n ? h.n * sizeof(*v) : 1);
        if (v && pread(fd, v, h.n * sizeof(*v), sizeof(h)) == (ssize_t)(h.n * sizeof(*v))) {
            for (uint32_t i = 0; i < h.n; i++) {    /* strings from a file: terminate */
                v[i].name[sizeof(v[i].name) - 1] = '\0';
                v[i].symbol[sizeof(v[i].symbol) - 1] = '\0';
            }
            *recs = v, *n = h.n, hit = 1;
        } else {
            free(v);
        }
    }
    close(fd);
    return hit;
}

void gscan_cache_put(const struct gscan_key *key, const struct gscan_rec *recs, size_t n)
{
    char path[PATH_MAX + 96], tmp[PATH_MAX + 128];
    if (n > CACHE_MAX || entry_path(key, path, sizeof(path)) < 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    struct header h = { .magic = CACHE_MAGIC, .version = CACHE_VERSION, .key = *key,
                        .n = (uint32_t)n };
    int ok = write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
             (!n || write(fd, recs, n * sizeof(*recs)) == (ssize_t)(n * sizeof(*recs)));
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}
