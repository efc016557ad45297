/*
 * spec.c - read an EIM spec (YAML, docs/eim.md) into struct geim_spec.
 *
 * libyaml's document API gives a node tree with source positions; every
 * message names file:line:column of the node at fault and, for a typo in a
 * key or a reference, the closest valid name. Sections are read in
 * dependency order (types, entries, state, functions, helper_groups,
 * classes) so references always point backwards, and everything is checked
 * here: after geim_load() succeeds, every index in the spec is valid.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "eim/eim_int.h"
#include "util/syscalls.h"

struct pctx {
    yaml_document_t doc;
    const char *file;
    struct geim_spec *s;
    struct graft_err *err;
};

typedef yaml_node_t node_t;

static node_t *N(struct pctx *p, int id)
{
    return yaml_document_get_node(&p->doc, id);
}

#define LINE(n) ((int)(n)->start_mark.line + 1)
#define COL(n) ((int)(n)->start_mark.column + 1)

static int perr(struct pctx *p, const node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct pctx *p, const node_t *n, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return graft_errf(p->err, -EINVAL, "%s:%d:%d: %s", p->file, n ? LINE(n) : 0, n ? COL(n) : 0, msg);
}

static const char *str_of(const node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *kind_name(const node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? "a scalar" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
}

static int expect(struct pctx *p, node_t *n, yaml_node_type_t t, const char *what)
{
    if (n->type == t)
        return 0;
    return perr(p, n, "%s must be %s, not %s", what,
                t == YAML_SCALAR_NODE ? "a scalar" : t == YAML_SEQUENCE_NODE ? "a list" : "a mapping",
                kind_name(n));
}

static const char *arr_get(const void *arg, size_t i)
{
    return ((const char *const *)arg)[i];
}

/* Every key of map must be in keys[] (NULL-terminated). */
static int check_keys(struct pctx *p, node_t *map, const char *const *keys, const char *what)
{
    size_t nk = 0;
    while (keys[nk])
        nk++;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        node_t *k = N(p, pr->key);
        const char *ks = str_of(k);
        if (!ks)
            return perr(p, k, "keys in %s must be plain names", what);
        size_t i;
        for (i = 0; i < nk && strcmp(keys[i], ks); i++)
            ;
        if (i == nk) {
            char dym[128];
            return perr(p, k, "unknown key '%s' in %s%s", ks, what,
                        geim_did_you_mean(dym, sizeof(dym), geim_suggest(ks, arr_get, keys, nk)));
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++)
            if (!strcmp(str_of(N(p, q->key)), ks))
                return perr(p, k, "duplicate key '%s' in %s", ks, what);
    }
    return 0;
}

static node_t *get(struct pctx *p, node_t *map, const char *key)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        const char *ks = str_of(N(p, pr->key));
        if (ks && !strcmp(ks, key))
            return N(p, pr->value);
    }
    return NULL;
}

static int need(struct pctx *p, node_t *map, const char *key, const char *what, node_t **out)
{
    *out = get(p, map, key);
    if (!*out)
        return perr(p, map, "missing key '%s' in %s", key, what);
    return 0;
}

static int scalar(struct pctx *p, node_t *n, const char *what, const char **out)
{
    int rc = expect(p, n, YAML_SCALAR_NODE, what);
    if (rc)
        return rc;
    *out = str_of(n);
    return 0;
}

static int name_of(struct pctx *p, node_t *n, const char *what, char *buf, size_t len)
{
    const char *s;
    int rc = scalar(p, n, what, &s);
    if (rc)
        return rc;
    if (!*s || strlen(s) >= len)
        return perr(p, n, "%s must be 1 to %zu characters", what, len - 1);
    for (const char *c = s; *c; c++)
        if (!(*c == '_' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '.'))
            return perr(p, n, "%s '%s' has character '%c': use letters, digits, '_', '-', '.'", what, s, *c);
    snprintf(buf, len, "%s", s);
    return 0;
}

static int int_of(struct pctx *p, node_t *n, const char *what, int64_t *out)
{
    const char *s;
    int rc = scalar(p, n, what, &s);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end)
        return perr(p, n, "%s must be an integer, not '%s'", what, s);
    *out = v;
    return 0;
}

static int budget_of(struct pctx *p, node_t *n, const char *what, uint64_t *out)
{
    int64_t v = 0;
    int rc = int_of(p, n, what, &v);
    if (rc)
        return rc;
    if (v <= 0)
        return perr(p, n, "%s must be positive (omit it for no limit), not %" PRId64, what, v);
    *out = (uint64_t)v;
    return 0;
}

/* ---- types: ---- */

