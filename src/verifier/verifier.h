/*
 * verifier.h - the static verifier: prove at load time that an eBPF program
 * is safe, so that an accepted program runs with no run-time checks.
 *
 * What an accepted program is guaranteed to do, for every input:
 *  - control flow stays inside the program: no jumps out of range or into the
 *    second slot of LD_IMM64, no unreachable code, every path ends in exit,
 *    calls resolve, at most BPF_MAX_CALL_DEPTH frames;
 *  - it terminates: loops are accepted only when exploring them with precise
 *    bounds reaches their exit, or when a helper (bpf_loop) bounds them; a
 *    budget of explored instructions (policy->max_states) rejects the rest;
 *  - it runs at most max_path_insns instructions per invocation (callback
 *    loops counted at their most iterations), and that bound is within
 *    policy->insn_budget (GVER_DEFAULT_INSN_BUDGET when 0);
 *  - every load and store is in bounds for its pointer's type and size, reads
 *    only initialised stack and registers, and respects the context layout;
 *  - helpers and kfuncs are called with arguments of the right kinds (and
 *    kfunc scalar and size arguments within their declared ranges);
 *  - host memory behind a restricted pointer argument (policy->host_ptrs)
 *    is reached only through the probe_read / probe_write_user helpers, at
 *    constant offsets, within the fields granted;
 *  - resources (ring buffer samples, spin locks; a kernel program's socket
 *    references) are released on every path;
 *  - a map value's spin lock word, where the value's BTF puts it
 *    (gver_input.map_lock_offs), is reached only by bpf_spin_lock/unlock;
 *  - pointers do not leak to the host (maps, context, r0) unless the policy
 *    says they may.
 *
 * The policy says what one program may reach; it is built per program (the
 * EIM layer builds one from its configuration; gver_policy_raw() and
 * gver_policy_for_prog_type() give the usual ones, observe-only until
 * gver_policy_grant() adds rights; runtime/load.h decides for graft's own
 * paths).
 */
#ifndef GRAFT_VERIFIER_VERIFIER_H
#define GRAFT_VERIFIER_VERIFIER_H

#include <stdint.h>

#include "helpers/helpers.h"
#include "maps/maps.h"
#include "util/err.h"
#include "vm/isa.h"
#include "vm/vm.h"

/* Context field access rights. */
#define GVER_R 0x1u
#define GVER_W 0x2u

/* A field of the context: [off, off+size). An access must fall inside one
 * field and have the field's rights; bytes outside every field are closed. */
struct gver_ctx_field {
    uint32_t off, size;
    uint32_t access;           /* GVER_R | GVER_W */
};

struct gver_ctx_layout {
    const char *name;          /* for messages: "pt_regs", "raw", ... */
    uint32_t size;             /* bytes */
    const struct gver_ctx_field *fields;
    uint32_t n_fields;
};

/* Built-in layouts (static, never freed). */
extern const struct gver_ctx_layout gver_ctx_pt_regs;     /* 168 bytes, read-only, 21 u64 fields */
extern const struct gver_ctx_layout gver_ctx_sys_enter;   /* 64: common(8) id(8) args[6] */
extern const struct gver_ctx_layout gver_ctx_sys_exit;    /* 24: common(8) id(8) ret(8) */
extern const struct gver_ctx_layout gver_ctx_raw_tp;      /* 96: u64 args[12], read-only */

/* A host function the program may call with CALL src_reg=BPF_PSEUDO_KFUNC_CALL,
 * imm = id. Scalar arguments carry a pre-condition the verifier must prove
 * from the argument's bounds; the return value gets the post-condition. */
struct gver_kfunc {
    const char *name;
    int32_t id;                /* the imm of the call */
    enum garg_kind args[5];    /* GARG_NONE, GARG_SCALAR, GARG_ANYTHING,
                                * GARG_PTR_TO_MEM (+ GARG_CONST_SIZE next),
                                * GARG_PTR_TO_CTX */
    int64_t arg_min[5];        /* GARG_SCALAR: signed range required ... */
    int64_t arg_max[5];        /* ... (min == max == 0 means any value) */
    enum gret_kind ret;        /* GRET_INTEGER or GRET_VOID */
    int64_t ret_min, ret_max;  /* post-condition on r0 (both 0: any value) */
};

