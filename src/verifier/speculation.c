/*
 * speculation.c - the kernel's Spectre v1 rules for unprivileged programs,
 * which graft's default policy applies to every program (policy
 * spec_bypass, graft verify --privileged, skips them as the kernel does for
 * root).
 *
 * The threat: graft runs extensions inside the host process, in its address
 * space. A program whose every architectural path is in bounds can still,
 * on a mispredicted branch, run the other side with values the check was
 * meant to exclude: a load at an out-of-bounds address then brings host
 * memory (keys, other tenants' data) into the cache, where a timing probe
 * reads it back (Spectre v1, bounds check bypass). For a kernel program the
 * kernel claims that an unprivileged user cannot build such a gadget; graft
 * makes the same claim for its programs, with the same rules:
 *
 *  1. Speculative paths. Where a conditional jump's outcome is known (or
 *     one side is impossible for the ranges proven), the side that cannot
 *     run is still explored, as a speculative path with the compared
 *     registers unknown (their values are what the mispredicted CPU uses;
 *     nothing proven about them holds). Every access on it must be safe as
 *     on any path. A speculative state never stands for a real one when
 *     pruning (it is weaker: states_cover refuses it).
 *
 * Pruning speculative paths (verifier.c, prune_point). A speculative path
 * needs safety only (no end, no cost, no branch-outcome facts), and safety
 * is an invariant: a speculative state c may stop at a state o that
 * covers it, real or speculative, complete or still being explored (a
 * loop), because o's exploration checks every step from every concrete
 * state o describes, and every successor is in turn explored or covered
 * (by induction on the number of steps, not on the order of exploration,
 * so cycles are fine). Not the other way: a speculative o stands for no
 * real path (a real c must end and be counted; o only saw the CPU's
 * guesses), so states_cover refuses it.
 *
 * Covering is inclusion even after a masked offset was seen
 * (explore_alu_limits), where real paths need equal values: a real path
 * records at each ADD/SUB the masking limit its pointer's bounds give, and
 * a path pruned by one with wider bounds would never have its limit
 * compared. A speculative path records no limit (spec_ptr_alu_begin
 * computes one only off speculation), only SPEC_ALU_NON_POINTER, which
 * depends on the registers' types, and covering requires equal types;
 * every other check that holds for o's ranges holds for c's narrower ones.
 *
 * The window. Paths are cut SPEC_WINDOW instructions past the first
 * misprediction, so a speculative o with a longer run behind it (spec_len)
 * than c was checked less far than c may run. Without any cut, every path
 * was followed to its end (as the kernel does) and o covers c whatever
 * their lengths. explore_and_bound therefore explores again, refusing such
 * pruning (env.spec_strict), only when one exploration both cut a path
 * and let such an o prune a longer-lived c; without that pruning, the
 * strict exploration would have been the same one
 * (test_verifier_speculation: a load 50 instructions past a join that
 * only the shorter-lived path reaches).
 *  2. Pointer arithmetic with a register (ptr += reg, reg += ptr, ptr -=
 *     reg) is allowed only on stack and map value pointers, whose bounds
 *     give a masking limit: the offset must not mix signs, the pointer
 *     before and after must be inside its object, and every path through
 *     the instruction must need the same limit (else "tried to add from
 *     different maps, paths or scalars"). An offset that is not a constant
 *     may be out of range under speculation; the kernel then masks it to 0,
 *     so the path with the pointer unmoved is explored speculatively too.
 *  3. After any arithmetic (constants too) a stack pointer must have a
 *     constant offset inside the frame and a map value pointer must point
 *     into the value: no variable stack offsets for !root.
 *
 * What graft does NOT do yet (the kernel's other half of the claim): it
 * does not rewrite the program. The kernel masks each register offset with
 * the limit computed here (alu_state/alu_limit, recorded per instruction
 * as the kernel's insn_aux_data) and puts a speculation barrier after
 * stack spills that overwrite a pointer or other data (Spectre v4, store
 * bypass). graft's VM and JIT run the instructions unmasked: the verdicts
 * agree with the kernel's, the run-time hardening is missing.
 *
 * Tested concretely: the soundness fuzzer runs programs verified with
 * these rules in the checked interpreter's speculative mode
 * (GVM_F_SPECULATIVE, src/vm/interp.c), which runs the other side of each
 * jump decided on every real path for this window and reports an access
 * out of bounds there (it checks rule 1, not the masking of rule 2).
 *
 * Only the kernel's own rules are here; messages follow its wording so
 * that a kernel user recognises them.
 */
#include "verifier/env.h"
#include "loader/loader.h"   /* enum gprog_ktype only */

