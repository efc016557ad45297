/*
 * test_maps_types.c - functional tests of every map type: kernel semantics
 * and errno values of each operation, per-CPU copies, LRU eviction, LPM
 * longest match, queue/stack order, bloom filter, map-in-map resolution,
 * the ring buffer read back with the kernel/libbpf consumer protocol, the
 * perf buffer read back as a perf_buffer consumer would, JSON dump, and
 * reopening a map by name.
 */
#define _GNU_SOURCE
#include "tmaps.h"

#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

static struct gmap_def def(uint32_t type, uint32_t ks, uint32_t vs, uint32_t max, uint32_t flags)
{
    struct gmap_def d = { .type = type, .key_size = ks, .value_size = vs, .max_entries = max,
                          .map_flags = flags };
    snprintf(d.name, sizeof(d.name), "t%u", type);
    return d;
}

static void test_bad_defs(void)
{
    struct gmap *m;
    struct graft_err err;
    struct gmap_def d;
    d = def(GMAP_HASH, 0, 4, 10, 0);
    graft_err_clear(&err);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    CHECK(strstr(err.msg, "key_size") != NULL);
    d = def(GMAP_ARRAY, 8, 4, 10, 0);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    d = def(GMAP_HASH, 4, 4, 0, 0);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    d = def(GMAP_LPM_TRIE, 8, 4, 10, 0);   /* no BPF_F_NO_PREALLOC */
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    d = def(GMAP_RINGBUF, 0, 0, 5000, 0);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    d = def(GMAP_QUEUE, 4, 4, 10, 0);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    d = def(GMAP_PERCPU_HASH, 4, 40000, 10, 0);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -E2BIG);
    d = def(99, 4, 4, 10, 0);
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
    d = def(GMAP_BLOOM_FILTER, 0, 4, 10, 0);
    d.map_extra = 16;
    CHECK_EQ(gmap_create(&d, -1, &m, &err), -EINVAL);
}

static void test_array(void)
{
    struct gmap_def d = def(GMAP_ARRAY, 4, 12, 8, 0);
    struct gmap *m = t_create(&d);
    uint32_t k = 3, next;
    uint8_t v[12] = { 1, 2, 3 }, out[12];
    CHECK_EQ(gmap_update(m, &k, v, GMAP_ANY), 0);
    CHECK_EQ(gmap_update(m, &k, v, GMAP_EXIST), 0);
    CHECK_EQ(gmap_update(m, &k, v, GMAP_NOEXIST), -EEXIST);
    CHECK_EQ(gmap_update(m, &k, v, 3), -EINVAL);
    CHECK_EQ(gmap_update(m, &k, v, GMAP_F_LOCK), -EINVAL);
    CHECK_EQ(gmap_lookup_copy(m, &k, out), 0);
    CHECK(memcmp(out, v, 12) == 0);
    CHECK(memcmp(gmap_lookup(m, &k), v, 12) == 0);
    k = 8;
    CHECK_EQ(gmap_update(m, &k, v, GMAP_ANY), -E2BIG);
    CHECK_EQ(gmap_lookup_copy(m, &k, out), -ENOENT);
    CHECK(gmap_lookup(m, &k) == NULL);
    CHECK_EQ(gmap_delete(m, &k), -EINVAL);
    CHECK_EQ(gmap_get_next_key(m, NULL, &next), 0);
    CHECK_EQ(next, 0);
    CHECK_EQ(gmap_get_next_key(m, &k, &next), 0);   /* out of range -> first */
    CHECK_EQ(next, 0);
    k = 6;
    CHECK_EQ(gmap_get_next_key(m, &k, &next), 0);
    CHECK_EQ(next, 7);
    k = 7;
    CHECK_EQ(gmap_get_next_key(m, &k, &next), -ENOENT);
    /* values are zero-initialised */
    k = 0;
    CHECK_EQ(gmap_lookup_copy(m, &k, out), 0);
    CHECK_EQ(out[0], 0);
    CHECK(gmap_memory_bytes(m) >= 8 * 16);
    CHECK(gmap_memory_bytes(m) < 4096);   /* sized by its definition */
    t_destroy(m);
}

static void test_percpu_array(void)
{
    size_t n = (size_t)gmap_possible_cpus();
    CHECK(n >= 1);
    struct gmap_def d = def(GMAP_PERCPU_ARRAY, 4, 4, 4, 0);
    struct gmap *m = t_create(&d);
    uint32_t k = 1;
    uint64_t *all = calloc(n, 8);   /* stride round_up(4, 8) = 8 */
    for (size_t c = 0; c < n; c++)
        all[c] = 100 + (uint64_t)c;
    CHECK_EQ(gmap_update_copy(m, &k, all, GMAP_ANY), 0);
    uint32_t *mine = gmap_lookup(m, &k);
    int cpu = sched_getcpu();
    CHECK(mine != NULL);
    if (mine && cpu >= 0)
        CHECK_EQ(*mine, 100 + cpu);
    uint32_t v = 7;
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);   /* helper form: this CPU only */
    memset(all, 0xff, n * 8);
    CHECK_EQ(gmap_lookup_copy(m, &k, all), 0);
    int sevens = 0;
    for (size_t c = 0; c < n; c++) {
        uint32_t x;
        memcpy(&x, &all[c], 4);
        sevens += x == 7;
        if (x != 7)
            CHECK_EQ(x, 100 + c);
    }
    CHECK_EQ(sevens, 1);
    free(all);
    t_destroy(m);
}

