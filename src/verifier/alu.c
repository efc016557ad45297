/*
 * alu.c - ALU instructions: scalar arithmetic (through scalar.c), moves and
 * the copies they link, and the pointer arithmetic allowed on each pointer
 * type.
 */
#include "verifier/env.h"

/* ---- ALU ---- */

/* The kernel's check_reg_sane_offset, for every policy: an offset or a
 * pointer's variable part so large that the sum could wrap is refused
 * before any range is computed from it. */
static int sane_offset(struct env *e, const struct reg *r, uint8_t ptr_type)
{
    const char *pt = reg_type_name(ptr_type);
    if (scalar_is_const(&r->v) && ((int64_t)r->v.t.value >= OFF_LIMIT || (int64_t)r->v.t.value <= -OFF_LIMIT))
        return reject(e, "math between %s pointer and %" PRId64 " is not allowed", pt, (int64_t)r->v.t.value);
    if (r->off >= OFF_LIMIT || r->off <= -OFF_LIMIT)
        return reject(e, "%s pointer offset %d is not allowed", pt, r->off);
    if (r->v.smin == INT64_MIN)
        return reject(e, "math between %s pointer and register with unbounded min value is not allowed", pt);
    if (r->v.smin >= OFF_LIMIT || r->v.smin <= -OFF_LIMIT)
        return reject(e, "value %" PRId64 " makes %s pointer be out of bounds", r->v.smin, pt);
    return 0;
}

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
            !is_or_null(dst) && !is_sock_type(dst->type)) {
            mark_unknown(dst);
            return 0;
        }
        /* the kernel's root rule: any difference of pointers is a number */
        if (op == BPF_SUB && e->pol->allow_ptr_leaks) {
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
    /* the kernel's rule for its JITs (kernel programs): fp moves by adding */
    if (e->pol->kctx && op == BPF_SUB && ptr->type == T_STACK)
        return reject(e, "R%d subtraction from stack pointer prohibited", dr);
    switch (ptr->type) {
    case T_MAP_VALUE_OR_NULL:
    case T_MEM_OR_NULL:
    case T_CONST_MAP_OR_NULL:
    case T_BTF_OR_NULL:
        return reject(e, "R%d pointer arithmetic on %s prohibited, null-check it first", dr,
                      reg_type_name(ptr->type));
    case T_CONST_MAP:
        /* the kernel lets root add a known 0 to a map pointer: it stays
         * that map (kernel programs only) */
        if (e->pol->kctx && e->pol->allow_ptr_leaks && op == BPF_ADD && is_null_const(sc)) {
            *dst = *ptr;
            return 0;
        }
        return reject(e, "R%d pointer arithmetic on %s prohibited", dr, reg_type_name(ptr->type));
    case T_FUNC:
    case T_PACKET_END:
        return reject(e, "R%d pointer arithmetic on %s prohibited", dr, reg_type_name(ptr->type));
    }
    if (is_sock_type(ptr->type))      /* the kernel reads sockets through fixed views */
        return reject(e, "R%d pointer arithmetic on %s prohibited%s", dr, reg_type_name(ptr->type),
                      is_or_null(ptr) ? ", null-check it first" : "");
    /* A host pointer is never dereferenced: the probe helpers take it at
     * constant offsets only (calls.c), which is its own bound. */
    bool host = ptr->type == T_HOST;
    int rc;
    if (!host && ((rc = sane_offset(e, sc, ptr->type)) || (rc = sane_offset(e, ptr, ptr->type))))
        return rc;
    struct spec_alu sa = { 0 };
    if (!host && (rc = spec_ptr_alu_begin(e, in, ptr, sc, dptr, &sa)))
        return rc;
    struct reg res = *ptr;
    if (scalar_is_const(&sc->v)) {
        int64_t c = (int64_t)sc->v.t.value;
        if (c <= -OFF_LIMIT || c >= OFF_LIMIT)
            return reject(e, "R%d pointer arithmetic with offset %" PRId64 " out of range", dr, c);
        int64_t no = (int64_t)res.off + (op == BPF_ADD ? c : -c);
        if (no <= -OFF_LIMIT || no >= OFF_LIMIT)
            return reject(e, "R%d pointer offset %" PRId64 " out of range", dr, no);
        res.off = (int32_t)no;
        if (op == BPF_ADD ? c < 0 : c > 0)
            res.pkt_end = 0;           /* moved back: it may be before the end again */
    } else {
        res.pkt_end = 0;
        scalar_alu(&res.v, &sc->v, op, false, false);
        if (is_pkt(&res)) {
            /* a new base: data plus this variable offset, nothing proven yet */
            res.id = new_id(e);
            res.range = 0;
        }
    }
    if (!host && ((rc = sane_offset(e, &res, ptr->type)) || (rc = spec_ptr_alu_end(e, in, &res, &sa))))
        return rc;
    *dst = res;
    return 0;
}

