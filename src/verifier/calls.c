/*
 * calls.c - calls and returns: helper calls (argument kinds, memory and
 * size arguments, maps, references, spin locks, callbacks of bpf_loop and
 * for_each_map_elem, host-pointer rules), kfunc calls, bpf-to-bpf calls,
 * and exits from the program, a subprogram or a callback.
 */
#include "util/task_layout.h"
#include "verifier/env.h"

/* ---- calls ---- */

/* r (possibly null) is proven non-null: its type without the NULL. */
void reg_mark_not_null(struct reg *r)
{
    if (!is_or_null(r))
        return;
    if (is_sock_type(r->type))
        r->type--;                 /* each socket type follows its non-null one */
    else if (r->type == T_MAP_VALUE_OR_NULL)
        r->type = T_MAP_VALUE;
    else if (r->type == T_CONST_MAP_OR_NULL)
        r->type = T_CONST_MAP;
    else if (r->type == T_MEM_OR_NULL)
        r->type = T_MEM;
    else if (r->type == T_BTF_OR_NULL)
        r->type = T_BTF;
}

/* Every copy of the pointer with this id becomes non-null or the scalar 0. */
void mark_ptr_or_null(struct env *e, uint32_t id, bool is_null)
{
    struct vstate *st = e->cur;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (uint32_t k = 0; k < BPF_NREGS + f->nslots; k++) {
            struct reg *r = k < BPF_NREGS ? &f->regs[k] : &f->slots[k - BPF_NREGS].spill;
            if (k >= BPF_NREGS && f->slots[k - BPF_NREGS].kind[0] != S_SPILL)
                continue;
            if (!is_or_null(r) || r->id != id)
                continue;
            if (is_null) {
                mark_const(r, 0);
            } else {
                bool value = r->type == T_MAP_VALUE_OR_NULL;
                reg_mark_not_null(r);
                /* a map value keeps its lookup's id: it names the element,
                 * so a spin lock is unlocked in the element it was taken in */
                if (!value)
                    r->id = 0;
            }
        }
    }
    if (is_null) {
        /* a null reservation holds nothing to release */
        for (uint32_t i = 0; i < st->nrefs; i++)
            if (st->refs[i].id == id) {
                st->refs[i] = st->refs[--st->nrefs];
                break;
            }
    }
}

/* The resource is gone: no copy of a pointer to it may be used again.
 * Under the kernel's root rules (allow_ptr_leaks) the copies become
 * numbers, as the kernel's mark_reg_invalid makes them: the address of a
 * freed object, which those rules let a program hold. */
void invalidate_ref(struct env *e, uint32_t ref_id)
{
    struct vstate *st = e->cur;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (int r = 0; r < BPF_NREGS; r++)
            if (is_ptr(&f->regs[r]) && f->regs[r].ref_id == ref_id) {
                if (e->pol->allow_ptr_leaks)
                    mark_unknown(&f->regs[r]);
                else
                    mark_not_init(&f->regs[r]);
            }
        for (uint32_t s = 0; s < f->nslots; s++)
            if (f->slots[s].kind[0] == S_SPILL && is_ptr(&f->slots[s].spill) &&
                f->slots[s].spill.ref_id == ref_id) {
                memset(f->slots[s].kind, spill_remains(e, &f->slots[s].spill), 8);
                mark_unknown(&f->slots[s].spill);
            }
    }
}

/* A new reference (an acquired kernel object, an iterator) made at insn idx. */
int acquire_ref(struct env *e, uint32_t id, uint32_t idx)
{
    struct vstate *st = e->cur;
    if (st->nrefs == MAX_REFS)
        return reject(e, "too many outstanding references (max %d)", MAX_REFS);
    st->refs[st->nrefs].id = id;
    st->refs[st->nrefs++].insn = (int32_t)idx;
    return 0;
}

/* Release reference ref (passed in regno): every pointer to it is gone. */
int release_ref(struct env *e, uint32_t ref, int regno)
{
    struct vstate *st = e->cur;
    uint32_t i;
    for (i = 0; i < st->nrefs && st->refs[i].id != ref; i++)
        ;
    if (!ref || i == st->nrefs)
        return reject(e, "R%d release of an unacquired reference id=%u", regno, ref);
    struct frame *tf = top(e);
    if (tf->is_callback && i < tf->cb_nrefs)
        return reject(e, "R%d callback releases reference id=%u acquired outside it", regno, ref);
    st->refs[i] = st->refs[--st->nrefs];
    invalidate_ref(e, ref);
    return 0;
}

/* Memory argument: [p, p + size_max) must be accessible (readable and
 * initialised unless uninit_ok). Writes to the stack are recorded in *pw;
 * the callee writes at least size_min bytes. */
static int check_mem_arg(struct env *e, int regno, uint64_t size_min, uint64_t size_max, bool write,
                         bool uninit_ok, struct pending_write *pw)
{
    struct reg p = regs(e)[regno];
    int rc;
    if (size_max > OFF_LIMIT)
        return reject(e, "R%d memory argument of up to %" PRIu64 " bytes: size is unbounded", regno, size_max);
    unsigned sz = (unsigned)size_max;
    switch (p.type) {
    case T_STACK: {
        struct frame *f = e->cur->fr[p.frameno];
        int64_t lo = 0, hi = 0;
        if ((rc = access_range(e, regno, &p, 0, sz, &lo, &hi)))
            return rc;
        if (lo < -BPF_STACK_SIZE || hi > 0)
            return reject(e, "invalid indirect access to stack R%d off=%" PRId64 " size=%u: outside the %d-byte frame",
                          regno, lo, sz, BPF_STACK_SIZE);
        update_stack_depth(e, f, lo);
        if (!uninit_ok) {
            if ((rc = stack_read_var(e, f, lo, hi, NULL, regno, sz, false)))
                return rc;
        } else {
            /* the helper overwrites: no spilled pointer may be destroyed
             * (the kernel lets root's kernel programs: the bytes become
             * data; never an iterator's state) */
            bool root = e->pol->kctx && e->pol->allow_ptr_leaks;
            for (int64_t o = lo; o < hi; o++) {
                struct slot *s;
                uint8_t *k = byte_kind(f, o, false, &s);
                if (k && *k == S_SPILL && s->spill.type != T_SCALAR && (!root || s->spill.type == T_ITER))
                    return reject(e, "R%d helper would overwrite the %s spilled at fp%+" PRId64, regno,
                                  s->spill.type == T_ITER ? "iterator" : "pointer", o);
            }
        }
        if (write && pw) {
            pw->f = f;
            pw->lo = lo;
            pw->hi = hi;
            pw->sure_lo = p.off + p.v.smax;
            pw->sure_hi = p.off + p.v.smin + (int64_t)size_min;
        }
        return 0;
    }
    case T_MAP_VALUE: {
        const struct gmap_def *d = map_of(e, p.map_idx);
        if (write && map_is_rdonly(d))
            return reject(e, "R%d write into read-only map '%s' not allowed", regno, d->name);
        if (!write && map_is_wronly(d))
            return reject(e, "R%d read from write-only map '%s' forbidden (BPF_F_WRONLY_PROG): the helper reads it",
                          regno, d->name);
        int64_t lo = 0, hi = 0;
        if ((rc = check_region(e, regno, &p, 0, sz, d->value_size, "map value", &lo, &hi)))
            return rc;
        if (map_kptr_overlap(e, p.map_idx, lo, hi) >= 0)
            return reject(e, "R%d kptr cannot be accessed indirectly by helper (map '%s')", regno, d->name);
        /* a helper's read of the lock word copies a number; its write would forge an owner */
        return write ? check_lock_word(e, regno, p.map_idx, lo, hi) : 0;
    }
    case T_MAP_KEY:
        if (write)
            return reject(e, "R%d write into a map key not allowed", regno);
        return check_region(e, regno, &p, 0, sz, map_of(e, p.map_idx)->key_size, "map key", NULL, NULL);
    case T_MEM:
        if (write && p.rdonly)
            return reject(e, "R%d write into read-only host memory not allowed", regno);
        return check_region(e, regno, &p, 0, sz, p.mem_size, "mem", NULL, NULL);
    case T_PACKET:
    case T_PACKET_META:
        if (!e->pkt_arg_ok)
            return reject(e, "R%d helper access to the packet is not allowed", regno);
        return sz ? check_pkt_access(e, regno, &p, 0, sz, write ? ACC_WRITE : ACC_READ) : 0;
    case T_MAP_VALUE_OR_NULL:
    case T_MEM_OR_NULL:
        return reject(e, "R%d type=%s expected=fp, map_value, mem: null check required first", regno,
                      reg_type_name(p.type));
    case T_NOT_INIT:
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    default:
        return reject(e, "R%d type=%s expected=fp, map_value, mem", regno, reg_type_name(p.type));
    }
}

