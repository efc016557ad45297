/*
 * sf_pkt.c - packet programs for the soundness fuzzer (see sf_pkt.h).
 *
 * Registers: r6 = ctx, r7 = data, r8 = data_end, r9 = data_meta, live for
 * the whole program (a helper call moves no packet here); r0-r5 are
 * scratch. Each snippet proves (or fails to
 * prove) a range with one comparison and accesses the packet inside the
 * branch where the comparison holds; r7-r9 are reloaded now and then.
 */
#include "sf_pkt.h"

#include <stdbool.h>
#include <stdlib.h>

#include "loader/loader.h"

struct pgen {
    struct sf_prog *out;
    uint64_t rs;
};

static uint32_t rn(struct pgen *g, uint32_t n)
{
    return (uint32_t)(sf_rand(&g->rs) % n);
}

static bool chance(struct pgen *g, uint32_t pct)
{
    return rn(g, 100) < pct;
}

static void emit(struct pgen *g, struct bpf_insn in)
{
    if (g->out->n < SF_MAX_INSNS - 4)
        g->out->insns[g->out->n++] = in;
}

/* A forward jump to patch: its index. */
static uint32_t jump_here(struct pgen *g, struct bpf_insn in)
{
    emit(g, in);
    return g->out->n - 1;
}

static void land(struct pgen *g, uint32_t at)
{
    g->out->insns[at].off = (int16_t)(g->out->n - at - 1);
}

static const uint8_t sizes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };

static int size_of(uint8_t s)
{
    return s == BPF_B ? 1 : s == BPF_H ? 2 : s == BPF_W ? 4 : 8;
}

/* The bound checked: mostly small, sometimes at or past the packet's
 * largest size. */
static int32_t bound(struct pgen *g)
{
    if (chance(g, 10))
        return (int32_t)(SF_PKT_MAX_LEN - 8 + rn(g, 16));
    return (int32_t)rn(g, 40);
}

/* A size that fits in limit bytes when one does (BPF_B otherwise: the
 * access is then refused, as it should be). */
static uint8_t pick_size(struct pgen *g, int32_t limit)
{
    int k = (int)rn(g, 4);
    while (k > 0 && size_of(sizes[k]) > limit)
        k--;
    return sizes[k];
}

/* An access of size sz inside [0, limit) from the base, mostly; now and
 * then one byte past it or before it. */
static int32_t access_off(struct pgen *g, int32_t limit, int sz)
{
    if (chance(g, 3))
        return limit - sz + 1;
    if (chance(g, 1))
        return -1;
    int32_t room = limit - sz;
    return room >= 0 ? (int32_t)rn(g, (uint32_t)room + 1) : 0;
}

/* Load or store through reg at off. */
static void access(struct pgen *g, int reg, int32_t off, uint8_t sz)
{
    switch (rn(g, 3)) {
    case 0:
        emit(g, BPF_LDX_MEM(sz, BPF_R0, reg, (int16_t)off));
        break;
    case 1:
        emit(g, BPF_ST_MEM(sz, reg, (int16_t)off, (int32_t)rn(g, 256)));
        break;
    default:
        emit(g, BPF_MOV64_IMM(BPF_R5, (int32_t)rn(g, 1000)));
        emit(g, BPF_STX_MEM(sz, reg, BPF_R5, (int16_t)off));
        break;
    }
}

/* Compare p (= base + k) with end and run body(where the comparison
 * proves p <= end, or p < end when strict) in the branch where it holds;
 * any of the eight forms "p OP end" / "end OP p" the kernel knows.
 * Returns whether the proven relation is strict. */
