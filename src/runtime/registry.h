/*
 * registry.h - the control plane every graft process shares: which programs
 * are loaded, which maps exist, which links attach a program to an entry of
 * which process, and which agents are asked to idle.
 *
 * The registry is one POSIX shared-memory object per user (name from
 * $GRAFT_REGISTRY, default "/graft.<uid>.registry", mode 0600). Loaders and
 * the CLI write it; agents inside target processes only read it: they map
 * it read-only, so nothing a target does to its own memory reaches it. Every
 * change bumps a generation number that agents wait on with a futex, so a
 * program loaded after a target started is picked up at once.
 *
 * Every other object of a registry is named "<registry>.<kind>.<...>":
 * maps "m" and program stores "p" with a random tail, so no stranger can
 * create one first; `graft unload --all` finds them all by that prefix even
 * when the records naming them are damaged. Objects are refused unless
 * this user or root created them and no one else may write them.
 *
 * Each agent reports its state (hooks installed, last message) in its own
 * object, "a.<pid>" (a random tail if someone else took that name), that
 * only it writes; readers validate it, so a broken one spoils only that
 * process's line of `graft list`.
 *
 * Records are never moved; an id is never reused within a registry. A
 * program's instructions (and the verifier's facts for them) live in their
 * own object, authenticated by a SHA-256 in the record: an agent compiles
 * only bytes the loader wrote.
 * Writers take a lock word holding the writer's pid (a dead or impossible
 * owner is taken over); readers copy without locking, under a sequence
 * counter, and check every record they copy, so no content of the object
 * can crash, hang or mislead them.
 */
#ifndef GRAFT_RUNTIME_REGISTRY_H
#define GRAFT_RUNTIME_REGISTRY_H

#include <stdint.h>
#include <sys/types.h>

#include "maps/maps.h"
#include "util/err.h"
#include "util/sha256.h"
#include "vm/isa.h"
#include "vm/vm.h"

#define GREG_NAME_MAX   64
#define GREG_PATH_MAX   256
#define GREG_PROG_MAPS  64       /* maps one program may reference */
#define GREG_PROG_EXTERNS 32     /* host functions/globals one program may name */
#define GREG_EXTERN_NAME  64

#define GREG_MAX_PROGS  1024
#define GREG_MAX_MAPS   1024
#define GREG_MAX_LINKS  4096
#define GREG_MAX_REQUESTS 1024
#define GREG_MAX_INSNS  (1u << 20)
/* Longest registry name: its objects' names add up to 27 bytes and must fit
 * GREG_NAME_MAX. */
#define GREG_REG_NAME_MAX 36

/* What a link attaches to. */
enum greg_link_kind {
    GREG_LINK_UPROBE = 1,      /* function entry */
    GREG_LINK_URETPROBE,       /* function return */
    GREG_LINK_OVERRIDE,        /* entry; the program may skip the function */
    GREG_LINK_REPLACE,         /* the program is the function */
    GREG_LINK_SRC_ENTRY,       /* a GRAFT_ENTRY() site: binary + entry name in symbol */
    /* Syscall kinds: readers test kind >= GREG_LINK_SYS_ENTER && <= RAW_SYS_EXIT. */
    GREG_LINK_SYS_ENTER,       /* tracepoint/syscalls/sys_enter_* (nr) or all (nr -1) */
    GREG_LINK_SYS_EXIT,
    GREG_LINK_RAW_SYS_ENTER,   /* raw_tracepoint/sys_enter */
    GREG_LINK_RAW_SYS_EXIT,
    /* Not syscall kinds (readers test the range SYS_ENTER..RAW_SYS_EXIT): */
    GREG_LINK_PERF_SAMPLE,     /* perf_event program on a CPU clock: offset = period ns, syscall_nr = cpu (-1 any) */
    GREG_LINK_PROC_EXIT,       /* tracepoint sched/sched_process_exit */
    GREG_LINK_SIGNAL_GENERATE, /* tracepoint signal/signal_generate */
};
#define GREG_LINK_LAST GREG_LINK_SIGNAL_GENERATE

/* A host function or global a program names (__ksym), bound by the agent
 * to this name's address in the target. */
enum greg_extern_kind { GREG_EXTERN_FUNC = 1, GREG_EXTERN_VAR = 2 };

struct greg_extern {
    char name[GREG_EXTERN_NAME];
    uint32_t kind;             /* enum greg_extern_kind */
    /* Functions: bit i = argument i points to memory whose size is
     * argument i+1 (the EIM's `size:`); with isolation the agent's host-call
     * thunk copies those bytes for the host (giso_wrap_host_call_mem). */
    uint32_t mem_args;
};

