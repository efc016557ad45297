/*
 * maps.h - eBPF maps that live in shared memory, usable by several processes
 * at once (loaders, the agent inside each target, tools reading results).
 *
 * A map is one POSIX shared-memory object sized by its definition; a process
 * works on it through a struct gmap handle that it creates or opens. Every
 * operation has the kernel's semantics and errors (BPF_ANY/NOEXIST/EXIST,
 * -ENOENT, -EEXIST, -E2BIG, ...). Locks are robust: a process killed in the
 * middle of an update never leaves the map locked or corrupt for others.
 *
 * Two kinds of callers: eBPF helpers (gmap_lookup returns a pointer into the
 * map; per-CPU maps give this CPU's copy) and control-plane code (the *_copy
 * forms, per-CPU values as ncpus consecutive 8-byte-aligned copies, like the
 * bpf() syscall).
 */
#ifndef GRAFT_MAPS_MAPS_H
#define GRAFT_MAPS_MAPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

/* Map types, numbered as the kernel's enum bpf_map_type. */
enum gmap_type {
    GMAP_HASH = 1,
    GMAP_ARRAY = 2,
    GMAP_PROG_ARRAY = 3,
    GMAP_PERF_EVENT_ARRAY = 4,
    GMAP_PERCPU_HASH = 5,
    GMAP_PERCPU_ARRAY = 6,
    GMAP_LRU_HASH = 9,
    GMAP_LRU_PERCPU_HASH = 10,
    GMAP_LPM_TRIE = 11,
    GMAP_ARRAY_OF_MAPS = 12,
    GMAP_HASH_OF_MAPS = 13,
    GMAP_QUEUE = 22,
    GMAP_STACK = 23,
    GMAP_RINGBUF = 27,
    GMAP_BLOOM_FILTER = 30,
};

/* Update flags, as the kernel's. */
#define GMAP_ANY     0
#define GMAP_NOEXIST 1
#define GMAP_EXIST   2
#define GMAP_F_LOCK  4

/* Definition flags (map_flags), as the kernel's where they exist. */
#define GMAP_F_NO_PREALLOC 0x1
#define GMAP_F_RDONLY_PROG 0x80
#define GMAP_F_WRONLY_PROG 0x100
#define GMAP_F_MMAPABLE    0x400

struct gmap_def {
    uint32_t type;             /* enum gmap_type */
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;      /* ring buffer: data bytes, a power of 2 multiple of the page size */
    uint32_t map_flags;
    uint32_t inner_map_type;   /* map-in-map: the inner maps' definition */
    uint32_t inner_key_size;
    uint32_t inner_value_size;
    uint32_t inner_max_entries;
    char name[64];
    uint32_t inner_map_flags;  /* map-in-map: the inner maps' map_flags (here, in
                                * what was padding, so no other field moves) */
    uint64_t map_extra;        /* bloom filter: number of hashes (low 4 bits, 0 = 5);
                                * perf event array: data bytes per buffer
                                * (power of 2 pages, 0 = 8 pages) */
};

struct gmap;

/* Create a new map in a fresh shared-memory object, mode 0600 (or 0660 with
 * a group id >= 0). The object's name is available from gmap_shm_name(). */
int gmap_create(const struct gmap_def *def, int group, struct gmap **out,
                struct graft_err *err);
/* gmap_create with the object named PREFIX<16 random hex digits> (prefix
 * "/NAME." at most 47 bytes; NULL: "/graft.<uid>."), so a registry's maps
 * can be found by its name even when its records are lost. */
int gmap_create_named(const struct gmap_def *def, int group, const char *prefix,
                      struct gmap **out, struct graft_err *err);
/* Open an existing map by its shared-memory object name (from another
 * process). Refuses an object another user created (anyone can create any
 * name in /dev/shm) or that others may write. */
int gmap_open(const char *shm_name, struct gmap **out, struct graft_err *err);
void gmap_close(struct gmap *map);           /* unmap; the map lives on */
int gmap_unlink(const char *shm_name);       /* remove the object once all close */

