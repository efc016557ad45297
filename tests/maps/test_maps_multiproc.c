/*
 * test_maps_multiproc.c - several processes on one map: a child's updates
 * are seen by the parent; concurrent writers keep the invariants; writers
 * killed with SIGKILL at random times never deadlock or corrupt a map; and
 * deterministic "died half-way" states (made with the internal API) are
 * repaired by the next locker; ring buffer producers killed between reserve
 * and submit do not stop consumers from receiving every other producer's
 * events.
 */
#define _GNU_SOURCE
#include "tmaps.h"
#include "maps/maps_internal.h"

#include <fcntl.h>
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

/* ---- ring buffer producers killed between reserve and submit ---- */

struct rb_event {
    uint32_t producer, seq;
};

/* A consumer that follows the kernel's protocol to the letter, as libbpf's
 * does: stop at a BUSY record, skip DISCARD ones once BUSY is clear. With
 * recover set it also calls gmap_ringbuf_recover when it stops, as graft's
 * own consumers do. Counts each live producer's events, checking order. */
static int rb_consume(struct gmap *m, uint32_t *next_seq, uint32_t n_prod, int recover)
{
    uint8_t *pages = gmap_ringbuf_pages(m);
    uint64_t *cons = (uint64_t *)pages, *prod = (uint64_t *)(pages + 4096);
    uint8_t *data = pages + 2 * 4096;
    uint64_t mask = gmap_get_def(m)->max_entries - 1;
    int got = 0;
    for (uint64_t c = __atomic_load_n(cons, __ATOMIC_ACQUIRE); c < __atomic_load_n(prod, __ATOMIC_ACQUIRE);) {
        uint32_t len = __atomic_load_n((uint32_t *)(data + (c & mask)), __ATOMIC_ACQUIRE);
        if (len & (1u << 31)) {
            if (recover && gmap_ringbuf_recover(m) > 0)
                continue;
            break;
        }
        uint32_t dlen = len & ~(3u << 30);
        if (!(len & (1u << 30))) {
            struct rb_event e;
            memcpy(&e, data + (c & mask) + 8, sizeof(e));
            if (dlen != sizeof(e) || e.producer >= n_prod || e.seq != next_seq[e.producer]) {
                fprintf(stderr, "ring: unexpected record len %u producer %u seq %u\n", dlen, e.producer, e.seq);
                t_failures++;
            } else {
                next_seq[e.producer]++;
                got++;
            }
        }
        c += (dlen + 8 + 7) / 8 * 8;
        __atomic_store_n(cons, c, __ATOMIC_RELEASE);
    }
    return got;
}

/* Producers that reserve a record and are SIGKILLed before they submit it;
 * the records sit at the consumer position. reap: wait for them (else
 * they stay zombies, which must count as dead too). */
static void rb_kill_reservers(struct gmap *m, int n, int reap, pid_t *zombies)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t kids[8];
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            struct rb_event *e = gmap_ringbuf_reserve(m, 64, 0);
            char c = e ? 'r' : 'x';
            if (write(ready[1], &c, 1) != 1)
                _exit(3);
            pause();              /* killed here: reserved, never submitted */
            _exit(0);
        }
    }
    for (int i = 0; i < n; i++) {
        char c = 0;
        CHECK(read(ready[0], &c, 1) == 1 && c == 'r');
    }
    for (int i = 0; i < n; i++) {
        kill(kids[i], SIGKILL);
        if (reap)
            waitpid(kids[i], NULL, 0);
        else
            zombies[i] = kids[i];
    }
    close(ready[0]);
    close(ready[1]);
}

/* Live producers each send n events (retrying while the ring is full). */
static void rb_start_producers(struct gmap *m, pid_t *kids, uint32_t n_prod, uint32_t n)
{
    for (uint32_t p = 0; p < n_prod; p++) {
        kids[p] = fork();
        if (kids[p] == 0) {
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (uint32_t i = 0; i < n; i++) {
                struct rb_event e = { p, i };
                while (gmap_ringbuf_output(m, &e, sizeof(e), 0) == -EAGAIN) {
                    struct timespec t;
                    clock_gettime(CLOCK_MONOTONIC, &t);
                    if (t.tv_sec - t0.tv_sec > 30)
                        _exit(4);     /* the ring never drained */
                    usleep(50);
                }
            }
            _exit(0);
        }
    }
}

