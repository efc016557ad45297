/*
 * registry.c - the shared-memory control plane; see registry.h.
 *
 * Layout of the shm object: a header, then fixed arrays of program, map, link
 * and detach-request records. Only the pages that hold used records are ever
 * touched, so the large capacity costs address space, not memory.
 *
 * Invariants:
 *  - every mutation happens under hdr->lock, makes hdr->seq odd while it
 *    changes records, and ends by making it even and bumping generation;
 *  - a record's id field is written last when adding and first when removing,
 *    so a writer that dies mid-change leaves no half-written live record;
 *  - ids come from one counter and are never reused;
 *  - nothing read from the object is trusted: counts are clamped, records
 *    checked after they are copied, object names must lie under the
 *    registry's own name before anything opens or unlinks them.
 * Agents' status objects are in registry_self.c.
 */
#define _GNU_SOURCE
#include "runtime/registry.h"

#include <dirent.h>
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

#include "runtime/registry_int.h"
#include "util/settings.h"

#define GREG_MAGIC   0x54464152474cULL   /* "LGRAFT" */
/* 2: program externs, source-entry links; 3: slot high-water marks;
 * 4: read-only for agents (pid lock word, sequence counter, detach
 * requests, agents' status in their own objects, program hashes);
 * 5: extern memory-argument masks (host-call copies), programs' policy
 * tags (tail calls only between programs of one policy); 6: the
 * verifier's facts in program stores (n_facts). */
#define GREG_VERSION 6

#define LOCK_WAIT_MS  2000    /* a writer holding the lock longer is not a writer */
#define READ_WAIT_MS  2000    /* a reader retrying longer gives up */
#define PID_LIMIT     4194304 /* PID_MAX_LIMIT: no pid is larger */

struct greg_header {
    uint64_t magic;
    uint32_t version;
    uint32_t ready;            /* set at initialisation (magic is what readers wait for) */
    uint32_t lock;             /* pid of the writer holding it, 0 free (a futex word) */
    uint32_t seq;              /* odd while a writer changes records */
    uint32_t gen_futex;        /* low 32 bits of generation: the futex word */
    uint32_t pad;
    uint64_t generation;
    uint32_t next_id;
    /* One past the highest slot ever used in each table. Slots are taken
     * lowest-free-first, so everything live is below the mark and readers
     * (snapshots, on every agent start and change) need not touch the
     * pages of a mostly empty multi-megabyte table. */
    uint32_t used_progs, used_maps, used_links, used_requests;
    uint32_t pad2;
    struct greg_prog progs[GREG_MAX_PROGS];
    struct greg_map maps[GREG_MAX_MAPS];
    struct greg_link links[GREG_MAX_LINKS];
    struct greg_request requests[GREG_MAX_REQUESTS];
};

/* Record that slot index i of a table is in use (under the lock). */
#define MARK_USED(mark, i)                                            \
    do {                                                              \
        if ((uint32_t)(i) + 1 > (mark))                               \
            (mark) = (uint32_t)(i) + 1;                               \
    } while (0)

/* A high-water mark as read from the object: never past the table. */
static uint32_t clamp(uint32_t used, uint32_t cap) { return used < cap ? used : cap; }

/* Threads of one process serialise here before taking the shared lock
 * (its word holds a pid, not a thread). */
static pthread_mutex_t local_lock = PTHREAD_MUTEX_INITIALIZER;

const char *greg_default_name(char *buf, size_t len)
{
    const char *env = gsetting("GRAFT_REGISTRY");
    if (env && *env)
        snprintf(buf, len, "%s%s", env[0] == '/' ? "" : "/", env);
    else
        snprintf(buf, len, "/graft.%u.registry", (unsigned)getuid());
    return buf;
}

/* "/NAME": one path component, short enough for its objects' names. */
static int valid_reg_name(const char *name)
{
    size_t len = strnlen(name, GREG_NAME_MAX);
    return len >= 2 && len <= GREG_REG_NAME_MAX && name[0] == '/' && name[1] != '.' &&
           !strchr(name + 1, '/');
}

int greg_child_name(const struct greg *reg, char kind, const char *rest, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s.%c.%s", reg->name, kind, rest);
    return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* Is name (a record's field of GREG_NAME_MAX bytes) an object of this
 * registry of that kind: "<registry>.<kind>.<something without '/'>"? */
int greg_is_child(const struct greg *reg, const char *name, size_t field, char kind)
{
    size_t len = strnlen(name, field);
    size_t rl = strlen(reg->name);
    return len < field && len > rl + 3 && memcmp(name, reg->name, rl) == 0 && name[rl] == '.' &&
           name[rl + 1] == kind && name[rl + 2] == '.' && !strchr(name + rl + 3, '/');
}

const char *greg_map_prefix(const struct greg *reg, char *buf, size_t len)
{
    snprintf(buf, len, "%s.m.", reg->name);
    return buf;
}

/* Who may have written an object we are about to trust: this user, root,
 * or whoever owns the registry; and nobody else may write it. */
int greg_trusted_owner(const struct greg *reg, const struct stat *st)
{
    return S_ISREG(st->st_mode) && !(st->st_mode & 0022) &&
           (st->st_uid == geteuid() || st->st_uid == 0 || (reg && st->st_uid == reg->owner));
}

static int init_header(struct greg_header *hdr)
{
    hdr->version = GREG_VERSION;
    hdr->next_id = 1;
    hdr->generation = 1;
    hdr->gen_futex = 1;
    hdr->ready = 1;
    __atomic_store_n(&hdr->magic, GREG_MAGIC, __ATOMIC_RELEASE);   /* last */
    return 0;
}

/* A creator that races with another creator: the loser waits for the
 * magic, written last. Any other value than 0 is final (right or wrong). */
static int wait_ready(struct greg_header *hdr)
{
    for (int i = 0; i < 2000; i++) {
        if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE))
            return 0;
        usleep(1000);
    }
    return -ETIMEDOUT;
}

