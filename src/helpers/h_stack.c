/*
 * h_stack.c - bpf_get_stackid (27): the hooked thread's user stack, by
 * frame pointers (the walk bpf_get_stack uses, h_task.c), stored in a stack
 * trace map, returning its id.
 *
 * A BPF_MAP_TYPE_STACK_TRACE map is a graft array (libgraft-compat creates
 * one for the tool's map): slot id holds the stack's return addresses, u64
 * each, zero-padded to the value size; an all-zero slot is empty. The id is
 * a hash of the addresses modulo the number of slots, as the kernel's is of
 * its buckets. A slot holding another stack gives -EEXIST unless
 * BPF_F_REUSE_STACKID (then the new stack replaces it). Two threads storing
 * different stacks into one slot at once may leave a mix of both: the
 * kernel swaps bucket pointers; graft writes in place (the memory stays the
 * map's own, bounded by its value size).
 *
 * There is no kernel stack in a userspace process: without
 * BPF_F_USER_STACK, -EFAULT (the kernel's answer when it has no callchain).
 * A program's read-only maps are never written (they may be constants to
 * the verifier): -EINVAL, as for a map of the wrong kind.
 */
#include <errno.h>
#include <string.h>

#include "helpers/helpers_internal.h"
#include "maps/maps.h"

#define BPF_F_SKIP_FIELD_MASK  0xffULL
#define BPF_F_USER_STACK       (1ULL << 8)
#define BPF_F_FAST_STACK_CMP   (1ULL << 9)
#define BPF_F_REUSE_STACKID    (1ULL << 10)
#define MAX_DEPTH              127            /* kernel.perf_event_max_stack */

static uint64_t hash_ips(const uint64_t *ips, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;       /* FNV-1a over the addresses */
    for (uint32_t i = 0; i < n; i++) {
        h ^= ips[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

GH_FN(get_stackid)
{
    struct gmap *map = (struct gmap *)(uintptr_t)r2;
    uint64_t flags = r3;
    const struct gmap_def *d;

    if (flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID))
        return GH_ERR(-EINVAL);
    if (!map)
        return GH_ERR(-EINVAL);
    d = gmap_get_def(map);
    if (d->type != GMAP_ARRAY || d->key_size != 4 || d->value_size % 8 || d->value_size == 0 ||
        (d->map_flags & GMAP_F_RDONLY_PROG))
        return GH_ERR(-EINVAL);
    const struct graft_pt_regs *regs = ghelper_run_state()->regs;
    if (!(flags & BPF_F_USER_STACK) || !regs)
        return GH_ERR(-EFAULT);
    uint64_t ips[MAX_DEPTH];
    uint32_t max = d->value_size / 8 < MAX_DEPTH ? d->value_size / 8 : MAX_DEPTH;
    uint32_t n = gh_user_stack(regs, ips, max, (uint32_t)(flags & BPF_F_SKIP_FIELD_MASK));
    if (n == 0)
        return GH_ERR(-EFAULT);
    uint32_t id = (uint32_t)(hash_ips(ips, n) % d->max_entries);
    uint64_t *slot = gmap_lookup(map, &id);
    if (!slot)
        return GH_ERR(-EFAULT);
    uint32_t words = d->value_size / 8;
    if (slot[0] != 0) {
        int same = 1;
        for (uint32_t i = 0; i < words && same; i++)
            same = __atomic_load_n(&slot[i], __ATOMIC_RELAXED) == (i < n ? ips[i] : 0);
        if (same)
            return id;
        if (!(flags & BPF_F_REUSE_STACKID))
            return GH_ERR(-EEXIST);
    }
    for (uint32_t i = words; i-- > 0;)       /* the first word last: a reader sees it filled */
        __atomic_store_n(&slot[i], i < n ? ips[i] : 0, __ATOMIC_RELEASE);
    return id;
}
