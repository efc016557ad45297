/*
 * core.c - CO-RE (compile once, run everywhere) relocations: read the
 * records clang puts in .BTF.ext and patch instructions so field offsets,
 * sizes, existence, type and enum facts match the target BTF (the kernel's
 * vmlinux BTF, a file, or graft's built-in layouts).
 *
 * A record names a root type in the object's BTF and an access string
 * "0:1:2" (first index: array index on the root; then member or element
 * indices). We resolve the same path by *names* in each target candidate
 * (types whose name minus any "___flavor" suffix matches), descending through
 * anonymous struct/union members, then compute the value for the local and
 * the target spec. The instruction must currently hold the local value (a
 * check against corrupt input); it is patched to the target value. All
 * candidates that match must agree. No match: *_EXISTS kinds get 0, others
 * poison the instruction (libbpf semantics).
 */
#include "loader/loader_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>


#define CORE_MAX_SPEC 64
#define CORE_MAX_DEPTH 32
#define CORE_RELO_REC_MIN 16

/* ---- .BTF.ext ---- */

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int cmp_core(const void *a, const void *b)
{
    const struct lcore *x = a, *y = b;
    return x->insn < y->insn ? -1 : x->insn > y->insn;
}

int gobj_core_parse_ext(struct lctx *cx, const uint8_t *d, size_t size)
{
    const char *p = cx->path;
    if (size < 8 || (d[0] | d[1] << 8) != 0xeb9f)
        return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext: bad magic or too short (%zu bytes)",
                          p, size);
    uint32_t hdr_len = rd32(d + 4);
    if (hdr_len < 24 || hdr_len > size)
        return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext: bad header length %u", p, hdr_len);
    if (hdr_len < 32)
        return 0;   /* no CO-RE records */
    uint32_t off = rd32(d + 24), len = rd32(d + 28);
    size_t avail = size - hdr_len;
    if (len == 0)
        return 0;
    if (off > avail || len > avail - off || len < 4)
        return graft_errf(cx->err, -EINVAL,
                          "%s: section .BTF.ext: CO-RE records (offset %u, length %u) exceed the "
                          "section", p, off, len);
    const uint8_t *r = d + hdr_len + off, *end = r + len;
    uint32_t rec = rd32(r);
    r += 4;
    if (rec < CORE_RELO_REC_MIN || rec > 1024)
        return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext: bad CO-RE record size %u", p, rec);
    while (r < end) {
        if (end - r < 8)
            return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext: truncated CO-RE section header", p);
        const char *sname = btf__name_by_offset(cx->obj->btf, rd32(r));
        uint32_t n = rd32(r + 4);
        r += 8;
        if (!sname)
            return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext: bad section name offset", p);
        if ((uint64_t)n * rec > (uint64_t)(end - r))
            return graft_errf(cx->err, -EINVAL,
                              "%s: section .BTF.ext: %u CO-RE records for %s exceed the section",
                              p, n, sname);
        struct lsec *s = NULL;
        for (size_t i = 1; i < cx->n_secs; i++)
            if (!strcmp(cx->secs[i].name, sname) &&
                (cx->secs[i].kind == LSEC_PROG || cx->secs[i].kind == LSEC_TEXT))
                s = &cx->secs[i];
        if (!s)
            return graft_errf(cx->err, -EINVAL,
                              "%s: section .BTF.ext: CO-RE records for '%s', which is not a code section",
                              p, sname);
        if (s->cores)
            return graft_errf(cx->err, -EINVAL, "%s: section .BTF.ext: two CO-RE groups for %s", p, sname);
        s->cores = calloc(n ? n : 1, sizeof(*s->cores));
        if (!s->cores)
            return graft_errf(cx->err, -ENOMEM, "%s: out of memory", p);
        for (uint32_t i = 0; i < n; i++, r += rec) {
            struct lcore c = { rd32(r) / 8, rd32(r + 4), rd32(r + 8), rd32(r + 12) };
            if (rd32(r) % 8 || c.insn >= s->n_insns)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: section .BTF.ext: CO-RE record %u for %s: instruction offset "
                                  "%u outside the section", p, i, sname, rd32(r));
            if (c.kind > BPF_CORE_TYPE_MATCHES)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: section %s insn %u: unknown CO-RE relocation kind %u",
                                  p, sname, c.insn, c.kind);
            s->cores[s->n_cores++] = c;
        }
        qsort(s->cores, s->n_cores, sizeof(*s->cores), cmp_core);
    }
    return 0;
}