/* The message for an object that exists but is not ours to trust. */
static int refuse_object(const char *what, const char *name, const struct stat *st,
                         struct graft_err *err)
{
    if (!S_ISREG(st->st_mode))
        return graft_errf(err, -EPERM, "%s %s (/dev/shm%s) is not a regular file: refusing it; remove it",
                          what, name, name);
    if (st->st_mode & 0022)
        return graft_errf(err, -EPERM,
                          "%s %s (/dev/shm%s) has mode %o: others may write it; refusing it. Remove it (rm /dev/shm%s)%s",
                          what, name, name, (unsigned)(st->st_mode & 0777), name,
                          st->st_uid == geteuid() ? "" : " as its owner or root");
    return graft_errf(err, -EPERM,
                      "%s %s (/dev/shm%s) is owned by uid %u, not by this user (uid %u) or root: someone else created it, so nothing in it can be trusted; refusing it. Remove it as root (rm /dev/shm%s) or use another registry (GRAFT_REGISTRY=/NAME)",
                      what, name, name, (unsigned)st->st_uid, (unsigned)geteuid(), name);
}

static int damaged(const char *name, const char *why, int code, struct graft_err *err)
{
    return graft_errf(err, code,
                      "registry %s (/dev/shm%s) is damaged or from another graft version (%s); `graft unload --all` removes it with its maps and programs",
                      name, name, why);
}

int greg_open_named(const char *shm_name, int flags, struct greg **out, struct graft_err *err)
{
    int ro = flags & GREG_OPEN_READONLY;
    if (!valid_reg_name(shm_name))
        return graft_errf(err, -EINVAL,
                          "registry name '%.80s' must be /NAME: one component, at most %d bytes",
                          shm_name, GREG_REG_NAME_MAX);
    int created = 0;
    int fd = -1;
    /* glibc's shm_open adds O_NOFOLLOW: a symlink planted in /dev/shm is
     * not followed. */
    if (flags & GREG_OPEN_CREATE) {
        fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            created = 1;
            fchmod(fd, 0600);          /* the umask must not widen or narrow 0600 */
        }
    }
    if (fd < 0 && (!(flags & GREG_OPEN_CREATE) || errno == EEXIST))
        fd = shm_open(shm_name, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        char path[GREG_NAME_MAX + 16];
        struct stat st;
        snprintf(path, sizeof(path), "/dev/shm%s", shm_name);
        if (e == EACCES && lstat(path, &st) == 0 && !greg_trusted_owner(NULL, &st))
            return refuse_object("registry", shm_name, &st, err);
        return graft_errf(err, -e, "registry %s: %s%s", shm_name, strerror(e),
                          e == ENOENT ? " (nothing loaded yet: run `graft load` first)" : "");
    }

    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return graft_errf(err, -e, "registry %s: fstat: %s", shm_name, strerror(e));
    }
    /* Only trust a registry written by ourselves or root: anyone else could
     * hand our agent arbitrary programs. */
    if (!greg_trusted_owner(NULL, &st)) {
        close(fd);
        return refuse_object("registry", shm_name, &st, err);
    }
    size_t size = sizeof(struct greg_header);
    if (created && ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        shm_unlink(shm_name);
        return graft_errf(err, -e, "registry %s: ftruncate: %s", shm_name, strerror(e));
    }
    if (created) {
        void *init = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (init == MAP_FAILED) {
            int e = errno;
            close(fd);
            shm_unlink(shm_name);
            return graft_errf(err, -e, "registry %s: mmap: %s", shm_name, strerror(e));
        }
        init_header(init);
        munmap(init, size);
    } else {
        /* The creator may not have sized it yet (size 0); any other size
         * is another version's registry, or a damaged one. */
        for (int i = 0; i < 2000 && st.st_size == 0; i++) {
            usleep(1000);
            fstat(fd, &st);
        }
        if (st.st_size != (off_t)size) {
            close(fd);
            char why[96];
            snprintf(why, sizeof(why), "%lld bytes, expected %zu", (long long)st.st_size, size);
            return damaged(shm_name, why, -EPROTO, err);
        }
    }
    void *mem = mmap(NULL, size, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mem == MAP_FAILED)
        return graft_errf(err, -errno, "registry %s: mmap: %s", shm_name, strerror(errno));

    struct greg_header *hdr = mem;
    int rc = wait_ready(hdr);
    if (rc == 0 && (hdr->magic != GREG_MAGIC || hdr->version != GREG_VERSION))
        rc = -EPROTO;
    if (rc) {
        munmap(mem, size);
        return damaged(shm_name, rc == -EPROTO ? "bad magic or version" : "never finished initialising",
                       -EPROTO, err);
    }
    struct greg *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        munmap(mem, size);
        return graft_errf(err, -ENOMEM, "registry %s: out of memory", shm_name);
    }
    reg->hdr = hdr;
    reg->readonly = ro;
    reg->owner = st.st_uid;
    snprintf(reg->name, sizeof(reg->name), "%s", shm_name);
    *out = reg;
    return 0;
}

