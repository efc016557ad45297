/*
 * verifier.c - the static verifier's core: symbolic execution of every path
 * through the program over abstract states (vpriv.h), with state pruning.
 *
 * How it works: after cfg.c has checked the control-flow graph, paths are
 * explored depth first from insn 0. Each instruction is checked against the
 * current state and transforms it; a conditional jump whose outcome is not
 * known forks the state (both sides refined by the condition). At prune
 * points the current state is compared with states already verified there:
 * if an old, completely explored state covers it, the path stops. A state
 * still being explored (a loop) is never used for pruning, except at the
 * entry of a helper-driven callback (bpf_loop), whose iteration count the
 * helper bounds. Every instruction processed counts against the policy's
 * budget, which is what rejects loops the verifier cannot bound.
 *
 * Invariant: a path is dropped only when it ended in a checked exit, or when
 * a fully verified state covers it, or when the condition leading to it is
 * impossible. So an accepted program has no reachable unsafe instruction.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verifier/vpriv.h"

#define REJECT (-100000)            /* internal: the program was rejected */
#define MAX_STATES_PER_INSN 64
#define OFF_LIMIT (1 << 29)         /* bound on pointer offsets, as the kernel's */
#define TRACE_MAX (1u << 20)

#define HELPER_SPIN_LOCK 93
#define HELPER_SPIN_UNLOCK 94
#define HELPER_TAIL_CALL 12
#define HELPER_FOR_EACH 164
#define HELPER_LOOP 181
#define HELPER_OVERRIDE_RETURN 58
#define LOOP_MAX_ITER (1u << 23)

struct env {
    const struct gver_input *in;
    const struct bpf_insn *insns;
    uint32_t n;
    const struct gver_policy *pol;
    const struct ghelper_proto *(*proto)(uint32_t id);
    struct cfg cfg;

    struct vstate *cur;
    struct vstate **pending;
    uint32_t npending, cappending;
    struct sstate **explored;       /* per insn list */
    uint16_t *nexplored;

    uint64_t steps, max_steps, stored;
    uint32_t next_id;
    uint64_t max_path;
    uint32_t max_stack;

    int log_level;
    char *log;
    size_t loglen, logcap;
    uint32_t *trace;

    char reason[256];
    int64_t fail_insn;

    /* A map-in-map's inner map, as its outer map's inner_* fields define
     * it: map_idx n_maps + i stands for "some inner map of map i". */
    struct gmap_def *inner;
};

/* ---- log ---- */

static void logf_(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct env *e, const char *fmt, ...)
{
    va_list ap;
    char tmp[1024];
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= sizeof(tmp))
        k = sizeof(tmp) - 1;
    if (e->loglen + k + 1 > e->logcap) {
        size_t cap = e->logcap ? e->logcap * 2 : 4096;
        while (cap < e->loglen + k + 1)
            cap *= 2;
        if (cap > (64u << 20))
            return;                 /* logs are bounded; drop the rest */
        char *n = realloc(e->log, cap);
        if (!n)
            return;
        e->log = n;
        e->logcap = cap;
    }
    memcpy(e->log + e->loglen, tmp, k + 1);
    e->loglen += k;
}

static void log_insn(struct env *e, uint32_t idx)
{
    char buf[128];
    gvm_insn_str(e->insns, e->n, idx, buf, sizeof(buf));
    logf_(e, "%u: %s\n", idx, buf);
}

static void log_state(struct env *e, const char *prefix)
{
    char *s = state_str(e->cur);
    if (s) {
        logf_(e, "%s%s\n", prefix, s);
        free(s);
    }
}

static int reject(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reject(struct env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
    va_end(ap);
    e->fail_insn = e->cur ? (int64_t)e->cur->insn : -1;
    return REJECT;
}

/* ---- small utilities ---- */

static bool is_ptr(const struct reg *r)
{
    return r->type >= T_CTX;
}

static bool is_or_null(const struct reg *r)
{
    return r->type == T_MAP_VALUE_OR_NULL || r->type == T_MEM_OR_NULL ||
           r->type == T_CONST_MAP_OR_NULL;
}

static void mark_unknown(struct reg *r)
{
    memset(r, 0, sizeof(*r));
    r->type = T_SCALAR;
    scalar_unknown(&r->v);
}

static void mark_const(struct reg *r, uint64_t v)
{
    memset(r, 0, sizeof(*r));
    r->type = T_SCALAR;
    scalar_const(&r->v, v);
}

static void mark_not_init(struct reg *r)
{
    memset(r, 0, sizeof(*r));
}

static struct frame *top(struct env *e)
{
    return e->cur->fr[e->cur->nfr - 1];
}

static struct reg *regs(struct env *e)
{
    return top(e)->regs;
}

static unsigned size_bytes(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default: return 8;
    }
}

static const struct gmap_def *map_of(struct env *e, uint32_t idx)
{
    return idx < e->in->n_maps ? &e->in->maps[idx] : &e->inner[idx - e->in->n_maps];
}

static bool is_map_of_maps(uint32_t type)
{
    return type == GMAP_ARRAY_OF_MAPS || type == GMAP_HASH_OF_MAPS;
}

/* The inner-map templates (map_of), made once per verification. */
static int make_inner_defs(struct env *e)
{
    uint32_t n = e->in->n_maps;
    if (!(e->inner = calloc(n ? n : 1, sizeof(*e->inner))))
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const struct gmap_def *o = &e->in->maps[i];
        struct gmap_def *d = &e->inner[i];
        d->type = o->inner_map_type;
        d->key_size = o->inner_key_size;
        d->value_size = o->inner_value_size;
        d->max_entries = o->inner_max_entries;
        snprintf(d->name, sizeof(d->name), "%.50s.inner", o->name);
    }
    return 0;
}

static int check_read(struct env *e, int regno)
{
    if (regs(e)[regno].type == T_NOT_INIT)
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    return 0;
}

static void update_stack_depth(struct env *e, struct frame *f, int64_t lowest)
{
    uint32_t d = (uint32_t)((-lowest + 7) & ~7);
    if (d > f->depth)
        f->depth = d;
    uint32_t total = 0;
    for (uint32_t i = 0; i < e->cur->nfr; i++)
        total += e->cur->fr[i]->depth;
    if (total > e->max_stack)
        e->max_stack = total;
}

/* ---- the stack ---- */

static uint8_t *byte_kind(struct frame *f, int64_t off, bool grow, struct slot **sl)
{
    uint32_t s = (uint32_t)((-off - 1) / 8);
    struct slot *p = frame_slot(f, s, grow);
    if (sl)
        *sl = p;
    if (!p)
        return NULL;
    return &p->kind[off + 8 * (int64_t)(s + 1)];
}

/* What the bytes of a spilled register become when the spill no longer
 * holds as a whole (part of it overwritten, or the resource it points to
 * released). A number's bytes are plain data (S_MISC). A pointer's bytes
 * are part of a host address: read back as a number they would disclose it
 * (the kernel refuses such a partial store from unprivileged programs), so
 * they become uninitialised (S_INVALID): the program may reuse the slot for
 * narrower data and read what it wrote, never the rest. With the policy's
 * leak right (allow_ptr_leaks) they are plain data, as for privileged
 * programs in the kernel. */
static uint8_t spill_remains(const struct env *e, const struct reg *spilled)
{
    return is_ptr(spilled) && !e->pol->allow_ptr_leaks ? S_INVALID : S_MISC;
}

/* A write covers part of a spilled register: the other bytes lose it. */
static void break_spill(const struct env *e, struct slot *sl)
{
    uint8_t rest = spill_remains(e, &sl->spill);
    for (int k = 0; k < 8; k++)
        if (sl->kind[k] == S_SPILL)
            sl->kind[k] = rest;
}

static int stack_write_fixed(struct env *e, struct frame *f, int64_t off, unsigned size,
                             const struct reg *val, int valno)
{
    if (val && is_ptr(val)) {
        if (size != 8 || (off % 8) != 0)
            return reject(e, "R%d invalid spill of a pointer to fp%+" PRId64 " size=%u: pointers spill as 8 aligned bytes",
                          valno, off, size);
        if (val->type == T_STACK && val->frameno > f->frameno)
            return reject(e, "R%d cannot spill a pointer to this frame's stack into the caller's stack", valno);
    }
    if (size == 8 && (off % 8) == 0 && val) {
        struct slot *sl;
        if (!byte_kind(f, off, true, &sl))
            return -ENOMEM;
        memset(sl->kind, S_SPILL, 8);
        sl->spill = *val;
        return 0;
    }
    uint8_t kind = (val && val->type == T_SCALAR && scalar_is_const(&val->v) &&
                    val->v.t.value == 0) ? S_ZERO : S_MISC;
    for (unsigned b = 0; b < size; b++) {
        struct slot *sl;
        uint8_t *k = byte_kind(f, off + b, true, &sl);
        if (!k)
            return -ENOMEM;
        if (*k == S_SPILL)
            break_spill(e, sl);
        *k = kind;
    }
    return 0;
}

static int stack_write_var(struct env *e, struct frame *f, int64_t lo, int64_t hi_end,
                           const struct reg *val, int valno)
{
    if (val && is_ptr(val))
        return reject(e, "R%d variable-offset stack write of a pointer is not allowed", valno);
    for (int64_t o = lo; o < hi_end; o++) {
        struct slot *sl;
        uint8_t *k = byte_kind(f, o, true, &sl);
        if (!k)
            return -ENOMEM;
        if (*k == S_SPILL) {
            if (sl->spill.type != T_SCALAR)
                return reject(e, "variable-offset stack write could overwrite the pointer spilled at fp%+" PRId64,
                              -8 * (int64_t)((-o - 1) / 8 + 1));
            break_spill(e, sl);
        }
        if (*k == S_ZERO)
            *k = S_MISC;
        /* S_INVALID stays: the byte may not have been written */
    }
    return 0;
}

/* Check [off, off+size) of f is readable; fill *dst (may be NULL). */
static int stack_read_fixed(struct env *e, struct frame *f, int64_t off, unsigned size,
                            struct reg *dst, int ptrno, bool sext)
{
    struct slot *sl = NULL;
    uint8_t *k0 = byte_kind(f, off, false, &sl);
    if (dst && size == 8 && (off % 8) == 0 && k0 && memchr(sl->kind, S_SPILL, 8) == sl->kind &&
        sl->kind[1] == S_SPILL && sl->kind[2] == S_SPILL && sl->kind[3] == S_SPILL &&
        sl->kind[4] == S_SPILL && sl->kind[5] == S_SPILL && sl->kind[6] == S_SPILL &&
        sl->kind[7] == S_SPILL) {
        *dst = sl->spill;
        return 0;
    }
    bool all_zero = true, one_spill = true;
    struct slot *first = NULL;
    for (unsigned b = 0; b < size; b++) {
        struct slot *s;
        uint8_t *k = byte_kind(f, off + b, false, &s);
        uint8_t kind = k ? *k : S_INVALID;
        if (kind == S_INVALID)
            return reject(e, "invalid read from stack R%d off=%" PRId64 " size=%u: uninitialised (byte fp%+" PRId64 ")",
                          ptrno, off, size, off + b);
        if (kind == S_SPILL && s->spill.type != T_SCALAR)
            return reject(e, "invalid read from stack R%d off=%" PRId64 " size=%u: reads part of a spilled pointer",
                          ptrno, off, size);
        if (kind != S_ZERO)
            all_zero = false;
        if (kind != S_SPILL || (first && first != s))
            one_spill = false;
        first = s;
    }
    if (!dst)
        return 0;
    if (all_zero) {
        mark_const(dst, 0);
        return 0;
    }
    mark_unknown(dst);
    if (one_spill && scalar_is_const(&first->spill.v) && (off % 8) + size <= 8) {
        int64_t base = off - (((off % 8) + 8) % 8);
        unsigned shift = (unsigned)(off - base) * 8;
        uint64_t v = first->spill.v.t.value >> shift;
        if (size < 8)
            v &= (1ull << (size * 8)) - 1;
        scalar_const(&dst->v, v);
    } else {
        scalar_unknown_size(&dst->v, size);
    }
    if (sext)
        scalar_sext_size(&dst->v, size);
    return 0;
}

