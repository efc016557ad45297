/*
 * sock.c - socket pointers of kernel program types, for offline verdicts
 * of kernel programs (graft never runs them), with the kernel's rules
 * (kernel/bpf/verifier.c and net/core/filter.c, 6.12):
 *  - what each socket view may read: struct bpf_sock (a full socket),
 *    its common fields only (a request or timewait socket may be behind a
 *    sock_common), struct bpf_tcp_sock, struct bpf_xdp_sock; nothing is
 *    written and a socket pointer is never moved;
 *  - which socket each helper argument takes;
 *  - references: a socket a lookup returns (sk_lookup_*, a sockmap or
 *    sockhash lookup) is held until sk_release, which must happen once on
 *    every path (check_exit, tail calls and LD_ABS refuse held
 *    references); casts (sk_fullsock, tcp_sock, skc_to_*) return the same
 *    socket, so their result carries its reference and dies with it;
 *  - which helper may take which socket map, per program type.
 */
#include "loader/loader.h"   /* enum gprog_ktype only */
#include "verifier/env.h"

/* kernel map types (enum bpf_map_type) graft has no implementation of */
enum {
    KMAP_DEVMAP = 14, KMAP_SOCKMAP = 15, KMAP_CPUMAP = 16, KMAP_XSKMAP = 17, KMAP_SOCKHASH = 18,
    KMAP_REUSEPORT_SOCKARRAY = 20, KMAP_SK_STORAGE = 24, KMAP_DEVMAP_HASH = 25,
    KMAP_CGROUP_STORAGE = 19, KMAP_PERCPU_CGROUP_STORAGE = 21,
};

enum {
    H_LOOKUP = 1, H_UPDATE = 2, H_DELETE = 3, H_REDIRECT_MAP = 51, H_SK_REDIRECT_MAP = 52,
    H_SOCK_MAP_UPDATE = 53, H_MSG_REDIRECT_MAP = 60, H_SOCK_HASH_UPDATE = 70,
    H_MSG_REDIRECT_HASH = 71, H_SK_REDIRECT_HASH = 72, H_SELECT_REUSEPORT = 82, H_SK_ASSIGN = 124,
    H_SK_STORAGE_GET = 107, H_SK_STORAGE_DELETE = 108, H_LOCAL_STORAGE = 81,
};

/* struct bpf_sock (UAPI) */
#define SK_TYPE        8
#define SK_PRIORITY    20
#define SK_SRC_IP4     24
#define SK_SRC_IP6     28     /* 28..43 */
#define SK_SRC_PORT    44
#define SK_DST_PORT    48     /* __be16, then 2 bytes of padding */
#define SK_DST_IP4     52
#define SK_DST_IP6     56     /* 56..71 */
#define SK_STATE       72
#define SK_RX_QUEUE    76
#define SK_SIZE        80
/* struct bpf_tcp_sock: u32 fields, two u64 ones, 112 bytes up to icsk_retransmits */
#define TCP_BYTES_RECEIVED 80
#define TCP_BYTES_ACKED    88
#define TCP_SIZE           112

static bool in_range(int64_t off, int64_t f, int64_t n)
{
    return off >= f && off < f + n;
}

/* bpf_sock_is_valid_access: the u32 fields the kernel converts narrow
 * (family, type, protocol, ports, addresses, state, rx queue) may be
 * read in 1, 2 or 4 bytes at their start (the addresses at any aligned
 * byte), dst_port's two bytes in 1 or 2 or the whole word, the others
 * only whole. common: only the fields every socket has (no type,
 * protocol, mark, priority). */
static bool bpf_sock_ok(int64_t off, unsigned size, bool common)
{
    if (off < 0 || off >= SK_SIZE || off % size)
        return false;
    if (common && in_range(off, SK_TYPE, SK_PRIORITY + 4 - SK_TYPE))
        return false;
    if (off == 4 || off == SK_TYPE || off == 12 || off == SK_SRC_PORT || off == SK_STATE ||
        off == SK_RX_QUEUE || in_range(off, SK_SRC_IP4, 4) || in_range(off, SK_SRC_IP6, 16) ||
        in_range(off, SK_DST_IP4, 4) || in_range(off, SK_DST_IP6, 16))
        return size <= 4;
    if (in_range(off, SK_DST_PORT, 2))
        return size <= 4;               /* its bytes, the half or the word at 48 */
    if (in_range(off, SK_DST_PORT + 2, 2))
        return false;
    return size == 4;
}

