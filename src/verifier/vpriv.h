/*
 * vpriv.h - the verifier's private types: the control-flow pass's results and
 * the abstract machine state (registers, stack slots, frames, references).
 * Not for use outside src/verifier/.
 */
#ifndef GRAFT_VERIFIER_VPRIV_H
#define GRAFT_VERIFIER_VPRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verifier/verifier.h"
#include "verifier/vinternal.h"

/* may_goto (BPF_JMP | BPF_JCOND | BPF_K, src_reg BPF_MAY_GOTO = 0): the
 * kernel's bounded goto. It jumps once a per-run budget of 2^23 executions
 * is spent and otherwise falls through; it reads and writes no register.
 * The verifier explores both ways, so the program is safe whichever the
 * runtime takes, and its cost counts like any conditional jump's. For a
 * kernel program (policy kctx) a loop through its fall-through is cut where
 * a pass repeats (verifier.c, prune_point): the kernel's counter ends it,
 * and the worst case is then unbounded for graft (cost.c); graft's own VM
 * refuses may_goto, so its programs' loops must still be unrolled. */
#define BPF_JCOND 0xe0
static inline bool is_may_goto(const struct bpf_insn *in)
{
    return in->code == (0x05 /* BPF_JMP */ | BPF_JCOND) && in->src_reg == 0;
}

/* LD_ABS / LD_IND: the legacy packet loads of socket filters and tc. */
static inline bool is_ld_pkt(const struct bpf_insn *in)
{
    return (in->code & 0x07) == 0x00 /* BPF_LD */ &&
           ((in->code & 0xe0) == 0x20 /* BPF_ABS */ || (in->code & 0xe0) == 0x40 /* BPF_IND */);
}

/* ---- cfg.c ---- */
#define CFG_PRUNE    0x1   /* states are compared/stored here */
#define CFG_LDIMM_HI 0x2   /* second slot of LD_IMM64 */
#define CFG_SUBPROG  0x4   /* first insn of a function */

struct cfg {
    uint32_t n;
    uint8_t *flags;
    uint8_t *reachable;
    uint16_t *live_in;         /* registers live on entry, bit per register */
    uint16_t *prec_in;         /* registers whose value may matter (see cfg.c) */
    uint8_t *ret_needed;       /* per function: does its r0 value matter */
    uint64_t *slot_need;       /* stack slots whose (scalar) value may matter */
    uint32_t *subprog_of;      /* function index of each insn */
    uint32_t *subprog_start;   /* sorted; [0] = 0 */
    uint32_t n_subprogs;
    int64_t fail_insn;
    char reason[200];
};

int cfg_build(struct cfg *c, const struct bpf_insn *insns, uint32_t n, bool ret_matters,
              bool leaks);
void cfg_free(struct cfg *c);

/* ---- abstract state ---- */
enum rtype {
    T_NOT_INIT = 0,
    T_SCALAR,
    T_CTX,
    T_STACK,                   /* frame pointer of frame `frameno` + off + var */
    T_MAP_VALUE,
    T_MAP_VALUE_OR_NULL,
    T_MAP_KEY,                 /* for_each_map_elem callback key (read-only) */
    T_MEM,                     /* helper memory (ring buffer sample) of mem_size */
    T_MEM_OR_NULL,
    T_CONST_MAP,
    T_FUNC,
    T_HOST,                    /* host pointer from the context: host_ptrs[map_idx] + off + var */
    T_CONST_MAP_OR_NULL,       /* a map-in-map lookup: an inner map (map_idx >= n_maps) or NULL */
    /* Packet pointers of kernel program types (packet.c): ctx->data,
     * ->data_meta and ->data_end. Copies with the same id share one base
     * (data + the variable offset added when the id was made); `range`
     * bytes from that base are proven inside the packet. */
    T_PACKET,
    T_PACKET_META,
    T_PACKET_END,
    /* Socket pointers of kernel program types (sock.c), read-only through
     * the UAPI views struct bpf_sock / bpf_tcp_sock / bpf_xdp_sock; never
     * moved. ref_id: the acquired socket (sk_lookup_*, a sockmap lookup)
     * the pointer reaches, which must be released once on every path. */
    T_SOCK,                    /* a full socket (struct bpf_sock) */
    T_SOCK_OR_NULL,
    T_SOCK_COMMON,             /* any socket: struct bpf_sock's common fields only */
    T_SOCK_COMMON_OR_NULL,
    T_TCP_SOCK,                /* struct bpf_tcp_sock */
    T_TCP_SOCK_OR_NULL,
    T_XDP_SOCK,                /* struct bpf_xdp_sock (an xskmap entry) */
    T_XDP_SOCK_OR_NULL,
    T_BTF_SOCK,                /* a BTF-typed socket (skc_to_*): passed to helpers, not read */
    T_BTF_SOCK_OR_NULL,
    /* Kernel objects of kernel programs verified offline (kernel_kfuncs.c):
     * a trusted pointer to a kernel structure of kind map_idx (GVER_KOBJ_*)
     * that kfuncs and helpers return; readable at constant offsets within
     * the structure's size, never written. */
    T_BTF,
    T_BTF_OR_NULL,
    /* Never in a register: the state of an open-coded iterator (bpf_iter_*)
     * in the stack slots its _new kfunc initialised, spilled in each of
     * them: map_idx the iterator kind, off the slot's index in it (0 at
     * the pointer), ref_id its reference, mem_size ITER_ACTIVE/DRAINED. */
    T_ITER,
};

#define PKT_AT_END   1             /* this pointer >= data_end */
#define PKT_PAST_END 2             /* this pointer > data_end */