static void test_hash(void)
{
    struct gmap_def d = def(GMAP_HASH, 8, 16, 4, 0);
    struct gmap *m = t_create(&d);
    uint64_t k, out[2], v[2];
    for (k = 1; k <= 4; k++) {
        v[0] = k * 10, v[1] = k;
        CHECK_EQ(gmap_update(m, &k, v, GMAP_NOEXIST), 0);
    }
    k = 5;
    CHECK_EQ(gmap_update(m, &k, v, GMAP_ANY), -E2BIG);
    CHECK_EQ(gmap_update(m, &k, v, GMAP_EXIST), -ENOENT);
    k = 2;
    CHECK_EQ(gmap_update(m, &k, v, GMAP_NOEXIST), -EEXIST);
    v[0] = 99;
    CHECK_EQ(gmap_update(m, &k, v, GMAP_EXIST), 0);   /* replace works when full */
    CHECK_EQ(gmap_lookup_copy(m, &k, out), 0);
    CHECK_EQ(out[0], 99);
    uint64_t *p = gmap_lookup(m, &k);
    CHECK(p && p[0] == 99);
    CHECK_EQ(gmap_update(m, &k, v, 4), -EINVAL);
    CHECK_EQ(gmap_update(m, &k, v, GMAP_F_LOCK), -EINVAL);
    /* iteration visits each key once, then -ENOENT */
    uint64_t seen = 0, cur, nk;
    int steps = 0, r;
    for (r = gmap_get_next_key(m, NULL, &nk); r == 0 && steps < 10; r = gmap_get_next_key(m, &cur, &nk)) {
        CHECK(nk >= 1 && nk <= 4 && !(seen & (1u << nk)));
        seen |= 1u << nk;
        cur = nk;
        steps++;
    }
    CHECK_EQ(r, -ENOENT);
    CHECK_EQ(seen, 0x1e);
    k = 77;   /* a missing key restarts from the first */
    CHECK_EQ(gmap_get_next_key(m, &k, &nk), 0);
    k = 3;
    CHECK_EQ(gmap_lookup_and_delete(m, &k, out), 0);
    CHECK_EQ(out[0], 30);
    CHECK_EQ(gmap_delete(m, &k), -ENOENT);
    CHECK_EQ(gmap_lookup_copy(m, &k, out), -ENOENT);
    CHECK(gmap_lookup(m, &k) == NULL);
    k = 5;
    CHECK_EQ(gmap_update(m, &k, v, GMAP_ANY), 0);   /* room again */
    t_consistent(m);
    t_destroy(m);

    /* bigger: many inserts/deletes keep the invariants */
    d = def(GMAP_HASH, 4, 4, 1000, 0);
    m = t_create(&d);
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_EQ(gmap_update(m, &i, &i, GMAP_ANY), 0);
    for (uint32_t i = 0; i < 1000; i += 2)
        CHECK_EQ(gmap_delete(m, &i), 0);
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t o;
        CHECK_EQ(gmap_lookup_copy(m, &i, &o), i % 2 ? 0 : -ENOENT);
        if (i % 2)
            CHECK_EQ(o, i);
    }
    t_consistent(m);
    t_destroy(m);
}

/* gmap_array_layout describes exactly where lookups point, for the JIT. */
static void test_array_layout(void)
{
    struct gmap_def d = def(GMAP_ARRAY, 4, 12, 5, 0);
    struct gmap *m = t_create(&d);
    void *values;
    uint64_t stride, pcs;
    CHECK_EQ(gmap_array_layout(m, &values, &stride, &pcs), 0);
    CHECK_EQ(stride, 16);
    CHECK_EQ(pcs, 0);
    for (uint32_t k = 0; k < 5; k++)
        CHECK(gmap_lookup(m, &k) == (char *)values + k * stride);
    t_destroy(m);
    d = def(GMAP_PERCPU_ARRAY, 4, 8, 3, 0);
    m = t_create(&d);
    CHECK_EQ(gmap_array_layout(m, &values, &stride, &pcs), 0);
    CHECK_EQ(stride, 8);
    CHECK_EQ(pcs, 3 * 8);
    int cpu = sched_getcpu();
    uint32_t k = 2;
    if (cpu >= 0)
        CHECK(gmap_lookup(m, &k) == (char *)values + (uint64_t)cpu * pcs + k * stride);
    t_destroy(m);
    d = def(GMAP_HASH, 4, 8, 3, 0);
    m = t_create(&d);
    CHECK_EQ(gmap_array_layout(m, &values, &stride, &pcs), -EINVAL);
    t_destroy(m);
}