static int stack_read_var(struct env *e, struct frame *f, int64_t lo, int64_t hi_end,
                          struct reg *dst, int ptrno, unsigned size, bool sext)
{
    for (int64_t o = lo; o < hi_end; o++) {
        struct slot *s;
        uint8_t *k = byte_kind(f, o, false, &s);
        uint8_t kind = k ? *k : S_INVALID;
        if (kind == S_INVALID)
            return reject(e, "invalid variable-offset read from stack R%d range fp%+" PRId64 "..fp%+" PRId64 " size=%u: byte fp%+" PRId64 " uninitialised",
                          ptrno, lo, hi_end, size, o);
        if (kind == S_SPILL && s->spill.type != T_SCALAR)
            return reject(e, "invalid variable-offset read from stack R%d: may read a spilled pointer", ptrno);
    }
    if (dst) {
        mark_unknown(dst);
        scalar_unknown_size(&dst->v, size);
        if (sext)
            scalar_sext_size(&dst->v, size);
    }
    return 0;
}

/* The byte range [*lo, *hi_end) a pointer access may touch, from the
 * pointer's fixed and variable offsets. */
static int access_range(struct env *e, int regno, const struct reg *p, int64_t insn_off,
                        unsigned size, int64_t *lo, int64_t *hi_end)
{
    const struct scalar *v = &p->v;
    if (v->smin < -OFF_LIMIT || v->smax > OFF_LIMIT) {
        char b[200];
        scalar_str(b, sizeof(b), v);
        return reject(e, "R%d unbounded memory access: variable offset %s; bound it with a check first",
                      regno, b);
    }
    *lo = p->off + insn_off + v->smin;
    *hi_end = p->off + insn_off + v->smax + size;
    return 0;
}

/* ---- memory access ---- */

enum acc { ACC_READ, ACC_WRITE, ACC_RMW };

static int check_region(struct env *e, int regno, const struct reg *p, int64_t insn_off,
                        unsigned size, uint64_t limit, const char *what,
                        int64_t *plo, int64_t *phi)
{
    int64_t lo = 0, hi = 0;
    int r = access_range(e, regno, p, insn_off, size, &lo, &hi);
    if (r)
        return r;
    if (lo < 0)
        return reject(e, "R%d invalid access to %s: off=%" PRId64 " size=%u: min offset is negative",
                      regno, what, lo, size);
    if ((uint64_t)hi > limit)
        return reject(e, "R%d invalid access to %s: off=%" PRId64 "..%" PRId64 " size=%u exceeds its %" PRIu64 " bytes",
                      regno, what, lo, hi - size, size, limit);
    if (plo)
        *plo = lo;
    if (phi)
        *phi = hi;
    return 0;
}

static int check_ctx_access(struct env *e, int regno, const struct reg *p, int64_t insn_off,
                            unsigned size, enum acc acc)
{
    const struct gver_ctx_layout *ctx = e->pol->ctx;
    if (!ctx)
        return reject(e, "R%d invalid mem access 'ctx': the policy gives this program no context", regno);
    if (!scalar_is_const(&p->v)) {
        char b[200];
        scalar_str(b, sizeof(b), &p->v);
        return reject(e, "R%d variable ctx access var_off=%s disallowed", regno, b);
    }
    if (acc == ACC_RMW)
        return reject(e, "R%d atomic operation on ctx is not allowed", regno);
    int64_t off = p->off + insn_off + (int64_t)p->v.t.value;
    for (uint32_t i = 0; i < ctx->n_fields; i++) {
        const struct gver_ctx_field *f = &ctx->fields[i];
        if (off >= f->off && off + size <= (int64_t)f->off + f->size) {
            uint32_t need = acc == ACC_WRITE ? GVER_W : GVER_R;
            if (!(f->access & need))
                return reject(e, "R%d invalid %s of ctx '%s' off=%" PRId64 " size=%u: field is %s",
                              regno, acc == ACC_WRITE ? "write" : "read", ctx->name, off, size,
                              need == GVER_W ? "read-only" : "write-only");
            /* a rewritten slot would load as a forged host pointer */
            for (uint32_t k = 0; acc == ACC_WRITE && k < e->pol->n_host_ptrs; k++) {
                const struct gver_host_ptr *h = &e->pol->host_ptrs[k];
                if (off < (int64_t)h->ctx_off + 8 && off + size > (int64_t)h->ctx_off)
                    return reject(e, "R%d invalid write of ctx '%s' off=%" PRId64 " size=%u: it holds host pointer %s, whose fields are restricted",
                                  regno, ctx->name, off, size, h->name);
            }
            return 0;
        }
    }
    return reject(e, "R%d invalid %s of ctx '%s' off=%" PRId64 " size=%u: not within one field of the %u-byte context",
                  regno, acc == ACC_WRITE ? "write" : "read", ctx->name, off, size, ctx->size);
}

static bool map_is_rdonly(const struct gmap_def *d)
{
    return (d->map_flags & GMAP_F_RDONLY_PROG) != 0;
}

/* Load through / store to / atomically update memory at p + insn_off.
 * val is the register stored (NULL for loads or stores of unknown data);
 * dst receives a loaded value. */
static int check_mem(struct env *e, int regno, int64_t insn_off, unsigned size, enum acc acc,
                     const struct reg *val, int valno, struct reg *dst, bool sext)
{
    struct reg p = regs(e)[regno];
    int r;
    const char *leak_into = NULL;

    switch (p.type) {
    case T_NOT_INIT:
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    case T_SCALAR:
        return reject(e, "R%d invalid mem access 'scalar': not a pointer", regno);
    case T_MAP_VALUE_OR_NULL:
    case T_MEM_OR_NULL:
        return reject(e, "R%d invalid mem access '%s': null check required before dereference",
                      regno, reg_type_name(p.type));
    case T_CONST_MAP:
    case T_CONST_MAP_OR_NULL:
    case T_FUNC:
        return reject(e, "R%d invalid mem access '%s'", regno, reg_type_name(p.type));
    case T_CTX:
        r = check_ctx_access(e, regno, &p, insn_off, size, acc);
        if (r)
            return r;
        leak_into = "ctx";
        break;
    case T_STACK: {
        struct frame *f = e->cur->fr[p.frameno];
        int64_t lo = 0, hi = 0;
        r = access_range(e, regno, &p, insn_off, size, &lo, &hi);
        if (r)
            return r;
        if (lo < -BPF_STACK_SIZE || hi > 0)
            return reject(e, "invalid %s stack R%d off=%" PRId64 " size=%u: outside the %d-byte frame",
                          acc == ACC_READ ? "read from" : "write to", regno, lo, size, BPF_STACK_SIZE);
        update_stack_depth(e, f, lo);
        bool fixed = scalar_is_const(&p.v);
        if (acc == ACC_READ)
            return fixed ? stack_read_fixed(e, f, lo, size, dst, regno, sext)
                         : stack_read_var(e, f, lo, hi, dst, regno, size, sext);
        if (acc == ACC_RMW) {
            r = fixed ? stack_read_fixed(e, f, lo, size, NULL, regno, false)
                      : stack_read_var(e, f, lo, hi, NULL, regno, size, false);
            if (r)
                return r;
            return fixed ? stack_write_fixed(e, f, lo, size, NULL, valno)
                         : stack_write_var(e, f, lo, hi, NULL, valno);
        }
        return fixed ? stack_write_fixed(e, f, lo, size, val, valno)
                     : stack_write_var(e, f, lo, hi, val, valno);
    }
    case T_MAP_VALUE: {
        const struct gmap_def *d = map_of(e, p.map_idx);
        if (acc != ACC_READ && map_is_rdonly(d))
            return reject(e, "R%d write into read-only map '%s' (value) not allowed", regno, d->name);
        r = check_region(e, regno, &p, insn_off, size, d->value_size, "map value", NULL, NULL);
        if (r)
            return r;
        leak_into = "map value";
        break;
    }
    case T_MAP_KEY: {
        const struct gmap_def *d = map_of(e, p.map_idx);
        if (acc != ACC_READ)
            return reject(e, "R%d write into a map key not allowed", regno);
        r = check_region(e, regno, &p, insn_off, size, d->key_size, "map key", NULL, NULL);
        if (r)
            return r;
        break;
    }
    case T_MEM:
        if (acc != ACC_READ && p.rdonly)
            return reject(e, "R%d write into read-only host memory not allowed", regno);
        r = check_region(e, regno, &p, insn_off, size, p.mem_size, "mem", NULL, NULL);
        if (r)
            return r;
        leak_into = "helper memory";
        break;
    case T_HOST:
        return reject(e, "R%d invalid mem access: host pointer %s cannot be dereferenced; copy its fields with bpf_probe_read_user",
                      regno, e->pol->host_ptrs[p.map_idx].name);
    default:
        return reject(e, "R%d invalid mem access '%s'", regno, reg_type_name(p.type));
    }
    if (acc == ACC_READ && dst) {
        mark_unknown(dst);
        scalar_unknown_size(&dst->v, size);
        if (sext)
            scalar_sext_size(&dst->v, size);
        /* the whole slot of a restricted pointer argument: a typed pointer */
        if (p.type == T_CTX && size == 8 && !sext) {
            int64_t off = p.off + insn_off + (int64_t)p.v.t.value;
            for (uint32_t i = 0; i < e->pol->n_host_ptrs; i++)
                if (off == e->pol->host_ptrs[i].ctx_off) {
                    mark_const(dst, 0);
                    dst->type = T_HOST;
                    dst->map_idx = i;
                }
        }
    }
    if (acc != ACC_READ && val && is_ptr(val) && !e->pol->allow_ptr_leaks)
        return reject(e, "R%d leaks pointer into %s: storing a pointer where the host can read it is not allowed by the policy",
                      valno, leak_into ? leak_into : "memory");
    return 0;
}

/* ---- ALU ---- */

static uint32_t new_id(struct env *e);

static int ptr_alu(struct env *e, const struct bpf_insn *in, struct reg *dst,
                   const struct reg *src)
{
    uint8_t op = BPF_OP(in->code);
    static const char *opname[16] = { "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=",
                                      "neg", "%=", "^=", "=", "s>>=", "end", "?", "?" };
    bool dptr = is_ptr(dst), sptr = is_ptr(src);
    int dr = in->dst_reg;

    if (dptr && sptr) {
        if (op == BPF_SUB && dst->type == src->type && dst->frameno == src->frameno &&
            dst->map_idx == src->map_idx && dst->type != T_CONST_MAP && dst->type != T_FUNC &&
            dst->type != T_MAP_VALUE_OR_NULL && dst->type != T_MEM_OR_NULL &&
            dst->type != T_CONST_MAP_OR_NULL) {
            mark_unknown(dst);
            return 0;
        }
        return reject(e, "R%d pointer %s pointer prohibited", dr, opname[op >> 4]);
    }
    const struct reg *ptr = dptr ? dst : src, *sc = dptr ? src : dst;
    if (op != BPF_ADD && op != BPF_SUB)
        return reject(e, "R%d pointer arithmetic with %s operator prohibited", dr, opname[op >> 4]);
    if (!dptr && op == BPF_SUB)
        return reject(e, "R%d tried to subtract pointer from scalar", dr);
    switch (ptr->type) {
    case T_MAP_VALUE_OR_NULL:
    case T_MEM_OR_NULL:
    case T_CONST_MAP_OR_NULL:
        return reject(e, "R%d pointer arithmetic on %s prohibited, null-check it first", dr,
                      reg_type_name(ptr->type));
    case T_CONST_MAP:
    case T_FUNC:
        return reject(e, "R%d pointer arithmetic on %s prohibited", dr, reg_type_name(ptr->type));
    }
    struct reg res = *ptr;
    if (scalar_is_const(&sc->v)) {
        int64_t c = (int64_t)sc->v.t.value;
        if (c <= -OFF_LIMIT || c >= OFF_LIMIT)
            return reject(e, "R%d pointer arithmetic with offset %" PRId64 " out of range", dr, c);
        int64_t no = (int64_t)res.off + (op == BPF_ADD ? c : -c);
        if (no <= -OFF_LIMIT || no >= OFF_LIMIT)
            return reject(e, "R%d pointer offset %" PRId64 " out of range", dr, no);
        res.off = (int32_t)no;
    } else {
        scalar_alu(&res.v, &sc->v, op, false, false);
    }
    *dst = res;
    return 0;
}

