/*
 * vtest.c - case-file parsing, policies and checked execution shared by the
 * verifier's tests (see vtest.h for the case format).
 *
 * Checked execution: the program runs on the VM's checked interpreter with
 * real maps; memory outside ctx and the stack is allowed only where the
 * program legitimately got a pointer (a map lookup result, a ring buffer
 * sample not yet submitted, a direct map value), so an access the verifier
 * should have refused shows up as a violation.
 */
#include "util/task_layout.h"
#include "vtest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/vm.h"

/* ---- parsing ---- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static uint32_t map_type_of(const char *w)
{
    static const struct { const char *n; uint32_t t; } tab[] = {
        { "hash", GMAP_HASH }, { "array", GMAP_ARRAY }, { "prog_array", GMAP_PROG_ARRAY },
        { "perf_event_array", GMAP_PERF_EVENT_ARRAY }, { "percpu_hash", GMAP_PERCPU_HASH },
        { "percpu_array", GMAP_PERCPU_ARRAY }, { "lru_hash", GMAP_LRU_HASH },
        { "lpm_trie", GMAP_LPM_TRIE }, { "array_of_maps", GMAP_ARRAY_OF_MAPS },
        { "queue", GMAP_QUEUE }, { "stack", GMAP_STACK }, { "ringbuf", GMAP_RINGBUF },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (!strcmp(w, tab[i].n))
            return tab[i].t;
    return 0;
}

static int parse_maps(struct vcase *c, char *s)
{
    char *save = NULL;
    for (char *m = strtok_r(s, ";", &save); m; m = strtok_r(NULL, ";", &save)) {
        m = trim(m);
        if (!*m)
            continue;
        if (c->n_maps == VT_MAX_MAPS)
            return -1;
        struct gmap_def *d = &c->maps[c->n_maps];
        memset(d, 0, sizeof(*d));
        c->lock_offs[c->n_maps] = GVER_LOCK_UNKNOWN;
        struct gver_map_kptrs *kp = &c->kptrs[c->n_maps];
        memset(kp, 0, sizeof(*kp));
        char *save2 = NULL;
        char *w = strtok_r(m, " \t", &save2);
        d->type = map_type_of(w);
        if (!d->type)
            return -1;
        d->key_size = 4;
        d->value_size = 8;
        d->max_entries = 4;
        if (d->type == GMAP_RINGBUF) {
            d->key_size = d->value_size = 0;
            d->max_entries = 4096;
        }
        if (d->type == GMAP_QUEUE || d->type == GMAP_STACK)
            d->key_size = 0;
        while ((w = strtok_r(NULL, " \t", &save2))) {
            if (!strncmp(w, "k=", 2)) d->key_size = (uint32_t)strtoul(w + 2, NULL, 0);
            else if (!strncmp(w, "v=", 2)) d->value_size = (uint32_t)strtoul(w + 2, NULL, 0);
            else if (!strncmp(w, "n=", 2)) d->max_entries = (uint32_t)strtoul(w + 2, NULL, 0);
            else if (!strcmp(w, "rdonly")) d->map_flags |= GMAP_F_RDONLY_PROG;
            else if (!strcmp(w, "wronly")) d->map_flags |= GMAP_F_WRONLY_PROG;
            else if (!strncmp(w, "kptr=", 5) || !strncmp(w, "kptr_ref=", 9)) {
                if (kp->n == GVER_MAX_KPTRS)
                    return -1;
                kp->kind[kp->n] = w[4] == '=' ? GVER_KPTR_UNREF : GVER_KPTR_REF;
                kp->off[kp->n++] = (uint32_t)strtoul(strchr(w, '=') + 1, NULL, 0);
            }
            else if (!strcmp(w, "lock=none")) c->lock_offs[c->n_maps] = GVER_LOCK_NONE;
            else if (!strncmp(w, "lock=", 5)) c->lock_offs[c->n_maps] = (int32_t)strtol(w + 5, NULL, 0);
            else if (!strncmp(w, "inner=", 6)) {   /* a map of maps' inner definition */
                if (!(d->inner_map_type = map_type_of(w + 6)))
                    return -1;
                d->inner_key_size = 4;
                d->inner_value_size = 8;
                d->inner_max_entries = 4;
            } else if (!strncmp(w, "iv=", 3)) d->inner_value_size = (uint32_t)strtoul(w + 3, NULL, 0);
            else return -1;
        }
        if (d->type == GMAP_HASH || d->type == GMAP_LRU_HASH || d->type == GMAP_PERCPU_HASH)
            d->map_flags |= 0;
        snprintf(d->name, sizeof(d->name), "m%u", c->n_maps);
        c->n_maps++;
    }
    return 0;
}

