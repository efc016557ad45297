/*
 * loader.h - open stock clang-compiled, libbpf-style BPF ELF objects
 * (clang -O2 -g -target bpf) without the kernel: programs by section name,
 * maps (BTF-defined .maps, legacy "maps", global data), linked bpf-to-bpf
 * calls and CO-RE relocations resolved against a target BTF.
 *
 * What comes out is self-contained: every program's instruction array has its
 * subprograms appended, its calls and CO-RE fields patched, and its map
 * references in the form the VM's resolve_ld_imm64 receives:
 *   LD_IMM64 src_reg BPF_PSEUDO_MAP_IDX        imm = index into gobj.maps
 *   LD_IMM64 src_reg BPF_PSEUDO_MAP_IDX_VALUE  imm = map index, next imm = byte offset
 *   LD_IMM64 src_reg BPF_PSEUDO_BTF_ID         imm = index into gobj.externs (__ksym var)
 *   CALL     src_reg BPF_PSEUDO_KFUNC_CALL     imm = index into gobj.externs (__ksym func)
 *   LD_IMM64 src_reg BPF_PSEUDO_FUNC / CALL src_reg BPF_PSEUDO_CALL: pc-relative
 * A CO-RE relocation that matches nothing in the target is "poisoned" like
 * libbpf does: the instruction becomes CALL helper GOBJ_POISON_HELPER, so the
 * program fails to load only if that code is reachable.
 *
 * Section names are documented in docs/sections.md.
 */
#ifndef GRAFT_LOADER_LOADER_H
#define GRAFT_LOADER_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maps/maps.h"
#include "util/err.h"
#include "vm/isa.h"

struct btf;

enum gprog_type {
    GPROG_UNSPEC = 0,
    GPROG_UPROBE,          /* uprobe/BINARY:FUNC[+OFF], uprobe.s/... */
    GPROG_URETPROBE,       /* uretprobe/BINARY:FUNC, uretprobe.s/... */
    GPROG_USDT,            /* usdt/BINARY:PROVIDER:NAME */
    GPROG_TRACEPOINT,      /* tracepoint/CAT/NAME, tp/CAT/NAME */
    GPROG_RAW_TRACEPOINT,  /* raw_tracepoint/NAME, raw_tp/NAME */
    GPROG_OVERRIDE,        /* override/BINARY:FUNC: uprobe that may skip FUNC */
    GPROG_REPLACE,         /* replace/BINARY:FUNC: the program is FUNC */
    GPROG_SOCKET_FILTER,   /* socket */
    GPROG_XDP,             /* xdp */
    GPROG_KERNEL,          /* a kernel program type graft cannot attach (ktype
                            * says which): verified offline, never loaded */
};

/* The kernel program type behind a section name (libbpf's names, and the
 * pre-1.0 ones), for GPROG_KERNEL programs and for `graft verify`'s offline
 * verdicts: it picks the context layout the verifier checks against. */
enum gprog_ktype {
    GKT_NONE = 0,          /* a graft type: see enum gprog_type */
    GKT_KPROBE,            /* kprobe/, kretprobe/, ksyscall/, *.multi: struct pt_regs */
    GKT_TRACEPOINT,        /* tracepoint, tp (bare or a kernel tracepoint): the raw record */
    GKT_RAW_TRACEPOINT,    /* raw_tp, raw_tracepoint (bare), raw_tp.w: u64 args[] */
    GKT_TRACING,           /* fentry, fexit, fmod_ret, tp_btf, iter, freplace: u64 args[] */
    GKT_LSM,               /* lsm/, lsm.s/, lsm_cgroup/: u64 args[] */
    GKT_PERF_EVENT,        /* perf_event: struct bpf_perf_event_data */
    GKT_SOCKET_FILTER,     /* socket/... other than graft's bare "socket": __sk_buff */
    GKT_SCHED_CLS,         /* tc, tcx/, classifier, netkit/: __sk_buff */
    GKT_SCHED_ACT,         /* action: __sk_buff */
    GKT_XDP,               /* xdp.frags, xdp/devmap, xdp_* (pre-1.0): struct xdp_md */
    GKT_CGROUP_SKB,        /* cgroup_skb/, cgroup/skb: __sk_buff */
    GKT_CGROUP_SOCK,       /* cgroup/sock*, cgroup/post_bind*: struct bpf_sock */
    GKT_CGROUP_SOCK_ADDR,  /* cgroup/bind4, connect6, sendmsg4, ...: struct bpf_sock_addr */
    GKT_CGROUP_DEV,        /* cgroup/dev: struct bpf_cgroup_dev_ctx */
    GKT_CGROUP_SYSCTL,     /* cgroup/sysctl: struct bpf_sysctl */
    GKT_CGROUP_SOCKOPT,    /* cgroup/getsockopt, setsockopt: struct bpf_sockopt */
    GKT_SOCK_OPS,          /* sockops: struct bpf_sock_ops */
    GKT_SK_SKB,            /* sk_skb/...: __sk_buff */
    GKT_SK_MSG,            /* sk_msg: struct sk_msg_md */
    GKT_SK_REUSEPORT,      /* sk_reuseport: struct sk_reuseport_md */
    GKT_SK_LOOKUP,         /* sk_lookup: struct bpf_sk_lookup */
    GKT_FLOW_DISSECTOR,    /* flow_dissector: __sk_buff */
    GKT_LWT,               /* lwt_in, lwt_out, lwt_xmit, lwt_seg6local: __sk_buff */
    GKT_LIRC_MODE2,        /* lirc_mode2: u32 sample */
    GKT_SYSCALL,           /* syscall: caller-supplied bytes */
    GKT_STRUCT_OPS,        /* struct_ops/: u64 args[] */
    GKT_NETFILTER,         /* netfilter: struct bpf_nf_ctx */
    GKT_UNKNOWN,           /* not a section name libbpf knows (graft verify only) */
};

