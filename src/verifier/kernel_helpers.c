/*
 * kernel_helpers.c - which helpers each kernel program type may call, as the
 * kernel's per-type func_proto functions decide (Linux 6.1: kernel/bpf/
 * helpers.c bpf_base_func_proto, kernel/trace/bpf_trace.c for the tracing
 * types, net/core/filter.c for the socket and packet types, kernel/bpf/
 * cgroup.c for the cgroup types), restricted to the helpers graft has a
 * prototype for (helpers/registry.c) and a few kernel-only ones below. A
 * helper outside its type's set is "unknown func", as the kernel says: the
 * program could not be loaded.
 *
 * Two tiers, as the kernel has them: bpf_base_func_proto gives every user
 * the map, time, random, tail call and ring buffer helpers; spin locks,
 * bpf_loop and for_each_map_elem need CAP_BPF, trace_printk, snprintf and
 * the probe_read_kernel/user family need CAP_PERFMON. Only socket filters
 * and cgroup_skb programs can be loaded without privileges, so only they
 * have an unprivileged set.
 *
 * graft's own attachable types are not governed by this table: their
 * policy is runtime/policy.c's (rights, EIM classes).
 */
#include "vpriv.h"

#include <pthread.h>

#include "loader/loader.h"   /* enum gprog_ktype only */

/* helper ids (the kernel's enum bpf_func_id) */
enum {
    H_MAP_LOOKUP = 1, H_MAP_UPDATE = 2, H_MAP_DELETE = 3, H_PROBE_READ = 4, H_KTIME = 5,
    H_TRACE_PRINTK = 6, H_PRANDOM = 7, H_SMP_ID = 8, H_TAIL_CALL = 12, H_PID_TGID = 14,
    H_UID_GID = 15, H_COMM = 16, H_PERF_OUTPUT = 25, H_STACKID = 27, H_WRITE_USER = 36,
    H_UNDER_CGROUP = 37, H_PROBE_READ_STR = 45, H_OVERRIDE = 58, H_GET_STACK = 67,
    H_PUSH = 87, H_POP = 88, H_PEEK = 89, H_SPIN_LOCK = 93, H_SPIN_UNLOCK = 94,
    H_SIGNAL = 109, H_READ_USER = 112, H_READ_KERNEL = 113, H_READ_USER_STR = 114,
    H_READ_KERNEL_STR = 115, H_SIGNAL_THREAD = 117, H_KTIME_BOOT = 125,
    H_RB_OUTPUT = 130, H_RB_RESERVE = 131, H_RB_SUBMIT = 132, H_RB_DISCARD = 133,
    H_RB_QUERY = 134, H_KTIME_COARSE = 160, H_FOR_EACH = 164, H_SNPRINTF = 165,
    H_FUNC_IP = 173, H_ATTACH_COOKIE = 174, H_LOOP = 181, H_STRNCMP = 182,
    H_FUNC_ARG = 183, H_FUNC_RET = 184, H_FUNC_ARG_CNT = 185,
    /* kernel-only (kernel_only_protos) */
    H_CGROUP_CLASSID = 17, H_REDIRECT = 23, H_SKB_LOAD_BYTES = 26, H_CSUM_DIFF = 28,
    H_HASH_RECALC = 34, H_CSUM_UPDATE = 40, H_SOCKET_COOKIE = 46, H_STRTOL = 105,
    H_STRTOUL = 106, H_JIFFIES64 = 118, H_CURRENT_TASK_BTF = 158, H_FIB_LOOKUP = 69,
    H_NETNS_COOKIE = 122, H_CHECK_MTU = 163, H_LOCAL_STORAGE = 81, H_COPY_FROM_USER_TASK = 191,
    /* kernel-only, and they move or resize the packet: the verifier
     * invalidates every packet pointer after them (packet.c) */
    H_STORE_BYTES = 9, H_L3_CSUM = 10, H_L4_CSUM = 11, H_CLONE_REDIRECT = 13, H_VLAN_PUSH = 18,
    H_VLAN_POP = 19, H_CHANGE_PROTO = 31, H_CHANGE_TAIL = 38, H_PULL_DATA = 39, H_CHANGE_HEAD = 43,
    H_XDP_ADJUST_HEAD = 44, H_ADJUST_ROOM = 50, H_XDP_ADJUST_META = 54, H_MSG_PULL = 63,
    H_XDP_ADJUST_TAIL = 65, H_MSG_PUSH = 90, H_MSG_POP = 91,
};