int greg_open(struct greg **out, struct graft_err *err)
{
    char name[GREG_NAME_MAX];
    return greg_open_named(greg_default_name(name, sizeof(name)), GREG_OPEN_CREATE, out, err);
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

static int futex(uint32_t *word, int op, uint32_t val, int timeout_ms)
{
    struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
    return (int)syscall(SYS_futex, word, op, val, timeout_ms >= 0 ? &ts : NULL, NULL, 0);
}

/* A lock word no live writer holds: free, an impossible pid, a process that
 * is gone, or this very process (a writer before a crash had our pid; our
 * own threads are serialised by local_lock). */
static int owner_dead(uint32_t owner)
{
    return owner == 0 || owner >= PID_LIMIT || (kill((pid_t)owner, 0) < 0 && errno == ESRCH);
}

static int owner_gone(uint32_t owner) { return owner == (uint32_t)getpid() || owner_dead(owner); }

/* A writer has the registry mapped writable. A live process that does not
 * (a pid written into the lock word by a target, a kernel thread) holds no
 * lock. Only asked after waiting a while: it reads /proc/PID/maps. Another
 * user's process we cannot look into counts as a writer. */
static int maps_registry_writable(const struct greg *reg, uint32_t pid)
{
    char path[40], line[512], want[GREG_NAME_MAX + 16];
    snprintf(path, sizeof(path), "/proc/%u/maps", pid);
    snprintf(want, sizeof(want), "/dev/shm%s", reg->name);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno != ENOENT && errno != ESRCH;
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *perms = strchr(line, ' ');
        const char *p = strchr(line, '/');
        found = perms && p && perms[2] == 'w' && strcmp(p, want) == 0;
    }
    fclose(f);
    return found;
}

/* Is someone changing the registry right now? waited_ms: how long the
 * caller has already waited for owner. */
