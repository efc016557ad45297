/*
 * eim.h - the Extension Interface Model: what a host application offers to
 * extensions (development time) and what each class of extension is granted
 * (deployment time), read from one YAML file (docs/eim.md), and turned into
 * the verifier policy that enforces the grant.
 *
 * Development time declares:
 *   entries      places an extension can run: a host function, a syscall, or
 *                a GRAFT_ENTRY() site in the source (include/graft/eim.h);
 *                each with argument and return types;
 *   state        host globals, readable or writable;
 *   functions    host functions an extension may call (kfuncs), with
 *                pre-conditions on arguments (ranges, non-null, sizes) and a
 *                post-condition on the return value;
 *   helper_groups named sets of BPF helpers.
 * Deployment time grants, per named class bound to one entry: helpers and
 * groups, functions, state, rights on the entry's arguments, an instruction
 * budget and a memory budget.
 *
 * Extensions name host functions and globals like kernel eBPF names kfuncs
 * and ksyms (`extern int app_log(const char *, int) __ksym;`); the loader
 * records them in gobj.externs and this layer resolves them only as far as
 * the class allows.
 *
 * Invariants: a loaded spec is fully cross-checked (every reference resolves,
 * names are unique, ranges are ordered); it is immutable afterwards.
 */
#ifndef GRAFT_EIM_EIM_H
#define GRAFT_EIM_EIM_H

#include <stddef.h>
#include <stdint.h>

#include "helpers/helpers.h"
#include "loader/loader.h"
#include "util/err.h"
#include "verifier/verifier.h"

#define GEIM_MAX_ARGS 6

/* A C type from the spec's small type syntax. */
enum geim_tkind { GEIM_T_VOID, GEIM_T_INT, GEIM_T_PTR, GEIM_T_STRUCT };

struct geim_type {
    enum geim_tkind kind;
    uint32_t size;             /* bytes (pointer: 8; void: 0) */
    int is_signed;             /* integers */
    enum geim_tkind pointee;   /* pointers: what they point to */
    uint32_t pointee_size;     /* pointers to integers/structs (0: void/unknown) */
    int struct_idx;            /* GEIM_T_STRUCT or pointer to struct: index in spec->types, else -1 */
    char text[64];             /* as written, normalised ("struct request *") */
};

struct geim_field {
    char name[64];
    uint32_t offset, size;
    int line, col;
};

struct geim_struct {
    char name[64];
    uint32_t size;
    struct geim_field *fields;
    uint32_t n_fields;
    int line, col;
};

/* An argument (or return value, name ""), with pre/post-conditions. */
struct geim_arg {
    char name[64];
    struct geim_type type;
    int has_range;
    int64_t min, max;          /* scalar range */
    int nullable;              /* pointer may be NULL (default: must be non-null) */
    int size_arg;              /* pointer: index of the argument giving its size, -1 none */
    int line, col;
};

enum geim_entry_kind { GEIM_ENTRY_FUNCTION, GEIM_ENTRY_SYSCALL, GEIM_ENTRY_SOURCE };

struct geim_entry {
    char name[64];
    enum geim_entry_kind kind;
    struct geim_arg args[GEIM_MAX_ARGS];
    uint32_t n_args;
    struct geim_arg ret;
    int line, col;
};

struct geim_state {
    char name[64];
    struct geim_type type;
    int writable;
    int line, col;
};

struct geim_func {
    char name[64];
    struct geim_arg args[5];
    uint32_t n_args;
    struct geim_arg ret;
    int line, col;
};

struct geim_group {
    char name[64];
    uint32_t *helpers;         /* helper ids */
    uint32_t n_helpers;
    int line, col;
};

/* Rights on one entry argument (GVER_R / GVER_W bits). */
struct geim_arg_right {
    uint32_t access;
    /* Per struct field rights for pointer-to-struct arguments: the policy
     * turns them into a gver_host_ptr, and the verifier checks the
     * probe_read / probe_write_user accesses through the argument against
     * them (docs/eim.md "Struct-field rights"). */
    uint32_t *field_access;    /* n = the struct's n_fields, NULL when not given */
};

struct geim_class {
    char name[64];
    int entry;                 /* index in spec->entries */
    uint64_t helpers_allowed[BPF_MAX_HELPER_ID / 64];
    int *funcs;                /* indices in spec->funcs */
    uint32_t n_funcs;
    int *states;               /* indices in spec->states */
    int *state_write;          /* per granted state: write granted (and declared writable) */
    uint32_t n_states;
    struct geim_arg_right args[GEIM_MAX_ARGS];
    uint64_t insn_budget;      /* 0: unlimited */
    uint64_t mem_budget;       /* 0: unlimited */
    int override;              /* function entry: override/ and replace/ programs may
                                * set its return value (within the entry's ret range) */
    int line, col;
};

struct geim_spec {
    char *path;
    char host[256];            /* optional: the host binary's name */
    struct geim_struct *types;   uint32_t n_types;
    struct geim_entry *entries;  uint32_t n_entries;
    struct geim_state *states;   uint32_t n_states;
    struct geim_func *funcs;     uint32_t n_funcs;
    struct geim_group *groups;   uint32_t n_groups;
    struct geim_class *classes;  uint32_t n_classes;
};

/* Load and cross-check a spec. Errors say "file:line:col: what (did you
 * mean 'x'?)". Returns 0 or a negative errno. */