/* Kernel helpers graft does not implement, with the kernel's prototypes, so
 * that kernel programs calling them can be verified offline (graft never
 * runs those types: fn is NULL). Only helpers that take numbers, the
 * context and memory the verifier already checks, none that returns a
 * socket (those are sock_helpers.c's); those that change the packet
 * (bpf_helper_changes_pkt_data) make
 * the verifier invalidate every packet pointer (packet.c). */
static const struct ghelper_proto kernel_only_protos[] = {
    { "get_cgroup_classid", H_CGROUP_CLASSID, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX }, 0 },
    { "redirect", H_REDIRECT, NULL, GRET_INTEGER, { GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "skb_load_bytes", H_SKB_LOAD_BYTES, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_PTR_TO_UNINIT_MEM, GARG_CONST_SIZE }, 0 },
    { "csum_diff", H_CSUM_DIFF, NULL, GRET_INTEGER,
      { GARG_PTR_TO_MEM_OR_NULL, GARG_CONST_SIZE_OR_ZERO, GARG_PTR_TO_MEM_OR_NULL,
        GARG_CONST_SIZE_OR_ZERO, GARG_ANYTHING }, 0 },
    { "get_hash_recalc", H_HASH_RECALC, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX }, 0 },
    { "csum_update", H_CSUM_UPDATE, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING }, 0 },
    { "get_socket_cookie", H_SOCKET_COOKIE, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX }, 0 },
    { "strtol", H_STRTOL, NULL, GRET_INTEGER,
      { GARG_PTR_TO_MEM, GARG_CONST_SIZE, GARG_ANYTHING, GARG_PTR_TO_LONG }, 0 },
    { "strtoul", H_STRTOUL, NULL, GRET_INTEGER,
      { GARG_PTR_TO_MEM, GARG_CONST_SIZE, GARG_ANYTHING, GARG_PTR_TO_LONG }, 0 },
    { "jiffies64", H_JIFFIES64, NULL, GRET_INTEGER, { GARG_NONE }, 0 },
    /* the kernel's, not graft's task image: a trusted task_struct pointer */
    { "get_current_task_btf", H_CURRENT_TASK_BTF, NULL, GRET_KERNEL_TASK, { GARG_NONE }, 0 },
    /* the params the helper fills in (the kernel's ARG_PTR_TO_MEM, written) */
    { "fib_lookup", H_FIB_LOOKUP, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_PTR_TO_UNINIT_MEM, GARG_CONST_SIZE, GARG_ANYTHING }, 0 },
    { "get_netns_cookie", H_NETNS_COOKIE, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX_OR_NULL }, 0 },
    /* sleepable programs only (calls.c) */
    { "copy_from_user_task", H_COPY_FROM_USER_TASK, NULL, GRET_INTEGER,
      { GARG_PTR_TO_UNINIT_MEM, GARG_CONST_SIZE_OR_ZERO, GARG_ANYTHING, GARG_PTR_TO_KERNEL_TASK, GARG_ANYTHING }, 0 },
    /* the cgroup's storage of the map (a cgroup storage map), never NULL;
     * flags must be 0 */
    { "get_local_storage", H_LOCAL_STORAGE, NULL, GRET_MAP_VALUE, { GARG_CONST_MAP_PTR, GARG_ANYTHING }, 0 },
    { "check_mtu", H_CHECK_MTU, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_PTR_TO_U32, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    /* the packet-changing ones (bpf_helper_changes_pkt_data) */
    { "skb_store_bytes", H_STORE_BYTES, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_PTR_TO_MEM, GARG_CONST_SIZE, GARG_ANYTHING }, 0 },
    { "l3_csum_replace", H_L3_CSUM, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "l4_csum_replace", H_L4_CSUM, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "clone_redirect", H_CLONE_REDIRECT, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "skb_vlan_push", H_VLAN_PUSH, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "skb_vlan_pop", H_VLAN_POP, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX }, 0 },
    { "skb_change_proto", H_CHANGE_PROTO, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "skb_change_tail", H_CHANGE_TAIL, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "skb_pull_data", H_PULL_DATA, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING }, 0 },
    { "skb_change_head", H_CHANGE_HEAD, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "xdp_adjust_head", H_XDP_ADJUST_HEAD, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING }, 0 },
    { "skb_adjust_room", H_ADJUST_ROOM, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "xdp_adjust_meta", H_XDP_ADJUST_META, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING }, 0 },
    { "msg_pull_data", H_MSG_PULL, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "xdp_adjust_tail", H_XDP_ADJUST_TAIL, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, GARG_ANYTHING }, 0 },
    { "msg_push_data", H_MSG_PUSH, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "msg_pop_data", H_MSG_POP, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_ANYTHING, GARG_ANYTHING, GARG_ANYTHING }, 0 },
};
#define N_KERNEL_ONLY (sizeof(kernel_only_protos) / sizeof(kernel_only_protos[0]))

