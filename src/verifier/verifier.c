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
 *
 * This file owns the exploration (the path queue, pruning, the main loop)
 * and the entry point. Instructions are checked in alu.c, branch.c,
 * access.c (with stack.c) and calls.c; cost.c bounds the instructions run;
 * env.h is what they share.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verifier/env.h"

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

int reject(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int reject(struct env *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
    va_end(ap);
    /* as the kernel's log says it: the path only a misprediction takes */
    if (e->cur && e->cur->speculative && k >= 0 && (size_t)k < sizeof(e->reason))
        snprintf(e->reason + k, sizeof(e->reason) - (size_t)k, " (speculative execution)");
    e->fail_insn = e->cur ? (int64_t)e->cur->insn : -1;
    return REJECT;
}

/* ---- small utilities ---- */

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
        d->map_flags = o->inner_map_flags;   /* e.g. BPF_F_RDONLY_PROG */
        snprintf(d->name, sizeof(d->name), "%.50s.inner", o->name);
    }
    return 0;
}

uint32_t new_id(struct env *e)
{
    return ++e->next_id;
}

/* Queue s to be explored later, below the states queued since position
 * pos (the pending list is a stack: the top is explored first). */
int push_state_at(struct env *e, struct vstate *s, uint32_t pos)
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
    if (pos > e->npending)
        pos = e->npending;
    memmove(&e->pending[pos + 1], &e->pending[pos], (e->npending - pos) * sizeof(*e->pending));
    e->pending[pos] = s;
    e->npending++;
    return 0;
}

/* Queue s to be explored later (the other side of a branch). */
int push_state(struct env *e, struct vstate *s)
{
    return push_state_at(e, s, e->npending);
}

/* ---- paths, pruning ---- */

static void end_path(struct env *e)
{
    struct vstate *st = e->cur;
    for (struct sstate *s = st->parent; s; s = s->parent) {
        if (--s->branches)
            break;
    }
    state_free(st);
    e->cur = NULL;
}

/* The kernel's may_goto counter belongs to a function's run and counts
 * only fall-throughs (once spent, every may_goto jumps): a cycle from o to
 * c is bounded by it only if it stays in the same runs of every function
 * on the call stack and took a may_goto fall-through in the innermost. */
static bool may_goto_progress(const struct vstate *o, const struct vstate *c)
{
    if (o->nfr != c->nfr)
        return false;
    for (uint32_t i = 0; i < c->nfr; i++)
        if (o->fr[i]->instance != c->fr[i]->instance)
            return false;
    return c->fr[c->nfr - 1]->may_goto_passes > o->fr[o->nfr - 1]->may_goto_passes;
}

static bool on_path(const struct vstate *cur, const struct sstate *s)
{
    for (const struct sstate *a = cur->parent; a; a = a->parent)
        if (a == s)
            return true;
    return false;
}

/* A may_goto loop's next pass that its previous one (old) does not cover:
 * the ranges of the innermost frame that changed between the passes
 * (registers, spilled numbers) become unknown, as the kernel widens its
 * imprecise ones, so that the pass after covers - an over-approximation,
 * always sound; a bound the program needs is re-learnt from its own
 * checks. Constants stay (a counter the loop's exit test compares, as the
 * kernel keeps the ones a decided branch made precise): such loops unroll.
 * An iterator's loop (iter_loop) ends by the iterator, not by the
 * program's counters: after WIDEN_CONST_PASSES passes its changed
 * constants widen too (the states kept per insn are bounded: a longer
 * unrolling might never meet one that covers it). */
