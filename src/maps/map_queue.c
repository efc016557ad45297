/*
 * map_queue.c - QUEUE and STACK (a ring of max_entries + 1 slots, as in the
 * kernel's queue_stack_maps.c) and BLOOM_FILTER (a bit array).
 *
 * Queue/stack invariants: head and tail are < max_entries + 1; the ring is
 * empty when head == tail and full when head + 1 == tail (mod size). Values
 * are written before the head moves and read before the tail/head moves, one
 * store each, so a pusher or popper killed mid-way changes nothing or
 * completes its step: there is nothing to repair.
 *
 * The bloom filter is written with atomic ORs and read without a lock.
 */
#include "maps/maps_internal.h"

#define ACCESS_FLAGS (0x4 | 0x8 | 0x10 | GMAP_F_RDONLY_PROG | 0x100)

int queue_def_check(const struct gmap_def *d, struct graft_err *err)
{
    if (d->max_entries == 0 || d->key_size != 0 || d->value_size == 0 || (d->map_flags & ~ACCESS_FLAGS))
        return graft_errf(err, -EINVAL,
                          "map '%.64s': a queue/stack needs key_size 0 (is %u), value_size > 0 (is %u), "
                          "max_entries > 0 (is %u) and no map_flags but access/NUMA ones (got %#x)",
                          d->name, d->key_size, d->value_size, d->max_entries, d->map_flags);
    if (d->value_size > (1u << 22))
        return graft_errf(err, -E2BIG, "map '%.64s': value_size %u too large (max 4 MiB)", d->name,
                          d->value_size);
    if ((uint64_t)(d->max_entries + 1ull) * ROUND_UP(d->value_size, 8) > (1ull << 36))
        return graft_errf(err, -E2BIG, "map '%.64s': queue too large", d->name);
    return 0;
}

uint64_t queue_layout(struct gmap_hdr *h)
{
    h->off_a = ROUND_UP((uint64_t)h->hdr_size, 64);
    return h->off_a + (h->def.max_entries + 1ull) * h->value_stride;
}

static uint8_t *qslot(const struct gmap *m, uint32_t i)
{
    return m->base + m->h->off_a + (uint64_t)i * m->stride;
}

int queue_push(struct gmap *m, const void *value, uint64_t flags)
{
    if ((flags & GMAP_NOEXIST) || flags > GMAP_EXIST)
        return -EINVAL;
    int r = gmap_lock(m);
    if (r)
        return r;
    struct gmap_hdr *h = m->h;
    uint32_t size = m->max_entries + 1;
    uint32_t next = h->q_head + 1 >= size ? 0 : h->q_head + 1;
    if (next == h->q_tail) {
        if (!(flags & GMAP_EXIST)) {
            gmap_unlock(m);
            return -E2BIG;
        }
        /* overwrite the oldest element, for queues and stacks alike */
        __atomic_store_n(&h->q_tail, h->q_tail + 1 >= size ? 0 : h->q_tail + 1, __ATOMIC_RELEASE);
    }
    memcpy(qslot(m, h->q_head), value, m->value_size);
    __atomic_store_n(&h->q_head, next, __ATOMIC_RELEASE);
    gmap_unlock(m);
    return 0;
}

int queue_pop(struct gmap *m, void *value, bool remove)
{
    int r = gmap_lock(m);
    if (r)
        return r;
    struct gmap_hdr *h = m->h;
    uint32_t size = m->max_entries + 1;
    if (h->q_head == h->q_tail) {
        memset(value, 0, m->value_size);
        gmap_unlock(m);
        return -ENOENT;
    }
    if (m->type == GMAP_QUEUE) {
        memcpy(value, qslot(m, h->q_tail), m->value_size);
        if (remove)
            __atomic_store_n(&h->q_tail, h->q_tail + 1 >= size ? 0 : h->q_tail + 1, __ATOMIC_RELEASE);
    } else {
        uint32_t top = h->q_head == 0 ? size - 1 : h->q_head - 1;
        memcpy(value, qslot(m, top), m->value_size);
        if (remove)
            __atomic_store_n(&h->q_head, top, __ATOMIC_RELEASE);
    }
    gmap_unlock(m);
    return 0;
}