/* A host variable the program may address with LD_IMM64 src_reg =
 * BPF_PSEUDO_BTF_ID, imm = id (the loader's __ksym globals): memory of size
 * bytes, readable, and writable with GVER_W. */
struct gver_ksym {
    const char *name;
    int32_t id;
    uint32_t size;
    uint32_t access;           /* GVER_R | GVER_W */
};

/* A host structure the program reaches through a pointer held in the
 * context (an entry argument whose struct fields the policy restricts).
 * An 8-byte load of the context slot at ctx_off yields a "host pointer"
 * register: it may be moved, spilled to the stack, compared and offset by
 * constants, and used only as the source of the probe_read helpers or the
 * destination of probe_write_user, whose bytes [off, off+size) must lie in
 * fields granted GVER_R (reads) or GVER_W (writes). Anything else done with
 * it (other helpers, kfuncs, stores to maps, returns, unknown offsets) is
 * rejected. With any host_ptrs in a policy, those helpers accept no other
 * address (a number could be a forged pointer), the slot cannot be
 * written, and trace_printk / snprintf (which read memory behind %s) are
 * refused. */
struct gver_host_field {
    const char *name;
    uint32_t off, size;
    uint32_t access;           /* GVER_R | GVER_W; 0: closed */
};

struct gver_host_ptr {
    uint32_t ctx_off;          /* the 8-byte context slot holding the pointer */
    const char *name;          /* for messages: "argument 'r' (struct request)" */
    uint32_t size;             /* bytes of the structure */
    const struct gver_host_field *fields;
    uint32_t n_fields;
};

/* The instruction budget of a policy that sets none: every accepted program
 * has a proven worst-case instruction count per run at most this. */
#define GVER_DEFAULT_INSN_BUDGET 1000000ull

/* The helpers a kernel program type may call (kernel_helpers.c): bit id%64
 * of word id/64. */
struct gver_helper_set {
    const char *type_name;     /* "xdp", "socket_filter", ... */
    uint64_t allowed[BPF_MAX_HELPER_ID / 64];
};

