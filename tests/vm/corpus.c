/* corpus.c - the VM test corpus reader and environment; see corpus.h. */
#include "corpus.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

long corpus_hex_bytes(const char *text, uint8_t **out)
{
    size_t cap = strlen(text) / 2 + 1, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        return -1;
    const char *p = text;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1])
            || (p[2] && !isspace((unsigned char)p[2]))) {
            free(b);
            return -1;
        }
        unsigned v;
        sscanf(p, "%2x", &v);
        b[n++] = (uint8_t)v;
        p += 2;
    }
    *out = b;
    return (long)n;
}

static char *dup_trimmed(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    char *r = malloc(len + 1);
    if (r) {
        memcpy(r, s, len);
        r[len] = '\0';
    }
    return r;
}

int corpus_read(const char *path, struct corpus_case *c, struct graft_err *err)
{
    memset(c, 0, sizeof(*c));
    c->path = strdup(path);
    char *text = read_file(path);
    if (!text || !c->path) {
        free(text);
        return graft_errf(err, -errno, "%s: cannot read", path);
    }
    /* walk "-- name" headers; a section runs to the next header */
    char *p = text;
    char *sec = NULL, *body = NULL;
    int r = 0;
    for (;;) {
        char *line_end = strchr(p, '\n');
        bool header = strncmp(p, "-- ", 3) == 0;
        bool end = *p == '\0';
        if ((header || end) && sec) {
            size_t blen = (size_t)(p - body);
            char *val = dup_trimmed(body, blen);
            if (!val) {
                r = graft_errf(err, -ENOMEM, "out of memory");
                break;
            }
            if (strcmp(sec, "asm") == 0) {
                c->asm_text = val;
                val = NULL;
            } else if (strcmp(sec, "mem") == 0) {
                long n = corpus_hex_bytes(val, &c->mem);
                if (n < 0)
                    r = graft_errf(err, -EINVAL, "%s: bad hex in -- mem", path);
                c->mem_len = n < 0 ? 0 : (size_t)n;
            } else if (strcmp(sec, "result") == 0) {
                char *e;
                errno = 0;
                c->result = strtoull(val, &e, 0);
                if (errno || *e)
                    r = graft_errf(err, -EINVAL, "%s: bad -- result '%s'", path, val);
                c->has_result = true;
            } else if (strcmp(sec, "error") == 0) {
                c->error = val;
                val = NULL;
            } else if (strcmp(sec, "no-checked") == 0) {
                c->no_checked = true;
            } else {
                r = graft_errf(err, -EINVAL, "%s: unknown section '-- %s'", path, sec);
            }
            free(val);
            free(sec);
            sec = NULL;
            if (r)
                break;
        }
        if (end)
            break;
        if (header) {
            char *name_end = line_end ? line_end : p + strlen(p);
            sec = dup_trimmed(p + 3, (size_t)(name_end - p - 3));
            body = line_end ? line_end + 1 : name_end;
        }
        p = line_end ? line_end + 1 : p + strlen(p);
    }
    free(sec);
    free(text);
    if (!r && !c->asm_text)
        r = graft_errf(err, -EINVAL, "%s: no -- asm section", path);
    if (!r && !c->has_result && !c->error)
        r = graft_errf(err, -EINVAL, "%s: needs -- result or -- error", path);
    if (r)
        corpus_free(c);
    return r;
}

void corpus_free(struct corpus_case *c)
{
    free(c->path);
    free(c->asm_text);
    free(c->mem);
    free(c->error);
    memset(c, 0, sizeof(*c));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int corpus_list(const char *dir, char ***paths)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".data") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, (size_t)cap * sizeof(*v));
            if (!nv)
                break;
            v = nv;
        }
        size_t pl = strlen(dir) + l + 2;
        v[n] = malloc(pl);
        if (!v[n])
            break;
        snprintf(v[n], pl, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof(*v), cmp_str);
    *paths = v;
    return n;
}

void corpus_list_free(char **paths, int n)
{
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* ---- environment ------------------------------------------------------ */

static uint64_t h_sum(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a + b + c + d + e;
}

static uint64_t h_double(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a * 2;
}

static uint64_t h_ident(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a;
}

static uint64_t h_const(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return 0x1122334455667788ull;
}

static int resolve(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *value,
                   struct graft_err *err)
{
    if (imm == 99)
        return graft_errf(err, -ENOENT, "no map %d in the test environment", imm);
    switch (src) {
    case BPF_PSEUDO_MAP_FD: *value = 0xaaaa0000ull + (uint32_t)imm; return 0;
    case BPF_PSEUDO_MAP_VALUE: *value = 0xbbbb0000ull + (uint32_t)imm * 0x100ull + (uint64_t)(int64_t)next; return 0;
    case BPF_PSEUDO_MAP_IDX: *value = 0xcccc0000ull + (uint32_t)imm; return 0;
    case BPF_PSEUDO_MAP_IDX_VALUE: *value = 0xdddd0000ull + (uint32_t)imm * 0x100ull + (uint64_t)(int64_t)next; return 0;
    case BPF_PSEUDO_BTF_ID: *value = 0xeeee0000ull + (uint32_t)imm; return 0;
    }
    return graft_errf(err, -EINVAL, "unexpected pseudo source %u", src);
}

static const struct gvm_prog *no_tail_target(void *arg, uint64_t map, uint64_t index)
{
    return NULL;
}

const struct gvm_env *corpus_env(void)
{
    static gvm_helper_fn helpers[BPF_MAX_HELPER_ID];
    static struct gvm_env env;
    if (!env.helpers) {
        helpers[1] = h_sum;
        helpers[2] = h_double;
        helpers[5] = h_ident;
        helpers[7] = h_const;
        env.helpers = helpers;
        env.resolve_ld_imm64 = resolve;
        env.tail_call_target = no_tail_target;
    }
    return &env;
}
