/*
 * loader.c - open a libbpf-style BPF ELF object: check the ELF header, index
 * sections, symbols and relocations, read the license, the maps (BTF-defined
 * .maps, legacy "maps", global data sections) and the BTF, then hand over to
 * link.c (programs, calls, map references) and core.c (CO-RE).
 *
 * Invariants: every offset and index read from the file is bounds-checked
 * before use (the fuzzer feeds us garbage); all messages start with the
 * object's path; a failed open frees everything and leaves *out NULL.
 */
#include "loader/loader_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/btf.h>


#ifndef EM_BPF
#define EM_BPF 247
#endif

static bool str_has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool sec_is_data_name(const char *n)
{
    static const char *const pfx[] = { ".data", ".rodata", ".bss" };
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(pfx[i]);
        if (strncmp(n, pfx[i], l) == 0 && (n[l] == '\0' || n[l] == '.'))
            return true;
    }
    return false;
}

const char *gobj_sym_sec_name(const struct lctx *cx, const struct lsym *s)
{
    if (s->shndx == SHN_UNDEF)
        return "(undefined)";
    if (s->shndx >= cx->n_secs)
        return "(special section)";
    return cx->secs[s->shndx].name;
}

const struct btf_type *gobj_btf_skip_mods(const struct btf *btf, uint32_t id,
                                          uint32_t *res_id)
{
    const struct btf_type *t = btf__type_by_id(btf, id);
    for (int depth = 0; t && depth < 32; depth++) {
        if (!btf_is_mod(t) && !btf_is_typedef(t))
            break;
        id = t->type;
        t = btf__type_by_id(btf, id);
    }
    if (t && (btf_is_mod(t) || btf_is_typedef(t)))
        t = NULL;    /* a loop of modifiers */
    if (res_id)
        *res_id = id;
    return t;
}

/* ---- ELF header, sections, symbols ---- */

static int check_header(struct lctx *cx, size_t len)
{
    if (elf_kind(cx->elf) != ELF_K_ELF)
        return graft_errf(cx->err, -EINVAL, "%s: not an ELF file (%zu bytes)", cx->path, len);
    const char *ident = elf_getident(cx->elf, NULL);
    if (!ident)
        return graft_errf(cx->err, -EINVAL, "%s: truncated ELF header", cx->path);
    if (ident[EI_CLASS] != ELFCLASS64)
        return graft_errf(cx->err, -EINVAL,
                          "%s: ELF class %d is not ELFCLASS64; compile with clang -target bpf",
                          cx->path, ident[EI_CLASS]);
    if (ident[EI_DATA] != ELFDATA2LSB)
        return graft_errf(cx->err, -EINVAL,
                          "%s: big-endian ELF (EI_DATA %d); graft runs little-endian BPF only "
                          "(use -target bpf or bpfel, not bpfeb)", cx->path, ident[EI_DATA]);
    GElf_Ehdr eh;
    if (!gelf_getehdr(cx->elf, &eh))
        return graft_errf(cx->err, -EINVAL, "%s: truncated ELF header: %s", cx->path, elf_errmsg(-1));
    if (eh.e_machine != EM_BPF)
        return graft_errf(cx->err, -EINVAL,
                          "%s: ELF machine %u is not EM_BPF (247); is this a BPF object "
                          "(clang -target bpf)?", cx->path, eh.e_machine);
    if (eh.e_type != ET_REL)
        return graft_errf(cx->err, -EINVAL, "%s: ELF type %u is not ET_REL (a relocatable .o)",
                          cx->path, eh.e_type);
    return 0;
}

static enum lsec_kind classify_section(const struct lsec *s)
{
    const GElf_Shdr *sh = &s->sh;
    if (sh->sh_type == SHT_PROGBITS && (sh->sh_flags & SHF_EXECINSTR))
        return strcmp(s->name, ".text") == 0 ? LSEC_TEXT : LSEC_PROG;
    if (strcmp(s->name, ".maps") == 0)
        return LSEC_MAPS;
    if (strcmp(s->name, "maps") == 0)
        return LSEC_LEGACY_MAPS;
    if (strcmp(s->name, "license") == 0)
        return LSEC_LICENSE;
    if ((sh->sh_flags & SHF_ALLOC) && (sh->sh_type == SHT_PROGBITS || sh->sh_type == SHT_NOBITS)
        && sec_is_data_name(s->name))
        return LSEC_DATA;
    return LSEC_OTHER;
}

static int read_sections(struct lctx *cx, size_t file_len)
{
    size_t shnum, shstrndx;
    if (elf_getshdrnum(cx->elf, &shnum) || elf_getshdrstrndx(cx->elf, &shstrndx))
        return graft_errf(cx->err, -EINVAL, "%s: cannot read section headers: %s",
                          cx->path, elf_errmsg(-1));
    if (shnum == 0 || shnum > 65535)
        return graft_errf(cx->err, -EINVAL, "%s: bad section count %zu", cx->path, shnum);
    cx->secs = calloc(shnum, sizeof(*cx->secs));
    if (!cx->secs)
        return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
    cx->n_secs = shnum;
    cx->secs[0].name = "";
    cx->secs[0].map_idx = -1;
    for (size_t i = 1; i < shnum; i++) {
        struct lsec *s = &cx->secs[i];
        Elf_Scn *scn = elf_getscn(cx->elf, i);
        s->map_idx = -1;
        if (!scn || !gelf_getshdr(scn, &s->sh))
            return graft_errf(cx->err, -EINVAL, "%s: section %zu: bad header: %s",
                              cx->path, i, elf_errmsg(-1));
        s->name = elf_strptr(cx->elf, shstrndx, s->sh.sh_name);
        if (!s->name)
            return graft_errf(cx->err, -EINVAL, "%s: section %zu: bad name offset %u",
                              cx->path, i, s->sh.sh_name);
        s->size = s->sh.sh_size;
        if (s->sh.sh_type != SHT_NOBITS && s->sh.sh_type != SHT_NULL) {
            if (s->sh.sh_offset > file_len || s->sh.sh_size > file_len - s->sh.sh_offset)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: section %s: extends past the end of the file "
                                  "(offset %llu + size %llu > %zu bytes): truncated object?",
                                  cx->path, s->name, (unsigned long long)s->sh.sh_offset,
                                  (unsigned long long)s->sh.sh_size, file_len);
            Elf_Data *d = elf_getdata(scn, NULL);
            if (!d && s->sh.sh_size)
                return graft_errf(cx->err, -EINVAL, "%s: section %s: cannot read data: %s",
                                  cx->path, s->name, elf_errmsg(-1));
            if (d && d->d_size < s->size)
                s->size = d->d_size;
            s->data = d ? d->d_buf : NULL;
        }
        s->kind = classify_section(s);
        if (s->kind == LSEC_PROG || s->kind == LSEC_TEXT) {
            if (s->size % sizeof(struct bpf_insn))
                return graft_errf(cx->err, -EINVAL,
                                  "%s: section %s: size %zu is not a multiple of 8 "
                                  "(instructions are 8 bytes): corrupt object",
                                  cx->path, s->name, s->size);
            s->n_insns = s->size / sizeof(struct bpf_insn);
        }
    }
    return 0;
}

