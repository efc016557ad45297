/*
 * kernel_kfuncs.c - the kernel's kfuncs, for verifying kernel programs
 * offline (`graft verify --privileged`): graft never calls a kernel kfunc
 * (its runtime has none; a program calling one is "verified; not
 * attachable by graft"), and graft's own policies never name these (a host
 * function needs an EIM class). The table below gives, for the kfuncs the
 * kernel's verifier selftests use, Linux 6.12's prototype and flags
 * (kernel/bpf/helpers.c, kernel/bpf/cpumask.c, fs/bpf_fs_kfuncs.c):
 *  - KF_ACQUIRE: the result is a reference that must be released on every
 *    path (KF_RET_NULL: or is NULL, checked before use);
 *  - KF_RELEASE: the object argument must be such a reference; every copy
 *    of it is dead afterwards;
 *  - KF_TRUSTED_ARGS / KF_RCU: object arguments must be trusted pointers at
 *    their start (graft has only trusted ones: returned by a kfunc or
 *    bpf_get_current_task_btf, unmodified);
 *  - open-coded iterators (KF_ITER_NEW / NEXT / DESTROY): _new initialises
 *    an iterator in stack slots that hold nothing of the kind yet and takes
 *    a reference; _next and _destroy need an initialised one of the same
 *    kind at its start; _destroy releases it. _next returns NULL (the
 *    iterator is then drained and stays so) or a pointer to the current
 *    int; its call is a loop point, as may_goto is (verifier.c): the kernel
 *    bounds the iterations, so a pass that an earlier pass on the same
 *    path covers ends the path;
 *  - which program types may call each (the kfunc sets' registrations,
 *    mapped to hooks by btf.c's bpf_prog_type_to_kfunc_hook): "calling
 *    kernel function X is not allowed" otherwise.
 * Stack slots of an iterator can be neither read nor written (stack.c).
 */
#include "loader/loader.h"   /* enum gprog_ktype only */
#include "verifier/env.h"

#define KF_ACQUIRE      0x1u
#define KF_RELEASE      0x2u
#define KF_RET_NULL     0x4u
#define KF_TRUSTED_ARGS 0x10u
#define KF_ITER_NEW     0x20u
#define KF_ITER_NEXT    0x40u
#define KF_ITER_DESTROY 0x80u
#define KF_RCU          0x100u
#define KF_SLEEPABLE    0x200u

/* argument kinds */
enum ka {
    KA_NONE = 0,
    KA_SCALAR,                 /* a number */
    KA_IGNORED,                /* __ign: anything, the kernel does not look */
    KA_OBJ,                    /* a kernel object of kind obj (or obj_alt) */
    KA_ITER,                   /* the iterator (new: uninitialised; else initialised) */
    KA_CTX,                    /* the unmodified context */
    KA_ARENA_MAP,              /* an arena map (p__map) */
};

/* return kinds */
enum kr { KR_VOID = 0, KR_INT, KR_OBJ, KR_ITER_INT };

/* iterator kinds and their sizes (struct bpf_iter_num: 8 bytes, ...) */
enum { ITER_NUM = 1, ITER_BITS = 2 };
static const struct { const char *name; uint32_t size; } iters[] = {
    [ITER_NUM] = { "num", 8 }, [ITER_BITS] = { "bits", 16 },
};
#define ITER_ACTIVE  0
#define ITER_DRAINED 1

/* which program types may call a kfunc: the sets' registrations */
enum {
    SET_COMMON = 1,            /* BPF_PROG_TYPE_UNSPEC: every type */
    SET_GENERIC,               /* tracing, tc, xdp, struct_ops, syscall, cgroup */
    SET_CPUMASK,               /* tracing, struct_ops, syscall */
    SET_FS,                    /* lsm */
};

struct gver_kernel_kfunc {
    const char *name;
    uint32_t flags;
    uint8_t set;
    uint8_t args[5];
    uint8_t obj[5];            /* KA_OBJ: the kind; KA_ITER: the iterator kind */
    uint8_t ret;
    uint8_t ret_obj;
};

#define T GVER_KOBJ_TASK
#define CG GVER_KOBJ_CGROUP
#define BC GVER_KOBJ_BPF_CPUMASK
#define CM GVER_KOBJ_CPUMASK
#define FI GVER_KOBJ_FILE

