/*
 * facts.c - what holds at each instruction on every path, for the JIT
 * (gver_input.record_facts, gver_result.facts, docs/jit.md).
 *
 * Each state the exploration processes at insn i (pruned states are not
 * processed) is joined into facts[i]: the bits dst may hold, whether a
 * BPF_X source is one constant, and whether a conditional jump goes the
 * same way on every state (ranges decided it). The join over the processed states covers
 * every run only for values pruning compared. A state S pruned at p
 * against an explored T stands for runs that T's exploration never saw;
 * states_cover() checked S against T only on the registers and stack slots
 * whose value matters (cfg.c's prec_in / slot_need), so past p only those
 * values, and what is computed from them, are sure to lie in T's
 * descendants' ranges. prec_in[i] is closed under that backward flow (a
 * register that matters at i makes its sources matter before), so a
 * register in prec_in[i] is covered at i; any other gets no fact.
 *
 * Speculative states (speculation.c) are joined too: a fact then also holds
 * on the mispredicted paths the verifier follows. Those are only the paths
 * past branches whose outcome it knew; past a branch it could not decide,
 * the CPU may run one side with the other side's values, which no state
 * describes. A program's own `and` may be its only defence there (graft
 * does not mask pointer arithmetic as the kernel does), so with the
 * Spectre rules on no range fact is recorded, only constants: folding a
 * constant never lets a mispredicted path compute more than it would.
 */
#include "verifier/env.h"

int facts_init(struct env *e)
{
    if (!e->in->record_facts)
        return 0;
    e->facts = calloc(e->n ? e->n : 1, sizeof(*e->facts));
    e->fact_seen = calloc(e->n ? e->n : 1, 1);
    return e->facts && e->fact_seen ? 0 : -ENOMEM;
}

/* A fresh exploration proves everything again (cost.c may run several). */
void facts_reset(struct env *e)
{
    if (!e->facts)
        return;
    memset(e->facts, 0, e->n * sizeof(*e->facts));
    memset(e->fact_seen, 0, e->n);
}

/* The bits a value of s may have set: its tnum's, below umax's top bit. */
static uint64_t possible_bits(const struct scalar *s)
{
    uint64_t bits = s->t.value | s->t.mask;
    if (s->umax == 0)
        return 0;
    return bits & (~0ull >> __builtin_clzll(s->umax));
}

static bool reads_src(const struct bpf_insn *in)
{
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (BPF_SRC(in->code) != BPF_X)
        return false;
    if (cls == BPF_ALU || cls == BPF_ALU64)
        return op != BPF_NEG && op != BPF_END;
    if (cls == BPF_JMP || cls == BPF_JMP32)
        return op != BPF_JA && op != BPF_CALL && op != BPF_EXIT;
    return false;
}

/* The outcome of conditional jump in on the current state: 1 taken, 0
 * not, -1 unknown or not a jump on scalars. */
static int branch_outcome(struct env *e, const struct bpf_insn *in)
{
    uint8_t op = BPF_OP(in->code);
    if (op == BPF_JA || op == BPF_CALL || op == BPF_EXIT || is_may_goto(in))
        return -1;
    const struct reg *r = regs(e), *d = &r[in->dst_reg];
    bool is32 = BPF_CLASS(in->code) == BPF_JMP32;
    struct scalar imm;
    const struct scalar *s = &imm;
    if (BPF_SRC(in->code) == BPF_X) {
        if (r[in->src_reg].type != T_SCALAR)
            return -1;
        s = &r[in->src_reg].v;
    } else {
        scalar_const(&imm, is32 ? (uint32_t)in->imm : (uint64_t)(int64_t)in->imm);
    }
    if (d->type != T_SCALAR)
        return -1;
    return scalar_branch_taken(&d->v, s, op, is32);
}

/* Join the current state, about to run insn idx, into facts[idx]. */
void facts_note(struct env *e, uint32_t idx)
{
    if (!e->facts)
        return;
    const struct bpf_insn *in = &e->insns[idx];
    uint8_t cls = BPF_CLASS(in->code);
    if (cls != BPF_ALU && cls != BPF_ALU64 && cls != BPF_JMP && cls != BPF_JMP32)
        return;
    const struct reg *r = regs(e);
    uint16_t prec = e->cfg.prec_in[idx];
    struct gvm_insn_fact *f = &e->facts[idx];
    bool first = !(e->fact_seen[idx] & 1);
    e->fact_seen[idx] |= 1;

    const struct reg *d = &r[in->dst_reg];
    bool dst_ok = !spec_on(e) && d->type == T_SCALAR && ((prec >> in->dst_reg) & 1);
    if (first && dst_ok) {
        f->flags |= GVM_FACT_DST_BITS;
        f->dst_bits = possible_bits(&d->v);
    } else if (!dst_ok) {
        f->flags &= ~GVM_FACT_DST_BITS;
    } else {
        f->dst_bits |= possible_bits(&d->v);
    }

    const struct reg *s = &r[in->src_reg];
    bool src_ok = reads_src(in) && s->type == T_SCALAR && ((prec >> in->src_reg) & 1) &&
                  scalar_is_const(&s->v);
    if (first && src_ok) {
        f->flags |= GVM_FACT_SRC_CONST;
        f->src_value = s->v.t.value;
    } else if (!src_ok || f->src_value != s->v.t.value) {
        f->flags &= ~GVM_FACT_SRC_CONST;
    }

    /* A branch's operands always matter (prec_in), so every run's values
     * lie in some processed state's. A speculative state stands for no
     * real run: removing a branch only takes paths from the CPU. */
    if ((cls == BPF_JMP || cls == BPF_JMP32) && !e->cur->speculative) {
        int taken = branch_outcome(e, in);
        uint32_t flag = taken == 1 ? GVM_FACT_TAKEN : taken == 0 ? GVM_FACT_NOT_TAKEN : 0;
        if (!(e->fact_seen[idx] & 2))
            f->flags |= flag;
        else
            f->flags &= ~((GVM_FACT_TAKEN | GVM_FACT_NOT_TAKEN) & ~flag);
        e->fact_seen[idx] |= 2;
    }
}

/* Hand the facts of an accepted program to the result. */
void facts_take(struct env *e, struct gver_result *out)
{
    out->facts = e->facts;
    out->n_facts = e->facts ? e->n : 0;
    e->facts = NULL;
}