/* Where a map came from. */
enum gobj_map_kind {
    GOBJ_MAP_USER = 0,     /* .maps (BTF-defined) or legacy "maps" */
    GOBJ_MAP_DATA,         /* .data, .data.*: one-entry array, initialised */
    GOBJ_MAP_RODATA,       /* .rodata, .rodata.* (incl. .rodata.str1.1): read-only to programs */
    GOBJ_MAP_BSS,          /* .bss, .bss.*: zero-filled */
};

struct gobj_map {
    char name[64];             /* variable name, or section name for global data */
    struct gmap_def def;       /* def.name == name (truncated to fit) */
    enum gobj_map_kind kind;
    char section[64];          /* ELF section it was defined in */
    uint32_t sec_off;          /* offset of its definition in that section */
    void *init_data;           /* global data: value's initial bytes, NULL for .bss */
    size_t init_size;
    /* Declared initial contents (__array(values, ...)): slot i holds map
     * index init_slots[i] (a map-in-map) or program index init_slots[i] (a
     * PROG_ARRAY: init_progs set, as libbpf's `.values = { [0] = &prog }`),
     * or -1 when empty. n_init_slots <= max_entries. The loader writes the
     * registry ids of those maps or programs into the map. */
    int32_t *init_slots;
    uint32_t n_init_slots;
    bool init_progs;
    uint32_t btf_key_type_id;  /* in gobj.btf, 0 when unknown */
    uint32_t btf_value_type_id;
    /* Byte offset of the value's struct bpf_spin_lock (found through
     * typedefs, modifiers, nested structs and global data's variables; at
     * most one per value, as the kernel requires), -1 when the value type
     * has none, -2 when it is unknown (no BTF): the verifier's
     * gver_input.map_lock_offs. */
    int32_t spin_lock_off;
};

struct gobj_prog {
    char name[64];             /* function name */
    char section[128];         /* ELF section, e.g. "uprobe/./app:compute" */
    enum gprog_type type;
    char target[256];          /* what follows the section prefix and '/' */
    bool sleepable;            /* uprobe.s / uretprobe.s */
    struct bpf_insn *insns;    /* linked: the program then the subprograms it uses */
    uint32_t n_insns;
    uint32_t n_poisoned;       /* CO-RE relocations that matched nothing */
    enum gprog_ktype ktype;    /* GPROG_KERNEL: which kernel type; else GKT_NONE */
    bool no_autoload;          /* SEC("?...") (libbpf: not loaded unless asked) */
    /* gobj_opts.keep_broken_progs: why this program could not be built (an
     * unknown section, an unresolved symbol, ...); insns is then NULL. */
    char load_error[256];
};

enum gobj_extern_kind { GOBJ_EXTERN_KSYM_VAR, GOBJ_EXTERN_KSYM_FUNC, GOBJ_EXTERN_KCONFIG };

struct gobj_extern_use {
    uint32_t prog;             /* index into gobj.progs */
    uint32_t insn;             /* index into that program's insns */
};