/* A kernel policy's prototypes: the kernel-only ones, the socket helpers
 * (sock_helpers.c), then graft's. */
static const struct ghelper_proto *kernel_proto(uint32_t id)
{
    for (size_t i = 0; i < N_KERNEL_ONLY; i++)
        if (kernel_only_protos[i].id == id)
            return &kernel_only_protos[i];
    const struct ghelper_proto *p = sock_helper_proto(id);
    return p ? p : ghelper_proto(id);
}

/* bpf_base_func_proto, any user */
static const uint16_t base_unpriv[] = {
    H_MAP_LOOKUP, H_MAP_UPDATE, H_MAP_DELETE, H_PUSH, H_POP, H_PEEK, H_PRANDOM, H_SMP_ID,
    H_TAIL_CALL, H_KTIME, H_KTIME_BOOT, H_RB_OUTPUT, H_RB_RESERVE, H_RB_SUBMIT, H_RB_DISCARD,
    H_RB_QUERY, H_STRNCMP, H_STRTOL, H_STRTOUL,
};
/* bpf_base_func_proto, CAP_BPF */
static const uint16_t base_bpf_cap[] = { H_SPIN_LOCK, H_SPIN_UNLOCK, H_FOR_EACH, H_LOOP, H_JIFFIES64 };
/* bpf_base_func_proto, CAP_PERFMON */
static const uint16_t base_perfmon[] = {
    H_TRACE_PRINTK, H_READ_USER, H_READ_KERNEL, H_READ_USER_STR, H_READ_KERNEL_STR, H_SNPRINTF,
};
/* bpf_tracing_func_proto (kprobe, tracepoint, perf_event, raw_tp, tracing
 * and lsm build on it); probe_read and probe_read_str exist on x86-64 */
