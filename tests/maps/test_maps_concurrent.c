/*
 * test_maps_concurrent.c - the lock-free in-place update of hash maps
 * (map_hash.c: update_nolock, wait_unpinned) against writers that delete and
 * re-insert the same keys, in threads and in forked processes sharing the
 * map, with few elements so that a freed element is reused at once.
 *
 * Every value is tagged with its key (key << 32 | n): a store that landed
 * in an element after it was freed and reused for another key would show as
 * a value whose tag is not its key. Lookups by copy check the tag, the
 * structure is checked at the end, and a writer SIGKILLed in its loop
 * leaves a map whose keys can all still be deleted and re-inserted.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmaps.h"

#define KEYS   6
#define ROUNDS 400000

static struct gmap *g_map;
static int g_stop;

struct stats {
    long updates, fast, deletes, inserts, reads, bad_tags;
};

static uint64_t tag(uint32_t k, uint64_t n) { return (uint64_t)k << 32 | (n & 0xffffffffu); }

#define MAX_CPUS 1024

/* A copy of key k's value(s): 1 if every copy is k's (per-CPU maps: each
 * CPU's copy is k's or still zero from the insert), 0 if one is not, -1
 * when k is absent. */
static int read_tagged(uint32_t k)
{
    static __thread uint64_t out[MAX_CPUS];
    if (gmap_lookup_copy(g_map, &k, out) != 0)
        return -1;
    const struct gmap_def *d = gmap_get_def(g_map);
    int n = d->type == GMAP_PERCPU_HASH ? gmap_possible_cpus() : 1;
    for (int c = 0; c < n; c++)
        if (out[c] >> 32 != k && !(n > 1 && out[c] == 0))
            return 0;
    return 1;
}

/* Updates keys that may be present (the lock-free path) or absent (the
 * locked path: GMAP_ANY inserts), and checks what it reads back. */
static void updater(struct stats *st, uint32_t seed)
{
    for (uint64_t i = 0; i < ROUNDS; i++) {
        uint32_t k = (uint32_t)((i * 7 + seed) % KEYS);
        uint64_t v = tag(k, i);
        int r = gmap_update(g_map, &k, &v, i & 1 ? GMAP_EXIST : GMAP_ANY);
        st->updates += r == 0;
        st->fast += r == 0 && (i & 1);
        int t = read_tagged(k);
        st->reads += t >= 0;
        st->bad_tags += t == 0;
    }
}

/* Deletes and re-inserts keys, so elements move between keys. */
static void churner(struct stats *st, uint32_t seed)
{
    for (uint64_t i = 0; i < ROUNDS; i++) {
        uint32_t k = (uint32_t)((i * 5 + seed) % KEYS);
        if (gmap_delete(g_map, &k) == 0)
            st->deletes++;
        uint32_t k2 = (k + 1 + (uint32_t)(i % (KEYS - 1))) % KEYS;
        uint64_t v = tag(k2, 0);
        st->inserts += gmap_update(g_map, &k2, &v, GMAP_NOEXIST) == 0;
    }
}

/* Reads every key over and over until the writers are done. */
static void reader(struct stats *st)
{
    while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED))
        for (uint32_t k = 0; k < KEYS; k++) {
            int t = read_tagged(k);
            st->reads += t >= 0;
            st->bad_tags += t == 0;
        }
}

struct job {
    int churn;                     /* 0 updater, 1 churner, 2 reader */
    uint32_t seed;
    struct stats st;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    if (j->churn == 2)
        reader(&j->st);
    else if (j->churn)
        churner(&j->st, j->seed);
    else
        updater(&j->st, j->seed);
    return NULL;
}

/* Every present key's value carries its own tag. */
static void check_tags(void)
{
    for (uint32_t k = 0; k < KEYS; k++)
        CHECK(read_tagged(k) != 0);
}

