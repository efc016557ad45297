/*
 * packet.c - direct packet access of kernel program types (xdp, tc,
 * cgroup_skb, lwt, sk_skb, sk_msg, ...): packet pointers, the ranges that
 * comparisons with data_end prove, accesses within them, and the helpers
 * that move the packet and so invalidate every packet pointer.
 *
 * The model. A load of ctx->data gives a T_PACKET pointer, ->data_meta a
 * T_PACKET_META one, ->data_end T_PACKET_END. Every packet pointer has a
 * base, shared by all registers of the same id: data itself (the id
 * e->pkt_base_id, given to every load of the field: the packet does not
 * move until a helper moves it, which invalidates them all), or data plus
 * a variable offset (adding a non-constant number makes a new id). A
 * pointer is its base plus its fixed offset `off`. `range` bytes from the
 * base are proven inside the packet: a comparison "base + off <= data_end"
 * (in any of its branch forms and operand orders) proves range = off for
 * every pointer of that id on the branch where it holds ("<": off + 1).
 * For meta pointers, data plays the part of data_end. An access at
 * off + insn_off of size bytes is allowed when it lies in [0, range) and
 * the base's variable offset is not negative.
 */
#include "loader/loader.h"
#include "verifier/env.h"

#define MAX_PACKET_OFF 0xffff    /* the kernel's bound on offsets a range may be proven for */

bool is_pkt(const struct reg *r)
{
    return r->type == T_PACKET || r->type == T_PACKET_META;
}

/* The helpers that may move or resize the packet (the kernel's
 * bpf_helper_changes_pkt_data, 6.12). */
bool helper_changes_pkt_data(uint32_t id)
{
    switch (id) {
    case 9:   /* skb_store_bytes */
    case 10:  /* l3_csum_replace */
    case 11:  /* l4_csum_replace */
    case 12:  /* tail_call */
    case 13:  /* clone_redirect */
    case 18:  /* skb_vlan_push */
    case 19:  /* skb_vlan_pop */
    case 31:  /* skb_change_proto */
    case 38:  /* skb_change_tail */
    case 39:  /* skb_pull_data */
    case 43:  /* skb_change_head */
    case 44:  /* xdp_adjust_head */
    case 50:  /* skb_adjust_room */
    case 54:  /* xdp_adjust_meta */
    case 63:  /* msg_pull_data */
    case 65:  /* xdp_adjust_tail */
    case 73:  /* lwt_push_encap */
    case 74:  /* lwt_seg6_store_bytes */
    case 75:  /* lwt_seg6_adjust_srh */
    case 76:  /* lwt_seg6_action */
    case 90:  /* msg_push_data */
    case 91:  /* msg_pop_data */
    case 143: /* store_hdr_opt */
        return true;
    default:
        return false;
    }
}

/* The helpers whose memory arguments may be packet bytes (the kernel's
 * protos with pkt_access, 6.12); the others' code may not expect memory
 * that a packet-changing path can free. */
bool helper_pkt_access(uint32_t id)
{
    switch (id) {
    case 1: case 2: case 3:        /* map lookup, update, delete */
    case 28:                       /* csum_diff */
    case 84: case 85: case 99:     /* sk_lookup_tcp, sk_lookup_udp, skc_lookup_tcp */
    case 87:                       /* map_push_elem */
    case 100: case 110:            /* tcp_check_syncookie, tcp_gen_syncookie */
    case 195:                      /* map_lookup_percpu_elem */
    case 204: case 205: case 206: case 207:   /* tcp_raw_{gen,check}_syncookie_ipv{4,6} */
        return true;
    default:
        return false;
    }
}

/* The packet moved: no packet pointer may be used again. With the leak
 * right (the kernel's root rules) they become unknown numbers, as in the
 * kernel; otherwise they become unreadable (a number holding an address
 * could be stored where the host reads it). */
void pkt_invalidate(struct env *e)
{
    struct vstate *st = e->cur;
    bool leak = e->pol->allow_ptr_leaks;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (int r = 0; r < BPF_NREGS; r++) {
            struct reg *g = &f->regs[r];
            if (g->type == T_PACKET || g->type == T_PACKET_META || g->type == T_PACKET_END) {
                if (leak)
                    mark_unknown(g);
                else
                    mark_not_init(g);
            }
        }
        for (uint32_t s = 0; s < f->nslots; s++) {
            struct slot *sl = &f->slots[s];
            struct reg *g = &sl->spill;
            if (sl->kind[0] != S_SPILL ||
                (g->type != T_PACKET && g->type != T_PACKET_META && g->type != T_PACKET_END))
                continue;
            memset(sl->kind, spill_remains(e, g), 8);
            mark_unknown(g);
        }
    }
}

/* Load or store of size bytes at p + insn_off. */
int check_pkt_access(struct env *e, int regno, const struct reg *p, int64_t insn_off, unsigned size,
                     enum acc acc)
{
    if (p->type == T_PACKET_END)
        return reject(e, "R%d invalid access to packet end (data_end): it points past the packet", regno);
    if (acc == ACC_RMW)
        return reject(e, "BPF_ATOMIC stores into R%d pkt is not allowed", regno);
    if (acc == ACC_WRITE && !kctx_pkt_writable(e->pol))
        return reject(e, "cannot write into packet");
    if (p->v.smin < 0)
        return reject(e, "R%d min value is negative, either use unsigned index or do a if (index >=0) check.",
                      regno);
    int64_t off = (int64_t)p->off + insn_off;
    if (off < 0 || off + size > (int64_t)p->range) {
        return reject(e, "R%d invalid access to packet, off=%" PRId64 " size=%u, R%d(id=%u,off=%d,r=%u): "
                      "offset is outside of the packet (compare the pointer with data_end first)",
                      regno, off, size, regno, p->id, p->off, p->range);
    }
    return 0;
}