static int writer_active(const struct greg *reg, uint32_t owner, long waited_ms, int self_is_stale)
{
    if (self_is_stale ? owner_gone(owner) : owner_dead(owner))
        return 0;
    return waited_ms < 20 || maps_registry_writable(reg, owner);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int lock(struct greg *reg, struct graft_err *err)
{
    struct greg_header *h = reg->hdr;
    if (reg->readonly)
        return graft_errf(err, -EROFS, "registry %s is open read-only here", reg->name);
    pthread_mutex_lock(&local_lock);
    uint32_t me = (uint32_t)getpid();
    long start = now_ms(), deadline = start + LOCK_WAIT_MS, asked = 0;
    for (;;) {
        uint32_t cur = __atomic_load_n(&h->lock, __ATOMIC_ACQUIRE);
        long waited = now_ms() - start;
        /* /proc is read once after 20 ms of waiting, then every 200 ms */
        int ask = waited >= 20 && waited - asked >= 200;
        if (ask)
            asked = waited;
        if (!writer_active(reg, cur, ask ? waited : 0, 1)) {
            /* A writer that died mid-change left seq odd: its half-written
             * records are invisible (ids go last), so carry on. */
            if (__atomic_compare_exchange_n(&h->lock, &cur, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                break;
            continue;
        }
        long left = deadline - now_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&local_lock);
            return graft_errf(err, -ETIMEDOUT,
                              "registry %s: its lock has been held by pid %u for %d ms; if that is not a graft command, the registry is damaged: `graft unload --all` removes it",
                              reg->name, cur, LOCK_WAIT_MS);
        }
        futex(&h->lock, FUTEX_WAIT, cur, left < 10 ? (int)left : 10);
    }
    uint32_t seq = __atomic_load_n(&h->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&h->seq, (seq | 1) + 2, __ATOMIC_RELAXED);   /* odd */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return 0;
}

static void unlock(struct greg *reg, int publish)
{
    struct greg_header *h = reg->hdr;
    if (publish) {
        __atomic_add_fetch(&h->generation, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&h->gen_futex, (uint32_t)h->generation, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&h->seq, __atomic_load_n(&h->seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&h->lock, 0, __ATOMIC_RELEASE);
    futex(&h->lock, FUTEX_WAKE, INT32_MAX, -1);
    pthread_mutex_unlock(&local_lock);
    if (publish)
        futex(&h->gen_futex, FUTEX_WAKE, INT32_MAX, -1);
}

uint64_t greg_generation(const struct greg *reg)
{
    return __atomic_load_n(&reg->hdr->generation, __ATOMIC_ACQUIRE);
}

uint64_t greg_wait(struct greg *reg, uint64_t seen, int timeout_ms)
{
    uint64_t now = greg_generation(reg);
    if (now != seen)
        return now;
    futex(&reg->hdr->gen_futex, FUTEX_WAIT, (uint32_t)seen, timeout_ms);
    return greg_generation(reg);
}

/* The next id: never 0 (a free slot), never past INT32_MAX (mutations
 * return ids as int). A damaged counter restarts past every live id. */
static uint32_t new_id(struct greg_header *h)
{
    if (h->next_id == 0 || h->next_id >= INT32_MAX) {
        uint32_t max = 0;
        for (uint32_t i = 0; i < GREG_MAX_PROGS; i++)
            if (h->progs[i].id > max && h->progs[i].id < INT32_MAX)
                max = h->progs[i].id;
        for (uint32_t i = 0; i < GREG_MAX_MAPS; i++)
            if (h->maps[i].id > max && h->maps[i].id < INT32_MAX)
                max = h->maps[i].id;
        for (uint32_t i = 0; i < GREG_MAX_LINKS; i++)
            if (h->links[i].id > max && h->links[i].id < INT32_MAX)
                max = h->links[i].id;
        h->next_id = max + 1 < INT32_MAX ? max + 1 : 1;
    }
    return h->next_id++;
}

/* ---- mutations ---- */

int greg_add_map(struct greg *reg, const char *name, const char *shm,
                 const struct gmap_def *def, struct graft_err *err)
{
    int rc = lock(reg, err);
    if (rc < 0)
        return rc;
    struct greg_map *slot = NULL;
    for (int i = 0; i < GREG_MAX_MAPS && !slot; i++)
        if (reg->hdr->maps[i].id == 0) {
            slot = &reg->hdr->maps[i];
            MARK_USED(reg->hdr->used_maps, i);
        }
    if (!slot) {
        unlock(reg, 0);
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
    unlock(reg, 1);
    return (int)id;
}

/* A program's instructions (and facts) go to a new object of an
 * unguessable name: nobody can have created it first, and O_EXCL makes
 * sure. */
static int store_code(const struct greg *reg, char *shm, size_t len, const void *code, size_t size,
                      struct graft_err *err)
{
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        char rnd[20];
        snprintf(rnd, sizeof(rnd), "%016llx", (unsigned long long)greg_random64());
        if (greg_child_name(reg, 'p', rnd, shm, len) < 0)
            return graft_errf(err, -ENAMETOOLONG, "registry name %s is too long", reg->name);
        fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return graft_errf(err, -errno, "program store %s: %s", shm, strerror(errno));
    fchmod(fd, 0600);
    ssize_t w = write(fd, code, size);
    int e = errno;
    close(fd);
    if (w != (ssize_t)size) {
        shm_unlink(shm);
        return graft_errf(err, w < 0 ? -e : -EIO, "program store %s: short write", shm);
    }
    return 0;
}

/* The store's bytes: the instructions, then the facts field by field (no
 * padding bytes of the caller's reach the hash). */
static void *store_image(const struct bpf_insn *insns, uint32_t n, const struct gvm_insn_fact *facts,
                         uint32_t n_facts, size_t *size)
{
    size_t isz = (size_t)n * sizeof(*insns);
    *size = isz + (size_t)n_facts * sizeof(*facts);
    char *buf = calloc(1, *size);
    if (!buf)
        return NULL;
    memcpy(buf, insns, isz);
    struct gvm_insn_fact *f = (struct gvm_insn_fact *)(void *)(buf + isz);
    for (uint32_t i = 0; i < n_facts; i++) {
        f[i].flags = facts[i].flags;
        f[i].dst_bits = facts[i].dst_bits;
        f[i].src_value = facts[i].src_value;
    }
    return buf;
}

int greg_add_prog(struct greg *reg, const struct greg_prog *tmpl,
                  const struct bpf_insn *insns, struct graft_err *err)
{
    struct greg_prog t = *tmpl;
    t.n_facts = 0;
    return greg_add_prog_facts(reg, &t, insns, NULL, err);
}

int greg_add_prog_facts(struct greg *reg, const struct greg_prog *tmpl,
                        const struct bpf_insn *insns, const struct gvm_insn_fact *facts,
                        struct graft_err *err)
{
    if ((tmpl->n_facts && tmpl->n_facts != tmpl->n_insns) || (tmpl->n_facts && !facts))
        return graft_errf(err, -EINVAL, "program %s: %u facts for %u instructions", tmpl->name,
                          tmpl->n_facts, tmpl->n_insns);
    if (tmpl->n_insns == 0 || tmpl->n_insns > GREG_MAX_INSNS)
        return graft_errf(err, -E2BIG, "program %s has %u instructions; 1 to %u fit", tmpl->name,
                          tmpl->n_insns, GREG_MAX_INSNS);
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
            (x->kind != GREG_EXTERN_FUNC && x->kind != GREG_EXTERN_VAR) ||
            (x->mem_args & ~0xfu) || (x->mem_args & (x->mem_args << 1)) ||
            (x->mem_args && x->kind != GREG_EXTERN_FUNC))
            return graft_errf(err, -EINVAL,
                              "program %s: extern %u is malformed (empty or over %d-byte name, bad kind %u "
                              "or memory-argument mask %#x)",
                              tmpl->name, i, GREG_EXTERN_NAME - 1, x->kind, x->mem_args);
    }
    struct greg_prog rec = *tmpl;
    rec.id = 0;
    rec.pad = 0;
    rec.name[sizeof(rec.name) - 1] = rec.section[sizeof(rec.section) - 1] = '\0';
    size_t size;
    void *image = store_image(insns, rec.n_insns, facts, rec.n_facts, &size);
    if (!image)
        return graft_errf(err, -ENOMEM, "out of memory");
    graft_sha256(image, size, rec.insn_sha256);
    int rc = store_code(reg, rec.insn_shm, sizeof(rec.insn_shm), image, size, err);
    free(image);
    if (rc < 0)
        return rc;
    if ((rc = lock(reg, err)) < 0) {
        shm_unlink(rec.insn_shm);
        return rc;
    }
    struct greg_prog *slot = NULL;
    for (int i = 0; i < GREG_MAX_PROGS && !slot; i++)
        if (reg->hdr->progs[i].id == 0) {
            slot = &reg->hdr->progs[i];
            MARK_USED(reg->hdr->used_progs, i);
        }
    if (!slot) {
        unlock(reg, 0);
        shm_unlink(rec.insn_shm);
        return graft_errf(err, -ENOSPC, "registry %s: all %d program slots in use", reg->name,
                          GREG_MAX_PROGS);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rec.load_time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    rec.owner_pid = getpid();
    uint32_t id = new_id(reg->hdr);
    *slot = rec;
    __atomic_store_n(&slot->id, id, __ATOMIC_RELEASE);
    unlock(reg, 1);
    return (int)id;
}

int greg_add_link(struct greg *reg, const struct greg_link *tmpl, struct graft_err *err)
{
    int rc = lock(reg, err);
    if (rc < 0)
        return rc;
    int prog_ok = 0;
    for (int i = 0; i < GREG_MAX_PROGS; i++)
        if (reg->hdr->progs[i].id && reg->hdr->progs[i].id == tmpl->prog_id)
            prog_ok = 1;
    struct greg_link *slot = NULL;
    for (int i = 0; i < GREG_MAX_LINKS && !slot && prog_ok; i++)
        if (reg->hdr->links[i].id == 0) {
            slot = &reg->hdr->links[i];
            MARK_USED(reg->hdr->used_links, i);
        }
    if (!prog_ok || !slot) {
        unlock(reg, 0);
        return prog_ok ? graft_errf(err, -ENOSPC, "registry %s: all link slots in use", reg->name)
                       : graft_errf(err, -ENOENT, "no program with id %u", tmpl->prog_id);
    }
    struct greg_link rec = *tmpl;
    rec.id = 0;
    rec.owner_pid = getpid();
    *slot = rec;
    uint32_t id = new_id(reg->hdr);
    __atomic_store_n(&slot->id, id, __ATOMIC_RELEASE);
    unlock(reg, 1);
    return (int)id;
}

static void drop_link(struct greg_link *l) { __atomic_store_n(&l->id, 0, __ATOMIC_RELEASE); }

/* An object a record names is unlinked only if it is one of this
 * registry's: a damaged record must not make us remove anything else. */
static void unlink_child(const struct greg *reg, const char *name, char kind)
{
    char copy[GREG_NAME_MAX];
    memcpy(copy, name, sizeof(copy));
    if (greg_is_child(reg, copy, sizeof(copy), kind))
        shm_unlink(copy);
}

/* Maps made by gmap_create outside any registry keep its default name,
 * "/graft.<uid>.<16 hex digits>" (the compat layer's were named so before
 * they moved under the registry): records may still name them. */
static int default_map_name(const char *name, size_t field)
{
    char prefix[32];
    int n = snprintf(prefix, sizeof(prefix), "/graft.%u.", (unsigned)geteuid());
    size_t len = strnlen(name, field);
    if (len != (size_t)n + 16 || strncmp(name, prefix, (size_t)n) != 0)
        return 0;
    for (size_t i = (size_t)n; i < len; i++)
        if (!strchr("0123456789abcdef", name[i]))
            return 0;
    return 1;
}

static void drop_prog(struct greg *reg, struct greg_prog *p)
{
    struct greg_header *h = reg->hdr;
    for (int i = 0; i < GREG_MAX_LINKS; i++)
        if (h->links[i].id && h->links[i].prog_id == p->id)
            drop_link(&h->links[i]);
    char shm[GREG_NAME_MAX];
    memcpy(shm, p->insn_shm, sizeof(shm));
    __atomic_store_n(&p->id, 0, __ATOMIC_RELEASE);
    unlink_child(reg, shm, 'p');   /* agents that already copied it keep theirs */
}

static void drop_map(struct greg *reg, struct greg_map *m)
{
    char shm[GREG_NAME_MAX];
    memcpy(shm, m->shm, sizeof(shm));
    __atomic_store_n(&m->id, 0, __ATOMIC_RELEASE);
    if (default_map_name(shm, sizeof(shm)))
        gmap_unlink(shm);
    else
        unlink_child(reg, shm, 'm');
}

int greg_remove_link(struct greg *reg, uint32_t id)
{
    int rc = lock(reg, NULL);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (int i = 0; i < GREG_MAX_LINKS; i++)
        if (id && reg->hdr->links[i].id == id) {
            drop_link(&reg->hdr->links[i]);
            rc = 0;
        }
    unlock(reg, 1);
    return rc;
}

int greg_remove_prog(struct greg *reg, uint32_t id)
{
    int rc = lock(reg, NULL);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (int i = 0; i < GREG_MAX_PROGS; i++)
        if (id && reg->hdr->progs[i].id == id) {
            drop_prog(reg, &reg->hdr->progs[i]);
            rc = 0;
        }
    unlock(reg, 1);
    return rc;
}

int greg_remove_map(struct greg *reg, uint32_t id)
{
    int rc = lock(reg, NULL);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (int i = 0; i < GREG_MAX_MAPS; i++)
        if (id && reg->hdr->maps[i].id == id) {
            drop_map(reg, &reg->hdr->maps[i]);
            rc = 0;
        }
    unlock(reg, 1);
    return rc;
}

int greg_remove_owned_by(struct greg *reg, pid_t owner)
{
    int n = 0;
    struct greg_header *h = reg->hdr;
    int rc = lock(reg, NULL);
    if (rc < 0)
        return rc;
    for (int i = 0; i < GREG_MAX_LINKS; i++)
        if (h->links[i].id && h->links[i].owner_pid == owner) {
            drop_link(&h->links[i]);
            n++;
        }
    for (int i = 0; i < GREG_MAX_PROGS; i++)
        if (h->progs[i].id && h->progs[i].owner_pid == owner) {
            drop_prog(reg, &h->progs[i]);
            n++;
        }
    for (int i = 0; i < GREG_MAX_MAPS; i++)
        if (h->maps[i].id && h->maps[i].owner_pid == owner) {
            drop_map(reg, &h->maps[i]);
            n++;
        }
    unlock(reg, 1);
    return n;
}

/* Unlink this user's objects named "<registry>.<kind>.*": those whose
 * records were lost (a damaged record, a loader killed between creating an
 * object and registering it). Agents' status objects ('a') are kept while
 * their process lives, unless everything goes. Returns how many. */
int greg_sweep(const char *reg_name, int everything)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return -errno;
    size_t rl = strlen(reg_name + 1);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, reg_name + 1, rl) != 0 || nm[rl] != '.' || !nm[rl + 1] || nm[rl + 2] != '.' ||
            !strchr("mpa", nm[rl + 1]))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (nm[rl + 1] == 'a' && !everything && greg_self_alive(nm + rl + 3))
            continue;
        if (unlinkat(dirfd(d), nm, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Everything: every link, program and map, the runtime's own (the trace
 * buffer) included, with their shared-memory objects. */
int greg_remove_all(struct greg *reg)
{
    int n = 0;
    struct greg_header *h = reg->hdr;
    int rc = lock(reg, NULL);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < clamp(h->used_links, GREG_MAX_LINKS); i++)
        if (h->links[i].id) {
            drop_link(&h->links[i]);
            n++;
        }
    for (uint32_t i = 0; i < clamp(h->used_progs, GREG_MAX_PROGS); i++)
        if (h->progs[i].id) {
            drop_prog(reg, &h->progs[i]);
            n++;
        }
    for (uint32_t i = 0; i < clamp(h->used_maps, GREG_MAX_MAPS); i++)
        if (h->maps[i].id) {
            drop_map(reg, &h->maps[i]);
            n++;
        }
    greg_sweep(reg->name, 0);
    unlock(reg, 1);
    return n;
}

int greg_destroy(const char *shm_name, struct graft_err *err)
{
    if (!valid_reg_name(shm_name))
        return graft_errf(err, -EINVAL, "registry name '%.80s' must be /NAME: one component, at most %d bytes",
                          shm_name, GREG_REG_NAME_MAX);
    char path[GREG_NAME_MAX + 16];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", shm_name);
    if (lstat(path, &st) == 0 && st.st_uid != geteuid())
        return refuse_object("registry", shm_name, &st, err);
    int n = greg_sweep(shm_name, 1);
    if (n < 0)
        return graft_errf(err, n, "/dev/shm: %s", strerror(-n));
    if (shm_unlink(shm_name) == 0)
        n++;
    return n;
}

/* ---- detach requests ---- */

int greg_request_detach(struct greg *reg, pid_t pid)
{
    struct greg_proc proc;
    int rc = greg_proc_find(reg, pid, &proc, 1);
    if (rc < 0)
        return rc;
    if (rc == 0 || proc.state != GREG_PROC_RUNNING)
        return -ESRCH;
    uint64_t nonce = proc.nonce;
    struct greg_header *h = reg->hdr;
    if ((rc = lock(reg, NULL)) < 0)
        return rc;
    struct greg_request *slot = NULL;
    for (uint32_t i = 0; i < GREG_MAX_REQUESTS && !slot; i++)
        if (h->requests[i].pid == pid)
            slot = &h->requests[i];
    /* Reuse a free slot, or one of a process that is gone. */
    for (uint32_t i = 0; i < GREG_MAX_REQUESTS && !slot; i++)
        if (h->requests[i].pid <= 0 || (kill(h->requests[i].pid, 0) < 0 && errno == ESRCH)) {
            slot = &h->requests[i];
            MARK_USED(h->used_requests, i);
        }
    rc = slot ? 0 : -ENOSPC;
    if (slot) {
        slot->nonce = nonce;
        __atomic_store_n(&slot->pid, pid, __ATOMIC_RELEASE);
    }
    unlock(reg, 1);
    return rc;
}

int greg_request_attach(struct greg *reg, pid_t pid)
{
    int state = greg_proc_state(reg, pid);
    if (state <= 0)
        return state < 0 ? state : -ESRCH;
    if (state != GREG_PROC_DETACHED && state != GREG_PROC_DETACHING)
        return -EALREADY;
    int rc = lock(reg, NULL);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < GREG_MAX_REQUESTS; i++)
        if (reg->hdr->requests[i].pid == pid)
            __atomic_store_n(&reg->hdr->requests[i].pid, 0, __ATOMIC_RELEASE);
    unlock(reg, 1);
    return 0;
}