static int read_symbols(struct lctx *cx)
{
    size_t symtab = 0;
    for (size_t i = 1; i < cx->n_secs; i++)
        if (cx->secs[i].sh.sh_type == SHT_SYMTAB) {
            if (symtab)
                return graft_errf(cx->err, -EINVAL, "%s: more than one symbol table", cx->path);
            symtab = i;
        }
    if (!symtab)
        return graft_errf(cx->err, -EINVAL, "%s: no symbol table (.symtab); was the object stripped?",
                          cx->path);
    const struct lsec *st = &cx->secs[symtab];
    size_t strndx = st->sh.sh_link;
    if (strndx == 0 || strndx >= cx->n_secs || cx->secs[strndx].sh.sh_type != SHT_STRTAB)
        return graft_errf(cx->err, -EINVAL, "%s: .symtab: bad string table link %zu", cx->path, strndx);
    Elf_Data *d = elf_getdata(elf_getscn(cx->elf, symtab), NULL);
    if (!d)
        return graft_errf(cx->err, -EINVAL, "%s: .symtab: cannot read: %s", cx->path, elf_errmsg(-1));
    size_t n = d->d_size / sizeof(Elf64_Sym);
    cx->syms = calloc(n ? n : 1, sizeof(*cx->syms));
    if (!cx->syms)
        return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
    cx->n_syms = n;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym gs;
        if (!gelf_getsym(d, i, &gs))
            return graft_errf(cx->err, -EINVAL, "%s: .symtab: bad symbol %zu", cx->path, i);
        struct lsym *s = &cx->syms[i];
        const char *name = gs.st_name ? elf_strptr(cx->elf, strndx, gs.st_name) : "";
        if (!name)
            return graft_errf(cx->err, -EINVAL, "%s: .symtab: symbol %zu: bad name offset %u",
                              cx->path, i, gs.st_name);
        s->name = name;
        s->value = gs.st_value;
        s->size = gs.st_size;
        s->shndx = gs.st_shndx;
        s->type = GELF_ST_TYPE(gs.st_info);
        s->bind = GELF_ST_BIND(gs.st_info);
        if (s->type == STT_SECTION && s->shndx < cx->n_secs && !s->name[0])
            s->name = cx->secs[s->shndx].name;
    }
    return 0;
}

static int cmp_rel(const void *a, const void *b)
{
    const struct lrel *x = a, *y = b;
    return x->insn < y->insn ? -1 : x->insn > y->insn;
}

/* Relocations of executable sections, indexed by instruction. Relocations
 * of .BTF/.BTF.ext/debug sections are for linkers and are ignored; those of
 * .maps are read by read_map_slots(). */
static int read_relocations(struct lctx *cx)
{
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *r = &cx->secs[i];
        if (r->sh.sh_type != SHT_REL && r->sh.sh_type != SHT_RELA)
            continue;
        size_t tgt = r->sh.sh_info;
        if (tgt == 0 || tgt >= cx->n_secs)
            return graft_errf(cx->err, -EINVAL, "%s: %s: relocates bad section %zu",
                              cx->path, r->name, tgt);
        struct lsec *t = &cx->secs[tgt];
        if (t->kind != LSEC_PROG && t->kind != LSEC_TEXT)
            continue;
        if (r->sh.sh_type == SHT_RELA)
            return graft_errf(cx->err, -EINVAL, "%s: %s: RELA relocations are not used by BPF",
                              cx->path, r->name);
        if (t->rels)
            return graft_errf(cx->err, -EINVAL, "%s: %s: second relocation section for %s",
                              cx->path, r->name, t->name);
        Elf_Data *d = elf_getdata(elf_getscn(cx->elf, i), NULL);
        size_t n = d ? d->d_size / sizeof(Elf64_Rel) : 0;
        t->rels = calloc(n ? n : 1, sizeof(*t->rels));
        if (!t->rels)
            return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
        for (size_t j = 0; j < n; j++) {
            GElf_Rel gr;
            if (!gelf_getrel(d, j, &gr))
                return graft_errf(cx->err, -EINVAL, "%s: %s: bad relocation %zu", cx->path, r->name, j);
            uint64_t sym = GELF_R_SYM(gr.r_info);
            if (gr.r_offset % sizeof(struct bpf_insn) || gr.r_offset / 8 >= t->n_insns)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: %s: relocation %zu at offset %llu is outside the "
                                  "instructions of %s", cx->path, r->name, j,
                                  (unsigned long long)gr.r_offset, t->name);
            if (sym == 0 || sym >= cx->n_syms)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: section %s insn %llu: relocation to missing symbol #%llu",
                                  cx->path, t->name, (unsigned long long)gr.r_offset / 8,
                                  (unsigned long long)sym);
            t->rels[t->n_rels++] = (struct lrel){ .insn = gr.r_offset / 8, .sym = sym,
                                                  .type = GELF_R_TYPE(gr.r_info) };
        }
        qsort(t->rels, t->n_rels, sizeof(*t->rels), cmp_rel);
        for (uint32_t j = 1; j < t->n_rels; j++)
            if (t->rels[j].insn == t->rels[j - 1].insn)
                return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: two relocations",
                                  cx->path, t->name, t->rels[j].insn);
    }
    return 0;
}

/* ---- maps ---- */

static struct gobj_map *add_map(struct lctx *cx, const char *name, const char *sec,
                                uint32_t sec_off)
{
    struct gobj *o = cx->obj;
    struct gobj_map *m = realloc(o->maps, (o->n_maps + 1) * sizeof(*m));
    if (!m) {
        graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
        return NULL;
    }
    o->maps = m;
    m = &o->maps[o->n_maps++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->def.name, sizeof(m->def.name), "%s", name);
    snprintf(m->section, sizeof(m->section), "%s", sec);
    m->sec_off = sec_off;
    return m;
}

/* __uint(name, val) is `int (*name)[val]`: the value is the array's length. */
static int btf_map_uint(const struct btf *btf, uint32_t type_id, uint32_t *val)
{
    const struct btf_type *t = btf__type_by_id(btf, type_id);
    if (!t || !btf_is_ptr(t))
        return -1;
    const struct btf_type *a = btf__type_by_id(btf, t->type);
    if (!a || !btf_is_array(a))
        return -1;
    *val = btf_array(a)->nelems;
    return 0;
}