/* Updates of present keys with small values write in place: a pointer from
 * an earlier lookup sees the new value, flags still apply, nothing leaks. */
static void test_hash_update_in_place(void)
{
    struct gmap_def d = def(GMAP_HASH, 4, 4, 2, 0);
    struct gmap *m = t_create(&d);
    uint32_t k = 1, v = 10;
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);
    uint32_t *p = gmap_lookup(m, &k);
    CHECK(p && *p == 10);
    v = 11;
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_EXIST), 0);
    CHECK(p && *p == 11);
    v = 12;
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_NOEXIST), -EEXIST);
    CHECK(p && *p == 11);
    for (int i = 0; i < 100; i++) {   /* a full map keeps taking replacements */
        v = (uint32_t)i;
        CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);
        uint32_t k2 = 2;
        CHECK_EQ(gmap_update(m, &k2, &v, GMAP_ANY), 0);
    }
    uint32_t out = 0;
    CHECK_EQ(gmap_lookup_copy(m, &k, &out), 0);
    CHECK_EQ(out, 99);
    k = 3;
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), -E2BIG);
    t_consistent(m);
    t_destroy(m);
    /* per-CPU: a program's update of a present key changes only its CPU's copy */
    size_t n = (size_t)gmap_possible_cpus();
    d = def(GMAP_PERCPU_HASH, 4, 8, 4, 0);
    m = t_create(&d);
    uint64_t *all = calloc(n, 8), w = 77;
    for (size_t c = 0; c < n; c++)
        all[c] = c + 1;
    k = 5;
    CHECK_EQ(gmap_update_copy(m, &k, all, GMAP_ANY), 0);
    CHECK_EQ(gmap_update(m, &k, &w, GMAP_EXIST), 0);
    memset(all, 0, n * 8);
    CHECK_EQ(gmap_lookup_copy(m, &k, all), 0);
    int cpu = sched_getcpu(), sevens = 0;
    for (size_t c = 0; c < n; c++) {
        if (all[c] == 77)
            sevens++;
        else
            CHECK_EQ(all[c], c + 1);
    }
    CHECK_EQ(sevens, 1);
    if (cpu >= 0)
        CHECK_EQ(all[cpu], 77);
    free(all);
    t_consistent(m);
    t_destroy(m);
}

static void test_percpu_hash(void)
{
    size_t n = (size_t)gmap_possible_cpus();
    struct gmap_def d = def(GMAP_PERCPU_HASH, 4, 8, 16, 0);
    struct gmap *m = t_create(&d);
    uint32_t k = 9;
    uint64_t v = 5, *all = calloc(n, 8);
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);   /* new key: this CPU 5, others 0 */
    CHECK_EQ(gmap_lookup_copy(m, &k, all), 0);
    uint64_t sum = 0;
    for (size_t c = 0; c < n; c++)
        sum += all[c];
    CHECK_EQ(sum, 5);
    for (size_t c = 0; c < n; c++)
        all[c] = (uint64_t)c + 1;
    CHECK_EQ(gmap_update_copy(m, &k, all, GMAP_EXIST), 0);
    memset(all, 0, n * 8);
    CHECK_EQ(gmap_lookup_copy(m, &k, all), 0);
    for (size_t c = 0; c < n; c++)
        CHECK_EQ(all[c], c + 1);
    uint64_t *mine = gmap_lookup(m, &k);
    int cpu = sched_getcpu();
    CHECK(mine && (cpu < 0 || *mine == (uint64_t)cpu + 1));
    free(all);
    t_consistent(m);
    t_destroy(m);
}

static void test_lru(uint32_t type)
{
    struct gmap_def d = def(type, 4, 8, 8, 0);
    struct gmap *m = t_create(&d);
    size_t n = (size_t)gmap_possible_cpus();
    uint64_t *buf = calloc(n, 8);
    for (uint32_t k = 0; k < 8; k++)
        CHECK_EQ(gmap_update(m, &k, &buf[0], GMAP_NOEXIST), 0);
    /* touch keys 0..3 so the clock spares them */
    for (uint32_t k = 0; k < 4; k++)
        CHECK(gmap_lookup(m, &k) != NULL);
    for (uint32_t k = 100; k < 104; k++)   /* full: inserting evicts, even with NOEXIST */
        CHECK_EQ(gmap_update(m, &k, &buf[0], GMAP_NOEXIST), 0);
    uint32_t present = 0, recent = 0;
    for (uint32_t k = 0; k < 8; k++) {
        if (gmap_lookup_copy(m, &k, buf) == 0) {
            present++;
            recent += k < 4;
        }
    }
    for (uint32_t k = 100; k < 104; k++)
        CHECK_EQ(gmap_lookup_copy(m, &k, buf), 0);
    CHECK_EQ(present, 4);
    CHECK_EQ(recent, 4);   /* the referenced keys survived */
    uint32_t k = 100;
    CHECK_EQ(gmap_update(m, &k, buf, GMAP_NOEXIST), -EEXIST);
    k = 555;
    CHECK_EQ(gmap_update(m, &k, buf, GMAP_EXIST), -ENOENT);
    t_consistent(m);
    free(buf);
    t_destroy(m);
    struct graft_err err;
    d = def(type, 4, 8, 8, GMAP_F_NO_PREALLOC);
    CHECK(gmap_create(&d, -1, &m, &err) < 0);
}