int greg_proc_state(struct greg *reg, pid_t pid)
{
    struct greg_proc proc;
    int rc = greg_proc_find(reg, pid, &proc, 1);
    if (rc <= 0)
        return rc;
    /* a damaged status object still means an agent is there */
    return proc.state ? (int)proc.state : GREG_PROC_RUNNING;
}

/* ---- readers ---- */

static int terminated(const char *s, size_t field) { return memchr(s, '\0', field) != NULL; }

static int prog_ok(const struct greg *reg, const struct greg_prog *p)
{
    if (p->id >= INT32_MAX || !terminated(p->name, sizeof(p->name)) ||
        !terminated(p->section, sizeof(p->section)) || p->n_insns == 0 ||
        p->n_insns > GREG_MAX_INSNS || p->n_maps > GREG_PROG_MAPS ||
        p->n_externs > GREG_PROG_EXTERNS || (p->n_facts && p->n_facts != p->n_insns) ||
        !greg_is_child(reg, p->insn_shm, sizeof(p->insn_shm), 'p'))
        return 0;
    for (uint32_t i = 0; i < p->n_externs; i++) {
        const struct greg_extern *x = &p->externs[i];
        if (!x->name[0] || !terminated(x->name, sizeof(x->name)) ||
            (x->kind != GREG_EXTERN_FUNC && x->kind != GREG_EXTERN_VAR))
            return 0;
    }
    return 1;
}

