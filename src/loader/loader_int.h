/*
 * loader_int.h - what the loader's files share while one object is opened:
 * the parsed ELF (sections, symbols, relocations) and the CO-RE records.
 * Everything here lives only for the duration of gobj_open_mem(); the result
 * (struct gobj) owns copies of what it keeps. Not for use outside src/loader/.
 */
#ifndef GRAFT_LOADER_INT_H
#define GRAFT_LOADER_INT_H

#include <gelf.h>
#include <libelf.h>

#include "loader/loader.h"

/* CO-RE relocation kinds (the kernel's enum bpf_core_relo_kind; linux/bpf.h
 * cannot be included next to vm/isa.h, which defines struct bpf_insn). */
enum {
    BPF_CORE_FIELD_BYTE_OFFSET = 0,
    BPF_CORE_FIELD_BYTE_SIZE = 1,
    BPF_CORE_FIELD_EXISTS = 2,
    BPF_CORE_FIELD_SIGNED = 3,
    BPF_CORE_FIELD_LSHIFT_U64 = 4,
    BPF_CORE_FIELD_RSHIFT_U64 = 5,
    BPF_CORE_TYPE_ID_LOCAL = 6,
    BPF_CORE_TYPE_ID_TARGET = 7,
    BPF_CORE_TYPE_EXISTS = 8,
    BPF_CORE_TYPE_SIZE = 9,
    BPF_CORE_ENUMVAL_EXISTS = 10,
    BPF_CORE_ENUMVAL_VALUE = 11,
    BPF_CORE_TYPE_MATCHES = 12,
};

enum lsec_kind {
    LSEC_OTHER = 0,     /* ignored: debug info, BTF, symbol tables, ... */
    LSEC_PROG,          /* executable, holds programs */
    LSEC_TEXT,          /* .text: subprograms */
    LSEC_MAPS,          /* .maps (BTF-defined) */
    LSEC_LEGACY_MAPS,   /* maps (struct bpf_map_def) */
    LSEC_DATA,          /* global data: became map lsec.map_idx */
    LSEC_LICENSE,
};

struct lrel {
    uint32_t insn;      /* instruction index in the section */
    uint32_t sym;       /* symbol index */
    uint32_t type;      /* R_BPF_* */
};

struct lcore {
    uint32_t insn;      /* instruction index in the section */
    uint32_t type_id;
    uint32_t access_str_off;
    uint32_t kind;
};

struct lsec {
    const char *name;
    GElf_Shdr sh;
    const uint8_t *data;       /* NULL for NOBITS */
    size_t size;
    enum lsec_kind kind;
    int map_idx;               /* LSEC_DATA */
    uint32_t n_insns;          /* executable sections */
    struct lrel *rels;         /* sorted by insn */
    uint32_t n_rels;
    struct lcore *cores;       /* sorted by insn */
    uint32_t n_cores;
};

struct lsym {
    const char *name;          /* never NULL ("" when unnamed) */
    uint64_t value;
    uint64_t size;
    uint32_t shndx;
    uint8_t type;              /* STT_* */
    uint8_t bind;              /* STB_* */
};

struct lctx {
    struct gobj *obj;
    const char *path;
    struct graft_err *err;
    const struct gobj_opts *opts;
    Elf *elf;
    struct lsec *secs;
    size_t n_secs;
    struct lsym *syms;
    size_t n_syms;
    struct btf *targ_btf;      /* CO-RE target, loaded on first use */
    bool targ_loaded;
    void *core_cache;          /* core.c: candidate lists per local type */
};

/* link.c: build obj->progs from the executable sections. */
int gobj_link_programs(struct lctx *cx);

/* core.c: apply sec's CO-RE records for insns [sec_start, sec_start+len)
 * to out[0..len) (prog is the index of the program being built, for the
 * message and poison count). */
int gobj_core_apply(struct lctx *cx, const struct lsec *sec, uint32_t sec_start,
                    uint32_t len, struct bpf_insn *out, struct gobj_prog *prog);
/* core.c: parse .BTF.ext's CO-RE records into the sections' cores lists. */
int gobj_core_parse_ext(struct lctx *cx, const uint8_t *data, size_t size);
void gobj_core_release(struct lctx *cx);

/* Skip typedefs and const/volatile/restrict/type tags, at most a bounded depth. */
const struct btf_type *gobj_btf_skip_mods(const struct btf *btf, uint32_t id,
                                          uint32_t *res_id);



/* loader.c */
/* Record that insn of prog uses the undefined symbol sym (a __ksym or
 * __kconfig extern); returns its index in obj->externs or a negative errno. */
int gobj_extern_use(struct lctx *cx, uint32_t sym, bool is_call, uint32_t prog,
                    uint32_t insn);
/* The name of the section a symbol is defined in, for messages. */
const char *gobj_sym_sec_name(const struct lctx *cx, const struct lsym *s);
#endif