static int check_alu(struct env *e, const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    bool is64 = cls == BPF_ALU64;
    int dr = in->dst_reg, sr = in->src_reg;
    struct reg *r = regs(e);
    int rc;

    if (dr == BPF_R10)
        return reject(e, "frame pointer is read only");
    if (op == BPF_MOV) {
        if (BPF_SRC(in->code) == BPF_K) {
            mark_const(&r[dr], is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
            return 0;
        }
        if ((rc = check_read(e, sr)))
            return rc;
        if (in->off) {
            if (is_ptr(&r[sr]))
                return reject(e, "R%d sign-extending move of a pointer prohibited", sr);
            struct reg t = r[sr];
            scalar_sext_size(&t.v, (unsigned)in->off / 8);
            if (!is64)
                scalar_zext32(&t.v);
            r[dr] = t;
            r[dr].id = 0;
            return 0;
        }
        if (is64) {
            /* copies of a scalar share an id: a bound learnt on one holds for all */
            if (r[sr].type == T_SCALAR && !r[sr].id && !scalar_is_const(&r[sr].v))
                r[sr].id = new_id(e);
            r[dr] = r[sr];
            return 0;
        }
        if (is_ptr(&r[sr]))
            return reject(e, "R%d 32-bit move of a pointer prohibited (partial copy)", sr);
        struct reg t = r[sr];
        scalar_zext32(&t.v);
        t.id = 0;
        r[dr] = t;
        return 0;
    }
    if ((rc = check_read(e, dr)))
        return rc;
    if (op == BPF_NEG || op == BPF_END) {
        if (is_ptr(&r[dr]))
            return reject(e, "R%d %s on a pointer prohibited", dr, op == BPF_NEG ? "negation" : "byte swap");
        struct scalar *v = &r[dr].v;
        r[dr].id = 0;
        if (op == BPF_NEG) {
            scalar_neg(v, !is64);
            return 0;
        }
        unsigned width = (unsigned)in->imm;
        bool swap = is64 || BPF_SRC(in->code) == BPF_TO_BE;
        if (scalar_is_const(v)) {
            uint64_t x = v->t.value;
            if (swap)
                x = width == 16 ? __builtin_bswap16((uint16_t)x)
                  : width == 32 ? __builtin_bswap32((uint32_t)x) : __builtin_bswap64(x);
            else if (width < 64)
                x &= (1ull << width) - 1;
            scalar_const(v, x);
        } else if (swap) {
            scalar_unknown_size(v, width / 8);
        } else if (width < 64) {
            struct scalar m;
            scalar_const(&m, (1ull << width) - 1);
            scalar_alu(v, &m, BPF_AND, false, false);
        }
        return 0;
    }
    struct reg src;
    if (BPF_SRC(in->code) == BPF_X) {
        if ((rc = check_read(e, sr)))
            return rc;
        src = r[sr];
    } else {
        mark_const(&src, is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm);
        if ((op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) &&
            (in->imm < 0 || in->imm >= (is64 ? 64 : 32)))
            return reject(e, "invalid shift %d", in->imm);
    }
    if (is_ptr(&r[dr]) || is_ptr(&src)) {
        if (!is64)
            return reject(e, "R%d 32-bit pointer arithmetic prohibited", dr);
        return ptr_alu(e, in, &r[dr], &src);
    }
    scalar_alu(&r[dr].v, &src.v, op, !is64, in->off == 1);
    r[dr].id = 0;
    return 0;
}

/* ---- loads, stores, atomics ---- */

static int check_ldx(struct env *e, const struct bpf_insn *in)
{
    if (in->dst_reg == BPF_R10)
        return reject(e, "frame pointer is read only");
    struct reg v;
    mark_unknown(&v);
    int rc = check_mem(e, in->src_reg, in->off, size_bytes(in->code), ACC_READ, NULL, -1, &v,
                       BPF_MODE(in->code) == BPF_MEMSX);
    if (rc)
        return rc;
    regs(e)[in->dst_reg] = v;
    return 0;
}

static int check_st(struct env *e, const struct bpf_insn *in)
{
    struct reg v;
    unsigned size = size_bytes(in->code);
    uint64_t imm = (uint64_t)(int64_t)in->imm;
    if (size < 8)
        imm &= (1ull << (size * 8)) - 1;
    mark_const(&v, imm);
    return check_mem(e, in->dst_reg, in->off, size, ACC_WRITE, &v, -1, NULL, false);
}

static int check_stx(struct env *e, const struct bpf_insn *in)
{
    int rc = check_read(e, in->src_reg);
    if (rc)
        return rc;
    struct reg v = regs(e)[in->src_reg];
    unsigned size = size_bytes(in->code);
    if (BPF_MODE(in->code) == BPF_MEM) {
        if (size == 8 && v.type == T_SCALAR && !v.id && !scalar_is_const(&v.v) &&
            regs(e)[in->dst_reg].type == T_STACK) {
            /* the spill is a copy: link it for branch refinement */
            v.id = new_id(e);
            regs(e)[in->src_reg].id = v.id;
        }
        if (size < 8 && !is_ptr(&v)) {
            struct scalar m;
            scalar_const(&m, (1ull << (size * 8)) - 1);
            scalar_alu(&v.v, &m, BPF_AND, false, false);
        }
        return check_mem(e, in->dst_reg, in->off, size, ACC_WRITE, &v, in->src_reg, NULL, false);
    }
    /* atomic */
    if (is_ptr(&v))
        return reject(e, "R%d atomic operation with a pointer operand prohibited (pointer leak)", in->src_reg);
    if (in->imm == BPF_CMPXCHG) {
        if ((rc = check_read(e, BPF_R0)))
            return rc;
        if (is_ptr(&regs(e)[BPF_R0]))
            return reject(e, "R0 cmpxchg with a pointer operand prohibited");
    }
    rc = check_mem(e, in->dst_reg, in->off, size, ACC_RMW, &v, in->src_reg, NULL, false);
    if (rc)
        return rc;
    if (in->imm & BPF_FETCH) {
        int out = in->imm == BPF_CMPXCHG ? BPF_R0 : in->src_reg;
        mark_unknown(&regs(e)[out]);
        scalar_unknown_size(&regs(e)[out].v, size);
    }
    return 0;
}

/* ---- LD_IMM64 ---- */

static int check_ld_imm64(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    struct reg *d = &regs(e)[in->dst_reg];
    uint64_t v = (uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
    switch (in->src_reg) {
    case 0:
        mark_const(d, v);
        return 0;
    case BPF_PSEUDO_MAP_FD:
    case BPF_PSEUDO_MAP_IDX:
    case BPF_PSEUDO_MAP_VALUE:
    case BPF_PSEUDO_MAP_IDX_VALUE: {
        if (in->imm < 0 || (uint32_t)in->imm >= e->in->n_maps)
            return reject(e, "map index %d out of range (the program has %u maps)", in->imm, e->in->n_maps);
        memset(d, 0, sizeof(*d));
        scalar_const(&d->v, 0);
        d->map_idx = (uint32_t)in->imm;
        if (in->src_reg == BPF_PSEUDO_MAP_FD || in->src_reg == BPF_PSEUDO_MAP_IDX) {
            d->type = T_CONST_MAP;
            return 0;
        }
        const struct gmap_def *md = map_of(e, d->map_idx);
        if (md->type != GMAP_ARRAY || md->max_entries < 1)
            return reject(e, "direct value access needs an array map; map %d '%s' has type %u",
                          in->imm, md->name, md->type);
        if (in[1].imm < 0 || (uint32_t)in[1].imm >= md->value_size)
            return reject(e, "direct value offset %d outside map '%s' value of %u bytes",
                          in[1].imm, md->name, md->value_size);
        d->type = T_MAP_VALUE;
        d->off = in[1].imm;
        return 0;
    }
    case BPF_PSEUDO_FUNC:
        memset(d, 0, sizeof(*d));
        d->type = T_FUNC;
        scalar_const(&d->v, 0);
        d->func = (int32_t)(idx + 1 + in->imm);
        return 0;
    case BPF_PSEUDO_BTF_ID: {
        const struct gver_ksym *ks = NULL;
        for (uint32_t i = 0; i < e->pol->n_ksyms; i++)
            if (e->pol->ksyms[i].id == in->imm)
                ks = &e->pol->ksyms[i];
        if (!ks)
            return reject(e, "host variable #%d (ksym) is not allowed by the policy", in->imm);
        memset(d, 0, sizeof(*d));
        d->type = T_MEM;
        scalar_const(&d->v, 0);
        d->mem_size = ks->size;
        d->rdonly = !(ks->access & GVER_W);
        return 0;
    }
    default:
        return reject(e, "LD_IMM64 with source %d is not supported", in->src_reg);
    }
}

/* ---- calls ---- */

static uint32_t new_id(struct env *e)
{
    return ++e->next_id;
}

/* Every copy of the pointer with this id becomes non-null or the scalar 0. */
static void mark_ptr_or_null(struct env *e, uint32_t id, bool is_null)
{
    struct vstate *st = e->cur;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (uint32_t k = 0; k < BPF_NREGS + f->nslots; k++) {
            struct reg *r = k < BPF_NREGS ? &f->regs[k] : &f->slots[k - BPF_NREGS].spill;
            if (k >= BPF_NREGS && f->slots[k - BPF_NREGS].kind[0] != S_SPILL)
                continue;
            if (!is_or_null(r) || r->id != id)
                continue;
            if (is_null) {
                mark_const(r, 0);
            } else {
                r->type = r->type == T_MAP_VALUE_OR_NULL ? T_MAP_VALUE
                          : r->type == T_CONST_MAP_OR_NULL ? T_CONST_MAP : T_MEM;
                r->id = 0;
            }
        }
    }
    if (is_null) {
        /* a null reservation holds nothing to release */
        for (uint32_t i = 0; i < st->nrefs; i++)
            if (st->refs[i].id == id) {
                st->refs[i] = st->refs[--st->nrefs];
                break;
            }
    }
}

/* The resource is gone: no copy of a pointer to it may be used again. */
static void invalidate_ref(struct env *e, uint32_t ref_id)
{
    struct vstate *st = e->cur;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (int r = 0; r < BPF_NREGS; r++)
            if (is_ptr(&f->regs[r]) && f->regs[r].ref_id == ref_id)
                mark_not_init(&f->regs[r]);
        for (uint32_t s = 0; s < f->nslots; s++)
            if (f->slots[s].kind[0] == S_SPILL && is_ptr(&f->slots[s].spill) &&
                f->slots[s].spill.ref_id == ref_id) {
                memset(f->slots[s].kind, spill_remains(e, &f->slots[s].spill), 8);
                mark_unknown(&f->slots[s].spill);
            }
    }
}

