/*
 * stack.c - the verifier's model of the stack: 8-byte slots of per-byte
 * kinds (uninitialised, data, known zero, spilled register), reads and
 * writes at fixed and variable offsets, spills and what is left when a
 * spill is partly overwritten, and the writes helpers and kfuncs make.
 */
#include "verifier/env.h"

void update_stack_depth(struct env *e, struct frame *f, int64_t lowest)
{
    uint32_t d = (uint32_t)((-lowest + 7) & ~7);
    if (d > f->depth) {
        f->depth = d;
        kstack_note(e, f);
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < e->cur->nfr; i++)
        total += e->cur->fr[i]->depth;
    if (total > e->max_stack)
        e->max_stack = total;
}

/* ---- the stack ---- */

uint8_t *byte_kind(struct frame *f, int64_t off, bool grow, struct slot **sl)
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
uint8_t spill_remains(const struct env *e, const struct reg *spilled)
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

int stack_write_fixed(struct env *e, struct frame *f, int64_t off, unsigned size,
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
        if (sl->kind[0] == S_SPILL && sl->spill.type == T_ITER)
            return reject(e, "cannot overwrite the iterator at fp%+" PRId64 ": destroy it first", off);
        memset(sl->kind, S_SPILL, 8);
        sl->spill = *val;
        return 0;
    }
    if (size < 8 && (off % 8) == 0 && val && val->type == T_SCALAR && scalar_fits(&val->v, size)) {
        /* A narrow spill at the start of a slot of a number that fits its
         * size (as the kernel keeps them for root): the slot's first size
         * bytes are the number's low bytes, which are all of it. Any other
         * spill in the slot is partly overwritten and lost; the other
         * bytes keep what they were. */
        struct slot *sl;
        if (!byte_kind(f, off, true, &sl))
            return -ENOMEM;
        if (sl->kind[0] == S_SPILL && sl->spill.type == T_ITER)
            return reject(e, "cannot overwrite the iterator at fp%+" PRId64 ": destroy it first", off);
        if (memchr(sl->kind, S_SPILL, 8))
            break_spill(e, sl);
        memset(sl->kind, S_SPILL, size);
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
        if (*k == S_SPILL && sl->spill.type == T_ITER)
            return reject(e, "cannot overwrite the iterator at fp%+" PRId64 ": destroy it first", off + b);
        if (*k == S_SPILL)
            break_spill(e, sl);
        *k = kind;
    }
    return 0;
}

int stack_write_var(struct env *e, struct frame *f, int64_t lo, int64_t hi_end,
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
int stack_read_fixed(struct env *e, struct frame *f, int64_t off, unsigned size,
                     struct reg *dst, int ptrno, bool sext)
{
    struct slot *sl = NULL;
    uint8_t *k0 = byte_kind(f, off, false, &sl);
    if (dst && size == 8 && (off % 8) == 0 && k0 && memchr(sl->kind, S_SPILL, 8) == sl->kind &&
        sl->kind[1] == S_SPILL && sl->kind[2] == S_SPILL && sl->kind[3] == S_SPILL &&
        sl->kind[4] == S_SPILL && sl->kind[5] == S_SPILL && sl->kind[6] == S_SPILL &&
        sl->kind[7] == S_SPILL) {
        if (sl->spill.type == T_ITER)
            return reject(e, "invalid read from stack R%d off=%" PRId64 ": an iterator's state cannot be read",
                          ptrno, off);
        *dst = sl->spill;
        return 0;
    }
    bool all_zero = true, one_spill = true;
    struct slot *first = NULL;
    for (unsigned b = 0; b < size; b++) {
        struct slot *s;
        uint8_t *k = byte_kind(f, off + b, false, &s);
        uint8_t kind = k ? *k : S_INVALID;
        if (kind == S_INVALID && e->pol->allow_uninit_stack) {
            all_zero = one_spill = false;    /* an unknown value */
            continue;
        }
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
    int64_t in_slot = ((off % 8) + 8) % 8;
    if (one_spill && in_slot == 0 && first->spill.type == T_SCALAR) {
        /* The first bytes of a spilled number (all of a narrow spill, or
         * the low part of a wider one): its value cut to size. The copy
         * stays linked to the spilled register only if nothing was cut. */
        *dst = first->spill;
        if (!scalar_fits(&dst->v, size)) {
            scalar_trunc_size(&dst->v, size);
            dst->id = 0;
        }
        if (sext) {
            scalar_sext_size(&dst->v, size);
            dst->id = 0;
        }
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

int stack_read_var(struct env *e, struct frame *f, int64_t lo, int64_t hi_end,
                   struct reg *dst, int ptrno, unsigned size, bool sext)
{
    for (int64_t o = lo; o < hi_end; o++) {
        struct slot *s;
        uint8_t *k = byte_kind(f, o, false, &s);
        uint8_t kind = k ? *k : S_INVALID;
        if (kind == S_INVALID && e->pol->allow_uninit_stack)
            continue;
        if (kind == S_INVALID)
            return reject(e, "invalid variable-offset read from stack R%d range fp%+" PRId64 "..fp%+" PRId64 " size=%u: byte fp%+" PRId64 " uninitialised",
                          ptrno, lo, hi_end, size, o);
        /* root's kernel programs may hand a spilled pointer's bytes to a
         * helper (dst NULL), never an iterator's */
        if (kind == S_SPILL && s->spill.type != T_SCALAR &&
            !(!dst && e->pol->kctx && e->pol->allow_ptr_leaks && s->spill.type != T_ITER))
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

/* Every byte the write may touch loses what was known of it (a spilled
 * value, known zero): it may now hold anything. Only the bytes surely
 * written become initialised; the others stay uninitialised if they were
 * (issue 14: a spill beyond the smallest size or offset used to survive). */
int apply_stack_write(struct env *e, const struct pending_write *pw)
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
