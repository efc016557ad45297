/*
 * state.c - the abstract machine state: copying, freeing, printing, and the
 * "old covers new" test used for pruning.
 *
 * Invariant: if states_cover(old, cur) holds at an instruction, every
 * concrete machine state described by cur is also described by old (for the
 * registers and stack bytes that can still be read), so everything proved
 * from old holds for cur too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verifier/vpriv.h"

const char *reg_type_name(uint8_t t)
{
    static const char *names[] = {
        [T_NOT_INIT] = "not_init", [T_SCALAR] = "scalar", [T_CTX] = "ctx",
        [T_STACK] = "fp", [T_MAP_VALUE] = "map_value",
        [T_MAP_VALUE_OR_NULL] = "map_value_or_null", [T_MAP_KEY] = "map_key",
        [T_MEM] = "mem", [T_MEM_OR_NULL] = "mem_or_null",
        [T_CONST_MAP] = "map_ptr", [T_FUNC] = "func", [T_CONST_MAP_OR_NULL] = "map_ptr_or_null",
        [T_HOST] = "host_ptr", [T_PACKET] = "pkt", [T_PACKET_META] = "pkt_meta",
        [T_PACKET_END] = "pkt_end", [T_SOCK] = "sock", [T_SOCK_OR_NULL] = "sock_or_null",
        [T_SOCK_COMMON] = "sock_common", [T_SOCK_COMMON_OR_NULL] = "sock_common_or_null",
        [T_TCP_SOCK] = "tcp_sock", [T_TCP_SOCK_OR_NULL] = "tcp_sock_or_null",
        [T_XDP_SOCK] = "xdp_sock", [T_XDP_SOCK_OR_NULL] = "xdp_sock_or_null",
        [T_BTF_SOCK] = "ptr_sock", [T_BTF_SOCK_OR_NULL] = "ptr_sock_or_null",
        [T_BTF] = "ptr_to_btf_id", [T_BTF_OR_NULL] = "ptr_to_btf_id_or_null",
        [T_ITER] = "iter",
    };
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* ---- recycling ----
 *
 * A verification allocates and frees frames by the hundred thousand: one
 * copy per stored state, per fork and per speculative path. A frame
 * (1.7 KB) is beyond malloc's per-thread cache, so each took malloc's slow
 * path (a fifth of the verifier's time on large programs). Freed frames,
 * with their slot arrays, and freed states wait in per-thread lists for
 * the next copy; gver_verify empties the lists when it returns, so no
 * memory outlives a verification. The lists are short (POOL_MAX): most
 * frames belong to stored states, freed when the exploration ends, and
 * thousands of frames freed at once were given back to the kernel by
 * malloc and faulted in again by the next verification (4096: three times
 * the page faults of 256). Sanitizer builds keep none: a reused
 * frame would hide a use after free from ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_MAX 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_MAX 0
#endif
#endif
#ifndef POOL_MAX
#define POOL_MAX 256
#endif
static const uint32_t pool_max = POOL_MAX;

union pooled_frame {
    union pooled_frame *next;
    struct frame f;
};

union pooled_state {
    union pooled_state *next;
    struct vstate s;
};

static _Thread_local union pooled_frame *frame_pool;
static _Thread_local union pooled_state *state_pool;
static _Thread_local uint32_t frame_pool_n, state_pool_n;

/* A frame whose fields are garbage except slots / slots_cap (an array of
 * slots_cap slots, or NULL and 0). */
static struct frame *frame_alloc(void)
{
    union pooled_frame *p = frame_pool;
    if (p) {
        frame_pool = p->next;
        frame_pool_n--;
        return &p->f;
    }
    struct frame *f = malloc(sizeof(union pooled_frame));
    if (f) {
        f->slots = NULL;
        f->slots_cap = 0;
    }
    return f;
}

static struct vstate *state_alloc(void)
{
    union pooled_state *p = state_pool;
    if (p) {
        state_pool = p->next;
        state_pool_n--;
        return &p->s;
    }
    return malloc(sizeof(union pooled_state));
}

