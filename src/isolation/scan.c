/*
 * scan.c - find instructions in this process that could change PKRU outside
 * graft's gates: WRPKRU, XRSTOR(64) and XRSTORS(64).
 *
 * Every executable mapping is searched for the byte patterns first; only
 * where they occur is code decoded, to say whether the occurrence is on an
 * instruction boundary and what the code around it does (scan_find.c).
 * Results for file-backed mappings are kept per file identity in a small
 * cache shared by this user's processes (scan_cache.c), so a library is
 * decoded once, not at every start; pages that no longer hold the file's
 * bytes (pagemap says they were copied on write: patched code) make the
 * mapping be scanned from memory again and not cached. Two adjacent
 * executable mappings are checked across their seam. giso_scan_new() scans
 * only mappings that appeared since the last scan (dlopen).
 *
 * Invariants: memory is read through /proc/self/mem (pread), never by
 * dereferencing, so a mapping that disappears mid-scan yields EIO and is
 * skipped instead of crashing; nothing the scan allocates outlives the call
 * except the list of mappings already scanned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "isolation/isolation.h"
#include "isolation/scan_internal.h"

/* ---- registered gate ranges ------------------------------------------- */

struct range { uintptr_t start, end; };

static pthread_mutex_t g_gates_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *g_gates;
static size_t g_ngates, g_gates_cap;

int giso_register_gate_range(const void *start, size_t len)
{
    if (!start || !len)
        return -EINVAL;
    pthread_mutex_lock(&g_gates_lock);
    if (g_ngates == g_gates_cap) {
        size_t cap = g_gates_cap ? 2 * g_gates_cap : 16;
        struct range *r = realloc(g_gates, cap * sizeof(*r));
        if (!r) {
            pthread_mutex_unlock(&g_gates_lock);
            return -ENOMEM;
        }
        g_gates = r, g_gates_cap = cap;
    }
    g_gates[g_ngates++] = (struct range){ (uintptr_t)start, (uintptr_t)start + len };
    pthread_mutex_unlock(&g_gates_lock);
    return 0;
}

int giso_unregister_gate_range(const void *start, size_t len)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&g_gates_lock);
    for (size_t i = 0; i < g_ngates; i++) {
        if (g_gates[i].start == (uintptr_t)start &&
            g_gates[i].end == (uintptr_t)start + len) {
            g_gates[i] = g_gates[--g_ngates];
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&g_gates_lock);
    return rc;
}

/* ---- classes ----------------------------------------------------------- */

const char *giso_class_name(enum giso_class c)
{
    switch (c) {
    case GISO_CLASS_UNALIGNED: return "unaligned";
    case GISO_CLASS_CHECKED: return "checked";
    case GISO_CLASS_FIXED: return "fixed";
    case GISO_CLASS_RMW: return "rmw";
    case GISO_CLASS_MASKED: return "masked";
    default: return "open";
    }
}

int giso_finding_usable(const struct giso_finding *f)
{
    int key = giso_pkey();
    switch (f->cls) {
    case GISO_CLASS_OPEN:
        return 1;
    case GISO_CLASS_CHECKED:
    case GISO_CLASS_FIXED:
        /* a value that leaves the key's access-disable bit clear opens it */
        return key > 0 && !(f->value & (1u << (2 * key)));
    default:
        return 0;
    }
}

/* ---- reporting ---------------------------------------------------------- */

struct out {
    const struct range *gates;
    size_t ngates;
    giso_report_fn report;
    void *arg;
    int found;
};

static int in_gate(const struct out *o, uintptr_t addr)
{
    for (size_t i = 0; i < o->ngates; i++)
        if (addr >= o->gates[i].start && addr < o->gates[i].end)
            return 1;
    return 0;
}