/* ---- specs ---- */

struct core_acc {
    uint32_t type_id;          /* the type this step indexes into */
    uint32_t idx;
    const char *name;          /* member or enumerator name; NULL for array steps */
};

struct core_spec {
    const struct btf *btf;
    uint32_t root_id;
    uint32_t kind;
    uint32_t raw[CORE_MAX_SPEC];
    int raw_len;
    struct core_acc acc[CORE_MAX_SPEC];
    int len;
    uint64_t bit_offset;
    /* the accessed field: member last_member of struct last_parent, or an
     * array element / the root itself (last_member < 0) of type field_type */
    uint32_t last_parent;
    int last_member;
    uint32_t field_type;
};

static bool is_field_kind(uint32_t k) { return k <= BPF_CORE_FIELD_RSHIFT_U64; }
static bool is_enum_kind(uint32_t k)
{
    return k == BPF_CORE_ENUMVAL_EXISTS || k == BPF_CORE_ENUMVAL_VALUE;
}

static const char *kind_name(uint32_t k)
{
    static const char *const n[] = {
        "byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64",
        "local_type_id", "target_type_id", "type_exists", "type_size", "enumval_exists",
        "enumval_value", "type_matches",
    };
    return k <= BPF_CORE_TYPE_MATCHES ? n[k] : "?";
}

static size_t essential_len(const char *name)
{
    const char *f = strstr(name, "___");
    return f ? (size_t)(f - name) : strlen(name);
}

static bool names_match(const char *a, const char *b)
{
    size_t la = essential_len(a), lb = essential_len(b);
    return la == lb && !strncmp(a, b, la);
}

static int parse_access(const char *s, struct core_spec *sp)
{
    sp->raw_len = 0;
    if (!*s)
        return -EINVAL;
    while (*s) {
        if (sp->raw_len >= CORE_MAX_SPEC || *s < '0' || *s > '9')
            return -EINVAL;
        uint64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            if (v > INT32_MAX)
                return -EINVAL;
        }
        sp->raw[sp->raw_len++] = v;
        if (*s == ':')
            s++;
        else if (*s)
            return -EINVAL;
    }
    return 0;
}

static int parse_local_spec(const struct btf *btf, uint32_t type_id, const char *access,
                            uint32_t kind, struct core_spec *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->btf = btf;
    sp->root_id = type_id;
    sp->kind = kind;
    sp->last_member = -1;
    if (!btf__type_by_id(btf, type_id) || type_id == 0 || parse_access(access, sp))
        return -EINVAL;
    if (!is_field_kind(kind) && !is_enum_kind(kind)) {
        if (sp->raw_len != 1 || sp->raw[0] != 0)
            return -EINVAL;
        sp->acc[0] = (struct core_acc){ type_id, 0, NULL };
        sp->len = 1;
        return 0;
    }
    uint32_t id;
    const struct btf_type *t = gobj_btf_skip_mods(btf, type_id, &id);
    if (!t)
        return -EINVAL;
    if (is_enum_kind(kind)) {
        if (!btf_is_any_enum(t) || sp->raw_len != 1 || sp->raw[0] >= btf_vlen(t))
            return -EINVAL;
        uint32_t noff = btf_is_enum(t) ? btf_enum(t)[sp->raw[0]].name_off
                                       : btf_enum64(t)[sp->raw[0]].name_off;
        const char *n = btf__name_by_offset(btf, noff);
        if (!n)
            return -EINVAL;
        sp->acc[0] = (struct core_acc){ type_id, sp->raw[0], n };
        sp->len = 1;
        return 0;
    }
    long long sz = btf__resolve_size(btf, id);
    if (sz < 0)
        return -EINVAL;
    sp->acc[0] = (struct core_acc){ id, sp->raw[0], NULL };
    sp->len = 1;
    sp->bit_offset = (uint64_t)sp->raw[0] * sz * 8;
    sp->field_type = id;
    for (int i = 1; i < sp->raw_len; i++) {
        t = gobj_btf_skip_mods(btf, id, &id);
        uint32_t idx = sp->raw[i];
        if (!t)
            return -EINVAL;
        if (btf_is_composite(t)) {
            if (idx >= btf_vlen(t))
                return -EINVAL;
            const struct btf_member *m = btf_members(t) + idx;
            const char *n = btf__name_by_offset(btf, m->name_off);
            if (!n)
                return -EINVAL;
            sp->bit_offset += btf_member_bit_offset(t, idx);
            if (n[0])
                sp->acc[sp->len++] = (struct core_acc){ id, idx, n };
            sp->last_parent = id;
            sp->last_member = idx;
            id = m->type;
        } else if (btf_is_array(t)) {
            const struct btf_array *a = btf_array(t);
            if (a->nelems && idx >= a->nelems)
                return -EINVAL;
            long long esz = btf__resolve_size(btf, a->type);
            if (esz < 0)
                return -EINVAL;
            sp->acc[sp->len++] = (struct core_acc){ id, idx, NULL };
            sp->bit_offset += (uint64_t)idx * esz * 8;
            sp->last_member = -1;
            id = a->type;
        } else {
            return -EINVAL;
        }
        sp->field_type = id;
    }
    return 0;
}