static const uint16_t tracing_common[] = {
    H_PID_TGID, H_UID_GID, H_COMM, H_UNDER_CGROUP, H_WRITE_USER, H_PROBE_READ,
    H_PROBE_READ_STR, H_SIGNAL, H_SIGNAL_THREAD, H_FUNC_IP, H_CURRENT_TASK_BTF, H_COPY_FROM_USER_TASK,
};
/* perf_event_output, get_stackid, get_stack: every tracing type */
static const uint16_t tracing_output[] = { H_PERF_OUTPUT, H_STACKID, H_GET_STACK };
static const uint16_t kprobe_only[] = { H_OVERRIDE, H_ATTACH_COOKIE };
static const uint16_t cookie[] = { H_ATTACH_COOKIE };
/* tracing_prog_func_proto: programs with a trampoline (fentry, fexit, ...) */
static const uint16_t trampoline[] = { H_FUNC_ARG, H_FUNC_RET, H_FUNC_ARG_CNT, H_ATTACH_COOKIE };
/* bpf_sk_base_func_proto over bpf_base_func_proto */
static const uint16_t sk_base[] = { H_KTIME_COARSE };
static const uint16_t perf_output[] = { H_PERF_OUTPUT };
static const uint16_t smp_id[] = { H_SMP_ID };
/* cgroup_current_func_proto (cgroup types with a current task) */
static const uint16_t cgroup_current[] = { H_UID_GID, H_PID_TGID, H_COMM };
/* cgroup_common_func_proto (every cgroup type), sock_ops_func_proto */
static const uint16_t local_storage[] = { H_LOCAL_STORAGE };
/* sk_msg_func_proto's own task helpers */
static const uint16_t sk_msg_task[] = { H_UID_GID, H_PID_TGID };
static const uint16_t coarse[] = { H_KTIME_COARSE };
/* 6.12's bpf_base_func_proto gives get_current_task_btf to CAP_PERFMON */
static const uint16_t syscall_task[] = { H_CURRENT_TASK_BTF };
/* the kernel-only helpers, by the func_proto functions that give them */
static const uint16_t skb_bytes[] = { H_SKB_LOAD_BYTES };   /* sk_filter, tc, sk_skb, lwt, flow
                                                             * dissector, sk_reuseport */
/* the context's socket: sk_filter, tc, sock_ops, sk_skb, cgroup sock(_addr)
 * (sk_reuseport's takes a socket pointer, which graft does not model) */
static const uint16_t sock_cookie[] = { H_SOCKET_COOKIE };
static const uint16_t tc_only[] = { H_CGROUP_CLASSID, H_REDIRECT, H_CSUM_DIFF, H_HASH_RECALC,
                                    H_CSUM_UPDATE, H_FIB_LOOKUP, H_CHECK_MTU };
static const uint16_t xdp_only[] = { H_REDIRECT, H_CSUM_DIFF, H_FIB_LOOKUP, H_CHECK_MTU };
/* sock_filter, sock_addr, sock_ops and sk_msg func_protos (ctx or NULL) */
static const uint16_t netns_cookie[] = { H_NETNS_COOKIE };
/* the packet-changing helpers of each type's func_proto */
static const uint16_t tc_pkt[] = { H_STORE_BYTES, H_L3_CSUM, H_L4_CSUM, H_CLONE_REDIRECT, H_VLAN_PUSH,
                                   H_VLAN_POP, H_CHANGE_PROTO, H_CHANGE_TAIL, H_PULL_DATA,
                                   H_CHANGE_HEAD, H_ADJUST_ROOM };
static const uint16_t xdp_pkt[] = { H_XDP_ADJUST_HEAD, H_XDP_ADJUST_META, H_XDP_ADJUST_TAIL };
static const uint16_t sk_skb_pkt[] = { H_STORE_BYTES, H_CHANGE_TAIL, H_PULL_DATA, H_CHANGE_HEAD,
                                       H_ADJUST_ROOM };
static const uint16_t sk_msg_pkt[] = { H_MSG_PULL, H_MSG_PUSH, H_MSG_POP };
static const uint16_t lwt_only[] = { H_CGROUP_CLASSID, H_CSUM_DIFF, H_HASH_RECALC };   /* lwt_out's */
/* lwt_xmit_func_proto's own (the policy's attach point picks it: lwt_xmit_set) */
static const uint16_t lwt_xmit[] = { H_REDIRECT, H_CLONE_REDIRECT, H_CHANGE_TAIL, H_CHANGE_HEAD, H_STORE_BYTES,
                                     H_CSUM_UPDATE, H_L3_CSUM, H_L4_CSUM };

struct part {
    const uint16_t *ids;
    uint32_t n;
};
#define PART(a) { a, sizeof(a) / sizeof(a[0]) }
#define MAX_PARTS 8

