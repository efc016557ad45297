/*
 * map_hash.c - HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, HASH_OF_MAPS
 * (and the storage under LPM_TRIE).
 *
 * Layout: n_buckets (power of 2 >= max_entries) struct gbucket at off_a, a
 * preallocated pool of max_entries + 1 elements at off_b. Elements link by
 * 1-based index; free elements form a list from hdr->free_head. The one
 * spare element lets an update of an existing key build the new element
 * before unlinking the old one, even when the map is full.
 *
 * Writers hold hdr->lock and change a chain only between bucket_begin and
 * bucket_end (the bucket's seq is odd meanwhile). Readers take no lock: they
 * walk the chain and retry when the seq changed or was odd; an element that
 * moved to another chain or the free list is always first unlinked here,
 * which bumps this bucket's seq. Walks are bounded by the pool size.
 *
 * Kill safety: every step that changes the structure is one aligned store,
 * in this order: an element is fully written before it is published by the
 * store of its index into a chain; a replaced element is unlinked after its
 * replacement is published; freed elements go on the free list last. A
 * writer that died therefore leaves at worst (a) an odd bucket seq, (b) an
 * element in no chain and not free, or (c) the old copy of a key still after
 * its new copy in one chain. hash_repair fixes all three and recomputes the
 * count and element states from the chains.
 *
 * Speed: the hot paths read the layout from the process-local handle (no
 * loads through the header), hash 4- and 8-byte keys with one or two
 * multiplies (gmap_hash_u32/word) and compare them as one word, and are
 * inlined into hash_lookup/update/delete. An update of a present key whose
 * value fits one 8-byte store writes in place, like the kernel's per-CPU and
 * BPF_F_LOCK updates; that store is atomic, so the kill-safety argument
 * above still holds. In HASH and PERCPU_HASH maps it takes no lock
 * (update_nolock, see there): the element is pinned (gelem.ref, which only
 * LRU maps use as a reference bit, counts the pinning writers) and every
 * writer that frees an element first waits for its pins (wait_unpinned).
 */
#include "maps/maps_internal.h"
#include "util/fpsafe.h"

#include <sched.h>
#include <stdlib.h>
#include <time.h>

/* Built with GMAP_TEST_WIDEN_RACES only for tests/maps/test_maps_concurrent
 * (a second copy of the maps library): the lock-free update then yields the
 * CPU inside its race windows, so that a missing check shows up. */
#ifdef GMAP_TEST_WIDEN_RACES
#define RACE_WINDOW() sched_yield()
#else
#define RACE_WINDOW() ((void)0)
#endif

#define LOAD(p)        __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQ(p)    __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static bool is_lru(const struct gmap *m)
{
    return m->type == GMAP_LRU_HASH || m->type == GMAP_LRU_PERCPU_HASH;
}

static bool is_percpu(const struct gmap *m)
{
    return m->type == GMAP_PERCPU_HASH || m->type == GMAP_LRU_PERCPU_HASH;
}

/* Maps whose present keys with values of at most 8 bytes are updated in
 * place without the lock (update_nolock), which pins the element. */
static bool pins_elems(const struct gmap *m)
{
    return m->type == GMAP_HASH || m->type == GMAP_PERCPU_HASH;
}