static int parse_types(struct pctx *p, node_t *seq)
{
    static const char *const tkeys[] = { "name", "size", "fields", NULL };
    static const char *const fkeys[] = { "name", "offset", "size", NULL };
    int rc = expect(p, seq, YAML_SEQUENCE_NODE, "'types'");
    if (rc)
        return rc;
    size_t n = seq->data.sequence.items.top - seq->data.sequence.items.start;
    p->s->types = calloc(n ? n : 1, sizeof(*p->s->types));
    if (!p->s->types)
        return graft_errf(p->err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        node_t *m = N(p, seq->data.sequence.items.start[i]), *v;
        struct geim_struct *st = &p->s->types[p->s->n_types];
        if ((rc = expect(p, m, YAML_MAPPING_NODE, "a type")) || (rc = need(p, m, "name", "a type", &v)) ||
            (rc = name_of(p, v, "type name", st->name, sizeof(st->name))))
            return rc;
        st->line = LINE(m);
        st->col = COL(m);
        char what[96];
        snprintf(what, sizeof(what), "type '%s'", st->name);
        if ((rc = check_keys(p, m, tkeys, what)))
            return rc;
        for (uint32_t k = 0; k < p->s->n_types; k++)
            if (!strcmp(p->s->types[k].name, st->name))
                return perr(p, v, "duplicate type '%s' (first declared at line %d)", st->name, p->s->types[k].line);
        int64_t sz;
        if ((rc = need(p, m, "size", what, &v)) || (rc = int_of(p, v, "size", &sz)))
            return rc;
        if (sz <= 0 || sz > (1 << 20))
            return perr(p, v, "size of %s must be in [1, 1048576], not %" PRId64, what, sz);
        st->size = (uint32_t)sz;
        p->s->n_types++;
        node_t *fs = get(p, m, "fields");
        if (!fs)
            continue;
        if ((rc = expect(p, fs, YAML_SEQUENCE_NODE, "'fields'")))
            return rc;
        size_t nf = fs->data.sequence.items.top - fs->data.sequence.items.start;
        st->fields = calloc(nf ? nf : 1, sizeof(*st->fields));
        if (!st->fields)
            return graft_errf(p->err, -ENOMEM, "out of memory");
        for (size_t j = 0; j < nf; j++) {
            node_t *fm = N(p, fs->data.sequence.items.start[j]);
            struct geim_field *f = &st->fields[st->n_fields];
            char fw[256];
            snprintf(fw, sizeof(fw), "a field of %s", what);
            if ((rc = expect(p, fm, YAML_MAPPING_NODE, fw)) || (rc = check_keys(p, fm, fkeys, fw)) ||
                (rc = need(p, fm, "name", fw, &v)) || (rc = name_of(p, v, "field name", f->name, sizeof(f->name))))
                return rc;
            f->line = LINE(fm);
            f->col = COL(fm);
            for (uint32_t k = 0; k < st->n_fields; k++)
                if (!strcmp(st->fields[k].name, f->name))
                    return perr(p, v, "duplicate field '%s' in %s", f->name, what);
            int64_t off, fsz;
            snprintf(fw, sizeof(fw), "field '%s' of %s", f->name, what);
            if ((rc = need(p, fm, "offset", fw, &v)) || (rc = int_of(p, v, "offset", &off)))
                return rc;
            node_t *sv;
            if ((rc = need(p, fm, "size", fw, &sv)) || (rc = int_of(p, sv, "size", &fsz)))
                return rc;
            if (fsz <= 0 || off < 0 || off + fsz > sz)
                return perr(p, fm, "%s: [%" PRId64 ", %" PRId64 ") is outside the %" PRId64 "-byte struct",
                            fw, off, off + fsz, sz);
            f->offset = (uint32_t)off;
            f->size = (uint32_t)fsz;
            st->n_fields++;
        }
    }
    return 0;
}

/* ---- arguments ---- */

static int range_of(struct pctx *p, node_t *n, const char *what, int64_t *lo, int64_t *hi)
{
    int rc = expect(p, n, YAML_SEQUENCE_NODE, what);
    if (rc)
        return rc;
    if (n->data.sequence.items.top - n->data.sequence.items.start != 2)
        return perr(p, n, "%s must be [min, max]", what);
    if ((rc = int_of(p, N(p, n->data.sequence.items.start[0]), "range min", lo)) ||
        (rc = int_of(p, N(p, n->data.sequence.items.start[1]), "range max", hi)))
        return rc;
    if (*lo > *hi)
        return perr(p, n, "%s [%" PRId64 ", %" PRId64 "] is empty: min is greater than max", what, *lo, *hi);
    if (*lo == 0 && *hi == 0)
        return perr(p, n, "%s [0, 0] is not supported (it means 'any value' to the verifier)", what);
    return 0;
}

/* One argument: "TYPE NAME" or {decl: "TYPE NAME", range, nonnull, size}.
 * want_name: 1 for arguments, 0 for return values. With pre_ok = 0 (entry
 * arguments) conditions are refused: nobody checks the host's values. An
 * entry's return value may have a range: what an override must return. */
