/*
 * ctx_kernel.c - the context rules of the kernel's program types, for
 * offline verdicts of kernel programs (gver_policy.kctx): which fields of
 * __sk_buff, xdp_md, sk_msg_md, ... each type may read or write and at
 * which sizes, which loads give packet pointers, and the kernel's rule that
 * the context pointer itself is never moved (the kernel rewrites every
 * context access into a load from its own structures, so an access must
 * name a field at a fixed offset).
 *
 * The facts (offsets, per-type field lists) are the UAPI's and the
 * kernel's (net/core/filter.c, 6.12); graft never runs these programs.
 */
#include "loader/loader.h"
#include "verifier/env.h"

/* struct __sk_buff (UAPI), x86-64 offsets */
#define SKB_LEN            0
#define SKB_MARK           8
#define SKB_QUEUE_MAPPING  12
#define SKB_PRIORITY       32
#define SKB_TC_INDEX       44
#define SKB_CB             48     /* __u32 cb[5]: 48..67 */
#define SKB_CB_END         68
#define SKB_TC_CLASSID     72
#define SKB_DATA           76
#define SKB_DATA_END       80
#define SKB_FAMILY         88     /* family .. local_port: 88..139 */
#define SKB_REMOTE_IP4     92
#define SKB_LOCAL_IP4      96
#define SKB_REMOTE_IP6     100    /* 100..115 */
#define SKB_LOCAL_IP6      116    /* 116..131 */
#define SKB_LOCAL_PORT_END 140
#define SKB_DATA_META      140
#define SKB_FLOW_KEYS      144    /* pointer, 8 bytes */
#define SKB_TSTAMP         152    /* __u64 */
#define SKB_WIRE_LEN       160
#define SKB_SK             168    /* pointer, 8 bytes */
#define SKB_TSTAMP_TYPE    180    /* __u8, then 3 bytes of padding */
#define SKB_HWTSTAMP       184    /* __u64 */
#define SKB_SIZE           192

/* off falls in the u32 field at f (or in [f, f + n) for wider fields) */
static bool in_field(int64_t off, int64_t f, int64_t n)
{
    return off >= f && off < f + n;
}

static bool pkt_type(int kt)
{
    return kt == GKT_SCHED_CLS || kt == GKT_SCHED_ACT || kt == GKT_CGROUP_SKB || kt == GKT_LWT ||
           kt == GKT_SK_SKB || kt == GKT_FLOW_DISSECTOR;
}

/* The __sk_buff rules every skb type shares after its own (the kernel's
 * bpf_skb_is_valid_access): the packet fields, ip fields and pointers at
 * their own sizes, narrow reads of the other u32 fields, u32 writes. */
static bool skb_common(int64_t off, unsigned size, enum acc acc, bool sext)
{
    if (off < 0 || off >= SKB_SIZE || off % size)
        return false;
    if (in_field(off, SKB_CB, SKB_CB_END - SKB_CB))
        return off + size <= SKB_CB_END;
    if (in_field(off, SKB_DATA, 4) || in_field(off, SKB_DATA_META, 4) || in_field(off, SKB_DATA_END, 4))
        return !sext && size == 4;
    if (in_field(off, SKB_REMOTE_IP6, 32) || in_field(off, SKB_REMOTE_IP4, 8))
        return size == 4;
    if (in_field(off, SKB_FLOW_KEYS, 8))
        return false;
    if (in_field(off, SKB_HWTSTAMP, 8))
        return acc == ACC_READ && size == 8;
    if (in_field(off, SKB_TSTAMP, 8))
        return size == 8;
    if (in_field(off, SKB_SK, 8))
        return acc == ACC_READ && size == 8;
    if (in_field(off, SKB_TSTAMP_TYPE, 4))   /* the byte and its padding */
        return false;
    if (acc == ACC_WRITE)
        return size == 4;
    return size <= 4;                       /* 1, 2 or 4: the verifier decoded a size */
}

/* capable: the loader has CAP_BPF (the kernel's root rules) */
static bool skb_writable(int kt, int64_t off, bool capable)
{
    bool cb = in_field(off, SKB_CB, SKB_CB_END - SKB_CB);
    switch (kt) {
    case GKT_SOCKET_FILTER:
        return cb;
    case GKT_CGROUP_SKB:
        return cb || in_field(off, SKB_MARK, 4) || in_field(off, SKB_PRIORITY, 4) ||
               (capable && in_field(off, SKB_TSTAMP, 8));
    case GKT_LWT:
        return cb || in_field(off, SKB_MARK, 4) || in_field(off, SKB_PRIORITY, 4);
    case GKT_SCHED_CLS:
    case GKT_SCHED_ACT:
        return cb || in_field(off, SKB_MARK, 4) || in_field(off, SKB_TC_INDEX, 4) ||
               in_field(off, SKB_PRIORITY, 4) || in_field(off, SKB_TC_CLASSID, 4) ||
               in_field(off, SKB_TSTAMP, 8) || in_field(off, SKB_QUEUE_MAPPING, 4);
    case GKT_SK_SKB:
        return in_field(off, SKB_TC_INDEX, 4) || in_field(off, SKB_PRIORITY, 4);
    default:
        return false;
    }
}

