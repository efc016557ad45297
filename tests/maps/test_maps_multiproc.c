/*
 * test_maps_multiproc.c - several processes on one map: a child's updates
 * are seen by the parent; concurrent writers keep the invariants; writers
 * killed with SIGKILL at random times never deadlock or corrupt a map; and
 * deterministic "died half-way" states (made with the internal API) are
 * repaired by the next locker.
 */
#define _GNU_SOURCE
#include "tmaps.h"
#include "maps/maps_internal.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct gmap_def def(uint32_t type, uint32_t ks, uint32_t vs, uint32_t max, uint32_t flags)
{
    struct gmap_def d = { .type = type, .key_size = ks, .value_size = vs, .max_entries = max,
                          .map_flags = flags };
    snprintf(d.name, sizeof(d.name), "mp%u", type);
    return d;
}

static struct gmap *reopen(struct gmap *m)
{
    struct gmap *o;
    struct graft_err err;
    if (gmap_open(gmap_shm_name(m), &o, &err)) {
        fprintf(stderr, "child: gmap_open: %s\n", err.msg);
        _exit(2);
    }
    return o;
}

static int wait_ok(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_child_updates_parent_sees(void)
{
    struct gmap_def d = def(GMAP_HASH, 4, 8, 128, 0);
    struct gmap *h = t_create(&d);
    d = def(GMAP_ARRAY, 4, 8, 16, 0);
    struct gmap *a = t_create(&d);
    d = def(GMAP_QUEUE, 0, 4, 16, 0);
    struct gmap *q = t_create(&d);
    pid_t pid = fork();
    if (pid == 0) {
        struct gmap *ch = reopen(h), *ca = reopen(a), *cq = reopen(q);
        for (uint32_t k = 0; k < 100; k++) {
            uint64_t v = k * 3;
            if (gmap_update(ch, &k, &v, GMAP_NOEXIST))
                _exit(3);
        }
        for (uint32_t k = 0; k < 16; k++) {
            uint64_t v = k + 1000;
            gmap_update(ca, &k, &v, GMAP_ANY);
            gmap_push(cq, &k, GMAP_ANY);
        }
        _exit(0);
    }
    CHECK(wait_ok(pid));
    for (uint32_t k = 0; k < 100; k++) {
        uint64_t v = 0;
        CHECK_EQ(gmap_lookup_copy(h, &k, &v), 0);
        CHECK_EQ(v, k * 3);
        uint64_t *p = gmap_lookup(h, &k);
        CHECK(p && *p == k * 3);
    }
    for (uint32_t k = 0; k < 16; k++) {
        uint64_t *p = gmap_lookup(a, &k);
        CHECK(p && *p == k + 1000);
        uint32_t o;
        CHECK_EQ(gmap_pop(q, &o), 0);
        CHECK_EQ(o, k);
    }
    t_consistent(h);
    t_destroy(h);
    t_destroy(a);
    t_destroy(q);
}

/* Random updates/deletes/lookups on keys 0..nkeys-1 for n rounds. */
static void churn(struct gmap *m, uint32_t nkeys, unsigned seed, long n)
{
    const struct gmap_def *d = gmap_get_def(m);
    uint8_t key[16] = { 0 }, val[64] = { 0 };
    for (long i = 0; n < 0 || i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t k = (seed >> 8) % nkeys, op = (seed >> 20) % 8;
        if (d->type == GMAP_LPM_TRIE) {
            uint32_t plen = 8 + k % 25;
            memcpy(key, &plen, 4);
            memcpy(key + 4, &k, 4);
        } else {
            memcpy(key, &k, 4);
        }
        memcpy(val, &i, sizeof(i));
        if (d->type == GMAP_QUEUE) {
            if (op < 4)
                gmap_push(m, val, op & 1 ? GMAP_EXIST : GMAP_ANY);
            else
                gmap_pop(m, val);
        } else if (op < 4) {
            gmap_update(m, key, val, op % 3);
        } else if (op < 6) {
            gmap_delete(m, key);
        } else {
            gmap_lookup(m, key);
        }
    }
}

static void test_concurrent_writers(void)
{
    struct gmap_def d = def(GMAP_HASH, 4, 8, 64, 0);
    struct gmap *m = t_create(&d);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            churn(reopen(m), 100, (unsigned)i * 77 + 1, 20000);
            _exit(0);
        }
    }
    /* lock-free readers meanwhile: values read must be whole */
    for (int i = 0; i < 20000; i++) {
        uint32_t k = (uint32_t)i % 100;
        uint64_t v;
        gmap_lookup_copy(m, &k, &v);
    }
    for (int i = 0; i < 2; i++)
        CHECK(wait_ok(kids[i]));
    t_consistent(m);
    t_destroy(m);
}

/* Kills writers at random moments; afterwards the parent must be able to
 * lock, update, look up and iterate, and the invariants must hold. */