static int parse_arg(struct pctx *p, node_t *n, int want_name, int pre_ok, const char *what,
                     struct geim_arg *a, char size_names[64])
{
    static const char *const akeys[] = { "decl", "range", "nonnull", "size", NULL };
    static const char *const rkeys[] = { "decl", "range", NULL };
    static const char *const ekeys[] = { "decl", NULL };
    node_t *dn = n;
    int rc;
    memset(a, 0, sizeof(*a));
    a->size_arg = -1;
    size_names[0] = '\0';
    a->line = LINE(n);
    a->col = COL(n);
    if (n->type == YAML_MAPPING_NODE) {
        static const char *const conds[] = { "range", "size", "nonnull" };
        /* an entry's return range is what an override may return */
        for (int k = !want_name; !pre_ok && k < 3; k++)
            if (get(p, n, conds[k]))
                return perr(p, n, "%s: pre-conditions (%s) belong to host functions, not entry arguments: the host's values are not checked",
                            what, conds[k]);
        if ((rc = check_keys(p, n, !pre_ok && want_name ? ekeys : want_name ? akeys : rkeys, what)) ||
            (rc = need(p, n, "decl", what, &dn)))
            return rc;
    }
    const char *text;
    if ((rc = scalar(p, dn, what, &text)))
        return rc;
    char why[512];
    if (geim_parse_decl(p->s, text, want_name, &a->type, a->name, sizeof(a->name), why, sizeof(why)))
        return perr(p, dn, "%s: %s", what, why);
    if (!want_name && a->type.kind == GEIM_T_PTR && pre_ok)
        return perr(p, dn, "%s: host functions may not return pointers to extensions (%s)", what, text);
    if (n->type != YAML_MAPPING_NODE)
        return 0;
    node_t *v;
    if ((v = get(p, n, "range"))) {
        if (a->type.kind != GEIM_T_INT)
            return perr(p, v, "%s: a range needs an integer type, not '%s'", what, a->type.text);
        if ((rc = range_of(p, v, "range", &a->min, &a->max)))
            return rc;
        a->has_range = 1;
    }
    if ((v = get(p, n, "nonnull"))) {
        const char *s;
        if ((rc = scalar(p, v, "nonnull", &s)))
            return rc;
        if (a->type.kind != GEIM_T_PTR)
            return perr(p, v, "%s: nonnull applies to pointers, not '%s'", what, a->type.text);
        if (strcmp(s, "true") && strcmp(s, "false"))
            return perr(p, v, "nonnull must be true or false, not '%s'", s);
        a->nullable = !strcmp(s, "false");
    }
    if ((v = get(p, n, "size"))) {
        if (a->type.kind != GEIM_T_PTR)
            return perr(p, v, "%s: size applies to pointers, not '%s'", what, a->type.text);
        if ((rc = name_of(p, v, "size", size_names, 64)))
            return rc;
    }
    return 0;
}

/* args: a list of arguments; resolves "size: NAME" to the next argument. */
static int parse_args(struct pctx *p, node_t *seq, int pre_ok, uint32_t max, const char *owner,
                      struct geim_arg *args, uint32_t *n_args)
{
    char what[160];
    snprintf(what, sizeof(what), "'args' of %s", owner);
    int rc = expect(p, seq, YAML_SEQUENCE_NODE, what);
    if (rc)
        return rc;
    size_t n = seq->data.sequence.items.top - seq->data.sequence.items.start;
    if (n > max)
        return perr(p, seq, "%s has %zu arguments; at most %u are supported", owner, n, max);
    char sizes[GEIM_MAX_ARGS][64];
    for (size_t i = 0; i < n; i++) {
        node_t *an = N(p, seq->data.sequence.items.start[i]);
        snprintf(what, sizeof(what), "argument %zu of %s", i + 1, owner);
        if ((rc = parse_arg(p, an, 1, pre_ok, what, &args[i], sizes[i])))
            return rc;
        if (args[i].type.kind == GEIM_T_VOID)
            return perr(p, an, "%s: 'void' is not an argument type", what);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(args[k].name, args[i].name))
                return perr(p, an, "duplicate argument '%s' in %s", args[i].name, owner);
    }
    *n_args = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        node_t *an = N(p, seq->data.sequence.items.start[i]);
        if (sizes[i][0]) {
            if (i + 1 >= n || strcmp(args[i + 1].name, sizes[i]))
                return perr(p, an, "argument '%s' of %s: its size must be the next argument ('%s' is not)",
                            args[i].name, owner, sizes[i]);
            if (args[i + 1].type.kind != GEIM_T_INT)
                return perr(p, an, "argument '%s' of %s: size argument '%s' must be an integer",
                            args[i].name, owner, sizes[i]);
            args[i].size_arg = (int)i + 1;
        } else if (pre_ok && args[i].type.kind == GEIM_T_PTR) {
            return perr(p, an, "argument '%s' of %s: a pointer needs 'size: ARG' naming the next argument, so the verifier can check the memory passed",
                        args[i].name, owner);
        }
    }
    return 0;
}

