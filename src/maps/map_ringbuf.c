/*
 * map_ringbuf.c - RINGBUF and PERF_EVENT_ARRAY, in the kernel's memory
 * layouts so unmodified consumer code (libbpf's ring_buffer/perf_buffer
 * protocol) can read them.
 *
 * RINGBUF object: page 0 = struct gmap_hdr (the kernel's non-mmapable
 * bpf_ringbuf page) and the producer table, page 1 = consumer_pos, page 2 =
 * producer_pos, then max_entries data bytes, which every process maps twice
 * back to back. Records: 8-byte header {u32 len | BUSY(1<<31) |
 * DISCARD(1<<30), u32 pg_off = page distance from the object start}, then
 * the data, padded to 8. The producer position moves only under the map
 * lock, after the header is written with BUSY; submit/discard clear BUSY
 * with one atomic store of the whole header.
 *
 * Dead producers. A consumer stops at a BUSY record until it is submitted,
 * so a process killed between reserve and submit would stop every consumer
 * for good, and every later event of every other producer would be lost.
 * So a reservation names its producer: while BUSY, the header's pg_off word
 * carries, above the page offset (at most 19 bits), the 1-based index of
 * the producer's entry in the producer table (pid, pid namespace, start
 * time), and submit puts the plain pg_off back in the same store that
 * clears BUSY, so a consumer never sees the owner bits (libbpf does not
 * read pg_off anyway). Whoever finds a BUSY record at the consumer position
 * - the next producer that finds the ring full, graft's consumer, the
 * compat layer's poller for libbpf consumers (gmap_ringbuf_recover) - checks
 * the producers of the BUSY records, under the map lock: one proven dead
 * (no such pid, the pid now names a process that started later, or a zombie
 * with no thread left) has its records discarded, which any consumer,
 * libbpf's included, skips. Nothing is discarded on a guess: a producer in
 * another pid namespace, or one whose /proc entry cannot be read, counts as
 * alive. A process holds its table entry until it is found dead; with every
 * entry held by live processes, reserve fails (as on a full ring).
 *
 * PERF_EVENT_ARRAY object: per index, a struct perf_event_mmap_page page and
 * its data pages; records are PERF_RECORD_SAMPLE {perf_event_header, u32
 * size, raw data} padded to 8 bytes, or PERF_RECORD_LOST. data_head moves
 * (release) only after the record is written; one robust lock per index.
 */
#include "maps/maps_internal.h"

#include <linux/perf_event.h>
#include <time.h>

#define RB_BUSY    (1u << 31)
#define RB_DISCARD (1u << 30)
#define RB_HDR_SZ  8
#define RB_PGOFF_MASK  ((1u << 24) - 1)   /* pg_off < 2^19 for rings up to 1 GiB */
#define RB_OWNER_SHIFT 24
#define RB_RECHECK_NS  (10 * 1000 * 1000ull)
_Static_assert(RB_OWNERS < (1u << (32 - RB_OWNER_SHIFT)), "owner index must fit above pg_off");
_Static_assert(RB_OWNERS_OFF + sizeof(struct rb_owners) <= GMAP_PAGE,
               "ring buffer header and producer table must fit their page");

int ringbuf_def_check(const struct gmap_def *d, struct graft_err *err)
{
    if (d->map_flags & ~0x4u)
        return graft_errf(err, -EINVAL, "map '%.64s': ring buffers take no map_flags (got %#x)", d->name,
                          d->map_flags);
    if (d->key_size || d->value_size || !d->max_entries || (d->max_entries & (d->max_entries - 1)) ||
        d->max_entries % GMAP_PAGE)
        return graft_errf(err, -EINVAL,
                          "map '%.64s': a ring buffer needs key_size 0, value_size 0 and max_entries a power "
                          "of 2 multiple of %u (got %u/%u/%u)", d->name, GMAP_PAGE, d->key_size,
                          d->value_size, d->max_entries);
    if (d->max_entries > (1u << 30))
        return graft_errf(err, -E2BIG, "map '%.64s': ring buffer of %u bytes too large", d->name,
                          d->max_entries);
    return 0;
}