/* A helper's or kfunc's write into the stack, applied after every argument
 * was checked. The pointer's offset and the size may vary: [lo, hi) is every
 * byte it may write, [sure_lo, sure_hi) (possibly empty) the bytes every
 * possible offset and size covers. */
struct pending_write {
    struct frame *f;
    int64_t lo, hi;
    int64_t sure_lo, sure_hi;
};

/* Every byte the write may touch loses what was known of it (a spilled
 * value, known zero): it may now hold anything. Only the bytes surely
 * written become initialised; the others stay uninitialised if they were
 * (issue 14: a spill beyond the smallest size or offset used to survive). */
static int apply_stack_write(struct env *e, const struct pending_write *pw)
{
    for (int64_t o = pw->lo; o < pw->hi; o++) {
        bool sure = o >= pw->sure_lo && o < pw->sure_hi;
        struct slot *sl;
        uint8_t *k = byte_kind(pw->f, o, sure, &sl);
        if (!k) {
            if (sure)
                return -ENOMEM;
            continue;               /* never written: still uninitialised */
        }
        if (*k == S_SPILL)
            break_spill(e, sl);     /* scalars only: pointers were refused */
        if (sure || *k == S_ZERO)
            *k = S_MISC;
    }
    return 0;
}

/* Memory argument: [p, p + size_max) must be accessible (readable and
 * initialised unless uninit_ok). Writes to the stack are recorded in *pw;
 * the callee writes at least size_min bytes. */
static int check_mem_arg(struct env *e, int regno, uint64_t size_min, uint64_t size_max, bool write,
                         bool uninit_ok, struct pending_write *pw)
{
    struct reg p = regs(e)[regno];
    int rc;
    if (size_max > OFF_LIMIT)
        return reject(e, "R%d memory argument of up to %" PRIu64 " bytes: size is unbounded", regno, size_max);
    unsigned sz = (unsigned)size_max;
    switch (p.type) {
    case T_STACK: {
        struct frame *f = e->cur->fr[p.frameno];
        int64_t lo = 0, hi = 0;
        if ((rc = access_range(e, regno, &p, 0, sz, &lo, &hi)))
            return rc;
        if (lo < -BPF_STACK_SIZE || hi > 0)
            return reject(e, "invalid indirect access to stack R%d off=%" PRId64 " size=%u: outside the %d-byte frame",
                          regno, lo, sz, BPF_STACK_SIZE);
        update_stack_depth(e, f, lo);
        if (!uninit_ok) {
            if ((rc = stack_read_var(e, f, lo, hi, NULL, regno, sz, false)))
                return rc;
        } else {
            /* the helper overwrites: no spilled pointer may be destroyed */
            for (int64_t o = lo; o < hi; o++) {
                struct slot *s;
                uint8_t *k = byte_kind(f, o, false, &s);
                if (k && *k == S_SPILL && s->spill.type != T_SCALAR)
                    return reject(e, "R%d helper would overwrite the pointer spilled at fp%+" PRId64, regno, o);
            }
        }
        if (write && pw) {
            pw->f = f;
            pw->lo = lo;
            pw->hi = hi;
            pw->sure_lo = p.off + p.v.smax;
            pw->sure_hi = p.off + p.v.smin + (int64_t)size_min;
        }
        return 0;
    }
    case T_MAP_VALUE: {
        const struct gmap_def *d = map_of(e, p.map_idx);
        if (write && map_is_rdonly(d))
            return reject(e, "R%d write into read-only map '%s' not allowed", regno, d->name);
        return check_region(e, regno, &p, 0, sz, d->value_size, "map value", NULL, NULL);
    }
    case T_MAP_KEY:
        if (write)
            return reject(e, "R%d write into a map key not allowed", regno);
        return check_region(e, regno, &p, 0, sz, map_of(e, p.map_idx)->key_size, "map key", NULL, NULL);
    case T_MEM:
        if (write && p.rdonly)
            return reject(e, "R%d write into read-only host memory not allowed", regno);
        return check_region(e, regno, &p, 0, sz, p.mem_size, "mem", NULL, NULL);
    case T_MAP_VALUE_OR_NULL:
    case T_MEM_OR_NULL:
        return reject(e, "R%d type=%s expected=fp, map_value, mem: null check required first", regno,
                      reg_type_name(p.type));
    case T_NOT_INIT:
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    default:
        return reject(e, "R%d type=%s expected=fp, map_value, mem", regno, reg_type_name(p.type));
    }
}

static int check_size_arg(struct env *e, int regno, bool zero_ok, uint64_t *umin, uint64_t *umax)
{
    struct reg *s = &regs(e)[regno];
    if (s->type == T_NOT_INIT)
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    if (s->type != T_SCALAR)
        return reject(e, "R%d size argument must be a scalar, not %s", regno, reg_type_name(s->type));
    if (s->v.smin < 0)
        return reject(e, "R%d min value is negative, either use unsigned or 'var &= const'", regno);
    if (!zero_ok && s->v.umin == 0)
        return reject(e, "R%d invalid zero-sized read: size may be 0", regno);
    if (s->v.umax > OFF_LIMIT)
        return reject(e, "R%d unbounded memory access, use 'var &= const' or 'if (var < const)'", regno);
    *umin = s->v.umin;
    *umax = s->v.umax;
    return 0;
}

static bool map_ok_for_helper(uint32_t helper, uint32_t type)
{
    bool generic = type == GMAP_HASH || type == GMAP_ARRAY || type == GMAP_PERCPU_HASH ||
                   type == GMAP_PERCPU_ARRAY || type == GMAP_LRU_HASH ||
                   type == GMAP_LRU_PERCPU_HASH || type == GMAP_LPM_TRIE;
    switch (helper) {
    case 1:
        return generic || is_map_of_maps(type);    /* the inner map, by id */
    case 2: case 3:    /* a map of maps' slots are the loader's to change, as in the kernel */
        return generic || (helper == 2 && type == GMAP_BLOOM_FILTER);
    case HELPER_TAIL_CALL: return type == GMAP_PROG_ARRAY;
    case 25: return type == GMAP_PERF_EVENT_ARRAY;          /* perf_event_output */
    case 130: case 131: case 134: return type == GMAP_RINGBUF;
    case 87: case 88: case 89:                              /* push/pop/peek */
        return type == GMAP_QUEUE || type == GMAP_STACK || type == GMAP_BLOOM_FILTER;
    case HELPER_FOR_EACH:
        return type == GMAP_HASH || type == GMAP_ARRAY || type == GMAP_PERCPU_HASH ||
               type == GMAP_PERCPU_ARRAY || type == GMAP_LRU_HASH || type == GMAP_LRU_PERCPU_HASH;
    }
    /* other helpers taking a map: any map whose special helpers are not required */
    return type != GMAP_RINGBUF && type != GMAP_PROG_ARRAY && type != GMAP_PERF_EVENT_ARRAY &&
           type != GMAP_ARRAY_OF_MAPS && type != GMAP_HASH_OF_MAPS;
}

static void clobber_args(struct env *e)
{
    for (int r = BPF_R1; r <= BPF_R5; r++)
        mark_not_init(&regs(e)[r]);
}

/* Scalar stack data of frames below the callback may change on every
 * iteration: forget their values so that iterations converge. */
static void widen_caller_stacks(struct env *e)
{
    struct vstate *st = e->cur;
    for (uint32_t fi = 0; fi + 1 < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (uint32_t s = 0; s < f->nslots; s++) {
            struct slot *sl = &f->slots[s];
            for (int k = 0; k < 8; k++)
                if (sl->kind[k] == S_ZERO)
                    sl->kind[k] = S_MISC;
            if (sl->kind[0] == S_SPILL && sl->spill.type == T_SCALAR)
                mark_unknown(&sl->spill);
        }
    }
}