/* Every pointer of p's type and id on this state learns the range. */
static void set_range(struct vstate *st, const struct reg *p, bool strict)
{
    /* "base + off < end" proves off + 1 bytes, "<=" off; off 0 with "<"
     * gives nothing, as in the kernel */
    if (p->off < 0 || (p->off == 0 && strict))
        return;
    if (p->v.umax > MAX_PACKET_OFF || p->v.umax + (uint64_t)p->off > MAX_PACKET_OFF)
        return;            /* base + off might wrap: the comparison says nothing */
    uint32_t range = (uint32_t)p->off + (strict ? 1 : 0);
    uint8_t type = p->type;
    uint32_t id = p->id;
    for (uint32_t fi = 0; fi < st->nfr; fi++) {
        struct frame *f = st->fr[fi];
        for (int r = 0; r < BPF_NREGS; r++)
            if (f->regs[r].type == type && f->regs[r].id == id && f->regs[r].range < range)
                f->regs[r].range = range;
        for (uint32_t s = 0; s < f->nslots; s++) {
            struct slot *sl = &f->slots[s];
            if (sl->kind[0] == S_SPILL && sl->spill.type == type && sl->spill.id == id &&
                sl->spill.range < range)
                sl->spill.range = range;
        }
    }
}

/* data itself: what a meta pointer is compared with */
static bool is_data_start(const struct env *e, const struct reg *r)
{
    return r->type == T_PACKET && r->id == e->pkt_base_id && r->off == 0 && scalar_is_const(&r->v) &&
           r->v.t.value == 0;
}

/* Is (a, b) a pointer and the end it is compared with? */
static bool ptr_vs_end(const struct env *e, const struct reg *a, const struct reg *b)
{
    return (a->type == T_PACKET && b->type == T_PACKET_END) ||
           (a->type == T_PACKET_META && is_data_start(e, b));
}

/* A comparison of a packet pointer with the end (data_end, or data for a
 * meta pointer): fork and set the ranges each side proves. Returns -1 when
 * the comparison is not one of those (the caller's rules apply). */
int pkt_cond_jmp(struct env *e, const struct bpf_insn *in, uint32_t idx)
{
    if (BPF_SRC(in->code) != BPF_X || BPF_CLASS(in->code) != BPF_JMP)
        return -1;
    uint8_t op = BPF_OP(in->code);
    if (op != BPF_JGT && op != BPF_JGE && op != BPF_JLT && op != BPF_JLE)
        return -1;
    const struct reg *d = &regs(e)[in->dst_reg], *s = &regs(e)[in->src_reg];
    int preg;
    bool ptr_left;
    if (ptr_vs_end(e, d, s)) {
        preg = in->dst_reg;
        ptr_left = true;
    } else if (ptr_vs_end(e, s, d)) {
        preg = in->src_reg;
        ptr_left = false;
    } else {
        return -1;
    }
    /* Normalise to "ptr OP end": swapping the operands mirrors the op. */
    if (!ptr_left)
        op = op == BPF_JGT ? BPF_JLT : op == BPF_JLT ? BPF_JGT : op == BPF_JGE ? BPF_JLE : BPF_JGE;
    uint32_t target = (uint32_t)((int64_t)idx + 1 + in->off);
    /* Already known on this path (the pointer was found at or past the
     * end and not moved back since): only one side can run. */
    const struct reg *pr = &regs(e)[preg];
    if (pr->pkt_end && pr->type == T_PACKET) {
        int taken = -1;
        if (pr->pkt_end == PKT_PAST_END && (op == BPF_JGT || op == BPF_JLE))
            taken = op == BPF_JGT;
        else if (op == BPF_JGE || op == BPF_JLT)
            taken = op == BPF_JGE;
        if (taken >= 0) {
            int rc = spec_push_branch(e, in, taken ? idx + 1 : target);
            if (rc)
                return rc;
            e->cur->insn = taken ? target : idx + 1;
            return 0;
        }
    }
    /* Where does "ptr <= end" (range off) or "ptr < end" (off + 1) hold?
     *   ptr >  end: fall-through has ptr <= end
     *   ptr >= end: fall-through has ptr <  end
     *   ptr <  end: jump has ptr < end
     *   ptr <= end: jump has ptr <= end */
    bool on_jump = op == BPF_JLT || op == BPF_JLE;
    bool strict = op == BPF_JGE || op == BPF_JLT;
    struct vstate *other = state_copy(e->cur);
    if (!other)
        return -ENOMEM;
    struct vstate *proved = on_jump ? other : e->cur, *beyond = on_jump ? e->cur : other;
    const struct reg *p = &proved->fr[proved->nfr - 1]->regs[preg];
    struct reg pc = *p;
    set_range(proved, &pc, strict);
    /* the other side has ptr > end (the proved side had <=) or ptr >= end:
     * remembered on the register, for a later comparison of the same */
    struct reg *b = &beyond->fr[beyond->nfr - 1]->regs[preg];
    if (b->type == T_PACKET) {
        b->pkt_end = strict ? PKT_AT_END : PKT_PAST_END;
        b->range = 0;
    }
    return branch_fork(e, other, target, idx);
}