int hash_def_check(const struct gmap_def *d, struct graft_err *err)
{
    bool lru = d->type == GMAP_LRU_HASH || d->type == GMAP_LRU_PERCPU_HASH;
    bool percpu = d->type == GMAP_PERCPU_HASH || d->type == GMAP_LRU_PERCPU_HASH;
    uint32_t ok = GMAP_F_NO_PREALLOC | 0x2 /* NO_COMMON_LRU */ | 0x4 /* NUMA_NODE */ | 0x8 | 0x10 |
                  0x40 /* ZERO_SEED */ | GMAP_F_RDONLY_PROG | 0x100 | 0x1000 /* INNER_MAP */;
    if (d->map_flags & ~ok)
        return graft_errf(err, -EINVAL, "map '%.64s': map_flags %#x not supported for hash maps",
                          d->name, d->map_flags);
    if (!lru && (d->map_flags & 0x2))
        return graft_errf(err, -EINVAL, "map '%.64s': BPF_F_NO_COMMON_LRU needs an LRU map", d->name);
    if (lru && (d->map_flags & GMAP_F_NO_PREALLOC))
        return graft_errf(err, -ENOTSUPP, "map '%.64s': LRU maps must be preallocated (drop BPF_F_NO_PREALLOC)",
                          d->name);
    if (d->max_entries == 0 || d->key_size == 0 || d->value_size == 0)
        return graft_errf(err, -EINVAL,
                          "map '%.64s': a hash map needs key_size (%u), value_size (%u) and max_entries (%u) > 0",
                          d->name, d->key_size, d->value_size, d->max_entries);
    if (d->key_size > 65536)   /* the kernel no longer limits keys to the 512-byte stack */
        return graft_errf(err, -E2BIG, "map '%.64s': key_size %u too large (max 65536)", d->name,
                          d->key_size);
    if (d->value_size > (1u << 22) || (percpu && ROUND_UP(d->value_size, 8) > 32768))
        return graft_errf(err, -E2BIG, "map '%.64s': value_size %u too large%s", d->name, d->value_size,
                          percpu ? " for a per-CPU map (max 32768)" : " (max 4 MiB)");
    if (d->type == GMAP_HASH_OF_MAPS && d->value_size != 4)
        return graft_errf(err, -EINVAL, "map '%.64s': hash of maps holds u32 map ids: value_size must be 4",
                          d->name);
    if (d->max_entries > (1u << 28))
        return graft_errf(err, -E2BIG, "map '%.64s': max_entries %u too large (max 2^28)", d->name,
                          d->max_entries);
    return 0;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

uint64_t hash_layout(struct gmap_hdr *h, uint32_t extra_value_bytes)
{
    const struct gmap_def *d = &h->def;
    bool percpu = d->type == GMAP_PERCPU_HASH || d->type == GMAP_LRU_PERCPU_HASH;
    uint64_t val = (percpu ? (uint64_t)h->ncpus : 1) * h->value_stride + extra_value_bytes;
    h->key_stride = ROUND_UP(d->key_size, 8);
    h->elem_size = (uint32_t)(sizeof(struct gelem) + h->key_stride + val);
    h->n_buckets = pow2_at_least(d->max_entries);
    h->pool_size = d->max_entries + 1;
    h->off_a = ROUND_UP((uint64_t)h->hdr_size, 64);
    h->off_b = ROUND_UP(h->off_a + (uint64_t)h->n_buckets * sizeof(struct gbucket), 64);
    return h->off_b + (uint64_t)h->pool_size * h->elem_size;
}

static inline struct gelem *elem(const struct gmap *m, uint32_t idx)
{
    return (struct gelem *)(m->elems + (uint64_t)(idx - 1) * m->elem_size);
}

struct gelem *hash_elem(const struct gmap *m, uint32_t idx) { return elem(m, idx); }

uint8_t *hash_elem_key(struct gelem *e) { return (uint8_t *)(e + 1); }

static inline uint8_t *elem_value(const struct gmap *m, struct gelem *e)
{
    return (uint8_t *)(e + 1) + m->key_stride;
}

uint8_t *hash_elem_value(const struct gmap *m, struct gelem *e) { return elem_value(m, e); }

static inline struct gbucket *bucket_of(const struct gmap *m, uint32_t hash)
{
    return m->buckets + (hash & m->bucket_mask);
}

static inline __attribute__((always_inline)) uint32_t key_hash(const struct gmap *m, const void *key)
{
    switch (m->key_size) {
    case 4: { uint32_t k; memcpy(&k, key, 4); return gmap_hash_u32(k, m->seed); }
    case 8: { uint64_t k; memcpy(&k, key, 8); return gmap_hash_word(k, m->seed); }
    }
    return (uint32_t)gmap_hash_bytes(key, m->key_size, m->seed);
}

uint32_t hash_key(const struct gmap *m, const void *key) { return key_hash(m, key); }

void hash_init(struct gmap *m)
{
    uint32_t pool = m->h->pool_size;
    for (uint32_t i = 1; i <= pool; i++) {
        struct gelem *e = elem(m, i);
        e->next = i < pool ? i + 1 : 0;
        e->state = ELEM_FREE;
    }
    m->h->free_head = 1;
    m->h->count = 0;
}

static inline bool key_eq(const struct gmap *m, struct gelem *e, const void *key)
{
    const uint8_t *k = hash_elem_key(e);
    switch (m->key_size) {
    case 4: { uint32_t a; memcpy(&a, key, 4); return *(const uint32_t *)k == a; }
    case 8: { uint64_t a; memcpy(&a, key, 8); return *(const uint64_t *)k == a; }
    }
    return memcmp(k, key, m->key_size) == 0;
}

/* One chain walk, with the key comparison MATCH(e) fixed at compile time. */
#define WALK(MATCH)                                                           \
    do {                                                                      \
        uint32_t pool = m->pool_size, idx = LOAD(&b->head);                   \
        for (uint32_t steps = 0; idx && idx <= pool && steps <= pool; steps++) { \
            struct gelem *e = elem(m, idx);                                   \
            if (MATCH)                                                        \
                return idx;                                                   \
            idx = LOAD(&e->next);                                             \
        }                                                                     \
        return 0;                                                             \
    } while (0)

/* Walks one chain; returns the element holding key or 0. Bounded, and safe
 * on a chain that changes underneath (indexes are range-checked). 4- and
 * 8-byte keys compare as one word (their hash adds nothing). */
static inline __attribute__((always_inline)) uint32_t
walk_chain(const struct gmap *m, struct gbucket *b, const void *key, uint32_t hash)
{
    switch (m->key_size) {
    case 4: {
        uint32_t k;
        memcpy(&k, key, 4);
        WALK(LOAD((uint32_t *)(e + 1)) == k);
    }
    case 8: {
        uint64_t k;
        memcpy(&k, key, 8);
        WALK(LOAD((uint64_t *)(e + 1)) == k);
    }
    }
    WALK(LOAD(&e->hash) == hash && key_eq(m, e, key));
}

uint32_t hash_find_locked(struct gmap *m, const void *key, uint32_t hash)
{
    return walk_chain(m, bucket_of(m, hash), key, hash);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#define SEQ_TRIES 64

/* The reader's way out after SEQ_TRIES failed reads (a long writer, or one
 * that died with the seq odd): the lock, which also repairs. */
static __attribute__((noinline)) uint32_t find_locked_slow(struct gmap *m, struct gbucket *b,
                                                           const void *key, uint32_t hash)
{
    for (int tries = 0; tries < SEQ_TRIES; tries++) {
        uint32_t s = LOAD_ACQ(&b->seq);
        if (s & 1) {
            cpu_relax();
            continue;
        }
        uint32_t idx = walk_chain(m, b, key, hash);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD(&b->seq) == s)
            return idx;
    }
    if (gmap_lock(m))
        return 0;
    uint32_t idx = walk_chain(m, b, key, hash);
    gmap_unlock(m);
    return idx;
}

/* Lock-free find: one seqcount-checked walk, the slow path otherwise. */
static inline __attribute__((always_inline)) uint32_t find_nolock(struct gmap *m, const void *key,
                                                                   uint32_t hash)
{
    struct gbucket *b = bucket_of(m, hash);
    uint32_t s = LOAD_ACQ(&b->seq);
    if (__builtin_expect(!(s & 1), 1)) {
        uint32_t idx = walk_chain(m, b, key, hash);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__builtin_expect(LOAD(&b->seq) == s, 1))
            return idx;
    }
    return find_locked_slow(m, b, key, hash);
}