static int parse_kfunc(struct vcase *c, char *s)
{
    if (c->n_kf == VT_MAX_KF)
        return -1;
    struct gver_kfunc *k = &c->kf[c->n_kf];
    memset(k, 0, sizeof(*k));
    char *save = NULL;
    char *w = strtok_r(s, " \t", &save);
    if (!w)
        return -1;
    k->id = (int32_t)strtol(w, NULL, 0);
    w = strtok_r(NULL, " \t", &save);
    if (!w)
        return -1;
    snprintf(c->kf_names[c->n_kf], sizeof(c->kf_names[0]), "%s", w);
    k->name = NULL;                    /* set by vt_policy(): c may move */
    k->ret = GRET_INTEGER;
    int a = 0;
    while ((w = strtok_r(NULL, " \t", &save))) {
        long long lo = 0, hi = 0;
        if (!strncmp(w, "ret:", 4)) {
            if (sscanf(w + 4, "%lld:%lld", &lo, &hi) == 2) {
                k->ret_min = lo;
                k->ret_max = hi;
            }
        } else if (!strcmp(w, "void")) {
            k->ret = GRET_VOID;
        } else if (a < 5) {
            if (!strncmp(w, "scalar", 6)) {
                k->args[a] = GARG_SCALAR;
                if (sscanf(w + 6, ":%lld:%lld", &lo, &hi) == 2) {
                    k->arg_min[a] = lo;
                    k->arg_max[a] = hi;
                }
            } else if (!strcmp(w, "any")) k->args[a] = GARG_ANYTHING;
            else if (!strcmp(w, "mem")) k->args[a] = GARG_PTR_TO_MEM;
            else if (!strcmp(w, "umem")) k->args[a] = GARG_PTR_TO_UNINIT_MEM;
            else if (!strcmp(w, "size")) k->args[a] = GARG_CONST_SIZE;
            else if (!strcmp(w, "size0")) k->args[a] = GARG_CONST_SIZE_OR_ZERO;
            else if (!strcmp(w, "ctx")) k->args[a] = GARG_PTR_TO_CTX;
            else return -1;
            a++;
        }
    }
    c->n_kf++;
    return 0;
}

static int parse_header(struct vcase *c, char *line)
{
    if (!strncmp(line, "expect:", 7)) {
        char *v = trim(line + 7);
        if (!strncmp(v, "accept", 6)) {
            c->expect_accept = 1;
            return 0;
        }
        if (!strncmp(v, "reject", 6)) {
            c->expect_accept = 0;
            char *q = strchr(v, '"'), *q2 = q ? strrchr(q + 1, '"') : NULL;
            if (q && q2)
                snprintf(c->substr, sizeof(c->substr), "%.*s", (int)(q2 - q - 1), q + 1);
            return 0;
        }
        return -1;
    }
    if (!strncmp(line, "ctx:", 4)) {
        char *v = trim(line + 4);
        if (!strncmp(v, "rawrw", 5)) { c->ctx_kind = 1; c->ctx_size = (uint32_t)strtoul(v + 5, NULL, 0); }
        else if (!strncmp(v, "raw", 3)) { c->ctx_kind = 0; c->ctx_size = (uint32_t)strtoul(v + 3, NULL, 0); }
        else if (!strcmp(v, "pt_regs")) { c->ctx_kind = 2; c->ctx_size = 168; }
        else if (!strcmp(v, "sys_enter")) { c->ctx_kind = 3; c->ctx_size = 64; }
        else if (!strcmp(v, "none")) { c->ctx_kind = 4; c->ctx_size = 0; }
        else return -1;
        return 0;
    }
    if (!strncmp(line, "maps:", 5))
        return parse_maps(c, line + 5);
    if (!strncmp(line, "kernel:", 7)) {
        c->kernel_skip = 1;
        return 0;
    }
    if (!strncmp(line, "policy:", 7)) {
        char *v = trim(line + 7);
        if (!strcmp(v, "leaks")) c->leaks = 1;
        else if (!strcmp(v, "ld_pkt")) c->ld_pkt = 1;
        else if (!strcmp(v, "uninit")) c->uninit = 1;
        else if (!strcmp(v, "nospec")) c->nospec = 1;
        else if (!strcmp(v, "strict_align")) c->strict_align = 1;
        else if (!strcmp(v, "own_copy")) c->own_copy = 1;
        else if (!strncmp(v, "budget", 6)) c->budget = strtoull(v + 6, NULL, 0);
        else if (!strncmp(v, "states", 6)) c->states = strtoull(v + 6, NULL, 0);
        else if (!strncmp(v, "mem", 3)) c->mem = strtoull(v + 3, NULL, 0);
        else if (!strncmp(v, "deny", 4) && c->n_deny < 8) c->deny[c->n_deny++] = (uint32_t)strtoul(v + 4, NULL, 0);
        else if (!strncmp(v, "ret", 3)) {
            long long lo, hi;
            if (sscanf(v + 3, "%lld %lld", &lo, &hi) != 2)
                return -1;
            c->ret_min = lo;
            c->ret_max = hi;
            c->ret_checked = 1;
        } else if (!strncmp(v, "kfunc", 5)) return parse_kfunc(c, v + 5);
        else if (!strncmp(v, "ksym", 4) && c->n_ks < VT_MAX_KF) {
            struct gver_ksym *k = &c->ks[c->n_ks++];
            char *end;
            k->name = "ksym";
            k->id = (int32_t)strtol(v + 4, &end, 0);
            k->size = (uint32_t)strtoul(end, &end, 0);
            k->access = GVER_R | (strstr(end, "rw") ? GVER_W : 0);
        }
        else return -1;
        return 0;
    }
    return 1;   /* not a header: assembly */
}