static struct range *copy_gates(size_t *n)
{
    pthread_mutex_lock(&g_gates_lock);
    struct range *gates = g_ngates ? malloc(g_ngates * sizeof(*gates)) : NULL;
    *n = gates ? g_ngates : 0;
    if (gates)
        memcpy(gates, g_gates, g_ngates * sizeof(*gates));
    pthread_mutex_unlock(&g_gates_lock);
    return gates;
}

/* Where a mapping is, for turning mapping offsets into findings. */
struct where {
    uintptr_t start;
    uint64_t offset;
    const char *path;
};

static void emit(struct out *o, const struct where *w, const struct gscan_rec *r)
{
    uintptr_t addr = w->start + r->off;
    if (in_gate(o, addr))
        return;
    o->found++;
    if (!o->report)
        return;
    struct giso_finding f = {
        .addr = addr, .insn = (enum giso_insn)r->insn, .insn_name = r->name,
        .path = w->path, .offset = w->offset + r->off,
        .symbol = r->symbol[0] ? r->symbol : NULL, .symbol_off = r->sym_off,
        .special = w->path[0] == '[', .aligned = r->aligned, .cls = (enum giso_class)r->cls,
        .has_value = r->has_value, .value = r->value,
    };
    o->report(&f, o->arg);
}

/* ---- one buffer -------------------------------------------------------- */

struct collect {
    const struct gscan_sym *syms;
    size_t nsyms;
    struct gscan_rec *v;
    size_t n, cap;
    int oom;
};

/* The symbol containing offset off, if any (syms sorted by off). */
static const struct gscan_sym *enclosing(const struct collect *c, uint64_t off)
{
    const struct gscan_sym *best = NULL;
    size_t lo = 0, hi = c->nsyms;
    while (lo < hi) {               /* last symbol with sym.off <= off */
        size_t mid = (lo + hi) / 2;
        if (c->syms[mid].off <= off)
            best = &c->syms[mid], lo = mid + 1;
        else
            hi = mid;
    }
    if (best && best->size && off >= best->off + best->size)
        return NULL;
    return best;
}

static void collect_hit(const struct gscan_hit *h, void *arg)
{
    struct collect *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        struct gscan_rec *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            c->oom = 1;
            return;
        }
        c->v = v, c->cap = cap;
    }
    struct gscan_rec *r = &c->v[c->n++];
    memset(r, 0, sizeof(*r));
    r->off = h->off, r->insn = (uint8_t)h->insn, r->cls = (uint8_t)h->cls;
    r->aligned = (uint8_t)h->aligned, r->has_value = (uint8_t)h->has_value;
    r->value = h->value;
    snprintf(r->name, sizeof(r->name), "%s", h->name);
    const struct gscan_sym *sym = enclosing(c, h->off);
    if (sym) {
        snprintf(r->symbol, sizeof(r->symbol), "%s", sym->name);
        r->sym_off = h->off - sym->off;
    }
}

int giso_scan_code(const void *code, size_t len, uintptr_t base,
                   giso_report_fn report, void *arg)
{
    struct collect c = { 0 };
    if (!code && len)
        return -EINVAL;
    int rc = gscan_buffer(code, len, NULL, 0, collect_hit, &c);
    if (rc < 0 || c.oom) {
        free(c.v);
        return rc < 0 ? rc : -ENOMEM;
    }
    struct out o = { .report = report, .arg = arg };
    struct range *gates = copy_gates(&o.ngates);
    o.gates = gates;
    struct where w = { .start = base, .path = "" };
    for (size_t i = 0; i < c.n; i++)
        emit(&o, &w, &c.v[i]);
    free(gates);
    free(c.v);
    return o.found;
}

/* ---- ELF symbols of a mapped file ------------------------------------ */

struct elf_syms {
    int fd;
    Elf *elf;
    struct gscan_sym *v;
    size_t n, cap;
};