struct greg_prog {
    uint32_t id;               /* 0: free slot */
    uint32_t type;             /* the loader's enum gprog_type */
    char name[GREG_NAME_MAX];
    char section[128];
    char insn_shm[GREG_NAME_MAX];  /* shm object holding n_insns struct bpf_insn,
                                    * then n_facts struct gvm_insn_fact */
    uint32_t n_insns;
    uint8_t insn_sha256[GRAFT_SHA256_LEN];  /* of the whole store: insns and facts */
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
    /* 0, or n_insns: the verifier's facts for these very instructions
     * (gver_result.facts), which the agent's JIT may use (docs/jit.md). */
    uint32_t n_facts;
    uint32_t pad;
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

/* `graft detach PID` asks one agent (pid and the nonce of its status
 * object, so a recycled pid is not meant) to remove its hooks and idle;
 * `graft attach PID` withdraws the request. Written by the CLI. */
struct greg_request {
    int32_t pid;               /* 0: free slot */
    uint32_t pad;
    uint64_t nonce;
};

/* An agent's view of itself, in the agent's own status object. RUNNING:
 * hooks applied. DETACHING: asked to detach, not done yet (derived by
 * readers, never stored). DETACHED: none installed, the agent idles until
 * `graft attach` makes it RUNNING again (a library cannot be injected
 * twice). GONE: exited. */
enum greg_proc_state { GREG_PROC_RUNNING = 1, GREG_PROC_DETACHING, GREG_PROC_DETACHED, GREG_PROC_GONE };

struct greg_proc {
    int32_t pid;
    uint32_t state;            /* enum greg_proc_state */
    uint64_t nonce;            /* random, names this agent's status object */
    uint64_t start_time;       /* the process's start (clock ticks since boot):
                                * an object of a dead process whose pid was
                                * reused does not match */
    uint64_t seen_generation;  /* last registry generation the agent applied */
    uint32_t links_installed;
    uint32_t links_failed;
    uint32_t facts_progs;      /* programs it compiled that the verifier's facts changed */
    uint32_t facts_rewritten;  /* instructions those facts rewrote, summed */
    char comm[16];
    char message[256];         /* last error or notice, e.g. "isolation: off" */
};

struct greg;                   /* a process's handle on the registry */
struct greg_self;              /* an agent's handle on its status object */

/* Open (creating if needed) the registry named by $GRAFT_REGISTRY or the
 * per-user default, for writing. */
int greg_open(struct greg **out, struct graft_err *err);
/* flags: GREG_OPEN_CREATE creates it if missing; GREG_OPEN_READONLY maps it
 * read-only (agents): mutations then fail with -EROFS. Refuses an object
 * not owned by this user or root, or writable by others, and a damaged one
 * (-EPROTO, with a message saying that `graft unload --all` removes it). */
#define GREG_OPEN_CREATE   1
#define GREG_OPEN_READONLY 2
int greg_open_named(const char *shm_name, int flags, struct greg **out,
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
/* The same with the verifier's facts for insns (tmpl->n_facts of them:
 * 0 or tmpl->n_insns), stored with them under the one SHA-256. Only the
 * verifier's result for exactly these instructions may be given. */
int greg_add_prog_facts(struct greg *reg, const struct greg_prog *tmpl,
                        const struct bpf_insn *insns, const struct gvm_insn_fact *facts,
                        struct graft_err *err);
int greg_add_link(struct greg *reg, const struct greg_link *tmpl,
                  struct graft_err *err);
int greg_remove_link(struct greg *reg, uint32_t id);
int greg_remove_prog(struct greg *reg, uint32_t id);   /* and its links */
int greg_remove_map(struct greg *reg, uint32_t id);
/* Remove everything that owner_pid registered (a loader exiting). */
int greg_remove_owned_by(struct greg *reg, pid_t owner_pid);
/* Every link, program and map (and their shm objects), and every other
 * object named under the registry that no live agent owns; returns how
 * many records were removed. */
int greg_remove_all(struct greg *reg);
/* Recovery for a registry that cannot be opened (damaged, or its lock
 * never freed): unlink every object named under shm_name that this user
 * owns, the registry itself included. Agents keep what they mapped until
 * they exit. Returns how many objects were removed, or a negative errno. */
int greg_destroy(const char *shm_name, struct graft_err *err);

/* Agents: each writes its own status object (never the registry). */
int greg_self_register(struct greg *reg, pid_t pid, const char *comm,
                       struct greg_self **out, struct graft_err *err);
void greg_self_set(struct greg_self *self, uint32_t state, uint64_t seen,
                   uint32_t installed, uint32_t failed, const char *message);
/* What the JIT made of the verifier's facts, for the next greg_self_set. */
void greg_self_set_facts(struct greg_self *self, uint32_t progs, uint32_t rewritten);
/* The process is going: its object is removed; later sets are dropped
 * (another thread may still report). The handle stays valid. */
void greg_self_gone(struct greg_self *self);
/* Free the handle (a forked child's copy of its parent's: the object is
 * kept). */
void greg_self_close(struct greg_self *self);
uint64_t greg_self_nonce(const struct greg_self *self);

int greg_request_detach(struct greg *reg, pid_t pid);   /* -ESRCH if no running agent */
/* A DETACHED agent becomes RUNNING again. -ESRCH if pid has no agent,
 * -EALREADY if it is not detached. */
int greg_request_attach(struct greg *reg, pid_t pid);
/* The state of pid's agent (enum greg_proc_state), or 0 if it has none. */
int greg_proc_state(struct greg *reg, pid_t pid);

/* Snapshots for readers (agents, graft list). The copies are consistent
 * with one generation and hold only records that passed the checks
 * (strings terminated, counts and kinds in range, object names under this
 * registry); n_damaged counts the ones left out. Free with free(). */
struct greg_snapshot {
    uint64_t generation;
    struct greg_prog *progs; uint32_t n_progs;
    struct greg_map *maps;   uint32_t n_maps;
    struct greg_link *links; uint32_t n_links;
    struct greg_request *requests; uint32_t n_requests;
    uint32_t n_damaged;
};
int greg_snapshot(struct greg *reg, struct greg_snapshot *snap);
void greg_snapshot_free(struct greg_snapshot *snap);
/* Is the agent with this pid and nonce asked to idle? */
int greg_snapshot_detach_requested(const struct greg_snapshot *snap, pid_t pid, uint64_t nonce);

/* Live agents' status objects (processes that exited are left out, and
 * removed when this user owns them). A DETACH request not yet carried out
 * shows as DETACHING. n_damaged counts objects that failed the checks.
 * Free *out with free(). */
int greg_procs(struct greg *reg, struct greg_proc **out, uint32_t *n, uint32_t *n_damaged);
/* The agent of one process, as greg_procs reports it: 1 and *out filled,
 * 0 if it has none, or a negative errno. Looks at the agent's usual object
 * name first; lists /dev/shm (slow) only if that is someone else's or
 * damaged, or, with list_if_missing, absent (an agent whose usual name was
 * taken when it started uses another). */
int greg_proc_find(struct greg *reg, pid_t pid, struct greg_proc *out, int list_if_missing);
/* Agents apply the registry asynchronously. Wait until every running agent
 * (pid 0), or pid's, reports generation gen applied, up to timeout_ms:
 * returns how many still have not (0: done; a pid without an agent counts
 * as done, its links apply when one starts), or a negative errno. What
 * "loaded" and an attach returning promise: the programs run from now on. */
int greg_wait_applied(struct greg *reg, pid_t pid, uint64_t gen, int timeout_ms);

const struct greg_map *greg_snapshot_map(const struct greg_snapshot *snap, uint32_t id);
const struct greg_map *greg_snapshot_map_by_name(const struct greg_snapshot *snap, const char *name);
const struct greg_prog *greg_snapshot_prog(const struct greg_snapshot *snap, uint32_t id);

/* A program's instructions, copied out of its store (malloc'd) and checked
 * against the record: the store must be this user's (or root's), hold
 * exactly n_insns instructions and hash to insn_sha256. */
int greg_prog_insns(const struct greg *reg, const struct greg_prog *prog,
                    struct bpf_insn **out, struct graft_err *err);
/* The same, and the facts stored with them (checked by the same hash):
 * *facts malloc'd with prog->n_facts entries, or NULL when it has none. */
int greg_prog_code(const struct greg *reg, const struct greg_prog *prog, struct bpf_insn **insns,
                   struct gvm_insn_fact **facts, struct graft_err *err);

/* The prefix gmap_create_named() gets for this registry's maps. */
const char *greg_map_prefix(const struct greg *reg, char *buf, size_t len);

const char *greg_link_kind_name(uint32_t kind);

#endif
