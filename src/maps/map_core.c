/*
 * map_core.c - creating, opening and closing shared-memory maps, the robust
 * map lock, and dispatch of the public operations to the map types (element
 * lookup, update and delete: map_access.c).
 *
 * Invariants: a map's shm object is never resized; its header (struct
 * gmap_hdr) is written completely before the magic, so gmap_open never sees
 * a half-built map; every public operation checks its arguments and returns
 * the kernel bpf() syscall's errno for the same mistake.
 */
#define _GNU_SOURCE
#include "maps/maps_internal.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct gmap *(*resolver)(uint32_t id);

void gmap_set_resolver(struct gmap *(*by_id)(uint32_t id))
{
    __atomic_store_n(&resolver, by_id, __ATOMIC_RELEASE);
}

struct gmap *gmap_resolve(uint32_t id)
{
    struct gmap *(*fn)(uint32_t) = __atomic_load_n(&resolver, __ATOMIC_ACQUIRE);
    return fn && id ? fn(id) : NULL;
}

/* Does inner have exactly the shape the outer map's template declares?
 * Both definitions are the handles' own copies, taken when the maps were
 * created or opened, not the shared headers another process could change. */
static bool inner_matches(const struct gmap *outer, const struct gmap *inner)
{
    const struct gmap_def *t = &outer->def, *d = &inner->def;
    return t->inner_map_type && d->type == t->inner_map_type && d->key_size == t->inner_key_size &&
           d->value_size == t->inner_value_size && d->max_entries == t->inner_max_entries &&
           d->map_flags == t->inner_map_flags;
}

/* The inner map a slot's id names, or NULL when it does not resolve or is
 * not shaped like the template: what lookups return. */
struct gmap *gmap_resolve_inner(struct gmap *m, uint32_t id)
{
    struct gmap *in = gmap_resolve(id);
    return in && inner_matches(m, in) ? in : NULL;
}

/* May id be stored in a slot of m? Only when it resolves here to a map that
 * matches the template: with no resolver nothing can be checked, so
 * nothing is stored. */
int gmap_check_inner(struct gmap *m, uint32_t id)
{
    if (id == 0)
        return -EINVAL;
    struct gmap *in = gmap_resolve(id);
    if (!in)
        return -EBADF;
    return inner_matches(m, in) ? 0 : -EINVAL;
}

int gmap_possible_cpus(void)
{
    static int cached;
    int n = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (n > 0)
        return n;
    /* The file lists ranges like "0-3,8-11"; per-CPU copies are indexed by
     * CPU number, so use the highest possible CPU + 1. */
    FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
    char buf[256] = "";
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    int max = -1;
    for (char *p = buf; *p;) {
        if (*p < '0' || *p > '9') {   /* '-' and ',' separate numbers */
            p++;
            continue;
        }
        char *end;
        long v = strtol(p, &end, 10);
        if (v > max)
            max = (int)v;
        p = end;
    }
    n = max >= 0 ? max + 1 : (int)sysconf(_SC_NPROCESSORS_CONF);
    if (n <= 0)
        n = 1;
    __atomic_store_n(&cached, n, __ATOMIC_RELAXED);
    return n;
}

uint32_t gmap_this_cpu_slow(const struct gmap *m)
{
    int c = sched_getcpu();
    if (c < 0)
        return 0;
    return (uint32_t)c < m->ncpus ? (uint32_t)c : (uint32_t)c % m->ncpus;
}

/* A word-at-a-time multiplicative hash with a murmur3 finaliser: fast for
 * the common 4/8/16-byte keys and good enough for power-of-2 buckets. */