uint32_t hash_find_nolock(struct gmap *m, const void *key, uint32_t hash)
{
    return find_nolock(m, key, hash);
}

static __attribute__((noinline)) void *lookup_any(struct gmap *m, const void *key)
{
    uint32_t idx = find_nolock(m, key, key_hash(m, key));
    if (!idx)
        return NULL;
    struct gelem *e = elem(m, idx);
    uint8_t *v = elem_value(m, e);
    switch (m->type) {
    case GMAP_HASH: case GMAP_HASH_OF_MAPS:
        return v;
    case GMAP_LRU_HASH:
        break;
    case GMAP_PERCPU_HASH:
        return v + (uint64_t)gmap_this_cpu(m) * m->stride;
    case GMAP_LRU_PERCPU_HASH:
        v += (uint64_t)gmap_this_cpu(m) * m->stride;
        break;
    }
    if (!LOAD(&e->ref))
        STORE(&e->ref, 1);   /* written only when clear: keeps the line shared */
    return v;
}

/* The frame-free fast paths' walk (LOOKUP_WORD, UPDATE_WORD): walk_chain
 * for a key of type T, comparing it as one word, in its most common case:
 * the chain is empty or its first element holds the key (chains are short:
 * at least as many buckets as entries). Inside a do { } while (0): breaks
 * out - to the general path, which walks the whole chain - when a writer
 * is changing the bucket or the key is not the first element; leaves the
 * bucket b, its seq s as read before the walk, the element index hit
 * (0: absent) and the element e. No loop, so the path needs no callee-saved register and no
 * frame. */
#define WALK_WORD(T, HASH)                                                    \
        T k;                                                                  \
        memcpy(&k, key, sizeof(T));                                           \
        struct gbucket *b = bucket_of(m, HASH(k, m->seed));                   \
        uint32_t s = LOAD_ACQ(&b->seq);                                       \
        if (__builtin_expect(s & 1, 0))                                       \
            break;                                                            \
        uint32_t hit = LOAD(&b->head);                                        \
        struct gelem *e = NULL;                                               \
        if (hit) {                                                            \
            if (__builtin_expect(hit > m->pool_size, 0))                      \
                break;                                                        \
            e = elem(m, hit);                                                 \
            if (LOAD((T *)(e + 1)) != k)                                      \
                break;                                                        \
        }

/* The common case first - a HASH map with a 4- or 8-byte key (a thread or
 * syscall id, a pid_tgid) and a chain no writer is changing - in code that
 * needs no frame; everything else (other types and key sizes, a writer
 * meanwhile) goes to lookup_any. Same walk as walk_chain, for key type T. */
#define LOOKUP_WORD(T, HASH)                                                  \
    do {                                                                      \
        WALK_WORD(T, HASH);                                                   \
        __atomic_thread_fence(__ATOMIC_ACQUIRE);                              \
        if (__builtin_expect(LOAD(&b->seq) == s, 1))                          \
            return hit ? elem_value(m, e) : NULL;                             \
    } while (0)