/* Each type's set, as the union of the parts its func_proto reaches. */
static const struct {
    int ktype;
    const char *name;              /* the kernel's name (gprog_ktype_name) */
    int unpriv_loadable;           /* has an unprivileged set (base_unpriv tier) */
    struct part parts[MAX_PARTS];
} type_sets[] = {
    { GKT_KPROBE, "kprobe", 0, { PART(tracing_common), PART(tracing_output), PART(kprobe_only) } },
    { GKT_TRACEPOINT, "tracepoint", 0, { PART(tracing_common), PART(tracing_output), PART(cookie) } },
    { GKT_PERF_EVENT, "perf_event", 0, { PART(tracing_common), PART(tracing_output), PART(cookie) } },
    { GKT_RAW_TRACEPOINT, "raw_tracepoint", 0, { PART(tracing_common), PART(tracing_output) } },
    { GKT_TRACING, "tracing", 0, { PART(tracing_common), PART(tracing_output), PART(trampoline) } },
    { GKT_LSM, "lsm", 0, { PART(tracing_common), PART(tracing_output), PART(trampoline) } },
    { GKT_SOCKET_FILTER, "socket_filter", 1, { PART(sk_base), PART(perf_output), PART(skb_bytes), PART(sock_cookie) } },
    { GKT_CGROUP_SKB, "cgroup_skb", 1, { PART(sk_base), PART(perf_output), PART(skb_bytes), PART(sock_cookie), PART(local_storage) } },
    { GKT_SCHED_CLS, "sched_cls", 0, { PART(sk_base), PART(perf_output), PART(smp_id), PART(skb_bytes), PART(sock_cookie), PART(tc_only), PART(tc_pkt) } },
    { GKT_SCHED_ACT, "sched_act", 0, { PART(sk_base), PART(perf_output), PART(smp_id), PART(skb_bytes), PART(sock_cookie), PART(tc_only), PART(tc_pkt) } },
    { GKT_XDP, "xdp", 0, { PART(sk_base), PART(perf_output), PART(smp_id), PART(xdp_only), PART(xdp_pkt) } },
    { GKT_LWT, "lwt", 0, { PART(sk_base), PART(perf_output), PART(smp_id), PART(skb_bytes), PART(lwt_only) } },
    { GKT_SK_SKB, "sk_skb", 0, { PART(sk_base), PART(perf_output), PART(skb_bytes), PART(sock_cookie), PART(sk_skb_pkt) } },
    { GKT_SK_MSG, "sk_msg", 0, { PART(sk_base), PART(perf_output), PART(sk_msg_task), PART(sk_msg_pkt), PART(netns_cookie) } },
    { GKT_SOCK_OPS, "sock_ops", 0, { PART(sk_base), PART(perf_output), PART(sock_cookie), PART(netns_cookie), PART(local_storage) } },
    { GKT_FLOW_DISSECTOR, "flow_dissector", 0, { PART(sk_base), PART(skb_bytes) } },
    { GKT_SK_REUSEPORT, "sk_reuseport", 0, { PART(coarse), PART(skb_bytes) } },
    { GKT_SK_LOOKUP, "sk_lookup", 0, { PART(sk_base), PART(perf_output) } },
    { GKT_CGROUP_SOCK, "cgroup_sock", 0, { PART(cgroup_current), PART(perf_output), PART(coarse), PART(sock_cookie), PART(netns_cookie), PART(local_storage) } },
    { GKT_CGROUP_SOCK_ADDR, "cgroup_sock_addr", 0, { PART(sk_base), PART(cgroup_current), PART(perf_output), PART(sock_cookie), PART(netns_cookie), PART(local_storage) } },
    { GKT_CGROUP_DEV, "cgroup_device", 0, { PART(cgroup_current), PART(perf_output), PART(local_storage) } },
    { GKT_CGROUP_SYSCTL, "cgroup_sysctl", 0, { PART(cgroup_current), PART(perf_output), PART(coarse), PART(local_storage) } },
    { GKT_CGROUP_SOCKOPT, "cgroup_sockopt", 0, { PART(cgroup_current), PART(perf_output), PART(local_storage) } },
    /* the base set only */
    { GKT_LIRC_MODE2, "lirc_mode2", 0, { { 0, 0 } } },
    { GKT_SYSCALL, "syscall", 0, { PART(syscall_task) } },
    { GKT_STRUCT_OPS, "struct_ops", 0, { { 0, 0 } } },
    { GKT_NETFILTER, "netfilter", 0, { { 0, 0 } } },
};
#define N_TYPE_SETS (sizeof(type_sets) / sizeof(type_sets[0]))