static bool compare_then(struct pgen *g, int p, int end, uint32_t *skip)
{
    /* forms where the fall-through is the proven side */
    static const struct { uint8_t op; bool p_left; bool strict; } fall[] = {
        { BPF_JGT, true, false },   /* if p > end skip: p <= end */
        { BPF_JGE, true, true },    /* if p >= end skip: p < end */
        { BPF_JLT, false, false },  /* if end < p skip: p <= end */
        { BPF_JLE, false, true },   /* if end <= p skip: p < end */
    };
    /* forms where the jump is the proven side */
    static const struct { uint8_t op; bool p_left; bool strict; } jump[] = {
        { BPF_JLE, true, false },   /* if p <= end goto body */
        { BPF_JLT, true, true },    /* if p < end goto body */
        { BPF_JGE, false, false },  /* if end >= p goto body */
        { BPF_JGT, false, true },   /* if end > p goto body */
    };
    if (rn(g, 2)) {
        int k = (int)rn(g, 4);
        int a = fall[k].p_left ? p : end, b = fall[k].p_left ? end : p;
        *skip = jump_here(g, BPF_JMP_REG(fall[k].op, a, b, 0));
        return fall[k].strict;
    }
    int k = (int)rn(g, 4);
    int a = jump[k].p_left ? p : end, b = jump[k].p_left ? end : p;
    emit(g, BPF_JMP_REG(jump[k].op, a, b, 1));
    *skip = jump_here(g, BPF_JMP_A(0));
    return jump[k].strict;
}

/* data + k checked against data_end, accesses through data or a copy. */
static void snip_const(struct pgen *g)
{
    int32_t k = bound(g);
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R7));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, k));
    if (chance(g, 30)) {       /* a copy made before the check shares its range */
        emit(g, BPF_MOV64_REG(BPF_R2, BPF_R7));
        emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, (int32_t)rn(g, 8)));
    } else {
        emit(g, BPF_MOV64_REG(BPF_R2, BPF_R7));
    }
    uint32_t skip;
    bool strict = compare_then(g, BPF_R1, BPF_R8, &skip);
    int32_t limit = k + (strict && k > 0 ? 1 : 0);
    for (int i = 1 + (int)rn(g, 3); i > 0; i--) {
        uint8_t sz = pick_size(g, limit);
        int base = rn(g, 3) == 0 ? BPF_R1 : BPF_R7;
        int32_t off = access_off(g, limit, size_of(sz));
        if (base == BPF_R1)
            off -= k;          /* r1 is data + k */
        access(g, base, off, sz);
    }
    land(g, skip);
    if (chance(g, 30)) {       /* the same comparison again: one path knows its outcome */
        if (chance(g, 30))
            emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, (int32_t)rn(g, 5) - 2));
        strict = compare_then(g, BPF_R1, BPF_R8, &skip);
        uint8_t sz = pick_size(g, limit);
        access(g, BPF_R7, access_off(g, limit, size_of(sz)), sz);
        land(g, skip);
    }
}

/* data + a bounded variable offset, checked with a constant on top. */
static void snip_var(struct pgen *g)
{
    static const int32_t masks[] = { 0x7, 0xf, 0x1f, 0x3f, 0xff };
    emit(g, BPF_LDX_MEM(BPF_W, BPF_R3, BPF_R6, (int16_t)(12 + 4 * rn(g, 3))));
    if (!chance(g, 3))         /* unbounded now and then: must be refused */
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R3, masks[rn(g, 5)]));
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R7));
    emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R2, BPF_R3));
    int32_t k = bound(g);
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R2));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, k));
    uint32_t skip;
    bool strict = compare_then(g, BPF_R1, BPF_R8, &skip);
    int32_t limit = k + (strict && k > 0 ? 1 : 0);
    uint8_t sz = pick_size(g, limit);
    int32_t off = access_off(g, limit, size_of(sz));
    if (chance(g, 3))
        access(g, BPF_R7, off, sz);   /* through data: the check proved nothing for it */
    else
        access(g, BPF_R2, off, sz);
    land(g, skip);
}

