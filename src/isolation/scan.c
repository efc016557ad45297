/*
 * scan.c - find instructions in this process that could change PKRU outside
 * graft's gates: WRPKRU, XRSTOR(64) and XRSTORS(64).
 *
 * A byte pattern is only dangerous where the CPU can actually execute it as
 * that instruction, so each executable mapping is decoded with Zydis:
 * linearly from the start of the mapping and again from every ELF function
 * symbol in it (.symtab, else .dynsym), with no decode allowed to run across
 * a symbol start. Regions holding no 0f 01 / 0f ae / 0f c7 byte pair are
 * skipped without decoding, which keeps a whole-process scan in the tens of
 * milliseconds. Bytes that do not decode are stepped over one at a time, so
 * undecodable data never hides a later real instruction.
 *
 * Invariants: memory is read through /proc/self/mem (pread), never by
 * dereferencing, so a mapping that disappears mid-scan yields EIO and is
 * skipped instead of crashing; nothing the scan allocates outlives the call.
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
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "isolation/isolation.h"

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

/* ---- one region of code ---------------------------------------------- */

struct sym { uint64_t off, size; const char *name; };   /* off: into the mapping */

struct sweep {
    ZydisDecoder dec;
    const uint8_t *code;
    size_t len;
    uintptr_t base;                 /* run-time address of code[0] */
    uint64_t map_offset;            /* file offset of code[0] */
    const char *path;
    int special;
    const struct sym *syms;         /* sorted by off */
    size_t nsyms;
    const struct range *gates;
    size_t ngates;
    giso_report_fn report;
    void *arg;
    int found;
};

static int in_gate(const struct sweep *s, uintptr_t addr)
{
    for (size_t i = 0; i < s->ngates; i++)
        if (addr >= s->gates[i].start && addr < s->gates[i].end)
            return 1;
    return 0;
}

static int classify(ZydisMnemonic m, enum giso_insn *kind)
{
    switch (m) {
    case ZYDIS_MNEMONIC_WRPKRU:
        *kind = GISO_INSN_WRPKRU;
        return 1;
    case ZYDIS_MNEMONIC_XRSTOR:
    case ZYDIS_MNEMONIC_XRSTOR64:
        *kind = GISO_INSN_XRSTOR;
        return 1;
    case ZYDIS_MNEMONIC_XRSTORS:
    case ZYDIS_MNEMONIC_XRSTORS64:
        *kind = GISO_INSN_XRSTORS;
        return 1;
    default:
        return 0;
    }
}

/* The symbol containing offset off, if any (syms sorted by off). */
static const struct sym *enclosing(const struct sweep *s, uint64_t off)
{
    const struct sym *best = NULL;
    size_t lo = 0, hi = s->nsyms;
    while (lo < hi) {               /* last symbol with sym.off <= off */
        size_t mid = (lo + hi) / 2;
        if (s->syms[mid].off <= off)
            best = &s->syms[mid], lo = mid + 1;
        else
            hi = mid;
    }
    if (best && best->size && off >= best->off + best->size)
        return NULL;
    return best;
}

static void found(struct sweep *s, size_t off, ZydisMnemonic m, enum giso_insn kind)
{
    uintptr_t addr = s->base + off;
    if (in_gate(s, addr))
        return;
    s->found++;
    if (!s->report)
        return;
    const struct sym *sym = enclosing(s, off);
    struct giso_finding f = {
        .addr = addr, .insn = kind, .insn_name = ZydisMnemonicGetString(m),
        .path = s->path, .offset = s->map_offset + off,
        .symbol = sym ? sym->name : NULL, .symbol_off = sym ? off - sym->off : 0,
        .special = s->special,
    };
    s->report(&f, s->arg);
}

/* Could [from, to) hold one of our instructions at all? All three start
 * with 0f followed by 01, ae or c7 (after optional prefixes). */