/* ---- compatibility ---- */

static bool kinds_compat(const struct btf_type *a, const struct btf_type *b)
{
    return btf_kind(a) == btf_kind(b) || (btf_is_any_enum(a) && btf_is_any_enum(b));
}

static bool types_compat(const struct btf *lb, uint32_t lid, const struct btf *tb, uint32_t tid,
                         int depth)
{
    if (depth > CORE_MAX_DEPTH)
        return false;
    const struct btf_type *l = gobj_btf_skip_mods(lb, lid, &lid);
    const struct btf_type *t = gobj_btf_skip_mods(tb, tid, &tid);
    if (!l || !t || !kinds_compat(l, t))
        return false;
    switch (btf_kind(l)) {
    case BTF_KIND_UNKN:
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FWD:
    case BTF_KIND_FLOAT:
        return true;
    case BTF_KIND_INT:
        return btf_int_offset(l) == 0 && btf_int_offset(t) == 0;
    case BTF_KIND_PTR:
        return types_compat(lb, l->type, tb, t->type, depth + 1);
    case BTF_KIND_ARRAY:
        return types_compat(lb, btf_array(l)->type, tb, btf_array(t)->type, depth + 1);
    case BTF_KIND_FUNC_PROTO: {
        if (btf_vlen(l) != btf_vlen(t))
            return false;
        const struct btf_param *lp = btf_params(l), *tp = btf_params(t);
        for (uint32_t i = 0; i < btf_vlen(l); i++)
            if (!types_compat(lb, lp[i].type, tb, tp[i].type, depth + 1))
                return false;
        return types_compat(lb, l->type, tb, t->type, depth + 1);
    }
    default:
        return false;
    }
}

