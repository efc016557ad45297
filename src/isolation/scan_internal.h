/*
 * scan_internal.h - the scanner's pieces, shared by scan.c, scan_find.c,
 * scan_cache.c and the scanner's tests; not part of the public API.
 */
#ifndef GRAFT_ISOLATION_SCAN_INTERNAL_H
#define GRAFT_ISOLATION_SCAN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "isolation/isolation.h"

/* An ELF function symbol, as an offset into the buffer being scanned. */
struct gscan_sym { uint64_t off, size; const char *name; };

/* One occurrence, in buffer offsets. */
struct gscan_hit {
    size_t off;                 /* the instruction's first byte (prefixes
                                   included) when aligned, else the 0f byte */
    enum giso_insn insn;
    enum giso_class cls;
    int aligned;
    int has_value;
    uint32_t value;             /* eax the code loads (see giso_finding) */
    char name[16];              /* "wrpkru", "xrstor64", ... */
};
typedef void (*gscan_hit_fn)(const struct gscan_hit *h, void *arg);

/* Is there a WRPKRU/XRSTOR/XRSTORS byte pattern starting at c (avail bytes
 * readable)? Sets *kind. */
int gscan_candidate(const uint8_t *c, size_t avail, enum giso_insn *kind);
const char *gscan_insn_name(enum giso_insn k);

/* Every occurrence in code[0..len), with regions starting at each of
 * syms[] (sorted by off) decoded separately. Returns how many or -EINVAL. */
int gscan_buffer(const uint8_t *code, size_t len, const struct gscan_sym *syms, size_t nsyms,
                 gscan_hit_fn fn, void *arg);

/* The function symbols the process scan uses for a mapping of path at file
 * offset map_off, map_len bytes long (offsets into the mapping, sorted);
 * none when the file has no symbol table. Free with gscan_free_syms(). */
int gscan_load_syms(const char *path, uint64_t map_off, size_t map_len,
                    const struct gscan_sym **v, size_t *n, void **handle);
void gscan_free_syms(void *handle);

/* ---- results cached per file (scan_cache.c) ---- */

/* What identifies the bytes of one file-backed mapping: the file (device,
 * inode, size, modification and status-change times: ctime cannot be set
 * back by a user) and the mapped range. */
struct gscan_key {
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
    uint64_t map_off, map_len;
};

/* A cached finding: offsets into the mapping. */
struct gscan_rec {
    uint64_t off;
    uint64_t sym_off;
    uint8_t insn, cls, aligned, has_value;
    uint32_t value;
    char name[16];
    char symbol[72];            /* "" when none; truncated if longer */
};

int gscan_key_of(const struct stat *st, uint64_t map_off, uint64_t map_len,
                 struct gscan_key *key);
/* Look key up: 1 and *recs (malloc'd, *n entries) on a hit, 0 on a miss or
 * when the cache is off or unsafe to trust. */
int gscan_cache_get(const struct gscan_key *key, struct gscan_rec **recs, size_t *n);
/* Store; best effort (a failure only means the next process scans again). */
void gscan_cache_put(const struct gscan_key *key, const struct gscan_rec *recs, size_t n);
/* The directory in use ("" when the cache is off), for messages and tests. */
const char *gscan_cache_dir(void);

#endif
