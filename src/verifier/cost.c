/*
 * cost.c - the worst-case instruction count per invocation that every
 * accepted program gets, and its check against the instruction budget
 * (see the comment below).
 */
#include "verifier/env.h"

/* ---- worst-case instruction count ----
 *
 * Every accepted program has a proven bound on the instructions it runs per
 * invocation (gver_result.max_path_insns), checked against the policy's
 * insn_budget (GVER_DEFAULT_INSN_BUDGET when the policy sets none).
 *
 * Paths the verifier explores one by one (straight code, bounded loops it
 * unrolls, subprogram calls) count their instructions directly. A callback
 * driven by a helper (bpf_loop, for_each_map_elem) is explored for one
 * iteration and re-entered until its entry state repeats; its cost is
 * charged at the helper call as N x C: N the most iterations the call can
 * make (bpf_loop: nr_loops' proven upper bound, at most 2^23;
 * for_each_map_elem: the map's max_entries), C the worst iteration over
 * every path explored through callbacks called from that insn. Nested loops
 * multiply, since C includes the inner loops' charges.
 *
 * Cost levels: level 0 is the program, level k the k-th callback frame of
 * the call stack. Each level has a clock (vstate.lvl[k].clk): instructions
 * run at that level plus the charges of loops it completed. A level's clock
 * stands still while a callback above it runs: the whole loop is charged
 * when it returns. Each stored state keeps rem[k], the most its level-k
 * clock may still gain until level k ends, over the paths explored from it.
 * A path pruned by a complete state s then continues as s's paths do: its
 * level k ends at most rem[k] later. Below the innermost loop the two paths
 * run in, what follows is the rest of the loop, whose cost is the loop
 * instance's: it is read from the state stored at that loop's first entry,
 * which must then be complete. A re-entry pruned by its own loop's entry
 * (in progress) adds nothing: every iteration is in the N x C charge, and
 * every state the loop can return with is among the states its explored
 * iterations return with.
 *
 * C is known only when every iteration path was explored; the return of a
 * loop is explored after its iterations (push_state_at), and if a later
 * loop instance still raised C after a charge used it, the exploration,
 * which costs do not steer, is run again with the final values
 * (COST_MAX_RUNS; nested loops need one run per level at most).
 *
 * may_goto loops of kernel programs (verified offline only, policy kctx)
 * are cut where a pass repeats, not unrolled: only the kernel's run-time
 * counter bounds them, so max_path is then unbounded (UINT64_MAX) and the
 * budget is not checked; any other policy is refused such a loop.
 *
 * Tail calls: the bound is per program. A tail call counts as one
 * instruction; the program it jumps to has its own bound, and a chain runs
 * at most 33 programs (the runtime's limit), so at most 33 bounds.
 */
#define COST_MAX_RUNS 10

uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

/* Level k of the current path ends with its clock at v: the states stored
 * in the same level-k iteration (or program run) learn what level k may
 * still cost from them. Stops at the first state that knew as much: its
 * older ones have heard of every path it has. */
void cost_level_end(struct env *e, uint32_t k, uint64_t v)
{
    struct vstate *st = e->cur;
    if (st->speculative)
        return;                 /* never run to its end: no instructions to count */
    if (k == 0) {
        if (v > e->max_path)
            e->max_path = v;
    } else if (v > e->cb_cost[st->lvl[k].site]) {
        e->cb_cost[st->lvl[k].site] = v;
    }
    for (struct sstate *a = st->parent; a; a = a->parent) {
        if (a->st.nlvl <= k || a->st.lvl[k].iter != st->lvl[k].iter)
            break;
        uint64_t d = v > a->st.lvl[k].clk ? v - a->st.lvl[k].clk : 0;
        if (a->rem[k] >= d)
            break;
        a->rem[k] = d;
    }
}

/* Can the complete state s stand for cur's cost? Where their loops
 * differ, s's loop instance must be fully explored (its rem final). */
bool cost_prune_ok(const struct vstate *cur, const struct sstate *s)
{
    for (uint32_t k = 1; k < cur->nlvl; k++)
        if (cur->lvl[k].loop != s->st.lvl[k].loop &&
            (!s->st.lvl[k].entry || s->st.lvl[k].entry->branches))
            return false;
    return true;
}

/* cur is pruned by the complete state s: its levels end as s's would. */
void cost_pruned(struct env *e, const struct sstate *s)
{
    struct vstate *cur = e->cur;
    uint32_t top_lvl = cur->nlvl - 1;
    cost_level_end(e, top_lvl, sat_add(cur->lvl[top_lvl].clk, s->rem[top_lvl]));
    for (uint32_t k = top_lvl; k-- > 0;) {
        if (cur->lvl[k + 1].loop == s->st.lvl[k + 1].loop)
            break;          /* the same loop: its own paths bound what follows */
        cost_level_end(e, k, sat_add(cur->lvl[k].clk, s->st.lvl[k + 1].entry->rem[k]));
    }
}