const struct gmap_def *gmap_get_def(const struct gmap *map);
const char *gmap_shm_name(const struct gmap *map);
uint64_t gmap_memory_bytes(const struct gmap *map);   /* for memory budgets */
int gmap_possible_cpus(void);
const char *gmap_type_name(uint32_t type);   /* "hash", ...; "unknown" */

/* Tag this process's mapping of the map with memory protection key pkey
 * (pkey_mprotect, read+write), e.g. the isolation component's extension key,
 * so that code running with that key disabled in PKRU - the host - faults on
 * any access. Only this process's mapping changes; other processes mapping
 * the same object are not affected. pkey -1 puts the default key back.
 * gmap_get_def(), gmap_memory_bytes(), gmap_shm_name() and
 * gmap_array_layout() keep working without access (they read copies kept in
 * the handle); every other operation touches the map's memory and must run
 * where the key is enabled (an extension, a helper, or between
 * giso_enter()/giso_leave()). Returns 0 or -errno. */
int gmap_protect_key(struct gmap *map, int pkey, struct graft_err *err);

/* The handle itself (where the mapping is, its sizes and layout: what every
 * map operation trusts) is heap memory, next to the host's own objects.
 * gmap_handle_move() copies it to dst - gmap_handle_size() bytes the caller
 * owns, e.g. a page tagged with the extension key, in which case call it
 * with the key enabled - frees the old one and returns the handle at dst.
 * gmap_close() of a moved handle unmaps the map and leaves dst alone; it
 * reads the handle before unmapping, so with the key enabled at that call
 * a hook firing in the munmap cannot trip it. After the move, every
 * function here, gmap_get_def() included, needs access to dst. */
size_t gmap_handle_size(void);
struct gmap *gmap_handle_move(struct gmap *map, void *dst);

/* Helper-side operations (called from eBPF programs). */
void *gmap_lookup(struct gmap *map, const void *key);
int gmap_update(struct gmap *map, const void *key, const void *value, uint64_t flags);
int gmap_delete(struct gmap *map, const void *key);
/* The same three bound inside the library that contains them (hidden: no
 * PLT hop from graft's own helpers, which call them on every event; the
 * exported names stay for everyone else). The update returns its int
 * result sign-extended to 64 bits, as the helper does: the helper is then
 * one jump. */
void *gmap_lookup_local(struct gmap *map, const void *key) __attribute__((visibility("hidden")));
int64_t gmap_update_local(struct gmap *map, const void *key, const void *value, uint64_t flags)
    __attribute__((visibility("hidden")));
int gmap_delete_local(struct gmap *map, const void *key) __attribute__((visibility("hidden")));
int gmap_push(struct gmap *map, const void *value, uint64_t flags);
int gmap_pop(struct gmap *map, void *value);
int gmap_peek(struct gmap *map, void *value);

/* ARRAY and PERCPU_ARRAY: where the values live, for a JIT that indexes
 * them inline: value i of CPU c is at values + c * percpu_stride + i * stride
 * (percpu_stride is 0 for ARRAY; CPUs are numbered as sched_getcpu() and the
 * kernel's TSC_AUX/rdpid report them, all below gmap_possible_cpus()).
 * -EINVAL for other map types. */
int gmap_array_layout(struct gmap *map, void **values, uint64_t *stride, uint64_t *percpu_stride);

/* Control-plane operations (the bpf() syscall's view). */
int gmap_lookup_copy(struct gmap *map, const void *key, void *value);
int gmap_update_copy(struct gmap *map, const void *key, const void *value, uint64_t flags);
int gmap_lookup_and_delete(struct gmap *map, const void *key, void *value);
int gmap_get_next_key(struct gmap *map, const void *key, void *next_key);

/* Ring buffer (BPF_MAP_TYPE_RINGBUF), with the kernel's page layout:
 * consumer page, producer page, then the data area mapped twice. */
