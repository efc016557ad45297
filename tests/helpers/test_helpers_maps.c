/*
 * test_helpers_maps.c - the map helpers on real shared-memory maps: hash and
 * array element access with the kernel's errors, queue push/pop/peek, ring
 * buffer reserve/submit/discard/output/query, for_each_map_elem through a
 * callback invoker, and bpf_spin_lock protecting a counter that two
 * processes increment at once (including recovery from a dead holder).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "maps/maps.h"
#include "th.h"

static struct gmap *make_map(uint32_t type, uint32_t key, uint32_t value, uint32_t max)
{
    struct gmap_def def;
    struct graft_err err;
    struct gmap *m = NULL;

    memset(&def, 0, sizeof(def));
    def.type = type;
    def.key_size = key;
    def.value_size = value;
    def.max_entries = max;
    snprintf(def.name, sizeof(def.name), "helpers_test_%u", type);
    if (gmap_create(&def, -1, &m, &err) != 0) {
        fprintf(stderr, "gmap_create(type %u): %s\n", type, err.msg);
        exit(2);
    }
    return m;
}

static void drop_map(struct gmap *m)
{
    char name[256];
    snprintf(name, sizeof(name), "%s", gmap_shm_name(m));
    gmap_close(m);
    gmap_unlink(name);
}

static void test_hash(void)
{
    struct gmap *m = make_map(GMAP_HASH, 4, 8, 4);
    uint32_t k = 7;
    uint64_t v = 1000;

    CHECK(H("map_lookup_elem", m, &k) == 0);
    CHECK_EQ((int64_t)H("map_delete_elem", m, &k), -ENOENT);
    CHECK_EQ((int64_t)H("map_update_elem", m, &k, &v, GMAP_EXIST), -ENOENT);
    CHECK_EQ((int64_t)H("map_update_elem", m, &k, &v, GMAP_ANY), 0);
    CHECK_EQ((int64_t)H("map_update_elem", m, &k, &v, GMAP_NOEXIST), -EEXIST);
    uint64_t *p = (uint64_t *)(uintptr_t)H("map_lookup_elem", m, &k);
    CHECK(p && *p == 1000);
    if (p)
        *p = 1001;                            /* lookup gives the value in place */
    uint64_t got = 0;
    CHECK_EQ(gmap_lookup_copy(m, &k, &got), 0);
    CHECK_EQ(got, 1001);
    for (uint32_t i = 100; i < 103; i++)
        CHECK_EQ((int64_t)H("map_update_elem", m, &i, &v, GMAP_ANY), 0);
    uint32_t extra = 200;
    CHECK_EQ((int64_t)H("map_update_elem", m, &extra, &v, GMAP_ANY), -E2BIG);
    CHECK_EQ((int64_t)H("map_delete_elem", m, &k), 0);
    CHECK(H("map_lookup_elem", m, &k) == 0);
    drop_map(m);
}

static uint64_t c_invoker(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3,
                          uint64_t a4, uint64_t a5)
{
    return ((gvm_helper_fn)(uintptr_t)fn)(a1, a2, a3, a4, a5);
}

struct iter_ctx { struct gmap *map; uint64_t key_sum, value_sum; uint32_t stop_at, calls; };

static uint64_t visit(uint64_t map, uint64_t key, uint64_t value, uint64_t ctx, uint64_t r5)
{
    struct iter_ctx *c = (struct iter_ctx *)(uintptr_t)ctx;
    if ((struct gmap *)(uintptr_t)map != c->map)
        c->key_sum = 1ull << 60;              /* poison: wrong map argument */
    c->key_sum += *(uint32_t *)(uintptr_t)key;
    c->value_sum += *(uint64_t *)(uintptr_t)value;
    return ++c->calls == c->stop_at;
}

struct churn_ctx { struct gmap *map; uint32_t calls; };

static uint64_t churn(uint64_t map, uint64_t key, uint64_t value, uint64_t ctx, uint64_t r5)
{
    struct churn_ctx *c = (struct churn_ctx *)(uintptr_t)ctx;
    uint32_t k = *(uint32_t *)(uintptr_t)key, next = k + 1;
    uint64_t v = 0;
    gmap_delete(c->map, &k);
    gmap_update(c->map, &next, &v, GMAP_ANY);
    return ++c->calls >= 1000;
}

