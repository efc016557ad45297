/*
 * instance.h - a program made runnable in this process: its instructions,
 * bound to this process's handles on its maps, compiled by the VM.
 *
 * Loaders (graft prog run) and agents (inside targets) both go from
 * "instructions whose LD_IMM64 refer to map slot i" to a gvm_prog the same
 * way; this is that one way.
 */
#ifndef GRAFT_RUNTIME_INSTANCE_H
#define GRAFT_RUNTIME_INSTANCE_H

#include <stdint.h>

#include "maps/maps.h"
#include "vm/vm.h"

struct grt_instance {
    struct gvm_prog *prog;
    struct gmap **maps;        /* borrowed: slot i of the program's map table */
    uint32_t n_maps;
    uint32_t id;               /* registry id, or 0 */
    struct gvm_env env;
};

/* Bind insns to maps and compile with engine. The maps array is copied (the
 * handles are borrowed and must outlive the instance). */
int grt_instance_create(const struct bpf_insn *insns, uint32_t n,
                        struct gmap *const *maps, uint32_t n_maps,
                        enum gvm_engine engine, struct grt_instance **out,
                        struct graft_err *err);
void grt_instance_free(struct grt_instance *inst);

/* Tail calls: PROG_ARRAY values are program ids; this resolves them in this
 * process (the agent registers its loaded programs here). */
void grt_set_prog_resolver(const struct gvm_prog *(*by_id)(uint32_t id, void *arg), void *arg);

#endif
