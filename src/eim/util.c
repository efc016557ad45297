/*
 * util.c - small pieces the EIM files share: "did you mean" suggestions, the
 * spec's C type syntax, and the growing text of a host report.
 *
 * The type syntax is deliberately tiny: u8..u64, s8..s64, __u8.., uintN_t,
 * intN_t, char, short, int, long, long long, unsigned/signed, bool, size_t,
 * void, `struct NAME` (declared in the spec's types: section), then any
 * number of '*', then (for declarations) a name. `const` is ignored.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eim/eim_int.h"

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            /* a transposition counts as one edit: "budjet" is one from "budget" */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

const char *geim_suggest(const char *word, const char *(*get)(const void *arg, size_t i),
                         const void *arg, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        const char *c = get(arg, i);
        if (!c || !*c)
            continue;
        size_t d = edit_distance(word, c);
        /* a prefix/suffix match ("log" for "app_log") is plausible too */
        if (d < best_d && (d <= 2 + wl / 4 || (wl >= 3 && strstr(c, word)))) {
            best = c;
            best_d = d;
        }
    }
    return best;
}

const char *geim_did_you_mean(char *buf, size_t len, const char *s)
{
    if (!s)
        buf[0] = '\0';
    else
        snprintf(buf, len, " (did you mean '%s'?)", s);
    return buf;
}

/* ---- types ---- */

struct base { const char *name; uint32_t size; int is_signed; };
static const struct base bases[] = {
    { "u8", 1, 0 }, { "u16", 2, 0 }, { "u32", 4, 0 }, { "u64", 8, 0 },
    { "s8", 1, 1 }, { "s16", 2, 1 }, { "s32", 4, 1 }, { "s64", 8, 1 },
    { "__u8", 1, 0 }, { "__u16", 2, 0 }, { "__u32", 4, 0 }, { "__u64", 8, 0 },
    { "__s8", 1, 1 }, { "__s16", 2, 1 }, { "__s32", 4, 1 }, { "__s64", 8, 1 },
    { "uint8_t", 1, 0 }, { "uint16_t", 2, 0 }, { "uint32_t", 4, 0 }, { "uint64_t", 8, 0 },
    { "int8_t", 1, 1 }, { "int16_t", 2, 1 }, { "int32_t", 4, 1 }, { "int64_t", 8, 1 },
    { "char", 1, 1 }, { "short", 2, 1 }, { "int", 4, 1 }, { "long", 8, 1 },
    { "bool", 1, 0 }, { "_Bool", 1, 0 }, { "size_t", 8, 0 }, { "ssize_t", 8, 1 },
};

static const char *base_name(const void *arg, size_t i)
{
    (void)arg;
    return bases[i].name;
}

static const char *struct_name(const void *arg, size_t i)
{
    const struct geim_spec *s = arg;
    return s->types[i].name;
}

/* Next token: an identifier or a single '*'. */
static const char *next_tok(const char *p, char *tok, size_t len)
{
    while (isspace((unsigned char)*p))
        p++;
    size_t n = 0;
    if (*p == '*') {
        tok[n++] = *p++;
    } else {
        while ((isalnum((unsigned char)*p) || *p == '_') && n + 1 < len)
            tok[n++] = *p++;
        if (!n && *p) {        /* a character outside the syntax */
            tok[0] = *p;
            tok[1] = '\0';
            return NULL;
        }
    }
    tok[n] = '\0';
    return p;
}

