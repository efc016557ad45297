/*
 * trace.c - the trace buffer, and a consumer for graft ring buffers.
 *
 * The consumer follows the kernel's ring buffer protocol exactly: records
 * start at consumer_pos; each has an 8-byte header (u32 length with the busy
 * bit 31 and discard bit 30, u32 page offset), is padded to 8 bytes, and
 * the consumer publishes its new position with a release store once a record
 * is read, so producers may reuse the space. A record left BUSY by a
 * producer that died is discarded by gmap_ringbuf_recover, so it stops the
 * consumer only until that finds the producer dead.
 */
#define _GNU_SOURCE
#include "runtime/trace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers/helpers.h"

#define RB_BUSY    (1u << 31)
#define RB_DISCARD (1u << 30)
#define RB_HDR     8u

int grt_trace_open(struct greg *reg, int create, struct gmap **out, struct graft_err *err)
{
    struct greg_snapshot s;
    if (greg_snapshot(reg, &s) < 0)
        return graft_errf(err, -ENOMEM, "out of memory");
    const struct greg_map *rec = greg_snapshot_map_by_name(&s, GRT_TRACE_MAP);
    int rc;
    if (rec) {
        rc = gmap_open(rec->shm, out, err);
    } else if (!create) {
        rc = graft_errf(err, -ENOENT, "no trace buffer yet: nothing has been loaded");
    } else {
        struct gmap_def def = { .type = GMAP_RINGBUF, .max_entries = GRT_TRACE_BYTES };
        snprintf(def.name, sizeof(def.name), "%s", GRT_TRACE_MAP);
        char prefix[GREG_NAME_MAX];
        rc = gmap_create_named(&def, -1, greg_map_prefix(reg, prefix, sizeof(prefix)), out, err);
        if (rc == 0 && (rc = greg_add_map(reg, GRT_TRACE_MAP, gmap_shm_name(*out), &def, err)) > 0)
            rc = 0;
        else if (rc < 0 && *out) {
            /* Not registered (a full or damaged registry): nobody else
             * knows its name, so nobody would ever remove the object. */
            gmap_unlink(gmap_shm_name(*out));
            gmap_close(*out);
            *out = NULL;
        }
    }
    greg_snapshot_free(&s);
    return rc;
}

static void sink_to_ringbuf(const char *line, void *arg)
{
    gmap_ringbuf_output(arg, line, strlen(line), 0);
}

void grt_trace_redirect(struct gmap *rb)
{
    ghelper_set_trace_sink(rb ? sink_to_ringbuf : NULL, rb);
}

int grt_ringbuf_consume(struct gmap *rb, void (*fn)(const void *, size_t, void *), void *arg)
{
    char *pages = gmap_ringbuf_pages(rb);
    if (!pages)
        return -EINVAL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t *consumer_pos = (uint64_t *)pages;
    uint64_t *producer_pos = (uint64_t *)(pages + page);
    char *data = pages + 2 * page;
    uint64_t mask = gmap_get_def(rb)->max_entries - 1;
    int n = 0;
    uint64_t cons = __atomic_load_n(consumer_pos, __ATOMIC_ACQUIRE);
    for (;;) {
        uint64_t prod = __atomic_load_n(producer_pos, __ATOMIC_ACQUIRE);
        if (cons >= prod)
            break;
        uint32_t *hdr = (uint32_t *)(data + (cons & mask));
        uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        if (len & RB_BUSY) {
            /* Reserved but not yet submitted - or never will be: if its
             * producer died, recovery marks it (and others) discarded. */
            if (gmap_ringbuf_recover(rb) > 0)
                continue;
            break;
        }
        uint32_t size = len & ~(RB_BUSY | RB_DISCARD);
        if (!(len & RB_DISCARD)) {
            fn(data + (cons & mask) + RB_HDR, size, arg);
            n++;
        }
        cons += (size + RB_HDR + 7) & ~7ull;
        __atomic_store_n(consumer_pos, cons, __ATOMIC_RELEASE);
    }
    return n;
}
