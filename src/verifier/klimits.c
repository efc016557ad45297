/*
 * klimits.c - limits the kernel puts on programs for its own runtime's
 * sake (its JIT, its stack layout), for offline verdicts of kernel
 * programs (gver_policy.kctx): the combined stack and the frames of a call
 * chain, and one map per tail call instruction for unprivileged programs.
 *
 * The stack.
 * graft bounds the stack path by path (every frame of its VM has its own
 * 512 bytes, so that is all its runtime needs). The kernel instead gives
 * every function the deepest stack any of its paths uses, rounded up to
 * 16 bytes, and refuses a program when the functions along some chain of
 * calls (bpf-to-bpf calls and callback references) add up to more than
 * 512 bytes, even if no single path goes that deep. Kernel programs are
 * judged by that rule too.
 *
 * The frames. Likewise graft counts frames on the paths it explores (at
 * most BPF_MAX_CALL_DEPTH), so a call in dead code never counts; the
 * kernel walks every call instruction and refuses a chain of more than 8
 * functions even through calls no path takes. Kernel programs of every
 * type are judged by that rule too (the private stacks of the tracing
 * types change only the stack rule).
 */
#include "loader/loader.h"
#include "verifier/env.h"

bool kstack_applies(int ktype)
{
    switch (ktype) {
    case GKT_NONE:
    /* the tracing types may get a private stack of their own (6.12) */
    case GKT_KPROBE: case GKT_TRACEPOINT: case GKT_PERF_EVENT: case GKT_RAW_TRACEPOINT:
    case GKT_TRACING: case GKT_LSM: case GKT_STRUCT_OPS:
        return false;
    default:
        return true;
    }
}

/* The function (subprogram index) frame f of the current state runs. */
static uint32_t frame_subprog(const struct env *e, const struct frame *f)
{
    const struct vstate *st = e->cur;
    uint32_t insn = f->frameno + 1 < st->nfr ? (uint32_t)st->fr[f->frameno + 1]->callsite : st->insn;
    return insn < e->n ? e->cfg.subprog_of[insn] : 0;
}

void kstack_note(struct env *e, const struct frame *f)
{
    if (!e->subprog_depth)
        return;
    uint32_t s = frame_subprog(e, f);
    if (f->depth > e->subprog_depth[s])
        e->subprog_depth[s] = f->depth;
}

static uint32_t round16(uint32_t d)
{
    return (d + 15) & ~15u;
}

/* The callee of insn i (a bpf-to-bpf call or a callback reference) as a
 * subprogram index, or -1. */
static int64_t callee_of(const struct env *e, uint32_t i)
{
    const struct bpf_insn *in = &e->insns[i];
    if (!((in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL) ||
          (in->code == (BPF_LD | BPF_IMM | BPF_DW) && in->src_reg == BPF_PSEUDO_FUNC)))
        return -1;
    int64_t target = (int64_t)i + 1 + in->imm;
    return target >= 0 && target < e->n ? (int64_t)e->cfg.subprog_of[target] : -1;
}

/* The deepest chain from function s (its own stack included); on[] marks
 * the functions of the chain being walked (a cycle ends the walk there:
 * recursion is bounded by exploration, not by this rule). */
static uint32_t chain_depth(const struct env *e, uint32_t s, uint8_t *on, uint32_t level)
{
    uint32_t own = round16(e->subprog_depth[s]), deepest = 0;
    if (on[s] || level > BPF_MAX_CALL_DEPTH)
        return 0;
    on[s] = 1;
    uint32_t end = s + 1 < e->cfg.n_subprogs ? e->cfg.subprog_start[s + 1] : e->n;
    for (uint32_t i = e->cfg.subprog_start[s]; i < end; i++) {
        int64_t t = callee_of(e, i);
        if (t < 0)
            continue;
        uint32_t d = chain_depth(e, (uint32_t)t, on, level + 1);
        if (d > deepest)
            deepest = d;
    }
    on[s] = 0;
    return own + deepest;
}

/* The most functions on one chain of calls from s, s included, over every
 * call instruction (dead code too). state: 0 not seen, 1 on the walk, 2
 * done with frames[s] its answer. A call back into a function on the walk
 * (recursion, which exploration bounds) does not lengthen the chain. */
static uint32_t chain_frames(const struct env *e, uint32_t s, uint8_t *state, uint32_t *frames)
{
    if (state[s] == 1)
        return 0;
    if (state[s] == 2)
        return frames[s];
    state[s] = 1;
    uint32_t deepest = 0;
    uint32_t end = s + 1 < e->cfg.n_subprogs ? e->cfg.subprog_start[s + 1] : e->n;
    for (uint32_t i = e->cfg.subprog_start[s]; i < end; i++) {
        int64_t t = callee_of(e, i);
        uint32_t d = t < 0 ? 0 : chain_frames(e, (uint32_t)t, state, frames);
        if (d > deepest)
            deepest = d;
    }
    state[s] = 2;
    frames[s] = deepest + 1;
    return frames[s];
}

static int kframes_check(struct env *e)
{
    uint32_t ns = e->cfg.n_subprogs ? e->cfg.n_subprogs : 1;
    uint8_t *state = calloc(ns, 1);
    uint32_t *frames = calloc(ns, sizeof(*frames));
    if (!state || !frames) {
        free(state);
        free(frames);
        return -ENOMEM;
    }
    uint32_t n = chain_frames(e, 0, state, frames);
    free(state);
    free(frames);
    if (n > BPF_MAX_CALL_DEPTH) {
        snprintf(e->reason, sizeof(e->reason),
                 "the call stack of %u frames is too deep: some chain of calls, reachable or not, is deeper "
                 "than the kernel's %d frames (it counts every call instruction)", n, BPF_MAX_CALL_DEPTH);
        return REJECT;
    }
    return 0;
}

/* Unprivileged kernel programs: a tail call instruction sees one prog
 * array on every path (the kernel's JIT emits it as that map's direct
 * jump, a Spectre hardening); a second is "tail_call abusing map_ptr". */
int ktail_call_map(struct env *e, uint32_t idx, uint32_t map_idx)
{
    if (!e->tail_map || e->pol->allow_ptr_leaks)
        return 0;
    if (e->tail_map[idx] && e->tail_map[idx] != map_idx + 1)
        return reject(e, "tail_call abusing map_ptr: this tail call sees two prog arrays, which the kernel "
                      "refuses to unprivileged programs");
    e->tail_map[idx] = map_idx + 1;
    return 0;
}

int kstack_check(struct env *e)
{
    if (e->pol->kctx) {
        int rc = kframes_check(e);
        if (rc)
            return rc;
    }
    if (!e->subprog_depth)
        return 0;
    uint8_t *on = calloc(e->cfg.n_subprogs ? e->cfg.n_subprogs : 1, 1);
    if (!on)
        return -ENOMEM;
    uint32_t d = chain_depth(e, 0, on, 0);
    free(on);
    if (d > BPF_STACK_SIZE) {
        snprintf(e->reason, sizeof(e->reason),
                 "combined stack size of the deepest call chain is %u bytes. Too large (the kernel adds up "
                 "each function's deepest stack, rounded to 16 bytes, along every chain of calls; at most %d)",
                 d, BPF_STACK_SIZE);
        return REJECT;
    }
    return 0;
}