struct lpm_key { uint32_t plen; uint8_t addr[4]; };

static void test_lpm(void)
{
    struct gmap_def d = def(GMAP_LPM_TRIE, 8, 4, 4, GMAP_F_NO_PREALLOC);
    struct gmap *m = t_create(&d);
    struct lpm_key k8 = { 8, { 10, 0, 0, 0 } }, k16 = { 16, { 10, 1, 0, 0 } },
                   k24 = { 24, { 10, 1, 2, 99 } }, k0 = { 0, { 0 } };
    uint32_t v = 8, out;
    CHECK_EQ(gmap_update(m, &k8, &v, GMAP_NOEXIST), 0);
    v = 16;
    CHECK_EQ(gmap_update(m, &k16, &v, GMAP_ANY), 0);
    v = 24;
    CHECK_EQ(gmap_update(m, &k24, &v, GMAP_ANY), 0);
    struct lpm_key q = { 32, { 10, 1, 2, 3 } };
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), 0);
    CHECK_EQ(out, 24);
    q = (struct lpm_key){ 32, { 10, 1, 3, 3 } };
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), 0);
    CHECK_EQ(out, 16);
    q = (struct lpm_key){ 32, { 10, 2, 3, 3 } };
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), 0);
    CHECK_EQ(out, 8);
    q = (struct lpm_key){ 12, { 10, 1, 2, 3 } };   /* key's prefixlen limits the match */
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), 0);
    CHECK_EQ(out, 8);
    q = (struct lpm_key){ 32, { 11, 1, 2, 3 } };
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), -ENOENT);
    q = (struct lpm_key){ 33, { 10, 1, 2, 3 } };
    CHECK_EQ(gmap_update(m, &q, &v, GMAP_ANY), -EINVAL);
    CHECK_EQ(gmap_update(m, &k8, &v, GMAP_NOEXIST), -EEXIST);
    CHECK_EQ(gmap_update(m, &k0, &v, GMAP_EXIST), -ENOENT);
    v = 0;
    CHECK_EQ(gmap_update(m, &k0, &v, GMAP_ANY), 0);
    CHECK_EQ(gmap_update(m, &q, &v, 4), -EINVAL);
    struct lpm_key k30 = { 30, { 1, 2, 3, 4 } };
    CHECK_EQ(gmap_update(m, &k30, &v, GMAP_ANY), -ENOSPC);
    v = 80;
    CHECK_EQ(gmap_update(m, &k8, &v, GMAP_ANY), 0);   /* replace when full */
    q = (struct lpm_key){ 32, { 11, 1, 2, 3 } };
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), 0);
    CHECK_EQ(out, 0);   /* default route */
    /* iteration returns each stored key exactly as given */
    int found = 0, r;
    struct lpm_key cur, nk;
    for (r = gmap_get_next_key(m, NULL, &nk); r == 0 && found < 10; r = gmap_get_next_key(m, &cur, &nk)) {
        if (nk.plen == 24)
            CHECK_EQ(nk.addr[3], 99);
        cur = nk;
        found++;
    }
    CHECK_EQ(r, -ENOENT);
    CHECK_EQ(found, 4);
    CHECK_EQ(gmap_delete(m, &k16), 0);
    CHECK_EQ(gmap_delete(m, &k16), -ENOENT);
    q = (struct lpm_key){ 32, { 10, 1, 3, 3 } };
    CHECK_EQ(gmap_lookup_copy(m, &q, &out), 0);
    CHECK_EQ(out, 80);
    uint32_t *pv = gmap_lookup(m, &q);
    CHECK(pv && *pv == 80);
    t_consistent(m);
    t_destroy(m);
}