static int map_ok(const struct greg *reg, const struct greg_map *m)
{
    return m->id < INT32_MAX && terminated(m->name, sizeof(m->name)) &&
           terminated(m->def.name, sizeof(m->def.name)) &&
           (greg_is_child(reg, m->shm, sizeof(m->shm), 'm') || default_map_name(m->shm, sizeof(m->shm)));
}

static int link_ok(const struct greg_link *l)
{
    return l->id < INT32_MAX && l->prog_id && l->kind >= GREG_LINK_UPROBE &&
           l->kind <= GREG_LINK_LAST && terminated(l->binary, sizeof(l->binary)) &&
           terminated(l->symbol, sizeof(l->symbol)) && l->pid >= 0;
}

/* Copy the live records below the mark u (at most the room made for
 * them), then keep those that pass ok. */
#define COPY_LIVE(dst, n, src, u)                                     \
    do {                                                              \
        (n) = 0;                                                      \
        for (uint32_t i_ = 0; i_ < (u); i_++)                         \
            if (__atomic_load_n(&(src)[i_].id, __ATOMIC_ACQUIRE))     \
                (dst)[(n)++] = (src)[i_];                             \
    } while (0)

/* How many slots of each table a copy must have room for. */
struct snap_room { uint32_t progs, maps, links, requests; };