/* addr_space_cast (mov64 with off 1): imm 1 makes an arena address
 * (address space 1) a pointer the program dereferences (address space 0),
 * imm 1 << 16 the other way. Only for kernel programs whose object has an
 * arena map, as the kernel has it; graft's VM has no arenas. */
static int arena_cast(struct env *e, const struct bpf_insn *in)
{
    bool arena = false;
    for (uint32_t i = 0; i < e->in->n_maps; i++)
        arena |= e->in->maps[i].type == GMAP_KERNEL_ARENA;
    if (!e->pol->kctx || !arena)
        return reject(e, "addr_space_cast insn can only be used in a program that has an associated arena");
    if (in->imm != 1 && in->imm != 1 << 16)
        return reject(e, "addr_space_cast insn can only convert between address space 1 and 0");
    struct reg *r = regs(e);
    if (r[in->src_reg].type != T_SCALAR)
        return reject(e, "R%d addr_space_cast of a %s", in->src_reg, reg_type_name(r[in->src_reg].type));
    mark_unknown(&r[in->dst_reg]);
    r[in->dst_reg].arena = in->imm == 1;
    return 0;
}

int check_alu(struct env *e, const struct bpf_insn *in)
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
        if (in->off == 1)
            return arena_cast(e, in);
        /* the kernel's root rule: a partial or sign-extended copy of a
         * pointer is a number */
        if (is_ptr(&r[sr]) && (in->off || !is64) && e->pol->allow_ptr_leaks) {
            mark_unknown(&r[dr]);
            if (!is64)
                scalar_zext32(&r[dr].v);
            return 0;
        }
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
        /* a number below 2^32 is its own low half: the copy is equal to it
         * and shares its id (a bound learnt on one holds for both) */
        if (r[sr].type == T_SCALAR && r[sr].v.umax <= UINT32_MAX && !scalar_is_const(&r[sr].v)) {
            if (!r[sr].id)
                r[sr].id = new_id(e);
            r[dr] = r[sr];
            return 0;
        }
        struct reg t = r[sr];
        scalar_zext32(&t.v);
        t.id = 0;
        r[dr] = t;
        return 0;
    }
    if ((rc = check_read(e, dr)))
        return rc;
    if (op == BPF_NEG || op == BPF_END) {
        if (is_ptr(&r[dr]) && e->pol->allow_ptr_leaks)
            mark_unknown(&r[dr]);      /* root: the pointer's bits become a number */
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
        /* The run-time rule for a zero divisor (quotient 0, remainder the
         * dividend) is for registers; a constant 0 is a bug the kernel
         * refuses, and so do we. */
        if ((op == BPF_DIV || op == BPF_MOD) && in->imm == 0)
            return reject(e, "div by zero");
        if ((op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) &&
            (in->imm < 0 || in->imm >= (is64 ? 64 : 32)))
            return reject(e, "invalid shift %d", in->imm);
    }
    if (is_ptr(&r[dr]) || is_ptr(&src)) {
        if (!is64 && op == BPF_SUB && e->pol->allow_ptr_leaks) {
            mark_unknown(&r[dr]);      /* root: a meaningless number, as in the kernel */
            scalar_zext32(&r[dr].v);
            return 0;
        }
        if (!is64)
            return reject(e, "R%d 32-bit pointer arithmetic prohibited", dr);
        return ptr_alu(e, in, &r[dr], &src);
    }
    if ((rc = spec_scalar_alu(e, in)))
        return rc;
    scalar_alu(&r[dr].v, &src.v, op, !is64, in->off == 1);
    r[dr].id = 0;
    return 0;
}