static const struct gver_kernel_kfunc kfuncs[] = {
    /* open-coded iterators (common_btf_ids) */
    { "bpf_iter_num_new", KF_ITER_NEW, SET_COMMON, { KA_ITER, KA_SCALAR, KA_SCALAR }, { ITER_NUM }, KR_INT, 0 },
    { "bpf_iter_num_next", KF_ITER_NEXT | KF_RET_NULL, SET_COMMON, { KA_ITER }, { ITER_NUM }, KR_ITER_INT, 0 },
    { "bpf_iter_num_destroy", KF_ITER_DESTROY, SET_COMMON, { KA_ITER }, { ITER_NUM }, KR_VOID, 0 },
    { "bpf_iter_bits_new", KF_ITER_NEW, SET_COMMON, { KA_ITER, KA_IGNORED, KA_SCALAR }, { ITER_BITS }, KR_INT, 0 },
    { "bpf_iter_bits_next", KF_ITER_NEXT | KF_RET_NULL, SET_COMMON, { KA_ITER }, { ITER_BITS }, KR_ITER_INT, 0 },
    { "bpf_iter_bits_destroy", KF_ITER_DESTROY, SET_COMMON, { KA_ITER }, { ITER_BITS }, KR_VOID, 0 },
    /* arenas (kernel/bpf/arena.c): the pages' address is a number until
     * addr_space_cast (alu.c) */
    { "bpf_arena_alloc_pages", KF_TRUSTED_ARGS | KF_SLEEPABLE, SET_COMMON,
      { KA_ARENA_MAP, KA_IGNORED, KA_SCALAR, KA_SCALAR, KA_SCALAR }, { 0 }, KR_INT, 0 },
    { "bpf_arena_free_pages", KF_TRUSTED_ARGS | KF_SLEEPABLE, SET_COMMON,
      { KA_ARENA_MAP, KA_IGNORED, KA_SCALAR }, { 0 }, KR_VOID, 0 },
    /* the kernel's structure behind the context (common_btf_ids) */
    { "bpf_cast_to_kern_ctx", 0, SET_COMMON, { KA_CTX }, { 0 }, KR_OBJ, GVER_KOBJ_KERN_CTX },
    /* tasks and cgroups (generic_btf_ids) */
    { "bpf_task_acquire", KF_ACQUIRE | KF_RCU | KF_RET_NULL, SET_GENERIC, { KA_OBJ }, { T }, KR_OBJ, T },
    { "bpf_task_release", KF_RELEASE, SET_GENERIC, { KA_OBJ }, { T }, KR_VOID, 0 },
    { "bpf_task_from_pid", KF_ACQUIRE | KF_RET_NULL, SET_GENERIC, { KA_SCALAR }, { 0 }, KR_OBJ, T },
    { "bpf_cgroup_acquire", KF_ACQUIRE | KF_RCU | KF_RET_NULL, SET_GENERIC, { KA_OBJ }, { CG }, KR_OBJ, CG },
    { "bpf_cgroup_release", KF_RELEASE, SET_GENERIC, { KA_OBJ }, { CG }, KR_VOID, 0 },
    { "bpf_cgroup_from_id", KF_ACQUIRE | KF_RET_NULL, SET_GENERIC, { KA_SCALAR }, { 0 }, KR_OBJ, CG },
    /* cpumasks (kernel/bpf/cpumask.c) */
    { "bpf_cpumask_create", KF_ACQUIRE | KF_RET_NULL, SET_CPUMASK, { KA_NONE }, { 0 }, KR_OBJ, BC },
    { "bpf_cpumask_acquire", KF_ACQUIRE | KF_TRUSTED_ARGS, SET_CPUMASK, { KA_OBJ }, { BC }, KR_OBJ, BC },
    { "bpf_cpumask_release", KF_RELEASE, SET_CPUMASK, { KA_OBJ }, { BC }, KR_VOID, 0 },
    { "bpf_cpumask_set_cpu", KF_RCU, SET_CPUMASK, { KA_SCALAR, KA_OBJ }, { 0, BC }, KR_VOID, 0 },
    { "bpf_cpumask_clear_cpu", KF_RCU, SET_CPUMASK, { KA_SCALAR, KA_OBJ }, { 0, BC }, KR_VOID, 0 },
    { "bpf_cpumask_test_cpu", KF_RCU, SET_CPUMASK, { KA_SCALAR, KA_OBJ }, { 0, CM }, KR_INT, 0 },
    /* files (fs/bpf_fs_kfuncs.c, LSM programs) */
    { "bpf_get_task_exe_file", KF_ACQUIRE | KF_TRUSTED_ARGS | KF_RET_NULL, SET_FS, { KA_OBJ }, { T }, KR_OBJ, FI },
    { "bpf_put_file", KF_RELEASE, SET_FS, { KA_OBJ }, { FI }, KR_VOID, 0 },
};
#define N_KFUNCS (sizeof(kfuncs) / sizeof(kfuncs[0]))