int check_sock_access(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
                      enum acc acc)
{
    if (acc != ACC_READ)
        return reject(e, "R%d cannot write into %s", regno, reg_type_name(p->type));
    int64_t off = p->off + insn_off + (int64_t)p->v.t.value;
    bool ok;
    switch (p->type) {
    case T_SOCK:
        ok = bpf_sock_ok(off, size, false);
        break;
    case T_SOCK_COMMON:
        ok = bpf_sock_ok(off, size, true);
        break;
    case T_TCP_SOCK:
        ok = off >= 0 && off < TCP_SIZE && off % size == 0 &&
             size == (off == TCP_BYTES_RECEIVED || off == TCP_BYTES_ACKED ? 8u : 4u);
        break;
    case T_XDP_SOCK:
        ok = off == 0 && size == 4;          /* queue_id */
        break;
    case T_BTF_SOCK:
        return reject(e, "R%d invalid mem access '%s': graft has no kernel BTF layouts to check a read of it",
                      regno, reg_type_name(p->type));
    default:
        return reject(e, "R%d invalid mem access '%s': null check required before dereference",
                      regno, reg_type_name(p->type));
    }
    if (!ok)
        return reject(e, "R%d invalid %s access off=%" PRId64 " size=%u", regno, reg_type_name(p->type), off,
                      size);
    return 0;
}

/* ARG_PTR_TO_SOCK_COMMON's socket types */
static bool any_sock(uint8_t t)
{
    return t == T_SOCK || t == T_SOCK_COMMON || t == T_TCP_SOCK || t == T_XDP_SOCK;
}

int check_sock_arg(struct env *e, int regno, enum garg_kind k, uint32_t helper, const char *hname)
{
    const struct reg *r = &regs(e)[regno];
    int kt = e->pol->kctx;
    /* two helpers whose socket argument depends on the program type */
    if (helper == H_SK_STORAGE_GET && kt == GKT_CGROUP_SOCK) {
        if (r->type != T_CTX || r->off || !scalar_is_const(&r->v) || r->v.t.value)
            return reject(e, "R%d type=%s expected=ctx (helper %s)", regno, reg_type_name(r->type), hname);
        return 0;
    }
    if (helper == H_SK_ASSIGN && kt == GKT_SK_LOOKUP)
        k = GARG_PTR_TO_SOCKET_OR_NULL;
    bool ok;
    switch (k) {
    case GARG_PTR_TO_SOCK_COMMON:
        ok = any_sock(r->type);
        break;
    case GARG_PTR_TO_BTF_SOCK_COMMON:
        ok = any_sock(r->type) || r->type == T_BTF_SOCK;
        break;
    case GARG_PTR_TO_SOCKET_OR_NULL:
        ok = r->type == T_SOCK || r->type == T_SOCK_OR_NULL || is_null_const(r);
        break;
    default:
        return reject(e, "helper %s: argument kind %d is not a socket", hname, k);
    }
    if (!ok)
        return reject(e, "R%d type=%s expected=%s (helper %s)", regno, reg_type_name(r->type),
                      k == GARG_PTR_TO_SOCKET_OR_NULL ? "sock or NULL" : "sock_common, sock, tcp_sock, xdp_sock",
                      hname);
    return 0;
}

/* The socket r points to is acquired: r (and its copies) carry the
 * reference, which calls.c's acquire_ref records for the exit check. */
static int acquire_sock_ref(struct env *e, struct reg *r, uint32_t idx)
{
    r->ref_id = r->id;
    return acquire_ref(e, r->id, idx);
}

int set_sock_ret(struct env *e, const struct ghelper_proto *pr, uint32_t idx, uint32_t arg_ref)
{
    struct reg *r0 = &regs(e)[BPF_R0];
    memset(r0, 0, sizeof(*r0));
    scalar_const(&r0->v, 0);
    switch (pr->ret) {
    case GRET_SOCKET_OR_NULL: r0->type = T_SOCK_OR_NULL; break;
    case GRET_SOCK_COMMON_OR_NULL: r0->type = T_SOCK_COMMON_OR_NULL; break;
    case GRET_TCP_SOCK_OR_NULL: r0->type = T_TCP_SOCK_OR_NULL; break;
    case GRET_BTF_SOCK_OR_NULL: r0->type = T_BTF_SOCK_OR_NULL; break;
    default: return reject(e, "helper %s does not return a socket", pr->name);
    }
    r0->id = new_id(e);
    if (pr->flags & GHELPER_F_ACQUIRE)
        return acquire_sock_ref(e, r0, idx);
    if (pr->flags & GHELPER_F_PTR_CAST)
        r0->ref_id = arg_ref;        /* the same socket: released with it */
    return 0;
}

/* may_update_sockmap: where a program cannot hold a locked socket, the
 * generic update and delete may change a socket map */
static bool may_update_sockmap(struct env *e, uint32_t helper)
{
    if (helper != H_UPDATE && helper != H_DELETE)
        return false;
    switch (e->pol->kctx) {
    case GKT_SOCK_OPS:
        return helper == H_DELETE;   /* updates through the dedicated helpers only */
    case GKT_SOCKET_FILTER: case GKT_SCHED_CLS: case GKT_SCHED_ACT: case GKT_XDP:
    case GKT_SK_REUSEPORT: case GKT_FLOW_DISSECTOR: case GKT_SK_LOOKUP:
        return true;
    default:
        return false;
    }
}

