/*
 * sock_helpers.c - the kernel's socket helpers, for offline verdicts of
 * kernel programs (graft runs none of them: fn is NULL): their prototypes
 * (net/core/filter.c, 6.12) and which program types' func_proto gives
 * each. The verifier's rules for the socket pointers they take and return
 * are sock.c's; kernel_helpers.c adds these to the types' sets.
 */
#include "loader/loader.h"   /* enum gprog_ktype only */
#include "verifier/vpriv.h"

enum {
    H_SOCKET_UID = 47, H_REDIRECT_MAP = 51, H_SK_REDIRECT_MAP = 52, H_SOCK_MAP_UPDATE = 53,
    H_MSG_REDIRECT_MAP = 60, H_SOCK_HASH_UPDATE = 70, H_MSG_REDIRECT_HASH = 71,
    H_SK_REDIRECT_HASH = 72, H_SELECT_REUSEPORT = 82, H_SK_LOOKUP_TCP = 84, H_SK_LOOKUP_UDP = 85,
    H_SK_RELEASE = 86, H_SK_FULLSOCK = 95, H_TCP_SOCK = 96, H_ECN_SET_CE = 97,
    H_LISTENER_SOCK = 98, H_SKC_LOOKUP_TCP = 99, H_CHECK_SYNCOOKIE = 100, H_SK_STORAGE_GET = 107,
    H_SK_STORAGE_DELETE = 108, H_GEN_SYNCOOKIE = 110, H_SK_ASSIGN = 124, H_SK_CGROUP_ID = 128,
    H_SK_ANCESTOR_CGROUP_ID = 129, H_SKC_TO_TCP6 = 136, H_SKC_TO_TCP = 137, H_SKC_TO_TCP_TW = 138,
    H_SKC_TO_TCP_REQ = 139, H_SKC_TO_UDP6 = 140, H_SKC_TO_UNIX = 178, H_SKC_TO_MPTCP = 196,
    H_NETNS_COOKIE = 122, H_LOCAL_STORAGE = 81,
};

#define SKC GARG_PTR_TO_SOCK_COMMON
#define BTF_SKC GARG_PTR_TO_BTF_SOCK_COMMON
#define LOOKUP_ARGS { GARG_PTR_TO_CTX, GARG_PTR_TO_MEM, GARG_CONST_SIZE_OR_ZERO, GARG_ANYTHING, GARG_ANYTHING }
#define SYNCOOKIE_ARGS { BTF_SKC, GARG_PTR_TO_MEM, GARG_CONST_SIZE, GARG_PTR_TO_MEM, GARG_CONST_SIZE }
#define SKC_TO(id, name) { name, id, NULL, GRET_BTF_SOCK_OR_NULL, { BTF_SKC }, GHELPER_F_PTR_CAST }