static void state_dealloc(struct vstate *s)
{
    if (state_pool_n >= pool_max) {
        free(s);
        return;
    }
    union pooled_state *p = (union pooled_state *)s;
    p->next = state_pool;
    state_pool = p;
    state_pool_n++;
}

void state_pool_drain(void)
{
    while (frame_pool) {
        union pooled_frame *p = frame_pool;
        frame_pool = p->next;
        free(p->f.slots);
        free(p);
    }
    while (state_pool) {
        union pooled_state *p = state_pool;
        state_pool = p->next;
        free(p);
    }
    frame_pool_n = state_pool_n = 0;
}

struct frame *frame_new(uint32_t frameno, int32_t callsite)
{
    struct frame *f = frame_alloc();
    if (!f)
        return NULL;
    struct slot *buf = f->slots;
    uint32_t cap = f->slots_cap;
    memset(f, 0, sizeof(*f));
    f->slots = buf;
    f->slots_cap = cap;
    f->frameno = frameno;
    f->callsite = callsite;
    f->regs[BPF_R10].type = T_STACK;
    f->regs[BPF_R10].frameno = (uint8_t)frameno;
    scalar_const(&f->regs[BPF_R10].v, 0);
    return f;
}

static struct frame *frame_copy(const struct frame *src)
{
    struct frame *f = frame_alloc();
    if (!f)
        return NULL;
    struct slot *buf = f->slots;
    uint32_t cap = f->slots_cap;
    if (src->nslots > cap) {
        free(buf);
        cap = src->nslots;
        if (!(buf = malloc(cap * sizeof(struct slot)))) {
            free(f);
            return NULL;
        }
    }
    *f = *src;
    f->slots = buf;
    f->slots_cap = cap;
    if (src->nslots)
        memcpy(f->slots, src->slots, src->nslots * sizeof(struct slot));
    return f;
}

void frame_free(struct frame *f)
{
    if (!f)
        return;
    if (frame_pool_n >= pool_max) {
        free(f->slots);
        free(f);
        return;
    }
    union pooled_frame *p = (union pooled_frame *)f;
    struct slot *buf = f->slots;
    uint32_t cap = f->slots_cap;
    p->next = frame_pool;
    p->f.slots = buf;           /* next overlays regs, not these */
    p->f.slots_cap = cap;
    frame_pool = p;
    frame_pool_n++;
}

struct vstate *state_copy(const struct vstate *src)
{
    struct vstate *s = state_alloc();
    if (!s)
        return NULL;
    *s = *src;
    for (uint32_t i = 0; i < src->nfr; i++) {
        s->fr[i] = frame_copy(src->fr[i]);
        if (!s->fr[i]) {
            s->nfr = i;
            state_free(s);
            return NULL;
        }
    }
    return s;
}

int state_copy_into(struct vstate *dst, const struct vstate *src)
{
    *dst = *src;
    for (uint32_t i = 0; i < src->nfr; i++) {
        dst->fr[i] = frame_copy(src->fr[i]);
        if (!dst->fr[i]) {
            dst->nfr = i;
            state_release(dst);
            return -1;
        }
    }
    return 0;
}

void state_release(struct vstate *s)
{
    for (uint32_t i = 0; i < s->nfr; i++)
        frame_free(s->fr[i]);
    s->nfr = 0;
}

void state_free(struct vstate *s)
{
    if (s) {
        state_release(s);
        state_dealloc(s);
    }
}

struct slot *frame_slot(struct frame *f, uint32_t s, bool grow)
{
    if (s >= f->nslots) {
        if (!grow)
            return NULL;
        if (s >= f->slots_cap) {
            struct slot *n = realloc(f->slots, (s + 1) * sizeof(*n));
            if (!n)
                return NULL;
            f->slots = n;
            f->slots_cap = s + 1;
        }
        memset(f->slots + f->nslots, 0, (s + 1 - f->nslots) * sizeof(struct slot));
        f->nslots = s + 1;
    }
    return &f->slots[s];
}