void *gmap_ringbuf_reserve(struct gmap *map, uint64_t size, uint64_t flags);
void gmap_ringbuf_submit(void *sample, uint64_t flags);
void gmap_ringbuf_discard(void *sample, uint64_t flags);
int gmap_ringbuf_output(struct gmap *map, const void *data, uint64_t size, uint64_t flags);
uint64_t gmap_ringbuf_query(struct gmap *map, uint64_t flags);
/* A record stays BUSY until its producer submits or discards it, and every
 * consumer waits there. If the producer process died in between (killed
 * after bpf_ringbuf_reserve), its records are marked discarded so that
 * consumers - libbpf's too, which skip discarded records - go on. Consumers
 * call this when they find the record at the consumer position BUSY (it
 * returns at once otherwise, and checks a producer found alive at most every
 * 10 ms); a producer that finds the ring full does it too. Returns how many
 * records were discarded, or a negative errno. */
int gmap_ringbuf_recover(struct gmap *map);

/* The consumer page of a ring buffer: producer page at +page size, data at
 * +2 page sizes, mapped twice back to back (as libbpf's struct ring sees it).
 * In the shm object the consumer page is at file offset page size (one
 * header page first, like the kernel's bpf_ringbuf), so a consumer in
 * another process may mmap the object exactly as libbpf mmaps a ringbuf fd,
 * with both offsets shifted by one page. NULL for other map types. */
void *gmap_ringbuf_pages(struct gmap *map);

/* Perf event array: append a PERF_RECORD_SAMPLE (raw data) to the buffer of
 * index cpu_flags & 0xffffffff, or of this CPU when that is 0xffffffff.
 * Each index has a struct perf_event_mmap_page followed by its data pages
 * (data_offset/data_size in that page say where); gmap_perf_page gives it.
 * A record that does not fit is counted and reported by a PERF_RECORD_LOST
 * before the next one that fits. */
int gmap_perf_output(struct gmap *map, uint64_t cpu_flags, const void *data, uint64_t size);
void *gmap_perf_page(struct gmap *map, uint32_t index);
/* Perf event array: make index's ring data_size bytes (a power of 2
 * multiple of the page, at most the map's map_extra, which reserves the
 * space), as a consumer that maps a buffer of that size needs; records not
 * yet read are dropped. The size lives in the index's page (data_size),
 * where producers read it. -EINVAL for a size that does not fit. */
int gmap_perf_resize(struct gmap *map, uint32_t index, uint64_t data_size);

/* Map-in-map: ARRAY_OF_MAPS/HASH_OF_MAPS values are inner map ids (u32) that
 * the runtime assigns. The outer map's inner_* fields are the template the
 * verifier bounds every access to an inner map by, so an inner map must
 * match it exactly: type, key size, value size, max entries and map flags.
 * Every update of a slot (gmap_update, gmap_update_copy: the one way a slot
 * is written) resolves the id with by_id and refuses it: -EBADF when no
 * resolver is set or the id does not resolve, -EINVAL when the map differs
 * from the template (or the outer map has none). gmap_lookup returns the
 * struct gmap * by_id gives for the stored id, and checks it against the
 * template again (the slot is shared memory, which another process may
 * have written): NULL when the slot is empty, the id does not resolve, or
 * the map does not match. The control-plane forms read and write the ids.
 * The resolver is process-wide; by_id must be safe to call from any thread. */
void gmap_set_resolver(struct gmap *(*by_id)(uint32_t id));

/* Debugging: verify the map's invariants (chains, free list, counts,
 * positions). 0 when consistent, else -EUCLEAN with the first problem. */
int gmap_check_consistency(struct gmap *map, struct graft_err *err);
/* Print the map as one JSON object (definition and entries; keys/values as
 * numbers when 4 or 8 bytes, else arrays of byte values) for `graft map dump`. */
int gmap_dump_json(struct gmap *map, FILE *out);
/* How many times a lock was found held by a dead process and the map repaired. */
uint32_t gmap_repairs(const struct gmap *map);

#endif