static struct snap_room marks(const struct greg_header *h)
{
    return (struct snap_room){
        clamp(__atomic_load_n(&h->used_progs, __ATOMIC_ACQUIRE), GREG_MAX_PROGS),
        clamp(__atomic_load_n(&h->used_maps, __ATOMIC_ACQUIRE), GREG_MAX_MAPS),
        clamp(__atomic_load_n(&h->used_links, __ATOMIC_ACQUIRE), GREG_MAX_LINKS),
        clamp(__atomic_load_n(&h->used_requests, __ATOMIC_ACQUIRE), GREG_MAX_REQUESTS),
    };
}

/* Make room for want (the snapshot's arrays never shrink). */
static int make_room(struct greg_snapshot *s, struct snap_room *room, struct snap_room want)
{
#define GROW(field)                                                                       \
    if (want.field > room->field || !s->field) {                                          \
        void *p_ = realloc(s->field, (want.field + 1) * sizeof(*s->field));               \
        if (!p_)                                                                          \
            return -ENOMEM;                                                               \
        s->field = p_;                                                                    \
        room->field = want.field;                                                         \
    }
    GROW(progs) GROW(maps) GROW(links) GROW(requests)
#undef GROW
    return 0;
}

#define KEEP_OK(arr, n, ok, bad)                                      \
    do {                                                              \
        uint32_t k_ = 0;                                              \
        for (uint32_t i_ = 0; i_ < (n); i_++) {                       \
            if (ok)                                                   \
                (arr)[k_++] = (arr)[i_];                              \
            else                                                      \
                (bad)++;                                              \
        }                                                             \
        (n) = k_;                                                     \
    } while (0)

/* One attempt at a consistent copy: 0, or -EAGAIN if a writer changed the
 * object meanwhile. */
static int copy_once(const struct greg *reg, struct greg_snapshot *s, const struct snap_room *room,
                     long waited_ms, int *writer_busy)
{
    struct greg_header *h = reg->hdr;
    uint32_t seq = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
    /* Odd: a writer is changing records, unless the lock word shows none
     * (a writer died, or the counter is damaged): then the copy stands if
     * the counter does not move. */
    if ((seq & 1) && writer_active(reg, __atomic_load_n(&h->lock, __ATOMIC_ACQUIRE), waited_ms, 0)) {
        *writer_busy = 1;
        return -EAGAIN;
    }
    s->generation = __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
    struct snap_room m = marks(h);
    if (m.progs > room->progs || m.maps > room->maps || m.links > room->links ||
        m.requests > room->requests)
        return -ENOBUFS;                 /* a writer added records: more room */
    COPY_LIVE(s->progs, s->n_progs, h->progs, m.progs);
    COPY_LIVE(s->maps, s->n_maps, h->maps, m.maps);
    COPY_LIVE(s->links, s->n_links, h->links, m.links);
    s->n_requests = 0;
    for (uint32_t i = 0; i < m.requests; i++)
        if (__atomic_load_n(&h->requests[i].pid, __ATOMIC_ACQUIRE) > 0)
            s->requests[s->n_requests++] = h->requests[i];
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&h->seq, __ATOMIC_RELAXED) == seq ? 0 : -EAGAIN;
}

