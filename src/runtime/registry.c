/*
 * registry.c - the shared-memory control plane; see registry.h.
 *
 * Layout of the shm object: a header, then fixed arrays of program, map, link
 * and process records. Only the pages that hold used records are ever touched,
 * so the large capacity costs address space, not memory.
 *
 * Invariants:
 *  - every mutation happens under hdr->lock and ends by bumping generation;
 *  - a record's id field is written last when adding and first when removing,
 *    so readers that skip id == 0 never see a half-written record as live
 *    (readers still take the lock for snapshots; the ordering protects the
 *    state a crashed writer leaves behind);
 *  - ids come from one counter and are never reused.
 */
#define _GNU_SOURCE
#include "runtime/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GREG_MAGIC   0x54464152474cULL   /* "LGRAFT" */
#define GREG_VERSION 4     /* 2: program externs, source-entry links; 3: slot high-water marks;
                            * 4: programs' policy tags */

struct greg_header {
    uint64_t magic;
    uint32_t version;
    uint32_t ready;            /* set once initialisation completed */
    pthread_mutex_t lock;
    uint32_t gen_futex;        /* low 32 bits of generation: the futex word */
    uint32_t pad;
    uint64_t generation;
    uint32_t next_id;
    uint32_t pad2;
    /* One past the highest slot ever used in each table. Slots are taken
     * lowest-free-first, so everything live is below the mark and readers
     * (snapshots, on every agent start and change) need not touch the
     * pages of a mostly empty multi-megabyte table. */
    uint32_t used_progs, used_maps, used_links, used_procs;
    struct greg_prog progs[GREG_MAX_PROGS];
    struct greg_map maps[GREG_MAX_MAPS];
    struct greg_link links[GREG_MAX_LINKS];
    struct greg_proc procs[GREG_MAX_PROCS];
};

/* Record that slot index i of a table is in use (under the lock). */
#define MARK_USED(mark, i)                                            \
    do {                                                              \
        if ((uint32_t)(i) + 1 > (mark))                               \
            (mark) = (uint32_t)(i) + 1;                               \
    } while (0)

struct greg {
    struct greg_header *hdr;
    char name[GREG_NAME_MAX];
};

const char *greg_default_name(char *buf, size_t len)
{
    const char *env = getenv("GRAFT_REGISTRY");
    if (env && *env)
        snprintf(buf, len, "%s%s", env[0] == '/' ? "" : "/", env);
    else
        snprintf(buf, len, "/graft.%u.registry", (unsigned)getuid());
    return buf;
}

static int init_header(struct greg_header *hdr)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&hdr->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc)
        return -rc;
    hdr->version = GREG_VERSION;
    hdr->next_id = 1;
    hdr->generation = 1;
    hdr->gen_futex = 1;
    __atomic_store_n(&hdr->magic, GREG_MAGIC, __ATOMIC_RELEASE);
    __atomic_store_n(&hdr->ready, 1, __ATOMIC_RELEASE);
    return 0;
}

/* A creator that races with another creator: the loser waits for `ready`. */
static int wait_ready(struct greg_header *hdr)
{
    for (int i = 0; i < 2000; i++) {
        if (__atomic_load_n(&hdr->ready, __ATOMIC_ACQUIRE))
            return 0;
        usleep(1000);
    }
    return -ETIMEDOUT;
}