/* TYPE_MATCHES: stricter than compat: sizes, signedness, members by name. */
static bool types_match(const struct btf *lb, uint32_t lid, const struct btf *tb, uint32_t tid,
                        int depth)
{
    if (depth > CORE_MAX_DEPTH)
        return false;
    const struct btf_type *l = gobj_btf_skip_mods(lb, lid, &lid);
    const struct btf_type *t = gobj_btf_skip_mods(tb, tid, &tid);
    if (!l || !t || !kinds_compat(l, t))
        return false;
    const char *ln = btf__name_by_offset(lb, l->name_off);
    const char *tn = btf__name_by_offset(tb, t->name_off);
    if (ln && tn && ln[0] && !names_match(ln, tn))
        return false;
    if (btf_is_int(l))
        return l->size == t->size &&
               (btf_int_encoding(l) & BTF_INT_SIGNED) == (btf_int_encoding(t) & BTF_INT_SIGNED);
    if (btf_is_ptr(l))
        return types_match(lb, l->type, tb, t->type, depth + 1);
    if (btf_is_array(l))
        return btf_array(l)->nelems == btf_array(t)->nelems &&
               types_match(lb, btf_array(l)->type, tb, btf_array(t)->type, depth + 1);
    if (btf_is_any_enum(l)) {
        for (uint32_t i = 0; i < btf_vlen(l); i++) {
            const char *en = btf__name_by_offset(lb, btf_is_enum(l) ? btf_enum(l)[i].name_off
                                                                    : btf_enum64(l)[i].name_off);
            bool found = false;
            for (uint32_t j = 0; en && j < btf_vlen(t) && !found; j++) {
                const char *tn2 = btf__name_by_offset(tb, btf_is_enum(t) ? btf_enum(t)[j].name_off
                                                                         : btf_enum64(t)[j].name_off);
                found = tn2 && names_match(en, tn2);
            }
            if (!found)
                return false;
        }
        return true;
    }
    if (btf_is_composite(l)) {
        if (btf_vlen(l) > btf_vlen(t))
            return false;
        for (uint32_t i = 0; i < btf_vlen(l); i++) {
            const struct btf_member *lm = btf_members(l) + i;
            const char *mn = btf__name_by_offset(lb, lm->name_off);
            bool found = false;
            for (uint32_t j = 0; mn && j < btf_vlen(t) && !found; j++) {
                const struct btf_member *tm = btf_members(t) + j;
                const char *tmn = btf__name_by_offset(tb, tm->name_off);
                found = tmn && !strcmp(mn, tmn) && types_match(lb, lm->type, tb, tm->type, depth + 1);
            }
            if (!found)
                return false;
        }
        return true;
    }
    return types_compat(lb, lid, tb, tid, depth);
}

static bool fields_compat(const struct btf *lb, uint32_t lid, const struct btf *tb, uint32_t tid,
                          int depth)
{
    if (depth > CORE_MAX_DEPTH)
        return false;
    const struct btf_type *l = gobj_btf_skip_mods(lb, lid, &lid);
    const struct btf_type *t = gobj_btf_skip_mods(tb, tid, &tid);
    if (!l || !t)
        return false;
    if (btf_is_composite(l) && btf_is_composite(t))
        return true;
    if (!kinds_compat(l, t))
        return false;
    switch (btf_kind(l)) {
    case BTF_KIND_FWD:
    case BTF_KIND_FLOAT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_PTR:
        return true;
    case BTF_KIND_INT:
        return btf_int_offset(l) == 0 && btf_int_offset(t) == 0;
    case BTF_KIND_ARRAY:
        return fields_compat(lb, btf_array(l)->type, tb, btf_array(t)->type, depth + 1);
    default:
        return false;
    }
}

/* Find member name in composite id of tb, through anonymous members. */
static bool find_member(const struct btf *tb, uint32_t id, const char *name, int depth,
                        uint64_t *bit_off, uint32_t *parent, int *midx, uint32_t *mtype)
{
    if (depth > CORE_MAX_DEPTH)
        return false;
    const struct btf_type *t = gobj_btf_skip_mods(tb, id, &id);
    if (!t || !btf_is_composite(t))
        return false;
    for (uint32_t i = 0; i < btf_vlen(t); i++) {
        const struct btf_member *m = btf_members(t) + i;
        const char *mn = btf__name_by_offset(tb, m->name_off);
        if (!mn)
            continue;
        uint64_t off = btf_member_bit_offset(t, i);
        if (!mn[0]) {
            uint64_t sub = 0;
            if (find_member(tb, m->type, name, depth + 1, &sub, parent, midx, mtype)) {
                *bit_off = off + sub;
                return true;
            }
        } else if (names_match(mn, name)) {
            *bit_off = off;
            *parent = id;
            *midx = i;
            *mtype = m->type;
            return true;
        }
    }
    return false;
}

