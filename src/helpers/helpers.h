/*
 * helpers.h - the helper functions eBPF programs call, with the kernel's
 * numbers, and the prototype of each one that the verifier checks calls
 * against.
 *
 * A helper is a plain C function taking five 64-bit arguments. Helpers that
 * need to know which program or hook is running (tail_call, get_func_ip,
 * get_attach_cookie, override_return) read the per-thread run state that the
 * runtime sets around each invocation (struct ghelper_run).
 */
#ifndef GRAFT_HELPERS_HELPERS_H
#define GRAFT_HELPERS_HELPERS_H

#include <stdint.h>

#include "vm/vm.h"

/* Argument kinds, after the kernel's enum bpf_arg_type. */
enum garg_kind {
    GARG_NONE = 0,             /* no argument in this position */
    GARG_ANYTHING,             /* any initialised scalar or pointer value */
    GARG_SCALAR,               /* any initialised scalar (no pointer) */
    GARG_CONST_MAP_PTR,        /* a map from LD_IMM64 */
    GARG_PTR_TO_MAP_KEY,       /* readable memory of the map's key_size */
    GARG_PTR_TO_MAP_VALUE,     /* readable memory of the map's value_size */
    GARG_PTR_TO_MEM,           /* readable memory; size is the next argument */
    GARG_PTR_TO_MEM_OR_NULL,
    GARG_PTR_TO_UNINIT_MEM,    /* writable memory, may be uninitialised; size is next */
    GARG_CONST_SIZE,           /* size of the previous pointer argument, > 0 */
    GARG_CONST_SIZE_OR_ZERO,
    GARG_PTR_TO_CTX,
    GARG_PTR_TO_FUNC,          /* a callback (bpf_loop, for_each_map_elem) */
    GARG_PTR_TO_STACK_OR_NULL, /* callback context */
    GARG_PTR_TO_ALLOC_MEM,     /* ringbuf sample returned by reserve (released) */
    GARG_PTR_TO_SPIN_LOCK,     /* a struct bpf_spin_lock inside a map value */
    GARG_PTR_TO_LONG,          /* writable 8 bytes */
    GARG_PTR_TO_CONST_STR,     /* NUL-terminated string in a read-only map */
    GARG_CONST_ALLOC_SIZE,     /* constant size of memory to allocate */
};

/* Return kinds, after the kernel's enum bpf_return_type. */
enum gret_kind {
    GRET_INTEGER = 0,
    GRET_VOID,
    GRET_MAP_VALUE_OR_NULL,    /* pointer to a value of the map in arg 1 */
    GRET_ALLOC_MEM_OR_NULL,    /* ringbuf reserve: size from the CONST_ALLOC_SIZE arg */
};

#define GHELPER_F_ACQUIRE     0x1  /* returns a resource that must be released */
#define GHELPER_F_RELEASE     0x2  /* releases the GARG_PTR_TO_ALLOC_MEM argument */
#define GHELPER_F_NORETURN_OK 0x4  /* may not return on success (tail_call) */

struct ghelper_proto {
    const char *name;          /* "map_lookup_elem", without the bpf_ prefix */
    uint32_t id;               /* the kernel's helper number */
    gvm_helper_fn fn;
    enum gret_kind ret;
    enum garg_kind args[5];
    uint32_t flags;            /* GHELPER_F_* */
};

/* The prototype of helper id, or NULL if graft has no such helper. */
const struct ghelper_proto *ghelper_proto(uint32_t id);
/* Look up by name ("ktime_get_ns"), for EIM helper groups and messages. */
const struct ghelper_proto *ghelper_by_name(const char *name);

/* A BPF_MAX_HELPER_ID-entry table for struct gvm_env.helpers. */
const gvm_helper_fn *ghelper_table(void);

/* Per-thread state of the invocation in progress, set by whoever runs a
 * program (runtime, hooks, tests) around each run. */
struct ghelper_run {
    void *ctx;                 /* the program's context (pt_regs for probes) */
    uint64_t func_ip;          /* bpf_get_func_ip */
    uint64_t cookie;           /* bpf_get_attach_cookie */
    int override_set;          /* bpf_override_return was called ... */
    uint64_t override_value;   /* ... with this return value */
    uint32_t tail_calls;       /* tail calls taken so far */
};
struct ghelper_run *ghelper_run_state(void);   /* this thread's */

/* Where bpf_trace_printk output goes: a callback, or stderr when NULL. */
void ghelper_set_trace_sink(void (*sink)(const char *line, void *arg), void *arg);

#endif