struct gver_policy {
    const struct gver_ctx_layout *ctx;   /* NULL: the program gets no context */
    /* Helper ids the program may call (bit id%64 of word id/64). */
    uint64_t helpers_allowed[BPF_MAX_HELPER_ID / 64];
    /* Where prototypes come from; NULL means ghelper_proto(). */
    const struct ghelper_proto *(*helper_proto)(uint32_t id);
    const struct gver_kfunc *kfuncs;
    uint32_t n_kfuncs;
    const struct gver_ksym *ksyms;
    uint32_t n_ksyms;
    uint64_t max_states;       /* instructions explored before giving up; 0 = 1,000,000 */
    uint64_t insn_budget;      /* max instructions per run; 0 = GVER_DEFAULT_INSN_BUDGET */
    uint64_t mem_budget;       /* max bytes of map memory referenced; 0 = unlimited */
    const struct gver_host_ptr *host_ptrs;   /* see struct gver_host_ptr */
    uint32_t n_host_ptrs;
    int allow_ptr_leaks;       /* may store pointers to maps/ctx and return them */
    /* LD_ABS / LD_IND (legacy packet loads through the skb in r6; out of
     * bounds they end the program with r0 = 0): kernel skb program types
     * only; graft's VM does not run them. */
    int ld_pkt;
    /* The kernel's root rule: a read of stack bytes never written gives an
     * unknown value. Only for offline verdicts (graft verify --privileged):
     * in graft's runtime it would hand the program the host's stack
     * contents. */
    int allow_uninit_stack;
    /* The kernel's root rule for speculative execution: skip the Spectre
     * v1 rules (speculation.c) an unprivileged program is held to. Only
     * for offline verdicts (graft verify --privileged): graft runs its
     * programs in the host's address space, where a speculative
     * out-of-bounds read is a leak. */
    int spec_bypass;
    /* A kernel program type's context (enum gprog_ktype; 0: none), for
     * offline verdicts of kernel programs (graft never runs them): the
     * kernel's per-field rules for that type replace ctx's fields (which
     * fields each type may read or write, at which sizes), loads of the
     * packet fields give packet pointers (readable only within a range a
     * comparison with data_end proved), the context pointer may not be
     * moved, and helpers that change the packet invalidate every packet
     * pointer. The socket fields (skb->sk, ...) and socket helpers give
     * socket pointers read through the kernel's bpf_sock / bpf_tcp_sock /
     * bpf_xdp_sock views, and a looked-up socket is a reference released
     * once on every path (sock.c). Set by gver_policy_kernel_ctx().
     * Fields the kernel opens only to CAP_BPF loaders need allow_ptr_leaks
     * (the kernel's root rules, graft verify --privileged). */
    int kctx;
    uint32_t kctx_attach;      /* GVER_KATTACH_*: the attach point, where it changes the rules */
    /* r0 at exit of the main program must be within [ret_min, ret_max]
     * (both 0: any scalar, unless ret_checked says [0, 0] is meant). */
    int64_t ret_min, ret_max;
    int ret_checked;
    /* With override_range set, the value passed to bpf_override_return
     * (R2, what the hooked function will return) must be proven within
     * [override_min, override_max] at every call. */
    int override_range;
    int64_t override_min, override_max;
    /* A kernel program type's helper set (gver_policy_kernel_helpers): a
     * helper outside it is refused as the kernel refuses it, "unknown
     * func", whatever else the policy allows. NULL: no such limit. */
    const struct gver_helper_set *kernel_helpers;
    /* Set when the kernel refuses the program's attach point before
     * verifying it (a disabled LSM hook): the program is rejected with
     * this reason. */
    const char *kernel_refused;
    /* Kernel kfuncs (kernel programs verified offline, --privileged; graft
     * never calls one): kernel_kfuncs[imm] is the kernel's kfunc a call
     * with that imm (the loader's extern index) names, or NULL; see
     * gver_kernel_kfunc_find(). Calls to them are checked against the
     * kernel's prototypes and rules, including their availability to the
     * program type (kctx). kobj_size[k] is the size of the kernel
     * structure of kind k (GVER_KOBJ_*) where the object's BTF gives it
     * (0: unknown, and its fields cannot be read). */
    const struct gver_kernel_kfunc *const *kernel_kfuncs;
    uint32_t n_kernel_kfuncs;
    uint32_t kobj_size[8];
    /* Kernel programs from an object file: the loader turned every
     * relocated map load into MAP_IDX / MAP_IDX_VALUE, so a MAP_FD or
     * MAP_VALUE load is a raw file descriptor no map stands behind (the
     * kernel refuses it) instead of a map index. */
    int map_fds_unbound;
    /* A kernel program that may sleep (syscall, lsm.s/, fentry.s/, ...):
     * it may call sleepable kfuncs (gver_policy_kernel_ret sets it). */
    int ksleepable;
    /* bpf_probe_read_kernel[_str] (113, 115) where the policy does not
     * allow them (graft compat: no kernel memory in userspace) are still
     * accepted at a call whose source R3 is the program's own memory - its
     * stack (initialised bytes), a map value, a ring buffer sample or task
     * image - with [R3, R3 + R2) proven inside it, on every path (BCC
     * copies its own map values this way). Such a copy reads nothing of the
     * host; the caller runs those calls (gver_result.own_copies) as
     * bpf_probe_read[_str]. Any other source is refused as before. */
    int kernel_reads_own_mem;
    /* The kernel's strict alignment (BPF_F_STRICT_ALIGNMENT, graft verify
     * --strict-alignment): every load and store of more than one byte is
     * aligned to its size at each offset its pointer may have, a packet's
     * data counted from NET_IP_ALIGN (2). Stack accesses of kernel
     * programs (kctx) are held to it whatever this says, as the kernel
     * holds them. graft's own programs run on x86-64, where unaligned
     * accesses are fine, and keep the lenient default. */
    int strict_align;
};