static int parse_ret(struct pctx *p, node_t *m, int pre_ok, const char *owner, struct geim_arg *ret)
{
    node_t *v = get(p, m, "ret");
    char what[160], sz[64];
    snprintf(what, sizeof(what), "'ret' of %s", owner);
    if (!v) {
        memset(ret, 0, sizeof(*ret));
        ret->type.kind = GEIM_T_VOID;
        snprintf(ret->type.text, sizeof(ret->type.text), "void");
        ret->size_arg = -1;
        return 0;
    }
    return parse_arg(p, v, 0, pre_ok, what, ret, sz);
}

/* ---- entries, state, functions, groups ---- */

static const char *syscall_get(const void *arg, size_t i)
{
    (void)arg;
    return gsyscall_name((int)i);
}

static int seq_alloc(struct pctx *p, node_t *seq, const char *what, size_t elem, void **out, size_t *n)
{
    int rc = expect(p, seq, YAML_SEQUENCE_NODE, what);
    if (rc)
        return rc;
    *n = seq->data.sequence.items.top - seq->data.sequence.items.start;
    *out = calloc(*n ? *n : 1, elem);
    if (!*out)
        return graft_errf(p->err, -ENOMEM, "out of memory");
    return 0;
}

/* Names of entries, state, functions and groups share one namespace check
 * per section. */
#define DUP_CHECK(arr, cnt, nm, node, what)                                                        \
    for (uint32_t k_ = 0; k_ < (cnt); k_++)                                                        \
        if (!strcmp((arr)[k_].name, (nm)))                                                         \
            return perr(p, (node), "duplicate %s '%s' (first declared at line %d)", (what), (nm),  \
                        (arr)[k_].line);

static int parse_entries(struct pctx *p, node_t *seq)
{
    static const char *const keys[] = { "name", "kind", "args", "ret", NULL };
    size_t n;
    int rc = seq_alloc(p, seq, "'entries'", sizeof(struct geim_entry), (void **)&p->s->entries, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        node_t *m = N(p, seq->data.sequence.items.start[i]), *v;
        struct geim_entry *e = &p->s->entries[p->s->n_entries];
        if ((rc = expect(p, m, YAML_MAPPING_NODE, "an entry")) || (rc = need(p, m, "name", "an entry", &v)) ||
            (rc = name_of(p, v, "entry name", e->name, sizeof(e->name))))
            return rc;
        e->line = LINE(m);
        e->col = COL(m);
        char what[96];
        snprintf(what, sizeof(what), "entry '%s'", e->name);
        if ((rc = check_keys(p, m, keys, what)))
            return rc;
        DUP_CHECK(p->s->entries, p->s->n_entries, e->name, v, "entry");
        const char *k;
        if ((rc = need(p, m, "kind", what, &v)) || (rc = scalar(p, v, "kind", &k)))
            return rc;
        if (!strcmp(k, "function"))
            e->kind = GEIM_ENTRY_FUNCTION;
        else if (!strcmp(k, "syscall"))
            e->kind = GEIM_ENTRY_SYSCALL;
        else if (!strcmp(k, "source"))
            e->kind = GEIM_ENTRY_SOURCE;
        else {
            static const char *const kinds[] = { "function", "syscall", "source" };
            char dym[128];
            return perr(p, v, "kind of %s must be function, syscall or source, not '%s'%s", what, k,
                        geim_did_you_mean(dym, sizeof(dym), geim_suggest(k, arr_get, kinds, 3)));
        }
        if (e->kind == GEIM_ENTRY_SYSCALL && gsyscall_nr(e->name) < 0) {
            char dym[128];
            return perr(p, m, "%s: no syscall named '%s'%s", what, e->name,
                        geim_did_you_mean(dym, sizeof(dym),
                                          geim_suggest(e->name, syscall_get, NULL, (size_t)gsyscall_count())));
        }
        if ((v = get(p, m, "args")) && (rc = parse_args(p, v, 0, GEIM_MAX_ARGS, what, e->args, &e->n_args)))
            return rc;
        if ((rc = parse_ret(p, m, 0, what, &e->ret)))
            return rc;
        p->s->n_entries++;
    }
    return 0;
}

static int access_of(struct pctx *p, node_t *v, const char *what, int allow_none, uint32_t *out)
{
    const char *s;
    int rc = scalar(p, v, what, &s);
    if (rc)
        return rc;
    if (!strcmp(s, "read"))
        *out = GVER_R;
    else if (!strcmp(s, "write"))
        *out = GVER_R | GVER_W;
    else if (allow_none && !strcmp(s, "none"))
        *out = 0;
    else {
        static const char *const acc[] = { "read", "write", "none" };
        char dym[128];
        return perr(p, v, "%s must be read%s, not '%s'%s", what, allow_none ? ", write or none" : " or write", s,
                    geim_did_you_mean(dym, sizeof(dym), geim_suggest(s, arr_get, acc, allow_none ? 3 : 2)));
    }
    return 0;
}