static void test_array_for_each(void)
{
    struct gmap *m = make_map(GMAP_ARRAY, 4, 8, 5);
    gvm_helper_fn cb = visit;
    struct iter_ctx c = { m, 0, 0, 0, 0 };

    for (uint32_t i = 0; i < 5; i++) {
        uint64_t v = 10 * (i + 1);
        CHECK_EQ((int64_t)H("map_update_elem", m, &i, &v, GMAP_ANY), 0);
    }
    uint32_t out = 5;
    uint64_t v = 0;
    CHECK_EQ((int64_t)H("map_update_elem", m, &out, &v, GMAP_ANY), -E2BIG);
    CHECK_EQ((int64_t)H("map_delete_elem", m, &out), -EINVAL);   /* arrays */

    CHECK_EQ((int64_t)H("for_each_map_elem", m, cb, &c, 0), -EOPNOTSUPP);
    ghelper_set_callback_invoker(c_invoker);
    CHECK_EQ((int64_t)H("for_each_map_elem", m, cb, &c, 0), 5);
    CHECK_EQ(c.key_sum, 0 + 1 + 2 + 3 + 4);
    CHECK_EQ(c.value_sum, 150);
    c = (struct iter_ctx){ m, 0, 0, 2, 0 };
    CHECK_EQ((int64_t)H("for_each_map_elem", m, cb, &c, 0), 2);
    CHECK_EQ(c.value_sum, 30);
    CHECK_EQ((int64_t)H("for_each_map_elem", m, cb, &c, 1), -EINVAL);
    drop_map(m);

    /* A hash map: visits exactly the elements present. */
    m = make_map(GMAP_HASH, 4, 8, 16);
    for (uint32_t k = 1; k <= 3; k++) {
        uint64_t hv = k * 100;
        H("map_update_elem", m, &k, &hv, GMAP_ANY);
    }
    c = (struct iter_ctx){ m, 0, 0, 0, 0 };
    CHECK_EQ((int64_t)H("for_each_map_elem", m, cb, &c, 0), 3);
    CHECK_EQ(c.key_sum, 6);
    CHECK_EQ(c.value_sum, 600);
    drop_map(m);

    /* A callback replacing the element it visits by the next key: the walk
     * restarts from the first element after each deletion, so only the
     * max_entries cap ends it (the verifier's instruction bound counts on
     * at most max_entries calls). The callback gives up after 1000. */
    m = make_map(GMAP_HASH, 4, 8, 4);
    uint32_t k0 = 1;
    uint64_t v0 = 0;
    H("map_update_elem", m, &k0, &v0, GMAP_ANY);
    struct churn_ctx cc = { m, 0 };
    gvm_helper_fn churn_cb = churn;
    CHECK(H("for_each_map_elem", m, churn_cb, &cc, 0) <= 4);
    CHECK(cc.calls <= 4);
    drop_map(m);

    /* Queues cannot be iterated. */
    m = make_map(GMAP_QUEUE, 0, 8, 4);
    CHECK_EQ((int64_t)H("for_each_map_elem", m, cb, &c, 0), -EINVAL);
    drop_map(m);
    ghelper_set_callback_invoker(NULL);
}

static void test_queue_stack(void)
{
    struct gmap *q = make_map(GMAP_QUEUE, 0, 8, 2);
    uint64_t v, out = 99;

    CHECK_EQ((int64_t)H("map_pop_elem", q, &out), -ENOENT);
    CHECK_EQ((int64_t)H("map_peek_elem", q, &out), -ENOENT);
    v = 1; CHECK_EQ((int64_t)H("map_push_elem", q, &v, 0), 0);
    v = 2; CHECK_EQ((int64_t)H("map_push_elem", q, &v, 0), 0);
    v = 3; CHECK_EQ((int64_t)H("map_push_elem", q, &v, 0), -E2BIG);
    v = 3; CHECK_EQ((int64_t)H("map_push_elem", q, &v, 2 /* BPF_EXIST */), 0);
    CHECK_EQ((int64_t)H("map_peek_elem", q, &out), 0);
    CHECK_EQ(out, 2);                          /* oldest (1) was replaced */
    CHECK_EQ((int64_t)H("map_pop_elem", q, &out), 0);
    CHECK_EQ(out, 2);
    CHECK_EQ((int64_t)H("map_pop_elem", q, &out), 0);
    CHECK_EQ(out, 3);
    drop_map(q);

    struct gmap *s = make_map(GMAP_STACK, 0, 8, 4);
    v = 1; H("map_push_elem", s, &v, 0);
    v = 2; H("map_push_elem", s, &v, 0);
    CHECK_EQ((int64_t)H("map_pop_elem", s, &out), 0);
    CHECK_EQ(out, 2);
    drop_map(s);
}

