/*
 * host.c - compare an EIM spec with the host binary it describes.
 *
 * Symbols come from .symtab (or .dynsym when stripped); source entries from
 * the .note.graft records (notes.c); types from DWARF (libdw) when the
 * binary has it: argument counts and sizes of
 * functions, sizes of globals, sizes and member offsets of structs. Every
 * finding is one line in the report; nothing here trusts the binary to be
 * well formed (bad notes and odd DWARF are reported, never followed).
 */
#include <elfutils/libdw.h>
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eim/eim_int.h"
#include "graft/eim.h"

struct host {
    int fd;
    Elf *elf;
    Dwarf *dw;                 /* NULL without debug info */
    const char *path;
};

static int host_open(struct host *h, const char *path, struct graft_err *err)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    h->path = path;
    int rc = geim_elf_open(path, &h->fd, &h->elf, err);
    if (rc)
        return rc;
    h->dw = dwarf_begin_elf(h->elf, DWARF_C_READ, NULL);
    return 0;
}

static void host_close(struct host *h)
{
    if (h->dw)
        dwarf_end(h->dw);
    if (h->elf)
        elf_end(h->elf);
    if (h->fd >= 0)
        close(h->fd);
}

/* A defined symbol of the given type (STT_FUNC / STT_OBJECT) named name. */
static int find_symbol(struct host *h, const char *name, int stt, uint64_t *addr, uint64_t *size)
{
    for (int pass = 0; pass < 2; pass++) {
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(h->elf, scn))) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != (pass ? SHT_DYNSYM : SHT_SYMTAB) || !sh.sh_entsize)
                continue;
            Elf_Data *d = elf_getdata(scn, NULL);
            if (!d)
                continue;
            size_t n = sh.sh_size / sh.sh_entsize;
            for (size_t i = 0; i < n; i++) {
                GElf_Sym s;
                if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF || GELF_ST_TYPE(s.st_info) != stt)
                    continue;
                const char *nm = elf_strptr(h->elf, sh.sh_link, s.st_name);
                if (nm && !strcmp(nm, name)) {
                    *addr = s.st_value;
                    *size = s.st_size;
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* ---- DWARF ---- */

/* A top-level DIE with this tag and name; definitions win over declarations. */
static int find_die(Dwarf *dw, int tag, const char *name, Dwarf_Die *out)
{
    Dwarf_Off off = 0, next;
    size_t hsz;
    int found = 0;
    while (dwarf_nextcu(dw, off, &next, &hsz, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu, child;
        if (dwarf_offdie(dw, off + hsz, &cu) && dwarf_child(&cu, &child) == 0) {
            do {
                if (dwarf_tag(&child) != tag)
                    continue;
                const char *nm = dwarf_diename(&child);
                if (!nm || strcmp(nm, name))
                    continue;
                if (tag == DW_TAG_structure_type && !dwarf_hasattr(&child, DW_AT_byte_size))
                    continue;  /* a forward declaration */
                *out = child;
                found = 1;
                if (!dwarf_hasattr(&child, DW_AT_declaration))
                    return 1;
            } while (dwarf_siblingof(&child, &child) == 0);
        }
        off = next;
    }
    return found;
}

/* The type of die (DW_AT_type) with typedefs and qualifiers peeled.
 * Returns 0 for void (no DW_AT_type). */
static int type_of(Dwarf_Die *die, Dwarf_Die *t)
{
    Dwarf_Attribute a;
    if (!dwarf_attr_integrate(die, DW_AT_type, &a) || !dwarf_formref_die(&a, t))
        return 0;
    if (dwarf_peel_type(t, t) != 0)
        return 0;
    return 1;
}

static int64_t type_size(Dwarf_Die *t)
{
    if (dwarf_tag(t) == DW_TAG_pointer_type)
        return 8;
    Dwarf_Word sz;
    if (dwarf_aggregate_size(t, &sz) == 0)
        return (int64_t)sz;
    return -1;
}

static void check_struct(const struct geim_spec *s, struct host *h, const struct geim_struct *st,
                         struct geim_report *r)
{
    Dwarf_Die d, m;
    if (!h->dw || !find_die(h->dw, DW_TAG_structure_type, st->name, &d)) {
        r->n_no_dwarf++;
        geim_report_add(r, "note: struct %s (%s:%d): no DWARF for it in %s; trusting the spec",
                        st->name, s->path, st->line, h->path);
        return;
    }
    r->n_checked++;
    int64_t sz = type_size(&d);
    if (sz != (int64_t)st->size) {
        r->n_mismatch++;
        geim_report_add(r, "mismatch: struct %s (%s:%d): spec says %u bytes, DWARF says %" PRId64,
                        st->name, s->path, st->line, st->size, sz);
    }
    for (uint32_t i = 0; i < st->n_fields; i++) {
        const struct geim_field *f = &st->fields[i];
        int found = 0;
        if (dwarf_child(&d, &m) == 0) {
            do {
                const char *nm = dwarf_diename(&m);
                if (dwarf_tag(&m) != DW_TAG_member || !nm || strcmp(nm, f->name))
                    continue;
                found = 1;
                Dwarf_Attribute a;
                Dwarf_Word off = 0;
                if (dwarf_attr(&m, DW_AT_data_member_location, &a))
                    dwarf_formudata(&a, &off);
                Dwarf_Die t;
                int64_t fsz = type_of(&m, &t) ? type_size(&t) : -1;
                r->n_checked++;
                if (off != f->offset || fsz != (int64_t)f->size) {
                    r->n_mismatch++;
                    geim_report_add(r, "mismatch: struct %s field %s (%s:%d): spec says offset %u size %u, DWARF says offset %" PRIu64 " size %" PRId64,
                                    st->name, f->name, s->path, f->line, f->offset, f->size, (uint64_t)off, fsz);
                }
            } while (dwarf_siblingof(&m, &m) == 0);
        }
        if (!found) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: struct %s (%s:%d) has no field '%s' in DWARF",
                            st->name, s->path, f->line, f->name);
        }
    }
}