/* Queue s to be explored later (the other side of a branch). */
static int push_state(struct env *e, struct vstate *s)
{
    if (e->npending == e->cappending) {
        uint32_t cap = e->cappending ? e->cappending * 2 : 64;
        struct vstate **n = realloc(e->pending, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        e->pending = n;
        e->cappending = cap;
    }
    if (s->parent)
        s->parent->branches++;
    e->pending[e->npending++] = s;
    return 0;
}

static int enter_callback(struct env *e, uint32_t helper, int32_t func, const struct reg args[5],
                          uint32_t callsite)
{
    struct vstate *st = e->cur;
    if (st->nfr >= BPF_MAX_CALL_DEPTH)
        return reject(e, "the call stack of %u frames is too deep", st->nfr + 1);
    struct frame *f = frame_new(st->nfr, (int32_t)callsite);
    if (!f)
        return -ENOMEM;
    f->is_callback = true;
    f->cb_helper = helper;
    for (int i = 0; i < 5; i++) {
        f->cb_args[i] = args[i];
        f->regs[BPF_R1 + i] = args[i];
    }
    st->fr[st->nfr++] = f;
    widen_caller_stacks(e);
    st->insn = (uint32_t)func;
    return 0;
}

#define HELPER_PROBE_WRITE_USER 36

/* The helpers that copy from a raw address (the source is argument 3). */
static bool is_probe_read(uint32_t id)
{
    return id == 4 || id == 45 || id == 112 || id == 113 || id == 114 || id == 115;
}

/* With restricted host structures in the policy: the raw-address helpers
 * take only a host pointer plus a constant offset, and [off, off+size) must
 * lie in fields granted the access; helpers reading memory behind %s are
 * refused. */
static int check_host_mem_helper(struct env *e, uint32_t id, const char *hname)
{
    const struct gver_host_ptr *h0 = &e->pol->host_ptrs[0];
    if (id == 6 || id == 165)
        return reject(e, "helper %s is not allowed: it can read host memory behind %%s arguments, which the field rights of host pointer %s cannot check",
                      hname, h0->name);
    bool rd = is_probe_read(id);
    if (!rd && id != HELPER_PROBE_WRITE_USER)
        return 0;
    int pn = rd ? BPF_R3 : BPF_R1, sn = rd ? BPF_R2 : BPF_R3;
    const struct reg *p = &regs(e)[pn], *sz = &regs(e)[sn];
    const char *what = rd ? "source" : "destination";
    if (p->type != T_HOST)
        return reject(e, "R%d helper %s: the %s must be a host pointer argument plus a constant offset, not %s (the policy restricts the fields of host pointer %s)",
                      pn, hname, what, reg_type_name(p->type), h0->name);
    const struct gver_host_ptr *h = &e->pol->host_ptrs[p->map_idx];
    if (!scalar_is_const(&p->v)) {
        char b[200];
        scalar_str(b, sizeof(b), &p->v);
        return reject(e, "R%d helper %s: %s host pointer %s has a variable offset (%d + %s): the field it reaches is unknown",
                      pn, hname, what, h->name, p->off, b);
    }
    if (sz->type != T_SCALAR || sz->v.umax > OFF_LIMIT)
        return reject(e, "R%d helper %s: the size of an access to host pointer %s must be a bounded number", sn, hname, h->name);
    int64_t lo = p->off + (int64_t)p->v.t.value, hi = lo + (int64_t)sz->v.umax;
    if (hi == lo)
        return 0;
    uint32_t need = rd ? GVER_R : GVER_W;
    if (lo < 0 || hi > (int64_t)h->size)
        return reject(e, "R%d helper %s: %s host pointer %s off=%" PRId64 " size=%" PRIu64 " is outside its %u bytes",
                      pn, hname, rd ? "read from" : "write to", h->name, lo, sz->v.umax, h->size);
    for (int64_t o = lo; o < hi;) {
        const struct gver_host_field *f = NULL;
        for (uint32_t i = 0; i < h->n_fields; i++)
            if (o >= h->fields[i].off && o < (int64_t)h->fields[i].off + h->fields[i].size)
                f = &h->fields[i];
        if (!f)
            return reject(e, "R%d helper %s: %s host pointer %s off=%" PRId64 " size=%" PRIu64 ": byte %" PRId64 " is in no field",
                          pn, hname, rd ? "read from" : "write to", h->name, lo, sz->v.umax, o);
        if (!(f->access & need))
            return reject(e, "R%d helper %s: %s host pointer %s off=%" PRId64 " size=%" PRIu64 ": field '%s' is %s",
                          pn, hname, rd ? "read from" : "write to", h->name, lo, sz->v.umax, f->name,
                          !f->access ? "closed" : rd ? "write-only" : "read-only");
        o = (int64_t)f->off + f->size;
    }
    return 0;
}

static int check_helper_call(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    uint32_t id = (uint32_t)in->imm;
    struct vstate *st = e->cur;
    if (in->imm < 0 || id >= BPF_MAX_HELPER_ID || !gver_policy_helper_allowed(e->pol, id))
        return reject(e, "helper call #%d is not allowed by the policy", in->imm);
    const struct ghelper_proto *pr = e->proto(id);
    if (!pr)
        return reject(e, "unknown helper #%u", id);
    if (st->lock_map && id != HELPER_SPIN_UNLOCK)
        return reject(e, "helper %s#%u is not allowed while holding a spin lock", pr->name, id);
    if (id == HELPER_OVERRIDE_RETURN && e->pol->override_range && regs(e)[BPF_R2].type != T_NOT_INIT) {
        /* R2 is the hooked function's return value: the precision pass
         * keeps argument registers exact at calls, so pruning is sound */
        const struct reg *r2 = &regs(e)[BPF_R2];
        if (r2->type != T_SCALAR)
            return reject(e, "R2 type=%s: the value %s returns must be a number in [%" PRId64 ", %" PRId64 "]",
                          reg_type_name(r2->type), pr->name, e->pol->override_min, e->pol->override_max);
        if (r2->v.smin < e->pol->override_min || r2->v.smax > e->pol->override_max)
            return reject(e, "R2 override return value may be in [%" PRId64 ", %" PRId64 "], the policy requires [%" PRId64 ", %" PRId64 "]",
                          r2->v.smin, r2->v.smax, e->pol->override_min, e->pol->override_max);
    }

    int rc;
    if (e->pol->n_host_ptrs && (rc = check_host_mem_helper(e, id, pr->name)))
        return rc;
    /* Under a policy's own context layout (an EIM class: argument slots
     * open, read-only or closed), the context through a raw-address helper
     * is a context access like a load, with the same field rights, or the
     * closed slots could be read around them. The built-in layouts are
     * wholly readable, and libbpf's USDT code reads them at variable
     * offsets this way. */
    const struct gver_ctx_layout *cl = e->pol->ctx;
    bool own_layout = cl && cl != &gver_ctx_pt_regs && cl != &gver_ctx_sys_enter &&
                      cl != &gver_ctx_sys_exit && cl != &gver_ctx_raw_tp;
    if (own_layout && (is_probe_read(id) || id == HELPER_PROBE_WRITE_USER)) {
        int pn = is_probe_read(id) ? BPF_R3 : BPF_R1, sn = is_probe_read(id) ? BPF_R2 : BPF_R3;
        const struct reg *p = &regs(e)[pn], *sz = &regs(e)[sn];
        if (p->type == T_CTX) {
            if (sz->type != T_SCALAR || sz->v.umax > 64)
                return reject(e, "R%d helper %s on the context: the size must be a number of at most 64 bytes",
                              sn, pr->name);
            if (sz->v.umax && (rc = check_ctx_access(e, pn, p, 0, (unsigned)sz->v.umax,
                                                     is_probe_read(id) ? ACC_READ : ACC_WRITE)))
                return rc;
        }
    }

    int map_arg = -1;
    uint64_t alloc_size = 0;
    int release_reg = -1, func_reg = -1, ctx_reg = -1;
    struct pending_write pw[5];
    int npw = 0;
    for (int i = 0; i < 5; i++) {
        int rn = BPF_R1 + i;
        struct reg *r = &regs(e)[rn];
        enum garg_kind k = pr->args[i];
        if (k == GARG_NONE)
            break;
        /* trace_printk's format arguments may be left out, as in the kernel */
        if (k == GARG_ANYTHING && id == 6 && i >= 2 && r->type == T_NOT_INIT)
            continue;
        if (k != GARG_CONST_SIZE && k != GARG_CONST_SIZE_OR_ZERO && r->type == T_NOT_INIT)
            return reject(e, "R%d !read_ok: helper %s argument %d is not initialised", rn, pr->name, i + 1);
        switch (k) {
        case GARG_ANYTHING:
            if (r->type == T_HOST && !(is_probe_read(id) && i == 2) && !(id == HELPER_PROBE_WRITE_USER && i == 0))
                return reject(e, "R%d passing host pointer %s to helper %s (argument %d) is not allowed: only the probe_read helpers (source) and probe_write_user (destination) take it",
                              rn, e->pol->host_ptrs[r->map_idx].name, pr->name, i + 1);
            break;
        case GARG_SCALAR:
            if (r->type != T_SCALAR)
                return reject(e, "R%d type=%s expected=scalar (helper %s)", rn, reg_type_name(r->type), pr->name);
            break;
        case GARG_CONST_MAP_PTR:
            if (r->type != T_CONST_MAP)
                return reject(e, "R%d type=%s expected=map_ptr (helper %s)", rn, reg_type_name(r->type), pr->name);
            if (!map_ok_for_helper(id, map_of(e, r->map_idx)->type))
                return reject(e, "cannot pass map '%s' of type %u to helper %s#%u",
                              map_of(e, r->map_idx)->name, map_of(e, r->map_idx)->type, pr->name, id);
            map_arg = rn;
            break;
        case GARG_PTR_TO_MAP_KEY:
        case GARG_PTR_TO_MAP_VALUE:
        case GARG_PTR_TO_UNINIT_MAP_VALUE: {
            if (map_arg < 0)
                return reject(e, "R%d helper %s: map key/value argument without a map argument", rn, pr->name);
            const struct gmap_def *d = map_of(e, regs(e)[map_arg].map_idx);
            uint32_t sz = k == GARG_PTR_TO_MAP_KEY ? d->key_size : d->value_size;
            bool w = k == GARG_PTR_TO_UNINIT_MAP_VALUE;
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, sz, sz, w, w, &pw[npw])))
                return rc;
            if (w && pw[npw].f)
                npw++;
            break;
        }
        case GARG_PTR_TO_MEM:
        case GARG_PTR_TO_MEM_OR_NULL:
        case GARG_PTR_TO_UNINIT_MEM: {
            if (i == 4 || (pr->args[i + 1] != GARG_CONST_SIZE && pr->args[i + 1] != GARG_CONST_SIZE_OR_ZERO))
                return reject(e, "helper %s: memory argument %d has no size argument", pr->name, i + 1);
            bool zero_ok = pr->args[i + 1] == GARG_CONST_SIZE_OR_ZERO;
            uint64_t smin, smax;
            if ((rc = check_size_arg(e, rn + 1, zero_ok, &smin, &smax)))
                return rc;
            if (k == GARG_PTR_TO_MEM_OR_NULL && r->type == T_SCALAR && scalar_is_const(&r->v) &&
                r->v.t.value == 0)
                break;
            if (smax == 0 && r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0)
                break;
            bool w = k == GARG_PTR_TO_UNINIT_MEM;
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, smin, smax, w, w, &pw[npw])))
                return rc;
            if (w && pw[npw].f)
                npw++;
            i++;
            break;
        }
        case GARG_CONST_SIZE:
        case GARG_CONST_SIZE_OR_ZERO:
            return reject(e, "helper %s: size argument %d without a memory argument", pr->name, i + 1);
        case GARG_PTR_TO_CTX:
            if (r->type != T_CTX)
                return reject(e, "R%d type=%s expected=ctx (helper %s)", rn, reg_type_name(r->type), pr->name);
            if (r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d helper %s needs the unmodified ctx pointer", rn, pr->name);
            ctx_reg = rn;
            break;
        case GARG_PTR_TO_FUNC:
            if (r->type != T_FUNC)
                return reject(e, "R%d type=%s expected=func (helper %s)", rn, reg_type_name(r->type), pr->name);
            func_reg = rn;
            break;
        case GARG_PTR_TO_STACK_OR_NULL:
            if (r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0)
                break;
            if (r->type != T_STACK)
                return reject(e, "R%d type=%s expected=fp or NULL (helper %s)", rn, reg_type_name(r->type), pr->name);
            break;
        case GARG_PTR_TO_ALLOC_MEM:
            if (r->type == T_MEM_OR_NULL)
                return reject(e, "R%d type=mem_or_null: null check required before %s", rn, pr->name);
            if (r->type != T_MEM || !r->ref_id)
                return reject(e, "R%d type=%s expected=ringbuf sample (helper %s)", rn, reg_type_name(r->type), pr->name);
            if (r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d must have zero offset when passed to release func %s", rn, pr->name);
            release_reg = rn;
            break;
        case GARG_PTR_TO_SPIN_LOCK: {
            if (r->type != T_MAP_VALUE)
                return reject(e, "R%d type=%s expected=map_value holding a spin lock (helper %s)", rn,
                              reg_type_name(r->type), pr->name);
            if (!scalar_is_const(&r->v))
                return reject(e, "R%d %s has to be at a constant offset", rn, pr->name);
            int64_t off = r->off + (int64_t)r->v.t.value;
            if (off < 0 || off % 4 || off + 4 > map_of(e, r->map_idx)->value_size)
                return reject(e, "R%d spin lock at off=%" PRId64 " is outside map value or misaligned", rn, off);
            if (id == HELPER_SPIN_LOCK) {
                if (st->lock_map)
                    return reject(e, "Locking two bpf_spin_locks are not allowed");
                st->lock_map = r->map_idx + 1;
                st->lock_off = (int32_t)off;
            } else {
                if (!st->lock_map)
                    return reject(e, "bpf_spin_unlock without taking a lock");
                if (st->lock_map != r->map_idx + 1 || st->lock_off != off)
                    return reject(e, "bpf_spin_unlock of a different lock");
                st->lock_map = 0;
                st->lock_off = 0;
            }
            break;
        }
        case GARG_PTR_TO_LONG:
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, 8, 8, true, true, &pw[npw])))
                return rc;
            if (pw[npw].f)
                npw++;
            break;
        case GARG_PTR_TO_CONST_STR: {
            if (r->type != T_MAP_VALUE || !map_is_rdonly(map_of(e, r->map_idx)))
                return reject(e, "R%d type=%s expected=read-only map value holding a string (helper %s)",
                              rn, reg_type_name(r->type), pr->name);
            if (!scalar_is_const(&r->v))
                return reject(e, "R%d string pointer must be at a constant offset", rn);
            int64_t off = r->off + (int64_t)r->v.t.value;
            if (off < 0 || off >= map_of(e, r->map_idx)->value_size)
                return reject(e, "R%d string offset %" PRId64 " outside the map value", rn, off);
            break;
        }
        case GARG_CONST_ALLOC_SIZE:
            if (r->type != T_SCALAR || !scalar_is_const(&r->v))
                return reject(e, "R%d is not a known constant: %s needs a constant size", rn, pr->name);
            if (r->v.t.value == 0 || r->v.t.value > OFF_LIMIT)
                return reject(e, "R%d invalid size %" PRIu64 " for %s", rn, r->v.t.value, pr->name);
            alloc_size = r->v.t.value;
            break;
        default:
            return reject(e, "helper %s: argument kind %d not supported by the verifier", pr->name, k);
        }
    }
    (void)ctx_reg;
    if ((pr->flags & GHELPER_F_NORETURN_OK) && st->nrefs)
        return reject(e, "%s would leak reference id=%u acquired at insn %d", pr->name, st->refs[0].id,
                      st->refs[0].insn);
    /* stack bytes the helper fills */
    for (int i = 0; i < npw; i++)
        if ((rc = apply_stack_write(e, &pw[i])))
            return rc;
    if (release_reg >= 0) {
        uint32_t ref = regs(e)[release_reg].ref_id;
        uint32_t i;
        for (i = 0; i < st->nrefs && st->refs[i].id != ref; i++)
            ;
        if (i == st->nrefs)
            return reject(e, "R%d release of an unacquired reference id=%u", release_reg, ref);
        struct frame *tf = top(e);
        if (tf->is_callback && i < tf->cb_nrefs)
            return reject(e, "R%d callback releases reference id=%u acquired outside it", release_reg, ref);
        st->refs[i] = st->refs[--st->nrefs];
        invalidate_ref(e, ref);
    }

    struct reg cb_args[5];
    memset(cb_args, 0, sizeof(cb_args));
    int32_t cb_func = func_reg >= 0 ? regs(e)[func_reg].func : -1;
    if (func_reg >= 0) {
        for (int i = 0; i < 5; i++)
            mark_not_init(&cb_args[i]);
        if (id == HELPER_LOOP) {
            mark_unknown(&cb_args[0]);
            cb_args[0].v.umax = LOOP_MAX_ITER - 1;
            scalar_sync(&cb_args[0].v);
            cb_args[1] = regs(e)[BPF_R3];
        } else if (id == HELPER_FOR_EACH) {
            struct reg m = regs(e)[BPF_R1];
            cb_args[0] = m;
            memset(&cb_args[1], 0, sizeof(struct reg));
            cb_args[1].type = T_MAP_KEY;
            cb_args[1].map_idx = m.map_idx;
            scalar_const(&cb_args[1].v, 0);
            cb_args[2] = cb_args[1];
            cb_args[2].type = T_MAP_VALUE;
            cb_args[3] = regs(e)[BPF_R3];
        } else {
            return reject(e, "callbacks of helper %s#%u are not supported", pr->name, id);
        }
    }

    clobber_args(e);
    struct reg *r0 = &regs(e)[BPF_R0];
    switch (pr->ret) {
    case GRET_INTEGER:
        mark_unknown(r0);
        break;
    case GRET_VOID:
        mark_not_init(r0);
        break;
    case GRET_MAP_VALUE_OR_NULL:
        if (map_arg < 0)
            return reject(e, "helper %s returns a map value but takes no map", pr->name);
        mark_unknown(r0);          /* typed by the caller, which knows the map */
        break;
    case GRET_ALLOC_MEM_OR_NULL:
        memset(r0, 0, sizeof(*r0));
        r0->type = T_MEM_OR_NULL;
        scalar_const(&r0->v, 0);
        r0->mem_size = (uint32_t)alloc_size;
        r0->id = new_id(e);
        if (pr->flags & GHELPER_F_ACQUIRE) {
            if (st->nrefs == MAX_REFS)
                return reject(e, "too many outstanding references (max %d)", MAX_REFS);
            r0->ref_id = r0->id;
            st->refs[st->nrefs].id = r0->id;
            st->refs[st->nrefs++].insn = (int32_t)idx;
        }
        break;
    }
    st->insn = idx + 1;
    if (func_reg >= 0) {
        /* the helper may call the callback zero times: continue here too */
        struct vstate *skip = state_copy(st);
        if (!skip)
            return -ENOMEM;
        if ((rc = push_state(e, skip))) {
            state_free(skip);
            return rc;
        }
        rc = enter_callback(e, id, cb_func, cb_args, idx);
        if (rc)
            return rc;
        top(e)->cb_nrefs = st->nrefs;
    }
    return 0;
}

