/*
 * settings.c - gsetting(), and the file that carries `graft attach`'s
 * settings into the process it injects the agent into (settings.h says why).
 *
 * The file is text, one "NAME=VALUE" per line, first the two lines that say
 * which process it is for:
 *     pid=1234
 *     start=567890          (field 22 of /proc/1234/stat)
 *     GRAFT_REGISTRY=/graft.0.registry
 * It holds nothing secret (names of shared-memory objects, modes), so it is
 * world-readable: the target may run as another user than `graft attach`.
 * It must not be forgeable: only root's or the target's own files count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/procmaps.h"
#include "util/settings.h"

const char *const gsettings_passed[] = {
    "GRAFT_REGISTRY", "GRAFT_ISOLATION", "GRAFT_REQUIRE_ISOLATION", "GRAFT_SCAN_CACHE",
    "GRAFT_KTIME", "GRAFT_TEST_AGENT_DELAY_MS", "GRAFT_JIT_FACTS", NULL,
};

#define SETTINGS_MAX 4096           /* the whole file; values are short */

/* Installed once, before the agent reads anything, never changed after:
 * readers need no lock. */
static char g_text[SETTINGS_MAX];   /* the NAME=VALUE lines, each NUL-terminated */
static size_t g_len;
static atomic_int g_installed;

const char *gsetting(const char *name)
{
    if (!atomic_load_explicit(&g_installed, memory_order_acquire))
        return getenv(name);
    size_t n = strlen(name);
    for (size_t at = 0; at < g_len; at += strlen(g_text + at) + 1)
        if (strncmp(g_text + at, name, n) == 0 && g_text[at + n] == '=')
            return g_text + at + n + 1;
    return NULL;
}

int gsettings_attach_path(pid_t pid, char *buf, size_t len)
{
    int n = snprintf(buf, len, "/dev/shm/graft.attach.%d", (int)pid);
    return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int gsettings_write_attach(pid_t pid)
{
    char path[64], text[SETTINGS_MAX];
    int rc = gsettings_attach_path(pid, path, sizeof(path));
    if (rc < 0)
        return rc;
    size_t len = (size_t)snprintf(text, sizeof(text), "pid=%d\nstart=%llu\n", (int)pid,
                                  (unsigned long long)gproc_start_time(pid));
    for (const char *const *name = gsettings_passed; *name; name++) {
        const char *value = getenv(*name);
        if (!value || strchr(value, '\n'))
            continue;
        int n = snprintf(text + len, sizeof(text) - len, "%s=%s\n", *name, value);
        if (n < 0 || (size_t)n >= sizeof(text) - len)
            return -E2BIG;
        len += (size_t)n;
    }
    /* A file left by someone else must not become ours to trust: start from
     * a new one, created by us alone. */
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    fchmod(fd, 0644);               /* whatever the umask: the target reads it */
    ssize_t put = write(fd, text, len);
    rc = put == (ssize_t)len ? 0 : (put < 0 ? -errno : -EIO);
    close(fd);
    if (rc < 0)
        unlink(path);
    return rc;
}

/* Reads the file into g_text as NUL-separated lines; the pid and start
 * lines must name this process. */
static int read_attach_file(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
        (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_size >= SETTINGS_MAX)
        return -EPERM;
    ssize_t got = read(fd, g_text, sizeof(g_text) - 1);
    if (got < 0)
        return -errno;
    g_text[got] = '\0';
    char want[64];
    int n = snprintf(want, sizeof(want), "pid=%d\nstart=%llu\n", (int)getpid(),
                     (unsigned long long)gproc_start_time(getpid()));
    if (strncmp(g_text, want, (size_t)n) != 0)
        return -ESTALE;
    for (ssize_t i = 0; i < got; i++)
        if (g_text[i] == '\n')
            g_text[i] = '\0';
    g_len = (size_t)got;
    return 0;
}

int gsettings_install_attach(void)
{
    char path[64];
    if (gsettings_attach_path(getpid(), path, sizeof(path)) < 0)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int rc = read_attach_file(fd);
    close(fd);
    if (rc == -ESTALE) {
        g_len = 0;                  /* another process's: not meant for us */
        return 0;
    }
    if (rc < 0)
        g_len = 0;                  /* ours but untrustworthy: no settings at all */
    atomic_store_explicit(&g_installed, 1, memory_order_release);
    return rc < 0 ? rc : 1;
}