/* __ulong(name, val) is `enum { __unique_value = val } name` (64 bits:
 * an arena's map_extra is an address). */
static int btf_map_ulong(const struct btf *btf, uint32_t type_id, uint64_t *val)
{
    const struct btf_type *t = btf__type_by_id(btf, type_id);
    if (t && btf_is_enum(t) && btf_vlen(t) == 1) {
        *val = (uint32_t)btf_enum(t)->val;
        return 0;
    }
    if (t && btf_is_enum64(t) && btf_vlen(t) == 1) {
        *val = btf_enum64_value(btf_enum64(t));
        return 0;
    }
    return -1;
}

/* __type(name, T) is `T *name`. */
static int btf_map_type(const struct btf *btf, uint32_t type_id, uint32_t *tid, uint32_t *size)
{
    const struct btf_type *t = btf__type_by_id(btf, type_id);
    if (!t || !btf_is_ptr(t))
        return -1;
    long long sz = btf__resolve_size(btf, t->type);
    if (sz < 0 || sz > UINT32_MAX)
        return -1;
    *tid = t->type;
    *size = sz;
    return 0;
}

struct btf_map_parsed {
    struct gmap_def def;
    uint32_t key_tid, val_tid;
    uint32_t values_off;       /* bit offset of the __array "values" member */
    bool has_values;
    bool has_inner;
    struct gmap_def inner;
};

static int parse_btf_map_def(struct lctx *cx, const char *name, uint32_t type_id,
                             struct btf_map_parsed *p, int depth)
{
    const struct btf *btf = cx->obj->btf;
    const struct btf_type *st = gobj_btf_skip_mods(btf, type_id, NULL);
    if (!st || !btf_is_struct(st))
        return graft_errf(cx->err, -EINVAL,
                          "%s: .maps: map '%s' is not a struct (use __uint/__type in a struct)",
                          cx->path, name);
    const struct btf_member *mb = btf_members(st);
    for (uint32_t i = 0; i < btf_vlen(st); i++, mb++) {
        const char *mn = btf__name_by_offset(btf, mb->name_off);
        uint32_t v = 0, tid = 0, sz = 0;
        int bad = 0;
        if (!mn)
            return graft_errf(cx->err, -EINVAL, "%s: .maps: map '%s': bad member name", cx->path, name);
        if (!strcmp(mn, "type"))
            bad = btf_map_uint(btf, mb->type, &p->def.type);
        else if (!strcmp(mn, "max_entries"))
            bad = btf_map_uint(btf, mb->type, &p->def.max_entries);
        else if (!strcmp(mn, "map_flags"))
            bad = btf_map_uint(btf, mb->type, &p->def.map_flags);
        else if (!strcmp(mn, "key_size"))
            bad = btf_map_uint(btf, mb->type, &p->def.key_size);
        else if (!strcmp(mn, "value_size"))
            bad = btf_map_uint(btf, mb->type, &p->def.value_size);
        else if (!strcmp(mn, "map_extra")) {
            uint64_t x = 0;
            bad = btf_map_uint(btf, mb->type, &v);
            if (bad)    /* __ulong(map_extra, ...) */
                bad = btf_map_ulong(btf, mb->type, &x);
            else
                x = v;
            p->def.map_extra = x;
        } else if (!strcmp(mn, "numa_node") || !strcmp(mn, "pinning"))
            bad = btf_map_uint(btf, mb->type, &v);
        else if (!strcmp(mn, "key")) {
            bad = btf_map_type(btf, mb->type, &tid, &sz);
            p->key_tid = tid;
            p->def.key_size = sz;
        } else if (!strcmp(mn, "value")) {
            bad = btf_map_type(btf, mb->type, &tid, &sz);
            p->val_tid = tid;
            p->def.value_size = sz;
        } else if (!strcmp(mn, "values")) {
            /* __array(values, T): `T *values[]` - inner map def or prog */
            const struct btf_type *a = btf__type_by_id(btf, mb->type);
            const struct btf_type *ptr = a && btf_is_array(a) ? btf__type_by_id(btf, btf_array(a)->type) : NULL;
            const struct btf_type *in = ptr && btf_is_ptr(ptr) ? gobj_btf_skip_mods(btf, ptr->type, NULL) : NULL;
            if (!in)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: .maps: map '%s': 'values' must be __array(values, ...)",
                                  cx->path, name);
            p->has_values = true;
            p->values_off = btf_member_bit_offset(st, i);
            if (btf_is_struct(in)) {
                if (depth > 0)
                    return graft_errf(cx->err, -EINVAL,
                                      "%s: .maps: map '%s': maps of maps of maps are not supported",
                                      cx->path, name);
                struct btf_map_parsed ip = { 0 };
                int rc = parse_btf_map_def(cx, name, ptr->type, &ip, depth + 1);
                if (rc)
                    return rc;
                p->has_inner = true;
                p->inner = ip.def;
            }
        } else {
            return graft_errf(cx->err, -EINVAL,
                              "%s: .maps: map '%s': unknown attribute '%s'", cx->path, name, mn);
        }
        if (bad)
            return graft_errf(cx->err, -EINVAL,
                              "%s: .maps: map '%s': attribute '%s' is malformed (use __uint() "
                              "or __type() from bpf_helpers.h)", cx->path, name, mn);
    }
    if (!p->def.type)
        return graft_errf(cx->err, -EINVAL, "%s: .maps: map '%s' has no type", cx->path, name);
    if (p->has_inner) {
        p->def.inner_map_type = p->inner.type;
        p->def.inner_key_size = p->inner.key_size;
        p->def.inner_value_size = p->inner.value_size;
        p->def.inner_max_entries = p->inner.max_entries;
        p->def.inner_map_flags = p->inner.map_flags;
        if (!p->def.key_size)
            p->def.key_size = 4;
        p->def.value_size = 4;     /* slots hold map ids */
    } else if (p->has_values && p->def.type == GMAP_PROG_ARRAY) {
        if (!p->def.key_size)
            p->def.key_size = 4;
        p->def.value_size = 4;
    }
    return 0;
}

static const struct lsym *find_sym_in_sec(const struct lctx *cx, uint32_t shndx, const char *name)
{
    for (size_t i = 1; i < cx->n_syms; i++) {
        const struct lsym *s = &cx->syms[i];
        if (s->shndx == shndx && s->type != STT_SECTION && !strcmp(s->name, name))
            return s;
    }
    return NULL;
}