static int parse_state(struct pctx *p, node_t *seq)
{
    static const char *const keys[] = { "name", "type", "access", NULL };
    size_t n;
    int rc = seq_alloc(p, seq, "'state'", sizeof(struct geim_state), (void **)&p->s->states, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        node_t *m = N(p, seq->data.sequence.items.start[i]), *v;
        struct geim_state *g = &p->s->states[p->s->n_states];
        if ((rc = expect(p, m, YAML_MAPPING_NODE, "a state capability")) ||
            (rc = need(p, m, "name", "a state capability", &v)) ||
            (rc = name_of(p, v, "state name", g->name, sizeof(g->name))))
            return rc;
        g->line = LINE(m);
        g->col = COL(m);
        char what[96], why[512];
        snprintf(what, sizeof(what), "state '%s'", g->name);
        if ((rc = check_keys(p, m, keys, what)))
            return rc;
        DUP_CHECK(p->s->states, p->s->n_states, g->name, v, "state");
        const char *t;
        if ((rc = need(p, m, "type", what, &v)) || (rc = scalar(p, v, "type", &t)))
            return rc;
        if (geim_parse_decl(p->s, t, 0, &g->type, NULL, 0, why, sizeof(why)))
            return perr(p, v, "%s: %s", what, why);
        if (g->type.kind != GEIM_T_INT)
            return perr(p, v, "%s: state must be an integer global (u8..u64, int, long), not '%s'", what, g->type.text);
        uint32_t acc = GVER_R;
        if ((v = get(p, m, "access")) && (rc = access_of(p, v, "access", 0, &acc)))
            return rc;
        g->writable = (acc & GVER_W) != 0;
        p->s->n_states++;
    }
    return 0;
}

static int parse_funcs(struct pctx *p, node_t *seq)
{
    static const char *const keys[] = { "name", "args", "ret", NULL };
    size_t n;
    int rc = seq_alloc(p, seq, "'functions'", sizeof(struct geim_func), (void **)&p->s->funcs, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        node_t *m = N(p, seq->data.sequence.items.start[i]), *v;
        struct geim_func *f = &p->s->funcs[p->s->n_funcs];
        if ((rc = expect(p, m, YAML_MAPPING_NODE, "a function capability")) ||
            (rc = need(p, m, "name", "a function capability", &v)) ||
            (rc = name_of(p, v, "function name", f->name, sizeof(f->name))))
            return rc;
        f->line = LINE(m);
        f->col = COL(m);
        char what[96];
        snprintf(what, sizeof(what), "function '%s'", f->name);
        if ((rc = check_keys(p, m, keys, what)))
            return rc;
        DUP_CHECK(p->s->funcs, p->s->n_funcs, f->name, v, "function");
        if ((v = get(p, m, "args")) && (rc = parse_args(p, v, 1, 5, what, f->args, &f->n_args)))
            return rc;
        if ((rc = parse_ret(p, m, 1, what, &f->ret)))
            return rc;
        p->s->n_funcs++;
    }
    return 0;
}

static const char *helper_get(const void *arg, size_t i)
{
    (void)arg;
    const struct ghelper_proto *h = ghelper_proto((uint32_t)i);
    return h ? h->name : NULL;
}

/* A helper by name, with or without the bpf_ prefix. */
static int helper_id(struct pctx *p, node_t *v, const char *owner, uint32_t *id)
{
    const char *s;
    int rc = scalar(p, v, "helper", &s);
    if (rc)
        return rc;
    const char *nm = strncmp(s, "bpf_", 4) ? s : s + 4;
    const struct ghelper_proto *h = ghelper_by_name(nm);
    if (!h) {
        char dym[128];
        return perr(p, v, "unknown helper '%s' in %s%s", s, owner,
                    geim_did_you_mean(dym, sizeof(dym), geim_suggest(nm, helper_get, NULL, BPF_MAX_HELPER_ID)));
    }
    *id = h->id;
    return 0;
}

static int parse_groups(struct pctx *p, node_t *seq)
{
    static const char *const keys[] = { "name", "helpers", NULL };
    size_t n;
    int rc = seq_alloc(p, seq, "'helper_groups'", sizeof(struct geim_group), (void **)&p->s->groups, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        node_t *m = N(p, seq->data.sequence.items.start[i]), *v;
        struct geim_group *g = &p->s->groups[p->s->n_groups];
        if ((rc = expect(p, m, YAML_MAPPING_NODE, "a helper group")) ||
            (rc = need(p, m, "name", "a helper group", &v)) ||
            (rc = name_of(p, v, "group name", g->name, sizeof(g->name))))
            return rc;
        g->line = LINE(m);
        g->col = COL(m);
        char what[96];
        snprintf(what, sizeof(what), "helper group '%s'", g->name);
        if ((rc = check_keys(p, m, keys, what)))
            return rc;
        DUP_CHECK(p->s->groups, p->s->n_groups, g->name, v, "helper group");
        p->s->n_groups++;
        size_t nh;
        if ((rc = need(p, m, "helpers", what, &v)) ||
            (rc = seq_alloc(p, v, "'helpers'", sizeof(uint32_t), (void **)&g->helpers, &nh)))
            return rc;
        for (size_t k = 0; k < nh; k++)
            if ((rc = helper_id(p, N(p, v->data.sequence.items.start[k]), what, &g->helpers[g->n_helpers++])))
                return rc;
    }
    return 0;
}