int vt_parse_file(const char *path, struct vcase **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    struct vcase *cs = NULL;
    int n = 0, cap = 0, lineno = 0;
    char line[1024];
    size_t tlen = 0, tcap = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *t = trim(line);
        if (!strncmp(t, "==", 2)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                struct vcase *nc = realloc(cs, cap * sizeof(*cs));
                if (!nc)
                    goto fail;
                cs = nc;
            }
            memset(&cs[n], 0, sizeof(cs[n]));
            snprintf(cs[n].name, sizeof(cs[n].name), "%s", trim(t + 2));
            cs[n].file = path;
            cs[n].line = lineno;
            cs[n].ctx_size = 64;
            cs[n].expect_accept = -1;
            n++;
            tlen = tcap = 0;
            continue;
        }
        if (!n || !*t)
            continue;
        struct vcase *c = &cs[n - 1];
        if (!c->text) {
            int h = parse_header(c, t);
            if (h < 0) {
                fprintf(stderr, "%s:%d: bad header line: %s\n", path, lineno, t);
                goto fail;
            }
            if (h == 0)
                continue;
        }
        size_t l = strlen(t);
        if (tlen + l + 2 > tcap) {
            tcap = (tlen + l + 2) * 2;
            char *nt = realloc(c->text, tcap);
            if (!nt)
                goto fail;
            if (!c->text)
                nt[0] = 0;
            c->text = nt;
        }
        memcpy(c->text + tlen, t, l);
        tlen += l;
        c->text[tlen++] = '\n';
        c->text[tlen] = 0;
    }
    fclose(f);
    *out = cs;
    return n;
fail:
    fclose(f);
    vt_free_cases(cs, n);
    return -1;
}

void vt_free_cases(struct vcase *c, int n)
{
    for (int i = 0; i < n; i++)
        free(c[i].text);
    free(c);
}

/* ---- policies ---- */

struct vt_policy {
    struct gver_policy p;
    struct gver_ctx_layout layout;
    struct gver_ctx_field field;
    struct gver_kfunc kf[VT_MAX_KF];
    struct gver_ksym ks[VT_MAX_KF];
};