static int check_kfunc_call(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    const struct gver_kfunc *kf = NULL;
    for (uint32_t i = 0; i < e->pol->n_kfuncs; i++)
        if (e->pol->kfuncs[i].id == in->imm)
            kf = &e->pol->kfuncs[i];
    if (!kf)
        return reject(e, "kfunc call #%d is not allowed by the policy (no such host function)", in->imm);
    if (e->cur->lock_map)
        return reject(e, "kfunc %s is not allowed while holding a spin lock", kf->name);
    int rc;
    for (int i = 0; i < 5; i++) {
        int rn = BPF_R1 + i;
        struct reg *r = &regs(e)[rn];
        enum garg_kind k = kf->args[i];
        if (k == GARG_NONE)
            break;
        if (r->type == T_NOT_INIT)
            return reject(e, "R%d !read_ok: kfunc %s argument %d is not initialised", rn, kf->name, i + 1);
        switch (k) {
        case GARG_ANYTHING:
            if (is_ptr(r) && !e->pol->allow_ptr_leaks)
                return reject(e, "R%d kfunc %s argument %d: passing a pointer to the host is not allowed",
                              rn, kf->name, i + 1);
            break;
        case GARG_SCALAR:
            if (r->type != T_SCALAR)
                return reject(e, "R%d type=%s expected=scalar (kfunc %s)", rn, reg_type_name(r->type), kf->name);
            if ((kf->arg_min[i] || kf->arg_max[i]) &&
                (r->v.smin < kf->arg_min[i] || r->v.smax > kf->arg_max[i]))
                return reject(e, "R%d kfunc %s argument %d must be within [%" PRId64 ", %" PRId64 "], but may be in [%" PRId64 ", %" PRId64 "]",
                              rn, kf->name, i + 1, kf->arg_min[i], kf->arg_max[i], r->v.smin, r->v.smax);
            break;
        case GARG_PTR_TO_MEM:
        case GARG_PTR_TO_MEM_OR_NULL:
        case GARG_PTR_TO_UNINIT_MEM: {
            if (i == 4 || (kf->args[i + 1] != GARG_CONST_SIZE && kf->args[i + 1] != GARG_CONST_SIZE_OR_ZERO))
                return reject(e, "kfunc %s: memory argument %d has no size argument", kf->name, i + 1);
            /* the size argument's own declared range (a pre-condition like
             * any scalar's), before its use as a bound on the memory */
            const struct reg *sz = &regs(e)[rn + 1];
            if ((kf->arg_min[i + 1] || kf->arg_max[i + 1]) && sz->type == T_SCALAR &&
                (sz->v.smin < kf->arg_min[i + 1] || sz->v.smax > kf->arg_max[i + 1]))
                return reject(e, "R%d kfunc %s argument %d (size of argument %d) must be within [%" PRId64 ", %" PRId64 "], but may be in [%" PRId64 ", %" PRId64 "]",
                              rn + 1, kf->name, i + 2, i + 1, kf->arg_min[i + 1], kf->arg_max[i + 1], sz->v.smin, sz->v.smax);
            uint64_t smin, smax;
            if ((rc = check_size_arg(e, rn + 1, kf->args[i + 1] == GARG_CONST_SIZE_OR_ZERO, &smin, &smax)))
                return rc;
            /* a declared-nullable pointer may be the constant NULL, which
             * the host function handles; anything else must be memory */
            if (k == GARG_PTR_TO_MEM_OR_NULL && r->type == T_SCALAR && scalar_is_const(&r->v) &&
                r->v.t.value == 0) {
                i++;
                break;
            }
            if (r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0)
                return reject(e, "R%d kfunc %s argument %d is NULL, but the host function requires a "
                              "non-null pointer", rn, kf->name, i + 1);
            bool w = k == GARG_PTR_TO_UNINIT_MEM;
            struct pending_write pw = { 0 };
            if ((rc = check_mem_arg(e, rn, smin, smax, w, w, &pw)))
                return rc;
            if (w && pw.f && (rc = apply_stack_write(e, &pw)))
                return rc;
            i++;
            break;
        }
        case GARG_PTR_TO_CTX:
            if (r->type != T_CTX || r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d kfunc %s needs the unmodified ctx pointer", rn, kf->name);
            break;
        default:
            return reject(e, "kfunc %s: argument kind %d not supported", kf->name, k);
        }
    }
    clobber_args(e);
    struct reg *r0 = &regs(e)[BPF_R0];
    if (kf->ret == GRET_VOID) {
        mark_not_init(r0);
    } else {
        mark_unknown(r0);
        if (kf->ret_min || kf->ret_max) {
            r0->v.smin = kf->ret_min;
            r0->v.smax = kf->ret_max;
            if (!scalar_sync(&r0->v))
                mark_unknown(r0);
        }
    }
    e->cur->insn = idx + 1;
    return 0;
}

static int check_local_call(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    struct vstate *st = e->cur;
    if (st->lock_map)
        return reject(e, "function calls are not allowed while holding a lock");
    if (st->nfr >= BPF_MAX_CALL_DEPTH)
        return reject(e, "the call stack of %u frames is too deep (max %d)", st->nfr + 1, BPF_MAX_CALL_DEPTH);
    struct frame *f = frame_new(st->nfr, (int32_t)idx);
    if (!f)
        return -ENOMEM;
    for (int r = BPF_R1; r <= BPF_R5; r++)
        f->regs[r] = regs(e)[r];
    st->fr[st->nfr++] = f;
    st->insn = (uint32_t)((int64_t)idx + 1 + in->imm);
    return 0;
}

/* Set r0 of a GRET_MAP_VALUE_OR_NULL helper: needs the map argument, so it
 * is done before the arguments are clobbered. */
static int set_map_value_ret(struct env *e, const struct bpf_insn *in)
{
    const struct ghelper_proto *pr = e->proto((uint32_t)in->imm);
    if (!pr || pr->ret != GRET_MAP_VALUE_OR_NULL)
        return 0;
    for (int i = 0; i < 5; i++)
        if (pr->args[i] == GARG_CONST_MAP_PTR) {
            struct reg m = regs(e)[BPF_R1 + i];
            if (m.type != T_CONST_MAP)
                return 0;          /* the argument check rejects it */
            const struct gmap_def *d = map_of(e, m.map_idx);
            if (is_map_of_maps(d->type) && m.map_idx < e->in->n_maps &&
                !e->inner[m.map_idx].type)
                return reject(e, "map '%s' is a map of maps without an inner map definition: "
                              "declare it with __array(values, struct ...)", d->name);
            return (int)m.map_idx + 1;
        }
    return 0;
}

/* ---- exit ---- */

static int check_exit(struct env *e, uint32_t idx, bool *path_done)
{
    struct vstate *st = e->cur;
    struct frame *f = top(e);
    struct reg r0 = f->regs[BPF_R0];
    int rc;
    *path_done = false;
    if (st->lock_map)
        return reject(e, "bpf_spin_unlock is missing: exit with a spin lock held");
    if (r0.type == T_NOT_INIT)
        return reject(e, "R0 !read_ok: the return value is not initialised");
    if (st->nfr == 1) {
        if (st->nrefs)
            return reject(e, "Unreleased reference id=%u alloc_insn=%d: release it (ringbuf submit/discard) on every path",
                          st->refs[0].id, st->refs[0].insn);
        if (is_ptr(&r0) && !e->pol->allow_ptr_leaks)
            return reject(e, "R0 pointer leak: returning a pointer to the host is not allowed by the policy");
        if ((e->pol->ret_min || e->pol->ret_max) && r0.type == T_SCALAR &&
            (r0.v.smin < e->pol->ret_min || r0.v.smax > e->pol->ret_max))
            return reject(e, "R0 return value may be in [%" PRId64 ", %" PRId64 "], the policy requires [%" PRId64 ", %" PRId64 "]",
                          r0.v.smin, r0.v.smax, e->pol->ret_min, e->pol->ret_max);
        *path_done = true;
        return 0;
    }
    if (r0.type == T_STACK && r0.frameno >= f->frameno)
        return reject(e, "R0 cannot return a pointer to this function's stack to the caller");
    if (f->is_callback) {
        if (r0.type != T_SCALAR || r0.v.umax > 1)
            return reject(e, "R0 callback must return 0 or 1 (helper %u)", f->cb_helper);
        if (st->nrefs != f->cb_nrefs)
            return reject(e, "Unreleased reference id=%u alloc_insn=%d in callback", st->refs[st->nrefs - 1].id,
                          st->refs[st->nrefs - 1].insn);
        /* path 1: the helper returns to the caller */
        struct vstate *ret = state_copy(st);
        if (!ret)
            return -ENOMEM;
        ret->nfr--;
        frame_free(ret->fr[ret->nfr]);
        struct frame *cf = ret->fr[ret->nfr - 1];
        mark_unknown(&cf->regs[BPF_R0]);
        for (int r = BPF_R1; r <= BPF_R5; r++)
            mark_not_init(&cf->regs[r]);
        ret->insn = (uint32_t)f->callsite + 1;
        if ((rc = push_state(e, ret))) {
            state_free(ret);
            return rc;
        }
        /* path 2: the helper calls the callback again, with a fresh frame */
        struct reg args[5];
        memcpy(args, f->cb_args, sizeof(args));
        uint32_t helper = f->cb_helper, nrefs = f->cb_nrefs;
        int32_t callsite = f->callsite;
        int32_t func = (int32_t)e->cfg.subprog_start[e->cfg.subprog_of[idx]];
        st->nfr--;
        frame_free(f);
        rc = enter_callback(e, helper, func, args, (uint32_t)callsite);
        if (rc)
            return rc;
        top(e)->cb_nrefs = nrefs;
        return 0;
    }
    int32_t callsite = f->callsite;
    st->nfr--;
    frame_free(f);
    struct frame *cf = top(e);
    cf->regs[BPF_R0] = r0;
    for (int r = BPF_R1; r <= BPF_R5; r++)
        mark_not_init(&cf->regs[r]);
    st->insn = (uint32_t)callsite + 1;
    return 0;
}

/* ---- conditional jumps ---- */

static bool is_null_const(const struct reg *r)
{
    return r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0;
}

/* After a branch refined r, every copy of it (same scalar id) learns the same. */
static void sync_scalar_copies(struct vstate *st, const struct reg *r)
{
    if (r->type != T_SCALAR || !r->id)
        return;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (int k = 0; k < BPF_NREGS; k++)
            if (f->regs[k].type == T_SCALAR && f->regs[k].id == r->id)
                f->regs[k].v = r->v;
        for (uint32_t s = 0; s < f->nslots; s++) {
            struct slot *sl = &f->slots[s];
            if (sl->kind[0] == S_SPILL && sl->kind[7] == S_SPILL && sl->spill.type == T_SCALAR &&
                sl->spill.id == r->id)
                sl->spill.v = r->v;
        }
    }
}