struct reg {
    uint8_t type;              /* enum rtype */
    uint8_t frameno;           /* T_STACK */
    uint8_t rdonly;            /* T_MEM: host variable the policy made read-only */
    uint8_t pkt_end;           /* T_PACKET: PKT_AT_END / PKT_PAST_END proven on this path (packet.c) */
    uint8_t arena;             /* T_SCALAR: a kernel program's arena pointer (addr_space_cast to
                                * address space 0): the kernel lets loads and stores through it
                                * reach anything, faults caught (kernel_kfuncs.c) */
    int32_t off;               /* pointers: fixed offset */
    struct scalar v;           /* scalar value, or a pointer's variable offset */
    uint32_t map_idx;          /* map pointers and values */
    uint32_t mem_size;         /* T_MEM */
    uint32_t id;               /* *_OR_NULL: copies share it (null checks) */
    uint32_t ref_id;           /* acquired resource this pointer refers to */
    int32_t func;              /* T_FUNC: first insn */
    uint32_t range;            /* T_PACKET, T_PACKET_META: bytes from the base proven readable */
};

enum slot_kind { S_INVALID = 0, S_MISC, S_ZERO, S_SPILL };

/* 8 bytes of stack; slot s covers fp-8*(s+1) .. fp-8*s-1 */
struct slot {
    uint8_t kind[8];           /* per byte, kind[0] = lowest address */
    struct reg spill;          /* when all 8 bytes are S_SPILL */
};

struct frame {
    struct reg regs[BPF_NREGS];
    int32_t callsite;          /* call insn in the caller, -1 for the main program */
    uint32_t frameno;
    uint32_t depth;            /* bytes of stack touched (multiple of 8) */
    bool is_callback;
    uint32_t cb_helper;        /* helper that calls this callback */
    struct reg cb_args[5];     /* r1-r5 at callback entry, for re-entry */
    uint32_t cb_nrefs;         /* references held when the callback was entered */
    uint32_t instance;         /* unique per call: which run of the function */
    uint32_t may_goto_passes;  /* may_goto fall-throughs taken in this instance */
    uint32_t nslots;
    uint32_t slots_cap;        /* slots allocated (a recycled frame keeps its array) */
    struct slot *slots;
};

struct ref {
    uint32_t id;
    int32_t insn;
};

#define MAX_REFS 16

struct sstate;

/* Cost levels (see the cost section of verifier.c): level 0 is the
 * program, level k >= 1 the k-th callback iteration on the call stack. Each
 * level has its own clock: the instructions it ran, plus for every callback
 * loop it completed, the loop's iterations times the worst iteration. */
struct cost_level {
    uint64_t clk;              /* instructions charged to this level so far */
    uint32_t iter;             /* id of this iteration (level >= 1) */
    uint32_t loop;             /* id of the helper call running it (kept across iterations) */
    uint32_t site;             /* the helper call insn */
    uint64_t n;                /* most iterations that call can make */
    struct sstate *entry;      /* state stored at the loop's first entry */
    uint32_t pend_base;        /* pending states below this were queued before the loop */
};

struct vstate {
    struct frame *fr[BPF_MAX_CALL_DEPTH];
    uint32_t nfr;
    struct ref refs[MAX_REFS];
    uint32_t nrefs;
    uint32_t lock_map;         /* held spin lock: map index + 1 (0 none) */
    int32_t lock_off;
    uint32_t lock_id;          /* the locked element: its map value pointer's id */
    uint32_t insn;             /* next instruction */
    bool cb_entering;          /* at a callback's first insn, just called by its helper */
    /* a path the CPU can only take speculatively (speculation.c): a
     * branch side the program cannot take, or a pointer offset masked to 0 */
    bool speculative;
    uint32_t spec_len;         /* instructions run since the first misprediction */
    uint32_t nlvl;             /* cost levels: 1 + callback frames */
    struct cost_level lvl[BPF_MAX_CALL_DEPTH];
    uint32_t trace_len;        /* log: length of the path trace */
    struct sstate *parent;     /* last stored state on this path */
};

/* A state kept at a prune point. */
struct sstate {
    struct vstate st;
    struct sstate *next;       /* same insn */
    struct sstate *parent;
    uint32_t branches;         /* paths from here still being explored */
    /* rem[k]: the most instructions level k's clock may still gain from
     * here until level k ends (its iteration returns; level 0: the program
     * exits), over every path explored from here */
    uint64_t rem[BPF_MAX_CALL_DEPTH];
    bool cb_entry;             /* callback entry: may prune while in progress */
};

/* ---- state.c ---- */
const char *reg_type_name(uint8_t t);
struct frame *frame_new(uint32_t frameno, int32_t callsite);
void frame_free(struct frame *f);
/* Frees the frames and states state.c keeps for reuse (gver_verify, when
 * it returns). */
void state_pool_drain(void);
struct slot *frame_slot(struct frame *f, uint32_t s, bool grow);
struct vstate *state_copy(const struct vstate *src);
int state_copy_into(struct vstate *dst, const struct vstate *src);
void state_release(struct vstate *s);   /* frees the frames, not s */
void state_free(struct vstate *s);
int reg_str(char *buf, size_t len, const struct reg *r);
char *state_str(const struct vstate *st);   /* malloc'd */
/* exact: scalars that matter must be equal, not just covered (the Spectre
 * rules' limits depend on them) */
bool states_cover(const struct vstate *old, const struct vstate *cur,
                  const struct cfg *cfg, bool exact);

/* ---- sock_helpers.c: the kernel's socket helpers (kernel_helpers.c) ---- */
const struct ghelper_proto *sock_helper_proto(uint32_t id);
void sock_helpers_mask(uint64_t *allowed);       /* every socket helper's bit */
/* ktype's socket helpers into its root and unprivileged sets */
void sock_helpers_add(int ktype, uint64_t *root, uint64_t *user);

#endif