const struct gver_kernel_kfunc *gver_kernel_kfunc_find(const char *name)
{
    for (size_t i = 0; name && i < N_KFUNCS; i++)
        if (!strcmp(kfuncs[i].name, name))
            return &kfuncs[i];
    return NULL;
}

const char *gver_kobj_struct_name(uint32_t k)
{
    static const char *const names[GVER_KOBJ_MAX] = {
        [GVER_KOBJ_TASK] = "task_struct", [GVER_KOBJ_CGROUP] = "cgroup",
        [GVER_KOBJ_BPF_CPUMASK] = "bpf_cpumask", [GVER_KOBJ_CPUMASK] = "cpumask",
        [GVER_KOBJ_FILE] = "file", [GVER_KOBJ_KERN_CTX] = "the kernel's context structure",
    };
    return k < GVER_KOBJ_MAX ? names[k] : NULL;
}

/* btf.c's bpf_prog_type_to_kfunc_hook, then each set's registrations */
static bool set_allows(uint8_t set, int ktype)
{
    bool tracing = ktype == GKT_TRACING || ktype == GKT_TRACEPOINT || ktype == GKT_PERF_EVENT ||
                   ktype == GKT_LSM;
    bool cgroup = ktype == GKT_CGROUP_SKB || ktype == GKT_CGROUP_SOCK || ktype == GKT_CGROUP_DEV ||
                  ktype == GKT_CGROUP_SOCK_ADDR || ktype == GKT_CGROUP_SOCKOPT || ktype == GKT_CGROUP_SYSCTL;
    switch (set) {
    case SET_COMMON:
        return true;
    case SET_GENERIC:
        return tracing || cgroup || ktype == GKT_SCHED_CLS || ktype == GKT_XDP ||
               ktype == GKT_STRUCT_OPS || ktype == GKT_SYSCALL;
    case SET_CPUMASK:
        return tracing || ktype == GKT_STRUCT_OPS || ktype == GKT_SYSCALL;
    case SET_FS:
        return ktype == GKT_LSM;       /* the set's filter: LSM programs only */
    default:
        return false;
    }
}

static const struct gver_kernel_kfunc *kfunc_at(const struct env *e, int32_t imm)
{
    const struct gver_policy *p = e->pol;
    if (!p->kernel_kfuncs || imm < 0 || (uint32_t)imm >= p->n_kernel_kfuncs)
        return NULL;
    return p->kernel_kfuncs[imm];
}

bool is_iter_next_call(const struct env *e, uint32_t idx)
{
    const struct bpf_insn *in = &e->insns[idx];
    if (in->code != (BPF_JMP | BPF_CALL) || in->src_reg != BPF_PSEUDO_KFUNC_CALL)
        return false;
    const struct gver_kernel_kfunc *k = kfunc_at(e, in->imm);
    return k && (k->flags & KF_ITER_NEXT);
}

/* An object of kind want may be passed where kind have is: the same, or a
 * struct bpf_cpumask where a struct cpumask is expected (its first member). */
static bool obj_fits(uint32_t have, uint32_t want)
{
    return have == want || (want == GVER_KOBJ_CPUMASK && have == GVER_KOBJ_BPF_CPUMASK);
}

/* The slots of the iterator argument (a stack pointer at a constant,
 * 8-byte aligned offset): *first is the lowest-addressed slot's index. */
static int iter_slots(struct env *e, int regno, const struct gver_kernel_kfunc *k, uint32_t kind,
                      struct frame **fp, uint32_t *first, uint32_t *n)
{
    const struct reg *r = &regs(e)[regno];
    if (r->type != T_STACK || !scalar_is_const(&r->v))
        return reject(e, "R%d %s: arg#0 expected pointer to an iterator on stack (at a constant offset)",
                      regno, k->name);
    int64_t off = r->off + (int64_t)r->v.t.value;
    uint32_t size = iters[kind].size;
    if (off % 8 || off > -(int64_t)size || off < -BPF_STACK_SIZE)
        return reject(e, "R%d %s: the iterator at fp%+" PRId64 " is misaligned or outside the frame",
                      regno, k->name, off);
    *fp = e->cur->fr[r->frameno];
    *n = size / 8;
    /* slot s covers fp-8*(s+1) .. fp-8*s-1: the pointer is at slot (-off)/8 - 1 */
    *first = (uint32_t)(-off / 8 - 1);
    update_stack_depth(e, *fp, off);
    return 0;
}