#define SPEC_ALU_SANITIZE_SRC 0x1   /* the pointer is the destination */
#define SPEC_ALU_SANITIZE_DST 0x2   /* the pointer is the source (scalar += ptr) */
#define SPEC_ALU_NEG_VALUE    0x4   /* the offset is negative */
#define SPEC_ALU_IMMEDIATE    0x8   /* the offset register holds a constant */
#define SPEC_ALU_NON_POINTER  0x10  /* scalar += scalar on this path */

#define STACK_BYTES 512             /* MAX_BPF_STACK */

/* How far a speculative path is followed: no x86-64 core keeps more than
 * 576 micro-ops in flight (reorder buffer: Lion Cove 576, Golden Cove 512,
 * Zen 5 448), and every BPF instruction graft runs is at least one of them
 * (interpreted: dozens), so a misprediction is resolved before the CPU
 * gets this far past it. The kernel follows its unprivileged programs
 * (no loops, at most 4096 instructions) to their end; graft's may loop,
 * where following every speculative pass would not end. */
#define SPEC_WINDOW GVM_SPEC_WINDOW   /* vm.h: the checked interpreter runs as far */

static const char prohibited[] = "pointer arithmetic with it prohibited for !root";

/* Kernel program types verified offline (policy kctx) that only root may
 * load have no unprivileged verdict: the rules apply to graft's own
 * programs and to socket filters and cgroup_skb, as in the kernel. */
bool spec_on(const struct env *e)
{
    return !e->pol->spec_bypass &&
           (!e->pol->kctx || e->pol->kctx == GKT_SOCKET_FILTER || e->pol->kctx == GKT_CGROUP_SKB);
}

/* The registers a jump compared: on a speculative path they may hold
 * anything. */
static void forget_compared(struct vstate *st, const struct bpf_insn *in)
{
    struct reg *r = st->fr[st->nfr - 1]->regs;
    mark_unknown(&r[in->dst_reg]);
    if (BPF_SRC(in->code) == BPF_X)
        mark_unknown(&r[in->src_reg]);
}

static void make_speculative(struct vstate *st, uint32_t next)
{
    if (!st->speculative)
        st->spec_len = 0;      /* a nested misprediction shares the first one's window */
    st->speculative = true;
    st->insn = next;
}

/* st continues at next as a path only speculation takes. */
void spec_take_branch(struct env *e, struct vstate *st, const struct bpf_insn *in, uint32_t next)
{
    (void)e;
    forget_compared(st, in);
    make_speculative(st, next);
}

bool spec_window_over(struct vstate *st)
{
    return st->speculative && ++st->spec_len > SPEC_WINDOW;
}

/* The current state's other side (at next) cannot be taken: explore it
 * speculatively. */
int spec_push_branch(struct env *e, const struct bpf_insn *in, uint32_t next)
{
    if (!spec_on(e))
        return 0;
    struct vstate *s = state_copy(e->cur);
    if (!s)
        return -ENOMEM;
    spec_take_branch(e, s, in, next);
    int rc = push_state(e, s);
    if (rc)
        state_free(s);
    return rc;
}

/* How far a masked offset may move ptr (the kernel's retrieve_ptr_limit),
 * towards lower addresses (mask_to_left) or higher ones. 0 or a negative
 * reason. */
static int ptr_limit(struct env *e, const struct reg *p, bool mask_to_left, uint32_t *limit)
{
    uint32_t max, lim;
    switch (p->type) {
    case T_STACK:
        /* offset 0 (the frame's top) is a valid start going down */
        max = STACK_BYTES + (mask_to_left ? 1 : 0);
        lim = (uint32_t)-((int64_t)p->v.t.value + p->off);
        break;
    case T_MAP_VALUE:
        max = map_of(e, p->map_idx)->value_size;
        lim = (uint32_t)((mask_to_left ? (uint64_t)p->v.smin : p->v.umax) + (uint64_t)(int64_t)p->off);
        break;
    default:
        return -1;
    }
    if (lim >= max)
        return -2;
    *limit = lim;
    return 0;
}

static const char *op_name(const struct bpf_insn *in)
{
    return BPF_OP(in->code) == BPF_ADD ? "add" : "sub";
}

static int record_alu(struct env *e, const struct bpf_insn *in, uint8_t state, uint32_t limit)
{
    uint32_t idx = e->cur->insn;
    if (e->alu_state[idx] && (e->alu_state[idx] != state || e->alu_limit[idx] != limit))
        return reject(e, "R%d tried to %s from different maps, paths or scalars, %s", in->dst_reg,
                      op_name(in), prohibited);
    e->alu_state[idx] = state;
    e->alu_limit[idx] = limit;
    return 0;
}

