/*
 * registry_self.c - agents' status objects; see registry.h.
 *
 * Each agent reports how it is doing (state, hooks installed and failed,
 * the last message, the registry generation it applied) in an object of
 * its own, "<registry>.a.<pid>", that it creates with O_EXCL and writes
 * with pwrite: it never maps it, so a stray store of the host cannot reach
 * it, and a target that breaks its own object spoils only its line of
 * `graft list`. That name is guessable, so if someone else created it
 * first the agent takes "<registry>.a.<pid>.<random nonce>" instead: found
 * by listing /dev/shm, which is slower, never blocked. Readers trust
 * nothing in it: the owner, size, magic, the pid (and nonce) against the
 * name, the state and the process's start time (a stale object of a dead
 * process whose pid was reused does not match) are all checked.
 */
#define _GNU_SOURCE
#include "runtime/registry_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/procmaps.h"

#define SELF_MAGIC   0x464c4553474cULL   /* "LGSELF" */
#define SELF_VERSION 2   /* 2: facts_progs, facts_rewritten */
#define MAX_AGENTS   4096                /* status objects one listing reads */

struct self_record {
    uint64_t magic;
    uint32_t version;
    uint32_t size;                       /* sizeof(struct self_record) */
    struct greg_proc proc;
};

struct greg_self {
    int fd;
    int gone;                            /* unlinked: writes are dropped */
    char name[GREG_NAME_MAX];
    struct self_record rec;
};

uint64_t greg_random64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r = ((uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 16) *
            0x9E3779B97F4A7C15ull;
    }
    return r ? r : 1;
}

/* Read a status object's record without checking it. */
static int read_record(int fd, struct self_record *rec)
{
    return pread(fd, rec, sizeof(*rec), 0) == (ssize_t)sizeof(*rec) ? 0 : -1;
}

/* Is the object `name` this user's and a leftover: of a process that
 * started at another time than `started` (the pid was reused), or of this
 * very process (pid `mine`) before it called exec, which runs no
 * destructor? */
static int own_leftover(const char *name, uint64_t started, int mine)
{
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    struct stat st;
    struct self_record rec;
    int stale = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                (mine || read_record(fd, &rec) < 0 || rec.proc.start_time != started || !started);
    if (fd >= 0)
        close(fd);
    return stale;
}

static void self_write(struct greg_self *self)
{
    /* One pwrite of the whole record; a reader that catches it half-written
     * sees a record that fails its checks once, never a crash. */
    ssize_t w = pwrite(self->fd, &self->rec, sizeof(self->rec), 0);
    (void)w;
}