static int has_candidate(const uint8_t *c, size_t from, size_t to)
{
    for (size_t i = from; i + 1 < to; i++) {
        const uint8_t *p = memchr(c + i, 0x0f, to - 1 - i);
        if (!p)
            return 0;
        i = (size_t)(p - c);
        if (p[1] == 0x01 || p[1] == 0xae || p[1] == 0xc7)
            return 1;
    }
    return 0;
}

/* Decode [from, to) linearly; no instruction may extend past to. */
static void sweep_region(struct sweep *s, size_t from, size_t to)
{
    if (!has_candidate(s->code, from, to))
        return;
    size_t pos = from;
    while (pos < to) {
        ZydisDecodedInstruction insn;
        if (ZYAN_FAILED(ZydisDecoderDecodeInstruction(&s->dec, NULL, s->code + pos,
                                                      to - pos, &insn))) {
            pos++;
            continue;
        }
        enum giso_insn kind;
        if (classify(insn.mnemonic, &kind))
            found(s, pos, insn.mnemonic, kind);
        pos += insn.length;
    }
}

/* Sweep the whole buffer, restarting at each symbol start. */
static void sweep_all(struct sweep *s)
{
    size_t pos = 0;
    for (size_t i = 0; i <= s->nsyms; i++) {
        size_t next = i < s->nsyms ? (size_t)s->syms[i].off : s->len;
        if (next > s->len)
            next = s->len;
        if (next > pos) {
            sweep_region(s, pos, next);
            pos = next;
        }
    }
}

static int init_decoder(ZydisDecoder *dec)
{
    if (ZYAN_FAILED(ZydisDecoderInit(dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)))
        return -EINVAL;
    /* mnemonic and length are all we need; skip operand decoding */
    ZydisDecoderEnableMode(dec, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE);
    return 0;
}

int giso_scan_code(const void *code, size_t len, uintptr_t base,
                   giso_report_fn report, void *arg)
{
    struct sweep s = { .code = code, .len = len, .base = base, .path = "",
                       .report = report, .arg = arg };
    if (!code && len)
        return -EINVAL;
    if (init_decoder(&s.dec) < 0)
        return -EINVAL;
    pthread_mutex_lock(&g_gates_lock);
    struct range *gates = g_ngates ? malloc(g_ngates * sizeof(*gates)) : NULL;
    if (gates)
        memcpy(gates, g_gates, g_ngates * sizeof(*gates)), s.ngates = g_ngates;
    pthread_mutex_unlock(&g_gates_lock);
    s.gates = gates;
    sweep_all(&s);
    free(gates);
    return s.found;
}

/* ---- ELF symbols of a mapped file ------------------------------------ */

struct elf_syms {
    int fd;
    Elf *elf;
    struct sym *v;
    size_t n, cap;
};

static int sym_cmp(const void *a, const void *b)
{
    const struct sym *x = a, *y = b;
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
            struct sym *v = realloc(es->v, cap * sizeof(*v));
            if (!v)
                return;                 /* fewer sync points; still correct */
            es->v = v, es->cap = cap;
        }
        const char *name = elf_strptr(es->elf, sh->sh_link, sym.st_name);
        es->v[es->n++] = (struct sym){ fo - map_off, sym.st_size, name ? name : "?" };
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

/* ---- the process scan ------------------------------------------------- */

struct mapping {
    uintptr_t start, end;
    uint64_t offset;
    char perms[8];
    char path[4096];
};

/* One /proc/self/maps line; returns 1 for an executable mapping. */
static int parse_maps_line(const char *line, struct mapping *m)
{
    int pathpos = -1;
    m->path[0] = '\0';
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %*s %*u %n",
               &m->start, &m->end, m->perms, &m->offset, &pathpos) < 4)
        return 0;
    if (pathpos > 0) {
        snprintf(m->path, sizeof(m->path), "%s", line + pathpos);
        m->path[strcspn(m->path, "\n")] = '\0';
    }
    return strchr(m->perms, 'x') != NULL && m->end > m->start;
}