int greg_open_named(const char *shm_name, int create, struct greg **out,
                    struct graft_err *err)
{
    int created = 0;
    int fd = -1;
    if (create) {
        /* fchmod after creation: the umask must not widen or narrow 0600. */
        fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            created = 1;
            fchmod(fd, 0600);
        }
    }
    if (fd < 0 && (!create || errno == EEXIST))
        fd = shm_open(shm_name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return graft_errf(err, -errno, "registry %s: %s%s", shm_name, strerror(errno),
                          errno == ENOENT ? " (nothing loaded yet: run `graft load` first)" : "");

    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return graft_errf(err, -e, "registry %s: fstat: %s", shm_name, strerror(e));
    }
    /* Only trust a registry written by ourselves or root: anyone else could
     * hand our agent arbitrary programs. */
    if (st.st_uid != getuid() && st.st_uid != 0) {
        close(fd);
        return graft_errf(err, -EPERM,
                          "registry %s is owned by uid %u, not by this user (%u) or root: refusing it",
                          shm_name, (unsigned)st.st_uid, (unsigned)getuid());
    }
    if (st.st_mode & 0077 & ~0060) {
        close(fd);
        return graft_errf(err, -EPERM, "registry %s has mode %o: others may write it; refusing it",
                          shm_name, (unsigned)(st.st_mode & 0777));
    }
    size_t size = sizeof(struct greg_header);
    if (created && ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        shm_unlink(shm_name);
        return graft_errf(err, -e, "registry %s: ftruncate: %s", shm_name, strerror(e));
    }
    if (!created) {
        /* The creator may not have sized it yet (size 0); any other size
         * is another version's registry, refused at once. */
        for (int i = 0; i < 2000 && st.st_size == 0; i++) {
            usleep(1000);
            fstat(fd, &st);
        }
        if (st.st_size < (off_t)size) {
            close(fd);
            return graft_errf(err, -EINVAL,
                              "registry %s is %lld bytes, expected %zu: not a graft registry of this version (remove /dev/shm%s)",
                              shm_name, (long long)st.st_size, size, shm_name);
        }
    }
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mem == MAP_FAILED)
        return graft_errf(err, -errno, "registry %s: mmap: %s", shm_name, strerror(errno));

    struct greg_header *hdr = mem;
    int rc = created ? init_header(hdr) : wait_ready(hdr);
    if (rc == 0 && (hdr->magic != GREG_MAGIC || hdr->version != GREG_VERSION))
        rc = -EPROTO;
    if (rc) {
        munmap(mem, size);
        return graft_errf(err, rc, "registry %s: %s", shm_name,
                          rc == -EPROTO ? "bad magic or version (remove it from /dev/shm)"
                                        : "creator never finished initialising it");
    }
    struct greg *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        munmap(mem, size);
        return graft_errf(err, -ENOMEM, "registry %s: out of memory", shm_name);
    }
    reg->hdr = hdr;
    snprintf(reg->name, sizeof(reg->name), "%s", shm_name);
    *out = reg;
    return 0;
}

int greg_open(struct greg **out, struct graft_err *err)
{
    char name[GREG_NAME_MAX];
    return greg_open_named(greg_default_name(name, sizeof(name)), 1, out, err);
}

void greg_close(struct greg *reg)
{
    if (!reg)
        return;
    munmap(reg->hdr, sizeof(struct greg_header));
    free(reg);
}

const char *greg_name(const struct greg *reg) { return reg->name; }

/* ---- locking and generations ---- */

static void lock(struct greg *reg)
{
    int rc = pthread_mutex_lock(&reg->hdr->lock);
    if (rc == EOWNERDEAD) {
        /* A writer died holding the lock. Records are published by their id
         * field, so whatever it half-wrote is invisible; carry on. */
        pthread_mutex_consistent(&reg->hdr->lock);
    }
}