/* Slot first - i (i = 0 at the pointer, higher addresses after) */
static struct slot *iter_slot(struct frame *f, uint32_t first, uint32_t i, bool grow)
{
    return frame_slot(f, first - i, grow);
}

static bool slot_is_iter(const struct slot *s)
{
    return s && s->kind[0] == S_SPILL && s->spill.type == T_ITER;
}

static int iter_arg(struct env *e, const struct gver_kernel_kfunc *k, uint32_t kind, uint32_t idx,
                    struct reg *r0_out, bool *fork)
{
    struct frame *f = NULL;
    uint32_t first = 0, n = 0;
    int rc = iter_slots(e, BPF_R1, k, kind, &f, &first, &n);
    if (rc)
        return rc;
    if (k->flags & KF_ITER_NEW) {
        for (uint32_t i = 0; i < n; i++)
            if (slot_is_iter(iter_slot(f, first, i, false)))
                return reject(e, "R1 %s: expected uninitialized iter_%s as arg #0", k->name, iters[kind].name);
        uint32_t id = new_id(e);
        if ((rc = acquire_ref(e, id, idx)))
            return rc;
        for (uint32_t i = 0; i < n; i++) {
            struct slot *s = iter_slot(f, first, i, true);
            if (!s)
                return -ENOMEM;
            memset(s->kind, S_SPILL, 8);
            memset(&s->spill, 0, sizeof(s->spill));
            s->spill.type = T_ITER;
            s->spill.map_idx = kind;
            s->spill.off = (int32_t)i;
            s->spill.ref_id = id;
            s->spill.mem_size = ITER_ACTIVE;
            scalar_const(&s->spill.v, 0);
        }
        return 0;
    }
    struct slot *s0 = iter_slot(f, first, 0, false);
    uint32_t ref = s0 && slot_is_iter(s0) ? s0->spill.ref_id : 0;
    for (uint32_t i = 0; i < n; i++) {
        struct slot *s = iter_slot(f, first, i, false);
        if (!slot_is_iter(s) || s->spill.map_idx != kind || s->spill.off != (int32_t)i ||
            s->spill.ref_id != ref)
            return reject(e, "R1 %s: expected an initialized iter_%s as arg #0", k->name, iters[kind].name);
    }
    if (k->flags & KF_ITER_DESTROY) {
        for (uint32_t i = 0; i < n; i++) {
            struct slot *s = iter_slot(f, first, i, false);
            memset(s->kind, S_INVALID, 8);
            memset(&s->spill, 0, sizeof(s->spill));
        }
        return release_ref(e, ref, BPF_R1);
    }
    /* _next: NULL once drained; else NULL (now drained) or the current int */
    if (s0->spill.mem_size == ITER_DRAINED) {
        mark_const(r0_out, 0);
        return 0;
    }
    memset(r0_out, 0, sizeof(*r0_out));
    r0_out->type = T_MEM;
    r0_out->rdonly = 1;
    r0_out->mem_size = 4;
    scalar_const(&r0_out->v, 0);
    *fork = true;
    return 0;
}

/* The drained side of a _next call: the iterator's slots say so, r0 = 0. */
static void iter_drain(struct vstate *st, const struct reg *it)
{
    struct frame *f = st->fr[it->frameno];
    int64_t off = it->off + (int64_t)it->v.t.value;
    uint32_t first = (uint32_t)(-off / 8 - 1);
    for (uint32_t i = 0; i <= first; i++) {
        struct slot *s = frame_slot(f, first - i, false);
        if (!slot_is_iter(s) || s->spill.off != (int32_t)i)
            break;
        s->spill.mem_size = ITER_DRAINED;
    }
}