static int check_size_arg(struct env *e, int regno, bool zero_ok, uint64_t *umin, uint64_t *umax)
{
    struct reg *s = &regs(e)[regno];
    if (s->type == T_NOT_INIT)
        return reject(e, "R%d !read_ok: register is not initialised", regno);
    if (s->type != T_SCALAR)
        return reject(e, "R%d size argument must be a scalar, not %s", regno, reg_type_name(s->type));
    if (s->v.smin < 0)
        return reject(e, "R%d min value is negative, either use unsigned or 'var &= const'", regno);
    if (!zero_ok && s->v.umin == 0)
        return reject(e, "R%d invalid zero-sized read: size may be 0", regno);
    if (s->v.umax > OFF_LIMIT)
        return reject(e, "R%d unbounded memory access, use 'var &= const' or 'if (var < const)'", regno);
    *umin = s->v.umin;
    *umax = s->v.umax;
    return 0;
}

static bool map_ok_for_helper(uint32_t helper, uint32_t type)
{
    bool generic = type == GMAP_HASH || type == GMAP_ARRAY || type == GMAP_PERCPU_HASH ||
                   type == GMAP_PERCPU_ARRAY || type == GMAP_LRU_HASH ||
                   type == GMAP_LRU_PERCPU_HASH || type == GMAP_LPM_TRIE;
    switch (helper) {
    case 1:
        return generic || is_map_of_maps(type);    /* the inner map, by id */
    case 2: case 3:    /* a map of maps' slots are the loader's to change, as in the kernel */
        return generic || (helper == 2 && type == GMAP_BLOOM_FILTER);
    case HELPER_TAIL_CALL: return type == GMAP_PROG_ARRAY;
    case 25: return type == GMAP_PERF_EVENT_ARRAY;          /* perf_event_output */
    case 130: case 131: case 134: return type == GMAP_RINGBUF;
    case 87: case 88: case 89:                              /* push/pop/peek */
        return type == GMAP_QUEUE || type == GMAP_STACK || type == GMAP_BLOOM_FILTER;
    case HELPER_FOR_EACH:
        return type == GMAP_HASH || type == GMAP_ARRAY || type == GMAP_PERCPU_HASH ||
               type == GMAP_PERCPU_ARRAY || type == GMAP_LRU_HASH || type == GMAP_LRU_PERCPU_HASH;
    }
    if (helper == HELPER_LOCAL_STORAGE)    /* cgroup storage, per-cpu or not */
        return type == GMAP_KERNEL_CGROUP_STORAGE || type == GMAP_KERNEL_PERCPU_CGROUP_STORAGE;
    /* other helpers taking a map: any map whose special helpers are not required */
    return type != GMAP_RINGBUF && type != GMAP_PROG_ARRAY && type != GMAP_PERF_EVENT_ARRAY &&
           type != GMAP_ARRAY_OF_MAPS && type != GMAP_HASH_OF_MAPS;
}

static void clobber_args(struct env *e)
{
    for (int r = BPF_R1; r <= BPF_R5; r++)
        mark_not_init(&regs(e)[r]);
}

/* Scalar stack data of frames below the callback may change on every
 * iteration: forget their values so that iterations converge. */
static void widen_caller_stacks(struct env *e)
{
    struct vstate *st = e->cur;
    for (uint32_t fi = 0; fi + 1 < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (uint32_t s = 0; s < f->nslots; s++) {
            struct slot *sl = &f->slots[s];
            for (int k = 0; k < 8; k++)
                if (sl->kind[k] == S_ZERO)
                    sl->kind[k] = S_MISC;
            if (sl->kind[0] == S_SPILL && sl->spill.type == T_SCALAR)
                mark_unknown(&sl->spill);
        }
    }
}

static int enter_callback(struct env *e, uint32_t helper, int32_t func, const struct reg args[5],
                          uint32_t callsite)
{
    struct vstate *st = e->cur;
    if (st->nfr >= BPF_MAX_CALL_DEPTH)
        return reject(e, "the call stack of %u frames is too deep", st->nfr + 1);
    struct frame *f = frame_new(st->nfr, (int32_t)callsite);
    if (!f)
        return -ENOMEM;
    f->instance = new_id(e);
    f->is_callback = true;
    f->cb_helper = helper;
    for (int i = 0; i < 5; i++) {
        f->cb_args[i] = args[i];
        f->regs[BPF_R1 + i] = args[i];
    }
    st->fr[st->nfr++] = f;
    widen_caller_stacks(e);
    st->insn = (uint32_t)func;
    st->cb_entering = true;
    return 0;
}

/* The helpers that copy from a raw address (the source is argument 3). */
bool is_probe_read(uint32_t id)
{
    return id == 4 || id == 45 || id == 112 || id == 113 || id == 114 || id == 115;
}