struct gver_policy *vt_policy(const struct vcase *c)
{
    struct gver_policy *base = gver_policy_raw(0);
    struct vt_policy *vp = calloc(1, sizeof(*vp));
    if (!base || !vp) {
        free(base);
        free(vp);
        return NULL;
    }
    vp->p = *base;
    free(base);
    struct gver_policy *p = &vp->p;
    switch (c->ctx_kind) {
    case 0:
    case 1:
        vp->field = (struct gver_ctx_field){ 0, c->ctx_size, GVER_R | (c->ctx_kind == 1 ? GVER_W : 0) };
        vp->layout = (struct gver_ctx_layout){ "raw", c->ctx_size, &vp->field, 1 };
        p->ctx = c->ctx_size ? &vp->layout : NULL;
        break;
    case 2: p->ctx = &gver_ctx_pt_regs; break;
    case 3: p->ctx = &gver_ctx_sys_enter; break;
    default: p->ctx = NULL; break;
    }
    p->allow_ptr_leaks = c->leaks;
    p->ld_pkt = c->ld_pkt;
    p->allow_uninit_stack = c->uninit;
    p->spec_bypass = c->nospec;
    p->strict_align = c->strict_align;
    p->insn_budget = c->budget;
    if (c->states)
        p->max_states = c->states;
    p->mem_budget = c->mem;
    p->ret_min = c->ret_min;
    p->ret_max = c->ret_max;
    p->ret_checked = c->ret_checked;
    for (int i = 0; i < c->n_deny; i++)
        gver_policy_allow_helper(p, c->deny[i], 0);
    if (c->own_copy) {
        gver_policy_allow_helper(p, 113, 0);
        gver_policy_allow_helper(p, 115, 0);
        p->kernel_reads_own_mem = 1;
    }
    memcpy(vp->kf, c->kf, sizeof(vp->kf));
    /* the names live in c itself: point at them here, not when parsing (the
     * case array may have moved since, as it grew) */
    for (int i = 0; i < c->n_kf; i++)
        vp->kf[i].name = c->kf_names[i];
    p->kfuncs = vp->kf;
    p->n_kfuncs = (uint32_t)c->n_kf;
    memcpy(vp->ks, c->ks, sizeof(vp->ks));
    p->ksyms = vp->ks;
    p->n_ksyms = (uint32_t)c->n_ks;
    return p;
}

/* ---- checked execution ---- */

struct region {
    uint64_t addr, size;
    int writable;
};

static struct {
    struct gmap *maps[VT_MAX_MAPS];
    uint32_t n_maps;
    struct region reg[256];
    uint32_t nreg;
    gvm_helper_fn orig[BPF_MAX_HELPER_ID];
    gvm_helper_fn table[BPF_MAX_HELPER_ID];
} g;

static void add_region(uint64_t a, uint64_t s, int w)
{
    if (g.nreg < 256)
        g.reg[g.nreg++] = (struct region){ a, s, w };
}

static int is_rdonly_map(struct gmap *m)
{
    return (gmap_get_def(m)->map_flags & GMAP_F_RDONLY_PROG) != 0;
}

static uint64_t w_lookup(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    uint64_t p = g.orig[1](r1, r2, r3, r4, r5);
    if (p) {
        struct gmap *m = (struct gmap *)(uintptr_t)r1;
        add_region(p, gmap_get_def(m)->value_size, !is_rdonly_map(m));
    }
    return p;
}

static uint64_t w_reserve(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    uint64_t p = g.orig[131](r1, r2, r3, r4, r5);
    if (p)
        add_region(p, r2, 1);
    return p;
}

/* bpf_get_current_task_btf: the task image, readable, GTASK_IMAGE_MAX bytes */
static uint64_t w_task_btf(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    uint64_t p = g.orig[158](r1, r2, r3, r4, r5);
    if (p)
        add_region(p, GTASK_IMAGE_MAX, 0);
    return p;
}

static void drop_region(uint64_t a)
{
    for (uint32_t i = 0; i < g.nreg; i++)
        if (g.reg[i].addr == a) {
            g.reg[i] = g.reg[--g.nreg];
            return;
        }
}

static uint64_t w_submit(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    drop_region(r1);
    return g.orig[132](r1, r2, r3, r4, r5);
}

static uint64_t w_discard(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    drop_region(r1);
    return g.orig[133](r1, r2, r3, r4, r5);
}

static int mem_allowed(void *arg, uint64_t addr, uint64_t size, int write)
{
    (void)arg;
    for (uint32_t i = 0; i < g.nreg; i++) {
        struct region *r = &g.reg[i];
        if (addr >= r->addr && size <= r->size && addr - r->addr <= r->size - size)
            return !write || r->writable;
    }
    return 0;
}