static int read_btf_maps(struct lctx *cx, uint32_t shndx)
{
    const struct lsec *sec = &cx->secs[shndx];
    struct btf *btf = cx->obj->btf;
    if (!btf)
        return graft_errf(cx->err, -EINVAL,
                          "%s: .maps: BTF-defined maps need BTF (.BTF section); compile with -g",
                          cx->path);
    int ds_id = btf__find_by_name_kind(btf, ".maps", BTF_KIND_DATASEC);
    const struct btf_type *ds = ds_id > 0 ? btf__type_by_id(btf, ds_id) : NULL;
    if (!ds)
        return graft_errf(cx->err, -EINVAL, "%s: .maps: no DATASEC '.maps' in BTF", cx->path);
    uint32_t first = cx->obj->n_maps;
    const struct btf_var_secinfo *vi = btf_var_secinfos(ds);
    for (uint32_t i = 0; i < btf_vlen(ds); i++, vi++) {
        const struct btf_type *var = btf__type_by_id(btf, vi->type);
        const char *name = var ? btf__name_by_offset(btf, var->name_off) : NULL;
        if (!var || !btf_is_var(var) || !name || !name[0])
            return graft_errf(cx->err, -EINVAL, "%s: .maps: entry %u is not a named variable",
                              cx->path, i);
        const struct lsym *sym = find_sym_in_sec(cx, shndx, name);
        if (!sym)
            return graft_errf(cx->err, -EINVAL, "%s: .maps: map '%s' has no symbol", cx->path, name);
        if (sym->value >= sec->size && sec->size)
            return graft_errf(cx->err, -EINVAL, "%s: .maps: map '%s' lies outside the section",
                              cx->path, name);
        struct btf_map_parsed p = { 0 };
        int rc = parse_btf_map_def(cx, name, var->type, &p, 0);
        if (rc)
            return rc;
        struct gobj_map *m = add_map(cx, name, sec->name, sym->value);
        if (!m)
            return -ENOMEM;
        char keep[64];
        memcpy(keep, m->def.name, sizeof(keep));
        m->def = p.def;
        memcpy(m->def.name, keep, sizeof(keep));
        m->kind = GOBJ_MAP_USER;
        m->btf_key_type_id = p.key_tid;
        m->btf_value_type_id = p.val_tid;
        /* stash the values member's byte offset for read_map_slots() */
        m->init_size = p.has_inner || (p.has_values && p.def.type == GMAP_PROG_ARRAY)
                           ? p.values_off / 8 : (size_t)-1;
        m->init_progs = p.def.type == GMAP_PROG_ARRAY;
    }
    (void)first;
    return 0;
}

/* Declared initial values: .rel.maps relocations pointing at other maps (a
 * map-in-map) or at programs (a PROG_ARRAY; the symbol index is kept until
 * resolve_prog_slots() turns it into a program index). */
static int read_map_slots(struct lctx *cx, uint32_t maps_shndx)
{
    struct gobj *o = cx->obj;
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *r = &cx->secs[i];
        if (r->sh.sh_type != SHT_REL || r->sh.sh_info != maps_shndx)
            continue;
        Elf_Data *d = elf_getdata(elf_getscn(cx->elf, i), NULL);
        size_t n = d ? d->d_size / sizeof(Elf64_Rel) : 0;
        for (size_t j = 0; j < n; j++) {
            GElf_Rel gr;
            if (!gelf_getrel(d, j, &gr))
                return graft_errf(cx->err, -EINVAL, "%s: %s: bad relocation %zu", cx->path, r->name, j);
            uint64_t symi = GELF_R_SYM(gr.r_info);
            if (symi == 0 || symi >= cx->n_syms)
                return graft_errf(cx->err, -EINVAL, "%s: .maps: relocation to missing symbol #%llu",
                                  cx->path, (unsigned long long)symi);
            const struct lsym *s = &cx->syms[symi];
            /* the outer map holding this offset: the last one starting at or before it */
            struct gobj_map *outer = NULL;
            for (uint32_t k = 0; k < o->n_maps; k++) {
                struct gobj_map *m = &o->maps[k];
                if (m->kind == GOBJ_MAP_USER && m->sec_off <= gr.r_offset &&
                    (!outer || m->sec_off > outer->sec_off))
                    outer = m;
            }
            if (!outer || outer->init_size == (size_t)-1)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: .maps: initial value at offset %llu is not in a map-in-map's "
                                  "or prog array's 'values' array", cx->path,
                                  (unsigned long long)gr.r_offset);
            uint64_t rel = gr.r_offset - outer->sec_off;
            if (rel < outer->init_size || (rel - outer->init_size) % 8)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: .maps: map '%s': initial value at offset %llu is not a slot",
                                  cx->path, outer->name, (unsigned long long)gr.r_offset);
            uint64_t slot = (rel - outer->init_size) / 8;
            if (slot >= outer->def.max_entries)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: .maps: map '%s': initial slot %llu >= max_entries %u",
                                  cx->path, outer->name, (unsigned long long)slot,
                                  outer->def.max_entries);
            int inner = -1;
            if (outer->init_progs) {
                if (s->type != STT_FUNC || s->shndx >= cx->n_secs ||
                    cx->secs[s->shndx].kind != LSEC_PROG)
                    return graft_errf(cx->err, -EINVAL,
                                      "%s: .maps: prog array '%s' slot %llu: '%s' is not a "
                                      "program (a function in a SEC(\"...\") section)",
                                      cx->path, outer->name, (unsigned long long)slot, s->name);
                inner = (int)symi;
            }
            for (uint32_t k = 0; k < o->n_maps && !outer->init_progs; k++)
                if (o->maps[k].kind == GOBJ_MAP_USER && s->shndx == maps_shndx &&
                    o->maps[k].sec_off == s->value)
                    inner = k;
            if (inner < 0)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: .maps: map '%s' slot %llu: '%s' is not a map",
                                  cx->path, outer->name, (unsigned long long)slot, s->name);
            /* The verifier bounds accesses to inner maps by the declared
             * template: a slot may only name a map of exactly that shape
             * (the maps component refuses others when the slot is written). */
            const struct gmap_def *t = &outer->def, *d = outer->init_progs ? NULL : &o->maps[inner].def;
            if (d && (d->type != t->inner_map_type || d->key_size != t->inner_key_size ||
                      d->value_size != t->inner_value_size || d->max_entries != t->inner_max_entries ||
                      d->map_flags != t->inner_map_flags))
                return graft_errf(cx->err, -EINVAL,
                                  "%s: .maps: map '%s' slot %llu: map '%s' (type %u, key %u, value %u, "
                                  "%u entries, flags %#x) is not the inner map the outer map declares "
                                  "(type %u, key %u, value %u, %u entries, flags %#x)",
                                  cx->path, outer->name, (unsigned long long)slot, s->name, d->type,
                                  d->key_size, d->value_size, d->max_entries, d->map_flags,
                                  t->inner_map_type, t->inner_key_size, t->inner_value_size,
                                  t->inner_max_entries, t->inner_map_flags);
            if (slot >= outer->n_init_slots) {
                int32_t *ns = realloc(outer->init_slots, (slot + 1) * sizeof(*ns));
                if (!ns)
                    return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
                for (uint64_t q = outer->n_init_slots; q <= slot; q++)
                    ns[q] = -1;
                outer->init_slots = ns;
                outer->n_init_slots = slot + 1;
            }
            outer->init_slots[slot] = inner;
        }
    }
    return 0;
}