/* [type][0]: root's set, [type][1]: an unprivileged user's */
static struct gver_helper_set sets[GKT_UNKNOWN + 1][2];
static struct gver_helper_set lwt_xmit_set;     /* lwt's, plus lwt_xmit's own */
static pthread_once_t sets_once = PTHREAD_ONCE_INIT;

static void add(struct gver_helper_set *s, const uint16_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s->allowed[ids[i] / 64] |= 1ull << (ids[i] % 64);
}

static void build_sets(void)
{
    for (size_t t = 0; t < N_TYPE_SETS; t++) {
        int kt = type_sets[t].ktype;
        struct gver_helper_set *root = &sets[kt][0], *user = &sets[kt][1];
        root->type_name = user->type_name = type_sets[t].name;
        add(root, base_unpriv, sizeof(base_unpriv) / sizeof(base_unpriv[0]));
        add(root, base_bpf_cap, sizeof(base_bpf_cap) / sizeof(base_bpf_cap[0]));
        add(root, base_perfmon, sizeof(base_perfmon) / sizeof(base_perfmon[0]));
        for (int k = 0; k < MAX_PARTS && type_sets[t].parts[k].ids; k++)
            add(root, type_sets[t].parts[k].ids, type_sets[t].parts[k].n);
        sock_helpers_add(kt, root->allowed, user->allowed);
        if (type_sets[t].unpriv_loadable) {
            /* the unprivileged tier: the base helpers without the CAP_BPF
             * and CAP_PERFMON ones, plus the type's own (which need none) */
            add(user, base_unpriv, sizeof(base_unpriv) / sizeof(base_unpriv[0]));
            for (int k = 0; k < MAX_PARTS && type_sets[t].parts[k].ids; k++)
                add(user, type_sets[t].parts[k].ids, type_sets[t].parts[k].n);
        } else {
            *user = *root;
        }
    }
    lwt_xmit_set = sets[GKT_LWT][0];
    lwt_xmit_set.type_name = "lwt_xmit";
    add(&lwt_xmit_set, lwt_xmit, sizeof(lwt_xmit) / sizeof(lwt_xmit[0]));
}

const struct gver_helper_set *gver_kernel_helper_set(int ktype, int unprivileged)
{
    if (ktype <= GKT_NONE || ktype >= GKT_UNKNOWN)
        return NULL;
    pthread_once(&sets_once, build_sets);
    const struct gver_helper_set *s = &sets[ktype][unprivileged ? 1 : 0];
    return s->type_name ? s : NULL;
}

int gver_helper_set_has(const struct gver_helper_set *s, uint32_t id)
{
    return id < BPF_MAX_HELPER_ID && ((s->allowed[id / 64] >> (id % 64)) & 1);
}

void gver_policy_kernel_helpers(struct gver_policy *p, int ktype, int unprivileged)
{
    const struct gver_helper_set *s = gver_kernel_helper_set(ktype, unprivileged);
    if (!p || !s)
        return;
    if (ktype == GKT_LWT && p->kctx_attach == GVER_KATTACH_LWT_XMIT)
        s = &lwt_xmit_set;
    p->kernel_helpers = s;
    p->helper_proto = kernel_proto;
    uint64_t kernel_only[BPF_MAX_HELPER_ID / 64] = {0};
    for (size_t i = 0; i < N_KERNEL_ONLY; i++)
        kernel_only[kernel_only_protos[i].id / 64] |= 1ull << (kernel_only_protos[i].id % 64);
    sock_helpers_mask(kernel_only);
    /* graft's helpers the policy allows and the type has, plus the
     * kernel-only ones the type has */
    for (uint32_t w = 0; w < BPF_MAX_HELPER_ID / 64; w++)
        p->helpers_allowed[w] = (p->helpers_allowed[w] & s->allowed[w]) | (kernel_only[w] & s->allowed[w]);
}
