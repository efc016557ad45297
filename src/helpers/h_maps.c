/*
 * h_maps.c - helpers that work on maps: element access, queues/stacks, ring
 * buffers, perf output, spin locks, and the callback helpers (bpf_loop,
 * for_each_map_elem) that iterate on the program's behalf.
 *
 * A map argument is the struct gmap * the loader resolved the LD_IMM64 to
 * (see helpers.h); the verifier guarantees it is one, and that key/value
 * pointers cover key_size/value_size bytes, so these helpers only translate
 * to maps.h and keep the kernel's flag checks and return values.
 *
 * bpf_spin_lock is a 4-byte word inside a map value, which lives in shared
 * memory, so the lock works across every process that maps the value. The
 * word holds the owner's thread id (0 = free) so that a waiter can recover a
 * lock whose owner died inside its critical section, or one that holds its
 * own id (see take_spin_lock).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "helpers/helpers_internal.h"
#include "maps/maps.h"

#define MAP(r) ((struct gmap *)(uintptr_t)(r))

/* Kernel flag values (uapi/linux/bpf.h). */
#define BPF_F_INDEX_MASK    0xffffffffULL
#define BPF_RB_NO_WAKEUP    (1ULL << 0)
#define BPF_RB_FORCE_WAKEUP (1ULL << 1)
#define BPF_MAX_LOOPS       (8u * 1024 * 1024)

GH_FN(map_lookup_elem)
{
    return (uint64_t)(uintptr_t)gmap_lookup_local(MAP(r1), (const void *)r2);
}

GH_FN(map_update_elem)
{
    return (uint64_t)gmap_update_local(MAP(r1), (const void *)r2, (const void *)r3, r4);   /* sign-extended */
}

GH_FN(map_delete_elem)
{
    return GH_ERR(gmap_delete_local(MAP(r1), (const void *)r2));
}

GH_FN(map_push_elem)
{
    return GH_ERR(gmap_push(MAP(r1), (const void *)r2, r3));
}

GH_FN(map_pop_elem)
{
    return GH_ERR(gmap_pop(MAP(r1), (void *)r2));
}

GH_FN(map_peek_elem)
{
    return GH_ERR(gmap_peek(MAP(r1), (void *)r2));
}

/* The VM performs tail calls itself through gvm_env.tail_call_target; a
 * call that reaches this function means the engine did not, so fail the way
 * the kernel does when no program is found: return and let the caller go on. */
GH_FN(tail_call)
{
    return GH_ERR(-EINVAL);
}

/* perf_event_output(ctx, map, flags, data, size) */
GH_FN(perf_event_output)
{
    if (r3 & ~BPF_F_INDEX_MASK)
        return GH_ERR(-EINVAL);
    return GH_ERR(gmap_perf_output(MAP(r2), r3, (const void *)r4, r5));
}

/* current_task_under_cgroup(map, idx): graft stores no cgroups (libgraft-
 * compat backs a tool's BPF_MAP_TYPE_CGROUP_ARRAY by an array it refuses
 * to fill), so every slot is empty: the kernel's answer for an empty slot
 * is -EAGAIN, never "in the cgroup". Tools that create the map for an
 * optional -c filter and do not use it run; a filter never passes all. */
GH_FN(current_task_under_cgroup)
{
    const struct gmap_def *d = gmap_get_def(MAP(r1));
    return GH_ERR(d && (uint32_t)r2 >= d->max_entries ? -E2BIG : -EAGAIN);
}

/* ringbuf_output(map, data, size, flags) */
GH_FN(ringbuf_output)
{
    if (r4 & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP))
        return GH_ERR(-EINVAL);
    return GH_ERR(gmap_ringbuf_output(MAP(r1), (const void *)r2, r3, r4));
}

/* ringbuf_reserve(map, size, flags): NULL on any failure, as the kernel. */
GH_FN(ringbuf_reserve)
{
    if (r3 != 0)
        return 0;
    return (uint64_t)(uintptr_t)gmap_ringbuf_reserve(MAP(r1), r2, r3);
}

GH_FN(ringbuf_submit)
{
    gmap_ringbuf_submit((void *)r1, r2 & (BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP));
    return 0;
}

GH_FN(ringbuf_discard)
{
    gmap_ringbuf_discard((void *)r1, r2 & (BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP));
    return 0;
}

GH_FN(ringbuf_query)
{
    return gmap_ringbuf_query(MAP(r1), r2);
}

/* ---- spin locks ---- */

#define SPIN_BEFORE_YIELD 128
#define STEAL_AFTER_NS    1000000000ull   /* a critical section is a few insns */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Is the thread that holds the lock gone? Only then may a waiter take it
 * over. A lock held for over a second whose owner tid no longer exists in
 * our pid namespace is one whose holder died mid-section. */
static int owner_is_dead(uint32_t tid)
{
    return kill((pid_t)tid, 0) != 0 && errno == ESRCH;
}