/* With restricted host structures in the policy: the raw-address helpers
 * take only a host pointer plus a constant offset, and [off, off+size) must
 * lie in fields granted the access; helpers reading memory behind %s are
 * refused. */
static int check_host_mem_helper(struct env *e, uint32_t id, const char *hname)
{
    const struct gver_host_ptr *h0 = &e->pol->host_ptrs[0];
    if (id == 6 || id == 165)
        return reject(e, "helper %s is not allowed: it can read host memory behind %%s arguments, which the field rights of host pointer %s cannot check",
                      hname, h0->name);
    bool rd = is_probe_read(id);
    if (!rd && id != HELPER_PROBE_WRITE_USER)
        return 0;
    int pn = rd ? BPF_R3 : BPF_R1, sn = rd ? BPF_R2 : BPF_R3;
    const struct reg *p = &regs(e)[pn], *sz = &regs(e)[sn];
    const char *what = rd ? "source" : "destination";
    if (p->type != T_HOST)
        return reject(e, "R%d helper %s: the %s must be a host pointer argument plus a constant offset, not %s (the policy restricts the fields of host pointer %s)",
                      pn, hname, what, reg_type_name(p->type), h0->name);
    const struct gver_host_ptr *h = &e->pol->host_ptrs[p->map_idx];
    if (!scalar_is_const(&p->v)) {
        char b[200];
        scalar_str(b, sizeof(b), &p->v);
        return reject(e, "R%d helper %s: %s host pointer %s has a variable offset (%d + %s): the field it reaches is unknown",
                      pn, hname, what, h->name, p->off, b);
    }
    if (sz->type != T_SCALAR || sz->v.umax > OFF_LIMIT)
        return reject(e, "R%d helper %s: the size of an access to host pointer %s must be a bounded number", sn, hname, h->name);
    int64_t lo = p->off + (int64_t)p->v.t.value, hi = lo + (int64_t)sz->v.umax;
    if (hi == lo)
        return 0;
    uint32_t need = rd ? GVER_R : GVER_W;
    if (lo < 0 || hi > (int64_t)h->size)
        return reject(e, "R%d helper %s: %s host pointer %s off=%" PRId64 " size=%" PRIu64 " is outside its %u bytes",
                      pn, hname, rd ? "read from" : "write to", h->name, lo, sz->v.umax, h->size);
    for (int64_t o = lo; o < hi;) {
        const struct gver_host_field *f = NULL;
        for (uint32_t i = 0; i < h->n_fields; i++)
            if (o >= h->fields[i].off && o < (int64_t)h->fields[i].off + h->fields[i].size)
                f = &h->fields[i];
        if (!f)
            return reject(e, "R%d helper %s: %s host pointer %s off=%" PRId64 " size=%" PRIu64 ": byte %" PRId64 " is in no field",
                          pn, hname, rd ? "read from" : "write to", h->name, lo, sz->v.umax, o);
        if (!(f->access & need))
            return reject(e, "R%d helper %s: %s host pointer %s off=%" PRId64 " size=%" PRIu64 ": field '%s' is %s",
                          pn, hname, rd ? "read from" : "write to", h->name, lo, sz->v.umax, f->name,
                          !f->access ? "closed" : rd ? "write-only" : "read-only");
        o = (int64_t)f->off + f->size;
    }
    return 0;
}

/* policy->kernel_reads_own_mem: a bpf_probe_read_kernel[_str] the policy
 * does not allow is accepted as a copy of the program's own memory when R3
 * points into its stack (initialised bytes), a map value or a ring buffer
 * sample / task image, and [R3, R3 + R2) is inside it: the bytes are read
 * as a helper's memory argument would be, so nothing of the host is. */
static int check_own_copy(struct env *e, uint32_t id, uint32_t idx)
{
    const char *name = id == 113 ? "probe_read_kernel" : "probe_read_kernel_str";
    const struct reg *src = &regs(e)[BPF_R3];
    if (src->type != T_STACK && src->type != T_MAP_VALUE && src->type != T_MEM)
        return reject(e, "helper call #%u (bpf_%s) is not allowed by the policy: there is no kernel memory in "
                         "userspace, and its source R3 (%s) is not the program's own memory (stack, map value)",
                      id, name, reg_type_name(src->type));
    uint64_t smin, smax;
    int rc = check_size_arg(e, BPF_R2, true, &smin, &smax);
    if (rc == 0 && smax)
        rc = check_mem_arg(e, BPF_R3, smin, smax, false, false, NULL);
    if (rc == 0)
        e->own_copy[idx] = 1;
    return rc;
}