/* A producer that sends n events like the live ones (as producer id),
 * then reserves one more record, says so on fd and waits to be killed:
 * its record lands behind records that were submitted. */
static pid_t rb_start_dying_producer(struct gmap *m, uint32_t id, uint32_t n, int fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (uint32_t i = 0; i < n; i++) {
            struct rb_event e = { id, i };
            while (gmap_ringbuf_output(m, &e, sizeof(e), 0) == -EAGAIN)
                usleep(50);
        }
        while (!gmap_ringbuf_reserve(m, 64, 0))
            usleep(50);
        if (write(fd, "r", 1) != 1)
            _exit(3);
        pause();                  /* killed here: reserved, never submitted */
        _exit(0);
    }
    return pid;
}

static void test_ringbuf_dead_producers(int recover, int n_events)
{
    enum { N_PROD = 3, N_DEAD = 4, DYING_EVENTS = 20 };
    struct gmap_def d = def(GMAP_RINGBUF, 0, 0, 16384, 0);
    struct gmap *m = t_create(&d);
    /* This process produces first, so its identity is known before it
     * forks: each child must still be told apart from it. */
    struct rb_event first = { 99, 0 };
    CHECK_EQ(gmap_ringbuf_output(m, &first, sizeof(first), 0), 0);
    uint32_t warm_up[100] = {0};
    CHECK_EQ(rb_consume(m, warm_up, 100, 0), 1);
    /* Producers 0..N_PROD-1 live; producer N_PROD dies after DYING_EVENTS. */
    uint32_t next_seq[N_PROD + 1] = {0};
    int want = N_PROD * n_events + DYING_EVENTS;
    pid_t zombies[N_DEAD] = {0};
    rb_kill_reservers(m, N_DEAD - 1, 1, zombies);
    rb_kill_reservers(m, 1, 0, zombies);        /* one left a zombie */
    /* Then one that submits some events first, and dies holding a record
     * behind them - before the live producers start: a consumer that does
     * not recover (libbpf's) relies on them filling the ring after it. */
    int dying_pipe[2];
    CHECK(pipe(dying_pipe) == 0);
    pid_t dying = rb_start_dying_producer(m, N_PROD, DYING_EVENTS, dying_pipe[1]);
    char c;
    CHECK(read(dying_pipe[0], &c, 1) == 1);
    kill(dying, SIGKILL);
    waitpid(dying, NULL, 0);
    pid_t kids[N_PROD];
    rb_start_producers(m, kids, N_PROD, (uint32_t)n_events);
    int got = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        got += rb_consume(m, next_seq, N_PROD + 1, recover);
        if (got == want)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20) {
            fprintf(stderr, "ring (%s): stuck after %d of %d events: a dead producer's record blocks it\n",
                    recover ? "consumer recovers" : "producers recover", got, want);
            t_failures++;
            break;
        }
        usleep(100);
    }
    close(dying_pipe[0]);
    close(dying_pipe[1]);
    for (uint32_t p = 0; p < N_PROD; p++) {
        if (got != want)
            kill(kids[p], SIGKILL);
        CHECK(wait_ok(kids[p]) || got != want);
        CHECK_EQ(next_seq[p], n_events);
    }
    CHECK_EQ(next_seq[N_PROD], DYING_EVENTS);   /* what it submitted before it died */
    for (int i = 0; i < N_DEAD; i++)
        if (zombies[i])
            waitpid(zombies[i], NULL, 0);
    t_consistent(m);
    t_destroy(m);
}

int main(void)
{
    /* A consumer that never calls gmap_ringbuf_recover (libbpf's): the
     * producers, which fill the ring many times over, discard the dead
     * ones' records when they find it full. */
    test_ringbuf_dead_producers(0, 3000);
    /* graft's consumers recover themselves: here the ring never fills. */
    test_ringbuf_dead_producers(1, 100);
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