/* Resolve local's path in target candidate cand; 1 on match, 0 on no match. */
static int match_spec(const struct core_spec *lo, const struct btf *tb, uint32_t cand,
                      struct core_spec *ts)
{
    memset(ts, 0, sizeof(*ts));
    ts->btf = tb;
    ts->root_id = cand;
    ts->kind = lo->kind;
    ts->last_member = -1;
    if (lo->kind == BPF_CORE_TYPE_MATCHES) {
        ts->acc[0] = (struct core_acc){ cand, 0, NULL };
        return types_match(lo->btf, lo->root_id, tb, cand, 0);
    }
    if (!is_field_kind(lo->kind) && !is_enum_kind(lo->kind)) {
        ts->acc[0] = (struct core_acc){ cand, 0, NULL };
        return types_compat(lo->btf, lo->root_id, tb, cand, 0);
    }
    uint32_t id;
    const struct btf_type *t = gobj_btf_skip_mods(tb, cand, &id);
    if (!t)
        return 0;
    if (is_enum_kind(lo->kind)) {
        if (!btf_is_any_enum(t))
            return 0;
        for (uint32_t j = 0; j < btf_vlen(t); j++) {
            const char *n = btf__name_by_offset(tb, btf_is_enum(t) ? btf_enum(t)[j].name_off
                                                                   : btf_enum64(t)[j].name_off);
            if (n && names_match(n, lo->acc[0].name)) {
                ts->acc[0] = (struct core_acc){ id, j, n };
                ts->len = 1;
                return 1;
            }
        }
        return 0;
    }
    long long sz = btf__resolve_size(tb, id);
    if (sz < 0)
        return 0;
    ts->acc[0] = (struct core_acc){ id, lo->acc[0].idx, NULL };
    ts->len = 1;
    ts->bit_offset = (uint64_t)lo->acc[0].idx * sz * 8;
    ts->field_type = id;
    for (int i = 1; i < lo->len; i++) {
        const struct core_acc *la = &lo->acc[i];
        t = gobj_btf_skip_mods(tb, id, &id);
        if (!t)
            return 0;
        if (la->name) {
            uint64_t off = 0;
            uint32_t parent = 0, mtype = 0;
            int midx = -1;
            if (!btf_is_composite(t) || !find_member(tb, id, la->name, 0, &off, &parent, &midx, &mtype))
                return 0;
            const struct btf_type *lp = btf__type_by_id(lo->btf, la->type_id);
            uint32_t lmtype = btf_members(lp)[la->idx].type;
            if (!fields_compat(lo->btf, lmtype, tb, mtype, 0))
                return 0;
            ts->bit_offset += off;
            ts->acc[ts->len++] = (struct core_acc){ id, midx, la->name };
            ts->last_parent = parent;
            ts->last_member = midx;
            id = mtype;
        } else {
            if (!btf_is_array(t))
                return 0;
            const struct btf_array *a = btf_array(t);
            if (a->nelems && la->idx >= a->nelems)
                return 0;
            long long esz = btf__resolve_size(tb, a->type);
            if (esz < 0)
                return 0;
            ts->bit_offset += (uint64_t)la->idx * esz * 8;
            ts->acc[ts->len++] = (struct core_acc){ id, la->idx, NULL };
            ts->last_member = -1;
            id = a->type;
        }
        ts->field_type = id;
    }
    return 1;
}

/* ---- values ---- */

struct core_val {
    uint64_t v;
    uint32_t byte_sz;          /* field kinds: the field's size, for load size fixups */
    bool bitfield;
};

