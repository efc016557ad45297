/*
 * branch.c - conditional jumps: null checks of pointers, pointer
 * comparisons, and scalar branches, which fork the state and refine both
 * sides (and every linked copy) by the condition.
 */
#include "verifier/env.h"

/* ---- conditional jumps ---- */

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
            /* a spill (8 bytes, or a narrow one in the slot's first
             * bytes) keeps its id only while it equals the register */
            if (sl->kind[0] == S_SPILL && sl->spill.type == T_SCALAR &&
                sl->spill.id == r->id)
                sl->spill.v = r->v;
        }
    }
}

int branch_fork(struct env *e, struct vstate *other, uint32_t target, uint32_t idx)
{
    other->insn = target;
    e->cur->insn = idx + 1;
    int rc = push_state(e, other);
    if (rc)
        state_free(other);
    return rc;
}

/* A branch whose outcome teaches nothing: follow both sides with the
 * current state. */
static int branch_both_ways(struct env *e, uint32_t target, uint32_t idx)
{
    struct vstate *other = state_copy(e->cur);
    if (!other)
        return -ENOMEM;
    return branch_fork(e, other, target, idx);
}

/* Returns 1 if the current path became infeasible. */
int check_cond_jmp(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    uint8_t op = BPF_OP(in->code);
    bool is32 = BPF_CLASS(in->code) == BPF_JMP32;
    uint32_t target = (uint32_t)((int64_t)idx + 1 + in->off);
    int dr = in->dst_reg, rc;
    if (is_may_goto(in)) {     /* taken or not at run time: both are followed */
        int rc2 = branch_both_ways(e, target, idx);
        if (!rc2)
            top(e)->may_goto_passes++;    /* this path falls through */
        return rc2;
    }
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
        /* a packet pointer against the packet's end proves a range */
        if ((rc = pkt_cond_jmp(e, in, idx)) != -1)
            return rc;
        if (is32)
            return reject(e, "R%d 32-bit comparison of a pointer prohibited", dr);
        if ((op == BPF_JEQ || op == BPF_JNE) && is_null_const(o)) {
            /* kernel programs: only a comparison with the immediate 0 is a
             * null check, as the kernel has it (a register holding 0
             * teaches it nothing) */
            if (is_or_null(p) && (!e->pol->kctx || BPF_SRC(in->code) == BPF_K)) {
                struct vstate *other = state_copy(e->cur);
                if (!other)
                    return -ENOMEM;
                uint32_t id = p->id;
                /* on the jump: JEQ taken means null */
                struct vstate *save = e->cur;
                e->cur = other;
                mark_ptr_or_null(e, id, op == BPF_JEQ);
                e->cur = save;
                mark_ptr_or_null(e, id, op != BPF_JEQ);
                return branch_fork(e, other, target, idx);
            }
            if (p->type == T_HOST)   /* the host's pointer may be null */
                return branch_both_ways(e, target, idx);
            /* The kernel knows only map values, keys, helper memory, map
             * pointers and trusted kernel objects to be non-null and
             * follows both sides for the others (a dead side it explores
             * can make it refuse the program): so do offline kernel
             * verdicts. */
            if (e->pol->kctx && p->type != T_MAP_VALUE && p->type != T_MAP_KEY && p->type != T_MEM &&
                p->type != T_CONST_MAP && p->type != T_SOCK && p->type != T_SOCK_COMMON &&
                p->type != T_TCP_SOCK &&
                p->type != T_BTF)
                return branch_both_ways(e, target, idx);
            /* other pointers are never null (but the CPU may guess wrong) */
            if ((rc = spec_push_branch(e, in, op == BPF_JNE ? idx + 1 : target)))
                return rc;
            e->cur->insn = op == BPF_JNE ? target : idx + 1;
            return 0;
        }
        /* the kernel's root rule: equal to a pointer known non-null, a
         * possibly-null pointer is not null either (that register only) */
        if (e->pol->allow_ptr_leaks && BPF_SRC(in->code) == BPF_X && is_ptr(d) && is_ptr(&src) &&
            is_or_null(d) != is_or_null(&src) && (op == BPF_JEQ || op == BPF_JNE) &&
            d->type != T_HOST && src.type != T_HOST) {   /* a host pointer may be null */
            struct vstate *other = state_copy(e->cur);
            if (!other)
                return -ENOMEM;
            struct vstate *eq = op == BPF_JEQ ? other : e->cur;
            int nr = is_or_null(d) ? dr : in->src_reg;
            reg_mark_not_null(&eq->fr[eq->nfr - 1]->regs[nr]);
            other->insn = target;
            e->cur->insn = idx + 1;
            if ((rc = push_state(e, other))) {
                state_free(other);
                return rc;
            }
            return 0;
        }
        if (is_ptr(d) && is_ptr(&src) && d->type == src.type && d->map_idx == src.map_idx &&
            d->frameno == src.frameno && !is_or_null(d))
            return branch_both_ways(e, target, idx);
        /* the kernel's root rule: pointers may be compared with anything
         * (nothing is learnt; a possibly-null pointer stays unchecked) */
        if (e->pol->allow_ptr_leaks)
            return branch_both_ways(e, target, idx);
        return reject(e, "R%d pointer comparison prohibited (only null checks and same-type pointers)",
                      is_ptr(d) ? dr : in->src_reg);
    }

    int taken = scalar_branch_taken(&d->v, &src.v, op, is32);
    if (taken >= 0) {
        /* only one side runs; the other may run speculatively */
        if ((rc = spec_push_branch(e, in, taken ? idx + 1 : target)))
            return rc;
        e->cur->insn = taken ? target : idx + 1;
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
    /* a side the ranges rule out can still run speculatively */
    if (!feas_t && spec_on(e)) {
        spec_take_branch(e, other, in, target);
        feas_t = true;
    }
    if (feas_t) {
        if ((rc = branch_fork(e, other, target, idx)))
            return rc;
    } else {
        state_free(other);
        e->cur->insn = idx + 1;
    }
    if (!feas_f && spec_on(e)) {
        spec_take_branch(e, e->cur, in, idx + 1);
        feas_f = true;
    }
    return feas_f ? 0 : 1;
}