/* After linking: a PROG_ARRAY's slots name symbols; make them program indices. */
static int resolve_prog_slots(struct lctx *cx)
{
    struct gobj *o = cx->obj;
    for (uint32_t i = 0; i < o->n_maps; i++) {
        struct gobj_map *m = &o->maps[i];
        for (uint32_t slot = 0; m->init_progs && slot < m->n_init_slots; slot++) {
            if (m->init_slots[slot] < 0)
                continue;
            const char *name = cx->syms[m->init_slots[slot]].name;
            int prog = -1;
            for (uint32_t k = 0; k < o->n_progs && prog < 0; k++)
                if (!strcmp(o->progs[k].name, name))
                    prog = (int)k;
            if (prog < 0)
                return graft_errf(cx->err, -EINVAL, "%s: prog array '%s' slot %u: program '%s' "
                                  "was not found after linking", cx->path, m->name, slot, name);
            m->init_slots[slot] = prog;
        }
    }
    return 0;
}

static int read_legacy_maps(struct lctx *cx, uint32_t shndx)
{
    const struct lsec *sec = &cx->secs[shndx];
    uint32_t nsyms = 0;
    for (size_t i = 1; i < cx->n_syms; i++)
        if (cx->syms[i].shndx == shndx && cx->syms[i].type != STT_SECTION && cx->syms[i].name[0])
            nsyms++;
    if (!nsyms)
        return 0;
    for (size_t i = 1; i < cx->n_syms; i++) {
        const struct lsym *s = &cx->syms[i];
        if (s->shndx != shndx || s->type == STT_SECTION || !s->name[0])
            continue;
        uint64_t sz = s->size ? s->size : sec->size / nsyms;
        if (!sec->data || s->value > sec->size || sz > sec->size - s->value || sz < 16)
            return graft_errf(cx->err, -EINVAL,
                              "%s: maps: legacy map '%s' (offset %llu, size %llu) does not fit "
                              "a struct bpf_map_def in the section", cx->path, s->name,
                              (unsigned long long)s->value, (unsigned long long)sz);
        uint32_t f[5] = { 0 };
        memcpy(f, sec->data + s->value, sz < 20 ? sz : 20);
        /* Fields past map_flags (iproute2's struct bpf_elf_map: id, pinning,
         * inner_id, inner_idx; libbpf's numa_node) say where the map is
         * pinned or how a map-in-map's inner map is found: graft ignores
         * them. A map-in-map declared this way has no inner definition, so
         * the verifier refuses lookups into it (it knows no inner map). */
        struct gobj_map *m = add_map(cx, s->name, sec->name, s->value);
        if (!m)
            return -ENOMEM;
        m->def.type = f[0];
        m->def.key_size = f[1];
        m->def.value_size = f[2];
        m->def.max_entries = f[3];
        m->def.map_flags = f[4];
        m->kind = GOBJ_MAP_USER;
    }
    return 0;
}

static int read_data_map(struct lctx *cx, uint32_t shndx)
{
    struct lsec *sec = &cx->secs[shndx];
    if (sec->size == 0)
        return 0;
    if (sec->size > UINT32_MAX)
        return graft_errf(cx->err, -E2BIG, "%s: %s: too large for a map", cx->path, sec->name);
    struct gobj_map *m = add_map(cx, sec->name, sec->name, 0);
    if (!m)
        return -ENOMEM;
    sec->map_idx = cx->obj->n_maps - 1;
    m->def.type = GMAP_ARRAY;
    m->def.key_size = 4;
    m->def.value_size = sec->size;
    m->def.max_entries = 1;
    m->def.map_flags = GMAP_F_MMAPABLE;
    if (str_has_prefix(sec->name, ".rodata")) {
        m->kind = GOBJ_MAP_RODATA;
        m->def.map_flags |= GMAP_F_RDONLY_PROG;
    } else if (str_has_prefix(sec->name, ".bss")) {
        m->kind = GOBJ_MAP_BSS;
    } else {
        m->kind = GOBJ_MAP_DATA;
    }
    if (sec->sh.sh_type != SHT_NOBITS && sec->data) {
        m->init_data = malloc(sec->size);
        if (!m->init_data)
            return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
        memcpy(m->init_data, sec->data, sec->size);
        m->init_size = sec->size;
    }
    if (cx->obj->btf) {
        int ds = btf__find_by_name_kind(cx->obj->btf, sec->name, BTF_KIND_DATASEC);
        if (ds > 0)
            m->btf_value_type_id = ds;
    }
    return 0;
}

/* ---- where a map value's spin lock is ---- */

/* Types may share members (a DAG): each type's answer is remembered, so a
 * crafted BTF cannot make the search take exponential time. */
struct lock_search {
    const struct btf *btf;
    int8_t *n;                 /* per type id: locks inside (0, 1, 2 = more), -1 not yet known */
    int64_t *at;               /* per type id: the first lock's offset in it */
};

/* The struct bpf_spin_lock fields inside type id: their number (2 stands
 * for "more than one"), the first one's byte offset in the type in *at. */
static int count_spin_locks(struct lock_search *ls, uint32_t id, int depth, int64_t *at)
{
    const struct btf_type *t = gobj_btf_skip_mods(ls->btf, id, &id);
    if (!t || depth > 32)
        return 0;
    if (ls->n[id] >= 0) {
        *at = ls->at[id];
        return ls->n[id];
    }
    int n = 0;
    int64_t first = -1, inner = -1;
    const char *name = btf__name_by_offset(ls->btf, t->name_off);
    ls->n[id] = 0;             /* a type that contains itself (crafted BTF) adds nothing */
    ls->at[id] = -1;
    if (btf_is_var(t)) {
        n = count_spin_locks(ls, t->type, depth + 1, &first);
    } else if (btf_is_array(t)) {
        const struct btf_array *a = btf_array(t);
        n = a->nelems ? count_spin_locks(ls, a->type, depth + 1, &first) : 0;
        n = n && a->nelems > 1 ? 2 : n;
    } else if (btf_is_struct(t) && name && !strcmp(name, "bpf_spin_lock")) {
        n = 1;
        first = 0;
    } else if (btf_is_composite(t)) {
        for (uint32_t i = 0; i < btf_vlen(t) && n < 2; i++) {
            int k = count_spin_locks(ls, btf_members(t)[i].type, depth + 1, &inner);
            if (k && first < 0)
                first = btf_member_bit_offset(t, i) / 8 + inner;
            n += k;
        }
    }
    ls->n[id] = (int8_t)(n > 1 ? 2 : n);
    ls->at[id] = first;
    *at = first;
    return ls->n[id];
}

