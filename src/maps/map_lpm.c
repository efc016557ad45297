/*
 * map_lpm.c - LPM_TRIE with the kernel's semantics (key = u32 prefixlen +
 * data, bits counted from the most significant bit of data[0]; lookup finds
 * the longest stored prefix that covers the key's first prefixlen bits).
 *
 * Storage is the hash of map_hash.c keyed by (prefixlen, data masked to
 * prefixlen bits); the value area holds the value and then the key exactly
 * as given (get_next_key returns that, as the kernel does). A count of
 * entries per prefix length (after the element pool) lets lookup probe only
 * the lengths in use, longest first. Counts are repaired from the chains.
 */
#include "maps/maps_internal.h"

#define LPM_DATA_MAX 256

int lpm_def_check(const struct gmap_def *d, struct graft_err *err)
{
    uint32_t ok = GMAP_F_NO_PREALLOC | 0x4 | 0x8 | 0x10 | GMAP_F_RDONLY_PROG | 0x100;
    if (d->max_entries == 0 || !(d->map_flags & GMAP_F_NO_PREALLOC) || (d->map_flags & ~ok))
        return graft_errf(err, -EINVAL,
                          "map '%.64s': an LPM trie needs max_entries > 0 and map_flags with "
                          "BPF_F_NO_PREALLOC only (got %#x)", d->name, d->map_flags);
    if (d->key_size < 5 || d->key_size > 4 + LPM_DATA_MAX || d->value_size < 1 || d->value_size > (1u << 22))
        return graft_errf(err, -EINVAL,
                          "map '%.64s': LPM key_size must be 4 + 1..256 (is %u), value_size 1..4M (is %u)",
                          d->name, d->key_size, d->value_size);
    if (d->max_entries > (1u << 28))
        return graft_errf(err, -E2BIG, "map '%.64s': max_entries %u too large", d->name, d->max_entries);
    return 0;
}

static uint64_t counts_off(const struct gmap_hdr *h)
{
    return ROUND_UP(h->off_b + (uint64_t)h->pool_size * h->elem_size, 64);
}

uint64_t lpm_layout(struct gmap_hdr *h)
{
    h->lpm_data_size = h->def.key_size - 4;
    h->lpm_max_plen = 8 * h->lpm_data_size;
    hash_layout(h, ROUND_UP(h->def.key_size, 8));
    return counts_off(h) + 4ull * (h->lpm_max_plen + 1);
}

static uint32_t *plen_counts(const struct gmap *m)
{
    return (uint32_t *)(m->base + counts_off(m->h));
}

/* out = (plen, data with the bits after plen cleared) */
static void mask_key(const struct gmap *m, const uint8_t *data, uint32_t plen, uint8_t *out)
{
    uint32_t n = m->h->lpm_data_size, full = plen / 8;
    memcpy(out, &plen, 4);
    memcpy(out + 4, data, full);
    if (full < n) {
        out[4 + full] = plen % 8 ? (uint8_t)(data[full] & (0xff00 >> (plen % 8))) : 0;
        memset(out + 5 + full, 0, n - full - 1);
    }
}

static uint32_t key_plen(const void *key)
{
    uint32_t p;
    memcpy(&p, key, 4);
    return p;
}

/* Longest match: probe each prefix length in use, from the key's down. */
static uint32_t lpm_find(struct gmap *m, const void *key)
{
    uint32_t plen = key_plen(key);
    if (plen > m->h->lpm_max_plen)
        return 0;
    const uint32_t *counts = plen_counts(m);
    uint8_t mk[4 + LPM_DATA_MAX];
    for (int64_t l = plen; l >= 0; l--) {
        if (!__atomic_load_n(&counts[l], __ATOMIC_RELAXED))
            continue;
        mask_key(m, (const uint8_t *)key + 4, (uint32_t)l, mk);
        uint32_t idx = hash_find_nolock(m, mk, hash_key(m, mk));
        if (idx)
            return idx;
    }
    return 0;
}

void *lpm_lookup(struct gmap *m, const void *key)
{
    uint32_t idx = lpm_find(m, key);
    return idx ? hash_elem_value(m, hash_elem(m, idx)) : NULL;
}