uint64_t ringbuf_layout(struct gmap_hdr *h)
{
    h->hdr_size = GMAP_PAGE;   /* the header, then the producer table */
    h->off_a = GMAP_PAGE;   /* consumer page */
    return 3ull * GMAP_PAGE + h->def.max_entries;
}

static uint64_t *cons_pos(const struct gmap *m) { return (uint64_t *)(m->base + GMAP_PAGE); }
static uint64_t *prod_pos(const struct gmap *m) { return (uint64_t *)(m->base + 2 * GMAP_PAGE); }
static uint8_t *rb_data(const struct gmap *m) { return m->base + 3 * GMAP_PAGE; }

void *gmap_ringbuf_pages(struct gmap *m)
{
    return m->type == GMAP_RINGBUF ? m->base + GMAP_PAGE : NULL;
}

/* A record's header as one word: len and flags low, pg_off (and, while
 * BUSY, the owner) high. Written whole, so no state in between is seen. */
static uint64_t *rec_hdr(const struct gmap *m, uint64_t pos)
{
    return (uint64_t *)(rb_data(m) + (pos & (m->max_entries - 1)));
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Discard the BUSY records, between the consumer and the producer
 * position, of producers proven dead, and free their table entries (every
 * entry of a dead producer, when free_dead: to make room). Map lock held:
 * no record can be reserved meanwhile, and the space from the consumer
 * position on is not reused while we walk it (the consumer may move on, it
 * only reads). Returns how many records were discarded. */
static int recover_locked(struct gmap *m, bool free_dead)
{
    struct rb_owners *t = rb_owners(m);
    uint64_t cons = __atomic_load_n(cons_pos(m), __ATOMIC_ACQUIRE), prod = *prod_pos(m);
    uint8_t verdict[RB_OWNERS + 1] = {0};   /* 0 unknown, 1 alive, 2 dead */
    int discarded = 0;
    bool front_alive = false;
    for (uint64_t p = cons; p < prod;) {
        uint64_t *hdr = rec_hdr(m, p);
        uint64_t w = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        uint32_t len = (uint32_t)w, hi = (uint32_t)(w >> 32), o = hi >> RB_OWNER_SHIFT;
        if ((len & RB_BUSY) && o >= 1 && o <= RB_OWNERS) {
            if (!verdict[o])
                verdict[o] = rb_owner_dead(m, o) ? 2 : 1;
            if (verdict[o] == 2) {
                uint64_t done = (uint64_t)(hi & RB_PGOFF_MASK) << 32 |
                                ((len & ~(RB_BUSY | RB_DISCARD)) | RB_DISCARD);
                __atomic_store_n(hdr, done, __ATOMIC_RELEASE);
                discarded++;
            } else if (p == cons) {
                front_alive = true;
            }
        }
        p += ROUND_UP((uint64_t)(len & ~(RB_BUSY | RB_DISCARD)) + RB_HDR_SZ, 8);
    }
    for (uint32_t o = 1; o <= RB_OWNERS; o++)
        if (verdict[o] == 2 || (free_dead && !verdict[o] && t->e[o - 1].pid && rb_owner_dead(m, o)))
            rb_owner_free(m, o);
    if (front_alive) {
        t->checked_pos = cons + 1;
        t->checked_ns = now_ns();
    }
    return discarded;
}

/* Is there a BUSY record at the consumer position that was not found held
 * by a live producer a moment ago? Reads only. */
static bool stuck_front(struct gmap *m)
{
    uint64_t cons = __atomic_load_n(cons_pos(m), __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(prod_pos(m), __ATOMIC_ACQUIRE);
    if (cons >= prod || !(__atomic_load_n((uint32_t *)rec_hdr(m, cons), __ATOMIC_ACQUIRE) & RB_BUSY))
        return false;
    const struct rb_owners *t = rb_owners(m);
    return !(t->checked_pos == cons + 1 && now_ns() - t->checked_ns < RB_RECHECK_NS);
}

int gmap_ringbuf_recover(struct gmap *m)
{
    if (m->type != GMAP_RINGBUF)
        return -EINVAL;
    if (!stuck_front(m))
        return 0;
    int r = gmap_lock(m);
    if (r)
        return r;
    r = recover_locked(m, false);
    gmap_unlock(m);
    return r;
}

void *gmap_ringbuf_reserve(struct gmap *m, uint64_t size, uint64_t flags)
{
    if (m->type != GMAP_RINGBUF || flags || size > UINT32_MAX / 4)
        return NULL;
    uint64_t len = ROUND_UP(size + RB_HDR_SZ, 8), mask = m->max_entries - 1;
    if (gmap_lock(m))
        return NULL;
    uint32_t owner = rb_owner_claim(m);
    if (!owner) {                       /* every entry held: free the dead ones' */
        recover_locked(m, true);
        owner = rb_owner_claim(m);
    }
    uint64_t cons = __atomic_load_n(cons_pos(m), __ATOMIC_ACQUIRE);
    uint64_t prod = *prod_pos(m);
    if (!owner || prod + len - cons > mask) {   /* never more than size - 1 bytes in use */
        /* Full: perhaps behind a record whose producer died. Discarding it
         * does not make room now (the consumer must move on first), but
         * lets consumers go on instead of waiting for it forever. */
        if (owner && stuck_front(m))
            recover_locked(m, false);
        gmap_unlock(m);
        return NULL;
    }
    uint64_t *hdr = rec_hdr(m, prod);
    uint64_t pg_off = (uint64_t)(((uint8_t *)hdr - m->base) / GMAP_PAGE);
    __atomic_store_n(hdr, (pg_off | (uint64_t)owner << RB_OWNER_SHIFT) << 32 | (uint32_t)size | RB_BUSY,
                     __ATOMIC_RELAXED);
    __atomic_store_n(prod_pos(m), prod + len, __ATOMIC_RELEASE);
    gmap_unlock(m);
    return hdr + 1;
}

/* Clear BUSY and the owner in one store: a consumer sees the record
 * finished with its plain pg_off, or still BUSY. */
static void rb_commit(void *sample, bool discard)
{
    uint64_t *hdr = (uint64_t *)sample - 1;
    uint64_t w = __atomic_load_n(hdr, __ATOMIC_RELAXED);
    uint32_t len = (uint32_t)w & ~RB_BUSY;
    if (discard)
        len |= RB_DISCARD;
    uint64_t pg_off = (w >> 32) & RB_PGOFF_MASK;
    __atomic_store_n(hdr, pg_off << 32 | len, __ATOMIC_RELEASE);
}

void gmap_ringbuf_submit(void *sample, uint64_t flags) { rb_commit(sample, false); }
void gmap_ringbuf_discard(void *sample, uint64_t flags) { rb_commit(sample, true); }

int gmap_ringbuf_output(struct gmap *m, const void *data, uint64_t size, uint64_t flags)
{
    if (flags & ~3ull)
        return -EINVAL;
    if (m->type != GMAP_RINGBUF)
        return -EINVAL;
    void *rec = gmap_ringbuf_reserve(m, size, 0);
    if (!rec)
        return -EAGAIN;
    memcpy(rec, data, size);
    rb_commit(rec, false);
    return 0;
}

uint64_t gmap_ringbuf_query(struct gmap *m, uint64_t flags)
{
    if (m->type != GMAP_RINGBUF)
        return 0;
    uint64_t cons = __atomic_load_n(cons_pos(m), __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(prod_pos(m), __ATOMIC_ACQUIRE);
    switch (flags) {
    case 0: return prod - cons;         /* BPF_RB_AVAIL_DATA */
    case 1: return m->max_entries;      /* BPF_RB_RING_SIZE */
    case 2: return cons;                /* BPF_RB_CONS_POS */
    case 3: return prod;                /* BPF_RB_PROD_POS */
    }
    return 0;
}

int ringbuf_check(struct gmap *m, struct graft_err *err)
{
    uint64_t cons = __atomic_load_n(cons_pos(m), __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(prod_pos(m), __ATOMIC_ACQUIRE);
    if (prod < cons || prod - cons >= m->max_entries || (prod | cons) % 8)
        return graft_errf(err, -EUCLEAN, "map %s: ring positions consumer %llu producer %llu invalid",
                          m->name, (unsigned long long)cons, (unsigned long long)prod);
    uint64_t mask = m->max_entries - 1;
    for (uint64_t p = cons; p < prod;) {
        uint64_t *hdr = (uint64_t *)(rb_data(m) + (p & mask));
        uint64_t w = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        uint32_t len = (uint32_t)w & ~(RB_BUSY | RB_DISCARD), hi = (uint32_t)(w >> 32);
        uint32_t owner = hi >> RB_OWNER_SHIFT;     /* only while BUSY */
        uint64_t step = ROUND_UP((uint64_t)len + RB_HDR_SZ, 8);
        if (p + step > prod || (hi & RB_PGOFF_MASK) != (uint32_t)(((uint8_t *)hdr - m->base) / GMAP_PAGE) ||
            owner > ((uint32_t)w & RB_BUSY ? RB_OWNERS : 0))
            return graft_errf(err, -EUCLEAN, "map %s: record at %llu (len %u, pg_off word %#x) is damaged",
                              m->name, (unsigned long long)p, len, hi);
        p += step;
    }
    return 0;
}

/* ---- perf event array ---- */

int perf_def_check(const struct gmap_def *d, struct graft_err *err)
{
    if (d->max_entries == 0 || d->key_size != 4 || d->value_size != 4)
        return graft_errf(err, -EINVAL,
                          "map '%.64s': a perf event array needs key_size 4, value_size 4, max_entries > 0 "
                          "(got %u/%u/%u)", d->name, d->key_size, d->value_size, d->max_entries);
    if (d->map_flags & ~(0x4u | 0x8 | 0x10 | GMAP_F_RDONLY_PROG | 0x100 | 0x800))
        return graft_errf(err, -EINVAL, "map '%.64s': map_flags %#x not supported", d->name, d->map_flags);
    uint64_t ds = d->map_extra;
    if (ds && ((ds & (ds - 1)) || ds % GMAP_PAGE || ds > (1u << 28)))
        return graft_errf(err, -EINVAL,
                          "map '%.64s': map_extra (perf data bytes) %llu must be a power of 2 multiple of %u",
                          d->name, (unsigned long long)ds, GMAP_PAGE);
    if (d->max_entries > 4096)
        return graft_errf(err, -E2BIG, "map '%.64s': %u perf buffers is too many (max 4096)", d->name,
                          d->max_entries);
    return 0;
}

uint64_t perf_layout(struct gmap_hdr *h)
{
    h->perf_data_size = h->def.map_extra ? h->def.map_extra : 8 * GMAP_PAGE;
    h->perf_buf_size = GMAP_PAGE + h->perf_data_size;
    h->off_b = ROUND_UP((uint64_t)h->hdr_size, 64);
    h->off_a = ROUND_UP(h->off_b + (uint64_t)h->def.max_entries * sizeof(struct gperf_lock), GMAP_PAGE);
    return h->off_a + (uint64_t)h->def.max_entries * h->perf_buf_size;
}

static struct gperf_lock *perf_lock(const struct gmap *m, uint32_t i)
{
    return (struct gperf_lock *)(m->base + m->h->off_b) + i;
}

void *gmap_perf_page(struct gmap *m, uint32_t i)
{
    if (m->type != GMAP_PERF_EVENT_ARRAY || i >= m->max_entries)
        return NULL;
    return m->base + m->h->off_a + (uint64_t)i * m->h->perf_buf_size;
}

int perf_init(struct gmap *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = 0;
    for (uint32_t i = 0; i < m->max_entries && !r; i++) {
        r = -pthread_mutex_init(&perf_lock(m, i)->lock, &a);
        struct perf_event_mmap_page *pg = gmap_perf_page(m, i);
        pg->version = 0;
        pg->compat_version = 0;
        pg->data_offset = GMAP_PAGE;
        pg->data_size = m->h->perf_data_size;
    }
    pthread_mutexattr_destroy(&a);
    return r;
}

static int perf_lock_index(struct gperf_lock *l);

/* The index's ring size, from its page (gmap_perf_resize), trusted only
 * within the space the map reserves: the page is writable by consumers. */
static uint64_t perf_ring_size(const struct gmap *m, struct perf_event_mmap_page *pg)
{
    uint64_t ds = __atomic_load_n(&pg->data_size, __ATOMIC_RELAXED);
    if (ds < GMAP_PAGE || (ds & (ds - 1)) || ds > m->h->perf_data_size)
        return m->h->perf_data_size;
    return ds;
}

int gmap_perf_resize(struct gmap *m, uint32_t idx, uint64_t data_size)
{
    if (m->type != GMAP_PERF_EVENT_ARRAY || idx >= m->max_entries)
        return -EINVAL;
    if (data_size < GMAP_PAGE || (data_size & (data_size - 1)) || data_size > m->h->perf_data_size)
        return -EINVAL;
    struct gperf_lock *l = perf_lock(m, idx);
    int r = perf_lock_index(l);
    if (r)
        return r;
    struct perf_event_mmap_page *pg = gmap_perf_page(m, idx);
    __atomic_store_n(&pg->data_tail, pg->data_head, __ATOMIC_RELEASE);
    __atomic_store_n(&pg->data_size, data_size, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

/* Copies len bytes to ring offset pos, wrapping at the end of the data. */
static void perf_copy(uint8_t *data, uint64_t size, uint64_t pos, const void *src, uint64_t len)
{
    uint64_t off = pos & (size - 1), first = len < size - off ? len : size - off;
    memcpy(data + off, src, first);
    memcpy(data, (const uint8_t *)src + first, len - first);
}

static int perf_lock_index(struct gperf_lock *l)
{
    int r = pthread_mutex_lock(&l->lock);
    if (r == EOWNERDEAD) {
        /* data_head only moves after a whole record is written */
        pthread_mutex_consistent(&l->lock);
        return 0;
    }
    return -r;
}

int gmap_perf_output(struct gmap *m, uint64_t cpu_flags, const void *data, uint64_t size)
{
    if (m->type != GMAP_PERF_EVENT_ARRAY || (cpu_flags & ~0xffffffffull))
        return -EINVAL;
    uint32_t idx = (uint32_t)cpu_flags;
    if (idx == 0xffffffffu)
        idx = gmap_this_cpu(m);
    if (idx >= m->max_entries)
        return -E2BIG;
    uint64_t total = ROUND_UP(sizeof(struct perf_event_header) + 4 + size, 8);
    if (total > 0xffff)
        return -E2BIG;
    struct gperf_lock *l = perf_lock(m, idx);
    int r = perf_lock_index(l);
    if (r)
        return r;
    struct perf_event_mmap_page *pg = gmap_perf_page(m, idx);
    uint8_t *ring = (uint8_t *)pg + GMAP_PAGE;
    uint64_t dsz = perf_ring_size(m, pg);
    uint64_t head = pg->data_head, tail = __atomic_load_n(&pg->data_tail, __ATOMIC_ACQUIRE);
    struct { struct perf_event_header h; uint64_t id, lost; } lost_rec;
    if (l->lost && dsz - (head - tail) >= sizeof(lost_rec) + total) {
        lost_rec.h = (struct perf_event_header){ .type = PERF_RECORD_LOST, .size = sizeof(lost_rec) };
        lost_rec.id = 0;
        lost_rec.lost = l->lost;
        perf_copy(ring, dsz, head, &lost_rec, sizeof(lost_rec));
        head += sizeof(lost_rec);
        l->lost = 0;
    }
    if (dsz - (head - tail) < total) {
        l->lost++;
        pthread_mutex_unlock(&l->lock);
        return -ENOSPC;
    }
    struct { struct perf_event_header h; uint32_t size; } __attribute__((packed)) rec = {
        .h = { .type = PERF_RECORD_SAMPLE, .misc = 0, .size = (uint16_t)total },
        .size = (uint32_t)(total - sizeof(rec)),
    };
    static const uint8_t zeros[8];
    perf_copy(ring, dsz, head, &rec, sizeof(rec));
    perf_copy(ring, dsz, head + sizeof(rec), data, size);
    perf_copy(ring, dsz, head + sizeof(rec) + size, zeros, total - sizeof(rec) - size);
    __atomic_store_n(&pg->data_head, head + total, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&l->lock);
    return 0;
}