int check_helper_call(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    uint32_t id = (uint32_t)in->imm;
    struct vstate *st = e->cur;
    const struct gver_helper_set *ks = e->pol->kernel_helpers;
    if (ks && in->imm >= 0 && id < BPF_MAX_HELPER_ID && !gver_helper_set_has(ks, id)) {
        /* the kernel's words: the type has no prototype for it */
        const struct ghelper_proto *kp = e->proto(id);
        if (kp)
            return reject(e, "unknown func bpf_%s#%u: %s programs may not call it", kp->name, id,
                          ks->type_name);
        return reject(e, "unknown func #%u: a kernel helper graft has no prototype for", id);
    }
    if (ks && id == HELPER_COPY_FROM_USER_TASK && !e->pol->ksleepable)
        return reject(e, "unknown func bpf_copy_from_user_task#%u: only sleepable programs may call it", id);
    int rc;
    bool own_copy = e->own_copy && (id == 113 || id == 115) && !gver_policy_helper_allowed(e->pol, id);
    if (own_copy && (rc = check_own_copy(e, id, idx)))
        return rc;
    if (!own_copy && (in->imm < 0 || id >= BPF_MAX_HELPER_ID || !gver_policy_helper_allowed(e->pol, id)))
        return reject(e, in->imm == 0 ? "call of an absent function (helper #0: a weak __ksym/kfunc nothing "
                                        "grants, or libbpf's unresolved one); guard it with bpf_ksym_exists()"
                                      : "helper call #%d is not allowed by the policy", in->imm);
    const struct ghelper_proto *pr = e->proto(id);
    if (!pr)
        return reject(e, "unknown helper #%u", id);
    if (st->lock_map && id != HELPER_SPIN_UNLOCK)
        return reject(e, "helper %s#%u is not allowed while holding a spin lock", pr->name, id);
    if (id == HELPER_OVERRIDE_RETURN && e->pol->override_range && regs(e)[BPF_R2].type != T_NOT_INIT) {
        /* R2 is the hooked function's return value: the precision pass
         * keeps argument registers exact at calls, so pruning is sound */
        const struct reg *r2 = &regs(e)[BPF_R2];
        if (r2->type != T_SCALAR)
            return reject(e, "R2 type=%s: the value %s returns must be a number in [%" PRId64 ", %" PRId64 "]",
                          reg_type_name(r2->type), pr->name, e->pol->override_min, e->pol->override_max);
        if (r2->v.smin < e->pol->override_min || r2->v.smax > e->pol->override_max)
            return reject(e, "R2 override return value may be in [%" PRId64 ", %" PRId64 "], the policy requires [%" PRId64 ", %" PRId64 "]",
                          r2->v.smin, r2->v.smax, e->pol->override_min, e->pol->override_max);
    }

    if (e->pol->n_host_ptrs && (rc = check_host_mem_helper(e, id, pr->name)))
        return rc;
    /* Under a policy's own context layout (an EIM class: argument slots
     * open, read-only or closed), the context through a raw-address helper
     * is a context access like a load, with the same field rights, or the
     * closed slots could be read around them. The built-in layouts are
     * wholly readable, and libbpf's USDT code reads them at variable
     * offsets this way. */
    const struct gver_ctx_layout *cl = e->pol->ctx;
    bool own_layout = cl && cl != &gver_ctx_pt_regs && cl != &gver_ctx_sys_enter &&
                      cl != &gver_ctx_sys_exit && cl != &gver_ctx_raw_tp;
    if (own_layout && (is_probe_read(id) || id == HELPER_PROBE_WRITE_USER)) {
        int pn = is_probe_read(id) ? BPF_R3 : BPF_R1, sn = is_probe_read(id) ? BPF_R2 : BPF_R3;
        const struct reg *p = &regs(e)[pn], *sz = &regs(e)[sn];
        if (p->type == T_CTX) {
            if (sz->type != T_SCALAR || sz->v.umax > 64)
                return reject(e, "R%d helper %s on the context: the size must be a number of at most 64 bytes",
                              sn, pr->name);
            if (sz->v.umax && (rc = check_ctx_access(e, pn, p, 0, (unsigned)sz->v.umax,
                                                     is_probe_read(id) ? ACC_READ : ACC_WRITE)))
                return rc;
        }
    }

    int map_arg = -1;
    uint64_t alloc_size = 0;
    e->pkt_arg_ok = helper_pkt_access(id);
    int release_reg = -1, func_reg = -1, ctx_reg = -1;
    uint32_t cast_ref = 0;          /* the socket argument's reference (GHELPER_F_PTR_CAST) */
    struct pending_write pw[5];
    int npw = 0;
    for (int i = 0; i < 5; i++) {
        int rn = BPF_R1 + i;
        struct reg *r = &regs(e)[rn];
        enum garg_kind k = pr->args[i];
        if (k == GARG_NONE)
            break;
        /* trace_printk's format arguments may be left out, as in the kernel */
        if (k == GARG_ANYTHING && id == 6 && i >= 2 && r->type == T_NOT_INIT)
            continue;
        if (k != GARG_CONST_SIZE && k != GARG_CONST_SIZE_OR_ZERO && r->type == T_NOT_INIT)
            return reject(e, "R%d !read_ok: helper %s argument %d is not initialised", rn, pr->name, i + 1);
        switch (k) {
        case GARG_ANYTHING:
            if (r->type == T_HOST && !(is_probe_read(id) && i == 2) && !(id == HELPER_PROBE_WRITE_USER && i == 0))
                return reject(e, "R%d passing host pointer %s to helper %s (argument %d) is not allowed: only the probe_read helpers (source) and probe_write_user (destination) take it",
                              rn, e->pol->host_ptrs[r->map_idx].name, pr->name, i + 1);
            /* a number argument (flags, an index, a format's value): what
             * the helper does with it (prints it, fails on some bits)
             * would tell the program's address; the probe helpers only
             * read or write at it */
            if (is_ptr(r) && !e->pol->allow_ptr_leaks && !(is_probe_read(id) && i == 2) &&
                !(id == HELPER_PROBE_WRITE_USER && i == 0))
                return reject(e, "R%d leaks addr into helper function %s (argument %d is a number)", rn, pr->name,
                              i + 1);
            break;
        case GARG_SCALAR:
            if (r->type != T_SCALAR)
                return reject(e, "R%d type=%s expected=scalar (helper %s)", rn, reg_type_name(r->type), pr->name);
            break;
        case GARG_CONST_MAP_PTR:
            if (r->type != T_CONST_MAP)
                return reject(e, "R%d type=%s expected=map_ptr (helper %s)", rn, reg_type_name(r->type), pr->name);
            if ((rc = sock_map_helper(e, id, map_of(e, r->map_idx)->type, map_of(e, r->map_idx)->name)) < 0)
                return rc;
            if (!rc && !map_ok_for_helper(id, map_of(e, r->map_idx)->type))
                return reject(e, "cannot pass map '%s' of type %u to helper %s#%u",
                              map_of(e, r->map_idx)->name, map_of(e, r->map_idx)->type, pr->name, id);
            map_arg = rn;
            if (id == HELPER_TAIL_CALL && (rc = ktail_call_map(e, idx, r->map_idx)))
                return rc;
            break;
        case GARG_PTR_TO_MAP_KEY:
        case GARG_PTR_TO_MAP_VALUE:
        case GARG_PTR_TO_MAP_VALUE_OR_NULL:
        case GARG_PTR_TO_UNINIT_MAP_VALUE: {
            if (map_arg < 0)
                return reject(e, "R%d helper %s: map key/value argument without a map argument", rn, pr->name);
            const struct gmap_def *d = map_of(e, regs(e)[map_arg].map_idx);
            /* a socket map's value is a socket, as the kernel reads it */
            if (k == GARG_PTR_TO_MAP_VALUE && sock_map_value_is_sock(d->type)) {
                if ((rc = check_sock_arg(e, rn, GARG_PTR_TO_BTF_SOCK_COMMON, id, pr->name)))
                    return rc;
                break;
            }
            if (k == GARG_PTR_TO_MAP_VALUE_OR_NULL && is_null_const(r))
                break;
            uint32_t sz = k == GARG_PTR_TO_MAP_KEY ? d->key_size : d->value_size;
            bool w = k == GARG_PTR_TO_UNINIT_MAP_VALUE;
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, sz, sz, w, w, &pw[npw])))
                return rc;
            if (w && pw[npw].f)
                npw++;
            break;
        }
        case GARG_PTR_TO_MEM:
        case GARG_PTR_TO_MEM_OR_NULL:
        case GARG_PTR_TO_UNINIT_MEM: {
            if (i == 4 || (pr->args[i + 1] != GARG_CONST_SIZE && pr->args[i + 1] != GARG_CONST_SIZE_OR_ZERO))
                return reject(e, "helper %s: memory argument %d has no size argument", pr->name, i + 1);
            bool zero_ok = pr->args[i + 1] == GARG_CONST_SIZE_OR_ZERO;
            uint64_t smin, smax;
            if ((rc = check_size_arg(e, rn + 1, zero_ok, &smin, &smax)))
                return rc;
            /* NULL where the helper takes it (bpf_snprintf's data,
             * csum_diff) with nothing to read: the size is consumed too;
             * NULL with bytes is refused, as the kernel does. graft's
             * helpers that take memory are not given NULL at all. */
            if (r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0) {
                if (k != GARG_PTR_TO_MEM_OR_NULL)
                    return reject(e, "R%d is NULL: helper %s needs memory in argument %d", rn, pr->name, i + 1);
                if (smax)
                    return reject(e, "R%d is NULL but its size R%d may be up to %" PRIu64 " (helper %s)", rn,
                                  rn + 1, smax, pr->name);
                i++;
                break;
            }
            bool w = k == GARG_PTR_TO_UNINIT_MEM;
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, smin, smax, w, w, &pw[npw])))
                return rc;
            if (w && pw[npw].f)
                npw++;
            i++;
            break;
        }
        case GARG_CONST_SIZE:
        case GARG_CONST_SIZE_OR_ZERO:
            return reject(e, "helper %s: size argument %d without a memory argument", pr->name, i + 1);
        case GARG_PTR_TO_CTX:
        case GARG_PTR_TO_CTX_OR_NULL:
            if (k == GARG_PTR_TO_CTX_OR_NULL && is_null_const(r))
                break;
            if (r->type != T_CTX)
                return reject(e, "R%d type=%s expected=ctx (helper %s)", rn, reg_type_name(r->type), pr->name);
            if (r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d helper %s needs the unmodified ctx pointer", rn, pr->name);
            ctx_reg = rn;
            break;
        case GARG_PTR_TO_KERNEL_TASK:
            if (r->type != T_BTF || r->map_idx != GVER_KOBJ_TASK)
                return reject(e, "R%d type=%s expected=ptr_to_btf_id task_struct (helper %s)", rn,
                              reg_type_name(r->type), pr->name);
            if (r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d helper %s needs the task pointer at offset 0", rn, pr->name);
            break;
        case GARG_PTR_TO_U32:
            if (r->type == T_STACK && scalar_is_const(&r->v) && (r->off + (int64_t)r->v.t.value) % 4)
                return reject(e, "R%d misaligned stack access off %" PRId64 " size 4 (helper %s)", rn,
                              r->off + (int64_t)r->v.t.value, pr->name);
            /* read, then written: initialised, even under root's rules */
            if (r->type == T_STACK && scalar_is_const(&r->v))
                for (int64_t o = r->off + (int64_t)r->v.t.value, b = 0; b < 4; b++) {
                    struct slot *s;
                    uint8_t *k = byte_kind(e->cur->fr[r->frameno], o + b, false, &s);
                    if (!k || *k == S_INVALID)
                        return reject(e, "R%d invalid indirect read from stack off %" PRId64 " size 4 (helper %s)",
                                      rn, o, pr->name);
                }
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, 4, 4, true, false, &pw[npw])))
                return rc;
            if (pw[npw].f)
                npw++;
            break;
        case GARG_PTR_TO_FUNC:
            if (r->type != T_FUNC)
                return reject(e, "R%d type=%s expected=func (helper %s)", rn, reg_type_name(r->type), pr->name);
            func_reg = rn;
            break;
        case GARG_PTR_TO_STACK_OR_NULL:
            if (r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0)
                break;
            if (r->type != T_STACK)
                return reject(e, "R%d type=%s expected=fp or NULL (helper %s)", rn, reg_type_name(r->type), pr->name);
            break;
        case GARG_PTR_TO_SOCK_COMMON:
        case GARG_PTR_TO_BTF_SOCK_COMMON:
        case GARG_PTR_TO_SOCKET_OR_NULL:
            if ((rc = check_sock_arg(e, rn, k, id, pr->name)))
                return rc;
            cast_ref = r->ref_id;
            if (pr->flags & GHELPER_F_RELEASE) {
                if (!r->ref_id)
                    return reject(e, "R%d must be referenced when passed to release function %s", rn, pr->name);
                release_reg = rn;
            }
            break;
        case GARG_PTR_TO_ALLOC_MEM:
            if (r->type == T_MEM_OR_NULL)
                return reject(e, "R%d type=mem_or_null: null check required before %s", rn, pr->name);
            if (r->type != T_MEM || !r->ref_id)
                return reject(e, "R%d type=%s expected=ringbuf sample (helper %s)", rn, reg_type_name(r->type), pr->name);
            if (r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d must have zero offset when passed to release func %s", rn, pr->name);
            release_reg = rn;
            break;
        case GARG_PTR_TO_SPIN_LOCK: {
            if (r->type != T_MAP_VALUE)
                return reject(e, "R%d type=%s expected=map_value holding a spin lock (helper %s)", rn,
                              reg_type_name(r->type), pr->name);
            if (!scalar_is_const(&r->v))
                return reject(e, "R%d %s has to be at a constant offset", rn, pr->name);
            int64_t off = r->off + (int64_t)r->v.t.value;
            if (off < 0 || off % 4 || off + 4 > map_of(e, r->map_idx)->value_size)
                return reject(e, "R%d spin lock at off=%" PRId64 " is outside map value or misaligned", rn, off);
            int32_t lock = map_lock_off(e, r->map_idx);
            if (lock == GVER_LOCK_NONE)
                return reject(e, "map '%s' has no valid bpf_spin_lock", map_of(e, r->map_idx)->name);
            if (lock >= 0 && off != lock)
                return reject(e, "R%d expected bpf_spin_lock at off=%d of map '%s', got off=%" PRId64,
                              rn, lock, map_of(e, r->map_idx)->name, off);
            if (id == HELPER_SPIN_LOCK) {
                if (st->lock_map)
                    return reject(e, "Locking two bpf_spin_locks are not allowed");
                st->lock_map = r->map_idx + 1;
                st->lock_off = (int32_t)off;
                st->lock_id = r->id;
            } else {
                if (!st->lock_map)
                    return reject(e, "bpf_spin_unlock without taking a lock");
                /* same map, offset and element (the lookup's id; 0: a
                 * global's one value): another element's lock would leave
                 * this one held, and the next taker would spin for ever */
                if (st->lock_map != r->map_idx + 1 || st->lock_off != off || st->lock_id != r->id)
                    return reject(e, "bpf_spin_unlock of a different lock");
                st->lock_map = 0;
                st->lock_off = 0;
                st->lock_id = 0;
            }
            break;
        }
        case GARG_PTR_TO_LONG:
            /* the kernel checks the pointer's alignment strictly here */
            if (e->pol->kctx && r->type == T_STACK && scalar_is_const(&r->v) &&
                (r->off + (int64_t)r->v.t.value) % 8)
                return reject(e, "R%d misaligned stack access off %" PRId64 " size 8 (helper %s)", rn,
                              r->off + (int64_t)r->v.t.value, pr->name);
            pw[npw].f = NULL;
            if ((rc = check_mem_arg(e, rn, 8, 8, true, true, &pw[npw])))
                return rc;
            if (pw[npw].f)
                npw++;
            break;
        case GARG_PTR_TO_CONST_STR: {
            if (r->type != T_MAP_VALUE || !map_is_rdonly(map_of(e, r->map_idx)))
                return reject(e, "R%d type=%s expected=read-only map value holding a string (helper %s)",
                              rn, reg_type_name(r->type), pr->name);
            if (!scalar_is_const(&r->v))
                return reject(e, "R%d string pointer must be at a constant offset", rn);
            int64_t off = r->off + (int64_t)r->v.t.value;
            if (off < 0 || off >= map_of(e, r->map_idx)->value_size)
                return reject(e, "R%d string offset %" PRId64 " outside the map value", rn, off);
            break;
        }
        case GARG_CONST_ALLOC_SIZE:
            if (r->type != T_SCALAR || !scalar_is_const(&r->v))
                return reject(e, "R%d is not a known constant: %s needs a constant size", rn, pr->name);
            if (r->v.t.value == 0 || r->v.t.value > OFF_LIMIT)
                return reject(e, "R%d invalid size %" PRIu64 " for %s", rn, r->v.t.value, pr->name);
            alloc_size = r->v.t.value;
            break;
        default:
            return reject(e, "helper %s: argument kind %d not supported by the verifier", pr->name, k);
        }
    }
    (void)ctx_reg;
    e->pkt_arg_ok = false;
    /* the storage cannot fail to exist, so the kernel takes no flags */
    if (pr->ret == GRET_MAP_VALUE && !is_null_const(&regs(e)[BPF_R2]))
        return reject(e, "%s() doesn't support non-zero flags", pr->name);
    if ((pr->flags & GHELPER_F_NORETURN_OK) && st->nrefs)
        return reject(e, "%s would leak reference id=%u acquired at insn %d", pr->name, st->refs[0].id,
                      st->refs[0].insn);
    /* stack bytes the helper fills */
    for (int i = 0; i < npw; i++)
        if ((rc = apply_stack_write(e, &pw[i])))
            return rc;
    if (release_reg >= 0) {
        uint32_t ref = regs(e)[release_reg].ref_id;
        uint32_t i;
        for (i = 0; i < st->nrefs && st->refs[i].id != ref; i++)
            ;
        if (i == st->nrefs)
            return reject(e, "R%d release of an unacquired reference id=%u", release_reg, ref);
        struct frame *tf = top(e);
        if (tf->is_callback && i < tf->cb_nrefs)
            return reject(e, "R%d callback releases reference id=%u acquired outside it", release_reg, ref);
        st->refs[i] = st->refs[--st->nrefs];
        invalidate_ref(e, ref);
    }

    struct reg cb_args[5];
    memset(cb_args, 0, sizeof(cb_args));
    int32_t cb_func = func_reg >= 0 ? regs(e)[func_reg].func : -1;
    uint64_t cb_iters = 0;          /* the most times the helper calls it */
    if (func_reg >= 0) {
        for (int i = 0; i < 5; i++)
            mark_not_init(&cb_args[i]);
        if (id == HELPER_LOOP) {
            /* nr_loops above 2^23 makes the helper fail without a call */
            const struct reg *nr = &regs(e)[BPF_R1];
            cb_iters = nr->type == T_SCALAR && nr->v.umax < LOOP_MAX_ITER ? nr->v.umax : LOOP_MAX_ITER;
            mark_unknown(&cb_args[0]);
            cb_args[0].v.umax = cb_iters ? cb_iters - 1 : 0;   /* the index: also what pruning compares */
            scalar_sync(&cb_args[0].v);
            cb_args[1] = regs(e)[BPF_R3];
        } else if (id == HELPER_FOR_EACH) {
            struct reg m = regs(e)[BPF_R1];
            cb_iters = map_of(e, m.map_idx)->max_entries;
            cb_args[0] = m;
            memset(&cb_args[1], 0, sizeof(struct reg));
            cb_args[1].type = T_MAP_KEY;
            cb_args[1].map_idx = m.map_idx;
            scalar_const(&cb_args[1].v, 0);
            cb_args[2] = cb_args[1];
            cb_args[2].type = T_MAP_VALUE;
            cb_args[3] = regs(e)[BPF_R3];
        } else {
            return reject(e, "callbacks of helper %s#%u are not supported", pr->name, id);
        }
    }

    if (pr->ret == GRET_MAP_VALUE && !is_null_const(&regs(e)[BPF_R2]))
        return reject(e, "get_local_storage() doesn't support non-zero flags");
    /* the kernel's do_refine_retval_range (kernel programs): the helpers
     * that fill a buffer return a negative errno or at most its size */
    int size_reg = id == 67 || id == 141 ? BPF_R3 : id == 45 || id == 114 || id == 115 ? BPF_R2 : 0;
    uint64_t msize_max = size_reg && regs(e)[size_reg].type == T_SCALAR ? regs(e)[size_reg].v.umax : 0;
    clobber_args(e);
    if (helper_changes_pkt_data(id))
        pkt_invalidate(e);
    struct reg *r0 = &regs(e)[BPF_R0];
    switch (pr->ret) {
    case GRET_INTEGER:
        mark_unknown(r0);
        if (e->pol->kctx && size_reg && msize_max <= INT32_MAX) {
            r0->v.smin = r0->v.s32min = -4095;
            r0->v.smax = r0->v.s32max = (int64_t)msize_max;
            if (!scalar_sync(&r0->v))
                mark_unknown(r0);
        }
        break;
    case GRET_VOID:
        mark_not_init(r0);
        break;
    case GRET_MAP_VALUE_OR_NULL:
    case GRET_MAP_VALUE:
        if (map_arg < 0)
            return reject(e, "helper %s returns a map value but takes no map", pr->name);
        mark_unknown(r0);          /* typed by the caller, which knows the map */
        break;
    case GRET_ALLOC_MEM_OR_NULL:
        memset(r0, 0, sizeof(*r0));
        r0->type = T_MEM_OR_NULL;
        scalar_const(&r0->v, 0);
        r0->mem_size = (uint32_t)alloc_size;
        r0->id = new_id(e);
        if (pr->flags & GHELPER_F_ACQUIRE) {
            if (st->nrefs == MAX_REFS)
                return reject(e, "too many outstanding references (max %d)", MAX_REFS);
            r0->ref_id = r0->id;
            st->refs[st->nrefs].id = r0->id;
            st->refs[st->nrefs++].insn = (int32_t)idx;
        }
        break;
    case GRET_SOCKET_OR_NULL:
    case GRET_SOCK_COMMON_OR_NULL:
    case GRET_TCP_SOCK_OR_NULL:
    case GRET_BTF_SOCK_OR_NULL:
        if ((rc = set_sock_ret(e, pr, idx, cast_ref)))
            return rc;
        break;
    case GRET_KERNEL_TASK:
        /* a kernel program's bpf_get_current_task_btf: the trusted task */
        memset(r0, 0, sizeof(*r0));
        r0->type = T_BTF;
        r0->map_idx = GVER_KOBJ_TASK;
        scalar_const(&r0->v, 0);
        break;
    case GRET_TASK_IMAGE:
        /* the current task's image (helpers/h_taskimg.c): read-only, never
         * NULL, bounded by the image the helper allocates */
        memset(r0, 0, sizeof(*r0));
        r0->type = T_MEM;
        r0->rdonly = 1;
        scalar_const(&r0->v, 0);
        r0->mem_size = gtask_layout()->task_size;
        break;
    }
    st->insn = idx + 1;
    if (func_reg >= 0 && cb_iters) {
        /* the helper may call the callback zero times: continue here too */
        struct vstate *skip = state_copy(st);
        if (!skip)
            return -ENOMEM;
        if ((rc = push_state(e, skip))) {
            state_free(skip);
            return rc;
        }
        rc = enter_callback(e, id, cb_func, cb_args, idx);
        if (rc)
            return rc;
        top(e)->cb_nrefs = st->nrefs;
        cost_loop_start(e, idx, cb_iters, e->npending);
    }
    return 0;
}