static int resolve(void *arg, uint8_t src, int32_t imm, int32_t next_imm, uint64_t *value,
                   struct graft_err *err)
{
    (void)arg;
    if (imm < 0 || (uint32_t)imm >= g.n_maps)
        return graft_errf(err, -EINVAL, "no map %d", imm);
    struct gmap *m = g.maps[imm];
    if (src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_IDX) {
        *value = (uint64_t)(uintptr_t)m;
        return 0;
    }
    if (src == BPF_PSEUDO_MAP_VALUE || src == BPF_PSEUDO_MAP_IDX_VALUE) {
        uint32_t key = 0;
        void *v = gmap_lookup(m, &key);
        if (!v)
            return graft_errf(err, -EINVAL, "map %d has no element 0", imm);
        *value = (uint64_t)(uintptr_t)v + (uint32_t)next_imm;
        return 0;
    }
    return graft_errf(err, -EINVAL, "unsupported pseudo source %d", src);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Run r's map contents: direct values always exist (arrays); hash maps get
 * keys 0..3 on odd runs. */
static void fill_maps(int r, uint64_t *seedp)
{
    uint64_t seed = *seedp;
    for (uint32_t i = 0; i < g.n_maps; i++) {
        const struct gmap_def *d = gmap_get_def(g.maps[i]);
        if ((d->type == GMAP_HASH || d->type == GMAP_LRU_HASH) && d->key_size <= 64 &&
            d->value_size <= 4096 && (r & 1)) {
            uint8_t k[64] = { 0 }, v[4096];
            for (uint32_t x = 0; x < d->value_size; x++)
                v[x] = (uint8_t)rnd(&seed);
            for (uint32_t key = 0; key < 4 && key < d->max_entries; key++) {
                memcpy(k, &key, d->key_size < 4 ? d->key_size : 4);
                gmap_update(g.maps[i], k, v, GMAP_ANY);
            }
        }
        if (d->type == GMAP_ARRAY && d->value_size <= 4096) {
            uint8_t v[4096];
            for (uint32_t x = 0; x < d->value_size; x++)
                v[x] = (uint8_t)rnd(&seed);
            uint32_t key = (uint32_t)(rnd(&seed) % (d->max_entries ? d->max_entries : 1));
            gmap_update(g.maps[i], &key, v, GMAP_ANY);
        }
    }
    *seedp = seed;
}

/* The program's maps, fresh (unlinked: gone when closed), into g.maps;
 * -1 with msg when one cannot be made (those made are in g.n_maps). */
static int create_maps(const struct gmap_def *maps, uint32_t n_maps, char *msg, size_t msglen)
{
    struct graft_err err = { 0 };
    for (uint32_t i = 0; i < n_maps; i++) {
        if (gmap_create(&maps[i], -1, &g.maps[i], &err)) {
            snprintf(msg, msglen, "map %u: %s", i, err.msg);
            return -1;
        }
        gmap_unlink(gmap_shm_name(g.maps[i]));
        g.n_maps++;
    }
    return 0;
}

static void fill_ctx(uint8_t *ctx, uint32_t ctx_size, uint64_t *seed)
{
    for (uint32_t i = 0; i < ctx_size && i < 4096; i++) {
        uint64_t x = rnd(seed);
        /* small values sometimes, so that bounds checks go both ways */
        ctx[i] = (uint8_t)((x >> 8) % 4 == 0 ? x % 8 : x);
    }
}

int vt_run_checked(const struct bpf_insn *insns, uint32_t n, const struct gmap_def *maps,
                   uint32_t n_maps, uint32_t ctx_size, int runs, uint64_t seed,
                   char *msg, size_t msglen)
{
    struct graft_err err = { 0 };
    int ret = -1;
    /* Helpers that fill stack memory without a (pointer, size) pair: the
     * checked interpreter cannot see those writes, so it would raise false
     * alarms. Such programs are not run. */
    for (uint32_t i = 0; i < n; i++)
        if (insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == 0 &&
            (insns[i].imm == 88 || insns[i].imm == 89 || insns[i].imm == 183 || insns[i].imm == 184)) {
            snprintf(msg, msglen, "calls helper %d whose stack writes the interpreter cannot see", insns[i].imm);
            return -1;
        }
    memset(&g, 0, sizeof(g));
    const gvm_helper_fn *t = ghelper_table();
    memcpy(g.orig, t, sizeof(g.orig));
    memcpy(g.table, t, sizeof(g.table));
    g.table[1] = w_lookup;
    g.table[131] = w_reserve;
    g.table[158] = w_task_btf;
    g.table[132] = w_submit;
    g.table[133] = w_discard;
    if (create_maps(maps, n_maps, msg, msglen))
        goto out;
    struct gvm_env env = { .helpers = g.table, .resolve_ld_imm64 = resolve, .mem_allowed = mem_allowed };
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP, .flags = GVM_F_CHECKED,
                               .step_limit = 2000000, .env = &env };
    struct gvm_prog *prog = NULL;
    if (gvm_prog_create(insns, n, &o, &prog, &err)) {
        snprintf(msg, msglen, "gvm_prog_create: %s", err.msg);
        goto out;
    }
    uint8_t ctx[4096 + 8];
    ret = 0;
    for (int r = 0; r < runs && !ret; r++) {
        fill_maps(r, &seed);
        /* Direct values are valid memory for the whole run. */
        g.nreg = 0;
        for (uint32_t i = 0; i < g.n_maps; i++) {
            const struct gmap_def *d = gmap_get_def(g.maps[i]);
            if (d->type == GMAP_ARRAY) {
                uint32_t key = 0;
                void *v = gmap_lookup(g.maps[i], &key);
                if (v)
                    add_region((uint64_t)(uintptr_t)v, d->value_size, !is_rdonly_map(g.maps[i]));
            }
        }
        fill_ctx(ctx, ctx_size, &seed);
        uint64_t rv;
        if (gvm_prog_run(prog, ctx_size ? ctx : NULL, ctx_size, &rv, &err)) {
            snprintf(msg, msglen, "%s", err.msg);
            ret = 1;
        }
    }
    gvm_prog_free(prog);
out:
    for (uint32_t i = 0; i < g.n_maps; i++)
        gmap_close(g.maps[i]);
    return ret;
}