static int calc_value(const struct core_spec *sp, uint32_t local_id, struct core_val *out)
{
    const struct btf *b = sp->btf;
    memset(out, 0, sizeof(*out));
    switch (sp->kind) {
    case BPF_CORE_TYPE_ID_LOCAL:
        out->v = local_id;
        return 0;
    case BPF_CORE_TYPE_ID_TARGET:
        out->v = sp->root_id;
        return 0;
    case BPF_CORE_TYPE_EXISTS:
    case BPF_CORE_TYPE_MATCHES:
    case BPF_CORE_FIELD_EXISTS:
    case BPF_CORE_ENUMVAL_EXISTS:
        out->v = 1;
        return 0;
    case BPF_CORE_TYPE_SIZE: {
        long long s = btf__resolve_size(b, sp->root_id);
        if (s < 0)
            return -EINVAL;
        out->v = s;
        return 0;
    }
    case BPF_CORE_ENUMVAL_VALUE: {
        const struct btf_type *t = gobj_btf_skip_mods(b, sp->acc[0].type_id, NULL);
        if (!t || !btf_is_any_enum(t) || sp->acc[0].idx >= btf_vlen(t))
            return -EINVAL;
        out->v = btf_is_enum(t) ? (uint64_t)(int64_t)btf_enum(t)[sp->acc[0].idx].val
                                : btf_enum64_value(btf_enum64(t) + sp->acc[0].idx);
        return 0;
    }
    }
    /* field kinds */
    uint32_t bit_sz = 0;
    if (sp->last_member >= 0) {
        const struct btf_type *p = btf__type_by_id(b, sp->last_parent);
        if (p && btf_is_composite(p) && (uint32_t)sp->last_member < btf_vlen(p))
            bit_sz = btf_member_bitfield_size(p, sp->last_member);
    }
    long long sz = btf__resolve_size(b, sp->field_type);
    if (sz < 0)
        return -EINVAL;
    uint64_t bit_off = sp->bit_offset, byte_off;
    uint32_t byte_sz = sz;
    if (!bit_sz) {
        byte_off = bit_off / 8;
        bit_sz = byte_sz * 8;
    } else {
        if (byte_sz == 0 || byte_sz > 8)
            return -EINVAL;
        out->bitfield = true;
        byte_off = bit_off / 8 / byte_sz * byte_sz;
        while (bit_off + bit_sz - byte_off * 8 > byte_sz * 8) {
            if (byte_sz >= 8)
                return -EINVAL;
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
    }
    out->byte_sz = byte_sz;
    const struct btf_type *ft = gobj_btf_skip_mods(b, sp->field_type, NULL);
    switch (sp->kind) {
    case BPF_CORE_FIELD_BYTE_OFFSET:
        out->v = byte_off;
        break;
    case BPF_CORE_FIELD_BYTE_SIZE:
        out->v = byte_sz;
        break;
    case BPF_CORE_FIELD_SIGNED:
        out->v = ft && ((btf_is_int(ft) && (btf_int_encoding(ft) & BTF_INT_SIGNED)) ||
                        (btf_is_any_enum(ft) && btf_kflag(ft)));
        break;
    case BPF_CORE_FIELD_LSHIFT_U64:
        if (bit_off + bit_sz - byte_off * 8 > 64)
            return -EINVAL;
        out->v = 64 - (bit_off + bit_sz - byte_off * 8);
        break;
    case BPF_CORE_FIELD_RSHIFT_U64:
        if (bit_sz > 64)
            return -EINVAL;
        out->v = 64 - bit_sz;
        break;
    }
    return 0;
}

/* ---- target BTF and candidates ---- */

struct cand_list {
    uint32_t local_id;
    uint32_t *ids;
    uint32_t n;
};

struct core_cache {
    struct cand_list *lists;
    uint32_t n;
};

void gobj_core_release(struct lctx *cx)
{
    struct core_cache *c = cx->core_cache;
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n; i++)
        free(c->lists[i].ids);
    free(c->lists);
    free(c);
    cx->core_cache = NULL;
}

static int load_target(struct lctx *cx)
{
    if (cx->targ_loaded)
        return cx->targ_btf ? 0 : -ENOENT;
    cx->targ_loaded = true;
    const char *path = cx->opts->target_btf_path;
    if (!path && !cx->opts->use_builtin_btf && access("/sys/kernel/btf/vmlinux", R_OK) == 0)
        path = "/sys/kernel/btf/vmlinux";
    if (path) {
        cx->targ_btf = btf__parse(path, NULL);
        if (!cx->targ_btf) {
            int e = errno ? errno : EINVAL;
            return graft_errf(cx->err, -e, "%s: cannot read target BTF %s for CO-RE: %s",
                              cx->path, path, strerror(e));
        }
        return 0;
    }
    cx->targ_btf = gobj_builtin_btf(cx->err);
    return cx->targ_btf ? 0 : -ENOMEM;
}

static struct cand_list *find_cands(struct lctx *cx, uint32_t local_id)
{
    struct core_cache *c = cx->core_cache;
    if (!c) {
        c = cx->core_cache = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (c->lists[i].local_id == local_id)
            return &c->lists[i];
    struct cand_list *nl = realloc(c->lists, (c->n + 1) * sizeof(*nl));
    if (!nl)
        return NULL;
    c->lists = nl;
    struct cand_list *l = &c->lists[c->n];
    *l = (struct cand_list){ local_id, NULL, 0 };
    const struct btf *lb = cx->obj->btf, *tb = cx->targ_btf;
    const struct btf_type *lt = btf__type_by_id(lb, local_id);
    const char *ln = lt ? btf__name_by_offset(lb, lt->name_off) : NULL;
    if (!ln || !ln[0]) {
        c->n++;
        return l;
    }
    size_t elen = essential_len(ln);
    uint32_t cap = 0, n = btf__type_cnt(tb);
    for (uint32_t id = 1; id < n; id++) {
        const struct btf_type *t = btf__type_by_id(tb, id);
        if (!t || !kinds_compat(lt, t))
            continue;
        const char *tn = btf__name_by_offset(tb, t->name_off);
        if (!tn || essential_len(tn) != elen || strncmp(tn, ln, elen))
            continue;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 4;
            uint32_t *ids = realloc(l->ids, cap * sizeof(*ids));
            if (!ids)
                return NULL;
            l->ids = ids;
        }
        l->ids[l->n++] = id;
    }
    c->n++;
    return l;
}