void *hash_lookup(struct gmap *m, const void *key)
{
    if (__builtin_expect(m->type == GMAP_HASH, 1)) {
        if (m->key_size == 4)
            LOOKUP_WORD(uint32_t, gmap_hash_u32);
        else if (m->key_size == 8)
            LOOKUP_WORD(uint64_t, gmap_hash_word);
    }
    return (void *)(uintptr_t)GFP_CALL2(lookup_any, m, key);   /* may call libc: xmm saved */
}

static void copy_out(const struct gmap *m, struct gelem *e, void *value)
{
    const uint8_t *v = elem_value(m, e);
    if (m->value_size <= 8 && pins_elems(m)) {
        /* written in place by single 8-byte stores without the bucket's seq
         * (update_nolock): read each copy with one 8-byte load, never torn */
        uint32_t n = is_percpu(m) ? m->ncpus : 1;
        for (uint32_t c = 0; c < n; c++) {
            uint64_t w = LOAD((const uint64_t *)(v + (uint64_t)c * m->stride));
            memcpy((uint8_t *)value + (uint64_t)c * m->stride, &w, is_percpu(m) ? 8 : m->value_size);
        }
        return;
    }
    if (!is_percpu(m)) {
        memcpy(value, v, m->value_size);
        return;
    }
    /* whole 8-byte strides, padding included, as the kernel copies them */
    memcpy(value, v, (uint64_t)m->ncpus * m->stride);
}

/* A consistent copy: the seq of the bucket must not change around it. */
int hash_lookup_copy(struct gmap *m, const void *key, void *value)
{
    uint32_t hash = key_hash(m, key);
    struct gbucket *b = bucket_of(m, hash);
    for (int tries = 0; tries < SEQ_TRIES; tries++) {
        uint32_t s = LOAD_ACQ(&b->seq);
        if (s & 1) {
            cpu_relax();
            continue;
        }
        uint32_t idx = walk_chain(m, b, key, hash);
        if (idx)
            copy_out(m, elem(m, idx), value);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD(&b->seq) == s)
            return idx ? 0 : -ENOENT;
    }
    int r = gmap_lock(m);
    if (r)
        return r;
    uint32_t idx = walk_chain(m, b, key, hash);
    if (idx)
        copy_out(m, elem(m, idx), value);
    gmap_unlock(m);
    return idx ? 0 : -ENOENT;
}

