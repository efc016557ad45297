/*
 * maps_internal.h - shared-memory layout of a graft map and the process-local
 * handle, shared by the map type implementations in src/maps/.
 *
 * Layout of every shm object: struct gmap_hdr at offset 0 (a whole page for
 * ring buffers, so the kernel's page offsets hold), then the type's regions
 * at the offsets recorded in the header. Nothing in shared memory is a
 * pointer: elements refer to each other by 1-based index (0 = none), since
 * every process maps the object at a different address.
 *
 * Concurrency: writers take hdr->lock, a robust process-shared mutex. When a
 * writer died holding it, the next locker repairs the structure (map_repair)
 * before marking the mutex consistent; every multi-step update is ordered so
 * that each intermediate state is repairable (see map_hash.c). Hash readers
 * take no lock: each bucket has a sequence count (seqlock).
 */
#ifndef GRAFT_MAPS_INTERNAL_H
#define GRAFT_MAPS_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "maps/maps.h"

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
#include <sys/rseq.h>   /* gmap_this_cpu; outside the hidden block below (glibc's symbols) */
#endif

#define GMAP_MAGIC   0x50414d5446415247ull   /* "GRAFTMAP" */
#define GMAP_VERSION 3   /* 2: 4/8-byte keys hash with gmap_hash_u32/word;
                          * 3: ring buffer records name their producer while BUSY */
#define GMAP_PAGE    4096u

#ifndef ENOTSUPP
#define ENOTSUPP 524   /* the kernel's internal "not supported", as bpf() returns it */
#endif

#define ROUND_UP(x, a) (((x) + (a) - 1) / (a) * (a))

struct gmap_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;          /* bytes before the first type region */
    uint64_t total_size;        /* bytes of the shm object */
    struct gmap_def def;
    uint32_t ncpus;             /* per-CPU copies, fixed at creation */
    uint32_t value_stride;      /* round_up(value_size, 8) */
    /* hash family */
    uint32_t elem_size;
    uint32_t n_buckets;         /* power of 2 */
    uint32_t pool_size;         /* elements: max_entries + 1 spare for replace */
    uint32_t key_stride;        /* round_up(key_size, 8) */
    uint64_t seed;
    uint64_t off_a;             /* hash: buckets; arrays: data; queue: slots;
                                 * bloom: bits; ringbuf: consumer page; perf: buffers */
    uint64_t off_b;             /* hash: elements; lpm: prefix counts; perf: locks */
    /* bloom */
    uint32_t nr_hashes;
    uint32_t bloom_mask;        /* bits - 1 */
    /* lpm */
    uint32_t lpm_data_size;
    uint32_t lpm_max_plen;
    /* perf event array */
    uint64_t perf_data_size;    /* data bytes per buffer */
    uint64_t perf_buf_size;     /* page + data */

    /* mutable state, below: */
    pthread_mutex_t lock __attribute__((aligned(64)));
    uint32_t count;             /* live elements (hash) */
    uint32_t free_head;         /* hash free list */
    uint32_t clock_hand;        /* LRU eviction */
    uint32_t repairs;
    uint32_t q_head, q_tail;    /* queue/stack ring */
    uint32_t lru_head, lru_tail; /* LRU list: head = most recently inserted */
};

struct gbucket {
    uint32_t seq;               /* odd while a writer changes this chain */
    uint32_t head;              /* 1-based element index, 0 = empty */
};

enum { ELEM_FREE = 0, ELEM_USED = 1 };

struct gelem {
    uint32_t next;
    uint32_t hash;
    uint32_t state;
    uint32_t ref;               /* LRU reference bit, set by lookups */
    uint32_t lru_prev, lru_next; /* LRU order (writers only), 1-based */
    /* key (key_stride bytes), then the value area */
};

/* One per-index perf lock, kept apart from the perf pages so the mmap page
 * layout is exactly the kernel's. */
struct gperf_lock {
    pthread_mutex_t lock;
    uint64_t lost;
} __attribute__((aligned(64)));

struct gmap {
    struct gmap_hdr *h;
    uint8_t *base;
    size_t map_len;             /* bytes of the mapping (ringbuf: + data again) */
    uint32_t type, key_size, value_size, max_entries, ncpus, stride;
    /* Hash family: the header's layout, copied here so the hot paths need
     * no loads through h (the layout never changes after creation). */
    struct gbucket *buckets;
    uint8_t *elems;             /* element 1 */
    uint32_t elem_size, bucket_mask, pool_size, key_stride;
    uint64_t seed;
    char name[64];
    /* Copies of header fields the control plane reads, so that code running
     * without access to the map's memory (a host thread after
     * gmap_protect_key) can still ask for the definition and the layout. */
    uint64_t off_a;
    uint64_t total_size;
    struct gmap_def def;
    int moved;                  /* gmap_handle_move(): not ours to free */
};