static int sym_cmp(const void *a, const void *b)
{
    const struct gscan_sym *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* File offset of virtual address v, via the PT_LOAD segment holding it. */
static int vaddr_to_off(Elf *elf, size_t nph, uint64_t v, uint64_t *off)
{
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (v >= ph.p_vaddr && v < ph.p_vaddr + ph.p_filesz) {
            *off = v - ph.p_vaddr + ph.p_offset;
            return 1;
        }
    }
    return 0;
}

static void add_syms(struct elf_syms *es, Elf_Scn *scn, const GElf_Shdr *sh, size_t nph,
                     uint64_t map_off, size_t map_len)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || !sh->sh_entsize)
        return;
    size_t n = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym sym;
        uint64_t fo;
        if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
            continue;
        int t = GELF_ST_TYPE(sym.st_info);
        if (t != STT_FUNC && t != STT_GNU_IFUNC)
            continue;
        if (!vaddr_to_off(es->elf, nph, sym.st_value, &fo) ||
            fo < map_off || fo >= map_off + map_len)
            continue;
        if (es->n == es->cap) {
            size_t cap = es->cap ? 2 * es->cap : 256;
            struct gscan_sym *v = realloc(es->v, cap * sizeof(*v));
            if (!v)
                return;                 /* fewer sync points; still correct */
            es->v = v, es->cap = cap;
        }
        const char *name = elf_strptr(es->elf, sh->sh_link, sym.st_name);
        es->v[es->n++] = (struct gscan_sym){ fo - map_off, sym.st_size, name ? name : "?" };
    }
}

/* Function symbols of path that fall in [map_off, map_off+map_len) of the
 * file, sorted. Any failure just leaves no symbols: the sweep still runs. */
static void load_syms(struct elf_syms *es, const char *path, uint64_t map_off,
                      size_t map_len)
{
    memset(es, 0, sizeof(*es));
    es->fd = -1;
    if (path[0] != '/' || strstr(path, " (deleted)"))
        return;
    es->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (es->fd < 0)
        return;
    es->elf = elf_begin(es->fd, ELF_C_READ, NULL);
    size_t nph;
    if (!es->elf || elf_kind(es->elf) != ELF_K_ELF || elf_getphdrnum(es->elf, &nph) != 0)
        return;
    Elf_Scn *symtab = NULL, *dynsym = NULL, *scn = NULL;
    GElf_Shdr sh;
    while ((scn = elf_nextscn(es->elf, scn))) {
        if (!gelf_getshdr(scn, &sh))
            continue;
        if (sh.sh_type == SHT_SYMTAB)
            symtab = scn;
        else if (sh.sh_type == SHT_DYNSYM)
            dynsym = scn;
    }
    scn = symtab ? symtab : dynsym;         /* .symtab is a superset when present */
    if (scn && gelf_getshdr(scn, &sh))
        add_syms(es, scn, &sh, nph, map_off, map_len);
    if (es->n)
        qsort(es->v, es->n, sizeof(*es->v), sym_cmp);
}

static void free_syms(struct elf_syms *es)
{
    free(es->v);
    if (es->elf)
        elf_end(es->elf);
    if (es->fd >= 0)
        close(es->fd);
}

int gscan_load_syms(const char *path, uint64_t map_off, size_t map_len,
                    const struct gscan_sym **v, size_t *n, void **handle)
{
    struct elf_syms *es = malloc(sizeof(*es));
    if (!es)
        return -ENOMEM;
    elf_version(EV_CURRENT);
    load_syms(es, path, map_off, map_len);
    *v = es->v, *n = es->n, *handle = es;
    return 0;
}

void gscan_free_syms(void *handle)
{
    if (handle) {
        free_syms(handle);
        free(handle);
    }
}

/* ---- the process scan ------------------------------------------------- */

struct mapping {
    uintptr_t start, end;
    uint64_t offset, inode;
    unsigned dev_major, dev_minor;
    char perms[8];
    char path[4096];
};