static void test_threads(uint32_t type)
{
    struct gmap_def d = {.type = type, .key_size = 4, .value_size = 8, .max_entries = KEYS - 1};
    snprintf(d.name, sizeof(d.name), "conc%u", type);
    g_map = t_create(&d);
    struct job jobs[5] = {{0, 1, {0}}, {0, 2, {0}}, {1, 3, {0}}, {1, 4, {0}}, {2, 0, {0}}};
    pthread_t th[5];
    g_stop = 0;
    for (int i = 0; i < 5; i++)
        CHECK(pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0);
    struct stats sum = {0};
    for (int i = 0; i < 5; i++) {
        if (i == 4)
            __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
        pthread_join(th[i], NULL);
        sum.updates += jobs[i].st.updates;
        sum.fast += jobs[i].st.fast;
        sum.deletes += jobs[i].st.deletes;
        sum.reads += jobs[i].st.reads;
        sum.bad_tags += jobs[i].st.bad_tags;
    }
    printf("threads, type %u: %ld updates (%ld of present keys), %ld deletes, %ld reads, %ld bad tags\n",
           type, sum.updates, sum.fast, sum.deletes, sum.reads, sum.bad_tags);
    CHECK_EQ(sum.bad_tags, 0);
    CHECK(sum.fast > 1000 && sum.deletes > 1000);
    check_tags();
    t_consistent(g_map);
    t_destroy(g_map);
}

/* The same across processes: two forked updaters and a forked churner on
 * the shared map, plus a churning thread here. */
static void test_processes(void)
{
    struct gmap_def d = {.type = GMAP_HASH, .key_size = 4, .value_size = 8, .max_entries = KEYS - 1};
    snprintf(d.name, sizeof(d.name), "concproc");
    g_map = t_create(&d);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            struct stats st = {0};
            if (i == 2)
                churner(&st, 7);
            else
                updater(&st, (uint32_t)i + 5);
            _exit(st.bad_tags ? 3 : 0);
        }
    }
    /* a reading thread here while this thread churns too */
    struct job j = {1, 9, {0}}, rd = {2, 0, {0}};
    pthread_t th;
    g_stop = 0;
    CHECK(pthread_create(&th, NULL, run_job, &rd) == 0);
    run_job(&j);
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    CHECK_EQ(rd.st.bad_tags, 0);
    CHECK(rd.st.reads > 0);
    for (int i = 0; i < 3; i++) {
        int status = 0;
        CHECK(waitpid(kids[i], &status, 0) == kids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check_tags();
    t_consistent(g_map);
    t_destroy(g_map);
}

/* Writers killed at random points of their loops (possibly holding a pin,
 * or the lock): every key can still be deleted and re-inserted, in bounded
 * time, and the map is consistent. */
static void test_killed_writers(void)
{
    struct gmap_def d = {.type = GMAP_HASH, .key_size = 4, .value_size = 8, .max_entries = KEYS - 1};
    snprintf(d.name, sizeof(d.name), "conckill");
    g_map = t_create(&d);
    for (int round = 0; round < 6; round++) {
        pid_t kid = fork();
        if (kid == 0) {
            struct stats st = {0};
            for (;;)
                updater(&st, (uint32_t)round);
        }
        struct timespec p = {0, 20000000 + round * 3000000};
        nanosleep(&p, NULL);
        kill(kid, SIGKILL);
        waitpid(kid, NULL, 0);
        for (uint32_t k = 0; k < KEYS; k++) {
            int r = gmap_delete(g_map, &k);
            CHECK(r == 0 || r == -ENOENT);
        }
        for (uint32_t k = 0; k < KEYS - 1; k++) {
            uint64_t v = tag(k, 1);
            CHECK_EQ(gmap_update(g_map, &k, &v, GMAP_NOEXIST), 0);
            v = tag(k, 2);
            CHECK_EQ(gmap_update(g_map, &k, &v, GMAP_EXIST), 0);
            uint64_t out = 0;
            CHECK_EQ(gmap_lookup_copy(g_map, &k, &out), 0);
            CHECK_EQ(out, tag(k, 2));
        }
        t_consistent(g_map);
    }
    t_destroy(g_map);
}

int main(void)
{
    if (gmap_possible_cpus() > MAX_CPUS) {
        printf("test_maps_concurrent: skipped (more than %d CPUs)\n", MAX_CPUS);
        return 0;
    }
    test_threads(GMAP_HASH);
    test_threads(GMAP_PERCPU_HASH);
    test_processes();
    test_killed_writers();
    return t_done("test_maps_concurrent");
}
