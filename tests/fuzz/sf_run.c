/*
 * sf_run.c - checked execution of accepted programs (see sf_run.h).
 *
 * The checked interpreter allows ctx and the live stack itself; everything
 * else must be admitted by mem_allowed(), which knows the regions the
 * program legitimately holds a pointer to: values returned by map lookups
 * (sized by the map the lookup really went to, so an inner map of the
 * wrong shape shows up), and the key and value a for_each_map_elem
 * callback is given, for the duration of the callback.
 *
 * The helpers the programs call are wrapped so that the memory they are
 * handed is checked too: from each helper's prototype (pointer and size
 * arguments, map keys and values) the wrapper declares the accesses to the
 * checked interpreter (gvm_checked_helper_access) before the helper runs.
 */
#define _GNU_SOURCE   /* MAP_32BIT */
#include "sf_run.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/helpers.h"
#include "maps/maps.h"
#include "sf_gen.h"
#include "sf_pkt.h"
#include "vm/vm.h"

#include <sys/mman.h>

#define MAX_REGIONS 256

struct region {
    uint64_t addr, size;
    int writable;
};

enum { INNER_OK, INNER_BAD, N_INNER };

struct sf_env {
    struct gmap *maps[SF_N_MAPS];
    struct gmap *inner[N_INNER];       /* ids: index + 1 */
    gvm_helper_fn table[BPF_MAX_HELPER_ID];
    struct gvm_env venv;
    struct gvm_prog *running;          /* the tail-call target */
    uint64_t bad_inner_accepted;
    uint8_t *pkt_buf;                  /* packet runs: below 2 GiB, so xdp_md's u32 fields hold it */
    const struct gvm_insn_fact *spec_facts;   /* sf_env_speculate */
};

#define PKT_BUF_SIZE 4096

/* The helpers and the resolver get no argument: one environment at a time. */
static struct sf_env *g_env;
static struct region g_reg[MAX_REGIONS];
static uint32_t g_nreg;
static gvm_helper_fn g_lookup;

static void add_region(uint64_t a, uint64_t s, int w)
{
    for (uint32_t i = 0; i < g_nreg; i++)
        if (g_reg[i].addr == a && g_reg[i].size == s && g_reg[i].writable == w)
            return;            /* lookups in loops and tail calls repeat */
    if (g_nreg < MAX_REGIONS)
        g_reg[g_nreg++] = (struct region){ a, s, w };
}

static void drop_region(uint64_t a)
{
    for (uint32_t i = g_nreg; i-- > 0;)
        if (g_reg[i].addr == a) {
            g_reg[i] = g_reg[--g_nreg];
            return;
        }
}

static int mem_allowed(void *arg, uint64_t addr, uint64_t size, int write)
{
    (void)arg;
    for (uint32_t i = 0; i < g_nreg; i++) {
        const struct region *r = &g_reg[i];
        if (addr >= r->addr && size <= r->size && addr - r->addr <= r->size - size)
            return !write || r->writable;
    }
    return 0;
}

/* A helper argument that is not what the helper's prototype promises (a
 * map argument that is no map): the helper is not called and the run is
 * reported as a violation when it ends. */
static char g_arg_fault[256];

static bool is_map(uint64_t v)
{
    for (int i = 0; g_env && i < SF_N_MAPS; i++)
        if (v == (uint64_t)(uintptr_t)g_env->maps[i])
            return true;
    for (int i = 0; g_env && i < N_INNER; i++)
        if (v == (uint64_t)(uintptr_t)g_env->inner[i])
            return true;
    return false;
}

static bool map_arg_ok(uint32_t helper, uint64_t v)
{
    if (is_map(v))
        return true;
    if (!g_arg_fault[0])
        snprintf(g_arg_fault, sizeof(g_arg_fault),
                 "helper %u was given %#llx as its map argument, which is no map", helper,
                 (unsigned long long)v);
    return false;
}