static void test_queue_stack(void)
{
    struct gmap_def d = def(GMAP_QUEUE, 0, 4, 3, 0);
    struct gmap *m = t_create(&d);
    uint32_t v, o;
    CHECK_EQ(gmap_pop(m, &o), -ENOENT);
    for (v = 1; v <= 3; v++)
        CHECK_EQ(gmap_push(m, &v, GMAP_ANY), 0);
    CHECK_EQ(gmap_push(m, &v, GMAP_ANY), -E2BIG);
    CHECK_EQ(gmap_push(m, &v, GMAP_NOEXIST), -EINVAL);
    CHECK_EQ(gmap_push(m, &v, 8), -EINVAL);
    CHECK_EQ(gmap_push(m, &v, GMAP_EXIST), 0);   /* overwrites oldest: 2 3 4 */
    CHECK_EQ(gmap_peek(m, &o), 0);
    CHECK_EQ(o, 2);
    CHECK_EQ(gmap_lookup_and_delete(m, NULL, &o), 0);
    CHECK_EQ(o, 2);
    CHECK_EQ(gmap_pop(m, &o), 0);
    CHECK_EQ(o, 3);
    CHECK_EQ(gmap_lookup_copy(m, NULL, &o), 0);
    CHECK_EQ(o, 4);
    CHECK_EQ(gmap_pop(m, &o), 0);
    CHECK_EQ(gmap_pop(m, &o), -ENOENT);
    CHECK_EQ(gmap_delete(m, NULL), -EINVAL);
    CHECK_EQ(gmap_get_next_key(m, NULL, &o), -EINVAL);
    t_consistent(m);
    t_destroy(m);

    d = def(GMAP_STACK, 0, 4, 3, 0);
    m = t_create(&d);
    for (v = 1; v <= 3; v++)
        CHECK_EQ(gmap_update_copy(m, NULL, &v, GMAP_ANY), 0);
    CHECK_EQ(gmap_push(m, &v, GMAP_ANY), -E2BIG);
    v = 9;
    CHECK_EQ(gmap_push(m, &v, GMAP_EXIST), 0);   /* drops the oldest (1): 2 3 9 */
    CHECK_EQ(gmap_peek(m, &o), 0);
    CHECK_EQ(o, 9);
    uint32_t expect[] = { 9, 3, 2 };
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gmap_pop(m, &o), 0);
        CHECK_EQ(o, expect[i]);
    }
    CHECK_EQ(gmap_peek(m, &o), -ENOENT);
    t_destroy(m);
}

static void test_bloom(void)
{
    struct gmap_def d = def(GMAP_BLOOM_FILTER, 0, 8, 100, 0);
    d.map_extra = 3;
    struct gmap *m = t_create(&d);
    for (uint64_t v = 0; v < 100; v += 2)
        CHECK_EQ(gmap_push(m, &v, GMAP_ANY), 0);
    uint64_t v = 1;
    CHECK_EQ(gmap_push(m, &v, GMAP_EXIST), -EINVAL);
    int fp = 0;
    for (v = 0; v < 100; v++) {
        int r = gmap_peek(m, &v);
        if (v % 2 == 0)
            CHECK_EQ(r, 0);   /* no false negatives */
        else
            fp += r == 0;
    }
    CHECK(fp < 25);
    CHECK_EQ(gmap_pop(m, &v), -ENOTSUP);
    CHECK_EQ(gmap_delete(m, &v), -EOPNOTSUPP);
    v = 4;
    CHECK_EQ(gmap_lookup_copy(m, NULL, &v), 0);
    t_destroy(m);
}

static struct gmap *inner_maps[4];

static struct gmap *by_id(uint32_t id)
{
    return id >= 1 && id <= 3 ? inner_maps[id] : NULL;
}

static void test_map_in_map(void)
{
    struct gmap_def in = def(GMAP_ARRAY, 4, 8, 2, 0);
    for (int i = 1; i <= 2; i++)
        inner_maps[i] = t_create(&in);
    struct gmap_def other = def(GMAP_HASH, 4, 8, 2, 0);
    inner_maps[3] = t_create(&other);
    gmap_set_resolver(by_id);

    struct gmap_def d = def(GMAP_ARRAY_OF_MAPS, 4, 4, 4, 0);
    d.inner_map_type = GMAP_ARRAY, d.inner_key_size = 4, d.inner_value_size = 8, d.inner_max_entries = 2;
    struct gmap *m = t_create(&d);
    uint32_t k = 1, id = 2, out;
    CHECK(gmap_lookup(m, &k) == NULL);
    CHECK_EQ(gmap_lookup_copy(m, &k, &out), -ENOENT);
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_ANY), 0);
    CHECK(gmap_lookup(m, &k) == inner_maps[2]);
    CHECK_EQ(gmap_lookup_copy(m, &k, &out), 0);
    CHECK_EQ(out, 2);
    id = 3;
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_ANY), -EINVAL);   /* wrong inner shape */
    id = 7;
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_ANY), -EBADF);
    id = 1;
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_NOEXIST), -EINVAL);   /* fd arrays: BPF_ANY only */
    k = 4;
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_ANY), -E2BIG);
    k = 1;
    CHECK_EQ(gmap_delete(m, &k), 0);
    CHECK_EQ(gmap_delete(m, &k), -ENOENT);
    t_destroy(m);

    d.type = GMAP_HASH_OF_MAPS;
    d.key_size = 8;
    m = t_create(&d);
    uint64_t hk = 42;
    id = 1;
    CHECK_EQ(gmap_update(m, &hk, &id, GMAP_NOEXIST), 0);
    CHECK(gmap_lookup(m, &hk) == inner_maps[1]);
    CHECK_EQ(gmap_update(m, &hk, &id, GMAP_NOEXIST), -EEXIST);
    id = 9;
    CHECK_EQ(gmap_update(m, &hk, &id, GMAP_ANY), -EBADF);
    CHECK_EQ(gmap_delete(m, &hk), 0);
    CHECK(gmap_lookup(m, &hk) == NULL);
    t_destroy(m);
    gmap_set_resolver(NULL);
    for (int i = 1; i <= 3; i++)
        t_destroy(inner_maps[i]);

    d = def(GMAP_PROG_ARRAY, 4, 4, 4, 0);
    m = t_create(&d);
    k = 2, id = 17;
    CHECK(gmap_lookup(m, &k) == NULL);
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_ANY), 0);
    uint32_t *pid = gmap_lookup(m, &k);
    CHECK(pid && *pid == 17);
    CHECK_EQ(gmap_delete(m, &k), 0);
    CHECK(gmap_lookup(m, &k) == NULL);
    t_destroy(m);
}

