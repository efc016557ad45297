/*
 * instance.h - a program made runnable in this process: its instructions,
 * bound to this process's handles on its maps, compiled by the VM.
 *
 * Loaders (graft prog run) and agents (inside targets) both go from
 * "instructions whose LD_IMM64 refer to map slot i" to a gvm_prog the same
 * way; this is that one way. Programs verified under an EIM class may also
 * name host functions and globals (externs); those are bound here to this
 * process's addresses, so the JIT calls and loads them directly.
 */
#ifndef GRAFT_RUNTIME_INSTANCE_H
#define GRAFT_RUNTIME_INSTANCE_H

#include <stdint.h>

#include "maps/maps.h"
#include "runtime/registry.h"
#include "vm/vm.h"

struct grt_instance {
    struct gvm_prog *prog;
    struct gmap **maps;        /* borrowed: slot i of the program's map table */
    uint32_t n_maps;
    uint32_t id;               /* registry id, or 0 */
    uint64_t policy_tag;       /* gver_policy_tag() it was verified under (greg_prog), or 0 */
    struct gvm_env env;
    uint32_t facts_rewritten;  /* insns the verifier's facts rewrote (gvm_prog_facts_rewritten) */
    void **extern_addrs;       /* extern i's address in this process */
    uint32_t *extern_kinds;    /* enum greg_extern_kind */
    uint32_t n_externs;
};

/* Bind insns to maps and compile with engine. The maps array is copied (the
 * handles are borrowed and must outlive the instance). */
int grt_instance_create(const struct bpf_insn *insns, uint32_t n,
                        struct gmap *const *maps, uint32_t n_maps,
                        enum gvm_engine engine, struct grt_instance **out,
                        struct graft_err *err);

/* Where a host function or global is in this process: fill *addr or return
 * a negative errno with err saying why (the agent looks in the main
 * executable's symbol tables, then in every loaded library). */
typedef int (*grt_extern_resolver)(void *arg, const struct greg_extern *x, void **addr,
                                   struct graft_err *err);

struct grt_instance_opts {
    size_t sz;                 /* sizeof(struct grt_instance_opts) */
    enum gvm_engine engine;
    /* The program's externs in extern-index order (greg_prog.externs):
     * CALL KFUNC imm i calls externs[i] (a GREG_EXTERN_FUNC), LD_IMM64
     * BTF_ID imm i loads the address of externs[i] (a GREG_EXTERN_VAR).
     * All are resolved at create; one that does not resolve fails it with
     * a message naming it. */
    const struct greg_extern *externs;
    uint32_t n_externs;
    grt_extern_resolver resolve;
    void *resolve_arg;
    /* Where the compiled program's descriptor lives (gvm_prog_opts). */
    void *(*desc_alloc)(size_t size, void *arg);
    void (*desc_free)(void *p, size_t size, void *arg);
    void *desc_arg;
    /* The verifier's facts for insns (n_facts = n), for the JIT
     * (gvm_prog_opts.facts): only its result for exactly these insns. */
    const struct gvm_insn_fact *facts;
    uint32_t n_facts;
};

/* grt_instance_create with externs. opts may be NULL (JIT, no externs). */
int grt_instance_create_opts(const struct bpf_insn *insns, uint32_t n,
                             struct gmap *const *maps, uint32_t n_maps,
                             const struct grt_instance_opts *opts,
                             struct grt_instance **out, struct graft_err *err);
void grt_instance_free(struct grt_instance *inst);

/* Tail calls: PROG_ARRAY values are program ids; by_id resolves them in
 * this process (the agent registers its loaded programs here), giving the
 * program and the policy tag it was verified under. A tail call is taken
 * only when that tag equals the calling instance's policy_tag: a target
 * verified for another context layout or other grants would run on the
 * caller's context (the kernel likewise keeps a prog array to one program
 * type). Otherwise it falls through, as to an empty slot. */
void grt_set_prog_resolver(const struct gvm_prog *(*by_id)(uint32_t id, void *arg,
                                                           uint64_t *policy_tag),
                           void *arg);

#endif