static int kernel_case(const struct vt_kcase *c, const struct gmap_def *maps, uint32_t n_maps, int strict_align);

int vt_kernel_case(const struct vt_kcase *c, const struct gmap_def *maps, uint32_t n_maps)
{
    return kernel_case(c, maps, n_maps, 0);
}

int vt_kernel_case_strict(const struct vt_kcase *c, const struct gmap_def *maps, uint32_t n_maps)
{
    return kernel_case(c, maps, n_maps, 1);
}

static int kernel_case(const struct vt_kcase *c, const struct gmap_def *maps, uint32_t n_maps, int strict_align)
{
    struct bpf_insn *insns = NULL;
    uint32_t n = 0;
    struct graft_err err = { 0 };
    if (gvm_asm(c->text, &insns, &n, &err)) {
        printf("FAIL %s: does not assemble: %s\n", c->name, err.msg);
        return 1;
    }
    struct gver_policy *pol = gver_policy_for_kernel_type(c->ktype);
    if (!pol) {
        printf("FAIL %s: no policy\n", c->name);
        free(insns);
        return 1;
    }
    gver_policy_kernel_ret(pol, c->ktype, c->section);   /* the context rules too */
    pol->allow_ptr_leaks = c->privileged;                /* the kernel's root rules */
    pol->strict_align = strict_align;
    gver_policy_kernel_helpers(pol, c->ktype, !c->privileged);
    struct gver_input in = { .insns = insns, .n = n, .maps = maps, .n_maps = n_maps, .policy = pol };
    struct gver_result res;
    int failed = 1;
    if (gver_verify(&in, &res, &err) < 0) {
        printf("FAIL %s: verifier error %s\n", c->name, err.msg);
        free(pol);
        free(insns);
        return 1;
    }
    if (!c->expect && !res.accepted)
        printf("FAIL %s: rejected: %s\n", c->name, res.reason);
    else if (c->expect && res.accepted)
        printf("FAIL %s: accepted, expected a rejection with \"%s\"\n", c->name, c->expect);
    else if (c->expect && !strstr(res.reason, c->expect))
        printf("FAIL %s: rejected for \"%s\", expected \"%s\"\n", c->name, res.reason, c->expect);
    else
        failed = 0;
    gver_result_free(&res);
    free(pol);
    free(insns);
    return failed;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int vt_case_files(const char *dir, char **files, int max)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return -1;
    }
    int nf = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nf < max) {
        size_t l = strlen(de->d_name);
        if (l > 4 && !strcmp(de->d_name + l - 4, ".txt")) {
            char *p = malloc(strlen(dir) + l + 2);
            if (!p)
                break;
            sprintf(p, "%s/%s", dir, de->d_name);
            files[nf++] = p;
        }
    }
    closedir(d);
    qsort(files, (size_t)nf, sizeof(char *), cmp_path);
    return nf;
}