/* A consumer written from the kernel's protocol (libbpf ringbuf.c): read
 * producer_pos (acquire), walk headers from consumer_pos, stop at BUSY,
 * skip DISCARD, advance consumer_pos (release). Pages: consumer page,
 * producer page, data at +2 pages mapped twice. */
static int consume_ring(void *pages, size_t size, uint64_t *sum, int *count)
{
    uint64_t *cons = pages;
    uint64_t *prod = (uint64_t *)((uint8_t *)pages + 4096);
    uint8_t *data = (uint8_t *)pages + 2 * 4096;
    uint64_t c = __atomic_load_n(cons, __ATOMIC_ACQUIRE);
    uint64_t p = __atomic_load_n(prod, __ATOMIC_ACQUIRE);
    int got = 0;
    while (c < p) {
        uint32_t *hdr = (uint32_t *)(data + (c & (size - 1)));
        uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        if (len & (1u << 31))
            break;
        uint32_t dlen = len & ~((1u << 31) | (1u << 30));
        if (!(len & (1u << 30))) {
            /* the record is contiguous thanks to the double mapping */
            for (uint32_t i = 0; i < dlen; i++)
                *sum += ((uint8_t *)(hdr + 2))[i];
            (*count)++;
            got++;
        }
        c += (dlen + 8 + 7) / 8 * 8;
        __atomic_store_n(cons, c, __ATOMIC_RELEASE);
    }
    return got;
}

/* The verifier bounds accesses to an inner map by the outer map's
 * template, so a map of another shape must never be reachable through a
 * slot: not stored (whatever writes it), and not returned by a lookup when
 * the id in shared memory names one anyway. */
static void test_map_in_map_template(void)
{
    struct gmap_def in = def(GMAP_ARRAY, 4, 64, 16, 0);
    inner_maps[1] = t_create(&in);
    struct gmap_def small = def(GMAP_ARRAY, 4, 8, 16, 0);        /* smaller values */
    inner_maps[2] = t_create(&small);
    struct gmap_def rdonly = def(GMAP_ARRAY, 4, 64, 16, GMAP_F_RDONLY_PROG);  /* other flags */
    inner_maps[3] = t_create(&rdonly);

    struct gmap_def d = def(GMAP_ARRAY_OF_MAPS, 4, 4, 4, 0);
    d.inner_map_type = GMAP_ARRAY, d.inner_key_size = 4, d.inner_value_size = 64;
    d.inner_max_entries = 16;
    struct gmap *m = t_create(&d);
    uint32_t k = 0, id = 1;

    /* With no resolver the id cannot be checked: refused, not stored. */
    gmap_set_resolver(NULL);
    CHECK_EQ(gmap_update_copy(m, &k, &id, GMAP_ANY), -EBADF);
    CHECK_EQ(gmap_lookup_copy(m, &k, &id), -ENOENT);

    gmap_set_resolver(by_id);
    id = 2;
    CHECK_EQ(gmap_update_copy(m, &k, &id, GMAP_ANY), -EINVAL);   /* value 8 < 64 */
    id = 3;
    CHECK_EQ(gmap_update_copy(m, &k, &id, GMAP_ANY), -EINVAL);   /* RDONLY_PROG */
    d.inner_map_flags = GMAP_F_RDONLY_PROG;
    struct gmap *ro_outer = t_create(&d);
    CHECK_EQ(gmap_update_copy(ro_outer, &k, &id, GMAP_ANY), 0);   /* the template says so */
    CHECK(gmap_lookup(ro_outer, &k) == inner_maps[3]);
    t_destroy(ro_outer);
    id = 1;
    CHECK_EQ(gmap_update_copy(m, &k, &id, GMAP_ANY), 0);
    CHECK(gmap_lookup(m, &k) == inner_maps[1]);

    /* The slot says 1; in this process 1 is now the small map (as when
     * another process wrote an id this process resolves differently). */
    struct gmap *good = inner_maps[1];
    inner_maps[1] = inner_maps[2];
    CHECK(gmap_lookup(m, &k) == NULL);
    inner_maps[1] = good;
    CHECK(gmap_lookup(m, &k) == inner_maps[1]);
    t_destroy(m);

    /* An outer map without a template cannot hold anything. */
    struct gmap_def bare = def(GMAP_HASH_OF_MAPS, 4, 4, 4, 0);
    m = t_create(&bare);
    CHECK_EQ(gmap_update(m, &k, &id, GMAP_ANY), -EINVAL);
    t_destroy(m);
    gmap_set_resolver(NULL);
    for (int i = 1; i <= 3; i++)
        t_destroy(inner_maps[i]);
}