static struct gmap *inner_by_id(uint32_t id)
{
    return g_env && id >= 1 && id <= N_INNER ? g_env->inner[id - 1] : NULL;
}

static int is_map_of_maps(const struct gmap_def *d)
{
    return d->type == GMAP_ARRAY_OF_MAPS || d->type == GMAP_HASH_OF_MAPS;
}

/* map_lookup_elem: the value is memory the program may use, of the size of
 * the map it came from (an outer map's "value" is an inner map: no memory). */
static uint64_t w_lookup(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    if (!map_arg_ok(1, r1))
        return 0;
    uint64_t p = g_lookup(r1, r2, r3, r4, r5);
    const struct gmap_def *d = gmap_get_def((struct gmap *)(uintptr_t)r1);
    if (p && !is_map_of_maps(d))
        add_region(p, d->value_size, 1);
    return p;
}

/* for_each_map_elem, with the key and value admitted while the callback runs. */
static uint64_t w_for_each(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    if (!map_arg_ok(164, r1))
        return (uint64_t)-EINVAL;
    struct gmap *m = (struct gmap *)(uintptr_t)r1;
    const struct gmap_def *d = gmap_get_def(m);
    uint8_t keys[2][64];
    void *prev = NULL;
    int cur = 0;
    uint64_t visited = 0;
    (void)r5;
    if (r4 != 0)
        return (uint64_t)-EINVAL;
    if (d->key_size > sizeof(keys[0]))
        return (uint64_t)-E2BIG;
    while (gmap_get_next_key(m, prev, keys[cur]) == 0) {
        void *value = gmap_lookup(m, keys[cur]);
        prev = keys[cur];
        cur ^= 1;
        if (!value)
            continue;
        visited++;
        add_region((uint64_t)(uintptr_t)prev, d->key_size, 0);
        add_region((uint64_t)(uintptr_t)value, d->value_size, 1);
        uint64_t rc = gvm_invoke_callback(r2, r1, (uint64_t)(uintptr_t)prev,
                                          (uint64_t)(uintptr_t)value, r3, 0);
        drop_region((uint64_t)(uintptr_t)prev);
        if (rc)
            break;
    }
    return visited;
}

/* ---- prototype-driven checking of helper memory arguments ---- */

static gvm_helper_fn g_orig[BPF_MAX_HELPER_ID];

static uint32_t map_size_of(uint64_t map, enum garg_kind k)
{
    const struct gmap_def *d = gmap_get_def((struct gmap *)(uintptr_t)map);
    return k == GARG_PTR_TO_MAP_KEY ? d->key_size : d->value_size;
}

/* Declare every memory access helper id will make with these arguments;
 * nonzero when one is not allowed (the run then fails at the call). */