/* ---- printing ---- */

int reg_str(char *buf, size_t len, const struct reg *r)
{
    char v[160];
    switch (r->type) {
    case T_NOT_INIT:
        return snprintf(buf, len, "?");
    case T_SCALAR:
        scalar_str(v, sizeof(v), &r->v);
        if (scalar_is_const(&r->v))
            return snprintf(buf, len, "%s", v);
        return snprintf(buf, len, "scalar(%s)", v);
    default:
        break;
    }
    int n = 0;
    if (r->type == T_STACK && r->off == 0)
        n = snprintf(buf, len, "fp%u", r->frameno);
    else if (r->type == T_STACK)
        n = snprintf(buf, len, "fp%u%+d", r->frameno, r->off);
    else
        n = snprintf(buf, len, "%s(off=%d", reg_type_name(r->type), r->off);
    if (n < 0 || (size_t)n >= len)
        return n;
    if (!scalar_is_const(&r->v) || r->v.t.value) {
        scalar_str(v, sizeof(v), &r->v);
        n += snprintf(buf + n, len - n, "%svar=%s", r->type == T_STACK ? "(" : ",", v);
        if (r->type == T_STACK && (size_t)n < len)
            n += snprintf(buf + n, len - n, ")");
    }
    if ((size_t)n >= len || r->type == T_STACK)
        return n;
    if (r->type == T_MAP_VALUE || r->type == T_MAP_VALUE_OR_NULL || r->type == T_CONST_MAP ||
        r->type == T_CONST_MAP_OR_NULL || r->type == T_MAP_KEY)
        n += snprintf(buf + n, len - n, ",map=%u", r->map_idx);
    if ((r->type == T_MEM || r->type == T_MEM_OR_NULL) && (size_t)n < len)
        n += snprintf(buf + n, len - n, ",size=%u", r->mem_size);
    if (r->id && (size_t)n < len)
        n += snprintf(buf + n, len - n, ",id=%u", r->id);
    if ((r->type == T_PACKET || r->type == T_PACKET_META) && (size_t)n < len)
        n += snprintf(buf + n, len - n, ",r=%u%s", r->range,
                      r->pkt_end == PKT_PAST_END ? ",past_end" : r->pkt_end == PKT_AT_END ? ",at_end" : "");
    if (r->ref_id && (size_t)n < len)
        n += snprintf(buf + n, len - n, ",ref=%u", r->ref_id);
    if (r->type == T_FUNC && (size_t)n < len)
        n += snprintf(buf + n, len - n, ",insn=%d", r->func);
    if ((size_t)n < len)
        n += snprintf(buf + n, len - n, ")");
    return n;
}