/* Kernel object kinds that kernel kfuncs take and return (kernel_kfuncs.c). */
#define GVER_KOBJ_TASK        1   /* struct task_struct */
#define GVER_KOBJ_CGROUP      2   /* struct cgroup */
#define GVER_KOBJ_BPF_CPUMASK 3   /* struct bpf_cpumask */
#define GVER_KOBJ_CPUMASK     4   /* struct cpumask */
#define GVER_KOBJ_FILE        5   /* struct file */
#define GVER_KOBJ_KERN_CTX    6   /* the kernel's structure behind a context (sk_buff, ...) */
#define GVER_KOBJ_MAX         7
/* The kernel structure's name of kind k ("task_struct"), or NULL. */
const char *gver_kobj_struct_name(uint32_t k);
/* The kernel kfunc of that name that graft has the prototype and rules
 * of, or NULL. */
const struct gver_kernel_kfunc *gver_kernel_kfunc_find(const char *name);

struct gver_input {
    const struct bpf_insn *insns;
    uint32_t n;
    /* LD_IMM64 MAP_IDX/MAP_IDX_VALUE (and MAP_FD/MAP_VALUE, taken as
     * indices too) refer to maps[imm]. */
    const struct gmap_def *maps;
    uint32_t n_maps;
    const struct gver_policy *policy;   /* NULL: gver_policy_raw(0) */
    int log_level;             /* 0 none, 1 path to rejection, 2 every insn */
    /* Where each map's value holds its struct bpf_spin_lock (n_maps entries,
     * from the value's BTF: gobj_map.spin_lock_off): a byte offset, or
     * GVER_LOCK_NONE, or GVER_LOCK_UNKNOWN (no BTF). NULL: all unknown.
     * A known lock word cannot be loaded, stored, atomically updated or
     * written by a helper (a forged owner would hang the next taker), and
     * bpf_spin_lock/unlock must be given exactly that word; a map whose
     * value has no lock cannot be locked. Unknown keeps the old rule (any
     * aligned word may be a lock); the helper's own bound covers it. */
    const int32_t *map_lock_offs;
    /* Frozen read-only maps (n_maps entries, NULL: none): map_frozen[i] is
     * the value of map i, a one-entry read-only (GMAP_F_RDONLY_PROG) array,
     * when its contents can no longer change (libbpf's BPF_MAP_FREEZE of
     * .rodata; graft load's .rodata), else NULL. A load from such a value at
     * a constant offset gives the constant stored there, as the kernel's
     * bpf_map_direct_read does, so branches on `const volatile` settings
     * are decided and their dead side is not verified. The caller vouches
     * that the bytes the program runs with are these. */
    const void *const *map_frozen;
    /* Record what holds at each instruction on every path for the JIT
     * (gver_result.facts). */
    int record_facts;
    /* The kptr fields of each map's value (n_maps entries, NULL: none),
     * from the value's BTF (pointer members type-tagged "kptr",
     * "kptr_ref", "percpu_kptr"): 8-byte slots where the kernel keeps a
     * kernel object's address. Kernel programs verified offline only. The
     * kernel's rules: a slot is reached only by 8-byte LDX / STX / ST at
     * exactly its offset (no variable offset, no atomics, no helper
     * reading or writing it); a referenced (kptr_ref, percpu_kptr) slot is
     * never stored to (bpf_kptr_xchg moves it); an unreferenced one takes
     * only NULL (ST imm 0, a known 0) or a kernel pointer of its type,
     * which graft's offline model never holds. A load gives a number. */
    const struct gver_map_kptrs *map_kptrs;
};

#define GVER_KPTR_UNREF  1   /* "kptr" (kernel 6.7+: "kptr_untrusted") */
#define GVER_KPTR_REF    2   /* "kptr_ref" (6.7+: "kptr") */
#define GVER_KPTR_PERCPU 3   /* "percpu_kptr" */
#define GVER_MAX_KPTRS   8   /* the kernel 6.1's BPF_MAP_VALUE_OFF_MAX */
struct gver_map_kptrs {
    uint32_t n;
    uint32_t off[GVER_MAX_KPTRS];
    uint8_t kind[GVER_MAX_KPTRS];
};

#define GVER_LOCK_NONE    (-1)
#define GVER_LOCK_UNKNOWN (-2)