/* __sk_buff for one program type: false when the kernel refuses the
 * access; *ty is what a load gives. */
static bool skb_access(const struct gver_policy *pol, int64_t off, unsigned size, enum acc acc,
                       bool sext, uint8_t *ty)
{
    int kt = pol->kctx;
    bool sk_fields = in_field(off, SKB_FAMILY, SKB_LOCAL_PORT_END - SKB_FAMILY);
    *ty = T_SCALAR;
    if (kt == GKT_FLOW_DISSECTOR) {
        /* only the packet and the flow keys */
        if (off < 0 || off >= SKB_SIZE || off % size || acc != ACC_READ)
            return false;
        if (in_field(off, SKB_DATA, 4) || in_field(off, SKB_DATA_END, 4)) {
            *ty = in_field(off, SKB_DATA, 4) ? T_PACKET : T_PACKET_END;
            return !sext && size == 4;
        }
        return in_field(off, SKB_FLOW_KEYS, 8) && size == 8;
    }
    /* fields hidden from the type */
    bool hidden = false;
    switch (kt) {
    case GKT_SOCKET_FILTER:
        hidden = in_field(off, SKB_TC_CLASSID, 4) || in_field(off, SKB_DATA, 8) ||
                 in_field(off, SKB_DATA_META, 4) || sk_fields || in_field(off, SKB_TSTAMP, 8) ||
                 in_field(off, SKB_WIRE_LEN, 4) || in_field(off, SKB_HWTSTAMP, 8);
        break;
    case GKT_CGROUP_SKB:
        hidden = in_field(off, SKB_TC_CLASSID, 4) || in_field(off, SKB_DATA_META, 4) ||
                 in_field(off, SKB_WIRE_LEN, 4) || (!pol->allow_ptr_leaks && in_field(off, SKB_DATA, 8));
        break;
    case GKT_LWT:
        hidden = in_field(off, SKB_TC_CLASSID, 4) || sk_fields || in_field(off, SKB_DATA_META, 4) ||
                 in_field(off, SKB_TSTAMP, 8) || in_field(off, SKB_WIRE_LEN, 4) ||
                 in_field(off, SKB_HWTSTAMP, 8);
        break;
    case GKT_SK_SKB:
        hidden = in_field(off, SKB_TC_CLASSID, 4) || in_field(off, SKB_DATA_META, 4) ||
                 in_field(off, SKB_TSTAMP, 8) || in_field(off, SKB_WIRE_LEN, 4) ||
                 in_field(off, SKB_HWTSTAMP, 8) || in_field(off, SKB_MARK, 4);
        break;
    case GKT_SCHED_CLS:
    case GKT_SCHED_ACT:
        hidden = sk_fields;
        if (acc == ACC_READ && off == SKB_TSTAMP_TYPE)
            return size == 1;
        break;
    default:
        return false;
    }
    if (hidden)
        return false;
    if (acc == ACC_WRITE && !skb_writable(kt, off, pol->allow_ptr_leaks))
        return false;
    if (in_field(off, SKB_DATA, 4))
        *ty = T_PACKET;
    else if (in_field(off, SKB_DATA_END, 4))
        *ty = T_PACKET_END;
    else if (in_field(off, SKB_DATA_META, 4))
        *ty = T_PACKET_META;
    else if (in_field(off, SKB_SK, 8))
        *ty = T_SOCK_COMMON_OR_NULL;         /* the skb's socket, if any (sock.c) */
    return skb_common(off, size, acc, sext);
}

/* struct xdp_md: six u32 fields, read whole; never written (the kernel
 * allows a write only for offloaded programs). */
static bool xdp_access(const struct gver_policy *pol, int64_t off, unsigned size, enum acc acc,
                       bool sext, uint8_t *ty)
{
    *ty = T_SCALAR;
    if (off == 20 && pol->kctx_attach != GVER_KATTACH_XDP_DEVMAP)
        return false;                       /* egress_ifindex */
    if (acc != ACC_READ || off < 0 || off >= 24 || off % size || size != 4)
        return false;
    if (off <= 8) {
        if (sext)
            return false;
        *ty = off == 0 ? T_PACKET : off == 4 ? T_PACKET_END : T_PACKET_META;
    }
    return true;
}