/* "R0=... R1=ctx(off=0) fp-8=spill(...) fp-16=mmmm????" into a malloc'd string. */
char *state_str(const struct vstate *st)
{
    size_t cap = 1024, len = 0;
    char *out = malloc(cap);
    char rb[400];
    if (!out)
        return NULL;
    out[0] = 0;
#define APPEND(...)                                                              \
    do {                                                                         \
        int k_ = snprintf(rb, sizeof(rb), __VA_ARGS__);                          \
        if (k_ < 0) k_ = 0;                                                      \
        if ((size_t)k_ >= sizeof(rb)) k_ = sizeof(rb) - 1;                       \
        if (len + k_ + 1 > cap) {                                                \
            char *n_ = realloc(out, cap * 2 + k_);                               \
            if (!n_) return out;                                                 \
            out = n_; cap = cap * 2 + k_;                                        \
        }                                                                        \
        memcpy(out + len, rb, k_ + 1); len += k_;                                \
    } while (0)
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        const struct frame *f = st->fr[fi];
        if (st->nfr > 1)
            APPEND("%sframe%u:", fi ? " | " : "", fi);
        for (int r = 0; r < BPF_NREGS; r++) {
            if (f->regs[r].type == T_NOT_INIT)
                continue;
            char b[300];
            reg_str(b, sizeof(b), &f->regs[r]);
            APPEND(" R%d=%s", r, b);
        }
        for (uint32_t s = 0; s < f->nslots; s++) {
            const struct slot *sl = &f->slots[s];
            char b[300];
            int any = 0;
            for (int k = 0; k < 8; k++)
                any |= sl->kind[k];
            if (!any)
                continue;
            if (sl->kind[0] == S_SPILL && memchr(sl->kind, S_MISC, 8) == NULL &&
                memchr(sl->kind, S_ZERO, 8) == NULL && memchr(sl->kind, S_INVALID, 8) == NULL) {
                reg_str(b, sizeof(b), &sl->spill);
                APPEND(" fp-%u=%s", (s + 1) * 8, b);
            } else {
                char m[9];
                for (int k = 0; k < 8; k++)
                    m[7 - k] = "?m0r"[sl->kind[k]];
                m[8] = 0;
                APPEND(" fp-%u=%s", (s + 1) * 8, m);
            }
        }
    }
    if (st->nrefs) {
        APPEND(" refs=");
        for (uint32_t i = 0; i < st->nrefs; i++)
            APPEND("%s%u", i ? "," : "", st->refs[i].id);
    }
    if (st->lock_map)
        APPEND(" lock=map%u+%d", st->lock_map - 1, st->lock_off);
#undef APPEND
    return out;
}

/* ---- "old covers new" ---- */

#define IDMAP_MAX 64
struct idmap {
    uint32_t old_id[IDMAP_MAX], cur_id[IDMAP_MAX];
    uint32_t n;
    bool exact;                /* values that matter must be equal (states_cover) */
};

static bool values_cover(const struct idmap *m, const struct scalar *o, const struct scalar *c)
{
    return scalar_covers(o, c) && (!m->exact || scalar_covers(c, o));
}

/* ids are per path; two states match when their ids correspond 1:1. */
static bool id_match(struct idmap *m, uint32_t o, uint32_t c)
{
    if (!o && !c)
        return true;
    if (!o || !c)
        return false;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->old_id[i] == o)
            return m->cur_id[i] == c;
        if (m->cur_id[i] == c)
            return false;
    }
    if (m->n == IDMAP_MAX)
        return false;
    m->old_id[m->n] = o;
    m->cur_id[m->n++] = c;
    return true;
}

static bool reg_covers(const struct reg *o, const struct reg *c, struct idmap *m, bool precise)
{
    if (o->type == T_NOT_INIT)
        return true;       /* old never read it: any value is fine */
    if (o->type != c->type)
        return false;
    if (o->type == T_SCALAR) {
        if (o->arena != c->arena)
            return false;          /* one may be dereferenced, the other not */
        if (!precise)
            return true;
        /* old learnt bounds for its copies through branches: cur must link the same registers */
        if (o->id && !id_match(m, o->id, c->id))
            return false;
        return values_cover(m, &o->v, &c->v);
    }
    if (o->off != c->off || o->frameno != c->frameno || o->map_idx != c->map_idx || o->rdonly != c->rdonly ||
        o->mem_size != c->mem_size || o->func != c->func || o->pkt_end != c->pkt_end)
        return false;
    /* a packet pointer: cur must have proven at least old's range */
    if (o->range > c->range)
        return false;
    if (!values_cover(m, &o->v, &c->v))
        return false;
    return id_match(m, o->id, c->id) && id_match(m, o->ref_id, c->ref_id);
}

/* need: slots whose scalar contents may matter; in the others, any scalar
 * data (spilled scalar, misc or zero bytes) covers any other. */