struct gver_result {
    int accepted;
    int64_t fail_insn;         /* -1 when accepted or not insn-specific */
    char *log;                 /* malloc'd (free with gver_result_free); NUL-terminated */
    char reason[256];          /* the rule broken, one line ("" when accepted) */
    uint32_t max_stack_depth;  /* combined bytes along the deepest call chain */
    uint64_t states_explored;  /* instructions processed */
    uint64_t states_stored;    /* states kept for pruning */
    uint64_t max_path_insns;   /* proven worst-case instructions per run (loops, callbacks
                                * times their iterations; per program across tail calls) */
    double ms;
    uint64_t policy_tag;       /* accepted: gver_policy_tag() of the policy it was verified under */
    /* accepted: the calls of bpf_probe_read_kernel[_str] proven to copy the
     * program's own memory (policy->kernel_reads_own_mem), ascending insn
     * indexes; malloc'd, freed by gver_result_free */
    uint32_t *own_copies;
    uint32_t n_own_copies;
    /* accepted with record_facts: one per insn (n_facts = n), for
     * gvm_prog_opts.facts; malloc'd, freed by gver_result_free. Only facts
     * the pruning compared are kept (facts.c); with the Spectre rules on
     * (policy spec_bypass 0) only constants, no ranges. */
    struct gvm_insn_fact *facts;
    uint32_t n_facts;
};

/* Verify in->insns. Returns 0 when verification ran (accepted or rejected:
 * see out->accepted, out->reason, out->fail_insn) or a negative errno when it
 * could not run (bad arguments, out of memory), with err filled. A rejection
 * also fills err with "insn N: reason". */
int gver_verify(const struct gver_input *in, struct gver_result *out,
                struct graft_err *err);
void gver_result_free(struct gver_result *res);

/* Rights: what a program may do to its host beyond observing it. The
 * default of every policy built here (and of a NULL policy) is observe-only,
 * like a kernel uprobe without extra privileges: registers and the context
 * read, host memory read through the probe_read helpers, maps and output
 * written. Anything that changes the host needs a right, granted
 * explicitly (gver_policy_grant; the CLI's --allow, an EIM class):
 *   write-user  bpf_probe_write_user (36): write host memory
 *   override    bpf_override_return (58), and the override/ and replace/
 *               sections (the hooked function's result is the program's)
 *   signal      bpf_send_signal (109), bpf_send_signal_thread (117)
 * Host functions and host globals (kfuncs, ksyms) are rights too, granted
 * only by name, with their prototypes, in the policy's kfuncs and ksyms
 * (an EIM class). GVER_RIGHT_READ_HOST is never withheld; it is reported.
 * A struct gver_policy zeroed by hand allows no helper at all. */
#define GVER_RIGHT_WRITE_USER 0x1u
#define GVER_RIGHT_OVERRIDE   0x2u
#define GVER_RIGHT_SIGNAL     0x4u
#define GVER_RIGHTS_HOST_WRITES (GVER_RIGHT_WRITE_USER | GVER_RIGHT_OVERRIDE | GVER_RIGHT_SIGNAL)
#define GVER_RIGHT_READ_HOST  0x100u  /* probe_read*, get_stack: reported only */

/* The right a helper needs (GVER_RIGHT_*), or 0 when observing suffices;
 * GVER_RIGHT_READ_HOST for the helpers that read host memory. */
uint32_t gver_helper_right(uint32_t helper_id);
/* "write-user", "override", "signal", "read-host" (one bit), or NULL. */
const char *gver_right_name(uint32_t right);
/* "write-user,override" -> bits; "all" is every host-changing right. An
 * unknown name is -EINVAL with err naming it and the valid names. */
int gver_rights_parse(const char *list, uint32_t *rights, struct graft_err *err);
/* The helper-carried rights the program's calls use (GVER_RIGHT_* bits,
 * READ_HOST included). *first_insn[k] (when first_insn is not NULL) is the
 * first call needing bit k (index = bit number), -1 when none. */
uint32_t gver_rights_used(const struct bpf_insn *insns, uint32_t n, int64_t first_insn[9]);
/* Let p's program use these rights' helpers (observe-only is the default). */
void gver_policy_grant(struct gver_policy *p, uint32_t rights);

/* Policies. The returned pointers are malloc'd; free with free(). All are
 * observe-only (see "Rights" above) until rights are granted. */