/* ---- the JIT with the verifier's facts against the interpreter ---- */

/* ktime_get_ns, the one helper the fuzzer calls whose result changes from
 * run to run: a constant, so that both engines see the same. */
static uint64_t fixed_time(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    return 123456789;
}

/* What one run leaves: r0 and an FNV-1a digest of every array element and
 * of hash keys 0..7. */
struct run_out {
    int rc;
    uint64_t r0, digest;
};

static uint64_t digest_maps(void)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < g.n_maps; i++) {
        const struct gmap_def *d = gmap_get_def(g.maps[i]);
        uint32_t keys = d->type == GMAP_ARRAY ? d->max_entries
                        : d->type == GMAP_HASH || d->type == GMAP_LRU_HASH ? 8 : 0;
        for (uint32_t key = 0; key < keys && d->key_size <= 64; key++) {
            uint8_t k[64] = { 0 };
            memcpy(k, &key, d->key_size < 4 ? d->key_size : 4);
            const uint8_t *v = gmap_lookup(g.maps[i], k);
            h = (h ^ (v != NULL)) * 0x100000001b3ull;
            for (uint32_t x = 0; v && x < d->value_size; x++)
                h = (h ^ v[x]) * 0x100000001b3ull;
        }
    }
    return h;
}

static int run_one_engine(const struct bpf_insn *insns, uint32_t n, const struct gmap_def *maps,
                          uint32_t n_maps, uint32_t ctx_size, int r, uint64_t seed,
                          const struct gver_result *facts, struct run_out *out, char *msg,
                          size_t msglen)
{
    struct graft_err err = { 0 };
    int ret = -1;
    g.n_maps = 0;
    if (create_maps(maps, n_maps, msg, msglen))
        goto out;
    struct gvm_env env = { .helpers = g.table, .resolve_ld_imm64 = resolve };
    struct gvm_prog_opts o = { .sz = sizeof(o), .env = &env,
                               .engine = facts ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP,
                               .facts = facts ? facts->facts : NULL,
                               .n_facts = facts ? facts->n_facts : 0 };
    struct gvm_prog *prog = NULL;
    if (gvm_prog_create(insns, n, &o, &prog, &err)) {
        snprintf(msg, msglen, "gvm_prog_create: %s", err.msg);
        goto out;
    }
    fill_maps(r, &seed);
    uint8_t ctx[4096 + 8];
    fill_ctx(ctx, ctx_size, &seed);
    out->rc = gvm_prog_run(prog, ctx_size ? ctx : NULL, ctx_size, &out->r0, &err);
    out->digest = digest_maps();
    gvm_prog_free(prog);
    ret = 0;
out:
    for (uint32_t i = 0; i < g.n_maps; i++)
        gmap_close(g.maps[i]);
    g.n_maps = 0;
    return ret;
}

int vt_run_diff_facts(const struct bpf_insn *insns, uint32_t n, const struct gmap_def *maps,
                      uint32_t n_maps, uint32_t ctx_size, int runs, uint64_t seed,
                      const struct gver_result *facts, char *msg, size_t msglen)
{
    if (n_maps > VT_MAX_MAPS || !facts->facts) {
        snprintf(msg, msglen, "no facts, or more than %d maps", VT_MAX_MAPS);
        return -1;
    }
    memset(&g, 0, sizeof(g));
    memcpy(g.table, ghelper_table(), sizeof(g.table));
    g.table[5] = fixed_time;
    for (int r = 0; r < runs; r++, seed = seed * 6364136223846793005ull + 1442695040888963407ull) {
        struct run_out o[2];
        for (int e = 0; e < 2; e++)
            if (run_one_engine(insns, n, maps, n_maps, ctx_size, r, seed, e ? facts : NULL, &o[e],
                               msg, msglen))
                return -1;
        if (o[0].rc || o[1].rc || o[0].r0 != o[1].r0 || o[0].digest != o[1].digest) {
            snprintf(msg, msglen, "run %d: interpreter r0=0x%llx%s maps %016llx, JIT with facts r0=0x%llx%s maps %016llx",
                     r, (unsigned long long)o[0].r0, o[0].rc ? " (error)" : "",
                     (unsigned long long)o[0].digest, (unsigned long long)o[1].r0,
                     o[1].rc ? " (error)" : "", (unsigned long long)o[1].digest);
            return 1;
        }
    }
    return 0;
}
