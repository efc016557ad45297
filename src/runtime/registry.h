/*
 * registry.h - the control plane every graft process shares: which programs
 * are loaded, which maps exist, which links attach a program to an entry of
 * which process, and which processes run an agent.
 *
 * The registry is one POSIX shared-memory object per user (name from
 * $GRAFT_REGISTRY, default "/graft.<uid>.registry", mode 0600). Loaders add
 * records, agents inside target processes read them and install what applies
 * to them. Every change bumps a generation number that agents wait on with a
 * futex, so a program loaded after a target started is picked up at once.
 *
 * Records are never moved; an id is never reused within a registry. A
 * program's instructions and a map's contents live in their own shared-memory
 * objects, named in the records. All mutations take one robust, process-shared
 * lock, so a loader killed mid-update cannot wedge the others.
 */
#ifndef GRAFT_RUNTIME_REGISTRY_H
#define GRAFT_RUNTIME_REGISTRY_H

#include <stdint.h>
#include <sys/types.h>

#include "maps/maps.h"
#include "util/err.h"
#include "vm/isa.h"

#define GREG_NAME_MAX   64
#define GREG_PATH_MAX   256
#define GREG_PROG_MAPS  64       /* maps one program may reference */
#define GREG_PROG_EXTERNS 32     /* host functions/globals one program may name */
#define GREG_EXTERN_NAME  64

#define GREG_MAX_PROGS  1024
#define GREG_MAX_MAPS   1024
#define GREG_MAX_LINKS  4096
#define GREG_MAX_PROCS  1024

/* What a link attaches to. */
enum greg_link_kind {
    GREG_LINK_UPROBE = 1,      /* function entry */
    GREG_LINK_URETPROBE,       /* function return */
    GREG_LINK_OVERRIDE,        /* entry; the program may skip the function */
    GREG_LINK_REPLACE,         /* the program is the function */
    GREG_LINK_SRC_ENTRY,       /* a GRAFT_ENTRY() site: binary + entry name in symbol */
    /* Syscall kinds last: readers test kind >= GREG_LINK_SYS_ENTER. */
    GREG_LINK_SYS_ENTER,       /* tracepoint/syscalls/sys_enter_* (nr) or all (nr -1) */
    GREG_LINK_SYS_EXIT,
    GREG_LINK_RAW_SYS_ENTER,   /* raw_tracepoint/sys_enter */
    GREG_LINK_RAW_SYS_EXIT,
};

/* A host function or global a program names (__ksym), bound by the agent
 * to this name's address in the target. */
enum greg_extern_kind { GREG_EXTERN_FUNC = 1, GREG_EXTERN_VAR = 2 };

struct greg_extern {
    char name[GREG_EXTERN_NAME];
    uint32_t kind;             /* enum greg_extern_kind */
};

struct greg_prog {
    uint32_t id;               /* 0: free slot */
    uint32_t type;             /* the loader's enum gprog_type */
    char name[GREG_NAME_MAX];
    char section[128];
    char insn_shm[GREG_NAME_MAX];  /* shm object holding n_insns struct bpf_insn */
    uint32_t n_insns;
    uint32_t n_maps;
    uint32_t map_ids[GREG_PROG_MAPS];  /* LD_IMM64 MAP_IDX i refers to map_ids[i] */
    /* CALL KFUNC imm i and LD_IMM64 BTF_ID imm i refer to externs[i] (the
     * loader's extern index). Only programs verified under an EIM class
     * have any. */
    uint32_t n_externs;
    struct greg_extern externs[GREG_PROG_EXTERNS];
    int32_t owner_pid;         /* the loader that registered it */
    uint64_t load_time_ns;
    /* gver_policy_tag() of the policy it was verified under (0: unknown).
     * Tail calls only go between programs with equal tags. */
    uint64_t policy_tag;
};

struct greg_map {
    uint32_t id;
    uint32_t pad;
    char name[GREG_NAME_MAX];
    char shm[GREG_NAME_MAX];   /* gmap_open() name */
    struct gmap_def def;
    int32_t owner_pid;
};

struct greg_link {
    uint32_t id;
    uint32_t prog_id;
    uint32_t kind;             /* enum greg_link_kind */
    int32_t pid;               /* target process, 0 = every agent of this registry */
    char binary[GREG_PATH_MAX];/* empty = the main executable */
    char symbol[128];
    uint64_t offset;
    int32_t syscall_nr;        /* syscall links: -1 = all */
    int32_t owner_pid;
    uint64_t cookie;
};