/* ---- classes ---- */

#define NAME_GETTER(fn, type, field)                         \
    static const char *fn(const void *arg, size_t i)         \
    {                                                        \
        return ((const type *)arg)[i].field;                 \
    }
NAME_GETTER(entry_get, struct geim_entry, name)
NAME_GETTER(func_get, struct geim_func, name)
NAME_GETTER(state_get, struct geim_state, name)
NAME_GETTER(group_get, struct geim_group, name)
NAME_GETTER(arg_get, struct geim_arg, name)
NAME_GETTER(field_get, struct geim_field, name)

/* Find name in a table, or fail naming the closest. */
static int lookup(struct pctx *p, node_t *v, const char *what, const char *cls,
                  const char *(*get)(const void *, size_t), const void *arr, size_t n, int *out)
{
    const char *s;
    int rc = scalar(p, v, what, &s);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(get(arr, i), s)) {
            *out = (int)i;
            return 0;
        }
    char dym[128];
    return perr(p, v, "class '%s' refers to unknown %s '%s'%s", cls, what, s,
                geim_did_you_mean(dym, sizeof(dym), geim_suggest(s, get, arr, n)));
}

static int parse_class_args(struct pctx *p, node_t *m, struct geim_class *c)
{
    const struct geim_entry *e = &p->s->entries[c->entry];
    for (uint32_t i = 0; i < e->n_args; i++)
        c->args[i].access = GVER_R;    /* declared arguments are readable unless closed */
    int rc = expect(p, m, YAML_MAPPING_NODE, "'args' of a class");
    if (rc)
        return rc;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        node_t *k = N(p, pr->key), *v = N(p, pr->value);
        int ai = 0;
        if ((rc = lookup(p, k, "argument", c->name, arg_get, e->args, e->n_args, &ai)))
            return rc;
        struct geim_arg_right *r = &c->args[ai];
        const struct geim_arg *a = &e->args[ai];
        char what[160];
        snprintf(what, sizeof(what), "rights on argument '%s' in class '%s'", a->name, c->name);
        if (v->type == YAML_SCALAR_NODE) {
            if ((rc = access_of(p, v, what, 1, &r->access)))
                return rc;
            continue;
        }
        static const char *const keys[] = { "access", "fields", NULL };
        if ((rc = expect(p, v, YAML_MAPPING_NODE, what)) || (rc = check_keys(p, v, keys, what)))
            return rc;
        node_t *x;
        if ((x = get(p, v, "access")) && (rc = access_of(p, x, what, 1, &r->access)))
            return rc;
        if (!(x = get(p, v, "fields")))
            continue;
        if (a->type.kind != GEIM_T_PTR || a->type.struct_idx < 0)
            return perr(p, x, "%s: fields apply to 'struct NAME *' arguments, not '%s'", what, a->type.text);
        const struct geim_struct *st = &p->s->types[a->type.struct_idx];
        if ((rc = expect(p, x, YAML_MAPPING_NODE, "'fields'")))
            return rc;
        r->field_access = calloc(st->n_fields ? st->n_fields : 1, sizeof(uint32_t));
        if (!r->field_access)
            return graft_errf(p->err, -ENOMEM, "out of memory");
        for (yaml_node_pair_t *q = x->data.mapping.pairs.start; q < x->data.mapping.pairs.top; q++) {
            int fi = 0;
            if ((rc = lookup(p, N(p, q->key), "field", c->name, field_get, st->fields, st->n_fields, &fi)) ||
                (rc = access_of(p, N(p, q->value), "field rights", 1, &r->field_access[fi])))
                return rc;
        }
    }
    return 0;
}