static int obj_arg(struct env *e, const struct gver_kernel_kfunc *k, int i, uint32_t *release)
{
    int rn = BPF_R1 + i;
    const struct reg *r = &regs(e)[rn];
    const char *want = gver_kobj_struct_name(k->obj[i]);
    if (r->type == T_BTF_OR_NULL)
        return reject(e, "R%d %s: Possibly NULL pointer passed to trusted arg%d (struct %s)", rn, k->name, i, want);
    if (r->type != T_BTF || !obj_fits(r->map_idx, k->obj[i]))
        return reject(e, "R%d %s: arg#%d expected pointer to struct %s, not %s", rn, k->name, i, want,
                      r->type == T_BTF ? gver_kobj_struct_name(r->map_idx) : reg_type_name(r->type));
    if (r->off || !scalar_is_const(&r->v) || r->v.t.value)
        return reject(e, "R%d %s: arg#%d must be the pointer the kernel gave, at offset 0", rn, k->name, i);
    if (k->flags & KF_RELEASE) {
        if (!r->ref_id)
            return reject(e, "R%d %s: release kernel function expects refcounted PTR_TO_BTF_ID", rn, k->name);
        *release = r->ref_id;
    }
    return 0;
}

int check_kernel_kfunc(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    const struct gver_kernel_kfunc *k = kfunc_at(e, in->imm);
    if (!k)
        return 1;
    if (!set_allows(k->set, e->pol->kctx))
        return reject(e, "calling kernel function %s is not allowed: its kfunc set is not registered "
                      "for this program type", k->name);
    if (e->cur->lock_map)
        return reject(e, "kernel function %s is not allowed while holding a spin lock", k->name);
    if ((k->flags & KF_SLEEPABLE) && !e->pol->ksleepable)
        return reject(e, "program must be sleepable to call sleepable kfunc %s", k->name);
    int rc;
    uint32_t release = 0;
    struct reg r0;
    mark_unknown(&r0);
    bool fork = false;
    for (int i = 0; i < 5 && k->args[i] != KA_NONE; i++) {
        int rn = BPF_R1 + i;
        struct reg *r = &regs(e)[rn];
        if (r->type == T_NOT_INIT)
            return reject(e, "R%d !read_ok: %s arg#%d is not initialised", rn, k->name, i);
        switch (k->args[i]) {
        case KA_SCALAR:
            if (r->type != T_SCALAR)
                return reject(e, "R%d %s: arg#%d is not a scalar (%s)", rn, k->name, i, reg_type_name(r->type));
            break;
        case KA_IGNORED:
            break;
        case KA_ARENA_MAP:
            if (r->type != T_CONST_MAP || map_of(e, r->map_idx)->type != GMAP_KERNEL_ARENA)
                return reject(e, "R%d %s: arg#%d expected an arena map, not %s", rn, k->name, i,
                              reg_type_name(r->type));
            break;
        case KA_CTX:
            if (r->type != T_CTX || r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d %s: arg#%d expected the unmodified context", rn, k->name, i);
            break;
        case KA_OBJ:
            if ((rc = obj_arg(e, k, i, &release)))
                return rc;
            break;
        case KA_ITER:
            if ((rc = iter_arg(e, k, k->obj[i], idx, &r0, &fork)))
                return rc;
            break;
        default:
            return reject(e, "%s: argument kind %d not supported", k->name, k->args[i]);
        }
    }
    struct reg it = regs(e)[BPF_R1];
    if (release && (rc = release_ref(e, release, BPF_R1)))
        return rc;
    for (int r = BPF_R1; r <= BPF_R5; r++)
        mark_not_init(&regs(e)[r]);
    struct reg *d = &regs(e)[BPF_R0];
    switch (k->ret) {
    case KR_VOID:
        mark_not_init(d);
        break;
    case KR_INT:
        mark_unknown(d);
        break;
    case KR_OBJ:
        memset(d, 0, sizeof(*d));
        d->type = (k->flags & KF_RET_NULL) ? T_BTF_OR_NULL : T_BTF;
        d->map_idx = k->ret_obj;
        scalar_const(&d->v, 0);
        d->id = new_id(e);
        if (k->flags & KF_ACQUIRE) {
            d->ref_id = d->id;
            if ((rc = acquire_ref(e, d->id, idx)))
                return rc;
        }
        break;
    case KR_ITER_INT:
        *d = r0;
        break;
    }
    e->cur->insn = idx + 1;
    if (fork) {
        /* the iterator may be drained now: that path returns NULL */
        struct vstate *drained = state_copy(e->cur);
        if (!drained)
            return -ENOMEM;
        mark_const(&drained->fr[drained->nfr - 1]->regs[BPF_R0], 0);
        iter_drain(drained, &it);
        if ((rc = push_state(e, drained))) {
            state_free(drained);
            return rc;
        }
        top(e)->may_goto_passes++;      /* this path takes one more pass */
    }
    return 0;
}
