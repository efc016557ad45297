/*
 * trace.h - where bpf_trace_printk output goes: one ring buffer per registry,
 * the map "graft.trace", written by every agent and read by `graft trace` and
 * `graft load`. It is a plain BPF ring buffer, so records are in the kernel's
 * format and any ring-buffer reader works.
 */
#ifndef GRAFT_RUNTIME_TRACE_H
#define GRAFT_RUNTIME_TRACE_H

#include <stddef.h>

#include "maps/maps.h"
#include "runtime/registry.h"

#define GRT_TRACE_MAP   "graft.trace"
#define GRT_TRACE_BYTES (1u << 20)

/* Open the registry's trace buffer, creating it when create is set and it
 * does not exist yet. -ENOENT when it does not exist and create is 0. */
int grt_trace_open(struct greg *reg, int create, struct gmap **out, struct graft_err *err);

/* Route this process's bpf_trace_printk output into rb (NULL: stderr). */
void grt_trace_redirect(struct gmap *rb);

/* Consume every complete record in a ring buffer, calling fn for each;
 * returns how many were consumed. Discarded records are skipped. */
int grt_ringbuf_consume(struct gmap *rb, void (*fn)(const void *data, size_t len, void *arg), void *arg);

#endif