/* ---- patching ---- */

static int insn_mem_bytes(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default: return 8;
    }
}

static uint8_t bytes_to_size(uint32_t n)
{
    return n == 1 ? BPF_B : n == 2 ? BPF_H : n == 4 ? BPF_W : BPF_DW;
}

static void poison(struct bpf_insn *insn)
{
    *insn = BPF_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, GOBJ_POISON_HELPER);
}

static int patch_insn(struct lctx *cx, const struct lsec *sec, uint32_t sec_insn,
                      struct bpf_insn *out, uint32_t j, uint32_t len, const struct lcore *rc,
                      const struct core_val *lv, const struct core_val *tv, bool poisoned)
{
    struct bpf_insn *insn = &out[j];
    uint8_t cls = BPF_CLASS(insn->code);
    const char *p = cx->path;
    bool ld64 = bpf_is_ld_imm64(insn);
    if (ld64 && j + 1 >= len)
        return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: CO-RE relocation on a "
                          "truncated ld_imm64", p, sec->name, sec_insn);
    if (poisoned) {
        if (ld64)
            poison(insn + 1);
        poison(insn);
        return 0;
    }
    /* A bitfield's local value is the compiler's (clang sizes its storage
     * unit by the record's alignment), not necessarily the one computed
     * here: libbpf does not check it either (validate = !bitfield). */
    bool check_local = !lv->bitfield;
    if (cls == BPF_ALU || cls == BPF_ALU64) {
        if (BPF_SRC(insn->code) != BPF_K)
            goto bad;
        if (check_local && (uint32_t)insn->imm != (uint32_t)lv->v)
            goto mismatch;
        if (tv->v > UINT32_MAX && (int64_t)tv->v < INT32_MIN)
            return graft_errf(cx->err, -ERANGE, "%s: section %s insn %u: CO-RE value %llu does "
                              "not fit a 32-bit immediate", p, sec->name, sec_insn,
                              (unsigned long long)tv->v);
        insn->imm = (int32_t)tv->v;
        return 0;
    }
    if (ld64) {
        uint64_t cur = (uint32_t)insn[0].imm | (uint64_t)(uint32_t)insn[1].imm << 32;
        if (check_local && cur != lv->v)
            goto mismatch;
        insn[0].imm = (uint32_t)tv->v;
        insn[1].imm = (uint32_t)(tv->v >> 32);
        return 0;
    }
    if ((cls == BPF_LDX || cls == BPF_ST || cls == BPF_STX) &&
        (BPF_MODE(insn->code) == BPF_MEM || BPF_MODE(insn->code) == BPF_MEMSX) &&
        rc->kind == BPF_CORE_FIELD_BYTE_OFFSET) {
        if (check_local && (int64_t)insn->off != (int64_t)lv->v)
            goto mismatch;
        if (tv->v > INT16_MAX)
            return graft_errf(cx->err, -ERANGE, "%s: section %s insn %u: field offset %llu does "
                              "not fit the 16-bit instruction offset", p, sec->name, sec_insn,
                              (unsigned long long)tv->v);
        insn->off = tv->v;
        if (!lv->bitfield && !tv->bitfield && lv->byte_sz != tv->byte_sz &&
            insn_mem_bytes(insn->code) == (int)lv->byte_sz) {
            uint32_t n = tv->byte_sz;
            if (n != 1 && n != 2 && n != 4 && n != 8)
                return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: target field is %u "
                                  "bytes, which no load can read", p, sec->name, sec_insn, n);
            insn->code = (insn->code & ~0x18) | bytes_to_size(n);
        }
        return 0;
    }