/* Standard helpers, ctx = ctx_size readable bytes (0: no ctx). */
struct gver_policy *gver_policy_raw(uint32_t ctx_size);
/* Per program type (enum gprog_type in loader/loader.h): uprobe/uretprobe/
 * usdt/override -> pt_regs; tracepoint -> sys_enter layout; raw tracepoint ->
 * raw_tp args; socket filter / xdp -> raw 4096 bytes. NULL if unknown. */
struct gver_policy *gver_policy_for_prog_type(int gprog_type);
/* A fingerprint of what p lets a program do (context layout, helpers, host
 * functions and globals, budgets, ranges), equal for equal policies in any
 * process, never 0. A tail call may only go from a program to one verified
 * under a policy of the same tag: a target verified for another context or
 * with other grants would otherwise run on the caller's context. */
uint64_t gver_policy_tag(const struct gver_policy *p);
/* For a kernel program type (enum gprog_ktype in loader/loader.h), to
 * verify kernel programs offline (`graft verify`; graft never runs them):
 * kprobe -> pt_regs, perf_event -> bpf_perf_event_data, raw_tp / tracing /
 * lsm -> u64 args[], the others -> their UAPI context's bytes, read-only.
 * NULL for GKT_NONE. */
struct gver_policy *gver_policy_for_kernel_type(int ktype);
/* The kernel's return-value rule for a kernel program of type ktype in
 * section (its attach type: "cgroup_skb/egress" may return 0-3, a
 * getsockname hook must return 1, fentry 0, ...), set on p; types whose
 * result the kernel does not check are left free. It also sets the type's
 * context rules (gver_policy_kernel_ctx), which depend on the section too. */
void gver_policy_kernel_ret(struct gver_policy *p, int ktype, const char *section);
/* The kernel's rules for an LSM program of hook (SEC("lsm/HOOK"),
 * kernel_lsm.c): its return range, or kernel_refused for a disabled hook. */
void gver_policy_kernel_lsm(struct gver_policy *p, const char *hook);
/* Attach points whose context rules differ (gver_policy.kctx_attach). */
#define GVER_KATTACH_NONE       0
#define GVER_KATTACH_LWT_IN     1   /* lwt_in: packet read-only */
#define GVER_KATTACH_LWT_OUT    2   /* lwt_out: packet read-only */
#define GVER_KATTACH_LWT_XMIT   3   /* lwt_xmit: packet writable */
#define GVER_KATTACH_LWT_SEG6   4   /* lwt_seg6local: packet read-only */
#define GVER_KATTACH_XDP_DEVMAP 5   /* xdp/devmap: egress_ifindex readable */
#define GVER_KATTACH_SA_IP4     0x10  /* cgroup sock_addr hooks of IPv4 (bind4, connect4, ...) */
#define GVER_KATTACH_SA_IP6     0x20  /* ... of IPv6 */
#define GVER_KATTACH_SA_SENDMSG 0x40  /* sendmsg4/6: msg_src_ip* */
/* The kernel's context rules for a kernel program of type ktype in section
 * (see gver_policy.kctx), set on p. gver_policy_kernel_ret() sets them too. */
void gver_policy_kernel_ctx(struct gver_policy *p, int ktype, const char *section);
/* The helper set of kernel program type ktype (enum gprog_ktype), for root
 * or for an unprivileged user (only socket filters and cgroup_skb differ:
 * the others cannot be loaded unprivileged), or NULL for GKT_NONE and
 * GKT_UNKNOWN. Static. */
const struct gver_helper_set *gver_kernel_helper_set(int ktype, int unprivileged);
int gver_helper_set_has(const struct gver_helper_set *s, uint32_t id);
/* Limit p (from gver_policy_for_kernel_type) to ktype's helper set; after
 * gver_policy_grant, which adds helpers whatever the type. */
void gver_policy_kernel_helpers(struct gver_policy *p, int ktype, int unprivileged);
/* Policy editing. */
void gver_policy_allow_helper(struct gver_policy *p, uint32_t id, int allow);
int gver_policy_helper_allowed(const struct gver_policy *p, uint32_t id);

#endif