/* A word holding our own tid after the same second is taken over too: a
 * verified program never waits on a lock it holds (no nested locks, no
 * helper or kfunc inside a critical section), so the word was forged (by a
 * program that wrote it where the verifier did not know a lock was: a map
 * without BTF) or this thread re-entered a section (a signal handler's
 * hook): waiting for ourselves would hang the host thread for ever. Taking
 * it over can only cost the mutual exclusion of that interrupted section,
 * never memory safety (map values are plain bytes to every program). The
 * second of waiting first spares a live owner that shares our numeric tid
 * in another pid namespace: its section, a few instructions, is over by
 * then. */
static void take_spin_lock(_Atomic uint32_t *word)
{
    uint32_t me = gh_tid();
    uint64_t since = 0;

    for (unsigned spins = 0;; spins++) {
        uint32_t seen = 0;
        if (atomic_compare_exchange_weak_explicit(word, &seen, me,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        if (spins < SPIN_BEFORE_YIELD) {
            __builtin_ia32_pause();
            continue;
        }
        /* The owner may be descheduled; give it the CPU. */
        sched_yield();
        if (since == 0) {
            since = mono_ns();
        } else if (seen != 0 && mono_ns() - since > STEAL_AFTER_NS &&
                   (seen == me || owner_is_dead(seen))) {
            if (atomic_compare_exchange_strong_explicit(word, &seen, me,
                                                        memory_order_acquire,
                                                        memory_order_relaxed))
                return;
            since = 0;
        }
    }
}

/* spin_lock(struct bpf_spin_lock *lock) */
GH_FN(spin_lock)
{
    take_spin_lock((_Atomic uint32_t *)(uintptr_t)r1);
    return 0;
}

GH_FN(spin_unlock)
{
    atomic_store_explicit((_Atomic uint32_t *)(uintptr_t)r1, 0, memory_order_release);
    return 0;
}

/* ---- callbacks ---- */

static _Atomic(ghelper_callback_invoker) g_invoker;

void ghelper_set_callback_invoker(ghelper_callback_invoker invoke)
{
    atomic_store_explicit(&g_invoker, invoke, memory_order_release);
}

/* loop(nr_loops, callback_fn, callback_ctx, flags): calls
 * callback(i, ctx) until it returns non-zero; returns the number of calls. */
GH_FN(loop)
{
    ghelper_callback_invoker invoke =
        atomic_load_explicit(&g_invoker, memory_order_acquire);

    if (r4 != 0)
        return GH_ERR(-EINVAL);
    if (r1 > BPF_MAX_LOOPS)
        return GH_ERR(-E2BIG);
    if (!invoke)
        return GH_ERR(-EOPNOTSUPP);
    for (uint64_t i = 0; i < r1; i++)
        if (invoke(r2, i, r3, 0, 0, 0) != 0)
            return i + 1;
    return r1;
}

#define MAX_ITER_KEY 512     /* BPF stack size: no key can be larger */

/* for_each_map_elem(map, callback_fn, callback_ctx, flags): calls
 * callback(map, &key, value, ctx) for each element until it returns
 * non-zero; returns the number of elements visited. */
GH_FN(for_each_map_elem)
{
    ghelper_callback_invoker invoke =
        atomic_load_explicit(&g_invoker, memory_order_acquire);
    struct gmap *map = MAP(r1);
    uint64_t keybuf[2][MAX_ITER_KEY / 8];
    uint64_t visited = 0;

    if (r4 != 0)
        return GH_ERR(-EINVAL);
    if (!invoke)
        return GH_ERR(-EOPNOTSUPP);
    const struct gmap_def *def = gmap_get_def(map);
    switch (def->type) {
    case GMAP_HASH: case GMAP_PERCPU_HASH: case GMAP_LRU_HASH:
    case GMAP_LRU_PERCPU_HASH: case GMAP_ARRAY: case GMAP_PERCPU_ARRAY:
        break;
    default:
        return GH_ERR(-EINVAL);   /* the kernel supports only these */
    }
    if (def->key_size == 0 || def->key_size > MAX_ITER_KEY)
        return GH_ERR(-E2BIG);

    /* Walk with get_next_key, alternating two buffers for prev/next. A
     * callback deleting the element it visits makes the walk restart from
     * the first one: at most max_entries calls, which is what the verifier
     * counts on to bound the program's instructions. */
    void *prev = NULL;
    int cur = 0;
    while (visited < def->max_entries && gmap_get_next_key(map, prev, keybuf[cur]) == 0) {
        void *value = gmap_lookup(map, keybuf[cur]);
        prev = keybuf[cur];
        cur ^= 1;
        if (!value)
            continue;          /* deleted since we found the key */
        visited++;
        if (invoke(r2, r1, (uint64_t)(uintptr_t)prev,
                   (uint64_t)(uintptr_t)value, r3, 0) != 0)
            break;
    }
    return visited;
}