/* The same in global data map k, whose value type is a DATASEC: clang
 * leaves its variables' offsets 0 in the object, the symbols have them. */
static int count_datasec_spin_locks(const struct lctx *cx, struct lock_search *ls, uint32_t k,
                                    const struct btf_type *ds, int64_t *at)
{
    uint32_t shndx = 0;
    for (size_t i = 1; i < cx->n_secs; i++)
        if (cx->secs[i].kind == LSEC_DATA && cx->secs[i].map_idx == (int)k)
            shndx = (uint32_t)i;
    int n = 0;
    const struct btf_var_secinfo *vi = btf_var_secinfos(ds);
    for (uint32_t i = 0; i < btf_vlen(ds) && n < 2; i++, vi++) {
        const struct btf_type *v = btf__type_by_id(ls->btf, vi->type);
        const char *name = v ? btf__name_by_offset(ls->btf, v->name_off) : NULL;
        const struct lsym *sym = name && shndx ? find_sym_in_sec(cx, shndx, name) : NULL;
        int64_t inner = -1;
        int c = count_spin_locks(ls, vi->type, 0, &inner);
        if (c && n == 0)
            *at = (sym ? (int64_t)sym->value : vi->offset) + inner;
        n += c;
    }
    return n;
}

/* Each map's spin_lock_off. The verifier keeps programs away from the lock
 * word only when it knows where it is. */
static int find_spin_locks(struct lctx *cx)
{
    if (!cx->obj->btf) {
        for (uint32_t k = 0; k < cx->obj->n_maps; k++)
            cx->obj->maps[k].spin_lock_off = -2;
        return 0;
    }
    uint32_t nt = btf__type_cnt(cx->obj->btf);
    struct lock_search ls = { .btf = cx->obj->btf, .n = malloc(nt), .at = calloc(nt, sizeof(int64_t)) };
    int rc = 0;
    if (!ls.n || !ls.at)
        rc = graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
    else
        memset(ls.n, -1, nt);
    for (uint32_t k = 0; k < cx->obj->n_maps && !rc; k++) {
        struct gobj_map *m = &cx->obj->maps[k];
        m->spin_lock_off = -2;
        if (!m->btf_value_type_id || m->btf_value_type_id >= nt)
            continue;
        const struct btf_type *t = btf__type_by_id(ls.btf, m->btf_value_type_id);
        int64_t at = -1;
        int n = t && btf_is_datasec(t) ? count_datasec_spin_locks(cx, &ls, k, t, &at)
                                       : count_spin_locks(&ls, m->btf_value_type_id, 0, &at);
        if (n > 1)
            rc = graft_errf(cx->err, -EINVAL,
                            "%s: map '%s': its value holds more than one struct bpf_spin_lock (at most one is allowed)",
                            cx->path, m->name);
        else if (n && (at % 4 || at + 4 > m->def.value_size))
            rc = graft_errf(cx->err, -EINVAL,
                            "%s: map '%s': its struct bpf_spin_lock at offset %" PRId64 " is misaligned or outside the %u-byte value",
                            cx->path, m->name, at, m->def.value_size);
        else
            m->spin_lock_off = n ? (int32_t)at : -1;
    }
    free(ls.n);
    free(ls.at);
    return rc;
}

static int read_maps(struct lctx *cx)
{
    int rc;
    int maps_sec = -1;
    for (size_t i = 1; i < cx->n_secs; i++) {
        if (cx->secs[i].kind == LSEC_MAPS) {
            maps_sec = i;
            if ((rc = read_btf_maps(cx, i)))
                return rc;
        } else if (cx->secs[i].kind == LSEC_LEGACY_MAPS) {
            if ((rc = read_legacy_maps(cx, i)))
                return rc;
        }
    }
    if (maps_sec >= 0 && (rc = read_map_slots(cx, maps_sec)))
        return rc;
    for (uint32_t k = 0; k < cx->obj->n_maps; k++)
        if (cx->obj->maps[k].kind == GOBJ_MAP_USER && !cx->obj->maps[k].init_data)
            cx->obj->maps[k].init_size = 0;   /* was scratch for read_map_slots() */
    for (size_t i = 1; i < cx->n_secs; i++)
        if (cx->secs[i].kind == LSEC_DATA && (rc = read_data_map(cx, i)))
            return rc;
    return find_spin_locks(cx);
}

/* ---- externs ---- */

