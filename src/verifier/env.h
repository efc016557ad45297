/*
 * env.h - what the verifier's checking files share (not for use outside
 * src/verifier/): the state of one verification (struct env), limits and
 * helper ids the rules name, small register utilities, and the functions
 * each file offers the others.
 */
#ifndef GRAFT_VERIFIER_ENV_H
#define GRAFT_VERIFIER_ENV_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verifier/vpriv.h"

#define REJECT (-100000)            /* internal: the program was rejected */
#define MAX_STATES_PER_INSN 64
#define OFF_LIMIT (1 << 29)         /* bound on pointer offsets, as the kernel's */
#define TRACE_MAX (1u << 20)

#define HELPER_SPIN_LOCK 93
#define HELPER_SPIN_UNLOCK 94
#define HELPER_TAIL_CALL 12
#define HELPER_FOR_EACH 164
#define HELPER_LOOP 181
#define HELPER_OVERRIDE_RETURN 58
#define HELPER_LOCAL_STORAGE 81
#define HELPER_COPY_FROM_USER_TASK 191
/* kernel map types graft does not implement, that kernel helpers take */
#define GMAP_KERNEL_CGROUP_STORAGE 19
#define GMAP_KERNEL_PERCPU_CGROUP_STORAGE 21
#define GMAP_KERNEL_ARENA 33
#define LOOP_MAX_ITER (1u << 23)

struct env {
    const struct gver_input *in;
    const struct bpf_insn *insns;
    uint32_t n;
    const struct gver_policy *pol;
    const struct ghelper_proto *(*proto)(uint32_t id);
    struct cfg cfg;

    struct vstate *cur;
    struct vstate **pending;
    uint32_t npending, cappending;
    struct sstate **explored;       /* per insn list */
    uint16_t *nexplored;

    uint64_t steps, max_steps, stored;
    uint32_t next_id;
    uint64_t max_path;              /* worst-case instructions per run (cost section) */
    uint32_t may_goto_loop;         /* 1 + the may_goto insn where a loop was cut, or 0 */
    uint64_t *cb_cost;              /* per helper call insn: worst callback iteration */
    uint64_t *cb_charged;           /* per helper call insn: least cb_cost a loop was charged */
    uint64_t worst_charge, worst_n, worst_iter;   /* the costliest loop charged ... */
    uint32_t worst_site;            /* ... and its helper call */
    uint32_t max_stack;

    int log_level;
    char *log;
    size_t loglen, logcap;
    uint32_t *trace;

    char reason[256];
    int64_t fail_insn;

    /* A map-in-map's inner map, as its outer map's inner_* fields define
     * it: map_idx n_maps + i stands for "some inner map of map i". */
    struct gmap_def *inner;

    uint32_t pkt_base_id;           /* the id of packet pointers based at data itself (packet.c) */
    /* kernel contexts: per load/store insn, 1 when a path used it on the
     * context, 2 on other memory (the kernel rewrites context accesses, so
     * one insn may not do both) */
    uint8_t *mem_ptr_kind;
    /* while a helper call's arguments are checked: may its memory
     * arguments be packet bytes (helper_pkt_access) */
    bool pkt_arg_ok;
    /* kernel contexts (kstack.c): each function's deepest stack, NULL when
     * the kernel's static chain limit does not apply */
    uint32_t *subprog_depth;
    uint32_t *tail_map;             /* kernel contexts: per tail call insn, its prog array + 1 */
    /* Spectre v1 rules (speculation.c), per ADD/SUB insn with a register
     * operand: the masking it needs (SPEC_ALU_* bits, 0 not yet seen) and
     * its limit; every path through the insn must need the same. */
    uint8_t *alu_state;
    uint32_t *alu_limit;
    bool explore_alu_limits;        /* a masked offset was seen: prune only on equal scalars */
    /* speculative windows (speculation.c), per exploration: a path was cut
     * at the end of its window; a speculative state pruned one with more of
     * its window left. spec_strict: the latter is not allowed
     * (explore_and_bound). */
    bool window_cut, window_shared, spec_strict;
    uint8_t *own_copy;              /* kernel_reads_own_mem: per call insn, 1 once accepted as an own-memory copy */
    struct gvm_insn_fact *facts;    /* record_facts: per insn, the join so far (facts.c) */
    uint8_t *fact_seen;             /* ... 1 once a state was joined there */
};