uint64_t gmap_hash_bytes(const void *key, uint32_t len, uint64_t seed)
{
    const uint8_t *p = key;
    uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

void gmap_repair(struct gmap *m)
{
    switch (m->type) {
    case GMAP_HASH: case GMAP_PERCPU_HASH: case GMAP_LRU_HASH:
    case GMAP_LRU_PERCPU_HASH: case GMAP_HASH_OF_MAPS:
        hash_repair(m);
        break;
    case GMAP_LPM_TRIE:
        lpm_repair(m);
        break;
    default:
        /* queue/stack and ring positions change with single stores after
         * the data is written: nothing half-done can be visible. */
        break;
    }
    m->h->repairs++;
}

int gmap_lock(struct gmap *m)
{
    int r = pthread_mutex_lock(&m->h->lock);
    if (r == EOWNERDEAD) {
        gmap_repair(m);
        pthread_mutex_consistent(&m->h->lock);
        return 0;
    }
    return r ? -r : 0;
}

void gmap_unlock(struct gmap *m)
{
    pthread_mutex_unlock(&m->h->lock);
}

uint32_t gmap_repairs(const struct gmap *m)
{
    return __atomic_load_n(&m->h->repairs, __ATOMIC_RELAXED);
}

static int init_robust_mutex(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return -r;
}

const char *gmap_type_name(uint32_t t)
{
    switch (t) {
    case GMAP_HASH: return "hash";
    case GMAP_ARRAY: return "array";
    case GMAP_PROG_ARRAY: return "prog_array";
    case GMAP_PERF_EVENT_ARRAY: return "perf_event_array";
    case GMAP_PERCPU_HASH: return "percpu_hash";
    case GMAP_PERCPU_ARRAY: return "percpu_array";
    case GMAP_LRU_HASH: return "lru_hash";
    case GMAP_LRU_PERCPU_HASH: return "lru_percpu_hash";
    case GMAP_LPM_TRIE: return "lpm_trie";
    case GMAP_ARRAY_OF_MAPS: return "array_of_maps";
    case GMAP_HASH_OF_MAPS: return "hash_of_maps";
    case GMAP_QUEUE: return "queue";
    case GMAP_STACK: return "stack";
    case GMAP_RINGBUF: return "ringbuf";
    case GMAP_BLOOM_FILTER: return "bloom_filter";
    }
    return "unknown";
}

/* Checks the definition and fills the header's layout; returns the object
 * size, or a negative errno with err filled. */
static int64_t plan_layout(const struct gmap_def *d, struct gmap_hdr *h, struct graft_err *err)
{
    int r;
    memset(h, 0, sizeof(*h));
    h->def = *d;
    h->ncpus = (uint32_t)gmap_possible_cpus();
    h->value_stride = ROUND_UP(d->value_size, 8);
    h->hdr_size = ROUND_UP(sizeof(*h), 64);
    switch (d->type) {
    case GMAP_ARRAY: case GMAP_PERCPU_ARRAY: case GMAP_PROG_ARRAY: case GMAP_ARRAY_OF_MAPS:
        if ((r = arr_def_check(d, err)))
            return r;
        return (int64_t)arr_layout(h);
    case GMAP_HASH: case GMAP_PERCPU_HASH: case GMAP_LRU_HASH:
    case GMAP_LRU_PERCPU_HASH: case GMAP_HASH_OF_MAPS:
        if ((r = hash_def_check(d, err)))
            return r;
        return (int64_t)hash_layout(h, 0);
    case GMAP_LPM_TRIE:
        if ((r = lpm_def_check(d, err)))
            return r;
        return (int64_t)lpm_layout(h);
    case GMAP_QUEUE: case GMAP_STACK:
        if ((r = queue_def_check(d, err)))
            return r;
        return (int64_t)queue_layout(h);
    case GMAP_BLOOM_FILTER:
        if ((r = bloom_def_check(d, err)))
            return r;
        return (int64_t)bloom_layout(h);
    case GMAP_RINGBUF:
        if ((r = ringbuf_def_check(d, err)))
            return r;
        return (int64_t)ringbuf_layout(h);
    case GMAP_PERF_EVENT_ARRAY:
        if ((r = perf_def_check(d, err)))
            return r;
        return (int64_t)perf_layout(h);
    }
    return graft_errf(err, -EINVAL, "map '%.64s': unknown map type %u; use one of enum gmap_type",
                      d->name, d->type);
}

static void fill_handle(struct gmap *m, uint8_t *base, size_t len, const char *name)
{
    m->base = base;
    m->h = (struct gmap_hdr *)base;
    m->map_len = len;
    m->type = m->h->def.type;
    m->key_size = m->h->def.key_size;
    m->value_size = m->h->def.value_size;
    m->max_entries = m->h->def.max_entries;
    m->ncpus = m->h->ncpus;
    m->stride = m->h->value_stride;
    m->buckets = (struct gbucket *)(base + m->h->off_a);
    m->elems = base + m->h->off_b;
    m->elem_size = m->h->elem_size;
    m->bucket_mask = m->h->n_buckets ? m->h->n_buckets - 1 : 0;
    m->pool_size = m->h->pool_size;
    m->key_stride = m->h->key_stride;
    m->seed = m->h->seed;
    m->off_a = m->h->off_a;
    m->total_size = m->h->total_size;
    m->def = m->h->def;
    snprintf(m->name, sizeof(m->name), "%s", name);
}

/* Maps the object; a ring buffer's data area is mapped a second time right
 * after the first so records that wrap are contiguous, as in the kernel. */
static uint8_t *map_object(int fd, const struct gmap_hdr *h, size_t *len_out)
{
    size_t total = (size_t)h->total_size;
    if (h->def.type != GMAP_RINGBUF) {
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        *len_out = total;
        return p == MAP_FAILED ? NULL : p;
    }
    size_t data = h->def.max_entries;
    uint8_t *res = mmap(NULL, total + data, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED)
        return NULL;
    if (mmap(res, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        mmap(res + total, data, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
             (off_t)(total - data)) == MAP_FAILED) {
        munmap(res, total + data);
        return NULL;
    }
    *len_out = total + data;
    return res;
}

static int init_type(struct gmap *m)
{
    switch (m->type) {
    case GMAP_HASH: case GMAP_PERCPU_HASH: case GMAP_LRU_HASH:
    case GMAP_LRU_PERCPU_HASH: case GMAP_HASH_OF_MAPS: case GMAP_LPM_TRIE:
        hash_init(m);
        return 0;
    case GMAP_PERF_EVENT_ARRAY:
        return perf_init(m);
    }
    return 0;
}

int gmap_create(const struct gmap_def *def, int group, struct gmap **out, struct graft_err *err)
{
    return gmap_create_named(def, group, NULL, out, err);
}

int gmap_create_named(const struct gmap_def *def, int group, const char *prefix, struct gmap **out,
                      struct graft_err *err)
{
    struct gmap_hdr plan;
    *out = NULL;
    if (!def)
        return graft_errf(err, -EINVAL, "gmap_create: no map definition given");
    int64_t size = plan_layout(def, &plan, err);
    if (size < 0)
        return (int)size;
    plan.total_size = (uint64_t)size;
    plan.version = GMAP_VERSION;
    if (getrandom(&plan.seed, sizeof(plan.seed), 0) != sizeof(plan.seed))
        plan.seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&plan;

    char name[64];
    char dflt[32];
    if (!prefix) {
        snprintf(dflt, sizeof(dflt), "/graft.%u.", (unsigned)getuid());
        prefix = dflt;
    }
    if (prefix[0] != '/' || strchr(prefix + 1, '/') || strlen(prefix) + 16 >= sizeof(name))
        return graft_errf(err, -EINVAL, "map '%.64s': bad shared-memory name prefix '%.64s'",
                          def->name, prefix);
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 16; tries++) {
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
            rnd = plan.seed + (uint64_t)tries * 7919;
        snprintf(name, sizeof(name), "%s%016llx", prefix, (unsigned long long)rnd);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, group >= 0 ? 0660 : 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return graft_errf(err, -errno, "map '%.64s': shm_open failed: %s; is /dev/shm mounted and writable?",
                          def->name, strerror(errno));
    int r = 0;
    /* umask may have cleared the group bits; set the mode we promised. */
    if (fchmod(fd, group >= 0 ? 0660 : 0600) < 0 ||
        (group >= 0 && fchown(fd, (uid_t)-1, (gid_t)group) < 0)) {
        r = graft_errf(err, -errno, "map '%.64s': setting owner group %d of %s failed: %s",
                       def->name, group, name, strerror(errno));
        goto fail;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        r = graft_errf(err, -errno, "map '%.64s': sizing %s to %lld bytes failed: %s (is /dev/shm full?)",
                       def->name, name, (long long)size, strerror(errno));
        goto fail;
    }
    size_t len;
    uint8_t *base = map_object(fd, &plan, &len);
    if (!base) {
        r = graft_errf(err, -errno, "map '%.64s': mmap of %lld bytes failed: %s", def->name,
                       (long long)size, strerror(errno));
        goto fail;
    }
    struct gmap *m = calloc(1, sizeof(*m));
    if (!m) {
        munmap(base, len);
        r = graft_errf(err, -ENOMEM, "map '%.64s': out of memory", def->name);
        goto fail;
    }
    memcpy(base, &plan, sizeof(plan));
    fill_handle(m, base, len, name);
    ((struct gmap_hdr *)base)->magic = 0;
    if ((r = init_robust_mutex(&m->h->lock)) || (r = init_type(m))) {
        graft_errf(err, r, "map '%.64s': initialising locks failed", def->name);
        gmap_close(m);
        goto fail;
    }
    __atomic_store_n(&m->h->magic, GMAP_MAGIC, __ATOMIC_RELEASE);
    close(fd);
    *out = m;
    return 0;
fail:
    close(fd);
    shm_unlink(name);
    return r;
}

/* Is the object behind fd one this process may trust as a map: created by
 * this user or root, or shared with one of our groups on purpose (--group),
 * and writable by nobody else? Anyone can create any name in /dev/shm. */
static int trusted_object(const struct stat *st)
{
    if (st->st_mode & 0002)
        return 0;
    if (st->st_uid == geteuid() || st->st_uid == 0)
        return 1;
    if (!(st->st_mode & 0020))
        return 0;
    if (st->st_gid == getegid())
        return 1;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == st->st_gid)
            return 1;
    return 0;
}

int gmap_open(const char *shm_name, struct gmap **out, struct graft_err *err)
{
    *out = NULL;
    if (!shm_name)
        return graft_errf(err, -EINVAL, "gmap_open: no shm name given");
    int fd = shm_open(shm_name, O_RDWR, 0);
    if (fd < 0)
        return graft_errf(err, -errno, "map %s: shm_open failed: %s", shm_name, strerror(errno));
    struct stat st;
    struct gmap_hdr h;
    int r = 0;
    if (fstat(fd, &st) == 0 && !trusted_object(&st)) {
        r = graft_errf(err, -EPERM,
                       "map %s (/dev/shm%s) belongs to uid %u, mode %o: not created by this user or root; refusing it",
                       shm_name, shm_name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(h) ||
        pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        r = graft_errf(err, -EINVAL, "map %s: too small or unreadable to be a graft map", shm_name);
        goto out;
    }
    if (h.magic != GMAP_MAGIC || h.version != GMAP_VERSION || h.total_size != (uint64_t)st.st_size) {
        r = graft_errf(err, -EINVAL,
                       "map %s: not a graft map of version %d (magic %#llx, version %u, size %lld/%llu)",
                       shm_name, GMAP_VERSION, (unsigned long long)h.magic, h.version,
                       (long long)st.st_size, (unsigned long long)h.total_size);
        goto out;
    }
    size_t len;
    uint8_t *base = map_object(fd, &h, &len);
    if (!base) {
        r = graft_errf(err, -errno, "map %s: mmap failed: %s", shm_name, strerror(errno));
        goto out;
    }
    struct gmap *m = calloc(1, sizeof(*m));
    if (!m) {
        munmap(base, len);
        r = graft_errf(err, -ENOMEM, "map %s: out of memory", shm_name);
        goto out;
    }
    fill_handle(m, base, len, shm_name);
    *out = m;
out:
    close(fd);
    return r;
}

void gmap_close(struct gmap *m)
{
    if (!m)
        return;
    void *base = m->base;
    size_t len = m->map_len;
    int moved = m->moved;
    munmap(base, len);
    if (!moved)
        free(m);
}

size_t gmap_handle_size(void)
{
    return sizeof(struct gmap);
}

struct gmap *gmap_handle_move(struct gmap *m, void *dst)
{
    struct gmap *to = dst;
    *to = *m;
    to->moved = 1;
    if (!m->moved)
        free(m);
    return to;
}

int gmap_unlink(const char *shm_name)
{
    return shm_unlink(shm_name) < 0 ? -errno : 0;
}

const struct gmap_def *gmap_get_def(const struct gmap *m) { return &m->def; }
const char *gmap_shm_name(const struct gmap *m) { return m->name; }
uint64_t gmap_memory_bytes(const struct gmap *m) { return m->total_size; }

int gmap_protect_key(struct gmap *m, int pkey, struct graft_err *err)
{
    if (!m || pkey < -1)
        return graft_errf(err, -EINVAL, "gmap_protect_key: %s", m ? "bad key" : "NULL map");
    if (syscall(SYS_pkey_mprotect, m->base, m->map_len, PROT_READ | PROT_WRITE, pkey) == 0)
        return 0;
    return graft_errf(err, -errno, "map %s: pkey_mprotect(%p, %zu bytes, key %d) failed: %s",
                      m->name, (void *)m->base, m->map_len, pkey, strerror(errno));
}

int gmap_lookup_copy(struct gmap *m, const void *key, void *value)
{
    if (gmap_is_array(m->type))
        return arr_lookup_copy(m, key, value);
    if (gmap_is_hash(m->type))
        return hash_lookup_copy(m, key, value);
    switch (m->type) {
    case GMAP_LPM_TRIE:
        return lpm_lookup_copy(m, key, value);
    case GMAP_QUEUE: case GMAP_STACK:
        return queue_pop(m, value, false);
    case GMAP_BLOOM_FILTER:
        return bloom_peek(m, value);
    }
    return -ENOTSUPP;
}

int gmap_lookup_and_delete(struct gmap *m, const void *key, void *value)
{
    if (gmap_is_hash(m->type)) {
        if (m->type == GMAP_HASH_OF_MAPS)
            return -ENOTSUPP;
        return hash_delete(m, key, value);
    }
    switch (m->type) {
    case GMAP_QUEUE: case GMAP_STACK:
        return queue_pop(m, value, true);
    }
    return -ENOTSUPP;
}

int gmap_get_next_key(struct gmap *m, const void *key, void *next)
{
    if (gmap_is_array(m->type) || m->type == GMAP_PERF_EVENT_ARRAY)
        return arr_next_key(m, key, next);
    if (gmap_is_hash(m->type))
        return hash_next_key(m, key, next);
    if (m->type == GMAP_LPM_TRIE)
        return lpm_next_key(m, key, next);
    if (m->type == GMAP_BLOOM_FILTER || m->type == GMAP_RINGBUF)
        return -EOPNOTSUPP;
    return -EINVAL;
}

int gmap_push(struct gmap *m, const void *value, uint64_t flags)
{
    if (m->type == GMAP_QUEUE || m->type == GMAP_STACK)
        return queue_push(m, value, flags);
    if (m->type == GMAP_BLOOM_FILTER)
        return bloom_push(m, value, flags);
    return -ENOTSUPP;
}

int gmap_pop(struct gmap *m, void *value)
{
    if (m->type == GMAP_QUEUE || m->type == GMAP_STACK)
        return queue_pop(m, value, true);
    if (m->type == GMAP_BLOOM_FILTER)
        return -EOPNOTSUPP;
    return -ENOTSUPP;
}

int gmap_peek(struct gmap *m, void *value)
{
    if (m->type == GMAP_QUEUE || m->type == GMAP_STACK)
        return queue_pop(m, value, false);
    if (m->type == GMAP_BLOOM_FILTER)
        return bloom_peek(m, value);
    return -ENOTSUPP;
}

int gmap_check_consistency(struct gmap *m, struct graft_err *err)
{
    if (gmap_is_hash(m->type))
        return hash_check(m, err);
    switch (m->type) {
    case GMAP_LPM_TRIE:
        return lpm_check(m, err);
    case GMAP_QUEUE: case GMAP_STACK:
        return queue_check(m, err);
    case GMAP_RINGBUF:
        return ringbuf_check(m, err);
    }
    return 0;
}