static bool one_of(uint32_t v, const uint32_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == v)
            return true;
    return false;
}
#define ONE_OF(v, ...) one_of(v, (const uint32_t[]){ __VA_ARGS__ }, \
                              sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))

int sock_map_helper(struct env *e, uint32_t helper, uint32_t map_type, const char *map_name)
{
    bool map_ok = true, decided = true;
    switch (map_type) {
    case KMAP_SOCKMAP:
        map_ok = ONE_OF(helper, H_SK_REDIRECT_MAP, H_SOCK_MAP_UPDATE, H_MSG_REDIRECT_MAP,
                        H_SELECT_REUSEPORT, H_LOOKUP);
        break;
    case KMAP_SOCKHASH:
        map_ok = ONE_OF(helper, H_SK_REDIRECT_HASH, H_SOCK_HASH_UPDATE, H_MSG_REDIRECT_HASH,
                        H_SELECT_REUSEPORT, H_LOOKUP);
        break;
    case KMAP_XSKMAP:
        map_ok = ONE_OF(helper, H_REDIRECT_MAP, H_LOOKUP);
        break;
    /* the kernel also lets a program look a device up, in a value it
     * makes read-only: graft does not model that flag, so it refuses the
     * lookup (stricter) rather than let the value be written */
    case KMAP_DEVMAP:
    case KMAP_DEVMAP_HASH:
    case KMAP_CPUMAP: map_ok = helper == H_REDIRECT_MAP; break;
    case KMAP_REUSEPORT_SOCKARRAY: map_ok = helper == H_SELECT_REUSEPORT; break;
    case KMAP_SK_STORAGE: map_ok = helper == H_SK_STORAGE_GET || helper == H_SK_STORAGE_DELETE; break;
    case KMAP_CGROUP_STORAGE:
    case KMAP_PERCPU_CGROUP_STORAGE: map_ok = helper == H_LOCAL_STORAGE; break;
    default: decided = false; break;
    }
    /* graft's own program types: no kernel sockets (or cgroups) behind such a map */
    if (decided && !e->pol->kctx)
        return reject(e, "map '%s' of type %u holds kernel sockets: only kernel program types may use it",
                      map_name, map_type);
    if (decided && !map_ok && (map_type == KMAP_SOCKMAP || map_type == KMAP_SOCKHASH) &&
        (helper == H_UPDATE || helper == H_DELETE)) {
        if (!may_update_sockmap(e, helper))
            return reject(e, "cannot update sockmap in this context (map '%s')", map_name);
        map_ok = true;
    }
    /* ... and the helper's side */
    bool helper_ok = true;
    switch (helper) {
    case H_REDIRECT_MAP:
        helper_ok = ONE_OF(map_type, KMAP_DEVMAP, KMAP_DEVMAP_HASH, KMAP_CPUMAP, KMAP_XSKMAP);
        break;
    case H_SK_REDIRECT_MAP: case H_MSG_REDIRECT_MAP: case H_SOCK_MAP_UPDATE:
        helper_ok = map_type == KMAP_SOCKMAP;
        break;
    case H_SK_REDIRECT_HASH: case H_MSG_REDIRECT_HASH: case H_SOCK_HASH_UPDATE:
        helper_ok = map_type == KMAP_SOCKHASH;
        break;
    case H_SELECT_REUSEPORT:
        helper_ok = ONE_OF(map_type, KMAP_REUSEPORT_SOCKARRAY, KMAP_SOCKMAP, KMAP_SOCKHASH);
        break;
    case H_SK_STORAGE_GET: case H_SK_STORAGE_DELETE:
        helper_ok = map_type == KMAP_SK_STORAGE;
        break;
    case H_LOCAL_STORAGE:
        helper_ok = map_type == KMAP_CGROUP_STORAGE || map_type == KMAP_PERCPU_CGROUP_STORAGE;
        break;
    default:
        if (!decided)
            return 0;
        break;
    }
    if (!map_ok || !helper_ok)
        return reject(e, "cannot pass map_type %u into func #%u (map '%s')", map_type, helper, map_name);
    return 1;
}

bool sock_map_value_is_sock(uint32_t map_type)
{
    return map_type == KMAP_SOCKMAP || map_type == KMAP_SOCKHASH;
}

int sock_map_lookup_ret(struct env *e, uint32_t map_type, uint32_t idx)
{
    struct reg *r0 = &regs(e)[BPF_R0];
    if (map_type != KMAP_SOCKMAP && map_type != KMAP_SOCKHASH && map_type != KMAP_XSKMAP)
        return 0;
    memset(r0, 0, sizeof(*r0));
    scalar_const(&r0->v, 0);
    r0->id = new_id(e);
    if (map_type == KMAP_XSKMAP) {
        r0->type = T_XDP_SOCK_OR_NULL;
        return 1;
    }
    /* the kernel takes a reference on the socket it finds */
    r0->type = T_SOCK_OR_NULL;
    int rc = acquire_sock_ref(e, r0, idx);
    return rc ? rc : 1;
}