/* An agent's view of itself, written by the agent. */
/* RUNNING: hooks applied. DETACHING: `graft detach` asked the agent to
 * remove them. DETACHED: none installed, the agent idles until `graft attach`
 * makes it RUNNING again (a library cannot be injected twice). GONE: exited. */
enum greg_proc_state { GREG_PROC_RUNNING = 1, GREG_PROC_DETACHING, GREG_PROC_DETACHED, GREG_PROC_GONE };

struct greg_proc {
    int32_t pid;               /* 0: free slot */
    uint32_t state;            /* enum greg_proc_state */
    uint64_t seen_generation;  /* last registry generation the agent applied */
    uint32_t links_installed;
    uint32_t links_failed;
    char comm[16];
    char message[256];         /* last error or notice, e.g. "isolation: off" */
};

struct greg;                   /* a process's handle on the registry */

/* Open (creating if needed) the registry named by $GRAFT_REGISTRY or the
 * per-user default. Refuses a registry not owned by this uid or root. */
int greg_open(struct greg **out, struct graft_err *err);
int greg_open_named(const char *shm_name, int create, struct greg **out,
                    struct graft_err *err);
void greg_close(struct greg *reg);
const char *greg_name(const struct greg *reg);
const char *greg_default_name(char *buf, size_t len);   /* honours $GRAFT_REGISTRY */

/* Generation: bumped by every mutation. greg_wait blocks until it differs
 * from seen, or timeout_ms passes (-1: forever); returns the current one. */
uint64_t greg_generation(const struct greg *reg);
uint64_t greg_wait(struct greg *reg, uint64_t seen, int timeout_ms);

/* Mutations. Each returns the new record's id (> 0) or a negative errno. */
int greg_add_map(struct greg *reg, const char *name, const char *shm,
                 const struct gmap_def *def, struct graft_err *err);
int greg_add_prog(struct greg *reg, const struct greg_prog *tmpl,
                  const struct bpf_insn *insns, struct graft_err *err);
int greg_add_link(struct greg *reg, const struct greg_link *tmpl,
                  struct graft_err *err);
int greg_remove_link(struct greg *reg, uint32_t id);
int greg_remove_prog(struct greg *reg, uint32_t id);   /* and its links */
int greg_remove_map(struct greg *reg, uint32_t id);
/* Remove everything that owner_pid registered (a loader exiting). */
int greg_remove_owned_by(struct greg *reg, pid_t owner_pid);
/* Every link, program and map (and their shm objects); returns how many. */
int greg_remove_all(struct greg *reg);

/* Agents. */
int greg_proc_register(struct greg *reg, pid_t pid, const char *comm,
                       struct greg_proc **out);
void greg_proc_set(struct greg *reg, struct greg_proc *proc, uint32_t state,
                   uint64_t seen, uint32_t installed, uint32_t failed,
                   const char *message);
int greg_request_detach(struct greg *reg, pid_t pid);   /* -ESRCH if no agent */
/* A DETACHED agent becomes RUNNING again. -ESRCH if pid has no agent,
 * -EALREADY if it is not detached. */
int greg_request_attach(struct greg *reg, pid_t pid);
/* The state of pid's agent (enum greg_proc_state), or 0 if it has none. */
int greg_proc_state(struct greg *reg, pid_t pid);

/* Snapshots for readers (agents, graft list). The copies are consistent with
 * one generation. Free with free(). */
struct greg_snapshot {
    uint64_t generation;
    struct greg_prog *progs; uint32_t n_progs;
    struct greg_map *maps;   uint32_t n_maps;
    struct greg_link *links; uint32_t n_links;
    struct greg_proc *procs; uint32_t n_procs;
};
int greg_snapshot(struct greg *reg, struct greg_snapshot *snap);
void greg_snapshot_free(struct greg_snapshot *snap);

const struct greg_map *greg_snapshot_map(const struct greg_snapshot *snap, uint32_t id);
const struct greg_map *greg_snapshot_map_by_name(const struct greg_snapshot *snap, const char *name);
const struct greg_prog *greg_snapshot_prog(const struct greg_snapshot *snap, uint32_t id);

/* A program's instructions, copied out of its shm object (malloc'd). */
int greg_prog_insns(const struct greg_prog *prog, struct bpf_insn **out,
                    struct graft_err *err);

const char *greg_link_kind_name(uint32_t kind);

#endif