int check_kfunc_call(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    int krc = check_kernel_kfunc(e, in, idx);
    if (krc != 1)
        return krc;
    const struct gver_kfunc *kf = NULL;
    for (uint32_t i = 0; i < e->pol->n_kfuncs; i++)
        if (e->pol->kfuncs[i].id == in->imm)
            kf = &e->pol->kfuncs[i];
    if (!kf)
        return reject(e, "kfunc call #%d is not allowed by the policy (no such host function)", in->imm);
    if (e->cur->lock_map)
        return reject(e, "kfunc %s is not allowed while holding a spin lock", kf->name);
    int rc;
    for (int i = 0; i < 5; i++) {
        int rn = BPF_R1 + i;
        struct reg *r = &regs(e)[rn];
        enum garg_kind k = kf->args[i];
        if (k == GARG_NONE)
            break;
        if (r->type == T_NOT_INIT)
            return reject(e, "R%d !read_ok: kfunc %s argument %d is not initialised", rn, kf->name, i + 1);
        switch (k) {
        case GARG_ANYTHING:
            if (is_ptr(r) && !e->pol->allow_ptr_leaks)
                return reject(e, "R%d kfunc %s argument %d: passing a pointer to the host is not allowed",
                              rn, kf->name, i + 1);
            break;
        case GARG_SCALAR:
            if (r->type != T_SCALAR)
                return reject(e, "R%d type=%s expected=scalar (kfunc %s)", rn, reg_type_name(r->type), kf->name);
            if ((kf->arg_min[i] || kf->arg_max[i]) &&
                (r->v.smin < kf->arg_min[i] || r->v.smax > kf->arg_max[i]))
                return reject(e, "R%d kfunc %s argument %d must be within [%" PRId64 ", %" PRId64 "], but may be in [%" PRId64 ", %" PRId64 "]",
                              rn, kf->name, i + 1, kf->arg_min[i], kf->arg_max[i], r->v.smin, r->v.smax);
            break;
        case GARG_PTR_TO_MEM:
        case GARG_PTR_TO_MEM_OR_NULL:
        case GARG_PTR_TO_UNINIT_MEM: {
            if (i == 4 || (kf->args[i + 1] != GARG_CONST_SIZE && kf->args[i + 1] != GARG_CONST_SIZE_OR_ZERO))
                return reject(e, "kfunc %s: memory argument %d has no size argument", kf->name, i + 1);
            /* the size argument's own declared range (a pre-condition like
             * any scalar's), before its use as a bound on the memory */
            const struct reg *sz = &regs(e)[rn + 1];
            if ((kf->arg_min[i + 1] || kf->arg_max[i + 1]) && sz->type == T_SCALAR &&
                (sz->v.smin < kf->arg_min[i + 1] || sz->v.smax > kf->arg_max[i + 1]))
                return reject(e, "R%d kfunc %s argument %d (size of argument %d) must be within [%" PRId64 ", %" PRId64 "], but may be in [%" PRId64 ", %" PRId64 "]",
                              rn + 1, kf->name, i + 2, i + 1, kf->arg_min[i + 1], kf->arg_max[i + 1], sz->v.smin, sz->v.smax);
            uint64_t smin, smax;
            if ((rc = check_size_arg(e, rn + 1, kf->args[i + 1] == GARG_CONST_SIZE_OR_ZERO, &smin, &smax)))
                return rc;
            /* a declared-nullable pointer may be the constant NULL, which
             * the host function handles; anything else must be memory */
            if (k == GARG_PTR_TO_MEM_OR_NULL && r->type == T_SCALAR && scalar_is_const(&r->v) &&
                r->v.t.value == 0) {
                i++;
                break;
            }
            if (r->type == T_SCALAR && scalar_is_const(&r->v) && r->v.t.value == 0)
                return reject(e, "R%d kfunc %s argument %d is NULL, but the host function requires a "
                              "non-null pointer", rn, kf->name, i + 1);
            bool w = k == GARG_PTR_TO_UNINIT_MEM;
            struct pending_write pw = { 0 };
            if ((rc = check_mem_arg(e, rn, smin, smax, w, w, &pw)))
                return rc;
            if (w && pw.f && (rc = apply_stack_write(e, &pw)))
                return rc;
            i++;
            break;
        }
        case GARG_PTR_TO_CTX:
            if (r->type != T_CTX || r->off || !scalar_is_const(&r->v) || r->v.t.value)
                return reject(e, "R%d kfunc %s needs the unmodified ctx pointer", rn, kf->name);
            break;
        default:
            return reject(e, "kfunc %s: argument kind %d not supported", kf->name, k);
        }
    }
    clobber_args(e);
    struct reg *r0 = &regs(e)[BPF_R0];
    if (kf->ret == GRET_VOID) {
        mark_not_init(r0);
    } else {
        mark_unknown(r0);
        if (kf->ret_min || kf->ret_max) {
            r0->v.smin = kf->ret_min;
            r0->v.smax = kf->ret_max;
            if (!scalar_sync(&r0->v))
                mark_unknown(r0);
        }
    }
    e->cur->insn = idx + 1;
    return 0;
}