/* One /proc/self/maps line; returns 1 for an executable mapping. */
static int parse_maps_line(const char *line, struct mapping *m)
{
    int pathpos = -1;
    m->path[0] = '\0';
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %x:%x %" SCNu64 " %n",
               &m->start, &m->end, m->perms, &m->offset, &m->dev_major, &m->dev_minor,
               &m->inode, &pathpos) < 7)
        return 0;
    if (pathpos > 0) {
        snprintf(m->path, sizeof(m->path), "%s", line + pathpos);
        m->path[strcspn(m->path, "\n")] = '\0';
    }
    return strchr(m->perms, 'x') != NULL && m->end > m->start;
}

/* The mappings already scanned, for giso_scan_new(). */
struct seen { uintptr_t start, end; uint64_t offset, inode; };
static pthread_mutex_t g_seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen *g_seen;
static size_t g_nseen;

static int was_seen(const struct seen *v, size_t n, const struct mapping *m)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].start == m->start && v[i].end == m->end && v[i].offset == m->offset &&
            v[i].inode == m->inode)
            return 1;
    return 0;
}

/* 1 when every page of [start, end) still holds the file's bytes: not
 * present (the file will be read on first touch) or present as a file page
 * (pagemap bit 61), and not swapped out (bit 62: an anonymous copy). A page
 * written since it was mapped (patched code) was copied and is neither.
 * 0 when pagemap cannot tell. */
static int mapping_pristine(int pagemap, uintptr_t start, uintptr_t end)
{
    if (pagemap < 0)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t buf[512];
    for (uintptr_t a = start; a < end;) {
        size_t n = (size_t)((end - a) / (uintptr_t)page);
        if (n > 512)
            n = 512;
        ssize_t got = pread(pagemap, buf, n * 8, (off_t)(a / (uintptr_t)page * 8));
        if (got != (ssize_t)(n * 8))
            return 0;
        for (size_t i = 0; i < n; i++) {
            int present = (buf[i] >> 63) & 1, swapped = (buf[i] >> 62) & 1;
            int file = (buf[i] >> 61) & 1;
            if (swapped || (present && !file))
                return 0;
        }
        a += n * (uintptr_t)page;
    }
    return 1;
}

/* The cache key of m if its path is still the mapped file. */
static int mapping_key(const struct mapping *m, struct gscan_key *key)
{
    struct stat st;
    if (m->path[0] != '/' || strstr(m->path, " (deleted)") || stat(m->path, &st) != 0 ||
        (uint64_t)st.st_ino != m->inode || major(st.st_dev) != m->dev_major ||
        minor(st.st_dev) != m->dev_minor)
        return 0;
    return gscan_key_of(&st, m->offset, m->end - m->start, key) == 0;
}

static void scan_mapping(struct out *o, int memfd, int pagemap, const struct mapping *m)
{
    struct where w = { .start = m->start, .offset = m->offset, .path = m->path };
    struct gscan_key key;
    int keyed = mapping_key(m, &key) && mapping_pristine(pagemap, m->start, m->end);
    struct gscan_rec *recs = NULL;
    size_t n = 0;
    if (keyed && gscan_cache_get(&key, &recs, &n)) {
        for (size_t i = 0; i < n; i++)
            emit(o, &w, &recs[i]);
        free(recs);
        return;
    }
    size_t len = m->end - m->start;
    uint8_t *buf = malloc(len);
    if (!buf)
        return;
    /* /proc/self/mem also reads execute-only pages; [vsyscall] gives EIO */
    ssize_t got = pread(memfd, buf, len, (off_t)m->start);
    if (got > 0) {
        struct elf_syms es;
        load_syms(&es, m->path, m->offset, (size_t)got);
        struct collect c = { .syms = es.v, .nsyms = es.n };
        int rc = gscan_buffer(buf, (size_t)got, es.v, es.n, collect_hit, &c);
        if (rc >= 0 && !c.oom) {
            for (size_t i = 0; i < c.n; i++)
                emit(o, &w, &c.v[i]);
            /* cache only what is known to be the file's bytes, whole */
            if (keyed && (size_t)got == len && mapping_pristine(pagemap, m->start, m->end))
                gscan_cache_put(&key, c.v, c.n);
        }
        free(c.v);
        free_syms(&es);
    }
    free(buf);
}

