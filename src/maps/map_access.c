/*
 * map_access.c - element lookup, update and delete: the public entry points
 * and their dispatch to the map types.
 *
 * These are what bpf_map_lookup_elem / update_elem / delete_elem call on
 * every use, also from programs the syscall hooks run without saving the
 * vector registers (GHELPER_F_FP_FREE, util/fpsafe.h). So this file and
 * map_hash.c, whose common paths (HASH maps, 4- or 8-byte keys, the key
 * first in its chain, an update of a present key with an 8-byte value)
 * these reach, are compiled with -mgeneral-regs-only; every other path
 * (other map types, longer chains, inserts and deletes under the map's
 * lock) is entered through gfp_call, which saves xmm0-15 around ordinary
 * C. tests/helpers/fp_free_check.py checks the built library.
 */
#include "maps/maps_internal.h"
#include "util/fpsafe.h"

static void *lookup_other(struct gmap *m, const void *key)
{
    switch (m->type) {
    case GMAP_ARRAY: case GMAP_PERCPU_ARRAY: case GMAP_PROG_ARRAY:
        return arr_lookup(m, key);
    case GMAP_ARRAY_OF_MAPS: {
        uint32_t *id = arr_lookup(m, key);
        return id ? gmap_resolve_inner(m, __atomic_load_n(id, __ATOMIC_ACQUIRE)) : NULL;
    }
    case GMAP_HASH_OF_MAPS: {
        uint32_t *id = hash_lookup(m, key);
        return id ? gmap_resolve_inner(m, __atomic_load_n(id, __ATOMIC_ACQUIRE)) : NULL;
    }
    case GMAP_HASH: case GMAP_PERCPU_HASH: case GMAP_LRU_HASH: case GMAP_LRU_PERCPU_HASH:
        return hash_lookup(m, key);
    case GMAP_LPM_TRIE:
        return lpm_lookup(m, key);
    }
    return NULL;
}

void *gmap_lookup(struct gmap *m, const void *key)
{
    if (__builtin_expect(m->type == GMAP_HASH, 1))
        return hash_lookup(m, key);   /* the most common first: one compare, a jump */
    /* (the JIT inlines array lookups: no helper call to make fast here) */
    return (void *)(uintptr_t)GFP_CALL2(lookup_other, m, key);
}

/* Flag checks in the kernel's order: arrays check them themselves (range
 * before F_LOCK); hash-like maps reject unknown bits, then F_LOCK, since no
 * value here has a bpf_spin_lock (there is no BTF). */
static int64_t update_other(struct gmap *m, const void *key, const void *value, uint64_t flags,
                            bool all_cpus)
{
    if (all_cpus && (flags & GMAP_F_LOCK))
        return -EINVAL;   /* the syscall checks this first */
    if (gmap_is_array(m->type))
        return arr_update(m, key, value, flags, all_cpus);
    if (gmap_is_hash(m->type)) {
        if ((flags & ~(uint64_t)GMAP_F_LOCK) > GMAP_EXIST || (flags & GMAP_F_LOCK))
            return -EINVAL;
        return hash_update(m, key, value, flags, all_cpus);
    }
    switch (m->type) {
    case GMAP_LPM_TRIE:
        if (flags > GMAP_EXIST)
            return -EINVAL;
        return lpm_update(m, key, value, flags);
    case GMAP_QUEUE: case GMAP_STACK:
        return queue_push(m, value, flags);
    case GMAP_BLOOM_FILTER:
        return bloom_push(m, value, flags);
    case GMAP_PERF_EVENT_ARRAY:
        return -ENOTSUPP;   /* slots are always backed by a buffer here */
    }
    return -EINVAL;
}

/* The int result sign-extended (update_other and hash_update return it so,
 * gfp_call passes rax on): every path ends in a jump. */
static inline __attribute__((always_inline)) int64_t update(struct gmap *m, const void *key,
                                                           const void *value, uint64_t flags,
                                                           bool all_cpus)
{
    if (__builtin_expect(m->type == GMAP_HASH && flags <= GMAP_EXIST, 1))
        return hash_update(m, key, value, flags, all_cpus);   /* update_other's checks pass */
    return (int64_t)GFP_CALL5(update_other, m, key, value, flags, all_cpus);
}

int gmap_update(struct gmap *m, const void *key, const void *value, uint64_t flags)
{
    return (int)update(m, key, value, flags, false);
}

int64_t gmap_update_local(struct gmap *m, const void *key, const void *value, uint64_t flags)
{
    return update(m, key, value, flags, false);
}

int gmap_update_copy(struct gmap *m, const void *key, const void *value, uint64_t flags)
{
    return (int)update(m, key, value, flags, true);
}

static int delete_any(struct gmap *m, const void *key)
{
    if (gmap_is_array(m->type))
        return arr_delete(m, key);
    if (gmap_is_hash(m->type))
        return hash_delete(m, key, NULL);
    switch (m->type) {
    case GMAP_LPM_TRIE:
        return lpm_delete(m, key);
    case GMAP_QUEUE: case GMAP_STACK:
        return -EINVAL;
    case GMAP_BLOOM_FILTER:
        return -EOPNOTSUPP;
    }
    return -EINVAL;
}

/* Every delete takes the map's lock: always the general path. */
int gmap_delete(struct gmap *m, const void *key)
{
    return (int)GFP_CALL2(delete_any, m, key);
}

extern __typeof__(gmap_lookup) gmap_lookup_local __attribute__((alias("gmap_lookup")));
extern __typeof__(gmap_delete) gmap_delete_local __attribute__((alias("gmap_delete")));