/* Compare a spec type with a DWARF type (die NULL: void). */
static void check_type(const struct geim_spec *s, struct geim_report *r, const char *what, int line,
                       const struct geim_type *t, Dwarf_Die *die)
{
    r->n_checked++;
    int64_t dsz = die ? type_size(die) : 0;
    int dptr = die && dwarf_tag(die) == DW_TAG_pointer_type;
    if ((t->kind == GEIM_T_VOID) != !die || (int64_t)t->size != dsz || (t->kind == GEIM_T_PTR) != dptr) {
        r->n_mismatch++;
        geim_report_add(r, "mismatch: %s (%s:%d): spec says '%s' (%u bytes), DWARF says %s of %" PRId64 " bytes",
                        what, s->path, line, t->text, t->size, !die ? "void" : dptr ? "a pointer" : "a value", dsz);
        return;
    }
    if (t->kind == GEIM_T_PTR && t->struct_idx >= 0) {
        Dwarf_Die pt;
        const char *want = s->types[t->struct_idx].name;
        const char *got = type_of(die, &pt) && dwarf_tag(&pt) == DW_TAG_structure_type ? dwarf_diename(&pt) : NULL;
        if (!got || strcmp(got, want)) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: %s (%s:%d): spec says 'struct %s *', DWARF says a pointer to %s",
                            what, s->path, line, want, got ? got : "something else");
        }
    }
}

/* Function (entry or capability) prototype vs DW_TAG_subprogram. */
static void check_proto(const struct geim_spec *s, struct host *h, struct geim_report *r, const char *kind,
                        const char *name, int line, const struct geim_arg *args, uint32_t n_args,
                        const struct geim_arg *ret)
{
    Dwarf_Die d, c;
    if (!h->dw || !find_die(h->dw, DW_TAG_subprogram, name, &d)) {
        r->n_no_dwarf++;
        geim_report_add(r, "note: %s %s (%s:%d): no DWARF for it; trusting the spec's prototype",
                        kind, name, s->path, line);
        return;
    }
    uint32_t n = 0;
    Dwarf_Die params[16];
    if (dwarf_child(&d, &c) == 0) {
        do {
            if (dwarf_tag(&c) == DW_TAG_formal_parameter && n < 16)
                params[n++] = c;
        } while (dwarf_siblingof(&c, &c) == 0);
    }
    r->n_checked++;
    if (n != n_args) {
        r->n_mismatch++;
        geim_report_add(r, "mismatch: %s %s (%s:%d): spec declares %u argument%s, the host's DWARF has %u",
                        kind, name, s->path, line, n_args, n_args == 1 ? "" : "s", n);
        return;
    }
    char what[160];
    for (uint32_t i = 0; i < n; i++) {
        Dwarf_Die t;
        snprintf(what, sizeof(what), "%s %s argument %u '%s'", kind, name, i + 1, args[i].name);
        check_type(s, r, what, args[i].line, &args[i].type, type_of(&params[i], &t) ? &t : NULL);
    }
    Dwarf_Die t;
    snprintf(what, sizeof(what), "%s %s return value", kind, name);
    check_type(s, r, what, ret->line ? ret->line : line, &ret->type, type_of(&d, &t) ? &t : NULL);
}

