/*
 * compat_int.h - what the files of libgraft-compat.so share.
 *
 * Every bpf object the tool holds (map, program, BTF, link, perf event) is a
 * struct cobj found by its file descriptor. The descriptor is a real
 * eventfd, so close/dup/epoll work on it; the library signals it when a ring
 * or perf buffer has data so that epoll_wait wakes. All tables are guarded by
 * one recursive lock (graft code called under it may itself call the
 * interposed close/mmap).
 *
 * This header must not include graft's vm/isa.h (its struct bpf_insn clashes
 * with <linux/bpf.h>); glue.c is the only file that talks to the verifier and
 * the registry.
 */
#ifndef GRAFT_COMPAT_INT_H
#define GRAFT_COMPAT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "maps/maps.h"

#define GC_MAX_FDS      16384
#define GC_PROG_MAPS    64
/* Data pages per CPU a perf event array reserves (a tool's buffer may be
 * any power of 2 up to it): 1 MiB, past libbpf-tools' 16-64 and bpftrace's 64. */
#define GC_PERF_RESERVE_PAGES 256

enum cobj_kind { COBJ_MAP = 1, COBJ_PROG, COBJ_BTF, COBJ_LINK, COBJ_PERF };
enum cperf_kind { CPERF_UPROBE = 1, CPERF_URETPROBE, CPERF_TP, CPERF_OUTPUT, CPERF_TIMER,
                  CPERF_SAMPLE /* a CPU-clock sampler run in the targets (profile) */ };
/* Link kinds, mapped to the registry's in glue.c. */
enum clink_kind { CLINK_UPROBE = 1, CLINK_URETPROBE, CLINK_SYS_ENTER, CLINK_SYS_EXIT,
                  CLINK_RAW_SYS_ENTER, CLINK_RAW_SYS_EXIT,
                  CLINK_PERF_SAMPLE, CLINK_PROC_EXIT, CLINK_SIGNAL_GENERATE };

struct cobj {
    int fd;                    /* one descriptor naming it; -1 once all are closed (it may live on) */
    uint32_t fd_refs;          /* descriptors of this process naming it (dup, dup2, fcntl F_DUPFD...) */
    pid_t creator;             /* the process that made it: only it unlinks a map or detaches a link */
    int kind;                  /* enum cobj_kind */
    uint32_t id;               /* what OBJ_GET_INFO_BY_FD reports */
    char name[64];
    uint32_t refs;             /* maps: programs that use it */
    /* map */
    struct gmap *map;
    struct gmap_def def;
    uint32_t kernel_type;      /* the map type the tool asked for, when graft backs it by another (def.type) */
    uint32_t reg_id;           /* registry id once registered (maps, progs) */
    int frozen;
    int mapped_rw;             /* a writable mmap was handed out: MAP_FREEZE is EBUSY */
    /* program */
    uint32_t prog_type, gtype; /* kernel's enum bpf_prog_type, loader's enum gprog_type */
    uint64_t *insns;           /* LD_IMM64 rewritten to MAP_IDX/MAP_IDX_VALUE */
    uint32_t n_insns;
    struct cobj *maps[GC_PROG_MAPS];
    uint32_t n_maps;
    /* program: gver_policy_tag() it was last verified under; prog array:
     * the tag of the programs it is bound to (0: none yet), as the kernel
     * binds a prog array to the first program type that uses it */
    uint64_t policy_tag;
    /* link (COBJ_LINK, or a perf event given a program by ioctl) */
    uint32_t link_reg_id;
    uint32_t link_prog_id;
    uint32_t link_type;        /* kernel's enum bpf_link_type */
    /* perf event */
    int perf_kind;             /* enum cperf_kind */
    char binary[256];
    char symbol[128];
    uint64_t offset;
    int pid;                   /* 0: every agent */
    int cpu;
    int32_t syscall_nr;
    int sys_exit;
    int tp_event;              /* CLINK_PROC_EXIT / CLINK_SIGNAL_GENERATE: a sched/signal tracepoint */
    char tp_name[96];
    void *addr;                /* perf output: where the tool mapped it */
    size_t len;
    struct cobj *bound_map;    /* perf output: the PERF_EVENT_ARRAY holding it */
    uint32_t bound_idx;
    /* epoll wake-ups */
    int watched, signaled;
};

/* interpose.c */
void gc_lock(void);
void gc_unlock(void);
struct cobj *gc_obj(int fd);                     /* under the lock */
struct cobj *gc_obj_new(int kind);               /* fd set, errno on NULL */
void gc_watch(struct cobj *o);                   /* wake epoll for this buffer */
long gc_real_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
int (*gc_real_close(void))(int);
void gc_fd_drop(int fd);                         /* under the lock */
void gc_fd_dup(int oldfd, int newfd);            /* under the lock */
void gc_fork_handlers(void);

/* fdtrack.c: dup, dup2, dup3, fcntl(F_DUPFD*), close_range, closefrom and
 * their syscall() numbers keep the table right. 1 if nr is one (*ret set). */