static const struct ghelper_proto sock_protos[] = {
    { "get_socket_uid", H_SOCKET_UID, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX }, 0 },
    { "redirect_map", H_REDIRECT_MAP, NULL, GRET_INTEGER, { GARG_CONST_MAP_PTR, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "sk_redirect_map", H_SK_REDIRECT_MAP, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "sock_map_update", H_SOCK_MAP_UPDATE, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_PTR_TO_MAP_KEY, GARG_ANYTHING }, 0 },
    { "msg_redirect_map", H_MSG_REDIRECT_MAP, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_ANYTHING, GARG_ANYTHING }, 0 },
    { "sock_hash_update", H_SOCK_HASH_UPDATE, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_PTR_TO_MAP_KEY, GARG_ANYTHING }, 0 },
    { "msg_redirect_hash", H_MSG_REDIRECT_HASH, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_PTR_TO_MAP_KEY, GARG_ANYTHING }, 0 },
    { "sk_redirect_hash", H_SK_REDIRECT_HASH, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_PTR_TO_MAP_KEY, GARG_ANYTHING }, 0 },
    { "sk_select_reuseport", H_SELECT_REUSEPORT, NULL, GRET_INTEGER,
      { GARG_PTR_TO_CTX, GARG_CONST_MAP_PTR, GARG_PTR_TO_MAP_KEY, GARG_ANYTHING }, 0 },
    { "sk_lookup_tcp", H_SK_LOOKUP_TCP, NULL, GRET_SOCKET_OR_NULL, LOOKUP_ARGS, GHELPER_F_ACQUIRE },
    { "sk_lookup_udp", H_SK_LOOKUP_UDP, NULL, GRET_SOCKET_OR_NULL, LOOKUP_ARGS, GHELPER_F_ACQUIRE },
    { "skc_lookup_tcp", H_SKC_LOOKUP_TCP, NULL, GRET_SOCK_COMMON_OR_NULL, LOOKUP_ARGS, GHELPER_F_ACQUIRE },
    { "sk_release", H_SK_RELEASE, NULL, GRET_INTEGER, { BTF_SKC }, GHELPER_F_RELEASE },
    { "sk_fullsock", H_SK_FULLSOCK, NULL, GRET_SOCKET_OR_NULL, { SKC }, GHELPER_F_PTR_CAST },
    { "tcp_sock", H_TCP_SOCK, NULL, GRET_TCP_SOCK_OR_NULL, { SKC }, GHELPER_F_PTR_CAST },
    /* the listener is not reference-counted: a plain pointer, no reference */
    { "get_listener_sock", H_LISTENER_SOCK, NULL, GRET_SOCKET_OR_NULL, { SKC }, 0 },
    { "skb_ecn_set_ce", H_ECN_SET_CE, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX }, 0 },
    { "tcp_check_syncookie", H_CHECK_SYNCOOKIE, NULL, GRET_INTEGER, SYNCOOKIE_ARGS, 0 },
    { "tcp_gen_syncookie", H_GEN_SYNCOOKIE, NULL, GRET_INTEGER, SYNCOOKIE_ARGS, 0 },
    { "sk_storage_get", H_SK_STORAGE_GET, NULL, GRET_MAP_VALUE_OR_NULL,
      { GARG_CONST_MAP_PTR, BTF_SKC, GARG_PTR_TO_MAP_VALUE_OR_NULL, GARG_ANYTHING }, 0 },
    { "sk_storage_delete", H_SK_STORAGE_DELETE, NULL, GRET_INTEGER, { GARG_CONST_MAP_PTR, BTF_SKC }, 0 },
    { "sk_assign", H_SK_ASSIGN, NULL, GRET_INTEGER, { GARG_PTR_TO_CTX, BTF_SKC, GARG_ANYTHING }, 0 },
    /* get_netns_cookie and get_local_storage, which these types' sets
     * below also give, have their prototypes in kernel_helpers.c */
    { "sk_cgroup_id", H_SK_CGROUP_ID, NULL, GRET_INTEGER, { BTF_SKC }, 0 },
    { "sk_ancestor_cgroup_id", H_SK_ANCESTOR_CGROUP_ID, NULL, GRET_INTEGER, { BTF_SKC, GARG_ANYTHING }, 0 },
    SKC_TO(H_SKC_TO_TCP6, "skc_to_tcp6_sock"),
    SKC_TO(H_SKC_TO_TCP, "skc_to_tcp_sock"),
    SKC_TO(H_SKC_TO_TCP_TW, "skc_to_tcp_timewait_sock"),
    SKC_TO(H_SKC_TO_TCP_REQ, "skc_to_tcp_request_sock"),
    SKC_TO(H_SKC_TO_UDP6, "skc_to_udp6_sock"),
    SKC_TO(H_SKC_TO_UNIX, "skc_to_unix_sock"),
    SKC_TO(H_SKC_TO_MPTCP, "skc_to_mptcp_sock"),
};
#define N_SOCK_PROTOS (sizeof(sock_protos) / sizeof(sock_protos[0]))

const struct ghelper_proto *sock_helper_proto(uint32_t id)
{
    for (size_t i = 0; i < N_SOCK_PROTOS; i++)
        if (sock_protos[i].id == id)
            return &sock_protos[i];
    return NULL;
}

void sock_helpers_mask(uint64_t *allowed)
{
    for (size_t i = 0; i < N_SOCK_PROTOS; i++)
        allowed[sock_protos[i].id / 64] |= 1ull << (sock_protos[i].id % 64);
}