int geim_parse_decl(const struct geim_spec *spec, const char *text, int want_name,
                    struct geim_type *t, char *name, size_t name_len,
                    char *why, size_t why_len)
{
    char toks[16][64];
    int nt = 0;
    const char *p = text;
    while (nt < 16) {
        p = next_tok(p, toks[nt], sizeof(toks[nt]));
        if (!p) {
            snprintf(why, why_len, "unexpected character '%s' in declaration '%s'", toks[nt], text);
            return -1;
        }
        if (!toks[nt][0])
            break;
        if (strcmp(toks[nt], "const") && strcmp(toks[nt], "volatile"))
            nt++;
    }
    memset(t, 0, sizeof(*t));
    t->struct_idx = -1;
    if (name)
        name[0] = '\0';
    int i = 0, is_unsigned = -1;
    uint32_t size = 0;
    int found = 0;
    char text_norm[64] = "";
    if (i < nt && (!strcmp(toks[i], "unsigned") || !strcmp(toks[i], "signed"))) {
        is_unsigned = toks[i][0] == 'u';
        i++;
        size = 4;              /* "unsigned" alone is unsigned int */
        found = 1;
    }
    if (i < nt && !strcmp(toks[i], "struct")) {
        if (i + 1 >= nt) {
            snprintf(why, why_len, "'struct' needs a name in '%s'", text);
            return -1;
        }
        const char *sn = toks[i + 1];
        int idx = -1;
        for (uint32_t k = 0; k < spec->n_types; k++)
            if (!strcmp(spec->types[k].name, sn))
                idx = (int)k;
        if (idx < 0) {
            char dym[128];
            snprintf(why, why_len, "unknown type 'struct %s': declare it under types:%s", sn,
                     geim_did_you_mean(dym, sizeof(dym), geim_suggest(sn, struct_name, spec, spec->n_types)));
            return -1;
        }
        t->kind = GEIM_T_STRUCT;
        t->struct_idx = idx;
        t->size = spec->types[idx].size;
        snprintf(text_norm, sizeof(text_norm), "struct %s", sn);
        i += 2;
    } else if (i < nt && !strcmp(toks[i], "void")) {
        t->kind = GEIM_T_VOID;
        snprintf(text_norm, sizeof(text_norm), "void");
        i++;
    } else {
        int matched = 0;
        while (i < nt && strcmp(toks[i], "*")) {
            const struct base *b = NULL;
            for (size_t k = 0; k < sizeof(bases) / sizeof(bases[0]); k++)
                if (!strcmp(bases[k].name, toks[i]))
                    b = &bases[k];
            if (!b)
                break;
            /* "long long", "long int", "short int" */
            if (matched && !strcmp(b->name, "int"))
                ;
            else if (matched && !strcmp(b->name, "long"))
                size = 8;
            else {
                size = b->size;
                if (is_unsigned < 0 || matched)
                    t->is_signed = b->is_signed;
            }
            matched = 1;
            i++;
        }
        if (!matched && !found) {
            char dym[128];
            snprintf(why, why_len, "unknown type '%s' in '%s'%s", i < nt ? toks[i] : "", text,
                     geim_did_you_mean(dym, sizeof(dym),
                                       i < nt ? geim_suggest(toks[i], base_name, NULL, sizeof(bases) / sizeof(bases[0])) : NULL));
            return -1;
        }
        if (is_unsigned >= 0)
            t->is_signed = !is_unsigned;
        t->kind = GEIM_T_INT;
        t->size = size;
        snprintf(text_norm, sizeof(text_norm), "%s%u", t->is_signed ? "s" : "u", size * 8);
    }
    int stars = 0;
    while (i < nt && !strcmp(toks[i], "*")) {
        stars++;
        i++;
    }
    if (stars) {
        t->pointee = stars == 1 ? t->kind : GEIM_T_PTR;
        t->pointee_size = stars == 1 ? t->size : 8;
        if (stars > 1)
            t->struct_idx = -1;
        t->kind = GEIM_T_PTR;
        t->size = 8;
        size_t l = strlen(text_norm);
        for (int k = 0; k < stars && l + 2 < sizeof(text_norm); k++) {
            text_norm[l++] = k ? '*' : ' ';
            if (!k)
                text_norm[l++] = '*';
        }
        text_norm[l] = '\0';
    } else if (t->kind == GEIM_T_STRUCT) {
        snprintf(why, why_len, "struct '%s' passed by value is not supported: use a pointer", text);
        return -1;
    }
    snprintf(t->text, sizeof(t->text), "%s", text_norm);
    if (i < nt) {
        if (want_name == 0 || i + 1 < nt) {
            snprintf(why, why_len, "unexpected '%s' in type '%s'", toks[i], text);
            return -1;
        }
        if (name)
            snprintf(name, name_len, "%s", toks[i]);
    } else if (want_name == 1) {
        snprintf(why, why_len, "declaration '%s' needs a name, e.g. '%s x'", text, text);
        return -1;
    }
    return 0;
}

void geim_report_add(struct geim_report *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    line[n] = '\0';
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->cap ? r->cap * 2 : 1024) + n;
        char *t = realloc(r->text, cap);
        if (!t)
            return;
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, line, n + 1);
    r->len += n;
}

void geim_report_free(struct geim_report *r)
{
    if (!r)
        return;
    free(r->text);
    memset(r, 0, sizeof(*r));
}