static inline bool is_ptr(const struct reg *r)
{
    return r->type >= T_CTX;
}

/* the socket pointer types (sock.c), each non-null type followed by its
 * _OR_NULL one */
static inline bool is_sock_type(uint8_t t)
{
    return t >= T_SOCK && t <= T_BTF_SOCK_OR_NULL;
}

static inline bool is_or_null(const struct reg *r)
{
    return r->type == T_MAP_VALUE_OR_NULL || r->type == T_MEM_OR_NULL ||
           r->type == T_CONST_MAP_OR_NULL || (is_sock_type(r->type) && (r->type - T_SOCK) % 2 == 1) ||
           r->type == T_BTF_OR_NULL;
}

static inline void mark_unknown(struct reg *r)
{
    memset(r, 0, sizeof(*r));
    r->type = T_SCALAR;
    scalar_unknown(&r->v);
}

static inline void mark_const(struct reg *r, uint64_t v)
{
    memset(r, 0, sizeof(*r));
    r->type = T_SCALAR;
    scalar_const(&r->v, v);
}

static inline void mark_not_init(struct reg *r)
{
    memset(r, 0, sizeof(*r));
}

static inline struct frame *top(struct env *e)
{
    return e->cur->fr[e->cur->nfr - 1];
}

static inline struct reg *regs(struct env *e)
{
    return top(e)->regs;
}

static inline unsigned size_bytes(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default: return 8;
    }
}

static inline const struct gmap_def *map_of(struct env *e, uint32_t idx)
{
    return idx < e->in->n_maps ? &e->in->maps[idx] : &e->inner[idx - e->in->n_maps];
}

/* Where map idx's value holds its spin lock (GVER_LOCK_UNKNOWN for inner
 * maps and when the caller gave no offsets). */
static inline int32_t map_lock_off(struct env *e, uint32_t idx)
{
    return e->in->map_lock_offs && idx < e->in->n_maps ? e->in->map_lock_offs[idx] : GVER_LOCK_UNKNOWN;
}

static inline bool is_map_of_maps(uint32_t type)
{
    return type == GMAP_ARRAY_OF_MAPS || type == GMAP_HASH_OF_MAPS;
}

enum acc { ACC_READ, ACC_WRITE, ACC_RMW };

/* A helper's or kfunc's write into the stack, applied after every argument
 * was checked. The pointer's offset and the size may vary: [lo, hi) is every
 * byte it may write, [sure_lo, sure_hi) (possibly empty) the bytes every
 * possible offset and size covers. */
struct pending_write {
    struct frame *f;
    int64_t lo, hi;
    int64_t sure_lo, sure_hi;
};

#define HELPER_PROBE_WRITE_USER 36

static inline bool is_null_const(const struct reg *r)
{
    return r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0;
}