static void test_ringbuf(void)
{
    uint32_t size = (uint32_t)sysconf(_SC_PAGESIZE) * 4;
    struct gmap *rb = make_map(GMAP_RINGBUF, 0, 0, size);
    const uint64_t avail = 0, ring_size = 1, cons = 2, prod = 3;

    CHECK_EQ(H("ringbuf_query", rb, ring_size), size);
    CHECK_EQ(H("ringbuf_query", rb, avail), 0);

    char *s = (char *)(uintptr_t)H("ringbuf_reserve", rb, 16, 0);
    CHECK(s != NULL);
    if (s) {
        memcpy(s, "sample-one", 11);
        H("ringbuf_submit", s, 0);
    }
    uint64_t p1 = H("ringbuf_query", rb, prod);
    CHECK(p1 >= 16 + 8);                        /* header + data, rounded */
    CHECK_EQ(H("ringbuf_query", rb, avail), p1);
    CHECK_EQ(H("ringbuf_query", rb, cons), 0);

    char *d = (char *)(uintptr_t)H("ringbuf_reserve", rb, 32, 0);
    CHECK(d != NULL);
    if (d)
        H("ringbuf_discard", d, 0);
    uint64_t p2 = H("ringbuf_query", rb, prod);
    CHECK(p2 > p1);                             /* a discarded record still takes space */

    /* Reserve failures give NULL: bad flags, bigger than the ring. */
    CHECK(H("ringbuf_reserve", rb, 16, 1) == 0);
    CHECK(H("ringbuf_reserve", rb, size * 2, 0) == 0);

    CHECK_EQ((int64_t)H("ringbuf_output", rb, "hello", 6, 0), 0);
    CHECK(H("ringbuf_query", rb, prod) > p2);
    CHECK_EQ((int64_t)H("ringbuf_output", rb, "hello", 6, 4), -EINVAL);

    /* Records keep the kernel's 8-byte header before the sample: the
     * length, with the discard bit (1 << 30) on discarded ones and the busy
     * bit (1 << 31) cleared once committed; the data stays in place. */
    if (s) {
        CHECK_EQ(*(uint32_t *)(s - 8), 16);
        CHECK(memcmp(s, "sample-one", 11) == 0);
    }
    if (d)
        CHECK_EQ(*(uint32_t *)(d - 8), 32u | (1u << 30));
    drop_map(rb);
}

/* Two processes, one lock in a shared array value, a non-atomic counter. */
struct locked { uint32_t lock; uint32_t pad; uint64_t counter; };

static void bump(struct locked *l, int n)
{
    for (int i = 0; i < n; i++) {
        H("spin_lock", &l->lock);
        uint64_t c = *(volatile uint64_t *)&l->counter;
        *(volatile uint64_t *)&l->counter = c + 1;
        H("spin_unlock", &l->lock);
    }
}

static void test_spin_lock_processes(void)
{
    struct gmap *m = make_map(GMAP_ARRAY, 4, sizeof(struct locked), 1);
    uint32_t k = 0;
    struct locked *l = (struct locked *)(uintptr_t)H("map_lookup_elem", m, &k);
    CHECK(l != NULL);
    if (!l) {
        drop_map(m);
        return;
    }
    const int per = 50000;
    pid_t child = fork();
    if (child == 0) {
        bump(l, per);
        _exit(0);
    }
    bump(l, per);
    int st = 0;
    waitpid(child, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(l->counter, 2 * per);
    CHECK_EQ(l->lock, 0);

    /* A holder that dies inside its critical section: after a second the
     * lock is recovered instead of hanging every other process. */
    child = fork();
    if (child == 0) {
        H("spin_lock", &l->lock);
        _exit(0);                              /* never unlocks */
    }
    waitpid(child, &st, 0);
    CHECK(l->lock != 0);
    H("spin_lock", &l->lock);
    CHECK_EQ(l->lock, (uint32_t)H0("get_current_pid_tgid"));
    H("spin_unlock", &l->lock);
    CHECK_EQ(l->lock, 0);
    drop_map(m);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A lock word holding the caller's own thread id (forged by a program, or
 * a section this thread re-entered) must not make bpf_spin_lock wait for
 * ever: it is taken over after the dead-owner delay. Run in a child so an
 * unbounded wait fails the test instead of hanging it. */
static void test_spin_lock_own_tid(void)
{
    struct gmap *m = make_map(GMAP_ARRAY, 4, sizeof(struct locked), 1);
    uint32_t k = 0;
    struct locked *l = (struct locked *)(uintptr_t)H("map_lookup_elem", m, &k);
    CHECK(l != NULL);
    if (!l) {
        drop_map(m);
        return;
    }
    uint64_t start = now_ms();
    pid_t child = fork();
    if (child == 0) {
        uint32_t me = (uint32_t)H0("get_current_pid_tgid");
        l->lock = me;                          /* what a forging program stores */
        H("spin_lock", &l->lock);
        int held = l->lock == me;
        H("spin_unlock", &l->lock);
        _exit(held && l->lock == 0 ? 0 : 1);
    }
    int st = 0;
    pid_t done = 0;
    while ((done = waitpid(child, &st, WNOHANG)) == 0 && now_ms() - start < 10000)
        usleep(10000);
    if (done == 0) {
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
    }
    uint64_t took = now_ms() - start;
    printf("spin_lock on a word holding the caller's tid returned after %llu ms\n",
           (unsigned long long)took);
    CHECK(done == child);                      /* returned within the 10 s bound */
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    drop_map(m);
}

int main(void)
{
    test_hash();
    test_array_for_each();
    test_queue_stack();
    test_ringbuf();
    test_spin_lock_processes();
    test_spin_lock_own_tid();
    TH_DONE();
}