static bool btf_datasec_has(const struct btf *btf, const char *sec, const char *name)
{
    int id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
    const struct btf_type *ds = id > 0 ? btf__type_by_id(btf, id) : NULL;
    if (!ds)
        return false;
    const struct btf_var_secinfo *vi = btf_var_secinfos(ds);
    for (uint32_t i = 0; i < btf_vlen(ds); i++, vi++) {
        const struct btf_type *v = btf__type_by_id(btf, vi->type);
        const char *n = v ? btf__name_by_offset(btf, v->name_off) : NULL;
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

int gobj_extern_use(struct lctx *cx, uint32_t symi, bool is_call, uint32_t prog, uint32_t insn)
{
    struct gobj *o = cx->obj;
    const struct lsym *s = &cx->syms[symi];
    struct gobj_extern *e = NULL;
    for (uint32_t i = 0; i < o->n_externs; i++)
        if (!strcmp(o->externs[i].name, s->name))
            e = &o->externs[i];
    if (!e) {
        enum gobj_extern_kind kind;
        struct btf *btf = o->btf;
        if (btf && btf_datasec_has(btf, ".kconfig", s->name))
            kind = GOBJ_EXTERN_KCONFIG;
        else if (btf && (btf_datasec_has(btf, ".ksyms", s->name) ||
                         btf__find_by_name_kind(btf, s->name, BTF_KIND_FUNC) > 0))
            kind = is_call ? GOBJ_EXTERN_KSYM_FUNC : GOBJ_EXTERN_KSYM_VAR;
        else
            return graft_errf(cx->err, -ENOENT,
                              "%s: program %s insn %u: relocation to undefined symbol '%s'; only "
                              "__ksym and __kconfig externs may be left undefined (link the object "
                              "with its dependencies, e.g. bpftool gen object)",
                              cx->path, o->progs[prog].name, insn, s->name);
        if (is_call && kind != GOBJ_EXTERN_KSYM_FUNC)
            return graft_errf(cx->err, -EINVAL, "%s: program %s insn %u: call to extern variable '%s'",
                              cx->path, o->progs[prog].name, insn, s->name);
        e = realloc(o->externs, (o->n_externs + 1) * sizeof(*e));
        if (!e)
            return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
        o->externs = e;
        e = &o->externs[o->n_externs++];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", s->name);
        e->kind = kind;
        e->weak = s->bind == STB_WEAK;
        if (btf) {
            int id = btf__find_by_name_kind(btf, s->name,
                                            kind == GOBJ_EXTERN_KSYM_FUNC ? BTF_KIND_FUNC : BTF_KIND_VAR);
            e->btf_id = id > 0 ? id : 0;
        }
    }
    struct gobj_extern_use *u = realloc(e->uses, (e->n_uses + 1) * sizeof(*u));
    if (!u)
        return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
    e->uses = u;
    e->uses[e->n_uses++] = (struct gobj_extern_use){ .prog = prog, .insn = insn };
    return e - o->externs;
}

/* ---- BTF, license ---- */

static int read_btf(struct lctx *cx)
{
    int seen_ext = 0;
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *s = &cx->secs[i];
        if (strcmp(s->name, ".BTF") || !s->data)
            continue;
        if (cx->obj->btf)
            return graft_errf(cx->err, -EINVAL, "%s: more than one .BTF section", cx->path);
        struct btf *btf = btf__new(s->data, s->size);
        if (!btf) {
            int e = errno ? errno : EINVAL;
            return graft_errf(cx->err, -EINVAL, "%s: section .BTF: invalid BTF (%s)",
                              cx->path, strerror(e));
        }
        cx->obj->btf = btf;
    }
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *s = &cx->secs[i];
        if (strcmp(s->name, ".BTF.ext") || !s->data)
            continue;
        if (!cx->obj->btf)
            return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext without .BTF", cx->path);
        if (seen_ext++)
            return graft_errf(cx->err, -EINVAL, "%s: more than one .BTF.ext section", cx->path);
        int rc = gobj_core_parse_ext(cx, s->data, s->size);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_license(struct lctx *cx)
{
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *s = &cx->secs[i];
        if (s->kind != LSEC_LICENSE || !s->data)
            continue;
        size_t n = strnlen((const char *)s->data, s->size);
        if (n >= sizeof(cx->obj->license))
            n = sizeof(cx->obj->license) - 1;
        memcpy(cx->obj->license, s->data, n);
        cx->obj->license[n] = '\0';
    }
    return 0;
}

/* ---- open / free ---- */

int gobj_open_mem(const void *buf, size_t len, const char *name, const struct gobj_opts *opts,
                  struct gobj **out, struct graft_err *err)
{
    static const struct gobj_opts no_opts = { .sz = sizeof(struct gobj_opts) };
    *out = NULL;
    graft_err_clear(err);
    if (!name)
        name = "(memory)";
    if (!opts)
        opts = &no_opts;
    struct gobj *obj = calloc(1, sizeof(*obj));
    void *copy = malloc(len ? len : 1);
    if (!obj || !copy || !(obj->path = strdup(name))) {
        free(obj);
        free(copy);
        return graft_errf(err, -ENOMEM, "%s: out of memory", name);
    }
    if (len)
        memcpy(copy, buf, len);
    struct lctx cx = { .obj = obj, .path = obj->path, .err = err, .opts = opts };
    int rc;
    if (elf_version(EV_CURRENT) == EV_NONE) {
        rc = graft_errf(err, -EINVAL, "%s: libelf is too old", name);
        goto out;
    }
    cx.elf = elf_memory(copy, len);
    if (!cx.elf) {
        rc = graft_errf(err, -EINVAL, "%s: cannot parse ELF: %s", name, elf_errmsg(-1));
        goto out;
    }
    if ((rc = check_header(&cx, len)) || (rc = read_sections(&cx, len)) ||
        (rc = read_symbols(&cx)) || (rc = read_relocations(&cx)) || (rc = read_btf(&cx)) ||
        (rc = read_license(&cx)) || (rc = read_maps(&cx)) || (rc = gobj_link_programs(&cx)) ||
        (rc = resolve_prog_slots(&cx)))
        goto out;
out:
    gobj_core_release(&cx);
    for (size_t i = 0; i < cx.n_secs; i++) {
        free(cx.secs[i].rels);
        free(cx.secs[i].cores);
    }
    free(cx.secs);
    free(cx.syms);
    if (cx.targ_btf)
        btf__free(cx.targ_btf);
    if (cx.elf)
        elf_end(cx.elf);
    free(copy);
    if (rc) {
        gobj_free(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gobj_open_file(const char *path, const struct gobj_opts *opts, struct gobj **out,
                   struct graft_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return graft_errf(err, -errno, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (1 << 30)) {
        close(fd);
        return graft_errf(err, -EINVAL, "%s: not a regular file under 1 GiB", path);
    }
    size_t len = st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return graft_errf(err, -ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            free(buf);
            return graft_errf(err, -e, "%s: read failed: %s", path, strerror(e));
        }
        got += r;
    }
    close(fd);
    int rc = gobj_open_mem(buf, len, path, opts, out, err);
    free(buf);
    return rc;
}

const void **gobj_frozen_values(const struct gobj *obj)
{
    const void **v = calloc(obj->n_maps ? obj->n_maps : 1, sizeof(*v));
    if (!v)
        return NULL;
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        const struct gobj_map *m = &obj->maps[i];
        if (m->kind != GOBJ_MAP_RODATA || m->def.type != GMAP_ARRAY || m->def.max_entries != 1 ||
            !(m->def.map_flags & GMAP_F_RDONLY_PROG) || m->init_size > m->def.value_size)
            continue;
        uint8_t *b = calloc(1, m->def.value_size ? m->def.value_size : 1);
        if (!b) {
            gobj_frozen_free(v, obj->n_maps);
            return NULL;
        }
        if (m->init_data)
            memcpy(b, m->init_data, m->init_size);
        v[i] = b;
    }
    return v;
}

void gobj_frozen_free(const void **vals, uint32_t n)
{
    if (!vals)
        return;
    for (uint32_t i = 0; i < n; i++)
        free((void *)vals[i]);
    free(vals);
}

uint32_t gobj_absent_weak_externs(struct gobj *obj)
{
    uint32_t n = 0;
    for (uint32_t x = 0; x < obj->n_externs; x++) {
        struct gobj_extern *e = &obj->externs[x];
        if (!e->weak || e->kind == GOBJ_EXTERN_KCONFIG)
            continue;
        for (uint32_t u = 0; u < e->n_uses; u++) {
            if (e->uses[u].prog >= obj->n_progs)
                continue;
            struct gobj_prog *p = &obj->progs[e->uses[u].prog];
            uint32_t i = e->uses[u].insn;
            if (!p->insns || i >= p->n_insns || p->insns[i].imm != (int32_t)x)
                continue;
            struct bpf_insn *in = &p->insns[i];
            if (bpf_is_ld_imm64(in) && in->src_reg == BPF_PSEUDO_BTF_ID && i + 1 < p->n_insns) {
                in->src_reg = 0;
                in->imm = 0;
                in[1].imm = 0;
                n++;
            } else if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_KFUNC_CALL) {
                in->src_reg = 0;
                in->imm = 0;            /* helper 0 exists nowhere */
                in->off = 0;
                n++;
            }
        }
        e->n_uses = 0;                  /* nothing refers to it any more */
    }
    return n;
}

uint32_t gobj_struct_size(const struct gobj *obj, const char *name)
{
    int id = obj->btf && name ? btf__find_by_name_kind(obj->btf, name, BTF_KIND_STRUCT) : -1;
    const struct btf_type *t = id > 0 ? btf__type_by_id(obj->btf, id) : NULL;
    return t ? t->size : 0;
}

void gobj_prog_drop_unreached_calls(struct gobj_prog *prog)
{
    for (uint32_t i = 0; prog->insns && i < prog->n_insns; i++)
        if (prog->insns[i].code == (BPF_JMP | BPF_CALL) && prog->insns[i].src_reg == 0 && prog->insns[i].imm == 0)
            prog->insns[i] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA };
}