int gc_fd_syscall(long nr, const long a[6], long *ret);
/* An exec'd image of a process that registered objects removes them: the
 * descriptors naming them are gone (libbpf makes them all O_CLOEXEC). */
void gc_exec_cleanup(void);
void gc_registry_mark_owner(void);

/* trap.c: bpf(2) made without libc's syscall() (inline asm, a static
 * libc) traps (seccomp) into graft too, or the library says it cannot. */
void gc_trap_direct_bpf(void);
void gc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print once per distinct message (unsupported features a probe may hit). */
void gc_warn_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int gc_debug;
uint32_t gc_next_id(void);

/* btf_cmds.c: the read-only BTF commands (BTF_GET_NEXT_ID, BTF_GET_FD_BY_ID,
 * OBJ_GET_INFO_BY_FD on a descriptor that is no graft object) go to the
 * kernel through a gate page the seccomp filter lets pass. */
void gc_kernel_gate_init(void);
uint64_t gc_kernel_gate_ip(void);
long gc_btf_cmd(int cmd, void *uattr, unsigned int size);

/* timers.c: software cpu-clock/task-clock events with a sample period run
 * their program on a thread of the tool's (bpftrace's interval probes). */
int gc_timer_open(const void *attr, int pid, int cpu, long *ret);   /* 1 if handled */
/* A sampling event (CPERF_SAMPLE, period mode, every process) is attached:
 * the same program's tool-side timer on CPU 0 at that period was the first
 * of a per-CPU set (a profile, not an interval) and becomes a sampler too. */
void gc_timer_to_sampler(const struct cobj *sample, struct cobj *prog);
int gc_timer_attach(struct cobj *perf, struct cobj *prog, struct cobj *link);
int gc_timer_ioctl(struct cobj *perf, unsigned long req);
void gc_timer_release(struct cobj *o);
/* BPF_PROG_TEST_RUN of a raw tracepoint program (bpftrace's BEGIN/END), run here; 0 or -errno. */
int gc_prog_test_run(void *uattr, unsigned int size);

/* semaphore.c: a uprobe's USDT semaphore, incremented in the target
 * through /proc/PID/mem while the event (owner) lives. 0 or -errno. */
int gc_sem_get(const struct cobj *owner, int pid, const char *path, uint64_t ref_off);
void gc_sem_release(const struct cobj *owner);

/* tracefs.c: uprobe_events writes become graft events (never the kernel's);
 * the ids handed out are past any real tracepoint id. 1 if id is one. */
int gc_tracefs_event(uint64_t id, char *path, size_t pathlen, uint64_t *offset, uint64_t *ref_ctr, int *retprobe);
void gc_tracefs_close(int fd);

/* perf.c: fill a uprobe event (path + file offset, semaphore, pid) */
int gc_perf_uprobe(struct cobj *o, const char *path, uint64_t offset, uint64_t ref_ctr, int retprobe);

/* bpf.c */
long gc_bpf(int cmd, void *attr, unsigned int size);
int gc_bind_perf(struct cobj *map, uint32_t idx, struct cobj *perf);
int gc_perf_set_bpf(struct cobj *perf, int prog_fd);
void gc_cleanup(void);
size_t gc_map_value_bytes(const struct cobj *m);   /* a lookup's bytes (per-CPU: all CPUs) */

/* batch.c: BPF_MAP_{LOOKUP,LOOKUP_AND_DELETE,UPDATE,DELETE}_BATCH on map m
 * (attr a, under the lock); 0 or -errno, a->batch.count = elements done. */
union bpf_attr;
long gc_map_batch(int cmd, union bpf_attr *a, struct cobj *m);

/* perf.c */
int gc_perf_open(void *attr, int pid, int cpu, int group_fd, unsigned long flags, long *ret);
int gc_perf_ioctl(struct cobj *o, unsigned long req, unsigned long arg);
void *gc_mmap(struct cobj *o, void *addr, size_t len, int prot, int flags, off_t off);
/* Map a perf output event's buffer onto the map's index (both known). */
int gc_perf_map_now(struct cobj *perf);
/* The link kind for prog on perf, or -errno (wrong program type). */
int gc_perf_link_kind(const struct cobj *perf, const struct cobj *prog);

/* glue.c: the verifier and the registry. Return 0 or -errno. */
int gc_verify(struct cobj *prog, int sys_exit, int log_level, char *log, size_t log_len);
int gc_link_add(struct cobj *prog, int kind, int pid, const char *binary, const char *symbol,
                uint64_t offset, int32_t syscall_nr, uint64_t cookie, uint32_t *reg_id);
void gc_link_remove(uint32_t reg_id);
int gc_syscall_nr(const char *name);
/* The registry id of prog, registering it (and its maps) if needed: what a
 * prog array slot holds for the agents, in place of the tool's prog fd. */
int gc_prog_reg_id(struct cobj *prog, uint32_t *id);
void gc_registry_cleanup(void);   /* remove what this process registered */
/* "<registry>.m.": the name prefix of the maps the tool creates, so that
 * `graft unload --all` finds those a killed tool never registered. */
const char *gc_map_prefix(char *buf, size_t len);

#endif