/* A pattern starting in the last 2 bytes of a and running into b, the
 * next mapping, when both are executable and b starts where a ends: the CPU
 * fetches across the seam, so it counts (as unaligned: neither decode
 * covers it). */
static void scan_seam(struct out *o, int memfd, const struct mapping *a,
                      const struct mapping *b)
{
    uint8_t w[4];
    if (a->end != b->start || a->end - a->start < 2 || b->end - b->start < 2 ||
        pread(memfd, w, 2, (off_t)(a->end - 2)) != 2 || pread(memfd, w + 2, 2, (off_t)b->start) != 2)
        return;
    struct where wh = { .start = a->start, .offset = a->offset, .path = a->path };
    for (size_t i = 0; i < 2; i++) {
        enum giso_insn k;
        if (!gscan_candidate(w + i, 4 - i, &k))
            continue;
        struct gscan_rec r = { .off = a->end - a->start - 2 + i, .insn = (uint8_t)k,
                               .cls = GISO_CLASS_UNALIGNED };
        snprintf(r.name, sizeof(r.name), "%s", gscan_insn_name(k));
        emit(o, &wh, &r);
    }
}

static int scan_process(giso_report_fn report, void *arg, int only_new, struct graft_err *err)
{
    struct out o = { .report = report, .arg = arg };
    elf_version(EV_CURRENT);
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return graft_errf(err, -errno, "isolation scan: cannot open /proc/self/maps: %s "
                          "(is /proc mounted?)", strerror(errno));
    int memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    if (memfd < 0) {
        int e = errno;
        fclose(maps);
        return graft_errf(err, -e, "isolation scan: cannot open /proc/self/mem: %s",
                          strerror(e));
    }
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    struct range *gates = copy_gates(&o.ngates);
    o.gates = gates;

    /* Read the whole maps file first: scanning allocates, which can change it. */
    char *line = NULL;
    size_t cap = 0, nmaps = 0, mcap = 0;
    struct mapping *ms = NULL;
    while (getline(&line, &cap, maps) > 0) {
        if (nmaps == mcap) {
            size_t nc = mcap ? 2 * mcap : 32;
            struct mapping *p = realloc(ms, nc * sizeof(*p));
            if (!p)
                break;
            ms = p, mcap = nc;
        }
        if (parse_maps_line(line, &ms[nmaps]))
            nmaps++;
    }
    free(line);
    fclose(maps);

    pthread_mutex_lock(&g_seen_lock);
    struct seen *now = calloc(nmaps ? nmaps : 1, sizeof(*now));
    for (size_t i = 0; i < nmaps; i++) {
        int fresh = !only_new || !was_seen(g_seen, g_nseen, &ms[i]);
        if (fresh)
            scan_mapping(&o, memfd, pagemap, &ms[i]);
        if (i && (fresh || !was_seen(g_seen, g_nseen, &ms[i - 1]) || !only_new))
            scan_seam(&o, memfd, &ms[i - 1], &ms[i]);
        if (now)
            now[i] = (struct seen){ ms[i].start, ms[i].end, ms[i].offset, ms[i].inode };
    }
    if (now) {
        free(g_seen);
        g_seen = now, g_nseen = nmaps;
    }
    pthread_mutex_unlock(&g_seen_lock);
    free(ms);
    free(gates);
    if (pagemap >= 0)
        close(pagemap);
    close(memfd);
    return o.found;
}

int giso_scan(giso_report_fn report, void *arg, struct graft_err *err)
{
    return scan_process(report, arg, 0, err);
}

int giso_scan_new(giso_report_fn report, void *arg, struct graft_err *err)
{
    return scan_process(report, arg, 1, err);
}