/* struct sk_msg_md: read-only; data, data_end and sk are 8-byte pointers. */
static bool sk_msg_access(int64_t off, unsigned size, enum acc acc, bool sext, uint8_t *ty)
{
    *ty = T_SCALAR;
    if (acc != ACC_READ || off < 0 || off % size)
        return false;
    if (off == 0 || off == 8) {
        *ty = off == 0 ? T_PACKET : T_PACKET_END;
        return size == 8 && !sext;
    }
    if (off == 72) {
        *ty = T_SOCK;                       /* sk */
        return size == 8 && !sext;
    }
    return off >= 16 && off < 72 && size == 4;
}

/* struct bpf_sk_lookup: read-only; sk is an 8-byte pointer, the u32
 * fields read narrow, remote_port (u16) also as a u32, its padding too. */
static bool sk_lookup_access(int64_t off, unsigned size, enum acc acc, bool sext, uint8_t *ty)
{
    if (off < 0 || off >= 72 || off % size || acc != ACC_READ)
        return false;
    if (off < 8) {
        *ty = T_SOCK_OR_NULL;                /* sk: the socket selected so far */
        return size == 8 && !sext;
    }
    if (in_field(off, 36, 2))
        return size == 4 || size <= 2;       /* remote_port */
    if (in_field(off, 38, 2))
        return size <= 2;                    /* its zero padding */
    if (in_field(off, 8, 28) || in_field(off, 40, 28))
        return size <= 4;
    return false;
}

/* struct bpf_sock_addr: the address fields of the hook's family (and
 * msg_src_* of sendmsg) read narrow or as 8-byte halves of the IPv6
 * arrays and written whole; family, type, protocol read-only; sk an
 * 8-byte pointer. */
static bool sock_addr_access(const struct gver_policy *pol, int64_t off, unsigned size, enum acc acc,
                             uint8_t *ty)
{
    uint32_t at = pol->kctx_attach;
    if (off < 0 || off >= 72 || off % size)
        return false;
    bool ip4 = in_field(off, 4, 4), ip6 = in_field(off, 8, 16), src4 = in_field(off, 40, 4),
         src6 = in_field(off, 44, 16);
    if ((ip4 && !(at & GVER_KATTACH_SA_IP4)) || (ip6 && !(at & GVER_KATTACH_SA_IP6)) ||
        (src4 && at != (GVER_KATTACH_SA_IP4 | GVER_KATTACH_SA_SENDMSG)) ||
        (src6 && at != (GVER_KATTACH_SA_IP6 | GVER_KATTACH_SA_SENDMSG)))
        return false;
    if (ip4 || ip6 || src4 || src6 || in_field(off, 24, 4)) {
        bool wide = size == 8 && off % 8 == 0 &&
                    ((off >= 8 && off + 8 <= 24) || (off >= 44 && off + 8 <= 60));
        if (wide)
            return true;
        return acc == ACC_READ ? size <= 4 : size == 4;
    }
    if (off == 64) {
        *ty = T_SOCK;                            /* sk */
        return acc == ACC_READ && size == 8;
    }
    if (off == 0 || off == 28 || off == 32 || off == 36)
        return acc == ACC_READ && size == 4;     /* user_family, family, type, protocol */
    return false;
}

/* The 8-byte pointer fields of the other types (__bpf_md_ptr): loaded
 * whole or not at all; the rest of those contexts stays readable bytes. */
struct ptr_field {
    int ktype;
    int32_t off;
    uint8_t ty;
};
static const struct ptr_field ptr_fields[] = {
    { GKT_CGROUP_SOCKOPT, 0, T_SOCK },          /* sk */
    { GKT_CGROUP_SOCKOPT, 8, T_PACKET },        /* optval */
    { GKT_CGROUP_SOCKOPT, 16, T_PACKET_END },   /* optval_end */
    { GKT_SOCK_OPS, 184, T_SOCK_OR_NULL },      /* sk */
    { GKT_SOCK_OPS, 192, T_PACKET },            /* skb_data */
    { GKT_SOCK_OPS, 200, T_PACKET_END },        /* skb_data_end */
    { GKT_SOCK_OPS, 216, T_SCALAR },            /* skb_hwtstamp (u64) */
    { GKT_SK_REUSEPORT, 0, T_PACKET },          /* data */
    { GKT_SK_REUSEPORT, 8, T_PACKET_END },      /* data_end */
    { GKT_SK_REUSEPORT, 40, T_SOCK },           /* sk */
    { GKT_SK_REUSEPORT, 48, T_SOCK_COMMON_OR_NULL },   /* migrating_sk */
    { GKT_NETFILTER, 0, T_SCALAR },             /* state */
    { GKT_NETFILTER, 8, T_SCALAR },             /* skb */
};

