/*
 * map_array.c - ARRAY, PERCPU_ARRAY, PROG_ARRAY and ARRAY_OF_MAPS.
 *
 * Layout: max_entries slots of value_stride bytes at hdr->off_a; per-CPU
 * arrays hold ncpus such blocks, CPU-major ([cpu][index]) so counters of
 * different CPUs do not share cache lines. Lookups take no lock (a bounds
 * check and an address computation); updates copy in place, like the
 * kernel's. PROG_ARRAY and ARRAY_OF_MAPS slots hold a u32 id, 0 = empty,
 * written with single atomic stores.
 */
#include "maps/maps_internal.h"

#include <string.h>

/* The index a key holds. A program may hand a key at any address (a
 * packet byte, an odd stack offset): read it without assuming alignment. */
static inline uint32_t key_index(const void *key)
{
    uint32_t idx;
    memcpy(&idx, key, sizeof(idx));
    return idx;
}

static bool is_percpu(const struct gmap *m) { return m->type == GMAP_PERCPU_ARRAY; }
static bool is_fd_array(const struct gmap *m)
{
    return m->type == GMAP_PROG_ARRAY || m->type == GMAP_ARRAY_OF_MAPS;
}

int arr_def_check(const struct gmap_def *d, struct graft_err *err)
{
    bool fd = d->type == GMAP_PROG_ARRAY || d->type == GMAP_ARRAY_OF_MAPS;
    if (d->max_entries == 0 || d->key_size != 4 || d->value_size == 0)
        return graft_errf(err, -EINVAL,
                          "map '%.64s': an array needs key_size 4 (is %u), value_size > 0 (is %u) "
                          "and max_entries > 0 (is %u)", d->name, d->key_size, d->value_size,
                          d->max_entries);
    if (fd && d->value_size != 4)
        return graft_errf(err, -EINVAL, "map '%.64s': prog/map arrays hold u32 ids: value_size must be 4, is %u",
                          d->name, d->value_size);
    uint32_t ok = GMAP_F_RDONLY_PROG | 0x100 /* WRONLY_PROG */ | 0x8 | 0x10 /* RDONLY/WRONLY */ |
                  0x4 /* NUMA_NODE */ | 0x1000 /* INNER_MAP */;
    if (d->type == GMAP_ARRAY)
        ok |= GMAP_F_MMAPABLE | 0x800 /* PRESERVE_ELEMS is for fd arrays; harmless */;
    if (d->map_flags & ~ok)
        return graft_errf(err, -EINVAL, "map '%.64s': map_flags %#x not supported for this array type",
                          d->name, d->map_flags);
    if (d->type == GMAP_PERCPU_ARRAY && d->value_size > 32768)
        return graft_errf(err, -E2BIG, "map '%.64s': per-CPU value_size %u exceeds 32768", d->name,
                          d->value_size);
    if (d->value_size > (1u << 22))
        return graft_errf(err, -E2BIG, "map '%.64s': value_size %u exceeds 4 MiB", d->name, d->value_size);
    uint64_t bytes = (uint64_t)d->max_entries * ROUND_UP(d->value_size, 8);
    if (bytes > (1ull << 36))
        return graft_errf(err, -E2BIG, "map '%.64s': %llu bytes of values is too large", d->name,
                          (unsigned long long)bytes);
    return 0;
}

uint64_t arr_layout(struct gmap_hdr *h)
{
    uint64_t copies = h->def.type == GMAP_PERCPU_ARRAY ? h->ncpus : 1;
    h->off_a = ROUND_UP((uint64_t)h->hdr_size, 64);
    return h->off_a + copies * h->def.max_entries * (uint64_t)h->value_stride;
}

static inline uint8_t *slot(const struct gmap *m, uint32_t cpu, uint32_t idx)
{
    return m->base + m->off_a + ((uint64_t)cpu * m->max_entries + idx) * m->stride;
}