/* ---- the load-time summary -------------------------------------------- */

#define SUMMARY_LIST 4                 /* findings spelled out, the rest counted */

struct summary {
    char usable[512], rmw[256];
    size_t ulen, rlen;
    int n, n_usable, n_rmw, by_class[8];
};

static void describe(char *buf, size_t cap, size_t *len, int nth, const struct giso_finding *f)
{
    if (*len + 1 >= cap)
        return;
    const char *path = f->path && f->path[0] ? strrchr(f->path, '/') : NULL;
    path = path ? path + 1 : (f->path && f->path[0] ? f->path : "anonymous");
    int w;
    if (f->symbol)
        w = snprintf(buf + *len, cap - *len, "%s%s at %#" PRIxPTR " (%s %s+%#" PRIx64 ")",
                     nth ? ", " : ": ", f->insn_name, f->addr, path, f->symbol, f->symbol_off);
    else
        w = snprintf(buf + *len, cap - *len, "%s%s at %#" PRIxPTR " (%s+%#" PRIx64 ")",
                     nth ? ", " : ": ", f->insn_name, f->addr, path, f->offset);
    if (w > 0)
        *len = *len + (size_t)w < cap ? *len + (size_t)w : cap - 1;
}

static void summary_add(const struct giso_finding *f, void *arg)
{
    struct summary *s = arg;
    s->n++;
    if ((unsigned)f->cls < 8)
        s->by_class[f->cls]++;
    if (giso_finding_usable(f)) {
        if (s->n_usable < SUMMARY_LIST)
            describe(s->usable, sizeof(s->usable), &s->ulen, s->n_usable, f);
        s->n_usable++;
    } else if (f->cls == GISO_CLASS_RMW) {
        if (s->n_rmw < 2)
            describe(s->rmw, sizeof(s->rmw), &s->rlen, s->n_rmw, f);
        s->n_rmw++;
    }
}

static int summarise(char *buf, size_t cap, int only_new, struct graft_err *err)
{
    if (!buf || !cap)
        return -EINVAL;
    if (!giso_enabled()) {
        snprintf(buf, cap, "%s", only_new ? "" : giso_status());
        return 0;
    }
    struct summary s;
    memset(&s, 0, sizeof(s));
    int found = scan_process(summary_add, &s, only_new, err);
    if (found < 0) {
        snprintf(buf, cap, "%s; host has ? stray WRPKRU/XRSTOR (scan failed: %s)",
                 giso_status(), err && err->msg[0] ? err->msg : strerror(-found));
        return found;
    }
    if (only_new && !found) {
        buf[0] = '\0';
        return 0;
    }
    int safe = s.by_class[GISO_CLASS_CHECKED] + s.by_class[GISO_CLASS_FIXED] - s.n_usable +
               s.by_class[GISO_CLASS_OPEN];
    /* counts first: the registry keeps 256 bytes of the message */
    snprintf(buf, cap, "%s; %s has %d stray WRPKRU/XRSTOR, %d usable without a control-flow "
             "hijack (%d rmw, %d masked xrstor, %d unaligned, %d checked/fixed)%s%s%s%s%s",
             giso_status(), only_new ? "newly mapped code" : "host", found, s.n_usable,
             s.n_rmw, s.by_class[GISO_CLASS_MASKED], s.by_class[GISO_CLASS_UNALIGNED], safe,
             s.n_usable ? "; usable" : "", s.usable, s.n_usable > SUMMARY_LIST ? ", ..." : "",
             s.n_rmw ? "; rmw" : "", s.rmw);
    return found;
}

int giso_scan_summary(char *buf, size_t cap, struct graft_err *err)
{
    return summarise(buf, cap, 0, err);
}

int giso_scan_summary_new(char *buf, size_t cap, struct graft_err *err)
{
    return summarise(buf, cap, 1, err);
}
