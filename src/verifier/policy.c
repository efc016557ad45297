/*
 * policy.c - built-in context layouts, the usual verifier policies and the
 * rights a program needs to change its host (verifier.h, "Rights").
 *
 * A policy is one malloc'd block: the struct gver_policy first, then (for
 * raw contexts) its layout and field, so free(policy) releases everything.
 * Every policy made here starts observe-only: a caller that forgets to
 * decide gets the safe policy, and a right is always an explicit grant.
 */
#include <errno.h>
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

/* The helpers behind each right (the kernel's numbers). */
static const struct {
    uint32_t helper, right;
} helper_rights[] = {
    { 36, GVER_RIGHT_WRITE_USER },     /* probe_write_user */
    { 58, GVER_RIGHT_OVERRIDE },       /* override_return */
    { 109, GVER_RIGHT_SIGNAL },        /* send_signal */
    { 117, GVER_RIGHT_SIGNAL },        /* send_signal_thread */
    { 4, GVER_RIGHT_READ_HOST },       /* probe_read */
    { 45, GVER_RIGHT_READ_HOST },      /* probe_read_str */
    { 67, GVER_RIGHT_READ_HOST },      /* get_stack */
    { 27, GVER_RIGHT_READ_HOST },      /* get_stackid: the user stack */
    { 112, GVER_RIGHT_READ_HOST },     /* probe_read_user */
    { 113, GVER_RIGHT_READ_HOST },     /* probe_read_kernel */
    { 114, GVER_RIGHT_READ_HOST },     /* probe_read_user_str */
    { 115, GVER_RIGHT_READ_HOST },     /* probe_read_kernel_str */
};
#define N_HELPER_RIGHTS (sizeof(helper_rights) / sizeof(helper_rights[0]))

static const struct {
    uint32_t right;
    const char *name;
} right_names[] = {
    { GVER_RIGHT_READ_HOST, "read-host" },
    { GVER_RIGHT_WRITE_USER, "write-user" },
    { GVER_RIGHT_OVERRIDE, "override" },
    { GVER_RIGHT_SIGNAL, "signal" },
};
#define N_RIGHT_NAMES (sizeof(right_names) / sizeof(right_names[0]))

uint32_t gver_helper_right(uint32_t helper_id)
{
    for (size_t i = 0; i < N_HELPER_RIGHTS; i++)
        if (helper_rights[i].helper == helper_id)
            return helper_rights[i].right;
    return 0;
}

const char *gver_right_name(uint32_t right)
{
    for (size_t i = 0; i < N_RIGHT_NAMES; i++)
        if (right_names[i].right == right)
            return right_names[i].name;
    return NULL;
}

int gver_rights_parse(const char *list, uint32_t *rights, struct graft_err *err)
{
    *rights = 0;
    const char *s = list ? list : "";
    while (*s) {
        size_t len = strcspn(s, ",");
        uint32_t bit = 0;
        if (len == 3 && strncmp(s, "all", 3) == 0)
            bit = GVER_RIGHTS_HOST_WRITES;
        for (size_t i = 0; i < N_RIGHT_NAMES && !bit; i++)
            if (right_names[i].right != GVER_RIGHT_READ_HOST && strlen(right_names[i].name) == len &&
                strncmp(s, right_names[i].name, len) == 0)
                bit = right_names[i].right;
        if (!bit)
            return graft_errf(err, -EINVAL,
                              "unknown right '%.*s' (rights: write-user, override, signal, all; "
                              "read-host is always granted; host functions and globals need an EIM class)",
                              (int)len, s);
        *rights |= bit;
        s += len;
        if (*s == ',')
            s++;
    }
    if (!*rights)
        return graft_errf(err, -EINVAL, "no right named (rights: write-user, override, signal, all)");
    return 0;
}

uint32_t gver_rights_used(const struct bpf_insn *insns, uint32_t n, int64_t first_insn[9])
{
    uint32_t used = 0;
    if (first_insn)
        for (int k = 0; k < 9; k++)
            first_insn[k] = -1;
    for (uint32_t i = 0; insns && i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        if (in->code != (BPF_JMP | BPF_CALL) || in->src_reg != 0)
            continue;
        uint32_t r = gver_helper_right((uint32_t)in->imm);
        if (!r)
            continue;
        if (first_insn && !(used & r))
            first_insn[__builtin_ctz(r)] = i;
        used |= r;
    }
    return used;
}