static void unlock_and_publish(struct greg *reg)
{
    struct greg_header *h = reg->hdr;
    __atomic_add_fetch(&h->generation, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&h->gen_futex, (uint32_t)h->generation, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&h->lock);
    syscall(SYS_futex, &h->gen_futex, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

uint64_t greg_generation(const struct greg *reg)
{
    return __atomic_load_n(&reg->hdr->generation, __ATOMIC_ACQUIRE);
}

uint64_t greg_wait(struct greg *reg, uint64_t seen, int timeout_ms)
{
    struct greg_header *h = reg->hdr;
    uint64_t now = greg_generation(reg);
    if (now != seen)
        return now;
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    syscall(SYS_futex, &h->gen_futex, FUTEX_WAIT, (uint32_t)seen, tsp, NULL, 0);
    return greg_generation(reg);
}

static uint32_t new_id(struct greg_header *h) { return h->next_id++; }

/* ---- mutations ---- */

int greg_add_map(struct greg *reg, const char *name, const char *shm,
                 const struct gmap_def *def, struct graft_err *err)
{
    lock(reg);
    struct greg_map *slot = NULL;
    for (int i = 0; i < GREG_MAX_MAPS && !slot; i++)
        if (reg->hdr->maps[i].id == 0) {
            slot = &reg->hdr->maps[i];
            MARK_USED(reg->hdr->used_maps, i);
        }
    if (!slot) {
        pthread_mutex_unlock(&reg->hdr->lock);
        return graft_errf(err, -ENOSPC, "registry %s: all %d map slots in use", reg->name, GREG_MAX_MAPS);
    }
    memset(slot, 0, sizeof(*slot));
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    snprintf(slot->shm, sizeof(slot->shm), "%s", shm);
    slot->def = *def;
    /* Maps named "graft.*" belong to the runtime (e.g. the trace buffer) and
     * outlive the loader that happened to create them. */
    slot->owner_pid = strncmp(name, "graft.", 6) == 0 ? 0 : getpid();
    uint32_t id = new_id(reg->hdr);
    __atomic_store_n(&slot->id, id, __ATOMIC_RELEASE);
    unlock_and_publish(reg);
    return (int)id;
}

static int store_insns(const char *shm, const struct bpf_insn *insns, uint32_t n,
                       struct graft_err *err)
{
    int fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return graft_errf(err, -errno, "program store %s: %s", shm, strerror(errno));
    size_t size = (size_t)n * sizeof(*insns);
    ssize_t w = write(fd, insns, size);
    int e = errno;
    close(fd);
    if (w != (ssize_t)size) {
        shm_unlink(shm);
        return graft_errf(err, w < 0 ? -e : -EIO, "program store %s: short write", shm);
    }
    return 0;
}

int greg_add_prog(struct greg *reg, const struct greg_prog *tmpl,
                  const struct bpf_insn *insns, struct graft_err *err)
{
    if (tmpl->n_maps > GREG_PROG_MAPS)
        return graft_errf(err, -E2BIG, "program %s uses %u maps; at most %d", tmpl->name,
                          tmpl->n_maps, GREG_PROG_MAPS);
    if (tmpl->n_externs > GREG_PROG_EXTERNS)
        return graft_errf(err, -E2BIG, "program %s names %u host functions/globals; at most %d",
                          tmpl->name, tmpl->n_externs, GREG_PROG_EXTERNS);
    for (uint32_t i = 0; i < tmpl->n_externs; i++) {
        const struct greg_extern *x = &tmpl->externs[i];
        size_t len = strnlen(x->name, sizeof(x->name));
        if (len == 0 || len == sizeof(x->name) ||
            (x->kind != GREG_EXTERN_FUNC && x->kind != GREG_EXTERN_VAR))
            return graft_errf(err, -EINVAL,
                              "program %s: extern %u is malformed (empty or over %d-byte name, or bad kind %u)",
                              tmpl->name, i, GREG_EXTERN_NAME - 1, x->kind);
    }
    lock(reg);
    struct greg_prog *slot = NULL;
    for (int i = 0; i < GREG_MAX_PROGS && !slot; i++)
        if (reg->hdr->progs[i].id == 0) {
            slot = &reg->hdr->progs[i];
            MARK_USED(reg->hdr->used_progs, i);
        }
    if (!slot) {
        pthread_mutex_unlock(&reg->hdr->lock);
        return graft_errf(err, -ENOSPC, "registry %s: all %d program slots in use", reg->name,
                          GREG_MAX_PROGS);
    }
    uint32_t id = new_id(reg->hdr);
    struct greg_prog rec = *tmpl;
    rec.id = 0;
    int rc = 0;
    if (snprintf(rec.insn_shm, sizeof(rec.insn_shm), "%s.prog%u", reg->name, id) >= (int)sizeof(rec.insn_shm))
        rc = graft_errf(err, -ENAMETOOLONG, "registry name %s is too long", reg->name);
    if (rc == 0)
        rc = store_insns(rec.insn_shm, insns, rec.n_insns, err);
    if (rc) {
        pthread_mutex_unlock(&reg->hdr->lock);
        return rc;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rec.load_time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    rec.owner_pid = getpid();
    *slot = rec;
    __atomic_store_n(&slot->id, id, __ATOMIC_RELEASE);
    unlock_and_publish(reg);
    return (int)id;
}

int greg_add_link(struct greg *reg, const struct greg_link *tmpl, struct graft_err *err)
{
    lock(reg);
    int prog_ok = 0;
    for (int i = 0; i < GREG_MAX_PROGS; i++)
        if (reg->hdr->progs[i].id && reg->hdr->progs[i].id == tmpl->prog_id)
            prog_ok = 1;
    struct greg_link *slot = NULL;
    for (int i = 0; i < GREG_MAX_LINKS && !slot; i++)
        if (reg->hdr->links[i].id == 0) {
            slot = &reg->hdr->links[i];
            MARK_USED(reg->hdr->used_links, i);
        }
    if (!prog_ok || !slot) {
        pthread_mutex_unlock(&reg->hdr->lock);
        return prog_ok ? graft_errf(err, -ENOSPC, "registry %s: all link slots in use", reg->name)
                       : graft_errf(err, -ENOENT, "no program with id %u", tmpl->prog_id);
    }
    struct greg_link rec = *tmpl;
    rec.id = 0;
    rec.owner_pid = getpid();
    *slot = rec;
    uint32_t id = new_id(reg->hdr);
    __atomic_store_n(&slot->id, id, __ATOMIC_RELEASE);
    unlock_and_publish(reg);
    return (int)id;
}

static void drop_link(struct greg_link *l) { __atomic_store_n(&l->id, 0, __ATOMIC_RELEASE); }

static void drop_prog(struct greg_header *h, struct greg_prog *p)
{
    for (int i = 0; i < GREG_MAX_LINKS; i++)
        if (h->links[i].id && h->links[i].prog_id == p->id)
            drop_link(&h->links[i]);
    char shm[GREG_NAME_MAX];
    memcpy(shm, p->insn_shm, sizeof(shm));
    __atomic_store_n(&p->id, 0, __ATOMIC_RELEASE);
    shm_unlink(shm);          /* agents that already mapped or copied it keep theirs */
}

static void drop_map(struct greg_map *m)
{
    char shm[GREG_NAME_MAX];
    memcpy(shm, m->shm, sizeof(shm));
    __atomic_store_n(&m->id, 0, __ATOMIC_RELEASE);
    gmap_unlink(shm);
}

int greg_remove_link(struct greg *reg, uint32_t id)
{
    int rc = -ENOENT;
    lock(reg);
    for (int i = 0; i < GREG_MAX_LINKS; i++)
        if (id && reg->hdr->links[i].id == id) {
            drop_link(&reg->hdr->links[i]);
            rc = 0;
        }
    unlock_and_publish(reg);
    return rc;
}

int greg_remove_prog(struct greg *reg, uint32_t id)
{
    int rc = -ENOENT;
    lock(reg);
    for (int i = 0; i < GREG_MAX_PROGS; i++)
        if (id && reg->hdr->progs[i].id == id) {
            drop_prog(reg->hdr, &reg->hdr->progs[i]);
            rc = 0;
        }
    unlock_and_publish(reg);
    return rc;
}

int greg_remove_map(struct greg *reg, uint32_t id)
{
    int rc = -ENOENT;
    lock(reg);
    for (int i = 0; i < GREG_MAX_MAPS; i++)
        if (id && reg->hdr->maps[i].id == id) {
            drop_map(&reg->hdr->maps[i]);
            rc = 0;
        }
    unlock_and_publish(reg);
    return rc;
}

int greg_remove_owned_by(struct greg *reg, pid_t owner)
{
    int n = 0;
    struct greg_header *h = reg->hdr;
    lock(reg);
    for (int i = 0; i < GREG_MAX_LINKS; i++)
        if (h->links[i].id && h->links[i].owner_pid == owner) {
            drop_link(&h->links[i]);
            n++;
        }
    for (int i = 0; i < GREG_MAX_PROGS; i++)
        if (h->progs[i].id && h->progs[i].owner_pid == owner) {
            drop_prog(h, &h->progs[i]);
            n++;
        }
    for (int i = 0; i < GREG_MAX_MAPS; i++)
        if (h->maps[i].id && h->maps[i].owner_pid == owner) {
            drop_map(&h->maps[i]);
            n++;
        }
    unlock_and_publish(reg);
    return n;
}

/* Everything: every link, program and map, the runtime's own (the trace
 * buffer) included, with their shared-memory objects. */
int greg_remove_all(struct greg *reg)
{
    int n = 0;
    struct greg_header *h = reg->hdr;
    lock(reg);
    for (uint32_t i = 0; i < h->used_links; i++)
        if (h->links[i].id) {
            drop_link(&h->links[i]);
            n++;
        }
    for (uint32_t i = 0; i < h->used_progs; i++)
        if (h->progs[i].id) {
            drop_prog(h, &h->progs[i]);
            n++;
        }
    for (uint32_t i = 0; i < h->used_maps; i++)
        if (h->maps[i].id) {
            drop_map(&h->maps[i]);
            n++;
        }
    unlock_and_publish(reg);
    return n;
}

/* ---- agents ---- */

int greg_proc_register(struct greg *reg, pid_t pid, const char *comm, struct greg_proc **out)
{
    struct greg_header *h = reg->hdr;
    struct greg_proc *slot = NULL;
    lock(reg);
    /* Reuse our own stale slot (a pid recycled after a crash) or a free one. */
    for (uint32_t i = 0; i < h->used_procs && !slot; i++)
        if (h->procs[i].pid == pid)
            slot = &h->procs[i];
    for (int i = 0; i < GREG_MAX_PROCS && !slot; i++)
        if (h->procs[i].pid == 0 || (kill(h->procs[i].pid, 0) < 0 && errno == ESRCH)) {
            slot = &h->procs[i];
            MARK_USED(h->used_procs, i);
        }
    if (!slot) {
        pthread_mutex_unlock(&h->lock);
        return -ENOSPC;
    }
    memset(slot, 0, sizeof(*slot));
    slot->state = GREG_PROC_RUNNING;
    snprintf(slot->comm, sizeof(slot->comm), "%s", comm ? comm : "");
    __atomic_store_n(&slot->pid, pid, __ATOMIC_RELEASE);
    unlock_and_publish(reg);
    *out = slot;
    return 0;
}

void greg_proc_set(struct greg *reg, struct greg_proc *proc, uint32_t state, uint64_t seen,
                   uint32_t installed, uint32_t failed, const char *message)
{
    lock(reg);
    proc->state = state;
    proc->seen_generation = seen;
    proc->links_installed = installed;
    proc->links_failed = failed;
    if (message)
        snprintf(proc->message, sizeof(proc->message), "%s", message);
    if (state == GREG_PROC_GONE)
        __atomic_store_n(&proc->pid, 0, __ATOMIC_RELEASE);
    /* Status updates are not registry changes: no generation bump, or agents
     * would wake each other forever. */
    pthread_mutex_unlock(&reg->hdr->lock);
}

int greg_request_detach(struct greg *reg, pid_t pid)
{
    int rc = -ESRCH;
    lock(reg);
    for (int i = 0; i < GREG_MAX_PROCS; i++)
        if (pid && reg->hdr->procs[i].pid == pid && reg->hdr->procs[i].state == GREG_PROC_RUNNING) {
            reg->hdr->procs[i].state = GREG_PROC_DETACHING;
            rc = 0;
        }
    unlock_and_publish(reg);
    return rc;
}

int greg_request_attach(struct greg *reg, pid_t pid)
{
    int rc = -ESRCH;
    lock(reg);
    for (int i = 0; i < GREG_MAX_PROCS; i++) {
        struct greg_proc *p = &reg->hdr->procs[i];
        if (!pid || p->pid != pid)
            continue;
        rc = p->state == GREG_PROC_DETACHED ? 0 : -EALREADY;
        if (rc == 0)
            p->state = GREG_PROC_RUNNING;
    }
    unlock_and_publish(reg);
    return rc;
}

int greg_proc_state(struct greg *reg, pid_t pid)
{
    int state = 0;
    lock(reg);
    for (int i = 0; i < GREG_MAX_PROCS; i++)
        if (pid && reg->hdr->procs[i].pid == pid)
            state = (int)reg->hdr->procs[i].state;
    pthread_mutex_unlock(&reg->hdr->lock);
    return state;
}

/* ---- readers ---- */

#define COPY_LIVE(dst, n, src, cap)                                   \
    do {                                                              \
        (dst) = calloc((cap) + 1, sizeof(*(dst)));                    \
        if (!(dst))                                                   \
            goto oom;                                                 \
        for (uint32_t i_ = 0; i_ < (cap); i_++)                       \
            if ((src)[i_].id)                                         \
                (dst)[(n)++] = (src)[i_];                             \
    } while (0)

int greg_snapshot(struct greg *reg, struct greg_snapshot *s)
{
    struct greg_header *h = reg->hdr;
    memset(s, 0, sizeof(*s));
    lock(reg);
    s->generation = h->generation;
    COPY_LIVE(s->progs, s->n_progs, h->progs, h->used_progs);
    COPY_LIVE(s->maps, s->n_maps, h->maps, h->used_maps);
    COPY_LIVE(s->links, s->n_links, h->links, h->used_links);
    s->procs = calloc(h->used_procs + 1, sizeof(*s->procs));
    if (!s->procs)
        goto oom;
    for (uint32_t i = 0; i < h->used_procs; i++)
        if (h->procs[i].pid)
            s->procs[s->n_procs++] = h->procs[i];
    pthread_mutex_unlock(&h->lock);
    return 0;
oom:
    pthread_mutex_unlock(&h->lock);
    greg_snapshot_free(s);
    return -ENOMEM;
}

void greg_snapshot_free(struct greg_snapshot *s)
{
    free(s->progs);
    free(s->maps);
    free(s->links);
    free(s->procs);
    memset(s, 0, sizeof(*s));
}

const struct greg_map *greg_snapshot_map(const struct greg_snapshot *s, uint32_t id)
{
    for (uint32_t i = 0; i < s->n_maps; i++)
        if (s->maps[i].id == id)
            return &s->maps[i];
    return NULL;
}

const struct greg_map *greg_snapshot_map_by_name(const struct greg_snapshot *s, const char *name)
{
    const struct greg_map *found = NULL;      /* the newest of that name */
    for (uint32_t i = 0; i < s->n_maps; i++)
        if (strcmp(s->maps[i].name, name) == 0 && (!found || s->maps[i].id > found->id))
            found = &s->maps[i];
    return found;
}

const struct greg_prog *greg_snapshot_prog(const struct greg_snapshot *s, uint32_t id)
{
    for (uint32_t i = 0; i < s->n_progs; i++)
        if (s->progs[i].id == id)
            return &s->progs[i];
    return NULL;
}

int greg_prog_insns(const struct greg_prog *p, struct bpf_insn **out, struct graft_err *err)
{
    int fd = shm_open(p->insn_shm, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return graft_errf(err, -errno, "program %s (id %u): %s: %s", p->name, p->id, p->insn_shm,
                          strerror(errno));
    size_t size = (size_t)p->n_insns * sizeof(struct bpf_insn);
    struct bpf_insn *insns = malloc(size ? size : 1);
    ssize_t r = insns ? pread(fd, insns, size, 0) : -1;
    close(fd);
    if (r != (ssize_t)size) {
        free(insns);
        return graft_errf(err, -EIO, "program %s (id %u): instruction store is truncated", p->name,
                          p->id);
    }
    *out = insns;
    return 0;
}

const char *greg_link_kind_name(uint32_t kind)
{
    static const char *const names[] = {
        [GREG_LINK_UPROBE] = "uprobe",         [GREG_LINK_URETPROBE] = "uretprobe",
        [GREG_LINK_OVERRIDE] = "override",     [GREG_LINK_REPLACE] = "replace",
        [GREG_LINK_SRC_ENTRY] = "src_entry",
        [GREG_LINK_SYS_ENTER] = "sys_enter",   [GREG_LINK_SYS_EXIT] = "sys_exit",
        [GREG_LINK_RAW_SYS_ENTER] = "raw_sys_enter", [GREG_LINK_RAW_SYS_EXIT] = "raw_sys_exit",
    };
    return kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "unknown";
}
