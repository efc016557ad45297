/*
 * policy.c - built-in context layouts and the usual verifier policies.
 *
 * A policy is one malloc'd block: the struct gver_policy first, then (for
 * raw contexts) its layout and field, so free(policy) releases everything.
 */
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "verifier/verifier.h"

#define F8(o, a) { (o), 8, (a) }

/* struct pt_regs on x86-64: 21 unsigned longs, r15 first. */
static const struct gver_ctx_field pt_regs_fields[] = {
    F8(0, GVER_R), F8(8, GVER_R), F8(16, GVER_R), F8(24, GVER_R), F8(32, GVER_R),
    F8(40, GVER_R), F8(48, GVER_R), F8(56, GVER_R), F8(64, GVER_R), F8(72, GVER_R),
    F8(80, GVER_R), F8(88, GVER_R), F8(96, GVER_R), F8(104, GVER_R), F8(112, GVER_R),
    F8(120, GVER_R), F8(128, GVER_R), F8(136, GVER_R), F8(144, GVER_R), F8(152, GVER_R),
    F8(160, GVER_R),
};
const struct gver_ctx_layout gver_ctx_pt_regs = {
    "pt_regs", 168, pt_regs_fields, sizeof(pt_regs_fields) / sizeof(pt_regs_fields[0])
};

/* trace_event_raw_sys_enter: common header (8), long id, unsigned long args[6]. */
static const struct gver_ctx_field sys_enter_fields[] = {
    F8(0, GVER_R), F8(8, GVER_R), F8(16, GVER_R), F8(24, GVER_R), F8(32, GVER_R),
    F8(40, GVER_R), F8(48, GVER_R), F8(56, GVER_R),
};
const struct gver_ctx_layout gver_ctx_sys_enter = {
    "sys_enter", 64, sys_enter_fields, sizeof(sys_enter_fields) / sizeof(sys_enter_fields[0])
};

/* trace_event_raw_sys_exit: common header (8), long id, long ret. */
static const struct gver_ctx_field sys_exit_fields[] = {
    F8(0, GVER_R), F8(8, GVER_R), F8(16, GVER_R),
};
const struct gver_ctx_layout gver_ctx_sys_exit = {
    "sys_exit", 24, sys_exit_fields, 3
};

/* bpf_raw_tracepoint_args: u64 args[] (12 is the kernel's maximum). */
static const struct gver_ctx_field raw_tp_fields[] = {
    F8(0, GVER_R), F8(8, GVER_R), F8(16, GVER_R), F8(24, GVER_R), F8(32, GVER_R),
    F8(40, GVER_R), F8(48, GVER_R), F8(56, GVER_R), F8(64, GVER_R), F8(72, GVER_R),
    F8(80, GVER_R), F8(88, GVER_R),
};
const struct gver_ctx_layout gver_ctx_raw_tp = {
    "raw_tp", 96, raw_tp_fields, 12
};

void gver_policy_allow_helper(struct gver_policy *p, uint32_t id, int allow)
{
    if (!p || id >= BPF_MAX_HELPER_ID)
        return;
    if (allow)
        p->helpers_allowed[id / 64] |= 1ull << (id % 64);
    else
        p->helpers_allowed[id / 64] &= ~(1ull << (id % 64));
}

int gver_policy_helper_allowed(const struct gver_policy *p, uint32_t id)
{
    if (!p || id >= BPF_MAX_HELPER_ID)
        return 0;
    return (p->helpers_allowed[id / 64] >> (id % 64)) & 1;
}

struct raw_policy {
    struct gver_policy pol;
    struct gver_ctx_layout layout;
    struct gver_ctx_field field;
};

static struct gver_policy *policy_new(void)
{
    struct raw_policy *rp = calloc(1, sizeof(*rp));
    if (!rp)
        return NULL;
    struct gver_policy *p = &rp->pol;
    p->max_states = 1000000;
    /* every helper graft implements */
    for (uint32_t id = 1; id < BPF_MAX_HELPER_ID; id++)
        if (ghelper_proto(id))
            gver_policy_allow_helper(p, id, 1);
    return p;
}

struct gver_policy *gver_policy_raw(uint32_t ctx_size)
{
    struct gver_policy *p = policy_new();
    if (!p)
        return NULL;
    if (ctx_size) {
        struct raw_policy *rp = (struct raw_policy *)p;
        rp->field = (struct gver_ctx_field){ 0, ctx_size, GVER_R };
        rp->layout = (struct gver_ctx_layout){ "raw", ctx_size, &rp->field, 1 };
        p->ctx = &rp->layout;
    }
    return p;
}

struct gver_policy *gver_policy_for_prog_type(int gprog_type)
{
    struct gver_policy *p;
    switch (gprog_type) {
    case GPROG_UPROBE:
    case GPROG_URETPROBE:
    case GPROG_USDT:
    case GPROG_OVERRIDE:
    case GPROG_REPLACE:
        p = policy_new();
        if (p)
            p->ctx = &gver_ctx_pt_regs;
        return p;
    case GPROG_TRACEPOINT:
        p = policy_new();
        if (p)
            p->ctx = &gver_ctx_sys_enter;
        return p;
    case GPROG_RAW_TRACEPOINT:
        p = policy_new();
        if (p)
            p->ctx = &gver_ctx_raw_tp;
        return p;
    case GPROG_SOCKET_FILTER:
    case GPROG_XDP:
        return gver_policy_raw(4096);
    default:
        return NULL;
    }
}