static void check_entry(const struct geim_spec *s, struct host *h, const struct geim_entry *e,
                        const struct geim_src_entry *src, uint32_t n_src, struct geim_report *r)
{
    uint64_t addr, size;
    switch (e->kind) {
    case GEIM_ENTRY_FUNCTION:
        r->n_checked++;
        if (!find_symbol(h, e->name, STT_FUNC, &addr, &size)) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: entry %s (%s:%d): no function '%s' in %s's symbol tables",
                            e->name, s->path, e->line, e->name, h->path);
            return;
        }
        geim_report_add(r, "ok: entry %s: function at 0x%" PRIx64 " (%" PRIu64 " bytes)", e->name, addr, size);
        check_proto(s, h, r, "entry", e->name, e->line, e->args, e->n_args, &e->ret);
        return;
    case GEIM_ENTRY_SOURCE: {
        r->n_checked++;
        uint32_t hits = 0;
        for (uint32_t i = 0; i < n_src; i++) {
            if (strcmp(src[i].name, e->name))
                continue;
            hits++;
            geim_report_add(r, "ok: entry %s: GRAFT_ENTRY site at 0x%" PRIx64 " args \"%s\"",
                            e->name, src[i].addr, src[i].args);
            if (src[i].n_args != e->n_args) {
                r->n_mismatch++;
                geim_report_add(r, "mismatch: entry %s (%s:%d): spec declares %u arguments, the GRAFT_ENTRY site at 0x%" PRIx64 " passes %u",
                                e->name, s->path, e->line, e->n_args, src[i].addr, src[i].n_args);
            }
        }
        if (!hits) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: entry %s (%s:%d): no GRAFT_ENTRY(%s, ...) site in %s's .note.graft",
                            e->name, s->path, e->line, e->name, h->path);
        }
        return;
    }
    case GEIM_ENTRY_SYSCALL:
        geim_report_add(r, "ok: entry %s: syscall (nothing to find in the binary)", e->name);
        return;
    }
}

int geim_check_host(const struct geim_spec *s, const char *host_binary,
                    struct geim_report *r, struct graft_err *err)
{
    if (!s || !host_binary || !r)
        return graft_errf(err, -EINVAL, "geim_check_host: NULL argument");
    memset(r, 0, sizeof(*r));
    struct geim_src_entry *src = NULL;
    uint32_t n_src = 0;
    int rc = geim_list_src_entries(host_binary, &src, &n_src, err);
    if (rc)
        return rc;
    struct host h;
    if ((rc = host_open(&h, host_binary, err))) {
        free(src);
        return rc;
    }
    if (!h.dw)
        geim_report_add(r, "note: %s has no DWARF debug info: only symbols are checked (build with -g)", host_binary);
    for (uint32_t i = 0; i < s->n_types; i++)
        check_struct(s, &h, &s->types[i], r);
    for (uint32_t i = 0; i < s->n_entries; i++)
        check_entry(s, &h, &s->entries[i], src, n_src, r);
    for (uint32_t i = 0; i < s->n_states; i++) {
        const struct geim_state *g = &s->states[i];
        uint64_t addr, size;
        r->n_checked++;
        if (!find_symbol(&h, g->name, STT_OBJECT, &addr, &size)) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: state %s (%s:%d): no global '%s' in %s's symbol tables",
                            g->name, s->path, g->line, g->name, host_binary);
            continue;
        }
        r->n_checked++;
        /* DWARF's type size first: sanitizers pad a global's symbol size */
        Dwarf_Die vd, vt;
        const char *from = "the symbol";
        if (h.dw && find_die(h.dw, DW_TAG_variable, g->name, &vd) && type_of(&vd, &vt) && type_size(&vt) >= 0) {
            size = (uint64_t)type_size(&vt);
            from = "DWARF's type";
        }
        if (size != g->type.size) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: state %s (%s:%d): spec says '%s' (%u bytes), %s is %" PRIu64 " bytes",
                            g->name, s->path, g->line, g->type.text, g->type.size, from, size);
        } else {
            geim_report_add(r, "ok: state %s: global at 0x%" PRIx64 " (%" PRIu64 " bytes)", g->name, addr, size);
        }
    }
    for (uint32_t i = 0; i < s->n_funcs; i++) {
        const struct geim_func *f = &s->funcs[i];
        uint64_t addr, size;
        r->n_checked++;
        if (!find_symbol(&h, f->name, STT_FUNC, &addr, &size)) {
            r->n_mismatch++;
            geim_report_add(r, "mismatch: function %s (%s:%d): no function '%s' in %s's symbol tables",
                            f->name, s->path, f->line, f->name, host_binary);
            continue;
        }
        geim_report_add(r, "ok: function %s: at 0x%" PRIx64, f->name, addr);
        check_proto(s, &h, r, "function", f->name, f->line, f->args, f->n_args, &f->ret);
    }
    host_close(&h);
    free(src);
    return 0;
}