static void test_ringbuf(void)
{
    struct gmap_def d = def(GMAP_RINGBUF, 0, 0, 4096, 0);
    struct gmap *m = t_create(&d);
    uint8_t *pages = gmap_ringbuf_pages(m);
    CHECK(pages != NULL);
    CHECK_EQ(gmap_ringbuf_query(m, 1), 4096);
    uint64_t want = 0, sum = 0;
    int count = 0, produced = 0;
    uint8_t buf[300];
    /* many rounds of varying sizes: records wrap around the end */
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round * 37) % 299;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(round + i);
        if (round % 3 == 0) {
            consume_ring(pages, 4096, &sum, &count);
            uint8_t *rec = gmap_ringbuf_reserve(m, n, 0);
            CHECK(rec != NULL);
            if (!rec)
                break;
            CHECK_EQ((uintptr_t)rec % 8, 0);
            /* header: len with BUSY, pg_off from the map start in pages
             * (while BUSY, the producer's table index above bit 24) */
            uint32_t *hdr = (uint32_t *)rec - 2;
            uint32_t pg_off = (uint32_t)(((uint8_t *)hdr - (pages - 4096)) / 4096);
            CHECK_EQ(hdr[0], n | (1u << 31));
            CHECK_EQ(hdr[1] & 0xffffff, pg_off);
            CHECK(hdr[1] >> 24 != 0);
            CHECK_EQ(consume_ring(pages, 4096, &sum, &count), 0);   /* busy blocks */
            memcpy(rec, buf, n);
            if (round % 2) {
                gmap_ringbuf_discard(rec, 0);
                CHECK_EQ(hdr[0], n | (1u << 30));
            } else {
                gmap_ringbuf_submit(rec, 0);
                CHECK_EQ(hdr[0], n);
                produced++;
                for (size_t i = 0; i < n; i++)
                    want += buf[i];
            }
            CHECK_EQ(hdr[1], pg_off);     /* the kernel's header, exactly */
        } else {
            CHECK_EQ(gmap_ringbuf_output(m, buf, n, 0), 0);
            produced++;
            for (size_t i = 0; i < n; i++)
                want += buf[i];
        }
        if (round % 5 == 4)
            consume_ring(pages, 4096, &sum, &count);
    }
    consume_ring(pages, 4096, &sum, &count);
    CHECK_EQ(count, produced);
    CHECK_EQ(sum, want);
    CHECK_EQ(gmap_ringbuf_query(m, 0), 0);
    CHECK(gmap_ringbuf_query(m, 3) > 4096);   /* wrapped at least once */
    /* full: at most size - 1 bytes may be outstanding */
    CHECK(gmap_ringbuf_reserve(m, 4096, 0) == NULL);
    CHECK(gmap_ringbuf_reserve(m, 8, 1) == NULL);
    CHECK_EQ(gmap_ringbuf_output(m, buf, 8, 4), -EINVAL);
    int ok = 0;
    while (gmap_ringbuf_output(m, buf, 100, 0) == 0)
        ok++;
    CHECK_EQ(ok, 4095 / 112);
    CHECK_EQ(gmap_ringbuf_output(m, buf, 100, 0), -EAGAIN);
    t_consistent(m);
    t_destroy(m);
}

/* Reads a perf buffer like libbpf's perf_buffer: records between data_tail
 * and data_head (acquire), copied out when they wrap; then data_tail. */
static void consume_perf(struct perf_event_mmap_page *pg, uint64_t *samples, uint64_t *lost, uint64_t *sum)
{
    uint8_t *ring = (uint8_t *)pg + pg->data_offset;
    uint64_t size = pg->data_size;
    uint64_t head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE), tail = pg->data_tail;
    while (tail < head) {
        uint8_t rec[65536];
        struct perf_event_header eh;
        for (size_t i = 0; i < sizeof(eh); i++)
            ((uint8_t *)&eh)[i] = ring[(tail + i) & (size - 1)];
        for (size_t i = 0; i < eh.size; i++)
            rec[i] = ring[(tail + i) & (size - 1)];
        if (eh.type == PERF_RECORD_SAMPLE) {
            uint32_t n;
            memcpy(&n, rec + 8, 4);
            (*samples)++;
            for (uint32_t i = 0; i < n; i++)
                *sum += rec[12 + i];
        } else if (eh.type == PERF_RECORD_LOST) {
            uint64_t l;
            memcpy(&l, rec + 16, 8);
            *lost += l;
        }
        tail += eh.size;
    }
    __atomic_store_n(&pg->data_tail, tail, __ATOMIC_RELEASE);
}

