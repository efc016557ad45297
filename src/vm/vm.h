/*
 * vm.h - the eBPF virtual machine: turn an instruction array into something
 * that runs, with the JIT (default) or the interpreter.
 *
 * The VM knows nothing about maps, ELF or policy. What a program may reach is
 * given by a struct gvm_env: the helper table, how to turn LD_IMM64 pseudo
 * sources (map references) into values, and how to find tail-call targets.
 * gvm_prog_create() checks the instruction stream is well-formed (decodable
 * opcodes, registers, jump and call targets) and fails with an error naming
 * the instruction; it does not prove the program safe - that is the verifier.
 */
#ifndef GRAFT_VM_VM_H
#define GRAFT_VM_VM_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "vm/isa.h"

/* Every helper (and kfunc) is called with five 64-bit arguments (r1-r5)
 * and returns r0. */
typedef uint64_t (*gvm_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3,
                                  uint64_t r4, uint64_t r5);

/* The entry point of a compiled program: r1 = ctx, r2 = ctx_len. */
typedef uint64_t (*gvm_native_fn)(void *ctx, uint64_t ctx_len);

struct gvm_prog;

/* An array map the JIT may index inline instead of calling the lookup helper. */
struct gvm_array_info {
    void *values;              /* first value; element i at values + i * stride */
    uint32_t stride;           /* bytes between values */
    uint32_t max_entries;
    uint32_t percpu_stride;    /* per-CPU arrays: bytes between CPU copies, else 0 */
};

/* A helper whose result the JIT may compute inline, calling it only when
 * the inline path cannot answer (struct gvm_env.helper_inline); the
 * interpreter always calls. tls_offset is from the thread pointer to
 * initial-exec TLS (the same in every thread).
 *
 * GVM_INLINE_TLS_U64: the result is the 8 bytes at tls_offset whenever
 * their low 32 bits are not zero; when they are, the helper is called (and
 * fills them).
 *
 * GVM_INLINE_TSC_LINE: a clock read from the TSC along the line at `line`:
 * n0 + ((rdtsc - t0) * mult >> 32), provided seq is even and unchanged
 * across the read, rdtsc - t0 < span (span 0: no line yet) and the value is
 * not below the thread's last one (the 8 bytes at tls_offset), which it
 * then becomes. Otherwise the helper is called. */
#define GVM_INLINE_NONE     0u
#define GVM_INLINE_TLS_U64  1u
#define GVM_INLINE_TSC_LINE 2u
struct gvm_tsc_line {
    uint32_t seq;              /* odd while its writer rewrites it */
    uint64_t t0, n0, mult, span;
};
struct gvm_helper_inline {
    uint32_t kind;             /* GVM_INLINE_* */
    int32_t tls_offset;
    const struct gvm_tsc_line *line;   /* GVM_INLINE_TSC_LINE */
};

struct gvm_env {
    /* Helpers by id; a call to an id whose entry is NULL is a load error. */
    const gvm_helper_fn *helpers;           /* BPF_MAX_HELPER_ID entries */
    /* BPF_MAX_HELPER_ID entries saying which helpers the JIT may inline,
     * or NULL: every helper is called. An entry describes the function in
     * helpers[] (the inline path must return what it would): a table that
     * replaces a helper with one returning something else (a mock) must
     * not reuse its entry. */
    const struct gvm_helper_inline *helper_inline;
    /* LD_IMM64 with src_reg MAP_FD, MAP_VALUE, MAP_IDX, MAP_IDX_VALUE or
     * BTF_ID: store the 64-bit value to load in *value. NULL: such loads are
     * a load error. */
    int (*resolve_ld_imm64)(void *arg, uint8_t src_reg, int32_t imm,
                            int32_t next_imm, uint64_t *value,
                            struct graft_err *err);
    /* bpf_tail_call(ctx, map, index): the program to continue in, or NULL
     * (the helper then returns and the caller goes on, as in the kernel). */
    const struct gvm_prog *(*tail_call_target)(void *arg, uint64_t map,
                                               uint64_t index);
    /* If map (a value produced by resolve_ld_imm64) is an array the JIT may
     * index inline, fill *info and return 1; else return 0. May be NULL. */
    int (*array_info)(void *arg, uint64_t map, struct gvm_array_info *info);
    /* Checked interpreter only: may the program touch [addr, addr+size)?
     * ctx and the program's own stack are always allowed. May be NULL. */
    int (*mem_allowed)(void *arg, uint64_t addr, uint64_t size, int write);
    /* CALL src_reg BPF_PSEUDO_KFUNC_CALL (a kfunc; in graft a host function
     * an EIM class grants): the function to call for imm (the loader's
     * extern index), called like a helper (five 64-bit arguments in the
     * SysV registers, result in r0). Resolved once at gvm_prog_create;
     * NULL, or a NULL result, makes such a call a load error naming the
     * instruction. */
    gvm_helper_fn (*resolve_kfunc)(void *arg, int32_t imm, struct graft_err *err);
    void *arg;
};

