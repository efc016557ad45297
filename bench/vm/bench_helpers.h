/* bench_helpers.h - host functions of the VM benchmark (bench_helpers.c). */
#ifndef GRAFT_BENCH_VM_HELPERS_H
#define GRAFT_BENCH_VM_HELPERS_H

#include <stdint.h>

uint64_t bench_mix(uint64_t a, uint64_t b);
uint64_t *bench_lookup(uint64_t map, const uint32_t *key);
/* Fill the benchmark's hash map; returns its handle (CTX_PARAM 1). */
uint64_t bench_map_make(void);

#endif