static void scan_mapping(struct sweep *s, int memfd, const struct mapping *m)
{
    size_t len = m->end - m->start;
    uint8_t *buf = malloc(len);
    if (!buf)
        return;
    /* /proc/self/mem also reads execute-only pages; [vsyscall] gives EIO */
    ssize_t got = pread(memfd, buf, len, (off_t)m->start);
    if (got > 0) {
        struct elf_syms es;
        load_syms(&es, m->path, m->offset, (size_t)got);
        s->code = buf, s->len = (size_t)got, s->base = m->start;
        s->map_offset = m->offset, s->path = m->path;
        s->special = m->path[0] == '[';
        s->syms = es.v, s->nsyms = es.n;
        sweep_all(s);
        free_syms(&es);
    }
    free(buf);
}

int giso_scan(giso_report_fn report, void *arg, struct graft_err *err)
{
    struct sweep s = { .report = report, .arg = arg };
    if (init_decoder(&s.dec) < 0)
        return graft_errf(err, -EINVAL, "isolation scan: Zydis decoder init failed");
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
    pthread_mutex_lock(&g_gates_lock);
    struct range *gates = g_ngates ? malloc(g_ngates * sizeof(*gates)) : NULL;
    if (gates)
        memcpy(gates, g_gates, g_ngates * sizeof(*gates)), s.ngates = g_ngates;
    pthread_mutex_unlock(&g_gates_lock);
    s.gates = gates;

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
    for (size_t i = 0; i < nmaps; i++)
        scan_mapping(&s, memfd, &ms[i]);
    free(ms);
    free(gates);
    close(memfd);
    return s.found;
}

/* ---- the load-time summary -------------------------------------------- */

struct summary {
    char *buf;
    size_t cap, len;
    int n;
};

#define SUMMARY_LIST 4                 /* findings spelled out, the rest counted */

static void summary_add(const struct giso_finding *f, void *arg)
{
    struct summary *s = arg;
    if (s->n++ >= SUMMARY_LIST || s->len + 1 >= s->cap)
        return;
    const char *path = f->path && f->path[0] ? strrchr(f->path, '/') : NULL;
    path = path ? path + 1 : (f->path && f->path[0] ? f->path : "anonymous");
    int w;
    if (f->symbol)
        w = snprintf(s->buf + s->len, s->cap - s->len, "%s%s at %#" PRIxPTR " (%s %s+%#" PRIx64 ")",
                     s->n > 1 ? ", " : ": ", f->insn_name, f->addr, path, f->symbol,
                     f->symbol_off);
    else
        w = snprintf(s->buf + s->len, s->cap - s->len, "%s%s at %#" PRIxPTR " (%s+%#" PRIx64 ")",
                     s->n > 1 ? ", " : ": ", f->insn_name, f->addr, path, f->offset);
    if (w > 0)
        s->len = s->len + (size_t)w < s->cap ? s->len + (size_t)w : s->cap - 1;
}

int giso_scan_summary(char *buf, size_t cap, struct graft_err *err)
{
    if (!buf || !cap)
        return -EINVAL;
    if (!giso_enabled()) {
        snprintf(buf, cap, "%s", giso_status());
        return 0;
    }
    char list[512] = "";
    struct summary l = { list, sizeof(list), 0, 0 };
    int found = giso_scan(summary_add, &l, err);
    if (found < 0)
        snprintf(buf, cap, "%s; host has ? stray WRPKRU/XRSTOR (scan failed: %s)",
                 giso_status(), err && err->msg[0] ? err->msg : strerror(-found));
    else
        snprintf(buf, cap, "%s; host has %d stray WRPKRU/XRSTOR%s%s", giso_status(), found,
                 list, found > SUMMARY_LIST ? ", ..." : "");
    return found;
}