int check_local_call(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    struct vstate *st = e->cur;
    /* kernel programs: the kernel lets a bpf-to-bpf call run under the
     * lock (no helper but the unlock may be called in any frame, and the
     * main program may not exit with it held) */
    if (st->lock_map && !e->pol->kctx)
        return reject(e, "function calls are not allowed while holding a lock");
    if (st->nfr >= BPF_MAX_CALL_DEPTH)
        return reject(e, "the call stack of %u frames is too deep (max %d)", st->nfr + 1, BPF_MAX_CALL_DEPTH);
    struct frame *f = frame_new(st->nfr, (int32_t)idx);
    if (!f)
        return -ENOMEM;
    f->instance = new_id(e);
    for (int r = BPF_R1; r <= BPF_R5; r++)
        f->regs[r] = regs(e)[r];
    st->fr[st->nfr++] = f;
    st->insn = (uint32_t)((int64_t)idx + 1 + in->imm);
    return 0;
}

/* Set r0 of a GRET_MAP_VALUE_OR_NULL helper: needs the map argument, so it
 * is done before the arguments are clobbered. */
int set_map_value_ret(struct env *e, const struct bpf_insn *in)
{
    const struct ghelper_proto *pr = e->proto((uint32_t)in->imm);
    if (!pr || (pr->ret != GRET_MAP_VALUE_OR_NULL && pr->ret != GRET_MAP_VALUE))
        return 0;
    for (int i = 0; i < 5; i++)
        if (pr->args[i] == GARG_CONST_MAP_PTR) {
            struct reg m = regs(e)[BPF_R1 + i];
            if (m.type != T_CONST_MAP)
                return 0;          /* the argument check rejects it */
            const struct gmap_def *d = map_of(e, m.map_idx);
            if (is_map_of_maps(d->type) && m.map_idx < e->in->n_maps &&
                !e->inner[m.map_idx].type)
                return reject(e, "map '%s' is a map of maps without an inner map definition: "
                              "declare it with __array(values, struct ...)", d->name);
            return (int)m.map_idx + 1;
        }
    return 0;
}