/* data_meta + k checked against data. */
static void snip_meta(struct pgen *g)
{
    int32_t k = (int32_t)rn(g, SF_PKT_MAX_META + 4);
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R9));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, k));
    uint32_t skip;
    bool strict = compare_then(g, BPF_R1, BPF_R7, &skip);
    int32_t limit = k + (strict && k > 0 ? 1 : 0);
    uint8_t sz = pick_size(g, limit);
    access(g, BPF_R9, access_off(g, limit, size_of(sz)), sz);
    land(g, skip);
}

/* A checked pointer spilled and refilled, then used. */
static void snip_spill(struct pgen *g)
{
    int32_t k = bound(g);
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R7));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, k));
    uint32_t skip;
    bool strict = compare_then(g, BPF_R1, BPF_R8, &skip);
    int32_t limit = k + (strict && k > 0 ? 1 : 0);
    int slot = -8 * (1 + (int)rn(g, 4));
    emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R7, (int16_t)slot));
    emit(g, BPF_LDX_MEM(BPF_DW, BPF_R4, BPF_R10, (int16_t)slot));
    uint8_t sz = pick_size(g, limit);
    access(g, BPF_R4, access_off(g, limit, size_of(sz)), sz);
    land(g, skip);
}

/* A 4-byte map key read by a helper from the packet (map_lookup_elem on
 * the array map): the helper's access is checked like a load. */
static void snip_helper_key(struct pgen *g)
{
    int32_t k = bound(g);
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R7));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, k));
    uint32_t skip;
    bool strict = compare_then(g, BPF_R1, BPF_R8, &skip);
    int32_t limit = k + (strict && k > 0 ? 1 : 0);
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R7));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, access_off(g, limit, 4)));
    struct bpf_insn ld[2] = { BPF_LD_IMM64_RAW(BPF_R1, BPF_PSEUDO_MAP_IDX, SF_MAP_ARRAY) };
    emit(g, ld[0]);
    emit(g, ld[1]);
    emit(g, BPF_CALL_HELPER(1));
    land(g, skip);
}

/* An access with no check at all (must be refused), or a fresh reload of
 * the packet fields (ranges start again). */
static void snip_other(struct pgen *g)
{
    if (chance(g, 8)) {
        uint8_t sz = sizes[rn(g, 4)];
        access(g, BPF_R7, (int32_t)rn(g, 8), sz);
        return;
    }
    emit(g, BPF_LDX_MEM(BPF_W, BPF_R7, BPF_R6, 0));
    emit(g, BPF_LDX_MEM(BPF_W, BPF_R8, BPF_R6, 4));
    emit(g, BPF_LDX_MEM(BPF_W, BPF_R9, BPF_R6, 8));
}

void sf_generate_pkt(uint64_t seed, struct sf_prog *out)
{
    struct pgen g = { out, sf_mix(seed) };
    out->n = 0;
    emit(&g, BPF_MOV64_REG(BPF_R6, BPF_R1));
    emit(&g, BPF_LDX_MEM(BPF_W, BPF_R7, BPF_R6, 0));
    emit(&g, BPF_LDX_MEM(BPF_W, BPF_R8, BPF_R6, 4));
    emit(&g, BPF_LDX_MEM(BPF_W, BPF_R9, BPF_R6, 8));
    for (int i = 2 + (int)rn(&g, 8); i > 0; i--) {
        switch (rn(&g, 10)) {
        case 9: snip_helper_key(&g); break;
        case 0: case 1: case 2: snip_const(&g); break;
        case 3: case 4: snip_var(&g); break;
        case 5: snip_meta(&g); break;
        case 6: case 7: snip_spill(&g); break;
        default: snip_other(&g); break;
        }
    }
    emit(&g, BPF_MOV64_IMM(BPF_R0, 2));   /* XDP_PASS */
    emit(&g, BPF_EXIT_INSN());
}

struct gver_policy *sf_pkt_policy(void)
{
    struct gver_policy *p = gver_policy_raw(SF_PKT_CTX_SIZE);
    if (p)
        gver_policy_kernel_ctx(p, GKT_XDP, "xdp");
    return p;
}