void gobj_free(struct gobj *obj)
{
    if (!obj)
        return;
    for (uint32_t i = 0; i < obj->n_maps; i++) {
        free(obj->maps[i].init_data);
        free(obj->maps[i].init_slots);
    }
    free(obj->maps);
    for (uint32_t i = 0; i < obj->n_progs; i++)
        free(obj->progs[i].insns);
    free(obj->progs);
    for (uint32_t i = 0; i < obj->n_externs; i++)
        free(obj->externs[i].uses);
    free(obj->externs);
    btf__free(obj->btf);
    free(obj->path);
    free(obj);
}

struct gobj_prog *gobj_find_prog(struct gobj *obj, const char *name)
{
    for (uint32_t i = 0; i < obj->n_progs; i++)
        if (!strcmp(obj->progs[i].name, name))
            return &obj->progs[i];
    for (uint32_t i = 0; i < obj->n_progs; i++)
        if (!strcmp(obj->progs[i].section, name))
            return &obj->progs[i];
    return NULL;
}

int gobj_find_map(const struct gobj *obj, const char *name)
{
    for (uint32_t i = 0; i < obj->n_maps; i++)
        if (!strcmp(obj->maps[i].name, name))
            return i;
    return -1;
}

const char *gprog_type_name(enum gprog_type type)
{
    switch (type) {
    case GPROG_UNSPEC: return "unspec";
    case GPROG_UPROBE: return "uprobe";
    case GPROG_URETPROBE: return "uretprobe";
    case GPROG_USDT: return "usdt";
    case GPROG_TRACEPOINT: return "tracepoint";
    case GPROG_RAW_TRACEPOINT: return "raw_tracepoint";
    case GPROG_OVERRIDE: return "override";
    case GPROG_REPLACE: return "replace";
    case GPROG_SOCKET_FILTER: return "socket";
    case GPROG_XDP: return "xdp";
    case GPROG_KERNEL: return "kernel";
    }
    return "unknown";
}

const char *gprog_ktype_name(enum gprog_ktype ktype)
{
    static const char *const names[] = {
        [GKT_NONE] = "none", [GKT_KPROBE] = "kprobe", [GKT_TRACEPOINT] = "tracepoint",
        [GKT_RAW_TRACEPOINT] = "raw_tracepoint", [GKT_TRACING] = "tracing", [GKT_LSM] = "lsm",
        [GKT_PERF_EVENT] = "perf_event", [GKT_SOCKET_FILTER] = "socket_filter",
        [GKT_SCHED_CLS] = "sched_cls", [GKT_SCHED_ACT] = "sched_act", [GKT_XDP] = "xdp",
        [GKT_CGROUP_SKB] = "cgroup_skb", [GKT_CGROUP_SOCK] = "cgroup_sock",
        [GKT_CGROUP_SOCK_ADDR] = "cgroup_sock_addr", [GKT_CGROUP_DEV] = "cgroup_device",
        [GKT_CGROUP_SYSCTL] = "cgroup_sysctl", [GKT_CGROUP_SOCKOPT] = "cgroup_sockopt",
        [GKT_SOCK_OPS] = "sock_ops", [GKT_SK_SKB] = "sk_skb", [GKT_SK_MSG] = "sk_msg",
        [GKT_SK_REUSEPORT] = "sk_reuseport", [GKT_SK_LOOKUP] = "sk_lookup",
        [GKT_FLOW_DISSECTOR] = "flow_dissector", [GKT_LWT] = "lwt", [GKT_LIRC_MODE2] = "lirc_mode2",
        [GKT_SYSCALL] = "syscall", [GKT_STRUCT_OPS] = "struct_ops", [GKT_NETFILTER] = "netfilter",
        [GKT_UNKNOWN] = "unknown",
    };
    return (unsigned)ktype < sizeof(names) / sizeof(names[0]) && names[ktype] ? names[ktype] : "unknown";
}

int gobj_parse_probe_target(const char *target, char *binary, size_t binary_len, char *func,
                            size_t func_len, uint64_t *off, struct graft_err *err)
{
    const char *colon = strrchr(target, ':');
    if (!colon || colon == target)
        return graft_errf(err, -EINVAL,
                          "probe target '%s': expected BINARY:FUNC[+OFFSET] or BINARY:OFFSET", target);
    size_t bl = colon - target;
    if (bl >= binary_len)
        return graft_errf(err, -ENAMETOOLONG, "probe target '%s': binary path too long", target);
    memcpy(binary, target, bl);
    binary[bl] = '\0';
    const char *f = colon + 1;
    const char *plus = strchr(f, '+');
    size_t fl = plus ? (size_t)(plus - f) : strlen(f);
    *off = 0;
    char *end;
    if (!plus && fl && f[0] >= '0' && f[0] <= '9') {   /* BINARY:0x1234 - an address */
        errno = 0;
        *off = strtoull(f, &end, 0);
        if (*end || errno)
            return graft_errf(err, -EINVAL, "probe target '%s': bad offset '%s'", target, f);
        fl = 0;
    } else if (plus) {
        errno = 0;
        *off = strtoull(plus + 1, &end, 0);
        if (*end || errno || end == plus + 1)
            return graft_errf(err, -EINVAL, "probe target '%s': bad offset '%s'", target, plus + 1);
    }
    if (fl >= func_len)
        return graft_errf(err, -ENAMETOOLONG, "probe target '%s': function name too long", target);
    memcpy(func, f, fl);
    func[fl] = '\0';
    return 0;
}