#define WIDEN_CONST_PASSES 32
static void widen_may_goto_pass(struct vstate *cur, const struct vstate *old, bool iter_loop)
{
    struct frame *cf = cur->fr[cur->nfr - 1];
    const struct frame *of = old->fr[old->nfr - 1];
    bool consts = iter_loop && cf->may_goto_passes >= WIDEN_CONST_PASSES;
    for (int r = 0; r < BPF_R10; r++)
        if (cf->regs[r].type == T_SCALAR && of->regs[r].type == T_SCALAR &&
            (consts || !scalar_is_const(&cf->regs[r].v)) && !scalar_covers(&of->regs[r].v, &cf->regs[r].v))
            mark_unknown(&cf->regs[r]);
    for (uint32_t s = 0; s < cf->nslots && s < of->nslots; s++) {
        struct slot *cs = &cf->slots[s];
        const struct slot *os = &of->slots[s];
        if (cs->kind[0] == S_SPILL && os->kind[0] == S_SPILL && cs->spill.type == T_SCALAR &&
            os->spill.type == T_SCALAR && (consts || !scalar_is_const(&cs->spill.v)) &&
            !scalar_covers(&os->spill.v, &cs->spill.v))
            mark_unknown(&cs->spill);
        for (int k = 0; k < 8; k++)
            if (cs->kind[k] == S_ZERO && os->kind[k] != S_ZERO)
                cs->kind[k] = S_MISC;
    }
}

