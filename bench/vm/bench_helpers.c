/*
 * bench_helpers.c - the host functions bench programs call (prog.h): as BPF
 * helpers (ids 1 and 2) from the VM, as plain calls from the native build.
 * Separate from the programs so gcc cannot inline them into the native
 * side either: both sides pay one call per use.
 */
#include <stdint.h>
#include <string.h>

#include "bench_helpers.h"

uint64_t bench_mix(uint64_t a, uint64_t b)
{
    uint64_t h = (a ^ b) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* An open-addressed hash map from u32 keys to u64 values. */
#define MAP_SLOTS 4096
struct bench_map {
    uint32_t key[MAP_SLOTS];
    uint8_t used[MAP_SLOTS];
    uint64_t val[MAP_SLOTS];
};

static struct bench_map the_map;

static uint32_t map_slot(uint32_t k)
{
    return (k * 0x9e3779b1u) >> 20;
}

uint64_t *bench_lookup(uint64_t map, const uint32_t *key)
{
    struct bench_map *m = (struct bench_map *)(uintptr_t)map;
    uint32_t k = *key, s = map_slot(k);
    while (m->used[s]) {
        if (m->key[s] == k)
            return &m->val[s];
        s = (s + 1) & (MAP_SLOTS - 1);
    }
    return NULL;
}

uint64_t bench_map_make(void)
{
    memset(&the_map, 0, sizeof(the_map));
    /* keys 0..2047 except every third: lookups hit and miss */
    for (uint32_t k = 0; k < 2048; k++) {
        if (k % 3 == 0)
            continue;
        uint32_t s = map_slot(k);
        while (the_map.used[s])
            s = (s + 1) & (MAP_SLOTS - 1);
        the_map.used[s] = 1;
        the_map.key[s] = k;
        the_map.val[s] = (uint64_t)k * k + 1;
    }
    return (uint64_t)(uintptr_t)&the_map;
}