void gver_policy_grant(struct gver_policy *p, uint32_t rights)
{
    for (size_t i = 0; p && i < N_HELPER_RIGHTS; i++)
        if ((rights & helper_rights[i].right) && ghelper_proto(helper_rights[i].helper))
            gver_policy_allow_helper(p, helper_rights[i].helper, 1);
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
    /* every helper graft implements that only observes the host */
    for (uint32_t id = 1; id < BPF_MAX_HELPER_ID; id++)
        if (ghelper_proto(id) && !(gver_helper_right(id) & GVER_RIGHTS_HOST_WRITES))
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

/* struct bpf_perf_event_data: pt_regs, then u64 sample_period, u64 addr. */
static const struct gver_ctx_field perf_event_fields[] = {
    F8(0, GVER_R), F8(8, GVER_R), F8(16, GVER_R), F8(24, GVER_R), F8(32, GVER_R),
    F8(40, GVER_R), F8(48, GVER_R), F8(56, GVER_R), F8(64, GVER_R), F8(72, GVER_R),
    F8(80, GVER_R), F8(88, GVER_R), F8(96, GVER_R), F8(104, GVER_R), F8(112, GVER_R),
    F8(120, GVER_R), F8(128, GVER_R), F8(136, GVER_R), F8(144, GVER_R), F8(152, GVER_R),
    F8(160, GVER_R), F8(168, GVER_R), F8(176, GVER_R),
};
static const struct gver_ctx_layout ctx_perf_event = {
    "bpf_perf_event_data", 184, perf_event_fields, sizeof(perf_event_fields) / sizeof(perf_event_fields[0])
};

/* The size of each kernel type's context structure (the UAPI's sizeof,
 * x86-64): until its fields are modelled one by one, a kernel program may
 * read any of those bytes and write none. */
static uint32_t kernel_ctx_bytes(int ktype)
{
    switch (ktype) {
    case GKT_TRACEPOINT: return 2048;           /* PERF_MAX_TRACE_SIZE: the record */
    case GKT_SOCKET_FILTER: case GKT_SCHED_CLS: case GKT_SCHED_ACT: case GKT_CGROUP_SKB:
    case GKT_SK_SKB: case GKT_LWT: case GKT_FLOW_DISSECTOR: case GKT_UNKNOWN:
        return 192;                             /* struct __sk_buff */
    case GKT_XDP: return 24;                    /* struct xdp_md */
    case GKT_CGROUP_SOCK: return 80;            /* struct bpf_sock */
    case GKT_CGROUP_SOCK_ADDR: return 72;       /* struct bpf_sock_addr */
    case GKT_CGROUP_DEV: return 12;             /* struct bpf_cgroup_dev_ctx */
    case GKT_CGROUP_SYSCTL: return 8;           /* struct bpf_sysctl */
    case GKT_CGROUP_SOCKOPT: return 40;         /* struct bpf_sockopt */
    case GKT_SOCK_OPS: return 216;              /* struct bpf_sock_ops */
    case GKT_SK_MSG: return 80;                 /* struct sk_msg_md */
    case GKT_SK_REUSEPORT: return 56;           /* struct sk_reuseport_md */
    case GKT_SK_LOOKUP: return 72;              /* struct bpf_sk_lookup */
    case GKT_LIRC_MODE2: return 4;              /* u32 sample */
    case GKT_NETFILTER: return 16;              /* struct bpf_nf_ctx: two pointers */
    case GKT_SYSCALL: return 4096;              /* caller's bytes, size unknown offline */
    default: return 0;
    }
}

struct gver_policy *gver_policy_for_kernel_type(int ktype)
{
    struct gver_policy *p;
    switch (ktype) {
    case GKT_KPROBE:
    case GKT_PERF_EVENT:
        p = policy_new();
        if (p)
            p->ctx = ktype == GKT_KPROBE ? &gver_ctx_pt_regs : &ctx_perf_event;
        return p;
    case GKT_RAW_TRACEPOINT:
    case GKT_TRACING:
    case GKT_LSM:
    case GKT_STRUCT_OPS:
        p = policy_new();
        if (p)
            p->ctx = &gver_ctx_raw_tp;
        return p;
    default: {
        uint32_t n = kernel_ctx_bytes(ktype);
        p = n ? gver_policy_raw(n) : NULL;
        /* the kernel's may_access_skb() types have LD_ABS / LD_IND */
        if (p && (ktype == GKT_SOCKET_FILTER || ktype == GKT_SCHED_CLS || ktype == GKT_SCHED_ACT ||
                  ktype == GKT_UNKNOWN))
            p->ld_pkt = 1;
        return p;
    }
    }
}

static void ret_range(struct gver_policy *p, int64_t lo, int64_t hi)
{
    p->ret_checked = 1;
    p->ret_min = lo;
    p->ret_max = hi;
}

void gver_policy_kernel_ret(struct gver_policy *p, int ktype, const char *section)
{
    if (!p)
        return;
    gver_policy_kernel_ctx(p, ktype, section);
    const char *sec = section ? section : "";
    if (sec[0] == '?')
        sec++;
    const char *slash = strchr(sec, '/');
    const char *attach = slash ? slash + 1 : "";
    size_t plen = slash ? (size_t)(slash - sec) : strlen(sec);
    /* sleepable: syscall programs, and sections whose type ends in ".s" */
    p->ksleepable = ktype == GKT_SYSCALL || (plen > 2 && !strncmp(sec + plen - 2, ".s", 2));
    switch (ktype) {
    case GKT_CGROUP_SKB:
        if (!strcmp(attach, "egress"))
            ret_range(p, 0, 3);   /* drop/pass, plus congestion notification */
        else
            ret_range(p, 0, 1);
        return;
    case GKT_CGROUP_SOCK_ADDR:
        if (!strncmp(attach, "recvmsg", 7) || !strncmp(attach, "getpeername", 11) ||
            !strncmp(attach, "getsockname", 11))
            ret_range(p, 1, 1);
        else if (!strcmp(attach, "bind4") || !strcmp(attach, "bind6"))
            ret_range(p, 0, 3);
        else
            ret_range(p, 0, 1);
        return;
    case GKT_CGROUP_SOCK:
    case GKT_SOCK_OPS:
    case GKT_CGROUP_DEV:
    case GKT_CGROUP_SYSCTL:
    case GKT_CGROUP_SOCKOPT:
    case GKT_SK_LOOKUP:
    case GKT_NETFILTER:
        ret_range(p, 0, 1);
        return;
    case GKT_LSM:
        if (!strncmp(sec, "lsm/", 4) || !strncmp(sec, "lsm.s/", 6))
            gver_policy_kernel_lsm(p, attach);
        return;
    case GKT_TRACING:
        if (!strncmp(sec, "fentry", 6) || !strncmp(sec, "fexit", 5))
            ret_range(p, 0, 0);
        else if (!strncmp(sec, "iter", 4))
            ret_range(p, 0, 1);
        return;
    default:
        return;
    }
}