/* A branch whose outcome teaches nothing: follow both sides with the
 * current state (the jump queued, the fall-through continued). */
static int branch_both_ways(struct env *e, uint32_t target, uint32_t idx)
{
    struct vstate *other = state_copy(e->cur);
    if (!other)
        return -ENOMEM;
    other->insn = target;
    e->cur->insn = idx + 1;
    int rc = push_state(e, other);
    if (rc)
        state_free(other);
    return rc;
}

/* Returns 1 if the current path became infeasible. */
static int check_cond_jmp(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    uint8_t op = BPF_OP(in->code);
    bool is32 = BPF_CLASS(in->code) == BPF_JMP32;
    uint32_t target = (uint32_t)((int64_t)idx + 1 + in->off);
    int dr = in->dst_reg, rc;
    if ((rc = check_read(e, dr)))
        return rc;
    struct reg src;
    if (BPF_SRC(in->code) == BPF_X) {
        if ((rc = check_read(e, in->src_reg)))
            return rc;
        src = regs(e)[in->src_reg];
    } else {
        mark_const(&src, is32 ? (uint32_t)in->imm : (uint64_t)(int64_t)in->imm);
    }
    struct reg *d = &regs(e)[dr];

    if (is_ptr(d) || is_ptr(&src)) {
        const struct reg *p = is_ptr(d) ? d : &src, *o = is_ptr(d) ? &src : d;
        if (is32)
            return reject(e, "R%d 32-bit comparison of a pointer prohibited", dr);
        if ((op == BPF_JEQ || op == BPF_JNE) && is_null_const(o)) {
            if (is_or_null(p)) {
                struct vstate *other = state_copy(e->cur);
                if (!other)
                    return -ENOMEM;
                uint32_t id = p->id;
                /* on the jump: JEQ taken means null */
                struct vstate *save = e->cur;
                e->cur = other;
                mark_ptr_or_null(e, id, op == BPF_JEQ);
                other->insn = target;
                e->cur = save;
                mark_ptr_or_null(e, id, op != BPF_JEQ);
                e->cur->insn = idx + 1;
                if ((rc = push_state(e, other))) {
                    state_free(other);
                    return rc;
                }
                return 0;
            }
            if (p->type == T_HOST)   /* the host's pointer may be null */
                return branch_both_ways(e, target, idx);
            /* other pointers are never null */
            e->cur->insn = op == BPF_JNE ? target : idx + 1;
            return 0;
        }
        if (is_ptr(d) && is_ptr(&src) && d->type == src.type && d->map_idx == src.map_idx &&
            d->frameno == src.frameno && !is_or_null(d))
            return branch_both_ways(e, target, idx);
        return reject(e, "R%d pointer comparison prohibited (only null checks and same-type pointers)",
                      is_ptr(d) ? dr : in->src_reg);
    }

    int taken = scalar_branch_taken(&d->v, &src.v, op, is32);
    if (taken == 1) {
        e->cur->insn = target;
        return 0;
    }
    if (taken == 0) {
        e->cur->insn = idx + 1;
        return 0;
    }
    bool same = BPF_SRC(in->code) == BPF_X && in->src_reg == dr;
    struct vstate *other = state_copy(e->cur);
    if (!other)
        return -ENOMEM;
    /* taken side */
    struct reg *od = &other->fr[other->nfr - 1]->regs[dr];
    struct reg os = src;
    bool feas_t = same || scalar_refine(&od->v, &os.v, op, true, is32);
    if (feas_t && BPF_SRC(in->code) == BPF_X && !same)
        other->fr[other->nfr - 1]->regs[in->src_reg].v = os.v;
    /* fall-through side */
    struct reg fs = src;
    bool feas_f = same || scalar_refine(&d->v, &fs.v, op, false, is32);
    if (feas_f && BPF_SRC(in->code) == BPF_X && !same)
        regs(e)[in->src_reg].v = fs.v;
    if (feas_t && !same) {
        struct frame *of = other->fr[other->nfr - 1];
        sync_scalar_copies(other, &of->regs[dr]);
        if (BPF_SRC(in->code) == BPF_X)
            sync_scalar_copies(other, &of->regs[in->src_reg]);
    }
    if (feas_f && !same) {
        sync_scalar_copies(e->cur, &regs(e)[dr]);
        if (BPF_SRC(in->code) == BPF_X)
            sync_scalar_copies(e->cur, &regs(e)[in->src_reg]);
    }
    if (feas_t) {
        other->insn = target;
        if ((rc = push_state(e, other))) {
            state_free(other);
            return rc;
        }
    } else {
        state_free(other);
    }
    e->cur->insn = idx + 1;
    return feas_f ? 0 : 1;
}

/* ---- paths, pruning ---- */

static void end_path(struct env *e, uint64_t len)
{
    struct vstate *st = e->cur;
    if (len != 0) {
        if (len > e->max_path)
            e->max_path = len;
        for (struct sstate *s = st->parent; s && s->max_end < len; s = s->parent)
            s->max_end = len;
    }
    for (struct sstate *s = st->parent; s; s = s->parent) {
        if (--s->branches)
            break;
    }
    state_free(st);
    e->cur = NULL;
}

/* 1: pruned (path ended), 0: go on, <0: reject/error */
static int prune_point(struct env *e)
{
    struct vstate *cur = e->cur;
    uint32_t insn = cur->insn;
    struct frame *f = top(e);
    bool cb_entry = f->is_callback && (e->cfg.flags[insn] & CFG_SUBPROG);
    int loop_checks = 0;
    for (struct sstate *s = e->explored[insn]; s; s = s->next) {
        if (s->branches == 0 || (cb_entry && s->cb_entry)) {
            if (!states_cover(&s->st, cur, &e->cfg))
                continue;
            uint64_t len;
            if (s->branches || s->max_end == UINT64_MAX)
                len = UINT64_MAX;   /* bounded by the helper, not by the program */
            else
                len = cur->path_len + (s->max_end > s->depth ? s->max_end - s->depth : 0);
            if (e->log_level >= 2)
                logf_(e, "%u: safe (covered by a verified state)\n", insn);
            end_path(e, len);
            return 1;
        }
        /* a state on the current path repeating exactly: the loop cannot
         * make progress. Only the most recent few are checked (cost); longer
         * cycles run into the budget instead. */
        if (++loop_checks <= 8 && states_cover(&s->st, cur, &e->cfg) &&
            states_cover(cur, &s->st, &e->cfg))
            return reject(e, "infinite loop detected at insn %u: the state repeats without progress", insn);
    }
    if (e->nexplored[insn] >= MAX_STATES_PER_INSN)
        return 0;
    struct sstate *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (state_copy_into(&s->st, cur)) {
        free(s);
        return -ENOMEM;
    }
    s->parent = cur->parent;
    s->branches = 1;
    s->depth = cur->path_len;
    s->cb_entry = cb_entry;
    s->next = e->explored[insn];
    e->explored[insn] = s;
    e->nexplored[insn]++;
    e->stored++;
    cur->parent = s;
    return 0;
}

/* ---- the main loop ---- */

/* A host pointer used as anything but a pointer (arithmetic other than
 * adding constants, 32-bit views, stores outside the stack, other helper or
 * kfunc arguments, comparisons other than null checks, return values) is
 * just the number the class may read: the register becomes a scalar, which
 * no raw-address helper accepts, so no field is reachable through it. */
static void host_degrade_reg(struct reg *r)
{
    if (r->type == T_HOST)
        mark_unknown(r);
}