bad:
    return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: CO-RE %s relocation on an "
                      "instruction it cannot patch (opcode 0x%02x)", p, sec->name, sec_insn,
                      kind_name(rc->kind), insn->code);
mismatch:
    return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: CO-RE %s relocation: the "
                      "instruction does not hold the local value %llu; corrupt object?", p,
                      sec->name, sec_insn, kind_name(rc->kind), (unsigned long long)lv->v);
}

static int apply_one(struct lctx *cx, const struct lsec *sec, const struct lcore *rc,
                     struct bpf_insn *out, uint32_t j, uint32_t len, struct gobj_prog *prog)
{
    const struct btf *lb = cx->obj->btf;
    const char *p = cx->path;
    uint32_t sec_insn = rc->insn;
    const char *access = btf__name_by_offset(lb, rc->access_str_off);
    struct core_spec ls, ts, best;
    if (!access || parse_local_spec(lb, rc->type_id, access, rc->kind, &ls))
        return graft_errf(cx->err, -EINVAL,
                          "%s: section %s insn %u: bad CO-RE %s relocation (type #%u, access "
                          "\"%s\") in .BTF.ext", p, sec->name, sec_insn, kind_name(rc->kind),
                          rc->type_id, access ? access : "?");
    struct core_val lv, tv = { 0 }, v;
    if (calc_value(&ls, rc->type_id, &lv))
        return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: cannot compute CO-RE %s "
                          "locally", p, sec->name, sec_insn, kind_name(rc->kind));
    if (rc->kind == BPF_CORE_TYPE_ID_LOCAL)
        return patch_insn(cx, sec, sec_insn, out, j, len, rc, &lv, &lv, false);
    int r = load_target(cx);
    if (r)
        return r;
    const struct btf_type *lt = btf__type_by_id(lb, rc->type_id);
    const char *tname = btf__name_by_offset(lb, lt->name_off);
    if (!tname || !tname[0])
        return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: CO-RE relocation against "
                          "an anonymous type (#%u) cannot be resolved", p, sec->name, sec_insn,
                          rc->type_id);
    struct cand_list *cl = find_cands(cx, rc->type_id);
    if (!cl)
        return graft_errf(cx->err, -ENOMEM, "%s: out of memory", p);
    bool found = false;
    for (uint32_t i = 0; i < cl->n; i++) {
        if (!match_spec(&ls, cx->targ_btf, cl->ids[i], &ts))
            continue;
        if (calc_value(&ts, rc->type_id, &v))
            continue;
        if (found && (v.v != tv.v || v.byte_sz != tv.byte_sz))
            return graft_errf(cx->err, -EINVAL,
                              "%s: section %s insn %u: CO-RE %s of %s (\"%s\"): target types #%u "
                              "and #%u disagree (%llu vs %llu)", p, sec->name, sec_insn,
                              kind_name(rc->kind), tname, access, best.root_id, ts.root_id,
                              (unsigned long long)tv.v, (unsigned long long)v.v);
        if (!found) {
            best = ts;
            tv = v;
            found = true;
        }
    }
    bool poisoned = false;
    if (!found) {
        switch (rc->kind) {
        case BPF_CORE_FIELD_EXISTS:
        case BPF_CORE_TYPE_EXISTS:
        case BPF_CORE_TYPE_MATCHES:
        case BPF_CORE_ENUMVAL_EXISTS:
            tv.v = 0;
            break;
        default:
            poisoned = true;
            prog->n_poisoned++;
        }
    }
    cx->obj->n_core_relos++;
    return patch_insn(cx, sec, sec_insn, out, j, len, rc, &lv, &tv, poisoned);
}

int gobj_core_apply(struct lctx *cx, const struct lsec *sec, uint32_t sec_start, uint32_t len,
                    struct bpf_insn *out, struct gobj_prog *prog)
{
    for (uint32_t i = 0; i < sec->n_cores; i++) {
        const struct lcore *rc = &sec->cores[i];
        if (rc->insn < sec_start || rc->insn >= sec_start + len)
            continue;
        int r = apply_one(cx, sec, rc, out, rc->insn - sec_start, len, prog);
        if (r)
            return r;
    }
    return 0;
}