/* ---- verifier.c ---- */
int reject(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint32_t new_id(struct env *e);
int push_state_at(struct env *e, struct vstate *s, uint32_t pos);
int push_state(struct env *e, struct vstate *s);
void free_exploration(struct env *e);
int explore_once(struct env *e);

/* ---- stack.c ---- */
void update_stack_depth(struct env *e, struct frame *f, int64_t lowest);
uint8_t *byte_kind(struct frame *f, int64_t off, bool grow, struct slot **sl);
uint8_t spill_remains(const struct env *e, const struct reg *spilled);
int stack_write_fixed(struct env *e, struct frame *f, int64_t off, unsigned size,
                      const struct reg *val, int valno);
int stack_write_var(struct env *e, struct frame *f, int64_t lo, int64_t hi_end,
                    const struct reg *val, int valno);
int stack_read_fixed(struct env *e, struct frame *f, int64_t off, unsigned size,
                     struct reg *dst, int ptrno, bool sext);
int stack_read_var(struct env *e, struct frame *f, int64_t lo, int64_t hi_end,
                   struct reg *dst, int ptrno, unsigned size, bool sext);
int apply_stack_write(struct env *e, const struct pending_write *pw);

/* ---- access.c ---- */
int check_read(struct env *e, int regno);
int check_ld_pkt(struct env *e, const struct bpf_insn *in);
int access_range(struct env *e, int regno, const struct reg *p, int64_t insn_off,
                 unsigned size, int64_t *lo, int64_t *hi_end);
int check_region(struct env *e, int regno, const struct reg *p, int64_t insn_off,
                 unsigned size, uint64_t limit, const char *what,
                 int64_t *plo, int64_t *phi);
int check_ctx_access(struct env *e, int regno, const struct reg *p, int64_t insn_off,
                     unsigned size, enum acc acc);
bool map_is_rdonly(const struct gmap_def *d);
bool map_is_wronly(const struct gmap_def *d);
int map_kptr_overlap(struct env *e, uint32_t map_idx, int64_t lo, int64_t hi);
int check_lock_word(struct env *e, int regno, uint32_t map_idx, int64_t lo, int64_t hi);
int check_ldx(struct env *e, const struct bpf_insn *in);
int check_st(struct env *e, const struct bpf_insn *in);
int check_stx(struct env *e, const struct bpf_insn *in);
int check_ld_imm64(struct env *e, const struct bpf_insn *in, uint32_t idx);

/* ---- alu.c ---- */
int check_alu(struct env *e, const struct bpf_insn *in);

/* ---- branch.c ---- */
int check_cond_jmp(struct env *e, const struct bpf_insn *in, uint32_t idx);
/* Both sides of the conditional jump at idx: OTHER (a copy of the current
 * state, refined for the taken side) queued at target, the current state
 * continued at the fall-through. Frees OTHER when it cannot be queued. */
int branch_fork(struct env *e, struct vstate *other, uint32_t target, uint32_t idx);

/* ---- calls.c ---- */
void mark_ptr_or_null(struct env *e, uint32_t id, bool is_null);
void reg_mark_not_null(struct reg *r);
bool is_probe_read(uint32_t id);
int check_helper_call(struct env *e, const struct bpf_insn *in, uint32_t idx);
int check_kfunc_call(struct env *e, const struct bpf_insn *in, uint32_t idx);
int check_local_call(struct env *e, const struct bpf_insn *in, uint32_t idx);
int set_map_value_ret(struct env *e, const struct bpf_insn *in);
int check_exit(struct env *e, uint32_t idx, bool *path_done);

/* ---- kernel_kfuncs.c ---- */
/* A kfunc call of a kernel program to a kernel kfunc the policy resolved
 * (gver_policy.kernel_kfuncs); 1 when the call is not one. */
int check_kernel_kfunc(struct env *e, const struct bpf_insn *in, uint32_t idx);
/* Is insn idx a call of an iterator's _next kfunc (a loop point, as
 * may_goto: verifier.c prune_point)? */
bool is_iter_next_call(const struct env *e, uint32_t idx);
void invalidate_ref(struct env *e, uint32_t ref_id);
int acquire_ref(struct env *e, uint32_t id, uint32_t idx);
int release_ref(struct env *e, uint32_t ref, int regno);

/* ---- packet.c ---- */
bool is_pkt(const struct reg *r);   /* T_PACKET or T_PACKET_META: data may be reached */
bool helper_changes_pkt_data(uint32_t id);
bool helper_pkt_access(uint32_t id);
void pkt_invalidate(struct env *e);
int check_pkt_access(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
                     enum acc acc);
int pkt_cond_jmp(struct env *e, const struct bpf_insn *in, uint32_t idx);

/* ---- sock.c ---- */
/* A load at p + insn_off through a socket pointer (struct bpf_sock,
 * bpf_tcp_sock, bpf_xdp_sock views): the kernel's per-field rules. */
int check_sock_access(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
                      enum acc acc);
/* A helper's argument kind that takes a socket: checks R regno. */
int check_sock_arg(struct env *e, int regno, enum garg_kind k, uint32_t helper, const char *hname);
/* r0 of a helper returning a socket (GRET_SOCKET_OR_NULL ...); arg_ref:
 * the reference a pointer cast inherits (GHELPER_F_PTR_CAST). */
int set_sock_ret(struct env *e, const struct ghelper_proto *pr, uint32_t idx, uint32_t arg_ref);
/* The kernel's map/helper pairing for socket maps (sockmap, sockhash,
 * xskmap, reuseport arrays, socket storage) and the socket helpers:
 * 1 when it decides (and accepts), 0 when not a socket map or helper,
 * or a rejection. */
int sock_map_helper(struct env *e, uint32_t helper, uint32_t map_type, const char *map_name);
/* A socket map's lookup: r0 typed as the map's socket (and acquired for
 * sockmap/sockhash). Returns 1 when the map is one, 0 otherwise. */
int sock_map_lookup_ret(struct env *e, uint32_t map_type, uint32_t idx);
bool sock_map_value_is_sock(uint32_t map_type);   /* update's value is a socket */

/* ---- ctx_kernel.c ---- */
/* A kernel context's rule (e->pol->kctx) for an access at p + insn_off:
 * 0 allowed (*ty: what a load gives), 1 when the policy's layout decides,
 * else a rejection. */
int kctx_check(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
               enum acc acc, bool sext, uint8_t *ty);
bool kctx_pkt_writable(const struct gver_policy *pol);

/* ---- klimits.c ---- */
int ktail_call_map(struct env *e, uint32_t idx, uint32_t map_idx);
void kstack_note(struct env *e, const struct frame *f);   /* f's depth grew */
int kstack_check(struct env *e);                          /* after exploration */
bool kstack_applies(int ktype);     /* the kernel gives the type no private stack */

/* ---- speculation.c ---- */
bool spec_on(const struct env *e);
int spec_push_branch(struct env *e, const struct bpf_insn *in, uint32_t next);
void spec_take_branch(struct env *e, struct vstate *st, const struct bpf_insn *in, uint32_t next);
bool spec_window_over(struct vstate *st);   /* counts an insn; true: the path ends here */
/* Pointer arithmetic ptr +/- off (alu.c ptr_alu): before computing it ... */
struct spec_alu {
    bool active;                    /* masking applies (register offset, not speculative) */
    bool mask_to_left;
    uint8_t state;
    uint32_t limit;
};
int spec_ptr_alu_begin(struct env *e, const struct bpf_insn *in, const struct reg *ptr,
                       const struct reg *off, bool ptr_is_dst, struct spec_alu *sa);
/* ... and after, with the result */
int spec_ptr_alu_end(struct env *e, const struct bpf_insn *in, const struct reg *res,
                     const struct spec_alu *sa);
int spec_scalar_alu(struct env *e, const struct bpf_insn *in);

/* ---- cost.c ---- */
uint64_t sat_add(uint64_t a, uint64_t b);
void cost_level_end(struct env *e, uint32_t k, uint64_t v);
bool cost_prune_ok(const struct vstate *cur, const struct sstate *s);
void cost_pruned(struct env *e, const struct sstate *s);
uint64_t cost_loop_charge(struct env *e, const struct cost_level *l);
void cost_loop_start(struct env *e, uint32_t site, uint64_t n, uint32_t pend_base);
int explore_and_bound(struct env *e);

/* facts.c: per-insn facts for the JIT (gver_input.record_facts) */
int facts_init(struct env *e);
void facts_reset(struct env *e);
void facts_note(struct env *e, uint32_t idx);
void facts_take(struct env *e, struct gver_result *out);

#endif