enum gvm_engine {
    GVM_ENGINE_JIT = 0,        /* default: x86-64 machine code */
    GVM_ENGINE_INTERP = 1,     /* portable, for debugging */
};

/* Checked interpreter: every access is bounds-checked against ctx, stack and
 * env->mem_allowed, stack reads must hit initialised bytes, and at most
 * step_limit instructions run. A violation makes gvm_prog_run() fail with a
 * message naming the instruction. Used to test the verifier's soundness. */
#define GVM_F_CHECKED 0x1u

/* With GVM_F_CHECKED and the verifier's facts (gvm_prog_opts.facts): also
 * run, at each conditional jump whose outcome the facts say is known (where
 * the verifier explores a misprediction), the side not taken as a
 * mispredicting CPU would, for up to GVM_SPEC_WINDOW
 * instructions, with its stores discarded; an access out of bounds on it
 * is a violation (the oracle for the verifier's Spectre v1 rules; model and
 * limits in src/vm/interp.c). At most GVM_SPEC_BUDGET such instructions
 * per run. */
#define GVM_F_SPECULATIVE 0x2u
/* How far past a misprediction the verifier checks a speculative path (the
 * reorder buffer's reach, src/verifier/speculation.c), and the checker
 * runs one. */
#define GVM_SPEC_WINDOW 1024
#define GVM_SPEC_BUDGET (1u << 18)

/* Speculative paths the checked interpreter ran on this thread and their
 * instructions, since the thread started. */
struct gvm_spec_stats {
    uint64_t paths;
    uint64_t insns;
};
void gvm_spec_stats_get(struct gvm_spec_stats *out);

/* Checked interpreter: a helper (or a test's wrapper around one) declares
 * that it is about to access [addr, addr+size) of the memory the running
 * program passed it, and the access is checked like the program's own
 * loads and stores (a write marks stack bytes initialised, a read needs
 * them initialised). A violation makes the run fail, naming the call, when
 * the helper returns; -EFAULT then, else 0 (also outside checked runs). */
int gvm_checked_helper_access(uint64_t addr, uint64_t size, int write);

/* What the verifier proved about one instruction's operands as it starts,
 * on every path that reaches it (gver_input.record_facts). Given to a JIT'd
 * program (gvm_prog_opts.facts), they let it drop work: an `and` that
 * clears no bit, a zero-extension of a value already zero-extended, a
 * register operand that is a constant, a branch whose outcome is known. A wrong fact is a miscompile, and
 * can break safety (a dropped mask may have bounded an address), so only
 * the verifier's own result for these very insns may be passed
 * (docs/jit.md, "Verifier facts in the JIT"). */
#define GVM_FACT_DST_BITS  0x1u   /* dst holds no bit outside dst_bits */
#define GVM_FACT_SRC_CONST 0x2u   /* src (a BPF_X operand) equals src_value */
#define GVM_FACT_TAKEN     0x4u   /* a conditional jump taken on every path */
#define GVM_FACT_NOT_TAKEN 0x8u   /* ... never taken */
struct gvm_insn_fact {
    uint32_t flags;            /* GVM_FACT_* */
    uint64_t dst_bits;
    uint64_t src_value;
};