int gmap_array_layout(struct gmap *m, void **values, uint64_t *stride, uint64_t *percpu_stride)
{
    if (m->type != GMAP_ARRAY && m->type != GMAP_PERCPU_ARRAY)
        return -EINVAL;
    *values = slot(m, 0, 0);
    *stride = m->stride;
    *percpu_stride = is_percpu(m) ? (uint64_t)m->max_entries * m->stride : 0;
    return 0;
}

void *arr_lookup(struct gmap *m, const void *key)
{
    uint32_t idx = key_index(key);
    if (idx >= m->max_entries)
        return NULL;
    if (is_percpu(m))
        return slot(m, gmap_this_cpu(m), idx);
    uint8_t *p = slot(m, 0, idx);
    if (is_fd_array(m) && __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE) == 0)
        return NULL;
    return p;
}

int arr_lookup_copy(struct gmap *m, const void *key, void *value)
{
    uint32_t idx = key_index(key);
    if (idx >= m->max_entries)
        return -ENOENT;
    if (is_fd_array(m)) {
        uint32_t id = __atomic_load_n((uint32_t *)slot(m, 0, idx), __ATOMIC_ACQUIRE);
        if (!id)
            return -ENOENT;
        memcpy(value, &id, 4);
        return 0;
    }
    if (!is_percpu(m)) {
        memcpy(value, slot(m, 0, idx), m->value_size);
        return 0;
    }
    for (uint32_t c = 0; c < m->ncpus; c++)
        memcpy((uint8_t *)value + (uint64_t)c * m->stride, slot(m, c, idx), m->stride);
    return 0;
}

static int fd_array_update(struct gmap *m, uint32_t idx, const void *value, uint64_t flags)
{
    if (flags != GMAP_ANY)
        return -EINVAL;
    if (idx >= m->max_entries)
        return -E2BIG;
    uint32_t id;
    memcpy(&id, value, 4);
    if (m->type == GMAP_ARRAY_OF_MAPS) {
        int r = gmap_check_inner(m, id);
        if (r)
            return r;
    } else if (id == 0) {
        return -EINVAL;   /* no program has id 0 */
    }
    __atomic_store_n((uint32_t *)slot(m, 0, idx), id, __ATOMIC_RELEASE);
    return 0;
}

int arr_update(struct gmap *m, const void *key, const void *value, uint64_t flags, bool all_cpus)
{
    uint32_t idx = key_index(key);
    if (is_fd_array(m))
        return fd_array_update(m, idx, value, flags);
    if (is_percpu(m) && flags > GMAP_EXIST)
        return -EINVAL;
    if ((flags & ~(uint64_t)GMAP_F_LOCK) > GMAP_EXIST)
        return -EINVAL;
    if (idx >= m->max_entries)
        return -E2BIG;
    if (flags & GMAP_NOEXIST)
        return -EEXIST;   /* every array element always exists */
    if (flags & GMAP_F_LOCK)
        return -EINVAL;
    if (!is_percpu(m)) {
        memcpy(slot(m, 0, idx), value, m->value_size);
    } else if (!all_cpus) {
        memcpy(slot(m, gmap_this_cpu(m), idx), value, m->value_size);
    } else {
        for (uint32_t c = 0; c < m->ncpus; c++)
            memcpy(slot(m, c, idx), (const uint8_t *)value + (uint64_t)c * m->stride, m->stride);
    }
    return 0;
}

int arr_delete(struct gmap *m, const void *key)
{
    if (!is_fd_array(m))
        return -EINVAL;
    uint32_t idx = key_index(key);
    if (idx >= m->max_entries)
        return -E2BIG;
    uint32_t old = __atomic_exchange_n((uint32_t *)slot(m, 0, idx), 0, __ATOMIC_ACQ_REL);
    return old ? 0 : -ENOENT;
}

int arr_next_key(struct gmap *m, const void *key, void *next)
{
    uint32_t idx = key ? key_index(key) : UINT32_MAX;
    uint32_t *out = next;
    if (idx >= m->max_entries) {
        *out = 0;
        return 0;
    }
    if (idx == m->max_entries - 1)
        return -ENOENT;
    *out = idx + 1;
    return 0;
}