static int parse_class(struct pctx *p, node_t *m, struct geim_class *c)
{
    static const char *const keys[] = { "name", "entry", "helpers", "groups", "functions",
                                        "state", "args", "insn_budget", "mem_budget", "override", NULL };
    node_t *v;
    int rc;
    if ((rc = expect(p, m, YAML_MAPPING_NODE, "a class")) || (rc = need(p, m, "name", "a class", &v)) ||
        (rc = name_of(p, v, "class name", c->name, sizeof(c->name))))
        return rc;
    c->line = LINE(m);
    c->col = COL(m);
    char what[96];
    snprintf(what, sizeof(what), "class '%s'", c->name);
    if ((rc = check_keys(p, m, keys, what)))
        return rc;
    DUP_CHECK(p->s->classes, (uint32_t)(c - p->s->classes), c->name, v, "class");
    if ((rc = need(p, m, "entry", what, &v)) ||
        (rc = lookup(p, v, "entry", c->name, entry_get, p->s->entries, p->s->n_entries, &c->entry)))
        return rc;
    if ((v = get(p, m, "helpers"))) {
        if ((rc = expect(p, v, YAML_SEQUENCE_NODE, "'helpers'")))
            return rc;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            uint32_t id;
            if ((rc = helper_id(p, N(p, *it), what, &id)))
                return rc;
            c->helpers_allowed[id / 64] |= 1ull << (id % 64);
        }
    }
    if ((v = get(p, m, "groups"))) {
        if ((rc = expect(p, v, YAML_SEQUENCE_NODE, "'groups'")))
            return rc;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            int gi = 0;
            if ((rc = lookup(p, N(p, *it), "helper group", c->name, group_get, p->s->groups, p->s->n_groups, &gi)))
                return rc;
            for (uint32_t k = 0; k < p->s->groups[gi].n_helpers; k++) {
                uint32_t id = p->s->groups[gi].helpers[k];
                c->helpers_allowed[id / 64] |= 1ull << (id % 64);
            }
        }
    }
    if ((v = get(p, m, "functions"))) {
        size_t n;
        if ((rc = seq_alloc(p, v, "'functions'", sizeof(int), (void **)&c->funcs, &n)))
            return rc;
        for (size_t k = 0; k < n; k++) {
            node_t *it = N(p, v->data.sequence.items.start[k]);
            if ((rc = lookup(p, it, "function", c->name, func_get, p->s->funcs, p->s->n_funcs, &c->funcs[k])))
                return rc;
            for (size_t j = 0; j < k; j++)
                if (c->funcs[j] == c->funcs[k])
                    return perr(p, it, "function '%s' is granted twice in %s", p->s->funcs[c->funcs[k]].name, what);
            c->n_funcs++;
        }
    }
    if ((v = get(p, m, "state"))) {
        size_t n;
        if ((rc = seq_alloc(p, v, "'state'", sizeof(int), (void **)&c->states, &n)))
            return rc;
        c->state_write = calloc(n ? n : 1, sizeof(int));
        if (!c->state_write)
            return graft_errf(p->err, -ENOMEM, "out of memory");
        for (size_t k = 0; k < n; k++) {
            node_t *it = N(p, v->data.sequence.items.start[k]), *nm = it;
            uint32_t acc = GVER_R;
            if (it->type == YAML_MAPPING_NODE) {
                static const char *const skeys[] = { "name", "access", NULL };
                node_t *a;
                if ((rc = check_keys(p, it, skeys, "a state grant")) || (rc = need(p, it, "name", "a state grant", &nm)))
                    return rc;
                if ((a = get(p, it, "access")) && (rc = access_of(p, a, "access", 0, &acc)))
                    return rc;
            }
            int si;
            if ((rc = lookup(p, nm, "state", c->name, state_get, p->s->states, p->s->n_states, &si)))
                return rc;
            if ((acc & GVER_W) && !p->s->states[si].writable)
                return perr(p, it, "%s grants write to state '%s', which is declared read-only (line %d)",
                            what, p->s->states[si].name, p->s->states[si].line);
            for (size_t j = 0; j < k; j++)
                if (c->states[j] == si)
                    return perr(p, it, "state '%s' is granted twice in %s", p->s->states[si].name, what);
            c->states[k] = si;
            c->state_write[k] = (acc & GVER_W) != 0;
            c->n_states++;
        }
    }
    const struct geim_entry *e = &p->s->entries[c->entry];
    for (uint32_t i = 0; i < e->n_args; i++)
        c->args[i].access = GVER_R;
    if ((v = get(p, m, "args")) && (rc = parse_class_args(p, v, c)))
        return rc;
    if ((v = get(p, m, "insn_budget")) && (rc = budget_of(p, v, "insn_budget", &c->insn_budget)))
        return rc;
    if ((v = get(p, m, "mem_budget")) && (rc = budget_of(p, v, "mem_budget", &c->mem_budget)))
        return rc;
    if ((v = get(p, m, "override"))) {
        const char *s;
        if ((rc = scalar(p, v, "override", &s)))
            return rc;
        if (strcmp(s, "true") && strcmp(s, "false"))
            return perr(p, v, "override of %s must be true or false, not '%s'", what, s);
        c->override = !strcmp(s, "true");
        if (c->override && e->kind != GEIM_ENTRY_FUNCTION)
            return perr(p, v, "%s: override applies to function entries; entry '%s' is a %s entry",
                        what, e->name, geim_entry_kind_name(e->kind));
        if (c->override && e->ret.type.kind == GEIM_T_VOID)
            return perr(p, v, "%s: override needs entry '%s' to declare its return type ('ret')",
                        what, e->name);
    }
    return 0;
}