static void test_perf(void)
{
    struct gmap_def d = def(GMAP_PERF_EVENT_ARRAY, 4, 4, 2, 0);
    d.map_extra = 4096;
    struct gmap *m = t_create(&d);
    struct perf_event_mmap_page *pg = gmap_perf_page(m, 1);
    CHECK(pg != NULL);
    CHECK_EQ((uint8_t *)&pg->data_head - (uint8_t *)pg, 1024);
    CHECK_EQ(pg->data_size, 4096);
    uint8_t buf[200];
    memset(buf, 1, sizeof(buf));
    uint64_t samples = 0, lost = 0, sum = 0, sent = 0, failed = 0;
    for (int i = 0; i < 100; i++) {
        int r = gmap_perf_output(m, 1, buf, 1 + (size_t)(i * 53) % 199);
        if (r == 0) {
            sent++;
        } else {
            CHECK_EQ(r, -ENOSPC);
            failed++;
        }
        if (i % 40 == 39)
            consume_perf(pg, &samples, &lost, &sum);
    }
    consume_perf(pg, &samples, &lost, &sum);
    CHECK(failed > 0);
    CHECK_EQ(gmap_perf_output(m, 1, buf, 4), 0);   /* reports the losses first */
    sent++;
    consume_perf(pg, &samples, &lost, &sum);
    CHECK_EQ(samples, sent);
    CHECK_EQ(lost, failed);
    CHECK_EQ(gmap_perf_output(m, 2, buf, 4), -E2BIG);
    CHECK_EQ(gmap_perf_output(m, 1ull << 32, buf, 4), -EINVAL);
    CHECK_EQ(gmap_perf_output(m, 0xffffffffull, buf, 4), 0);   /* this CPU (mod 2) */
    t_destroy(m);
}

static void test_reopen_and_dump(void)
{
    struct gmap_def d = def(GMAP_HASH, 4, 8, 16, 0);
    snprintf(d.name, sizeof(d.name), "dumpme");
    struct gmap *m = t_create(&d);
    uint32_t k = 7;
    uint64_t v = 1234;
    CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);
    struct gmap *o;
    struct graft_err err;
    CHECK_EQ(gmap_open(gmap_shm_name(m), &o, &err), 0);
    uint64_t out = 0;
    CHECK_EQ(gmap_lookup_copy(o, &k, &out), 0);
    CHECK_EQ(out, 1234);
    CHECK_EQ(strcmp(gmap_get_def(o)->name, "dumpme"), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_EQ(gmap_dump_json(o, f), 0);
    fclose(f);
    CHECK(strstr(text, "\"name\":\"dumpme\"") != NULL);
    CHECK(strstr(text, "\"type\":\"hash\"") != NULL);
    CHECK(strstr(text, "{\"key\":7,\"value\":1234}") != NULL);
    free(text);
    gmap_close(o);
    CHECK(gmap_open("/graft.does-not-exist", &o, &err) < 0);
    t_destroy(m);
}

/* A handle moved out of the heap (the agent puts it in a page tagged with
 * the extension key) keeps working, and closing it leaves its memory to its
 * owner: this page stays mapped and readable. */
static void test_handle_move(void)
{
    struct gmap_def d = def(GMAP_HASH, 8, 16, 4, 0);
    struct gmap *m = t_create(&d);
    uint64_t k = 7, v[2] = { 70, 7 }, out[2] = { 0, 0 };
    CHECK_EQ(gmap_update(m, &k, v, GMAP_NOEXIST), 0);
    CHECK(gmap_handle_size() > 0 && gmap_handle_size() <= 4096);
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    struct gmap *moved = gmap_handle_move(m, page);
    CHECK(moved == page);
    CHECK_EQ(gmap_lookup_copy(moved, &k, out), 0);
    CHECK_EQ(out[0], 70);
    k = 8;
    CHECK_EQ(gmap_update(moved, &k, v, GMAP_NOEXIST), 0);
    CHECK_EQ(gmap_get_def(moved)->max_entries, 4);
    /* moving a moved handle again does not free the first page */
    void *page2 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    moved = gmap_handle_move(moved, page2);
    CHECK(moved == page2 && gmap_lookup_copy(moved, &k, out) == 0);
    char name[64];
    snprintf(name, sizeof(name), "%s", gmap_shm_name(moved));
    uint64_t word0 = *(volatile uint64_t *)page2;
    gmap_close(moved);                  /* free() of page2 would abort here */
    gmap_unlink(name);
    CHECK_EQ(*(volatile uint64_t *)page2, word0);        /* left as it was */
    munmap(page, 4096);
    munmap(page2, 4096);
}

int main(void)
{
    /* per-CPU checks compare against sched_getcpu(): stay on one CPU */
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof(set), &set);
    test_bad_defs();
    test_array();
    test_percpu_array();
    test_hash();
    test_percpu_hash();
    test_array_layout();
    test_hash_update_in_place();
    test_lru(GMAP_LRU_HASH);
    test_lru(GMAP_LRU_PERCPU_HASH);
    test_lpm();
    test_queue_stack();
    test_bloom();
    test_map_in_map();
    test_map_in_map_template();
    test_ringbuf();
    test_perf();
    test_reopen_and_dump();
    test_handle_move();
    return t_done("test_maps_types");
}