int greg_self_register(struct greg *reg, pid_t pid, const char *comm, struct greg_self **out,
                       struct graft_err *err)
{
    struct greg_self *self = calloc(1, sizeof(*self));
    if (!self)
        return graft_errf(err, -ENOMEM, "out of memory");
    self->fd = -1;
    uint64_t nonce = greg_random64();
    uint64_t started = gproc_start_time(pid);
    char rest[48];
    snprintf(rest, sizeof(rest), "%d", (int)pid);
    if (greg_child_name(reg, 'a', rest, self->name, sizeof(self->name)) == 0) {
        self->fd = shm_open(self->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        /* Our own leftover (of an earlier process with this pid that died
         * without removing it, or of this process before exec) is
         * replaced; anyone else's is left alone. */
        if (self->fd < 0 && errno == EEXIST && own_leftover(self->name, started, pid == getpid())) {
            shm_unlink(self->name);
            self->fd = shm_open(self->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        }
    }
    for (int tries = 0; self->fd < 0 && tries < 8; tries++) {
        nonce = greg_random64();
        snprintf(rest, sizeof(rest), "%d.%016" PRIx64, (int)pid, nonce);
        if (greg_child_name(reg, 'a', rest, self->name, sizeof(self->name)) < 0)
            break;
        self->fd = shm_open(self->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (self->fd < 0 && errno != EEXIST)
            break;
    }
    if (self->fd < 0) {
        int e = errno ? errno : ENAMETOOLONG;
        free(self);
        return graft_errf(err, -e, "agent: cannot create its status object under %s: %s",
                          greg_name(reg), strerror(e));
    }
    fchmod(self->fd, 0600);
    self->rec.magic = SELF_MAGIC;
    self->rec.version = SELF_VERSION;
    self->rec.size = sizeof(self->rec);
    self->rec.proc.pid = pid;
    self->rec.proc.state = GREG_PROC_RUNNING;
    self->rec.proc.nonce = nonce;
    self->rec.proc.start_time = started;
    graft_copy_str(self->rec.proc.comm, sizeof(self->rec.proc.comm), comm ? comm : "");
    self_write(self);
    *out = self;
    return 0;
}

void greg_self_set(struct greg_self *self, uint32_t state, uint64_t seen, uint32_t installed,
                   uint32_t failed, const char *message)
{
    if (!self || __atomic_load_n(&self->gone, __ATOMIC_ACQUIRE))
        return;
    struct greg_proc *p = &self->rec.proc;
    p->state = state;
    p->seen_generation = seen;
    p->links_installed = installed;
    p->links_failed = failed;
    if (message)
        graft_copy_str(p->message, sizeof(p->message), message);
    self_write(self);
}

void greg_self_set_facts(struct greg_self *self, uint32_t progs, uint32_t rewritten)
{
    if (!self)
        return;
    self->rec.proc.facts_progs = progs;
    self->rec.proc.facts_rewritten = rewritten;
}

void greg_self_gone(struct greg_self *self)
{
    if (!self)
        return;
    __atomic_store_n(&self->gone, 1, __ATOMIC_RELEASE);
    shm_unlink(self->name);
}

void greg_self_close(struct greg_self *self)
{
    if (!self)
        return;
    close(self->fd);
    free(self);
}

uint64_t greg_self_nonce(const struct greg_self *self) { return self ? self->rec.proc.nonce : 0; }

/* "<pid>" (*has_nonce 0) or "<pid>.<16 hex digits>" */
static int parse_rest(const char *rest, pid_t *pid, uint64_t *nonce, int *has_nonce)
{
    char *end;
    errno = 0;
    long p = strtol(rest, &end, 10);
    if (errno || end == rest || p <= 0 || p > INT32_MAX)
        return -1;
    *pid = (pid_t)p;
    *nonce = 0;
    *has_nonce = *end != '\0';
    if (!*has_nonce)
        return 0;
    if (*end != '.' || strlen(end + 1) != 16)
        return -1;
    const char *hex = end + 1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        const char *d = strchr("0123456789abcdef", hex[i]);
        if (!d || !hex[i])
            return -1;
        v = v << 4 | (uint64_t)(d - "0123456789abcdef");
    }
    *nonce = v;
    return 0;
}

int greg_self_alive(const char *rest)
{
    pid_t pid;
    uint64_t nonce;
    int has_nonce;
    if (parse_rest(rest, &pid, &nonce, &has_nonce) < 0)
        return 0;
    return !(kill(pid, 0) < 0 && errno == ESRCH);
}

/* Read one status object (fd open on it) into *p; NULL if it passes every
 * check, else why not. */
static const char *read_self(int fd, const struct stat *st, pid_t pid, uint64_t nonce,
                             int has_nonce, struct greg_proc *p)
{
    struct self_record rec;
    if (st->st_size != (off_t)sizeof(rec))
        return "wrong size";
    if (read_record(fd, &rec) < 0)
        return "unreadable";
    if (rec.magic != SELF_MAGIC || rec.version != SELF_VERSION || rec.size != sizeof(rec))
        return "bad magic or version";
    if (rec.proc.pid != pid || (has_nonce && rec.proc.nonce != nonce))
        return "pid or nonce differ from its name";
    if (rec.proc.state != GREG_PROC_RUNNING && rec.proc.state != GREG_PROC_DETACHED)
        return "bad state";
    rec.proc.comm[sizeof(rec.proc.comm) - 1] = '\0';
    rec.proc.message[sizeof(rec.proc.message) - 1] = '\0';
    *p = rec.proc;
    return NULL;
}

/* Look at the status object `name` (in directory dfd), whose name's tail
 * is `rest`: 1 with *p filled (a damaged one: state 0 and why in the
 * message, counted in *damaged), 0 if it is none of ours or a leftover
 * (then removed, when ours). */
static int examine(const struct greg *reg, int dfd, const char *name, const char *rest,
                   const struct greg_snapshot *s, struct greg_proc *p, uint32_t *damaged)
{
    pid_t pid;
    uint64_t nonce;
    int has_nonce;
    if (parse_rest(rest, &pid, &nonce, &has_nonce) < 0)
        return 0;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return 0;
    /* Someone else's object under our name is no agent of ours. */
    if (fstat(fd, &st) < 0 || !greg_trusted_owner(reg, &st)) {
        close(fd);
        return 0;
    }
    /* 0 when /proc does not tell (not mounted, hidepid): then only a pid
     * that does not exist marks a leftover */
    uint64_t started = gproc_start_time(pid);
    int gone = !started && kill(pid, 0) < 0 && errno == ESRCH;
    memset(p, 0, sizeof(*p));
    const char *why = read_self(fd, &st, pid, nonce, has_nonce, p);
    close(fd);
    if (gone || (!why && started && p->start_time && p->start_time != started)) {
        /* The process is gone (or the pid now belongs to another one): a
         * crashed agent's leftover. */
        if (st.st_uid == geteuid())
            unlinkat(dfd, name, 0);
        return 0;
    }
    if (why) {
        memset(p, 0, sizeof(*p));
        p->pid = pid;
        p->nonce = nonce;
        snprintf(p->message, sizeof(p->message), "status object /%.64s is damaged (%s)", name, why);
        (*damaged)++;
    } else if (p->state == GREG_PROC_RUNNING && s && greg_snapshot_detach_requested(s, pid, p->nonce)) {
        p->state = GREG_PROC_DETACHING;
    }
    return 1;
}

int greg_procs(struct greg *reg, struct greg_proc **out, uint32_t *n_out, uint32_t *n_damaged)
{
    *out = NULL;
    *n_out = *n_damaged = 0;
    DIR *d = opendir("/dev/shm");
    if (!d)
        return -errno;
    struct greg_snapshot s;
    int have_snap = greg_snapshot(reg, &s) == 0;
    char prefix[GREG_NAME_MAX];
    greg_child_name(reg, 'a', "", prefix, sizeof(prefix));
    size_t pl = strlen(prefix + 1);            /* names in the directory lack the '/' */
    struct greg_proc *procs = NULL, p;
    uint32_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_AGENTS) {
        if (strncmp(e->d_name, prefix + 1, pl) != 0 ||
            !examine(reg, dirfd(d), e->d_name, e->d_name + pl, have_snap ? &s : NULL, &p, n_damaged))
            continue;
        if (n == cap) {
            void *more = realloc(procs, (cap = cap ? 2 * cap : 16) * sizeof(*procs));
            if (!more) {
                rc = -ENOMEM;
                break;
            }
            procs = more;
        }
        procs[n++] = p;
    }
    closedir(d);
    if (have_snap)
        greg_snapshot_free(&s);
    if (rc < 0) {
        free(procs);
        return rc;
    }
    *out = procs;
    *n_out = n;
    return 0;
}

int greg_proc_find(struct greg *reg, pid_t pid, struct greg_proc *out, int list_if_missing)
{
    char name[GREG_NAME_MAX], rest[16];
    snprintf(rest, sizeof(rest), "%d", (int)pid);
    uint32_t damaged = 0;
    int found = 0;
    if (pid > 0 && greg_child_name(reg, 'a', rest, name, sizeof(name)) == 0) {
        /* The usual name first: no listing of /dev/shm. */
        int dfd = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct greg_snapshot s;
        int have_snap = greg_snapshot(reg, &s) == 0;
        found = dfd >= 0 && examine(reg, dfd, name + 1, rest, have_snap ? &s : NULL, out, &damaged) &&
                !damaged;
        struct stat st;
        if (!found && !list_if_missing && dfd >= 0 && fstatat(dfd, name + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
            errno == ENOENT) {
            close(dfd);
            if (have_snap)
                greg_snapshot_free(&s);
            return 0;
        }
        if (have_snap)
            greg_snapshot_free(&s);
        if (dfd >= 0)
            close(dfd);
        if (found)
            return 1;
    }
    struct greg_proc *procs;
    uint32_t n, bad;
    int rc = greg_procs(reg, &procs, &n, &bad);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < n && pid > 0; i++)
        if (procs[i].pid == pid && (!found || procs[i].state)) {
            *out = procs[i];
            found = 1;
        }
    free(procs);
    return found;
}

static int agent_pending(const struct greg_proc *p, pid_t pid, uint64_t gen)
{
    return p->state == GREG_PROC_RUNNING && (pid == 0 || p->pid == pid) && p->seen_generation < gen;
}

int greg_wait_applied(struct greg *reg, pid_t pid, uint64_t gen, int timeout_ms)
{
    for (int waited = 0;; waited += 5) {
        struct greg_proc *procs = NULL, one;
        uint32_t n = 0, n_bad = 0, pending = 0;
        if (pid) {
            /* the agent's usual object first; listing /dev/shm is slow */
            int found = greg_proc_find(reg, pid, &one, waited % 500 == 0);
            if (found < 0)
                return found;
            if (found == 0)
                return 0;          /* no agent: the links apply when one starts */
            procs = &one;
            n = 1;
        } else {
            int rc = greg_procs(reg, &procs, &n, &n_bad);
            if (rc < 0)
                return rc;
        }
        for (uint32_t i = 0; i < n; i++)
            pending += agent_pending(&procs[i], pid, gen);
        if (procs != &one)
            free(procs);
        if (pending == 0 || waited >= timeout_ms)
            return (int)pending;
        usleep(5 * 1000);
    }
}