/* 1: pruned (path ended), 0: go on, <0: reject/error */
static int prune_point(struct env *e)
{
    struct vstate *cur = e->cur;
    uint32_t insn = cur->insn;
    /* a callback just called by its helper (not a jump back to its start) */
    bool cb_entry = cur->cb_entering;
    uint32_t top_lvl = cur->nlvl - 1;
    int loop_checks = 0;
    uint32_t nspec = 0;
    /* iterators' _next calls are loop points as may_goto is (kernel_kfuncs.c) */
    bool at_may_goto = is_may_goto(&e->insns[insn]) || is_iter_next_call(e, insn);
    for (struct sstate *s = e->explored[insn]; s; s = s->next) {
        nspec += s->st.speculative;
        /* A speculative path needs safety only, not an end or a cost: any
         * state that covers it, even one still being explored (a loop),
         * stands for it, since every path from there is checked too
         * (speculation.c). Covering by inclusion suffices even after a
         * masked pointer offset was seen (explore_alu_limits, where real
         * paths need equal values): a speculative path records no masking
         * limit, only "numbers added here" (spec_scalar_alu), which depends
         * on register types, and covering needs equal types; every other
         * check holds for a state if it held for a wider one. */
        if (cur->speculative) {
            /* a speculative state's paths were followed only to the end of
             * its window: it stands for cur's only if cur's window ends no
             * later, or if no path was cut (explore_and_bound) */
            bool shares = s->st.speculative && s->st.spec_len > cur->spec_len;
            if (shares && e->spec_strict)
                continue;
            if (!states_cover(&s->st, cur, &e->cfg, false))
                continue;
            e->window_shared |= shares;
            if (e->log_level >= 2)
                logf_(e, "%u: safe (speculative, covered by a state seen)\n", insn);
            end_path(e);
            return 1;
        }
        /* A state in progress covers only a new iteration of its own loop
         * (the same helper call): the helper bounds the iterations. */
        bool reentry = cb_entry && s->cb_entry && top_lvl > 0 &&
                       s->st.lvl[top_lvl].loop == cur->lvl[top_lvl].loop;
        /* Or, at a may_goto, an earlier pass of this path through it: the
         * loop's next iteration does what one being explored does, and
         * the kernel's run-time may_goto counter ends the loop. Safety is
         * proven; the iteration count is not (may_goto_loop, cost.c).
         * Only for kernel programs verified offline (kctx): graft's own
         * runtime has no such counter, its loops must be unrolled. */
        bool may_goto_loop = at_may_goto && e->pol->kctx && s->branches && s->st.nlvl == cur->nlvl &&
                             may_goto_progress(&s->st, cur) && on_path(cur, s);
        if (s->branches == 0 || reentry || may_goto_loop) {
            if (!states_cover(&s->st, cur, &e->cfg, e->explore_alu_limits))
                continue;
            if (s->branches && may_goto_loop && !e->may_goto_loop)
                e->may_goto_loop = insn + 1;
            if (s->branches == 0 && !cost_prune_ok(cur, s))
                continue;
            if (s->branches == 0)
                cost_pruned(e, s);
            if (e->log_level >= 2)
                logf_(e, "%u: safe (covered by a verified state)\n", insn);
            end_path(e);
            return 1;
        }
        if (cb_entry && s->cb_entry)
            continue;               /* another loop's entry: not a cycle of this path */
        /* a state on the current path repeating exactly: the loop cannot
         * make progress. Only the most recent few are checked (cost); longer
         * cycles run into the budget instead. (A state in progress may also
         * wait for a loop's deferred return, off this path.) */
        if (++loop_checks <= 8 && !(e->pol->kctx && may_goto_progress(&s->st, cur)) &&
            states_cover(&s->st, cur, &e->cfg, false) && states_cover(cur, &s->st, &e->cfg, false) && on_path(cur, s))
            return reject(e, "infinite loop detected at insn %u: the state repeats without progress", insn);
    }
    if (at_may_goto && e->pol->kctx) {
        for (struct sstate *s = e->explored[insn]; s; s = s->next)
            if (s->branches && s->st.nlvl == cur->nlvl && may_goto_progress(&s->st, cur) && on_path(cur, s)) {
                widen_may_goto_pass(cur, &s->st, !is_may_goto(&e->insns[insn]));
                break;
            }
    }
    /* a loop's first entry is always kept: its re-entries stop there, and
     * the loop's cost is read there */
    bool loop_first_entry = cb_entry && top_lvl > 0 && !cur->lvl[top_lvl].entry;
    /* speculative states have their own share: a loop entered only
     * speculatively ends where one of them covers its next pass */
    if (cur->speculative ? nspec >= MAX_STATES_PER_INSN
                         : e->nexplored[insn] >= MAX_STATES_PER_INSN && !loop_first_entry)
        return 0;
    struct sstate *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (loop_first_entry)
        cur->lvl[top_lvl].entry = s;
    if (state_copy_into(&s->st, cur)) {
        cur->lvl[top_lvl].entry = NULL;
        free(s);
        return -ENOMEM;
    }
    s->parent = cur->parent;
    s->branches = 1;
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
        if (is_may_goto(in))
            return;
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
        if (is_ld_pkt(in)) {
            rc = check_ld_pkt(e, in);
            e->cur->insn = idx + 1;
            return rc;
        }
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
            /* a socket map's element is a socket (sock.c) */
            if ((rc = sock_map_lookup_ret(e, map_of(e, m)->type, idx)) != 0)
                return rc < 0 ? rc : 0;
            bool outer = is_map_of_maps(map_of(e, m)->type);
            bool nonnull = e->proto((uint32_t)in->imm)->ret == GRET_MAP_VALUE;
            memset(r0, 0, sizeof(*r0));
            /* a map of maps' value is an inner map: a map pointer, typed by
             * the outer map's inner definition */
            r0->type = outer ? T_CONST_MAP_OR_NULL : nonnull ? T_MAP_VALUE : T_MAP_VALUE_OR_NULL;
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
        if (spec_window_over(e->cur)) {
            e->window_cut = true;
            end_path(e);            /* past any misprediction's reach (speculation.c) */
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
        struct cost_level *lv = &e->cur->lvl[e->cur->nlvl - 1];
        lv->clk = sat_add(lv->clk, 1);
        e->cur->cb_entering = false;
        facts_note(e, idx);
        bool done;
        rc = do_insn(e, &done);
        if (rc)
            return rc;
        if (done)
            end_path(e);
    }
}

static uint64_t map_bytes(const struct gmap_def *d)
{
    uint64_t per = (uint64_t)d->key_size + d->value_size;
    return per * (d->max_entries ? d->max_entries : 1);
}

/* Forget the states of an exploration (the current, pending and stored
 * ones), keeping what the next one may reuse. */
void free_exploration(struct env *e)
{
    state_free(e->cur);
    e->cur = NULL;
    for (uint32_t i = 0; i < e->npending; i++)
        state_free(e->pending[i]);
    e->npending = 0;
    if (e->explored) {
        for (uint32_t i = 0; i < e->n; i++) {
            struct sstate *s = e->explored[i];
            while (s) {
                struct sstate *nx = s->next;
                state_release(&s->st);
                free(s);
                s = nx;
            }
            e->explored[i] = NULL;
            e->nexplored[i] = 0;
        }
    }
}