static int parse_classes(struct pctx *p, node_t *seq)
{
    size_t n;
    int rc = seq_alloc(p, seq, "'classes'", sizeof(struct geim_class), (void **)&p->s->classes, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = parse_class(p, N(p, seq->data.sequence.items.start[i]), &p->s->classes[i]);
        p->s->n_classes = (uint32_t)i + 1;   /* so geim_free sees partial classes */
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_root(struct pctx *p)
{
    static const char *const keys[] = { "version", "host", "types", "entries", "state",
                                        "functions", "helper_groups", "classes", NULL };
    node_t *root = yaml_document_get_root_node(&p->doc), *v;
    if (!root)
        return graft_errf(p->err, -EINVAL, "%s: empty spec: expected a mapping with 'entries' and 'classes'", p->file);
    int rc;
    if ((rc = expect(p, root, YAML_MAPPING_NODE, "the spec")) || (rc = check_keys(p, root, keys, "the spec")))
        return rc;
    if ((v = get(p, root, "version"))) {
        int64_t ver;
        if ((rc = int_of(p, v, "version", &ver)))
            return rc;
        if (ver != 1)
            return perr(p, v, "version %" PRId64 " is not supported (this graft reads version 1)", ver);
    }
    if ((v = get(p, root, "host"))) {
        const char *h;
        if ((rc = scalar(p, v, "host", &h)))
            return rc;
        snprintf(p->s->host, sizeof(p->s->host), "%s", h);
    }
    if ((v = get(p, root, "types")) && (rc = parse_types(p, v)))
        return rc;
    if ((rc = need(p, root, "entries", "the spec", &v)) || (rc = parse_entries(p, v)))
        return rc;
    if ((v = get(p, root, "state")) && (rc = parse_state(p, v)))
        return rc;
    if ((v = get(p, root, "functions")) && (rc = parse_funcs(p, v)))
        return rc;
    if ((v = get(p, root, "helper_groups")) && (rc = parse_groups(p, v)))
        return rc;
    if ((v = get(p, root, "classes")) && (rc = parse_classes(p, v)))
        return rc;
    return 0;
}

int geim_load_mem(const char *buf, size_t len, const char *name,
                  struct geim_spec **out, struct graft_err *err)
{
    if (!buf || !out)
        return graft_errf(err, -EINVAL, "geim_load_mem: NULL argument");
    *out = NULL;
    struct pctx p = { .file = name ? name : "<spec>", .err = err };
    p.s = calloc(1, sizeof(*p.s));
    if (!p.s || !(p.s->path = strdup(p.file))) {
        free(p.s);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        geim_free(p.s);
        return graft_errf(err, -ENOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &p.doc)) {
        rc = graft_errf(err, -EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s%s", p.file,
                        parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "unknown",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        geim_free(p.s);
        return rc;
    }
    rc = parse_root(&p);
    yaml_document_delete(&p.doc);
    yaml_parser_delete(&parser);
    if (rc) {
        geim_free(p.s);
        return rc;
    }
    *out = p.s;
    return 0;
}

int geim_load(const char *path, struct geim_spec **out, struct graft_err *err)
{
    if (!path || !out)
        return graft_errf(err, -EINVAL, "geim_load: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f)
        return graft_errf(err, -errno, "%s: cannot open spec: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(buf, cap);
            if (!t) {
                free(buf);
                fclose(f);
                return graft_errf(err, -ENOMEM, "out of memory");
            }
            buf = t;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
        if (len > (16u << 20)) {
            free(buf);
            fclose(f);
            return graft_errf(err, -EFBIG, "%s: spec larger than 16 MiB", path);
        }
    }
    fclose(f);
    int rc = geim_load_mem(buf, len, path, out, err);
    free(buf);
    return rc;
}

void geim_free(struct geim_spec *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->types && i < s->n_types; i++)
        free(s->types[i].fields);
    for (uint32_t i = 0; s->groups && i < s->n_groups; i++)
        free(s->groups[i].helpers);
    for (uint32_t i = 0; s->classes && i < s->n_classes; i++) {
        free(s->classes[i].funcs);
        free(s->classes[i].states);
        free(s->classes[i].state_write);
        for (int k = 0; k < GEIM_MAX_ARGS; k++)
            free(s->classes[i].args[k].field_access);
    }
    free(s->types);
    free(s->entries);
    free(s->states);
    free(s->funcs);
    free(s->groups);
    free(s->classes);
    free(s->path);
    free(s);
}

const struct geim_class *geim_find_class(const struct geim_spec *spec, const char *name)
{
    for (uint32_t i = 0; spec && name && i < spec->n_classes; i++)
        if (!strcmp(spec->classes[i].name, name))
            return &spec->classes[i];
    return NULL;
}

const char *geim_entry_kind_name(enum geim_entry_kind k)
{
    return k == GEIM_ENTRY_FUNCTION ? "function" : k == GEIM_ENTRY_SYSCALL ? "syscall" : "source";
}