/* A __ksym / __kconfig symbol referenced by the code, for the EIM layer. */
struct gobj_extern {
    char name[128];
    enum gobj_extern_kind kind;
    bool weak;
    uint32_t btf_id;           /* its VAR or FUNC in gobj.btf, 0 if none */
    struct gobj_extern_use *uses;
    uint32_t n_uses;
};

struct gobj {
    char *path;                /* file path or the name given to gobj_open_mem */
    struct gobj_map *maps;
    uint32_t n_maps;
    struct gobj_prog *progs;
    uint32_t n_progs;
    struct gobj_extern *externs;
    uint32_t n_externs;
    char license[128];
    struct btf *btf;           /* the object's own BTF (NULL if built without -g) */
    uint32_t n_core_relos;     /* CO-RE relocations applied, all programs */
};

struct gobj_opts {
    size_t sz;                 /* sizeof(struct gobj_opts) */
    /* Target BTF for CO-RE: a raw BTF or ELF file. NULL: /sys/kernel/btf/vmlinux
     * when present (unless use_builtin_btf), else the built-in BTF. */
    const char *target_btf_path;
    /* Resolve CO-RE against graft's built-in BTF (pt_regs, syscall
     * tracepoint records) even when the kernel's BTF exists. */
    bool use_builtin_btf;
    /* A program that cannot be built (unknown section, unresolved symbol,
     * bad relocation) is kept with gobj_prog.load_error set and no code,
     * instead of failing the whole object: `graft verify` gives each program
     * its own verdict. Loading paths leave this off. */
    bool keep_broken_progs;
};

/* Helper id written into CO-RE-poisoned instructions (libbpf's value). */
#define GOBJ_POISON_HELPER 0xbad2310

int gobj_open_file(const char *path, const struct gobj_opts *opts,
                   struct gobj **out, struct graft_err *err);
/* buf is copied; name is used in error messages and as gobj.path. */
int gobj_open_mem(const void *buf, size_t len, const char *name,
                  const struct gobj_opts *opts, struct gobj **out,
                  struct graft_err *err);
void gobj_free(struct gobj *obj);

/* The values of obj's .rodata maps as the verifier's gver_input.map_frozen
 * (obj->n_maps entries; NULL for every other map): graft creates them with
 * these bytes and nothing writes them afterwards (programs cannot: they are
 * GMAP_F_RDONLY_PROG). NULL on allocation failure; free with
 * gobj_frozen_free(). */
const void **gobj_frozen_values(const struct gobj *obj);
void gobj_frozen_free(const void **vals, uint32_t n);

/* Without an EIM class nothing grants host symbols, so weak __ksym / kfunc
 * externs are absent, as libbpf makes an unresolved weak one: each load of
 * one's address becomes the constant 0 (bpf_ksym_exists() is false) and
 * each call of one a call of helper 0, which the verifier refuses if a
 * path reaches it. Returns how many uses were rewritten. */
uint32_t gobj_absent_weak_externs(struct gobj *obj);
/* After prog was accepted: its helper-0 calls are unreachable (verified),
 * so they become no-ops the VM can load. */
void gobj_prog_drop_unreached_calls(struct gobj_prog *prog);

/* The size of struct name in obj's BTF (a kernel structure a program
 * built with vmlinux.h uses), 0 when the BTF has no such definition. */
uint32_t gobj_struct_size(const struct gobj *obj, const char *name);

/* The program whose function name, or failing that section name, matches. */
struct gobj_prog *gobj_find_prog(struct gobj *obj, const char *name_or_section);
/* Index of the map named name, or -1. */
int gobj_find_map(const struct gobj *obj, const char *name);

const char *gprog_type_name(enum gprog_type type);
/* The kernel's name of a kernel program type ("kprobe", "sched_cls", ...). */
const char *gprog_ktype_name(enum gprog_ktype ktype);

/* Split a uprobe-style target "BINARY:FUNC[+OFF]" (also override/replace).
 * FUNC may be empty ("bin:+0x1234" or "bin:0x1234" for an address); *off is
 * the offset. Returns 0 or -EINVAL with err filled. */
int gobj_parse_probe_target(const char *target, char *binary, size_t binary_len,
                            char *func, size_t func_len, uint64_t *off,
                            struct graft_err *err);

/* The built-in target BTF (x86-64 struct pt_regs, trace_entry,
 * trace_event_raw_sys_enter/exit). Caller frees with btf__free(). */
struct btf *gobj_builtin_btf(struct graft_err *err);

#endif