/* A callback loop returns: what its caller's level is charged. */
uint64_t cost_loop_charge(struct env *e, const struct cost_level *l)
{
    uint64_t per = e->cb_cost[l->site];
    if (per < e->cb_charged[l->site])
        e->cb_charged[l->site] = per;
    uint64_t c = sat_mul(l->n, per);
    if (c > e->worst_charge) {
        e->worst_charge = c;
        e->worst_site = l->site;
        e->worst_n = l->n;
        e->worst_iter = per;
    }
    return c;
}

/* A helper at insn site starts a callback loop of at most n iterations. */
void cost_loop_start(struct env *e, uint32_t site, uint64_t n, uint32_t pend_base)
{
    struct vstate *st = e->cur;
    struct cost_level *l = &st->lvl[st->nlvl++];
    memset(l, 0, sizeof(*l));
    l->iter = new_id(e);
    l->loop = new_id(e);
    l->site = site;
    l->n = n;
    l->pend_base = pend_base;
}

/* Explore until no loop was charged less than its final iteration cost
 * (see the cost section); then check the bound against the budget. */
int explore_and_bound(struct env *e)
{
    uint64_t total_steps = 0;
    size_t log_mark = e->loglen;
    for (int run_no = 1;; run_no++) {
        e->steps = 0;
        e->may_goto_loop = 0;
        int rc = explore_once(e);
        total_steps += e->steps;
        if (rc) {
            e->steps = total_steps;
            return rc;
        }
        bool stale = false;
        for (uint32_t i = 0; i < e->n && !stale; i++)
            stale = e->cb_charged[i] != UINT64_MAX && e->cb_charged[i] < e->cb_cost[i];
        /* A speculative state pruned a path with more of its window left
         * than it had, and a path was cut at the end of its window: the
         * pruned path may have been checked less far than it may run
         * (speculation.c). Explore again without such pruning. Without a
         * cut every speculative path was followed to its end, and such
         * pruning is sound; without such pruning, the strict exploration
         * would be this one. */
        bool window = e->window_cut && e->window_shared && !e->spec_strict;
        e->spec_strict |= window;
        if (!stale && !window)
            break;
        if (stale && run_no >= COST_MAX_RUNS) {
            e->steps = total_steps;
            snprintf(e->reason, sizeof(e->reason),
                     "the worst-case instruction count of the callback loops did not settle in %d explorations",
                     COST_MAX_RUNS);
            return REJECT;
        }
        free_exploration(e);
        e->loglen = log_mark;           /* the same paths again: log them once */
        if (e->log)
            e->log[log_mark] = 0;
    }
    e->steps = total_steps;
    if (e->may_goto_loop) {
        /* A loop through may_goto whose iterations the verifier did not
         * count: only the kernel's run-time counter (2^23 passes per
         * may_goto and run) ends it. A kernel program verified offline
         * (kctx) may rely on it; graft's runtime has no such counter (its
         * VM refuses may_goto), so for graft the run is unbounded. */
        e->max_path = UINT64_MAX;
        if (e->pol->kctx)
            return 0;
        snprintf(e->reason, sizeof(e->reason),
                 "the loop through may_goto at insn %u ends only by the kernel's run-time may_goto counter, "
                 "which graft's runtime does not have: no bound on the instructions it runs",
                 e->may_goto_loop - 1);
        e->fail_insn = e->may_goto_loop - 1;
        return REJECT;
    }
    uint64_t budget = e->pol->insn_budget ? e->pol->insn_budget : GVER_DEFAULT_INSN_BUDGET;
    if (e->max_path <= budget)
        return 0;
    char bound[32];
    if (e->max_path == UINT64_MAX)
        snprintf(bound, sizeof(bound), "more than 2^64");
    else
        snprintf(bound, sizeof(bound), "%" PRIu64, e->max_path);
    const char *whose = e->pol->insn_budget ? "the policy allows" : "the default budget allows";
    if (!e->worst_charge) {
        snprintf(e->reason, sizeof(e->reason),
                 "instruction budget exceeded: the worst case runs %s instructions per invocation, %s %" PRIu64,
                 bound, whose, budget);
        return REJECT;
    }
    const struct bpf_insn *call = &e->insns[e->worst_site];
    char msg[512];
    snprintf(msg, sizeof(msg),
             "instruction budget exceeded: the worst case runs %s instructions per invocation, %s %" PRIu64
             "; the %s at insn %u runs up to %" PRIu64 " iterations of its callback, each up to %" PRIu64
             " instructions",
             bound, whose, budget, call->imm == HELPER_LOOP ? "bpf_loop" : "for_each_map_elem",
             e->worst_site, e->worst_n, e->worst_iter);
    size_t len = strnlen(msg, sizeof(e->reason) - 1);
    memcpy(e->reason, msg, len);
    e->reason[len] = 0;
    e->fail_insn = e->worst_site;
    return REJECT;
}