static void bucket_begin(struct gbucket *b)
{
    STORE(&b->seq, b->seq + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void bucket_end(struct gbucket *b)
{
    STORE_REL(&b->seq, b->seq + 1);
}

static uint32_t pop_free(struct gmap *m)
{
    uint32_t idx = m->h->free_head;
    if (idx)
        STORE(&m->h->free_head, elem(m, idx)->next);
    return idx;
}

#define PIN_WAIT_NS 1000000000ull   /* a pin is held for a few instructions */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Before an unlinked element may be reused, every lock-free writer that
 * pinned it while it was linked must be done with it. The caller unlinked
 * it (its bucket's seq moved); with the fence, either a pinning writer sees
 * the new seq and backs off without writing, or we see its pin here and
 * wait. A pin left by a writer that was killed inside its few instructions
 * is dropped after PIN_WAIT_NS (a live writer is not descheduled that long
 * in practice; one that was stopped meanwhile may land its one store in the
 * reused element, as a program's store through a lookup pointer can - a
 * stopped holder of the map's lock would block every writer instead). */
static void wait_unpinned(struct gelem *e)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__builtin_expect(LOAD_ACQ(&e->ref) == 0, 1))
        return;
    uint64_t since = 0;
    for (unsigned spins = 0; LOAD_ACQ(&e->ref) != 0; spins++) {
        if (spins < 256) {
            cpu_relax();
            continue;
        }
        sched_yield();
        uint64_t now = mono_ns();
        if (!since)
            since = now;
        else if (now - since > PIN_WAIT_NS) {
            STORE(&e->ref, 0);
            break;
        }
    }
}

void hash_free_elem(struct gmap *m, uint32_t idx)
{
    struct gelem *e = elem(m, idx);
    if (pins_elems(m))
        wait_unpinned(e);
    STORE(&e->state, ELEM_FREE);
    STORE(&e->next, m->h->free_head);
    STORE_REL(&m->h->free_head, idx);
}

/* Unlinks idx from its chain (found by its hash); caller holds the lock. */
static bool unlink_elem(struct gmap *m, uint32_t idx)
{
    struct gelem *e = elem(m, idx);
    struct gbucket *b = bucket_of(m, e->hash);
    uint32_t *link = &b->head;
    for (uint32_t steps = 0; *link && steps <= m->h->pool_size; steps++) {
        if (*link == idx) {
            bucket_begin(b);
            STORE_REL(link, e->next);
            bucket_end(b);
            return true;
        }
        link = &elem(m, *link)->next;
    }
    return false;
}

/* The LRU list (head = newest) is used only under the lock; readers just
 * set ref. It is rebuilt by hash_repair, so its updates need no ordering. */
static void lru_unlink(struct gmap *m, uint32_t idx)
{
    struct gelem *e = elem(m, idx);
    if (e->lru_prev)
        elem(m, e->lru_prev)->lru_next = e->lru_next;
    else
        m->h->lru_head = e->lru_next;
    if (e->lru_next)
        elem(m, e->lru_next)->lru_prev = e->lru_prev;
    else
        m->h->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = 0;
}

static void lru_push_head(struct gmap *m, uint32_t idx)
{
    struct gelem *e = elem(m, idx);
    e->lru_prev = 0;
    e->lru_next = m->h->lru_head;
    if (m->h->lru_head)
        elem(m, m->h->lru_head)->lru_prev = idx;
    else
        m->h->lru_tail = idx;
    m->h->lru_head = idx;
}

/* Second chance over insertion order, like the kernel's inactive list:
 * from the oldest end, a referenced element has its bit cleared and moves
 * to the new end; the first unreferenced one is evicted. */
static int lru_evict_one(struct gmap *m)
{
    for (uint32_t steps = 0; steps < 2 * m->h->pool_size + 2; steps++) {
        uint32_t idx = m->h->lru_tail;
        if (!idx)
            break;
        struct gelem *e = elem(m, idx);
        lru_unlink(m, idx);
        if (LOAD(&e->ref)) {
            STORE(&e->ref, 0);
            lru_push_head(m, idx);
            continue;
        }
        if (!unlink_elem(m, idx))
            continue;
        hash_free_elem(m, idx);
        m->h->count--;
        return 0;
    }
    return -E2BIG;
}

static void lru_rebuild(struct gmap *m)
{
    m->h->lru_head = m->h->lru_tail = 0;
    for (uint32_t i = 1; i <= m->h->pool_size; i++)
        if (elem(m, i)->state == ELEM_USED)
            lru_push_head(m, i);
}

/* First half of an insert or replace: checks flags against the existing
 * key and takes a free element with the key written. The caller writes the
 * value and calls hash_finish_replace. */
int hash_insert_locked(struct gmap *m, const void *key, uint32_t hash, uint64_t flags,
                       uint32_t *idx_out, uint32_t *old_out, bool *is_new)
{
    uint32_t old = hash_find_locked(m, key, hash);
    if (old && (flags & 3) == GMAP_NOEXIST)
        return -EEXIST;
    if (!old && (flags & 3) == GMAP_EXIST)
        return -ENOENT;
    if (!old && m->h->count >= m->max_entries) {
        if (!is_lru(m))
            return -E2BIG;
        int r = lru_evict_one(m);
        if (r)
            return r;
    }
    uint32_t idx = pop_free(m);
    if (!idx)
        return -E2BIG;   /* cannot happen while the invariants hold */
    struct gelem *e = elem(m, idx);
    e->hash = hash;
    if (is_lru(m))
        e->ref = 0;   /* elsewhere it counts pins (may be a late writer's, transiently) */
    memcpy(hash_elem_key(e), key, m->key_size);
    *idx_out = idx;
    *old_out = old;
    *is_new = old == 0;
    return 0;
}

/* Publishes new_idx at the head of its chain, then unlinks and frees the
 * old copy of the key (if any), which a concurrent reader now finds after
 * the new one. */
void hash_finish_replace(struct gmap *m, uint32_t hash, uint32_t new_idx, uint32_t old_idx)
{
    struct gbucket *b = bucket_of(m, hash);
    struct gelem *e = elem(m, new_idx);
    bucket_begin(b);
    e->state = ELEM_USED;
    STORE(&e->next, b->head);
    STORE_REL(&b->head, new_idx);
    if (old_idx) {
        uint32_t *link = &e->next;
        for (uint32_t steps = 0; *link && steps <= m->h->pool_size; steps++) {
            if (*link == old_idx) {
                STORE_REL(link, elem(m, old_idx)->next);
                break;
            }
            link = &elem(m, *link)->next;
        }
    }
    bucket_end(b);
    if (is_lru(m)) {
        if (old_idx)
            lru_unlink(m, old_idx);
        lru_push_head(m, new_idx);
    }
    if (old_idx)
        hash_free_elem(m, old_idx);
    else
        m->h->count++;
}

static void write_value(struct gmap *m, struct gelem *e, struct gelem *old, const void *value,
                        bool all_cpus)
{
    uint8_t *v = elem_value(m, e);
    if (!is_percpu(m)) {
        memcpy(v, value, m->value_size);
        return;
    }
    if (all_cpus) {
        memcpy(v, value, (uint64_t)m->ncpus * m->stride);
        return;
    }
    /* A program updates only its CPU's copy; the others keep their values
     * (or start at zero for a new key), as in the kernel. */
    if (old)
        memcpy(v, elem_value(m, old), (uint64_t)m->ncpus * m->stride);
    else
        memset(v, 0, (uint64_t)m->ncpus * m->stride);
    memcpy(v + (uint64_t)gmap_this_cpu(m) * m->stride, value, m->value_size);
}

/* An update of a key that is present overwrites the value in place when the
 * new value goes in with one atomic store (values of at most 8 bytes; for a
 * per-CPU map, this CPU's copy): lock-free readers see the old or the new
 * value, never a mix, and a writer killed here leaves one of the two. The
 * bucket's seq is bumped around it so lookup_copy stays a snapshot. Larger
 * values are replaced by a new element (hash_finish_replace). Caller holds
 * the lock; false when the key is absent. */
static bool update_in_place(struct gmap *m, const void *key, uint32_t hash, const void *value)
{
    struct gbucket *b = bucket_of(m, hash);
    uint32_t idx = walk_chain(m, b, key, hash);
    if (!idx)
        return false;
    uint64_t *slot = (uint64_t *)elem_value(m, elem(m, idx));
    if (m->type == GMAP_PERCPU_HASH)
        slot += (uint64_t)gmap_this_cpu(m) * (m->stride / 8);
    uint64_t w = LOAD(slot);
    memcpy(&w, value, m->value_size);
    bucket_begin(b);
    STORE(slot, w);
    bucket_end(b);
    return true;
}

/* The pinning part of update_nolock: e was found in bucket b by a walk
 * that began when b's seq was s; slot is where value goes. */
static inline __attribute__((always_inline)) bool pinned_store(struct gbucket *b, uint32_t s,
                                                               struct gelem *e, uint64_t *slot,
                                                               const void *value, uint32_t size)
{
    RACE_WINDOW();
    __atomic_fetch_add(&e->ref, 1, __ATOMIC_SEQ_CST);
    bool linked = __atomic_load_n(&b->seq, __ATOMIC_SEQ_CST) == s;
    if (linked) {
        RACE_WINDOW();
        uint64_t w = LOAD(slot);
        memcpy(&w, value, size);
        STORE(slot, w);
    }
    /* 0 before: a freer dropped our pin after PIN_WAIT_NS (this writer was
     * stopped in between); put the count back rather than leave it at
     * UINT32_MAX for the next free to wait out */
    if (__builtin_expect(__atomic_fetch_sub(&e->ref, 1, __ATOMIC_RELEASE) == 0, 0))
        __atomic_fetch_add(&e->ref, 1, __ATOMIC_RELAXED);
    return linked;
}

/* update_in_place without the lock, for HASH and PERCPU_HASH: a
 * seqcount-checked walk finds the element, a pin (an atomic add, a full
 * barrier) keeps it from being freed and reused, and the bucket's seq read
 * again after the pin proves the element was still linked when pinned: then
 * no writer can free it before the pin is dropped (wait_unpinned), so the
 * store lands in this key's value. False (nothing written) when the key is
 * absent or the chain changed meanwhile: the caller takes the lock. */
static inline bool update_nolock(struct gmap *m, const void *key, uint32_t hash, const void *value)
{
    struct gbucket *b = bucket_of(m, hash);
    uint32_t s = LOAD_ACQ(&b->seq);
    if (s & 1)
        return false;
    uint32_t idx = walk_chain(m, b, key, hash);
    if (!idx)
        return false;
    struct gelem *e = elem(m, idx);
    uint64_t *slot = (uint64_t *)elem_value(m, e);
    if (m->type == GMAP_PERCPU_HASH)
        slot += (uint64_t)gmap_this_cpu(m) * (m->stride / 8);
    return pinned_store(b, s, e, slot, value, m->value_size);
}

/* update_nolock for the common case (HASH, a 4- or 8-byte key, an 8-byte
 * value), in code that needs no frame: 0 when stored, else falls through
 * to the general path. */
#define UPDATE_WORD(T, HASH)                                                  \
    do {                                                                      \
        WALK_WORD(T, HASH);                                                   \
        if (!hit)                                                             \
            break;                                                            \
        if (pinned_store(b, s, e, (uint64_t *)elem_value(m, e), value, 8))    \
            return 0;                                                         \
    } while (0)

static __attribute__((noinline)) int64_t update_any(struct gmap *m, const void *key, const void *value,
                                                uint64_t flags, bool all_cpus);

int64_t hash_update(struct gmap *m, const void *key, const void *value, uint64_t flags, bool all_cpus)
{
    if (__builtin_expect(m->type == GMAP_HASH && m->value_size == 8 && !all_cpus &&
                         (flags & 3) != GMAP_NOEXIST, 1)) {
        if (m->key_size == 4)
            UPDATE_WORD(uint32_t, gmap_hash_u32);
        else if (m->key_size == 8)
            UPDATE_WORD(uint64_t, gmap_hash_word);
    }
    return (int64_t)GFP_CALL5(update_any, m, key, value, flags, all_cpus);   /* xmm saved */
}

static int64_t update_any(struct gmap *m, const void *key, const void *value, uint64_t flags,
                      bool all_cpus)
{
    if (m->type == GMAP_HASH_OF_MAPS) {
        uint32_t id;
        memcpy(&id, value, 4);
        int r = gmap_check_inner(m, id);
        if (r)
            return r;
    }
    uint32_t hash = key_hash(m, key), idx, old;
    bool is_new;
    bool small = !all_cpus && (flags & 3) != GMAP_NOEXIST && m->value_size <= 8 && pins_elems(m);
    if (small && update_nolock(m, key, hash, value))
        return 0;
    int r = gmap_lock(m);
    if (r)
        return r;
    if (small && update_in_place(m, key, hash, value)) {
        gmap_unlock(m);
        return 0;
    }
    r = hash_insert_locked(m, key, hash, flags, &idx, &old, &is_new);
    if (!r) {
        write_value(m, elem(m, idx), old ? elem(m, old) : NULL, value, all_cpus);
        hash_finish_replace(m, hash, idx, old);
    }
    gmap_unlock(m);
    return r;
}

int hash_remove_locked(struct gmap *m, const void *key, uint32_t hash, uint32_t *idx_out)
{
    uint32_t idx = hash_find_locked(m, key, hash);
    if (!idx)
        return -ENOENT;
    unlink_elem(m, idx);
    *idx_out = idx;
    return 0;
}

static inline bool elem_matches(const struct gmap *m, struct gelem *e, const void *key, uint32_t hash)
{
    if (m->key_size == 4 || m->key_size == 8)
        return key_eq(m, e, key);
    return e->hash == hash && key_eq(m, e, key);
}

/* One walk finds the element and the link to it; caller holds the lock. */
int hash_delete(struct gmap *m, const void *key, void *value_out)
{
    uint32_t hash = key_hash(m, key);
    int r = gmap_lock(m);
    if (r)
        return r;
    struct gbucket *b = bucket_of(m, hash);
    uint32_t *link = &b->head, idx = 0;
    struct gelem *e = NULL;
    for (uint32_t steps = 0; steps <= m->pool_size; steps++) {
        idx = *link;
        if (!idx || idx > m->pool_size)
            break;
        e = elem(m, idx);
        if (elem_matches(m, e, key, hash))
            break;
        link = &e->next;
        idx = 0;
    }
    if (!idx || idx > m->pool_size) {
        gmap_unlock(m);
        return -ENOENT;
    }
    if (value_out)
        copy_out(m, e, value_out);
    bucket_begin(b);
    STORE_REL(link, e->next);
    bucket_end(b);
    if (is_lru(m))
        lru_unlink(m, idx);
    hash_free_elem(m, idx);
    m->h->count--;
    gmap_unlock(m);
    return 0;
}

/* Bucket order, then chain order, like the kernel's htab_map_get_next_key:
 * a missing (or NULL) key restarts from the first element. */
int hash_next_key(struct gmap *m, const void *key, void *next)
{
    int r = gmap_lock(m);
    if (r)
        return r;
    uint32_t start = 0;
    if (key) {
        uint32_t hash = key_hash(m, key);
        uint32_t idx = hash_find_locked(m, key, hash);
        if (idx) {
            uint32_t n = elem(m, idx)->next;
            if (n) {
                memcpy(next, hash_elem_key(elem(m, n)), m->key_size);
                gmap_unlock(m);
                return 0;
            }
            start = (hash & (m->h->n_buckets - 1)) + 1;
        }
    }
    struct gbucket *b = (struct gbucket *)(m->base + m->h->off_a);
    for (uint32_t i = start; i < m->h->n_buckets; i++) {
        if (b[i].head) {
            memcpy(next, hash_elem_key(elem(m, b[i].head)), m->key_size);
            gmap_unlock(m);
            return 0;
        }
    }
    gmap_unlock(m);
    return -ENOENT;
}

/* True when an element before idx in the chain starting at head has the
 * same key: idx is then the stale half of an interrupted replace. */
static bool key_seen_before(struct gmap *m, uint32_t head, uint32_t idx)
{
    struct gelem *e = elem(m, idx);
    for (uint32_t i = head; i && i != idx; i = elem(m, i)->next)
        if (key_eq(m, elem(m, i), hash_elem_key(e)))
            return true;
    return false;
}

/* Called with the lock held after its owner died (see the file comment).
 * Element states double as the "reachable" marks. */
void hash_repair(struct gmap *m)
{
    struct gmap_hdr *h = m->h;
    struct gbucket *b = (struct gbucket *)(m->base + h->off_a);
    for (uint32_t i = 1; i <= h->pool_size; i++)
        elem(m, i)->state = ELEM_FREE;
    for (uint32_t bi = 0; bi < h->n_buckets; bi++) {
        if (b[bi].seq & 1)
            STORE_REL(&b[bi].seq, b[bi].seq + 1);
        uint32_t *link = &b[bi].head;
        while (*link) {
            uint32_t idx = *link;
            if (idx > h->pool_size || elem(m, idx)->state == ELEM_USED ||
                (elem(m, idx)->hash & (h->n_buckets - 1)) != bi) {
                STORE_REL(link, 0);   /* cut a damaged tail; its elements are freed below */
                break;
            }
            if (key_seen_before(m, b[bi].head, idx)) {
                STORE_REL(link, elem(m, idx)->next);
                continue;
            }
            elem(m, idx)->state = ELEM_USED;
            link = &elem(m, idx)->next;
        }
    }
    uint32_t count = 0;
    h->free_head = 0;
    for (uint32_t i = h->pool_size; i >= 1; i--) {
        struct gelem *e = elem(m, i);
        if (e->state == ELEM_USED) {
            count++;
        } else {
            e->next = h->free_head;
            h->free_head = i;
        }
    }
    h->count = count;
    if (is_lru(m))
        lru_rebuild(m);
}

int hash_check(struct gmap *m, struct graft_err *err)
{
    int r = gmap_lock(m);
    if (r)
        return graft_errf(err, r, "map %s: cannot lock", m->name);
    struct gmap_hdr *h = m->h;
    uint8_t *seen = calloc(h->pool_size + 1, 1);
    if (!seen) {
        gmap_unlock(m);
        return graft_errf(err, -ENOMEM, "map %s: out of memory", m->name);
    }
    struct gbucket *b = (struct gbucket *)(m->base + h->off_a);
    uint32_t used = 0, nfree = 0;
    r = 0;
    for (uint32_t bi = 0; bi < h->n_buckets && !r; bi++) {
        if (b[bi].seq & 1)
            r = graft_errf(err, -EUCLEAN, "map %s: bucket %u seq %u is odd with no writer", m->name, bi,
                           b[bi].seq);
        for (uint32_t idx = b[bi].head; idx && !r;) {
            if (idx > h->pool_size || seen[idx]) {
                r = graft_errf(err, -EUCLEAN, "map %s: bucket %u: element %u out of range or linked twice",
                               m->name, bi, idx);
                break;
            }
            struct gelem *e = elem(m, idx);
            if ((e->hash & (h->n_buckets - 1)) != bi || e->hash != key_hash(m, hash_elem_key(e)))
                r = graft_errf(err, -EUCLEAN, "map %s: element %u in bucket %u has a wrong hash", m->name,
                               idx, bi);
            else if (e->state != ELEM_USED)
                r = graft_errf(err, -EUCLEAN, "map %s: element %u is linked but marked free", m->name, idx);
            else if (key_seen_before(m, b[bi].head, idx))
                r = graft_errf(err, -EUCLEAN, "map %s: element %u duplicates a key in bucket %u", m->name,
                               idx, bi);
            seen[idx] = 1;
            used++;
            idx = e->next;
        }
    }
    for (uint32_t idx = h->free_head; idx && !r;) {
        if (idx > h->pool_size || seen[idx]) {
            r = graft_errf(err, -EUCLEAN, "map %s: free element %u out of range, in use or listed twice",
                           m->name, idx);
            break;
        }
        seen[idx] = 2;
        nfree++;
        idx = elem(m, idx)->next;
    }
    if (!r && used != h->count)
        r = graft_errf(err, -EUCLEAN, "map %s: count %u but %u elements linked", m->name, h->count, used);
    if (!r && used + nfree != h->pool_size)
        r = graft_errf(err, -EUCLEAN, "map %s: %u used + %u free != pool of %u (leaked elements)", m->name,
                       used, nfree, h->pool_size);
    if (!r && is_lru(m)) {
        uint32_t n = 0, prev = 0;
        for (uint32_t idx = h->lru_head; idx && !r && n <= h->pool_size; idx = elem(m, idx)->lru_next) {
            if (idx > h->pool_size || seen[idx] != 1 || elem(m, idx)->lru_prev != prev) {
                r = graft_errf(err, -EUCLEAN, "map %s: LRU list damaged at element %u", m->name, idx);
                break;
            }
            prev = idx;
            n++;
        }
        if (!r && (n != used || h->lru_tail != prev))
            r = graft_errf(err, -EUCLEAN, "map %s: LRU list holds %u of %u elements", m->name, n, used);
    }
    if (!r && used > m->max_entries)
        r = graft_errf(err, -EUCLEAN, "map %s: %u elements exceed max_entries %u", m->name, used,
                       m->max_entries);
    free(seen);
    gmap_unlock(m);
    return r;
}