struct gvm_prog_opts {
    size_t sz;                 /* sizeof(struct gvm_prog_opts), for ABI growth */
    enum gvm_engine engine;
    uint32_t flags;            /* GVM_F_* */
    uint64_t step_limit;       /* GVM_F_CHECKED: 0 means 10 million */
    const struct gvm_env *env; /* copied; NULL means no helpers, no maps */
    /* Where the descriptor (struct gvm_prog) lives. The JIT'd code reads it
     * at run time for tail calls (env, the target's entry), so a runtime
     * that keeps its state out of the host's reach allocates it there:
     * desc_alloc(size, desc_arg) returns zeroed memory, desc_free(p, size,
     * desc_arg) takes it back at gvm_prog_free(). NULL: the heap. Both run
     * inside gvm_prog_create()/gvm_prog_free(), which must then be called
     * with that memory accessible. */
    void *(*desc_alloc)(size_t size, void *arg);
    void (*desc_free)(void *p, size_t size, void *arg);
    void *desc_arg;
    /* The JIT (engine GVM_ENGINE_JIT) may use facts[i] for insns[i]; n_facts
     * must be n. NULL: none (unverified programs). The interpreter ignores
     * them. */
    const struct gvm_insn_fact *facts;
    uint32_t n_facts;
};

/* Check and prepare insns[0..n) for running; the array is copied. */
int gvm_prog_create(const struct bpf_insn *insns, uint32_t n,
                    const struct gvm_prog_opts *opts, struct gvm_prog **out,
                    struct graft_err *err);
void gvm_prog_free(struct gvm_prog *prog);

/* Run once with r1 = ctx, r2 = ctx_len; r0 goes to *ret. Fails only in
 * checked mode (or when a tail-call target is malformed). */
int gvm_prog_run(const struct gvm_prog *prog, void *ctx, uint64_t ctx_len,
                 uint64_t *ret, struct graft_err *err);

/* The JIT-compiled entry, for trampolines that call it directly; NULL when
 * the program runs on the interpreter. */
gvm_native_fn gvm_prog_native(const struct gvm_prog *prog);

enum gvm_engine gvm_prog_engine(const struct gvm_prog *prog);
uint32_t gvm_prog_len(const struct gvm_prog *prog);
size_t gvm_prog_code_size(const struct gvm_prog *prog);   /* JIT bytes, else 0 */
/* How many instructions the verifier's facts (gvm_prog_opts.facts) rewrote
 * before compiling: 0 without facts or on the interpreter. */
uint32_t gvm_prog_facts_rewritten(const struct gvm_prog *prog);
/* The first of those bytes (the native entry may lie further in), else NULL:
 * for checks of the machine code, such as that it holds no WRPKRU/XRSTOR. */
const void *gvm_prog_code(const struct gvm_prog *prog);

/* Call a function of the program running on this thread, from a helper
 * that takes a callback (bpf_loop, bpf_for_each_map_elem): fn is the value
 * LD_IMM64 BPF_PSEUDO_FUNC produced, a1-a5 its r1-r5; returns its r0. Works
 * for both engines. The helpers layer is given this as its invoker. */
uint64_t gvm_invoke_callback(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3,
                             uint64_t a4, uint64_t a5);

/* Disassemble insns[idx] (reads insns[idx+1] for LD_IMM64) into buf in the
 * syntax gvm_asm() reads; returns buf. */
const char *gvm_insn_str(const struct bpf_insn *insns, uint32_t n, uint32_t idx,
                         char *buf, size_t len);

/* Assemble text (one instruction per line, '#' or ';' comments, labels
 * "name:") into a malloc'd array. Errors name the line. */
int gvm_asm(const char *text, struct bpf_insn **out, uint32_t *n,
            struct graft_err *err);

#endif