static void test_sigkill(uint32_t type, uint32_t *repairs)
{
    struct gmap_def d;
    if (type == GMAP_LPM_TRIE)
        d = def(type, 8, 8, 48, GMAP_F_NO_PREALLOC);
    else if (type == GMAP_QUEUE)
        d = def(type, 0, 8, 16, 0);
    else
        d = def(type, 4, 8, 48, 0);
    struct gmap *m = t_create(&d);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ type;
    for (int round = 0; round < 12; round++) {
        pid_t kids[2];
        for (int i = 0; i < 2; i++) {
            kids[i] = fork();
            if (kids[i] == 0) {
                churn(reopen(m), 64, seed + (unsigned)round * 31 + (unsigned)i, -1);
                _exit(0);
            }
        }
        seed = seed * 1103515245u + 12345u;
        struct timespec ts = { 0, 200000 + (long)(seed % 2000000) };
        nanosleep(&ts, NULL);
        for (int i = 0; i < 2; i++)
            kill(kids[i], SIGKILL);
        for (int i = 0; i < 2; i++)
            waitpid(kids[i], NULL, 0);
        /* the parent goes on */
        uint8_t key[8] = { 0 }, val[8] = { 1 };
        uint32_t plen = 32;
        memcpy(key, &plen, 4);
        if (type == GMAP_QUEUE) {
            CHECK_EQ(gmap_push(m, val, GMAP_EXIST), 0);
            CHECK_EQ(gmap_pop(m, val), 0);
        } else {
            if (type == GMAP_LPM_TRIE) {
                gmap_delete(m, key);   /* room for our key */
                uint8_t k2[8], nk[8];
                if (gmap_get_next_key(m, NULL, nk) == 0)
                    memcpy(k2, nk, 8), gmap_delete(m, k2);
            }
            int r = gmap_update(m, key, val, GMAP_ANY);
            if (r == -E2BIG) {   /* a full (non-LRU) hash: free a slot */
                uint8_t nk[8];
                CHECK_EQ(gmap_get_next_key(m, NULL, nk), 0);
                CHECK_EQ(gmap_delete(m, nk), 0);
                r = gmap_update(m, key, val, GMAP_ANY);
            }
            CHECK_EQ(r, 0);
            uint8_t out[8 * 256];
            CHECK_EQ(gmap_lookup_copy(m, key, out), 0);
            if (type != GMAP_PERCPU_HASH)
                CHECK_EQ(out[0], 1);
            /* full iteration terminates and sees each key once */
            uint8_t cur[8], nk[8];
            int n = 0, rr;
            for (rr = gmap_get_next_key(m, NULL, nk); rr == 0 && n < 1000;
                 rr = gmap_get_next_key(m, cur, nk), n++)
                memcpy(cur, nk, 8);
            CHECK_EQ(rr, -ENOENT);
            CHECK(n <= 48);
        }
        t_consistent(m);
    }
    *repairs += gmap_repairs(m);
    t_destroy(m);
}

/* Child takes the lock and leaves a chosen half-done state, then dies. */
static void die_in_state(struct gmap *shared, int state)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct gmap *m = reopen(shared);
        gmap_lock(m);
        uint32_t key = 5, hash = hash_key(m, &key), idx, old;
        bool is_new;
        struct gbucket *b = (struct gbucket *)(m->base + m->h->off_a) + (hash & (m->h->n_buckets - 1));
        if (state == 0) {                /* died with a bucket seq odd */
            b->seq++;
        } else if (state == 1) {         /* took a free element, never linked it */
            key = 77;
            hash_insert_locked(m, &key, hash_key(m, &key), GMAP_ANY, &idx, &old, &is_new);
        } else {                         /* replace published, old copy not unlinked */
            hash_insert_locked(m, &key, hash, GMAP_ANY, &idx, &old, &is_new);
            uint64_t v = 555;
            memcpy(hash_elem_value(m, hash_elem(m, idx)), &v, 8);
            b->seq++;
            hash_elem(m, idx)->state = ELEM_USED;
            hash_elem(m, idx)->next = b->head;
            b->head = idx;
        }
        raise(SIGKILL);
    }
    waitpid(pid, NULL, 0);
}

static void test_repair_states(void)
{
    for (int state = 0; state < 3; state++) {
        struct gmap_def d = def(GMAP_HASH, 4, 8, 8, 0);
        struct gmap *m = t_create(&d);
        for (uint32_t k = 0; k < 8; k++) {
            uint64_t v = k;
            CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);
        }
        die_in_state(m, state);
        uint32_t k = 5;
        uint64_t v = 0;
        CHECK_EQ(gmap_lookup_copy(m, &k, &v), 0);   /* seq odd: falls back to the lock */
        CHECK_EQ(v, state == 2 ? 555 : 5);
        t_consistent(m);   /* locks: repairs a leaked element too */
        CHECK_EQ(gmap_repairs(m), 1);
        /* full capacity is back: replace every key, then delete and refill */
        for (k = 0; k < 8; k++)
            CHECK_EQ(gmap_update(m, &k, &v, GMAP_EXIST), 0);
        k = 100;
        CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), -E2BIG);
        k = 1;
        CHECK_EQ(gmap_delete(m, &k), 0);
        k = 100;
        CHECK_EQ(gmap_update(m, &k, &v, GMAP_ANY), 0);
        t_consistent(m);
        t_destroy(m);
    }
}

int main(void)
{
    test_child_updates_parent_sees();
    test_concurrent_writers();
    test_repair_states();
    uint32_t repairs = 0;
    uint32_t types[] = { GMAP_HASH, GMAP_LRU_HASH, GMAP_PERCPU_HASH, GMAP_LPM_TRIE, GMAP_QUEUE };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        test_sigkill(types[i], &repairs);
    printf("writers killed while holding a map lock: %u (each repaired)\n", repairs);
    CHECK(repairs > 0);
    return t_done("test_maps_multiproc");
}