int greg_snapshot(struct greg *reg, struct greg_snapshot *s)
{
    struct greg_header *h = reg->hdr;
    memset(s, 0, sizeof(*s));
    struct snap_room room = {0};
    long start = 0, waited = 0, asked = 0;
    for (int attempt = 0;; attempt++) {
        int busy = 0;
        if (make_room(s, &room, marks(h)) < 0) {
            greg_snapshot_free(s);
            return -ENOMEM;
        }
        /* /proc is read once after 20 ms of waiting, then every 200 ms */
        int ask = waited >= 20 && waited - asked >= 200;
        if (ask)
            asked = waited;
        if (copy_once(reg, s, &room, ask ? waited : 0, &busy) == 0)
            break;
        if (attempt == 0)
            start = now_ms();
        else if ((waited = now_ms() - start) > READ_WAIT_MS) {
            greg_snapshot_free(s);
            return -EAGAIN;
        }
        if (busy)
            futex(&h->lock, FUTEX_WAIT, __atomic_load_n(&h->lock, __ATOMIC_RELAXED), 1);
        else
            sched_yield();
    }
    KEEP_OK(s->progs, s->n_progs, prog_ok(reg, &s->progs[i_]), s->n_damaged);
    KEEP_OK(s->maps, s->n_maps, map_ok(reg, &s->maps[i_]), s->n_damaged);
    KEEP_OK(s->links, s->n_links, link_ok(&s->links[i_]), s->n_damaged);
    return 0;
}

void greg_snapshot_free(struct greg_snapshot *s)
{
    free(s->progs);
    free(s->maps);
    free(s->links);
    free(s->requests);
    memset(s, 0, sizeof(*s));
}

int greg_snapshot_detach_requested(const struct greg_snapshot *s, pid_t pid, uint64_t nonce)
{
    for (uint32_t i = 0; i < s->n_requests; i++)
        if (s->requests[i].pid == pid && s->requests[i].nonce == nonce)
            return 1;
    return 0;
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

int greg_prog_code(const struct greg *reg, const struct greg_prog *p, struct bpf_insn **out,
                   struct gvm_insn_fact **facts_out, struct graft_err *err)
{
    if (!prog_ok(reg, p))
        return graft_errf(err, -EINVAL, "program id %u: its registry record is damaged", p->id);
    int fd = shm_open(p->insn_shm, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return graft_errf(err, -errno, "program %s (id %u): %s: %s", p->name, p->id, p->insn_shm,
                          strerror(errno));
    struct stat st;
    size_t isz = (size_t)p->n_insns * sizeof(struct bpf_insn);
    size_t size = isz + (size_t)p->n_facts * sizeof(struct gvm_insn_fact);
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = graft_errf(err, -errno, "program %s (id %u): %s: fstat: %s", p->name, p->id, p->insn_shm,
                        strerror(errno));
    else if (!greg_trusted_owner(reg, &st))
        rc = refuse_object("program store", p->insn_shm, &st, err);
    else if (st.st_size != (off_t)size)
        rc = graft_errf(err, -EINVAL, "program %s (id %u): store %s holds %lld bytes, not %zu",
                        p->name, p->id, p->insn_shm, (long long)st.st_size, size);
    char *buf = rc ? NULL : malloc(size);
    if (!rc && !buf)
        rc = graft_errf(err, -ENOMEM, "out of memory");
    if (!rc && pread(fd, buf, size, 0) != (ssize_t)size)
        rc = graft_errf(err, -EIO, "program %s (id %u): store %s is truncated", p->name, p->id,
                        p->insn_shm);
    close(fd);
    if (!rc) {
        /* The registry (which targets cannot write) says what the loader
         * verified; the store could have been changed since. */
        uint8_t sum[GRAFT_SHA256_LEN];
        graft_sha256(buf, size, sum);
        if (memcmp(sum, p->insn_sha256, sizeof(sum)) != 0)
            rc = graft_errf(err, -EBADMSG,
                            "program %s (id %u): store %s does not hold what was verified (SHA-256 differs): not compiled",
                            p->name, p->id, p->insn_shm);
    }
    struct bpf_insn *insns = NULL;
    struct gvm_insn_fact *facts = NULL;
    if (!rc && (!(insns = malloc(isz)) || (p->n_facts && !(facts = malloc(size - isz)))))
        rc = graft_errf(err, -ENOMEM, "out of memory");
    if (rc) {
        free(buf);
        free(insns);
        free(facts);
        return rc;
    }
    memcpy(insns, buf, isz);
    if (facts)
        memcpy(facts, buf + isz, size - isz);
    free(buf);
    *out = insns;
    if (facts_out)
        *facts_out = facts;
    else
        free(facts);
    return 0;
}

int greg_prog_insns(const struct greg *reg, const struct greg_prog *p, struct bpf_insn **out,
                    struct graft_err *err)
{
    return greg_prog_code(reg, p, out, NULL, err);
}

const char *greg_link_kind_name(uint32_t kind)
{
    static const char *const names[] = {
        [GREG_LINK_UPROBE] = "uprobe",         [GREG_LINK_URETPROBE] = "uretprobe",
        [GREG_LINK_OVERRIDE] = "override",     [GREG_LINK_REPLACE] = "replace",
        [GREG_LINK_SRC_ENTRY] = "src_entry",
        [GREG_LINK_SYS_ENTER] = "sys_enter",   [GREG_LINK_SYS_EXIT] = "sys_exit",
        [GREG_LINK_RAW_SYS_ENTER] = "raw_sys_enter", [GREG_LINK_RAW_SYS_EXIT] = "raw_sys_exit",
        [GREG_LINK_PERF_SAMPLE] = "perf_sample",  [GREG_LINK_PROC_EXIT] = "sched_process_exit",
        [GREG_LINK_SIGNAL_GENERATE] = "signal_generate",
    };
    return kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "unknown";
}