static void host_degrade(struct env *e, const struct bpf_insn *in)
{
    struct reg *r = regs(e);
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    bool x = BPF_SRC(in->code) == BPF_X;
    switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
        if (op == BPF_MOV) {
            if (x && (cls == BPF_ALU || in->off))
                host_degrade_reg(&r[in->src_reg]);
            return;
        }
        if (cls == BPF_ALU64 && (op == BPF_ADD || op == BPF_SUB) && r[in->dst_reg].type == T_HOST &&
            (!x || r[in->src_reg].type == T_SCALAR || (op == BPF_SUB && r[in->src_reg].type == T_HOST)))
            return;
        host_degrade_reg(&r[in->dst_reg]);
        if (x)
            host_degrade_reg(&r[in->src_reg]);
        return;
    case BPF_STX:
        if (BPF_MODE(in->code) != BPF_MEM || size_bytes(in->code) != 8 || r[in->dst_reg].type != T_STACK)
            host_degrade_reg(&r[in->src_reg]);
        return;
    case BPF_JMP:
    case BPF_JMP32:
        if (op == BPF_JA)
            return;
        if (op == BPF_EXIT) {
            host_degrade_reg(&r[BPF_R0]);
            return;
        }
        if (op == BPF_CALL) {
            if (in->src_reg == BPF_PSEUDO_CALL)
                return;
            uint32_t id = (uint32_t)in->imm;
            for (int i = 0; i < 5; i++) {
                bool keep = in->src_reg == 0 && ((is_probe_read(id) && i == 2) ||
                                                 (id == HELPER_PROBE_WRITE_USER && i == 0));
                if (!keep)
                    host_degrade_reg(&r[BPF_R1 + i]);
            }
            return;
        }
        if (cls == BPF_JMP && (op == BPF_JEQ || op == BPF_JNE) && r[in->dst_reg].type == T_HOST &&
            (x ? is_null_const(&r[in->src_reg]) : in->imm == 0))
            return;
        host_degrade_reg(&r[in->dst_reg]);
        if (x)
            host_degrade_reg(&r[in->src_reg]);
        return;
    default:
        return;
    }
}

static int do_insn(struct env *e, bool *path_done)
{
    uint32_t idx = e->cur->insn;
    const struct bpf_insn *in = &e->insns[idx];
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    int rc;
    *path_done = false;
    if (e->pol->n_host_ptrs)
        host_degrade(e, in);
    switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
        rc = check_alu(e, in);
        e->cur->insn = idx + 1;
        return rc;
    case BPF_LDX:
        rc = check_ldx(e, in);
        e->cur->insn = idx + 1;
        return rc;
    case BPF_ST:
        rc = check_st(e, in);
        e->cur->insn = idx + 1;
        return rc;
    case BPF_STX:
        rc = check_stx(e, in);
        e->cur->insn = idx + 1;
        return rc;
    case BPF_LD:
        rc = check_ld_imm64(e, in, idx);
        e->cur->insn = idx + 2;
        return rc;
    default:
        break;
    }
    if (op == BPF_JA) {
        e->cur->insn = (uint32_t)((int64_t)idx + 1 + (cls == BPF_JMP32 ? in->imm : in->off));
        return 0;
    }
    if (op == BPF_EXIT)
        return check_exit(e, idx, path_done);
    if (op == BPF_CALL) {
        if (in->src_reg == BPF_PSEUDO_CALL)
            return check_local_call(e, in, idx);
        if (in->src_reg == BPF_PSEUDO_KFUNC_CALL)
            return check_kfunc_call(e, in, idx);
        int mi = set_map_value_ret(e, in);
        if (mi < 0)
            return mi;
        rc = check_helper_call(e, in, idx);
        if (rc == 0 && mi > 0) {
            struct reg *r0 = &regs(e)[BPF_R0];
            uint32_t m = (uint32_t)(mi - 1);
            bool outer = is_map_of_maps(map_of(e, m)->type);
            memset(r0, 0, sizeof(*r0));
            /* a map of maps' value is an inner map: a map pointer, typed by
             * the outer map's inner definition */
            r0->type = outer ? T_CONST_MAP_OR_NULL : T_MAP_VALUE_OR_NULL;
            scalar_const(&r0->v, 0);
            r0->map_idx = outer ? e->in->n_maps + m : m;
            r0->id = new_id(e);
        }
        return rc;
    }
    rc = check_cond_jmp(e, in, idx);
    if (rc == 1) {
        *path_done = true;   /* infeasible fall-through */
        return 0;
    }
    return rc;
}

static int explore(struct env *e)
{
    for (;;) {
        if (!e->cur) {
            if (!e->npending)
                return 0;
            e->cur = e->pending[--e->npending];
            if (e->log_level >= 2)
                logf_(e, "from pending state at insn %u:\n", e->cur->insn);
        }
        if (++e->steps > e->max_steps)
            return reject(e, "program too complex: more than %" PRIu64 " instructions explored; a loop may not be bounded or there are too many paths",
                          e->max_steps);
        uint32_t idx = e->cur->insn;
        int rc;
        if (e->cfg.flags[idx] & CFG_PRUNE) {
            rc = prune_point(e);
            if (rc < 0)
                return rc;
            if (rc == 1)
                continue;
        }
        if (e->trace && e->cur->trace_len < TRACE_MAX)
            e->trace[e->cur->trace_len++] = idx;
        if (e->log_level >= 2) {
            char ib[128];
            gvm_insn_str(e->insns, e->n, idx, ib, sizeof(ib));
            char *s = state_str(e->cur);
            logf_(e, "%u: %-32s ;%s\n", idx, ib, s ? s : "");
            free(s);
        }
        e->cur->path_len++;
        bool done;
        rc = do_insn(e, &done);
        if (rc)
            return rc;
        if (done) {
            bool is_exit = BPF_OP(e->insns[idx].code) == BPF_EXIT;
            end_path(e, is_exit ? e->cur->path_len : 0);
        }
    }
}

static uint64_t map_bytes(const struct gmap_def *d)
{
    uint64_t per = (uint64_t)d->key_size + d->value_size;
    return per * (d->max_entries ? d->max_entries : 1);
}

static void free_env(struct env *e)
{
    free(e->inner);
    state_free(e->cur);
    for (uint32_t i = 0; i < e->npending; i++)
        state_free(e->pending[i]);
    free(e->pending);
    if (e->explored) {
        for (uint32_t i = 0; i < e->n; i++) {
            struct sstate *s = e->explored[i];
            while (s) {
                struct sstate *nx = s->next;
                state_release(&s->st);
                free(s);
                s = nx;
            }
        }
    }
    free(e->explored);
    free(e->nexplored);
    free(e->trace);
    cfg_free(&e->cfg);
}

static int run(struct env *e)
{
    int rc = cfg_build(&e->cfg, e->insns, e->n, e->pol->ret_min || e->pol->ret_max,
                       e->pol->allow_ptr_leaks);
    if (rc == -1) {
        snprintf(e->reason, sizeof(e->reason), "%s", e->cfg.reason);
        e->fail_insn = e->cfg.fail_insn;
        return REJECT;
    }
    if (rc)
        return rc;
    /* maps used and the memory budget */
    uint64_t mem = 0;
    for (uint32_t i = 0; i < e->in->n_maps; i++)
        mem += map_bytes(&e->in->maps[i]);
    if (e->pol->mem_budget && mem > e->pol->mem_budget) {
        snprintf(e->reason, sizeof(e->reason),
                 "memory budget exceeded: the program's maps take about %" PRIu64 " bytes, the policy allows %" PRIu64,
                 mem, e->pol->mem_budget);
        return REJECT;
    }
    e->explored = calloc(e->n, sizeof(*e->explored));
    e->nexplored = calloc(e->n, sizeof(*e->nexplored));
    if (!e->explored || !e->nexplored)
        return -ENOMEM;
    if (e->log_level >= 1) {
        e->trace = malloc(TRACE_MAX * sizeof(uint32_t));
        if (!e->trace)
            return -ENOMEM;
    }
    e->cur = calloc(1, sizeof(*e->cur));
    if (!e->cur)
        return -ENOMEM;
    e->cur->fr[0] = frame_new(0, -1);
    if (!e->cur->fr[0])
        return -ENOMEM;
    e->cur->nfr = 1;
    struct reg *r1 = &e->cur->fr[0]->regs[BPF_R1];
    r1->type = T_CTX;
    scalar_const(&r1->v, 0);
    rc = explore(e);
    if (rc)
        return rc;
    if (e->pol->insn_budget && e->max_path > e->pol->insn_budget) {
        if (e->max_path == UINT64_MAX)
            snprintf(e->reason, sizeof(e->reason),
                     "instruction budget %" PRIu64 " cannot be proven: a helper-driven loop (bpf_loop) has no static bound",
                     e->pol->insn_budget);
        else
            snprintf(e->reason, sizeof(e->reason),
                     "instruction budget exceeded: the worst-case path runs %" PRIu64 " instructions, the policy allows %" PRIu64,
                     e->max_path, e->pol->insn_budget);
        return REJECT;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const struct ghelper_proto *default_proto(uint32_t id)
{
    return ghelper_proto(id);
}

int gver_verify(const struct gver_input *in, struct gver_result *out, struct graft_err *err)
{
    if (!in || !out || (!in->insns && in->n))
        return graft_errf(err, -EINVAL, "gver_verify: missing input or result");
    memset(out, 0, sizeof(*out));
    out->fail_insn = -1;
    if (in->n > BPF_MAX_INSNS)
        return graft_errf(err, -E2BIG, "program of %u instructions exceeds the limit of %d", in->n, BPF_MAX_INSNS);
    if (in->n_maps && !in->maps)
        return graft_errf(err, -EINVAL, "gver_verify: n_maps=%u but no map table", in->n_maps);
    double t0 = now_ms();
    struct gver_policy *own = NULL;
    struct env e;
    memset(&e, 0, sizeof(e));
    e.in = in;
    e.insns = in->insns;
    e.n = in->n;
    e.pol = in->policy;
    if (!e.pol) {
        own = gver_policy_raw(0);
        if (!own)
            return graft_errf(err, -ENOMEM, "out of memory");
        e.pol = own;
    }
    e.proto = e.pol->helper_proto ? e.pol->helper_proto : default_proto;
    e.max_steps = e.pol->max_states ? e.pol->max_states : 1000000;
    e.log_level = in->log_level;
    e.fail_insn = -1;

    int rc = make_inner_defs(&e) < 0 ? graft_errf(err, -ENOMEM, "out of memory") : run(&e);
    out->ms = now_ms() - t0;
    out->states_explored = e.steps;
    out->states_stored = e.stored;
    out->max_stack_depth = e.max_stack;
    out->max_path_insns = e.max_path;
    if (rc == REJECT) {
        out->accepted = 0;
        out->fail_insn = e.fail_insn;
        snprintf(out->reason, sizeof(out->reason), "%s", e.reason);
        if (e.log_level >= 1 && e.cur && e.trace) {
            uint32_t len = e.cur->trace_len, from = len > 4000 ? len - 4000 : 0;
            logf_(&e, "path to the rejection (%u insns%s):\n", len, from ? ", last 4000 shown" : "");
            for (uint32_t i = from; i < len; i++)
                log_insn(&e, e.trace[i]);
        }
        if (e.fail_insn >= 0 && (uint64_t)e.fail_insn < e.n && !(e.log_level >= 1 && e.cur && e.trace)) {
            char ib[128];
            gvm_insn_str(e.insns, e.n, (uint32_t)e.fail_insn, ib, sizeof(ib));
            logf_(&e, "%" PRId64 ": %s\n", e.fail_insn, ib);
        }
        if (e.cur && e.log_level >= 1)
            log_state(&e, "state:");
        logf_(&e, "%s\n", e.reason);
        graft_errf(err, -EACCES, "insn %" PRId64 ": %s", e.fail_insn, e.reason);
        rc = 0;
    } else if (rc == 0) {
        out->accepted = 1;
        logf_(&e, "accepted: %" PRIu64 " insns explored, %" PRIu64 " states stored, max stack %u, worst path %" PRIu64 " insns\n",
              e.steps, e.stored, e.max_stack, e.max_path);
    } else {
        graft_errf(err, rc, "verifier: out of memory");
    }
    out->log = e.log;
    e.log = NULL;
    if (!out->log)
        out->log = calloc(1, 1);
    free_env(&e);
    free(own);
    return rc;
}

void gver_result_free(struct gver_result *res)
{
    if (res) {
        free(res->log);
        res->log = NULL;
    }
}
