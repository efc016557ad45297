/*
 * access.c - loads, stores and atomics: the address range an access may
 * touch, and the rules of each memory it may reach (stack, context, map
 * values and keys, helper memory, host pointers); LD_IMM64 pseudo sources.
 */
#include "verifier/env.h"

int check_read(struct env *e, int regno)
{
    if (regs(e)[regno].type == T_NOT_INIT)
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    return 0;
}

/* The byte range [*lo, *hi_end) a pointer access may touch, from the
 * pointer's fixed and variable offsets. */
int access_range(struct env *e, int regno, const struct reg *p, int64_t insn_off,
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

int check_region(struct env *e, int regno, const struct reg *p, int64_t insn_off,
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

int check_ctx_access(struct env *e, int regno, const struct reg *p, int64_t insn_off,
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

bool map_is_rdonly(const struct gmap_def *d)
{
    return (d->map_flags & GMAP_F_RDONLY_PROG) != 0;
}

/* BPF_F_WRONLY_PROG: the program may only write the value (the host reads
 * it); a load, an atomic update or a helper reading it is refused, as the
 * kernel's "read from map forbidden". */
bool map_is_wronly(const struct gmap_def *d)
{
    return (d->map_flags & GMAP_F_WRONLY_PROG) != 0;
}

/* A load from a frozen read-only array at a constant offset reads a known
 * constant (gver_input.map_frozen). */
static void frozen_read(struct env *e, const struct reg *p, int64_t insn_off, unsigned size, bool sext,
                        struct reg *dst)
{
    if (!e->in->map_frozen || p->map_idx >= e->in->n_maps || !e->in->map_frozen[p->map_idx])
        return;
    const struct gmap_def *d = map_of(e, p->map_idx);
    if (d->type != GMAP_ARRAY || d->max_entries != 1 || !map_is_rdonly(d) || !scalar_is_const(&p->v))
        return;
    int64_t off = p->off + insn_off + (int64_t)p->v.t.value;
    if (off < 0 || (uint64_t)off + size > d->value_size || (size != 1 && size != 2 && size != 4 && size != 8))
        return;
    uint64_t v = 0;
    memcpy(&v, (const uint8_t *)e->in->map_frozen[p->map_idx] + off, size);   /* x86-64: little-endian */
    if (sext && size < 8) {
        unsigned sh = 64 - 8 * size;
        v = (uint64_t)((int64_t)(v << sh) >> sh);
    }
    mark_const(dst, v);
}

/* Bytes [lo, hi) of map map_idx's value may be reached: refuse them when
 * they may overlap the value's spin lock word. The lock word holds its
 * owner's thread id: a program that wrote a live thread's id there would
 * make the next bpf_spin_lock wait for that thread; reading it would show
 * host thread ids. Only bpf_spin_lock/unlock reach it. */
int check_lock_word(struct env *e, int regno, uint32_t map_idx, int64_t lo, int64_t hi)
{
    int32_t lock = map_lock_off(e, map_idx);
    if (lock < 0)
        return 0;
    if (lo < (int64_t)lock + 4 && hi > lock)
        return reject(e, "R%d bpf_spin_lock cannot be accessed directly by load/store: bytes %" PRId64 "..%" PRId64
                      " may overlap the lock at off=%d of map '%s'",
                      regno, lo, hi - 1, lock, map_of(e, map_idx)->name);
    return 0;
}

/* The kptr slot of map map_idx's value that bytes [lo, hi) may overlap,
 * or -1 (gver_input.map_kptrs). */
int map_kptr_overlap(struct env *e, uint32_t map_idx, int64_t lo, int64_t hi)
{
    if (!e->in->map_kptrs || map_idx >= e->in->n_maps)
        return -1;
    const struct gver_map_kptrs *k = &e->in->map_kptrs[map_idx];
    for (uint32_t i = 0; i < k->n && i < GVER_MAX_KPTRS; i++)
        if (lo < (int64_t)k->off[i] + 8 && hi > (int64_t)k->off[i])
            return (int)i;
    return -1;
}

/* A load or store reaching a kptr slot of a map value: the kernel's rules
 * (check_map_access / check_map_kptr_access), see gver_input.map_kptrs. */
static int check_kptr_access(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
                             enum acc acc, const struct reg *val, int64_t lo, int64_t hi)
{
    int k = map_kptr_overlap(e, p->map_idx, lo, hi);
    if (k < 0)
        return 0;
    const struct gver_map_kptrs *kp = &e->in->map_kptrs[p->map_idx];
    uint32_t koff = kp->off[k];
    if (!scalar_is_const(&p->v))
        return reject(e, "R%d kptr access cannot have variable offset (kptr at off=%u)", regno, koff);
    int64_t off = p->off + insn_off + (int64_t)p->v.t.value;
    if (off != (int64_t)koff)
        return reject(e, "R%d kptr access misaligned expected=%u off=%" PRId64, regno, koff, off);
    if (size != 8)
        return reject(e, "R%d kptr access size must be BPF_DW (kptr at off=%u, size %u)", regno, koff, size);
    if (acc == ACC_READ)
        return 0;
    const struct bpf_insn *in = &e->insns[e->cur->insn];
    if (acc == ACC_RMW || BPF_MODE(in->code) != BPF_MEM)
        return reject(e, "kptr in map can only be accessed using BPF_LDX/BPF_STX/BPF_ST (kptr at off=%u)", koff);
    if (kp->kind[k] != GVER_KPTR_UNREF)
        return reject(e, "store to referenced kptr disallowed (off=%u): only bpf_kptr_xchg moves it", koff);
    if (BPF_CLASS(in->code) == BPF_ST) {
        if (in->imm)
            return reject(e, "BPF_ST imm must be 0 when storing to kptr at off=%u", koff);
        return 0;
    }
    /* STX: NULL, or a kernel pointer of the kptr's type (none offline) */
    if (val && is_null_const(val))
        return 0;
    return reject(e, "invalid kptr access, R%d type=%s: a kptr at off=%u takes NULL or a kernel pointer of its "
                  "type", in->src_reg, val ? reg_type_name(val->type) : "?", koff);
}

/* The kernel's check_ptr_alignment (gver_policy.strict_align): under
 * strict alignment an access of size > 1 through p must be size-aligned for
 * every value of p's variable offset; packet data counts from NET_IP_ALIGN
 * (2 on the architectures the rule is for). The kernel holds stack
 * accesses to it always: its spill tracking assumes aligned slots. */
static int check_align(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size)
{
    const char *what;
    int64_t base = 0;
    switch (p->type) {
    case T_PACKET: case T_PACKET_META: what = "packet"; base = 2; break;
    case T_STACK: what = "stack"; break;
    case T_MAP_VALUE: what = "value"; break;
    case T_MAP_KEY: what = "key"; break;
    case T_CTX: what = "context"; break;
    case T_MEM: what = "mem"; break;
    case T_SOCK: case T_SOCK_COMMON: case T_TCP_SOCK: case T_XDP_SOCK: what = "sock"; break;
    case T_BTF: what = "kernel object"; break;
    default: return 0;         /* not dereferenceable: the access check says why */
    }
    bool strict = e->pol->strict_align || (p->type == T_STACK && e->pol->kctx);
    if (!strict || size <= 1)
        return 0;
    struct tnum t = tnum_add(p->v.t, tnum_const((uint64_t)(base + p->off + insn_off)));
    if (!((t.value | t.mask) & (size - 1)))
        return 0;
    char b[200];
    scalar_str(b, sizeof(b), &p->v);
    return reject(e, "R%d misaligned %s access off %" PRId64 "+%s+%d+%" PRId64 " size %u (strict alignment%s)", regno,
                  what, base, b, p->off, insn_off, size,
                  p->type == T_STACK && !e->pol->strict_align ? ": the kernel's rule for the stack" : "");
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
    uint8_t ld_type = T_SCALAR;     /* what a context load gives */

    if (e->mem_ptr_kind && is_ptr(&p)) {
        uint8_t kind = p.type == T_CTX ? 1 : 2, *seen = &e->mem_ptr_kind[e->cur->insn];
        if (*seen && *seen != kind)
            return reject(e, "same insn cannot be used with different pointers: the kernel rewrites a context access for the context alone");
        *seen = kind;
    }
    if ((r = check_align(e, regno, &p, insn_off, size)))
        return r;

    switch (p.type) {
    case T_NOT_INIT:
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    case T_SCALAR:
        if (p.arena)    /* any address of the arena: the kernel catches faults */
            break;
        return reject(e, "R%d invalid mem access 'scalar': not a pointer", regno);
    case T_MAP_VALUE_OR_NULL:
    case T_MEM_OR_NULL:
    case T_BTF_OR_NULL:
        return reject(e, "R%d invalid mem access '%s': null check required before dereference",
                      regno, reg_type_name(p.type));
    case T_CONST_MAP:
    case T_CONST_MAP_OR_NULL:
    case T_FUNC:
        return reject(e, "R%d invalid mem access '%s'", regno, reg_type_name(p.type));
    case T_CTX:
        r = e->pol->kctx ? kctx_check(e, regno, &p, insn_off, size, acc, sext, &ld_type) : 1;
        if (r == 1)
            r = check_ctx_access(e, regno, &p, insn_off, size, acc);
        if (r)
            return r;
        leak_into = "ctx";
        break;
    case T_PACKET:
    case T_PACKET_META:
    case T_PACKET_END:
        if ((r = check_pkt_access(e, regno, &p, insn_off, size, acc)))
            return r;
        leak_into = "packet";
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
        if (acc == ACC_RMW && e->pol->kctx && e->pol->allow_ptr_leaks && size == 8 && fixed && lo % 8 == 0) {
            /* root's kernel programs: an atomic update of a whole spilled
             * pointer makes its bytes a number (never an iterator's) */
            for (int64_t o = lo; o < hi; o++) {
                struct slot *s;
                uint8_t *k = byte_kind(f, o, false, &s);
                if (k && *k == S_SPILL && s->spill.type != T_SCALAR && s->spill.type != T_ITER)
                    for (int b = 0; b < 8; b++)
                        if (s->kind[b] == S_SPILL)
                            s->kind[b] = S_MISC;
            }
        }
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
        if (acc != ACC_WRITE && map_is_wronly(d))
            return reject(e, "R%d read from write-only map '%s' (value) forbidden (BPF_F_WRONLY_PROG)", regno,
                          d->name);
        int64_t lo = 0, hi = 0;
        r = check_region(e, regno, &p, insn_off, size, d->value_size, "map value", &lo, &hi);
        if (r)
            return r;
        if ((r = check_lock_word(e, regno, p.map_idx, lo, hi)))
            return r;
        if ((r = check_kptr_access(e, regno, &p, insn_off, size, acc, val, lo, hi)))
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
    case T_SOCK: case T_SOCK_OR_NULL: case T_SOCK_COMMON: case T_SOCK_COMMON_OR_NULL:
    case T_TCP_SOCK: case T_TCP_SOCK_OR_NULL: case T_XDP_SOCK: case T_XDP_SOCK_OR_NULL:
    case T_BTF_SOCK: case T_BTF_SOCK_OR_NULL:
        if ((r = check_sock_access(e, regno, &p, insn_off, size, acc)))
            return r;
        break;
    case T_BTF: {
        /* a kernel object (kernel programs verified offline): its fields
         * read as numbers, within the structure the object's BTF sizes */
        const char *sname = gver_kobj_struct_name(p.map_idx);
        uint32_t ssize = p.map_idx < GVER_KOBJ_MAX ? e->pol->kobj_size[p.map_idx] : 0;
        if (acc != ACC_READ)
            return reject(e, "R%d only read is supported: struct %s is the kernel's", regno, sname);
        if (!ssize)
            return reject(e, "R%d struct %s: its layout is unknown (not in the object's BTF)", regno, sname);
        if (!scalar_is_const(&p.v))
            return reject(e, "R%d variable offset into struct %s is not allowed", regno, sname);
        r = check_region(e, regno, &p, insn_off, size, ssize, sname, NULL, NULL);
        if (r)
            return r;
        break;
    }
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
        if (ld_type != T_SCALAR) {
            /* a packet field: data and data_meta are bases, data_end the end */
            mark_const(dst, 0);
            dst->type = ld_type;
            dst->id = e->pkt_base_id;
            /* a socket field (sock.c): its null checks follow this load's copies */
            if (is_sock_type(ld_type))
                dst->id = is_or_null(dst) ? new_id(e) : 0;
        }
        if (p.type == T_MAP_VALUE)
            frozen_read(e, &p, insn_off, size, sext, dst);
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

/* ---- loads, stores, atomics ---- */

int check_ldx(struct env *e, const struct bpf_insn *in)
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

int check_st(struct env *e, const struct bpf_insn *in)
{
    struct reg v;
    unsigned size = size_bytes(in->code);
    uint64_t imm = (uint64_t)(int64_t)in->imm;
    if (size < 8)
        imm &= (1ull << (size * 8)) - 1;
    mark_const(&v, imm);
    return check_mem(e, in->dst_reg, in->off, size, ACC_WRITE, &v, -1, NULL, false);
}

int check_stx(struct env *e, const struct bpf_insn *in)
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
            if (scalar_fits(&v.v, size)) {
                /* the value is stored whole: a narrow spill, a copy */
                if (v.type == T_SCALAR && !v.id && !scalar_is_const(&v.v) &&
                    regs(e)[in->dst_reg].type == T_STACK) {
                    v.id = new_id(e);
                    regs(e)[in->src_reg].id = v.id;
                }
            } else {
                struct scalar m;
                scalar_const(&m, (1ull << (size * 8)) - 1);
                scalar_alu(&v.v, &m, BPF_AND, false, false);
                v.id = 0;           /* cut: no longer equal to the register */
            }
        }
        return check_mem(e, in->dst_reg, in->off, size, ACC_WRITE, &v, in->src_reg, NULL, false);
    }
    /* atomic */
    if ((in->imm & BPF_FETCH) && in->imm != BPF_CMPXCHG && in->src_reg == BPF_R10)
        return reject(e, "frame pointer is read only: the fetch would load into R10");
    if (is_ptr(&v) && e->pol->kctx && e->pol->allow_ptr_leaks)
        mark_unknown(&v);          /* root's kernel programs: the pointer's bits are a number */
    if (is_ptr(&v))
        return reject(e, "R%d atomic operation with a pointer operand prohibited (pointer leak)", in->src_reg);
    if (in->imm == BPF_CMPXCHG) {
        if ((rc = check_read(e, BPF_R0)))
            return rc;
        if (is_ptr(&regs(e)[BPF_R0]))
            return reject(e, "R0 cmpxchg with a pointer operand prohibited");
    }
    /* A locked instruction across a cache line is a split lock: the kernel
     * may kill the host for it (split_lock_detect=fatal) or stall every
     * core. Every base graft hands out (frame, map value, helper memory)
     * is 8-byte aligned, so the offset alone decides, as in the kernel. */
    const struct reg *p = &regs(e)[in->dst_reg];
    uint64_t at = (uint64_t)(p->off + in->off) + p->v.t.value;
    if (is_ptr(p) && (((at | p->v.t.mask) & (size - 1)) != 0))
        return reject(e, "R%d misaligned atomic access: off=%" PRId64 "%s size=%u is not %u-byte aligned",
                      in->dst_reg, (int64_t)at, p->v.t.mask ? "+var" : "", size, size);
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

int check_ld_imm64(struct env *e, const struct bpf_insn *in, uint32_t idx)
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
        if (e->pol->map_fds_unbound && (in->src_reg == BPF_PSEUDO_MAP_FD || in->src_reg == BPF_PSEUDO_MAP_VALUE))
            return reject(e, "fd %d is not pointing to valid bpf_map: no relocation binds this map load", in->imm);
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

/* LD_ABS / LD_IND: r0 = the packet's big-endian bytes at imm (+ src), or the
 * program ends returning 0 when they are out of bounds: the kernel's rules
 * (r6 the skb context, no call frames, references or lock held at that
 * hidden exit), r1-r5 clobbered as by a helper call. */
int check_ld_pkt(struct env *e, const struct bpf_insn *in)
{
    struct vstate *st = e->cur;
    struct reg *r = regs(e);
    int rc;
    if (!e->pol->ld_pkt)
        return reject(e, "legacy packet access (LD_ABS/LD_IND) is not supported by this program type");
    if (st->nfr > 1)
        return reject(e, "BPF_LD_[ABS|IND] instructions cannot be mixed with bpf-to-bpf calls");
    if (st->nrefs)
        return reject(e, "BPF_LD_[ABS|IND] cannot be mixed with socket references");
    if (st->lock_map)
        return reject(e, "BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region");
    if ((rc = check_read(e, BPF_R6)))
        return rc;
    if (r[BPF_R6].type != T_CTX || r[BPF_R6].off)
        return reject(e, "at the time of BPF_LD_ABS|IND R6 != pointer to skb");
    if (BPF_MODE(in->code) == BPF_IND) {
        if ((rc = check_read(e, in->src_reg)))
            return rc;
        if (r[in->src_reg].type != T_SCALAR)
            return reject(e, "R%d offset of BPF_LD_IND must be a scalar", in->src_reg);
    }
    /* the hidden exit returns 0 */
    if ((e->pol->ret_checked || e->pol->ret_min || e->pol->ret_max) &&
        (e->pol->ret_min > 0 || e->pol->ret_max < 0))
        return reject(e, "BPF_LD_[ABS|IND] may exit with 0, the policy requires [%" PRId64 ", %" PRId64 "]",
                      e->pol->ret_min, e->pol->ret_max);
    for (int k = BPF_R1; k <= BPF_R5; k++)
        mark_not_init(&r[k]);
    mark_unknown(&r[BPF_R0]);
    scalar_unknown_size(&r[BPF_R0].v, size_bytes(in->code));
    return 0;
}