/* map_core.c */
int gmap_lock(struct gmap *m);
void gmap_unlock(struct gmap *m);
uint64_t gmap_hash_bytes(const void *key, uint32_t len, uint64_t seed);
uint32_t gmap_this_cpu_slow(const struct gmap *m);

/* 4-byte keys: one multiply; the high half of the 64-bit product depends on
 * every key bit, and the bucket is picked from its low bits. */
static inline uint32_t gmap_hash_u32(uint32_t k, uint64_t seed)
{
    return (uint32_t)((((uint64_t)k ^ seed) * 0x9E3779B97F4A7C15ull) >> 32);
}

/* 8-byte keys: two multiply-xorshift rounds, seeded per map, so both halves
 * of the word reach the low bits that pick the bucket. */
static inline uint32_t gmap_hash_word(uint64_t w, uint64_t seed)
{
    uint64_t h = (w ^ seed) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* The CPU this thread runs on, as an index of the per-CPU copies. Read from
 * the rseq area the kernel keeps current for glibc (no system call, no
 * vDSO); the thread may migrate right after, as a kernel program may be
 * preempted after its lookup on a preemptible kernel: the copy of the CPU
 * it ran on a moment ago is used, which per-CPU maps tolerate (they are
 * counters summed by readers, not exclusive ownership). */
#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
static inline uint32_t gmap_this_cpu(const struct gmap *m)
{
    if (__rseq_size >= 8) {
        uintptr_t tp;
        __asm__("mov %%fs:0, %0" : "=r"(tp));
        const struct rseq *r = (const struct rseq *)(tp + (uintptr_t)__rseq_offset);
        int32_t c = (int32_t)__atomic_load_n(&r->cpu_id, __ATOMIC_RELAXED);
        if (c >= 0 && (uint32_t)c < m->ncpus)
            return (uint32_t)c;
    }
    return gmap_this_cpu_slow(m);
}
#else
static inline uint32_t gmap_this_cpu(const struct gmap *m) { return gmap_this_cpu_slow(m); }
#endif
static inline bool gmap_is_hash(uint32_t t)
{
    return t == GMAP_HASH || t == GMAP_PERCPU_HASH || t == GMAP_LRU_HASH ||
           t == GMAP_LRU_PERCPU_HASH || t == GMAP_HASH_OF_MAPS;
}

static inline bool gmap_is_array(uint32_t t)
{
    return t == GMAP_ARRAY || t == GMAP_PERCPU_ARRAY || t == GMAP_PROG_ARRAY ||
           t == GMAP_ARRAY_OF_MAPS;
}

struct gmap *gmap_resolve(uint32_t id);
struct gmap *gmap_resolve_inner(struct gmap *outer, uint32_t id);
int gmap_check_inner(struct gmap *outer, uint32_t id);
void gmap_repair(struct gmap *m);

/* The map types' operations keep no state of their own (all of it is in
 * the map): bound inside whichever shared library links them (no PLT hop
 * between gmap_lookup and hash_lookup, not exported). What keeps process
 * state (the id resolver above, the ring buffer owner below) stays
 * exported, so that two graft libraries in one process (agent and compat)
 * still share one copy of it, as before. */
#pragma GCC visibility push(hidden)

/* map_array.c: ARRAY, PERCPU_ARRAY, PROG_ARRAY, ARRAY_OF_MAPS */
int arr_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t arr_layout(struct gmap_hdr *h);
void *arr_lookup(struct gmap *m, const void *key);
int arr_lookup_copy(struct gmap *m, const void *key, void *value);
int arr_update(struct gmap *m, const void *key, const void *value, uint64_t flags, bool all_cpus);
int arr_delete(struct gmap *m, const void *key);
int arr_next_key(struct gmap *m, const void *key, void *next);

/* map_hash.c: HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, HASH_OF_MAPS */
int hash_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t hash_layout(struct gmap_hdr *h, uint32_t extra_value_bytes);
void hash_init(struct gmap *m);
void *hash_lookup(struct gmap *m, const void *key);
int hash_lookup_copy(struct gmap *m, const void *key, void *value);
/* an int result, sign-extended (gmap_update_local) */
int64_t hash_update(struct gmap *m, const void *key, const void *value, uint64_t flags, bool all_cpus);
int hash_delete(struct gmap *m, const void *key, void *value_out);
int hash_next_key(struct gmap *m, const void *key, void *next);
void hash_repair(struct gmap *m);
int hash_check(struct gmap *m, struct graft_err *err);
/* used by the LPM trie, which stores (prefix, masked data) keys in a hash */
struct gelem *hash_elem(const struct gmap *m, uint32_t idx);
uint8_t *hash_elem_key(struct gelem *e);
uint8_t *hash_elem_value(const struct gmap *m, struct gelem *e);
uint32_t hash_find_nolock(struct gmap *m, const void *key, uint32_t hash);
uint32_t hash_find_locked(struct gmap *m, const void *key, uint32_t hash);
uint32_t hash_key(const struct gmap *m, const void *key);
int hash_insert_locked(struct gmap *m, const void *key, uint32_t hash, uint64_t flags,
                       uint32_t *idx_out, uint32_t *old_out, bool *is_new);
void hash_finish_replace(struct gmap *m, uint32_t hash, uint32_t new_idx, uint32_t old_idx);
int hash_remove_locked(struct gmap *m, const void *key, uint32_t hash, uint32_t *idx_out);
void hash_free_elem(struct gmap *m, uint32_t idx);

/* map_lpm.c */
int lpm_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t lpm_layout(struct gmap_hdr *h);
void *lpm_lookup(struct gmap *m, const void *key);
int lpm_lookup_copy(struct gmap *m, const void *key, void *value);
int lpm_update(struct gmap *m, const void *key, const void *value, uint64_t flags);
int lpm_delete(struct gmap *m, const void *key);
int lpm_next_key(struct gmap *m, const void *key, void *next);
void lpm_repair(struct gmap *m);
int lpm_check(struct gmap *m, struct graft_err *err);

/* map_queue.c: QUEUE, STACK, BLOOM_FILTER */
int queue_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t queue_layout(struct gmap_hdr *h);
int queue_push(struct gmap *m, const void *value, uint64_t flags);
int queue_pop(struct gmap *m, void *value, bool remove);
int queue_check(struct gmap *m, struct graft_err *err);
int bloom_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t bloom_layout(struct gmap_hdr *h);
int bloom_push(struct gmap *m, const void *value, uint64_t flags);
int bloom_peek(struct gmap *m, const void *value);

#pragma GCC visibility pop

/* map_rb_owner.c: who holds a ring buffer reservation (see map_ringbuf.c).
 * The producer table lives in the ring buffer's header page, after struct
 * gmap_hdr; entries are claimed and freed under the map lock. */
#define RB_OWNERS 120              /* producer processes per ring at once */

struct rb_owner {
    int32_t pid;               /* 0: free entry */
    uint32_t pad;
    uint64_t pidns;            /* inode of its pid namespace (0: unknown) */
    uint64_t start;            /* its start time, clock ticks after boot (0: unknown) */
};

struct rb_owners {
    /* The consumer position last found BUSY with a live producer (+1), and
     * when (CLOCK_MONOTONIC_COARSE ns): not checked again for a while, so a
     * slow producer costs no system calls on every full-ring reserve. */
    uint64_t checked_pos;
    uint64_t checked_ns;
    struct rb_owner e[RB_OWNERS];
};

#define RB_OWNERS_OFF ROUND_UP(sizeof(struct gmap_hdr), 64)

static inline struct rb_owners *rb_owners(const struct gmap *m)
{
    return (struct rb_owners *)(m->base + RB_OWNERS_OFF);
}

/* This process's entry, claimed if need be: 1-based, 0 when every entry is
 * held by another process (the caller then frees dead producers' entries
 * and tries again). Map lock held. */
uint32_t rb_owner_claim(struct gmap *m);
/* 1 when the producer of entry i (1-based) is certainly dead, else 0. */
int rb_owner_dead(struct gmap *m, uint32_t i);
void rb_owner_free(struct gmap *m, uint32_t i);

/* map_ringbuf.c: RINGBUF, PERF_EVENT_ARRAY */
int ringbuf_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t ringbuf_layout(struct gmap_hdr *h);
int ringbuf_check(struct gmap *m, struct graft_err *err);
int perf_def_check(const struct gmap_def *d, struct graft_err *err);
uint64_t perf_layout(struct gmap_hdr *h);
int perf_init(struct gmap *m);

#endif