/* ---- exit ---- */

int check_exit(struct env *e, uint32_t idx, bool *path_done)
{
    struct vstate *st = e->cur;
    struct frame *f = top(e);
    struct reg r0 = f->regs[BPF_R0];
    int rc;
    *path_done = false;
    bool subprog = st->nfr > 1 && !f->is_callback;
    /* a kernel program's subprogram may return with the lock held (its
     * caller unlocks; the program's exit is checked), as the kernel has it */
    if (st->lock_map && !(subprog && e->pol->kctx))
        return reject(e, "bpf_spin_unlock is missing: exit with a spin lock held");
    /* Kernel programs, as the kernel has it: a subprogram may return
     * without setting r0, which the caller then cannot read. */
    if (r0.type == T_NOT_INIT && !(subprog && e->pol->kctx))
        return reject(e, "R0 !read_ok: the return value is not initialised");
    if (st->nfr == 1) {
        if (st->nrefs)
            return reject(e, "Unreleased reference id=%u alloc_insn=%d: release it (ringbuf submit/discard) on every path",
                          st->refs[0].id, st->refs[0].insn);
        if (is_ptr(&r0) && (e->pol->ret_checked || e->pol->ret_min || e->pol->ret_max))
            return reject(e, "R0 is not a known value (%s): the policy requires a return value in [%" PRId64 ", %" PRId64 "]",
                          reg_type_name(r0.type), e->pol->ret_min, e->pol->ret_max);
        if (is_ptr(&r0) && !e->pol->allow_ptr_leaks)
            return reject(e, "R0 pointer leak: returning a pointer to the host is not allowed by the policy");
        if ((e->pol->ret_checked || e->pol->ret_min || e->pol->ret_max) && r0.type == T_SCALAR &&
            (r0.v.smin < e->pol->ret_min || r0.v.smax > e->pol->ret_max))
            return reject(e, "R0 return value may be in [%" PRId64 ", %" PRId64 "], the policy requires [%" PRId64 ", %" PRId64 "]",
                          r0.v.smin, r0.v.smax, e->pol->ret_min, e->pol->ret_max);
        cost_level_end(e, 0, st->lvl[0].clk);
        *path_done = true;
        return 0;
    }
    if (r0.type == T_STACK && r0.frameno >= f->frameno)
        return reject(e, "R0 cannot return a pointer to this function's stack to the caller");
    if (f->is_callback) {
        if (r0.type != T_SCALAR || r0.v.umax > 1)
            return reject(e, "R0 callback must return 0 or 1 (helper %u)", f->cb_helper);
        if (st->nrefs != f->cb_nrefs)
            return reject(e, "Unreleased reference id=%u alloc_insn=%d in callback", st->refs[st->nrefs - 1].id,
                          st->refs[st->nrefs - 1].insn);
        /* this iteration is over; the loop's cost is charged to the
         * caller's level when it returns */
        uint32_t top_lvl = st->nlvl - 1;
        cost_level_end(e, top_lvl, st->lvl[top_lvl].clk);
        uint64_t charge = cost_loop_charge(e, &st->lvl[top_lvl]);
        /* path 1: the helper returns to the caller, explored after the
         * loop's other iterations (their cost is then known) */
        struct vstate *ret = state_copy(st);
        if (!ret)
            return -ENOMEM;
        ret->nfr--;
        frame_free(ret->fr[ret->nfr]);
        struct frame *cf = ret->fr[ret->nfr - 1];
        mark_unknown(&cf->regs[BPF_R0]);
        for (int r = BPF_R1; r <= BPF_R5; r++)
            mark_not_init(&cf->regs[r]);
        ret->insn = (uint32_t)f->callsite + 1;
        ret->nlvl--;
        ret->lvl[top_lvl - 1].clk = sat_add(ret->lvl[top_lvl - 1].clk, charge);
        if ((rc = push_state_at(e, ret, st->lvl[top_lvl].pend_base))) {
            state_free(ret);
            return rc;
        }
        /* path 2: the helper calls the callback again, with a fresh frame */
        struct reg args[5];
        memcpy(args, f->cb_args, sizeof(args));
        uint32_t helper = f->cb_helper, nrefs = f->cb_nrefs;
        int32_t callsite = f->callsite;
        int32_t func = (int32_t)e->cfg.subprog_start[e->cfg.subprog_of[idx]];
        st->nfr--;
        frame_free(f);
        rc = enter_callback(e, helper, func, args, (uint32_t)callsite);
        if (rc)
            return rc;
        top(e)->cb_nrefs = nrefs;
        st->lvl[top_lvl].iter = new_id(e);
        st->lvl[top_lvl].clk = 0;
        return 0;
    }
    int32_t callsite = f->callsite;
    st->nfr--;
    frame_free(f);
    struct frame *cf = top(e);
    cf->regs[BPF_R0] = r0;
    for (int r = BPF_R1; r <= BPF_R5; r++)
        mark_not_init(&cf->regs[r]);
    st->insn = (uint32_t)callsite + 1;
    return 0;
}
