/*
 * map_dump.c - gmap_dump_json: one JSON object per map for `graft map dump`
 * and for debugging. Keys and values of 4 or 8 bytes print as unsigned
 * numbers (host byte order), others as arrays of byte values. Per-CPU maps
 * print "values": one entry per CPU. Iteration uses the control-plane
 * operations, so a map being changed meanwhile prints some consistent
 * entries; the walk is bounded by max_entries.
 */
#include "maps/maps_internal.h"

#include <inttypes.h>
#include <stdlib.h>

static void print_bytes(FILE *out, const uint8_t *p, uint32_t n)
{
    if (n == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        fprintf(out, "%" PRIu32, v);
        return;
    }
    if (n == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        fprintf(out, "%" PRIu64, v);
        return;
    }
    fputc('[', out);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "%s%u", i ? "," : "", p[i]);
    fputc(']', out);
}

static void print_name(FILE *out, const char *s, size_t max)
{
    fputc('"', out);
    for (size_t i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static bool percpu(uint32_t t)
{
    return t == GMAP_PERCPU_ARRAY || t == GMAP_PERCPU_HASH || t == GMAP_LRU_PERCPU_HASH;
}

static void print_value(FILE *out, const struct gmap *m, const uint8_t *v)
{
    if (!percpu(m->type)) {
        fputs("\"value\":", out);
        print_bytes(out, v, m->value_size);
        return;
    }
    fputs("\"values\":[", out);
    for (uint32_t c = 0; c < m->ncpus; c++) {
        fputs(c ? "," : "", out);
        print_bytes(out, v + (uint64_t)c * m->stride, m->value_size);
    }
    fputc(']', out);
}

static int dump_keyed(struct gmap *m, FILE *out)
{
    uint8_t *key = calloc(1, m->key_size), *next = calloc(1, m->key_size);
    uint8_t *val = calloc(percpu(m->type) ? m->ncpus : 1, m->stride);
    if (!key || !next || !val) {
        free(key), free(next), free(val);
        return -ENOMEM;
    }
    bool first = true;
    const void *cur = NULL;
    for (uint64_t n = 0; n <= m->max_entries; n++) {
        if (gmap_get_next_key(m, cur, next))
            break;
        memcpy(key, next, m->key_size);
        cur = key;
        if (gmap_lookup_copy(m, key, val))
            continue;   /* empty prog/map array slot, or deleted meanwhile */
        fprintf(out, "%s{\"key\":", first ? "" : ",");
        print_bytes(out, key, m->key_size);
        fputc(',', out);
        print_value(out, m, val);
        fputc('}', out);
        first = false;
    }
    free(key), free(next), free(val);
    return 0;
}

static int dump_queue(struct gmap *m, FILE *out)
{
    int r = gmap_lock(m);
    if (r)
        return r;
    uint32_t size = m->max_entries + 1, n = 0;
    /* oldest first */
    for (uint32_t i = m->h->q_tail; i != m->h->q_head && n < size; i = (i + 1) % size, n++) {
        fprintf(out, "%s{\"value\":", n ? "," : "");
        print_bytes(out, m->base + m->h->off_a + (uint64_t)i * m->stride, m->value_size);
        fputc('}', out);
    }
    gmap_unlock(m);
    return 0;
}

int gmap_dump_json(struct gmap *m, FILE *out)
{
    const struct gmap_def *d = &m->h->def;
    fputs("{\"name\":", out);
    print_name(out, d->name, sizeof(d->name));
    fputs(",\"shm\":", out);
    print_name(out, m->name, sizeof(m->name));
    fprintf(out, ",\"type\":\"%s\",\"key_size\":%u,\"value_size\":%u,\"max_entries\":%u,\"map_flags\":%u",
            gmap_type_name(d->type), d->key_size, d->value_size, d->max_entries, d->map_flags);
    if (percpu(m->type))
        fprintf(out, ",\"ncpus\":%u", m->ncpus);
    int r = 0;
    switch (m->type) {
    case GMAP_RINGBUF:
        fprintf(out, ",\"consumer_pos\":%" PRIu64 ",\"producer_pos\":%" PRIu64, gmap_ringbuf_query(m, 2),
                gmap_ringbuf_query(m, 3));
        break;
    case GMAP_PERF_EVENT_ARRAY:
        fputs(",\"buffers\":[", out);
        for (uint32_t i = 0; i < m->max_entries; i++) {
            uint64_t *pg = gmap_perf_page(m, i);
            /* data_head at byte 1024, data_tail at 1032 of perf_event_mmap_page */
            fprintf(out, "%s{\"index\":%u,\"data_head\":%" PRIu64 ",\"data_tail\":%" PRIu64 "}", i ? "," : "",
                    i, __atomic_load_n(&pg[128], __ATOMIC_ACQUIRE), __atomic_load_n(&pg[129], __ATOMIC_ACQUIRE));
        }
        fputc(']', out);
        break;
    case GMAP_BLOOM_FILTER:
        fprintf(out, ",\"nr_hashes\":%u,\"bits\":%llu", m->h->nr_hashes,
                (unsigned long long)m->h->bloom_mask + 1);
        break;
    case GMAP_QUEUE: case GMAP_STACK:
        fputs(",\"entries\":[", out);
        r = dump_queue(m, out);
        fputc(']', out);
        break;
    default:
        fputs(",\"entries\":[", out);
        r = dump_keyed(m, out);
        fputc(']', out);
        break;
    }
    fputs("}\n", out);
    return r ? r : (ferror(out) ? -EIO : 0);
}