static bool stack_covers(const struct frame *o, const struct frame *c, struct idmap *m, uint64_t need)
{
    static const struct slot empty;
    uint32_t n = o->nslots > c->nslots ? o->nslots : c->nslots;
    for (uint32_t s = 0; s < n; s++) {
        const struct slot *os = s < o->nslots ? &o->slots[s] : &empty;
        const struct slot *cs = s < c->nslots ? &c->slots[s] : &empty;
        bool spill_checked = false;
        bool precise = s >= 64 || ((need >> s) & 1);
        for (int k = 0; k < 8; k++) {
            uint8_t ok = os->kind[k], ck = cs->kind[k];
            /* An uninitialised byte covers anything, unless the policy lets
             * it be read (allow_uninit_stack: as an unknown scalar), when
             * it covers only scalar data, not a spilled pointer. */
            if (ok == S_INVALID && !(ck == S_SPILL && cs->spill.type != T_SCALAR))
                continue;
            if (ok == S_INVALID)
                return false;
            if (ck == S_INVALID)
                return false;
            if (!precise) {
                bool o_scalar = ok != S_SPILL || os->spill.type == T_SCALAR;
                bool c_scalar = ck != S_SPILL || cs->spill.type == T_SCALAR;
                if (o_scalar && c_scalar)
                    continue;
            }
            if (ok == S_SPILL || (ck == S_SPILL && cs->spill.type != T_SCALAR)) {
                if (ok != ck)
                    return false;
                if (!spill_checked) {
                    if (!reg_covers(&os->spill, &cs->spill, m, true))
                        return false;
                    spill_checked = true;
                }
                continue;
            }
            if (ok == S_ZERO) {
                if (ck == S_ZERO)
                    continue;
                if (ck == S_SPILL && scalar_is_const(&cs->spill.v) && cs->spill.v.t.value == 0)
                    continue;
                return false;
            }
            /* old MISC: cur MISC, ZERO or a spilled scalar all read as scalars */
        }
    }
    return true;
}

bool states_cover(const struct vstate *o, const struct vstate *c, const struct cfg *cfg, bool exact)
{
    /* what speculation alone reaches proves nothing for a real path */
    if (o->speculative && !c->speculative)
        return false;
    /* id_match reads only the first n pairs: zeroing the arrays (512
     * bytes, most of this function's cost when it fails early) is not
     * needed */
    struct idmap m;
    m.n = 0;
    m.exact = exact;
    if (o->nfr != c->nfr || o->lock_map != c->lock_map || o->lock_off != c->lock_off ||
        o->nrefs != c->nrefs || !id_match(&m, o->lock_id, c->lock_id))
        return false;
    for (uint32_t i = 0; i < o->nrefs; i++)
        if (!id_match(&m, o->refs[i].id, c->refs[i].id))
            return false;
    for (uint32_t fi = 0; fi < o->nfr; fi++) {
        const struct frame *of = o->fr[fi], *cf = c->fr[fi];
        if (of->callsite != cf->callsite || of->is_callback != cf->is_callback)
            return false;
        uint16_t live, prec;
        uint64_t need;
        if (fi + 1 == o->nfr) {
            live = cfg->live_in[c->insn];
            prec = cfg->prec_in[c->insn];
            need = cfg->slot_need[c->insn];
        } else {
            uint32_t call = (uint32_t)o->fr[fi + 1]->callsite;
            live = cfg->live_in[call + 1] & 0x3c0;   /* r6-r9 survive a call */
            prec = cfg->prec_in[call + 1];
            need = cfg->slot_need[call];              /* before: the callee may read them */
        }
        for (int r = 0; r < BPF_R10; r++) {
            if (!(live & (1u << r)))
                continue;
            if (!reg_covers(&of->regs[r], &cf->regs[r], &m, (prec >> r) & 1))
                return false;
        }
        if (of->is_callback) {
            for (int r = 0; r < 5; r++)
                if (!reg_covers(&of->cb_args[r], &cf->cb_args[r], &m, true))
                    return false;
        }
        if (!stack_covers(of, cf, &m, need))
            return false;
    }
    return true;
}