static void free_env(struct env *e)
{
    free(e->inner);
    free_exploration(e);
    free(e->pending);
    free(e->explored);
    free(e->nexplored);
    free(e->trace);
    free(e->cb_cost);
    free(e->cb_charged);
    free(e->mem_ptr_kind);
    free(e->subprog_depth);
    free(e->tail_map);
    free(e->alu_state);
    free(e->alu_limit);
    free(e->own_copy);
    free(e->facts);
    free(e->fact_seen);
    cfg_free(&e->cfg);
    state_pool_drain();
}

/* One exploration of every path from insn 0. */
int explore_once(struct env *e)
{
    e->cur = calloc(1, sizeof(*e->cur));   /* state_free may keep it for reuse: the same size */
    if (!e->cur)
        return -ENOMEM;
    e->cur->fr[0] = frame_new(0, -1);
    if (!e->cur->fr[0])
        return -ENOMEM;
    e->cur->fr[0]->instance = new_id(e);
    e->cur->nfr = 1;
    e->cur->nlvl = 1;
    struct reg *r1 = &e->cur->fr[0]->regs[BPF_R1];
    r1->type = T_CTX;
    scalar_const(&r1->v, 0);
    e->max_path = 0;
    e->window_cut = e->window_shared = false;
    e->pkt_base_id = new_id(e);
    e->worst_charge = e->worst_n = e->worst_iter = 0;
    for (uint32_t i = 0; i < e->n; i++)
        e->cb_charged[i] = UINT64_MAX;
    facts_reset(e);
    return explore(e);
}

static int run(struct env *e)
{
    if (e->pol->kernel_refused) {
        snprintf(e->reason, sizeof(e->reason), "%s", e->pol->kernel_refused);
        return REJECT;
    }
    int rc = cfg_build(&e->cfg, e->insns, e->n, e->pol->ret_checked || e->pol->ret_min || e->pol->ret_max,
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
    if (e->pol->kctx && (!(e->mem_ptr_kind = calloc(e->n, 1)) ||
                         !(e->tail_map = calloc(e->n, sizeof(uint32_t)))))
        return -ENOMEM;
    if (e->pol->kernel_reads_own_mem && !(e->own_copy = calloc(e->n, 1)))
        return -ENOMEM;
    if (kstack_applies(e->pol->kctx) &&
        !(e->subprog_depth = calloc(e->cfg.n_subprogs ? e->cfg.n_subprogs : 1, sizeof(uint32_t))))
        return -ENOMEM;
    if (spec_on(e) && (!(e->alu_state = calloc(e->n, 1)) || !(e->alu_limit = calloc(e->n, sizeof(uint32_t)))))
        return -ENOMEM;
    if (facts_init(e))
        return -ENOMEM;
    e->cb_cost = calloc(e->n, sizeof(*e->cb_cost));
    e->cb_charged = calloc(e->n, sizeof(*e->cb_charged));
    if (!e->cb_cost || !e->cb_charged)
        return -ENOMEM;
    rc = explore_and_bound(e);
    return rc ? rc : kstack_check(e);
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
        out->policy_tag = gver_policy_tag(e.pol);
        for (uint32_t i = 0; e.own_copy && i < e.n; i++)
            out->n_own_copies += e.own_copy[i];
        if (out->n_own_copies && !(out->own_copies = malloc(out->n_own_copies * sizeof(uint32_t)))) {
            out->accepted = 0;
            out->n_own_copies = 0;
            rc = graft_errf(err, -ENOMEM, "verifier: out of memory");
        }
        for (uint32_t i = 0, k = 0; out->own_copies && i < e.n; i++)
            if (e.own_copy[i])
                out->own_copies[k++] = i;
        facts_take(&e, out);
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
        free(res->own_copies);
        res->own_copies = NULL;
        res->n_own_copies = 0;
        free(res->facts);
        res->facts = NULL;
        res->n_facts = 0;
    }
}
