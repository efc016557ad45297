/*
 * batch.c - BPF_MAP_LOOKUP_BATCH, LOOKUP_AND_DELETE_BATCH, UPDATE_BATCH and
 * DELETE_BATCH (libbpf's bpf_map_*_batch; syscount reads its counts with
 * lookup_and_delete_batch), built from graft's per-element map operations.
 *
 * The kernel's batch token is opaque to the tool (a bucket index for hash
 * maps, an index for arrays); here it is a u32: how many keys from the start
 * of the key order the next lookup batch skips. A lookup-and-delete batch
 * removes what it returns, so it always starts from the first key. As in the
 * kernel, a batch that reaches the end fails with ENOENT and still reports
 * in count how many elements it copied; elements added or removed
 * concurrently may be missed or repeated, as the kernel allows.
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>

static void *ptr(uint64_t v) { return (void *)(uintptr_t)v; }

static int is_kv_map(uint32_t t)
{
    switch (t) {
    case BPF_MAP_TYPE_HASH: case BPF_MAP_TYPE_ARRAY: case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY: case BPF_MAP_TYPE_LRU_HASH: case BPF_MAP_TYPE_LRU_PERCPU_HASH:
        return 1;
    default:
        return 0;
    }
}

static int is_array(uint32_t t)
{
    return t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* Lookup (and delete) up to *count elements; returns 0, -ENOENT at the end,
 * or -errno; *count = elements copied. */
static int lookup_batch(struct cobj *m, int del, union bpf_attr *a, uint32_t *count)
{
    uint32_t ks = m->def.key_size, max = *count;
    size_t vs = gc_map_value_bytes(m);
    uint32_t skip = 0;
    if (!del && a->batch.in_batch)
        memcpy(&skip, ptr(a->batch.in_batch), sizeof(skip));
    char *keys = ptr(a->batch.keys), *vals = ptr(a->batch.values);
    char *cur = malloc(ks), *next = malloc(ks), *val = malloc(vs ? vs : 1);
    int rc = 0, have = 0;
    uint32_t n = 0;
    if (!cur || !next || !val) {
        rc = -ENOMEM;
        goto out;
    }
    /* skip the keys earlier batches returned */
    for (uint32_t i = 0; i < skip && rc == 0; i++) {
        rc = gmap_get_next_key(m->map, have ? cur : NULL, next);
        if (rc == 0) {
            memcpy(cur, next, ks);
            have = 1;
        }
    }
    while (rc == 0 && n < max) {
        rc = gmap_get_next_key(m->map, have ? cur : NULL, next);
        if (rc < 0)
            break;
        memcpy(cur, next, ks);
        have = 1;
        int lr = del ? gmap_lookup_and_delete(m->map, cur, val) : gmap_lookup_copy(m->map, cur, val);
        if (lr == -ENOENT)
            continue;             /* gone meanwhile */
        if (lr < 0) {
            rc = lr;
            break;
        }
        memcpy(keys + (size_t)n * ks, cur, ks);
        memcpy(vals + (size_t)n * vs, val, vs);
        n++;
        if (del)
            have = 0;             /* the key is gone: start from the first again */
    }
    if (rc == 0 && n == max && !is_array(m->def.type)) {
        /* full: say ENOENT now if nothing follows, as the kernel does at the last bucket */
        if (gmap_get_next_key(m->map, have ? cur : NULL, next) == -ENOENT)
            rc = -ENOENT;
    } else if (rc == 0 && n == max && is_array(m->def.type) && skip + n >= m->def.max_entries) {
        rc = -ENOENT;
    }
    if (a->batch.out_batch) {
        uint32_t tok = del ? 0 : skip + n;
        memcpy(ptr(a->batch.out_batch), &tok, sizeof(tok));
    }
out:
    free(cur);
    free(next);
    free(val);
    *count = n;
    return rc;
}

static int update_batch(struct cobj *m, const union bpf_attr *a, uint32_t *count)
{
    uint32_t ks = m->def.key_size, max = *count, n = 0;
    size_t vs = gc_map_value_bytes(m);
    const char *keys = ptr(a->batch.keys), *vals = ptr(a->batch.values);
    int rc = 0;
    for (; n < max; n++) {
        rc = gmap_update_copy(m->map, keys + (size_t)n * ks, vals + (size_t)n * vs, a->batch.elem_flags);
        if (rc < 0)
            break;
    }
    *count = n;
    return rc;
}

static int delete_batch(struct cobj *m, const union bpf_attr *a, uint32_t *count)
{
    uint32_t ks = m->def.key_size, max = *count, n = 0;
    const char *keys = ptr(a->batch.keys);
    int rc = 0;
    for (; n < max; n++) {
        rc = gmap_delete(m->map, keys + (size_t)n * ks);
        if (rc < 0)
            break;
    }
    *count = n;
    return rc;
}

long gc_map_batch(int cmd, union bpf_attr *a, struct cobj *m)
{
    if (!is_kv_map(m->def.type) || m->kernel_type) {   /* stack trace, cgroup arrays: per element only */
        gc_warn_once("batch operations on map %s (type %u): not supported by graft", m->name, m->def.type);
        a->batch.count = 0;
        return -EINVAL;
    }
    if (a->batch.flags || (a->batch.elem_flags & ~(uint64_t)BPF_F_LOCK))
        return -EINVAL;
    uint32_t count = a->batch.count;
    if (count == 0)
        return 0;
    if (!a->batch.keys || (cmd != BPF_MAP_DELETE_BATCH && !a->batch.values))
        return -EFAULT;
    int rc;
    switch (cmd) {
    case BPF_MAP_LOOKUP_BATCH:
        rc = lookup_batch(m, 0, a, &count);
        break;
    case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
        rc = is_array(m->def.type) ? -EOPNOTSUPP : lookup_batch(m, 1, a, &count);
        if (rc == -EOPNOTSUPP)
            count = 0;
        break;
    case BPF_MAP_UPDATE_BATCH:
        rc = m->frozen ? -EPERM : update_batch(m, a, &count);
        break;
    default:
        rc = m->frozen ? -EPERM : is_array(m->def.type) ? -EINVAL : delete_batch(m, a, &count);
        break;
    }
    a->batch.count = count;
    return rc;
}