int geim_load(const char *path, struct geim_spec **out, struct graft_err *err);
/* Same, from a buffer; name is used in messages. */
int geim_load_mem(const char *buf, size_t len, const char *name,
                  struct geim_spec **out, struct graft_err *err);
void geim_free(struct geim_spec *spec);

const struct geim_class *geim_find_class(const struct geim_spec *spec, const char *name);
const char *geim_entry_kind_name(enum geim_entry_kind k);

/* ---- host validation ---- */

struct geim_report {
    uint32_t n_checked;        /* facts compared */
    uint32_t n_mismatch;
    uint32_t n_no_dwarf;       /* declarations DWARF could not confirm */
    char *text;                /* malloc'd, one line per finding ("" if none) */
    size_t len, cap;
};
void geim_report_free(struct geim_report *r);

/* Compare the spec with a host binary: symbols exist (symtab/dynsym; source
 * entries in the .note.graft records), and where DWARF exists, argument
 * counts and sizes, global sizes and struct field offsets/sizes match.
 * Returns 0 when it could compare (see report->n_mismatch), negative errno
 * when the binary cannot be read. */
int geim_check_host(const struct geim_spec *spec, const char *host_binary,
                    struct geim_report *report, struct graft_err *err);

/* A GRAFT_ENTRY() site found in a binary's .note.graft section. */
struct geim_src_entry {
    char name[64];
    uint64_t addr;             /* link-time address of the 5-byte nop */
    char args[256];            /* "SIZE@OPERAND ..." e.g. "-4@%edi 8@-16(%rbp)" */
    uint32_t n_args;
};
int geim_list_src_entries(const char *binary, struct geim_src_entry **out,
                          uint32_t *n, struct graft_err *err);

/* ---- enforcement ---- */

/* Host function name's memory arguments, as giso_wrap_host_call_mem()
 * takes them: bit i set when argument i is a pointer (its size is argument
 * i+1). 0 when the spec has no function of that name. */
uint32_t geim_func_mem_args(const struct geim_spec *spec, const char *name);

/* The bytes a host function's pointer argument may name: with isolation
 * they are copied to the host's stack for the call, so the policy caps
 * every size argument here (= GISO_HOST_COPY_MAX). */
#define GEIM_HOST_MEM_MAX (64u * 1024u)

/* The policy for one program of a class (one malloc'd block: free()).
 * ctx: pt_regs with only the entry's argument registers open (syscalls:
 * the sys_enter record), as the class's argument rights say; helpers from
 * granted helpers and groups; kfuncs (id = gobj extern index, or the spec's
 * function index when obj is NULL) from granted functions; budgets. */
int geim_policy_for_class(const struct geim_spec *spec, const char *class_name,
                          const struct gobj *obj, const struct gobj_prog *prog,
                          struct gver_policy **out, struct graft_err *err);
/* The program's section must attach to the class's entry. */
int geim_check_attach(const struct geim_spec *spec, const char *class_name,
                      const struct gobj_prog *prog, struct graft_err *err);
/* Every __ksym the program uses must be granted to the class (and match the
 * declared prototype's argument count); names class, capability, insn. */
int geim_check_externs(const struct geim_spec *spec, const char *class_name,
                       const struct gobj *obj, const struct gobj_prog *prog,
                       struct graft_err *err);

/* Everything the verifier needs for one program under a class. Host globals
 * (LD_IMM64 BTF_ID) are presented to the verifier as one-entry array maps
 * of the global's size (read-only unless write is granted), appended after
 * the object's maps; insns is a rewritten copy for verification only (the
 * runtime resolves the original BTF_ID loads to the host's addresses). */
struct geim_prepared {
    struct gver_policy *policy;
    struct bpf_insn *insns;
    uint32_t n_insns;
    struct gmap_def *maps;
    uint32_t n_maps;
};
int geim_prepare(const struct geim_spec *spec, const char *class_name,
                 const struct gobj *obj, const struct gobj_prog *prog,
                 struct geim_prepared *out, struct graft_err *err);
void geim_prepared_free(struct geim_prepared *p);

/* check_attach + check_externs + prepare + gver_verify. insn_budget > 0
 * tightens the class's budget (the loader's --insn-budget; it never
 * loosens it). Returns 0 when verification ran (res->accepted says the
 * outcome; a rejection's err names the class, the capability and the
 * instruction), negative errno otherwise (including attach/extern
 * violations, which need no verifier run). graft's commands reach this
 * through grt_verify (runtime/load.h), the one place a program's policy is
 * decided. */
int geim_verify(const struct geim_spec *spec, const char *class_name,
                const struct gobj *obj, const struct gobj_prog *prog, uint64_t insn_budget,
                int log_level, struct gver_result *res, struct graft_err *err);
/* The same, recording the verifier's facts (gver_input.record_facts) when
 * record_facts. They are for the prepared copy, which differs from prog's
 * instructions only in the LD_IMM64 of host globals (map values to the
 * verifier, the globals' addresses in the agent): no fact is about one. */
int geim_verify_facts(const struct geim_spec *spec, const char *class_name,
                      const struct gobj *obj, const struct gobj_prog *prog, uint64_t insn_budget,
                      int log_level, int record_facts, struct gver_result *res,
                      struct graft_err *err);

/* `graft eim check SPEC [--host BINARY]`: 0 ok, 1 mismatches, 2 spec errors. */
int geim_cmd_check(int argc, char **argv);

#endif