static int declare_accesses(uint32_t id, const uint64_t a[5])
{
    const struct ghelper_proto *p = ghelper_proto(id);
    uint64_t map = 0;
    for (int i = 0; p && i < 5; i++) {
        enum garg_kind k = p->args[i];
        int rc = 0;
        switch (k) {
        case GARG_CONST_MAP_PTR:
            if (!map_arg_ok(id, a[i]))
                return -EINVAL;
            map = a[i];
            break;
        case GARG_PTR_TO_MAP_KEY:
        case GARG_PTR_TO_MAP_VALUE:
        case GARG_PTR_TO_UNINIT_MAP_VALUE:
            if (map)
                rc = gvm_checked_helper_access(a[i], map_size_of(map, k),
                                               k == GARG_PTR_TO_UNINIT_MAP_VALUE);
            break;
        case GARG_PTR_TO_MEM:
        case GARG_PTR_TO_MEM_OR_NULL:
        case GARG_PTR_TO_UNINIT_MEM:
            if (i < 4 && !(k == GARG_PTR_TO_MEM_OR_NULL && a[i] == 0))
                rc = gvm_checked_helper_access(a[i], (uint32_t)a[i + 1], k == GARG_PTR_TO_UNINIT_MEM);
            break;
        case GARG_PTR_TO_LONG:
            rc = gvm_checked_helper_access(a[i], 8, 1);
            break;
        default:
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

#define CHECKED_HELPER(id)                                                                \
    static uint64_t checked_##id(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,      \
                                 uint64_t r5)                                             \
    {                                                                                     \
        const uint64_t a[5] = { r1, r2, r3, r4, r5 };                                     \
        if (declare_accesses(id, a))                                                      \
            return (uint64_t)-EFAULT;                                                     \
        return g_orig[id](r1, r2, r3, r4, r5);                                            \
    }
/* the helpers with memory arguments the generator uses (lookup and
 * for_each_map_elem are wrapped above, and declare through these) */
CHECKED_HELPER(1)
CHECKED_HELPER(2)
CHECKED_HELPER(3)
CHECKED_HELPER(4)
CHECKED_HELPER(112)
CHECKED_HELPER(113)

static const struct { uint32_t id; gvm_helper_fn fn; } g_checked[] = {
    { 1, checked_1 }, { 2, checked_2 }, { 3, checked_3 }, { 4, checked_4 },
    { 112, checked_112 }, { 113, checked_113 },
};

static int resolve(void *arg, uint8_t src, int32_t imm, int32_t next_imm, uint64_t *value,
                   struct graft_err *err)
{
    struct sf_env *e = arg;
    (void)next_imm;
    if (imm < 0 || imm >= SF_N_MAPS)
        return graft_errf(err, -EINVAL, "no map %d", imm);
    if (src != BPF_PSEUDO_MAP_IDX && src != BPF_PSEUDO_MAP_FD)
        return graft_errf(err, -EINVAL, "unsupported LD_IMM64 source %d", src);
    *value = (uint64_t)(uintptr_t)e->maps[imm];
    return 0;
}

static const struct gvm_prog *tail_target(void *arg, uint64_t map, uint64_t index)
{
    struct sf_env *e = arg;
    if (map != (uint64_t)(uintptr_t)e->maps[SF_MAP_PROGS] || index != 0)
        return NULL;
    return e->running;
}

int sf_env_new(struct sf_env **out, char *err, size_t errlen)
{
    struct sf_env *e = calloc(1, sizeof(*e));
    struct graft_err ge = { 0 };
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const struct gmap_def *defs = sf_map_defs();
    for (int i = 0; i < SF_N_MAPS; i++) {
        if (gmap_create(&defs[i], -1, &e->maps[i], &ge))
            goto fail;
        gmap_unlink(gmap_shm_name(e->maps[i]));
    }
    const struct gmap_def *o = &defs[SF_MAP_OUTER];
    struct gmap_def inner[N_INNER] = {
        [INNER_OK] = { .type = o->inner_map_type, .key_size = o->inner_key_size,
                       .value_size = o->inner_value_size, .max_entries = o->inner_max_entries,
                       .name = "inner" },
        [INNER_BAD] = { .type = o->inner_map_type, .key_size = o->inner_key_size,
                        .value_size = o->inner_value_size / 2, .max_entries = o->inner_max_entries,
                        .name = "inner_small" },
    };
    for (int i = 0; i < N_INNER; i++) {
        if (gmap_create(&inner[i], -1, &e->inner[i], &ge))
            goto fail;
        gmap_unlink(gmap_shm_name(e->inner[i]));
    }
    /* the kernel's xdp_md gives the packet as 32-bit fields: keep it where they reach */
    e->pkt_buf = mmap(NULL, PKT_BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (e->pkt_buf == MAP_FAILED) {
        e->pkt_buf = NULL;
        snprintf(ge.msg, sizeof(ge.msg), "mmap of the packet buffer below 2 GiB failed");
        goto fail;
    }
    g_env = e;
    gmap_set_resolver(inner_by_id);
    ghelper_set_callback_invoker(gvm_invoke_callback);
    memcpy(e->table, ghelper_table(), sizeof(e->table));
    memcpy(g_orig, e->table, sizeof(g_orig));
    for (size_t i = 0; i < sizeof(g_checked) / sizeof(g_checked[0]); i++)
        e->table[g_checked[i].id] = g_checked[i].fn;
    g_lookup = e->table[1];
    e->table[1] = w_lookup;
    e->table[164] = w_for_each;
    e->venv = (struct gvm_env){ .helpers = e->table, .resolve_ld_imm64 = resolve,
                                .tail_call_target = tail_target, .mem_allowed = mem_allowed,
                                .arg = e };
    *out = e;
    return 0;
fail:
    snprintf(err, errlen, "%s", ge.msg);
    sf_env_free(e);
    return -1;
}

void sf_env_free(struct sf_env *e)
{
    if (!e)
        return;
    if (g_env == e) {
        gmap_set_resolver(NULL);
        g_env = NULL;
    }
    for (int i = 0; i < SF_N_MAPS; i++)
        if (e->maps[i])
            gmap_close(e->maps[i]);
    for (int i = 0; i < N_INNER; i++)
        if (e->inner[i])
            gmap_close(e->inner[i]);
    if (e->pkt_buf)
        munmap(e->pkt_buf, PKT_BUF_SIZE);
    free(e);
}

void sf_env_speculate(struct sf_env *e, const struct gvm_insn_fact *facts)
{
    e->spec_facts = facts;
}

uint64_t sf_env_bad_inner_accepted(const struct sf_env *e)
{
    return e->bad_inner_accepted;
}

static struct gvm_prog *make_prog(struct sf_env *e, const struct bpf_insn *insns, uint32_t n,
                                  char *msg, size_t msglen)
{
    struct graft_err err = { 0 };
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP, .flags = GVM_F_CHECKED,
                               .step_limit = 1000000, .env = &e->venv };
    if (e->spec_facts) {
        o.flags |= GVM_F_SPECULATIVE;
        o.facts = e->spec_facts;
        o.n_facts = n;
    }
    struct gvm_prog *p = NULL;
    if (gvm_prog_create(insns, n, &o, &p, &err)) {
        snprintf(msg, msglen, "gvm_prog_create: %s", err.msg);
        return NULL;
    }
    return p;
}

/* Bytes that are small numbers now and then, so that bounds checks on them
 * go both ways. */
static uint8_t rand_byte(uint64_t *rs)
{
    uint64_t x = sf_rand(rs);
    return (uint8_t)((x >> 8) % 4 == 0 ? x % 8 : x);
}

static void fill_value(uint8_t *v, uint32_t size, uint64_t *rs)
{
    for (uint32_t i = 0; i < size; i++)
        v[i] = rand_byte(rs);
    if (size >= 8 && sf_rand(rs) % 2) {    /* an in-bounds offset in the first word */
        uint64_t w = 8 * (sf_rand(rs) % 8);
        memcpy(v, &w, 8);
    }
}

static void fill_maps(struct sf_env *e, uint64_t *rs)
{
    uint8_t v[64];
    const struct gmap_def *defs = sf_map_defs();
    for (uint32_t k = 0; k < defs[SF_MAP_ARRAY].max_entries; k++) {
        fill_value(v, defs[SF_MAP_ARRAY].value_size, rs);
        gmap_update(e->maps[SF_MAP_ARRAY], &k, v, GMAP_ANY);
    }
    for (uint32_t k = 0; k < defs[SF_MAP_HASH].max_entries; k++) {
        if (sf_rand(rs) % 3 == 0) {
            gmap_delete(e->maps[SF_MAP_HASH], &k);
            continue;
        }
        fill_value(v, defs[SF_MAP_HASH].value_size, rs);
        gmap_update(e->maps[SF_MAP_HASH], &k, v, GMAP_ANY);
    }
    for (int i = 0; i < N_INNER; i++)
        for (uint32_t k = 0; k < 2; k++) {
            fill_value(v, gmap_get_def(e->inner[i])->value_size, rs);
            gmap_update(e->inner[i], &k, v, GMAP_ANY);
        }
    /* offer the map layer both inner maps; it must take only the template's shape */
    for (uint32_t k = 0; k < defs[SF_MAP_OUTER].max_entries; k++) {
        uint32_t id = 1 + (uint32_t)(sf_rand(rs) % N_INNER);
        int rc = gmap_update(e->maps[SF_MAP_OUTER], &k, &id, GMAP_ANY);
        if (rc == 0 && id - 1 == INNER_BAD)
            e->bad_inner_accepted++;
        if (rc) {
            id = 1 + INNER_OK;
            gmap_update(e->maps[SF_MAP_OUTER], &k, &id, GMAP_ANY);
        }
    }
}

static void fill_ctx(uint8_t *ctx, int r, uint64_t *rs)
{
    for (uint32_t i = 0; i < SF_CTX_SIZE; i++)
        ctx[i] = rand_byte(rs);
    if (r == 0)                /* one run where every context word is an in-bounds offset */
        for (uint32_t i = 0; i < SF_CTX_SIZE; i += 8) {
            uint64_t w = 8 * (sf_rand(rs) % 8);
            memcpy(ctx + i, &w, 8);
        }
}

int sf_run(struct sf_env *e, const struct bpf_insn *insns, uint32_t n, int runs,
           uint64_t seed, char *msg, size_t msglen)
{
    struct gvm_prog *prog = make_prog(e, insns, n, msg, msglen);
    if (!prog)
        return -1;
    e->running = prog;
    uint64_t rs = sf_mix(seed);
    uint8_t ctx[SF_CTX_SIZE];
    int ret = 0;
    for (int r = 0; r < runs && !ret; r++) {
        fill_maps(e, &rs);
        g_nreg = 0;
        fill_ctx(ctx, r, &rs);
        struct graft_err err = { 0 };
        uint64_t rv;
        g_arg_fault[0] = 0;
        if (gvm_prog_run(prog, ctx, sizeof(ctx), &rv, &err)) {
            snprintf(msg, msglen, "run %d: %s", r, err.msg);
            ret = 1;
        } else if (g_arg_fault[0]) {
            snprintf(msg, msglen, "run %d: %s", r, g_arg_fault);
            ret = 1;
        }
    }
    e->running = NULL;
    gvm_prog_free(prog);
    return ret;
}

/* Packet lengths near the bounds the generator checks (0..40), sometimes
 * up to the largest packet. */
static uint32_t pkt_len(uint64_t *rs)
{
    uint64_t x = sf_rand(rs);
    return (uint32_t)(x % 4 == 0 ? (x >> 8) % (SF_PKT_MAX_LEN + 1) : (x >> 8) % 44);
}

int sf_run_pkt(struct sf_env *e, const struct bpf_insn *insns, uint32_t n, int runs,
               uint64_t seed, char *msg, size_t msglen)
{
    struct gvm_prog *prog = make_prog(e, insns, n, msg, msglen);
    if (!prog)
        return -1;
    uint64_t rs = sf_mix(seed);
    int ret = 0;
    for (int r = 0; r < runs && !ret; r++) {
        uint32_t len = pkt_len(&rs), meta = (uint32_t)(sf_rand(&rs) % (SF_PKT_MAX_META + 1));
        uint8_t *data = e->pkt_buf + 64;
        for (uint32_t i = 0; i < meta + len; i++)
            data[(int64_t)i - meta] = rand_byte(&rs);
        /* struct xdp_md: data, data_end, data_meta, then three u32 the
         * programs use as offsets */
        uint32_t ctx[SF_PKT_CTX_SIZE / 4] = {
            (uint32_t)(uintptr_t)data, (uint32_t)(uintptr_t)(data + len), (uint32_t)(uintptr_t)(data - meta),
        };
        for (int i = 3; i < SF_PKT_CTX_SIZE / 4; i++)
            ctx[i] = (uint32_t)(sf_rand(&rs) % 4 == 0 ? sf_rand(&rs) : sf_rand(&rs) % 64);
        /* exactly the metadata and the packet are the program's */
        g_nreg = 0;
        add_region((uint64_t)(uintptr_t)(data - meta), meta + len, 1);
        struct graft_err err = { 0 };
        uint64_t rv;
        if (gvm_prog_run(prog, ctx, sizeof(ctx), &rv, &err)) {
            snprintf(msg, msglen, "run %d (packet %u bytes, meta %u): %s", r, len, meta, err.msg);
            ret = 1;
        }
    }
    gvm_prog_free(prog);
    return ret;
}

/* ---- the JIT with the verifier's facts against the interpreter ---- */

/* FNV-1a over the values of the array, hash and inner maps (absent keys
 * too), after a run. */
static uint64_t digest_maps(struct sf_env *e)
{
    uint64_t h = 0xcbf29ce484222325ull;
    struct gmap *ms[] = { e->maps[SF_MAP_ARRAY], e->maps[SF_MAP_HASH], e->inner[INNER_OK],
                          e->inner[INNER_BAD] };
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        const struct gmap_def *d = gmap_get_def(ms[i]);
        for (uint32_t k = 0; k < d->max_entries; k++) {
            const uint8_t *v = gmap_lookup(ms[i], &k);
            h = (h ^ (v != NULL)) * 0x100000001b3ull;
            for (uint32_t x = 0; v && x < d->value_size; x++)
                h = (h ^ v[x]) * 0x100000001b3ull;
        }
    }
    return h;
}

int sf_run_diff_facts(struct sf_env *e, const struct bpf_insn *insns, uint32_t n,
                      const struct gvm_insn_fact *facts, int runs, uint64_t seed, char *msg,
                      size_t msglen)
{
    struct gvm_prog *p[2] = { NULL, NULL };
    struct graft_err err = { 0 };
    for (int k = 0; k < 2; k++) {
        struct gvm_prog_opts o = { .sz = sizeof(o), .env = &e->venv,
                                   .engine = k ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP,
                                   .facts = k ? facts : NULL, .n_facts = k ? n : 0 };
        if (gvm_prog_create(insns, n, &o, &p[k], &err)) {
            snprintf(msg, msglen, "gvm_prog_create: %s", err.msg);
            gvm_prog_free(p[0]);
            return -1;
        }
    }
    uint64_t rs = sf_mix(seed);
    int ret = 0;
    for (int r = 0; r < runs && !ret; r++) {
        uint64_t r0[2] = { 0, 0 }, dig[2] = { 0, 0 }, start = rs;
        int rc[2];
        for (int k = 0; k < 2; k++) {
            uint8_t ctx[SF_CTX_SIZE];
            rs = start;
            fill_maps(e, &rs);
            g_nreg = 0;
            fill_ctx(ctx, r, &rs);
            e->running = p[k];
            rc[k] = gvm_prog_run(p[k], ctx, sizeof(ctx), &r0[k], &err);
            dig[k] = digest_maps(e);
        }
        if (rc[0] || rc[1] || r0[0] != r0[1] || dig[0] != dig[1]) {
            snprintf(msg, msglen, "run %d: interpreter r0=%#llx%s maps %016llx, JIT with facts r0=%#llx%s maps %016llx",
                     r, (unsigned long long)r0[0], rc[0] ? " (error)" : "", (unsigned long long)dig[0],
                     (unsigned long long)r0[1], rc[1] ? " (error)" : "", (unsigned long long)dig[1]);
            ret = 1;
        }
    }
    e->running = NULL;
    gvm_prog_free(p[0]);
    gvm_prog_free(p[1]);
    return ret;
}