int queue_check(struct gmap *m, struct graft_err *err)
{
    uint32_t size = m->max_entries + 1;
    uint32_t head = __atomic_load_n(&m->h->q_head, __ATOMIC_ACQUIRE);
    uint32_t tail = __atomic_load_n(&m->h->q_tail, __ATOMIC_ACQUIRE);
    if (head >= size || tail >= size)
        return graft_errf(err, -EUCLEAN, "map %s: queue head %u / tail %u outside ring of %u", m->name, head,
                          tail, size);
    return 0;
}

int bloom_def_check(const struct gmap_def *d, struct graft_err *err)
{
    if (d->key_size != 0 || d->value_size == 0 || d->max_entries == 0 ||
        (d->map_flags & ~(0x4 | 0x8 | 0x10 | 0x40)) || (d->map_extra & ~0xFull))
        return graft_errf(err, -EINVAL,
                          "map '%.64s': a bloom filter needs key_size 0 (is %u), value_size > 0 (is %u), "
                          "max_entries > 0 (is %u), map_extra 0..15 (is %llu), map_flags NUMA/RDONLY/WRONLY/"
                          "ZERO_SEED only (got %#x)", d->name, d->key_size, d->value_size, d->max_entries,
                          (unsigned long long)d->map_extra, d->map_flags);
    if (d->value_size > (1u << 22))
        return graft_errf(err, -E2BIG, "map '%.64s': value_size %u too large", d->name, d->value_size);
    return 0;
}

/* Bits: max_entries * hashes / ln 2 (7/5 approximates 1/ln 2), rounded up to
 * a power of 2, at least 64 and at most 2^32, as the kernel sizes it. */
uint64_t bloom_layout(struct gmap_hdr *h)
{
    h->nr_hashes = (uint32_t)(h->def.map_extra & 0xF);
    if (!h->nr_hashes)
        h->nr_hashes = 5;
    uint64_t want = (uint64_t)h->def.max_entries * h->nr_hashes * 7 / 5, bits = 64;
    while (bits < want && bits < (1ull << 32))
        bits <<= 1;
    h->bloom_mask = (uint32_t)(bits - 1);
    h->off_a = ROUND_UP((uint64_t)h->hdr_size, 64);
    return h->off_a + bits / 8;
}

static uint32_t bloom_bit(const struct gmap *m, const void *value, uint32_t i)
{
    /* seeds far apart in their high bits: seed + i would let small values
     * of nearby seeds collide (the seed is xored with the value) */
    uint64_t seed = m->h->seed + (i + 1) * 0xD6E8FEB86659FD93ull;
    return (uint32_t)gmap_hash_bytes(value, m->value_size, seed) & m->h->bloom_mask;
}

int bloom_push(struct gmap *m, const void *value, uint64_t flags)
{
    if (flags != GMAP_ANY)
        return -EINVAL;
    uint64_t *bits = (uint64_t *)(m->base + m->h->off_a);
    for (uint32_t i = 0; i < m->h->nr_hashes; i++) {
        uint32_t b = bloom_bit(m, value, i);
        __atomic_fetch_or(&bits[b / 64], 1ull << (b % 64), __ATOMIC_RELAXED);
    }
    return 0;
}

int bloom_peek(struct gmap *m, const void *value)
{
    const uint64_t *bits = (const uint64_t *)(m->base + m->h->off_a);
    for (uint32_t i = 0; i < m->h->nr_hashes; i++) {
        uint32_t b = bloom_bit(m, value, i);
        if (!(__atomic_load_n(&bits[b / 64], __ATOMIC_RELAXED) & (1ull << (b % 64))))
            return -ENOENT;
    }
    return 0;
}