/* Per type, the socket helpers its func_proto gives (0-terminated). */
static const uint16_t lookups[] = { H_SK_LOOKUP_TCP, H_SK_LOOKUP_UDP, H_SK_RELEASE, H_SKC_LOOKUP_TCP, 0 };
static const uint16_t storage[] = { H_SK_STORAGE_GET, H_SK_STORAGE_DELETE, 0 };
static const uint16_t skb_sock[] = { H_SK_FULLSOCK, H_TCP_SOCK, H_LISTENER_SOCK, H_ECN_SET_CE, H_SOCKET_UID, 0 };
static const uint16_t cg_skb_only[] = { H_SK_CGROUP_ID, H_SK_ANCESTOR_CGROUP_ID, 0 };
static const uint16_t syncookies[] = { H_CHECK_SYNCOOKIE, H_GEN_SYNCOOKIE, 0 };
static const uint16_t tc_only[] = { H_SK_ASSIGN, 0 };
static const uint16_t xdp_only[] = { H_REDIRECT_MAP, 0 };
static const uint16_t sock_ops_only[] = { H_SOCK_MAP_UPDATE, H_SOCK_HASH_UPDATE, H_TCP_SOCK, H_NETNS_COOKIE, 0 };
static const uint16_t sk_msg_only[] = { H_MSG_REDIRECT_MAP, H_MSG_REDIRECT_HASH, H_NETNS_COOKIE, 0 };
static const uint16_t sk_skb_only[] = { H_SOCKET_UID, H_SK_REDIRECT_MAP, H_SK_REDIRECT_HASH, 0 };
static const uint16_t reuseport_only[] = { H_SELECT_REUSEPORT, 0 };
static const uint16_t sk_lookup_only[] = { H_SK_ASSIGN, H_SK_RELEASE, 0 };
static const uint16_t cg_sock_only[] = { H_SK_STORAGE_GET, H_NETNS_COOKIE, 0 };
static const uint16_t sock_addr_only[] = { H_NETNS_COOKIE, 0 };
static const uint16_t sockopt_only[] = { H_NETNS_COOKIE, H_TCP_SOCK, 0 };   /* cg_sockopt_func_proto */
static const uint16_t socket_filter_only[] = { H_SOCKET_UID, 0 };
/* bpf_sk_base_func_proto's casts: CAP_PERFMON only */
static const uint16_t skc_to[] = { H_SKC_TO_TCP6, H_SKC_TO_TCP, H_SKC_TO_TCP_TW, H_SKC_TO_TCP_REQ,
                                   H_SKC_TO_UDP6, H_SKC_TO_UNIX, H_SKC_TO_MPTCP, 0 };

static void add_ids(uint64_t *allowed, const uint16_t *ids)
{
    for (; *ids; ids++)
        allowed[*ids / 64] |= 1ull << (*ids % 64);
}

void sock_helpers_add(int ktype, uint64_t *root, uint64_t *user)
{
    const uint16_t *parts[4] = { 0 };
    bool sk_base = true;       /* the type's func_proto ends in bpf_sk_base_func_proto */
    switch (ktype) {
    case GKT_SOCKET_FILTER: parts[0] = socket_filter_only; break;
    case GKT_CGROUP_SKB:
        parts[0] = lookups; parts[1] = storage; parts[2] = skb_sock; parts[3] = cg_skb_only;
        break;
    case GKT_SCHED_CLS:
    case GKT_SCHED_ACT:
        parts[0] = lookups; parts[1] = storage; parts[2] = skb_sock; parts[3] = syncookies;
        add_ids(root, tc_only);
        add_ids(user, tc_only);
        break;
    case GKT_XDP: parts[0] = lookups; parts[1] = syncookies; parts[2] = xdp_only; break;
    case GKT_SOCK_OPS: parts[0] = storage; parts[1] = sock_ops_only; break;
    case GKT_SK_MSG: parts[0] = storage; parts[1] = sk_msg_only; break;
    case GKT_SK_SKB: parts[0] = lookups; parts[1] = sk_skb_only; break;
    case GKT_SK_REUSEPORT: parts[0] = reuseport_only; sk_base = false; break;
    case GKT_SK_LOOKUP: parts[0] = sk_lookup_only; break;
    case GKT_CGROUP_SOCK_ADDR:
        parts[0] = lookups; parts[1] = storage; parts[2] = sock_addr_only; sk_base = false;
        break;
    case GKT_CGROUP_SOCK: parts[0] = cg_sock_only; sk_base = false; break;
    case GKT_CGROUP_SOCKOPT: parts[0] = storage; parts[1] = sockopt_only; sk_base = false; break;
    case GKT_LWT:
    case GKT_FLOW_DISSECTOR: break;
    case GKT_CGROUP_DEV:
    case GKT_CGROUP_SYSCTL: sk_base = false; break;
    default: return;
    }
    static const uint16_t cgroup_common[] = { H_LOCAL_STORAGE, 0 };
    if (ktype == GKT_CGROUP_SKB || ktype == GKT_CGROUP_SOCK || ktype == GKT_CGROUP_SOCK_ADDR ||
        ktype == GKT_SOCK_OPS || ktype == GKT_CGROUP_SOCKOPT || ktype == GKT_CGROUP_DEV ||
        ktype == GKT_CGROUP_SYSCTL) {
        add_ids(root, cgroup_common);
        add_ids(user, cgroup_common);
    }
    for (int i = 0; i < 4 && parts[i]; i++) {
        add_ids(root, parts[i]);
        add_ids(user, parts[i]);
    }
    if (sk_base)
        add_ids(root, skc_to);
}