int lpm_lookup_copy(struct gmap *m, const void *key, void *value)
{
    uint32_t idx = lpm_find(m, key);
    if (!idx)
        return -ENOENT;
    memcpy(value, hash_elem_value(m, hash_elem(m, idx)), m->value_size);
    return 0;
}

int lpm_update(struct gmap *m, const void *key, const void *value, uint64_t flags)
{
    uint32_t plen = key_plen(key);
    if (plen > m->h->lpm_max_plen)
        return -EINVAL;
    uint8_t mk[4 + LPM_DATA_MAX];
    mask_key(m, (const uint8_t *)key + 4, plen, mk);
    uint32_t hash = hash_key(m, mk), idx, old;
    bool is_new;
    int r = gmap_lock(m);
    if (r)
        return r;
    r = hash_insert_locked(m, mk, hash, flags, &idx, &old, &is_new);
    if (r == -E2BIG)
        r = -ENOSPC;   /* the trie's "full" error */
    if (!r) {
        uint8_t *v = hash_elem_value(m, hash_elem(m, idx));
        memcpy(v, value, m->value_size);
        memcpy(v + m->stride, key, m->key_size);
        hash_finish_replace(m, hash, idx, old);
        if (is_new)
            plen_counts(m)[plen]++;
    }
    gmap_unlock(m);
    return r;
}

int lpm_delete(struct gmap *m, const void *key)
{
    uint32_t plen = key_plen(key);
    if (plen > m->h->lpm_max_plen)
        return -EINVAL;
    uint8_t mk[4 + LPM_DATA_MAX];
    mask_key(m, (const uint8_t *)key + 4, plen, mk);
    uint32_t hash = hash_key(m, mk), idx;
    int r = gmap_lock(m);
    if (r)
        return r;
    r = hash_remove_locked(m, mk, hash, &idx);
    if (!r) {
        hash_free_elem(m, idx);
        m->h->count--;
        plen_counts(m)[plen]--;
    }
    gmap_unlock(m);
    return r;
}

int lpm_next_key(struct gmap *m, const void *key, void *next)
{
    uint8_t mk[4 + LPM_DATA_MAX], nk[4 + LPM_DATA_MAX];
    const void *from = NULL;
    if (key && key_plen(key) <= m->h->lpm_max_plen) {
        mask_key(m, (const uint8_t *)key + 4, key_plen(key), mk);
        from = mk;
    }
    int r = hash_next_key(m, from, nk);
    if (r)
        return r;
    /* nk is the masked key; report the key as it was stored */
    uint32_t idx = hash_find_nolock(m, nk, hash_key(m, nk));
    if (!idx) {   /* deleted meanwhile: its masked form is still a valid key */
        memcpy(next, nk, m->key_size);
        return 0;
    }
    memcpy(next, hash_elem_value(m, hash_elem(m, idx)) + m->stride, m->key_size);
    return 0;
}

static void count_chains(struct gmap *m, uint32_t *counts)
{
    struct gbucket *b = (struct gbucket *)(m->base + m->h->off_a);
    memset(counts, 0, 4ull * (m->h->lpm_max_plen + 1));
    for (uint32_t bi = 0; bi < m->h->n_buckets; bi++)
        for (uint32_t idx = b[bi].head; idx; idx = hash_elem(m, idx)->next) {
            uint32_t p = key_plen(hash_elem_key(hash_elem(m, idx)));
            if (p <= m->h->lpm_max_plen)
                counts[p]++;
        }
}

void lpm_repair(struct gmap *m)
{
    hash_repair(m);
    count_chains(m, plen_counts(m));
}

int lpm_check(struct gmap *m, struct graft_err *err)
{
    int r = hash_check(m, err);
    if (r)
        return r;
    uint32_t counts[8 * LPM_DATA_MAX + 1];
    if ((r = gmap_lock(m)))
        return graft_errf(err, r, "map %s: cannot lock", m->name);
    count_chains(m, counts);
    for (uint32_t p = 0; p <= m->h->lpm_max_plen && !r; p++)
        if (counts[p] != plen_counts(m)[p])
            r = graft_errf(err, -EUCLEAN, "map %s: %u entries of prefix length %u, count says %u", m->name,
                           counts[p], p, plen_counts(m)[p]);
    gmap_unlock(m);
    return r;
}