int spec_ptr_alu_begin(struct env *e, const struct bpf_insn *in, const struct reg *ptr,
                       const struct reg *off, bool ptr_is_dst, struct spec_alu *sa)
{
    memset(sa, 0, sizeof(*sa));
    /* an immediate needs no mask: the verifier knows the only value */
    if (!spec_on(e) || BPF_SRC(in->code) == BPF_K)
        return 0;
    bool off_const = scalar_is_const(&off->v);
    bool off_neg = off->v.smin < 0;
    int off_reg = ptr_is_dst ? in->src_reg : in->dst_reg;
    int ptr_reg = ptr_is_dst ? in->dst_reg : in->src_reg;
    if (!e->cur->speculative) {
        if (!off_const && (off->v.smin < 0) != (off->v.smax < 0))
            return reject(e, "R%d has unknown scalar with mixed signed bounds, %s", off_reg, prohibited);
        uint8_t op = BPF_OP(in->code);
        sa->mask_to_left = (op == BPF_ADD && off_neg) || (op == BPF_SUB && !off_neg);
        int why = ptr_limit(e, ptr, sa->mask_to_left, &sa->limit);
        if (why == -1)
            return reject(e, "R%d has pointer with unsupported alu operation, %s", ptr_reg, prohibited);
        if (why == -2)
            return reject(e, "R%d tried to %s beyond pointer bounds, %s", in->dst_reg, op_name(in), prohibited);
        sa->active = true;
        sa->state = (off_neg ? SPEC_ALU_NEG_VALUE : 0) | (off_const ? SPEC_ALU_IMMEDIATE : 0) |
                    (ptr_is_dst ? SPEC_ALU_SANITIZE_SRC : SPEC_ALU_SANITIZE_DST);
        if (!off_const)
            e->explore_alu_limits = true;
    }
    if (off_const)
        return 0;
    /* Out of its range under speculation, the offset is masked to 0: the
     * destination is then the pointer unmoved. */
    struct vstate *s = state_copy(e->cur);
    if (!s)
        return -ENOMEM;
    s->fr[s->nfr - 1]->regs[in->dst_reg] = *ptr;
    make_speculative(s, e->cur->insn + 1);
    int rc = push_state(e, s);
    if (rc)
        state_free(s);
    return rc;
}

int spec_ptr_alu_end(struct env *e, const struct bpf_insn *in, const struct reg *res,
                     const struct spec_alu *sa)
{
    if (!spec_on(e))
        return 0;
    /* the result must stay inside its object, so a later access can be
     * masked (the kernel's sanitize_check_bounds) */
    int dr = in->dst_reg;
    if (res->type == T_STACK) {
        if (!scalar_is_const(&res->v)) {
            char tn[64];
            tnum_str(tn, sizeof(tn), res->v.t);
            return reject(e, "R%d variable stack access prohibited for !root, var_off=%s off=%d", dr, tn,
                          res->off);
        }
        int64_t at = (int64_t)res->v.t.value + res->off;
        if (at >= 0 || at < -STACK_BYTES)
            return reject(e, "R%d stack pointer arithmetic goes out of range, prohibited for !root; off=%" PRId64,
                          dr, at);
    } else if (res->type == T_MAP_VALUE) {
        uint32_t vs = map_of(e, res->map_idx)->value_size;
        if (res->v.smin == INT64_MIN || res->v.smin + res->off < 0 || res->v.umax > (uint64_t)OFF_LIMIT ||
            (int64_t)res->v.umax + res->off + 1 > (int64_t)vs)
            return reject(e, "R%d pointer arithmetic of map value goes out of range, prohibited for !root", dr);
    }
    if (!sa->active)
        return 0;
    uint32_t after;
    if (ptr_limit(e, res, sa->mask_to_left, &after) < 0)
        return reject(e, "R%d tried to %s beyond pointer bounds, %s", dr, op_name(in), prohibited);
    int32_t moved = (int32_t)(sa->limit - after);
    return record_alu(e, in, sa->state, (uint32_t)(moved < 0 ? -moved : moved));
}

/* scalar += / -= register on this path: the instruction needs no mask, and
 * must not need one on another path either. */
int spec_scalar_alu(struct env *e, const struct bpf_insn *in)
{
    uint8_t op = BPF_OP(in->code);
    if (!spec_on(e) || BPF_SRC(in->code) == BPF_K || (op != BPF_ADD && op != BPF_SUB))
        return 0;
    return record_alu(e, in, SPEC_ALU_NON_POINTER, 0);
}