/* 1: decided (*ok), 0: not a pointer field */
static int ptr_field_access(int kt, int64_t off, unsigned size, enum acc acc, bool sext, uint8_t *ty,
                            bool *ok)
{
    for (size_t i = 0; i < sizeof(ptr_fields) / sizeof(ptr_fields[0]); i++) {
        const struct ptr_field *f = &ptr_fields[i];
        if (f->ktype != kt || off + size <= f->off || off >= f->off + 8)
            continue;
        *ty = f->ty;
        *ok = acc == ACC_READ && off == f->off && size == 8 && !sext;
        return 1;
    }
    return 0;
}

bool kctx_pkt_writable(const struct gver_policy *pol)
{
    switch (pol->kctx) {
    case GKT_SCHED_CLS: case GKT_SCHED_ACT: case GKT_XDP: case GKT_SK_SKB: case GKT_SK_MSG:
    case GKT_CGROUP_SOCKOPT:
        return true;
    case GKT_LWT:
        return pol->kctx_attach == GVER_KATTACH_LWT_XMIT;
    default:
        return false;
    }
}

int kctx_check(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
               enum acc acc, bool sext, uint8_t *ty)
{
    const struct gver_policy *pol = e->pol;
    *ty = T_SCALAR;
    if (acc == ACC_RMW)
        return reject(e, "BPF_ATOMIC stores into R%d ctx is not allowed", regno);
    /* the kernel rewrites each access by its field: the pointer must be
     * the context itself */
    if (p->off < 0)
        return reject(e, "negative offset ctx ptr R%d off=%d disallowed", regno, p->off);
    if (p->off)
        return reject(e, "dereference of modified ctx ptr R%d off=%d disallowed", regno, p->off);
    if (!scalar_is_const(&p->v) || p->v.t.value) {
        char b[80];
        tnum_str(b, sizeof(b), p->v.t);
        return reject(e, "variable ctx access var_off=%s disallowed", b);
    }
    int64_t off = insn_off;
    bool ok, decided = true;
    int kt = pol->kctx;
    if (kt == GKT_XDP)
        ok = xdp_access(pol, off, size, acc, sext, ty);
    else if (kt == GKT_SK_MSG)
        ok = sk_msg_access(off, size, acc, sext, ty);
    else if (kt == GKT_SOCKET_FILTER || pkt_type(kt))
        ok = skb_access(pol, off, size, acc, sext, ty);
    else if (kt == GKT_SK_LOOKUP)
        ok = sk_lookup_access(off, size, acc, sext, ty);
    else if (kt == GKT_CGROUP_SOCK_ADDR)
        ok = sock_addr_access(pol, off, size, acc, ty);
    else
        decided = ptr_field_access(kt, off, size, acc, sext, ty, &ok) == 1;
    if (!decided)
        return 1;                           /* the layout's fields decide */
    if (!ok)
        return reject(e, "invalid bpf_context access off=%" PRId64 " size=%u", off, size);
    return 0;
}

/* Where the section's attach point changes the rules. */
static uint32_t attach_of(int ktype, const char *section)
{
    const char *s = section ? section : "";
    if (s[0] == '?')
        s++;
    if (ktype == GKT_LWT) {
        /* libbpf's "lwt_in", ..., or "lwt/in" (graft verify --prog-type lwt:in) */
        const char *k = !strncmp(s, "lwt_", 4) || !strncmp(s, "lwt/", 4) ? s + 4 : s;
        if (!strncmp(k, "in", 2) && (!k[2] || k[2] == '/'))
            return GVER_KATTACH_LWT_IN;
        if (!strncmp(k, "out", 3))
            return GVER_KATTACH_LWT_OUT;
        if (!strncmp(k, "xmit", 4))
            return GVER_KATTACH_LWT_XMIT;
        return GVER_KATTACH_LWT_SEG6;
    }
    if (ktype == GKT_XDP && (strstr(s, "/devmap") || !strncmp(s, "xdp.frags/devmap", 16)))
        return GVER_KATTACH_XDP_DEVMAP;
    if (ktype == GKT_CGROUP_SOCK_ADDR) {
        /* "cgroup/connect4", "cgroup/sendmsg6", ...: the hook's family */
        const char *hook = strrchr(s, '/') ? strrchr(s, '/') + 1 : s;
        size_t n = strlen(hook);
        uint32_t at = n && hook[n - 1] == '4' ? GVER_KATTACH_SA_IP4
                    : n && hook[n - 1] == '6' ? GVER_KATTACH_SA_IP6 : 0;
        if (at && !strncmp(hook, "sendmsg", 7))
            at |= GVER_KATTACH_SA_SENDMSG;
        return at;
    }
    return GVER_KATTACH_NONE;
}

void gver_policy_kernel_ctx(struct gver_policy *p, int ktype, const char *section)
{
    if (!p || ktype == GKT_NONE || ktype == GKT_UNKNOWN)
        return;
    p->kctx = ktype;
    p->kctx_attach = attach_of(ktype, section);
}
