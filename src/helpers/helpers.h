/*
 * helpers.h - the helper functions eBPF programs call, with the kernel's
 * numbers, and the prototype of each one that the verifier checks calls
 * against.
 *
 * A helper is a plain C function taking five 64-bit arguments. Helpers that
 * need to know which program or hook is running (tail_call, get_func_ip,
 * get_attach_cookie, override_return, get_func_arg/ret, get_stack) read the
 * per-thread run state that the runtime sets around each invocation
 * (struct ghelper_run).
 *
 * Conventions every caller relies on:
 *  - A map argument (GARG_CONST_MAP_PTR) is the `struct gmap *` itself: the
 *    loader's resolve_ld_imm64 turns a BPF_PSEUDO_MAP_FD load into the
 *    handle's address, and map helpers pass it straight to maps.h.
 *  - Helpers that read or write arbitrary addresses (probe_read*,
 *    probe_write_user, %s in trace_printk/snprintf, get_stack) never crash
 *    the host: a bad address gives -EFAULT. They install a SIGSEGV/SIGBUS
 *    handler on first use that only acts on faults inside graft's own copy
 *    routine and passes every other fault to the handler it replaced.
 *  - Callbacks (bpf_loop, for_each_map_elem) are run through the invoker set
 *    with ghelper_set_callback_invoker(); the VM layer provides it.
 *  - Errors are the kernel's negative errno values, returned in r0.
 */
#ifndef GRAFT_HELPERS_HELPERS_H
#define GRAFT_HELPERS_HELPERS_H

#include <signal.h>
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
    GARG_PTR_TO_UNINIT_MAP_VALUE, /* writable memory of the map's value_size,
                                   * may be uninitialised (map_pop/peek_elem) */
    /* Kernel-only socket arguments (graft verifies kernel programs that
     * pass sockets; it never runs them): see src/verifier/sock.c. */
    GARG_PTR_TO_SOCK_COMMON,   /* a socket of any kind, not NULL (ARG_PTR_TO_SOCK_COMMON) */
    GARG_PTR_TO_BTF_SOCK_COMMON, /* the same, or a BTF socket (ARG_PTR_TO_BTF_ID_SOCK_COMMON) */
    GARG_PTR_TO_SOCKET_OR_NULL,  /* a full socket or NULL */
    GARG_PTR_TO_MAP_VALUE_OR_NULL, /* the map's value_size of readable memory, or NULL */
    GARG_PTR_TO_CTX_OR_NULL,   /* the unmodified context or NULL (get_netns_cookie) */
    GARG_PTR_TO_U32,           /* initialised 4 bytes, aligned, read and written (kernel helpers
                                * only: check_mtu) */
    GARG_PTR_TO_KERNEL_TASK,   /* a trusted struct task_struct pointer (kernel helpers only) */
};

/* Return kinds, after the kernel's enum bpf_return_type. */
enum gret_kind {
    GRET_INTEGER = 0,
    GRET_VOID,
    GRET_MAP_VALUE_OR_NULL,    /* pointer to a value of the map in arg 1 */
    GRET_ALLOC_MEM_OR_NULL,    /* ringbuf reserve: size from the CONST_ALLOC_SIZE arg */
    GRET_TASK_IMAGE,           /* get_current_task_btf: read-only memory of the task image's
                                * size (util/task_layout.h), never NULL */
    /* kernel-only socket results (src/verifier/sock.c) */
    GRET_SOCKET_OR_NULL,       /* struct bpf_sock * */
    GRET_SOCK_COMMON_OR_NULL,  /* struct bpf_sock (common fields only) * */
    GRET_TCP_SOCK_OR_NULL,     /* struct bpf_tcp_sock * */
    GRET_BTF_SOCK_OR_NULL,     /* a BTF-typed kernel socket (skc_to_*): passed on, never read */
    GRET_MAP_VALUE,            /* a value of the map in arg 1, never NULL (get_local_storage) */
    GRET_KERNEL_TASK,          /* the kernel's get_current_task_btf (kernel programs verified
                                * offline only): a trusted struct task_struct pointer */
};

#define GHELPER_F_ACQUIRE     0x1  /* returns a resource that must be released */
#define GHELPER_F_RELEASE     0x2  /* releases the GARG_PTR_TO_ALLOC_MEM argument */
#define GHELPER_F_NORETURN_OK 0x4  /* may not return on success (tail_call) */
#define GHELPER_F_PTR_CAST    0x8  /* returns its socket argument seen as another type: the
                                    * result holds the argument's reference (sk_fullsock) */
#define GHELPER_F_FP_FREE     0x10 /* leaves every vector and x87 register as it found it:
                                    * compiled with -mgeneral-regs-only, ordinary C only
                                    * through gfp_call (util/fpsafe.h); checked on the built
                                    * library by tests/helpers/fp_free_check.py */

struct ghelper_proto {
    const char *name;          /* "map_lookup_elem", without the bpf_ prefix */
    uint32_t id;               /* the kernel's helper number */
    gvm_helper_fn fn;
    enum gret_kind ret;
    enum garg_kind args[5];
    uint32_t flags;            /* GHELPER_F_* */
};

/* Registers at a probe, laid out like the kernel's x86-64 struct pt_regs so
 * that BPF programs built with PT_REGS_PARM1() etc. read the right offsets.
 * Arguments (SysV): di, si, dx, cx, r8, r9; return value: ax. */
struct graft_pt_regs {
    uint64_t r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
    uint64_t ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* This thread is exiting with task->exit_code = code (the kernel's
 * encoding): the task image bpf_get_current_task returns says so. */
void ghelper_task_set_exit_code(int32_t code);
/* A small file (/proc) into buf, NUL-terminated, without allocating (safe
 * in a hooked syscall): its length, or -1 if unreadable or empty. */
int ghelper_read_small(const char *path, char *buf, size_t len);

/* bpf_get_current_comm's per-thread cache of comm. It is exact (a rename
 * invalidates it at once) for renames graft observes and bounded by the
 * agent's ticks for the others, while both watchers are on:
 * GHELPER_COMM_SYSCALLS - the syscall hooks route every prctl of the
 * process through their dispatcher, which calls ghelper_comm_renamed()
 * after a PR_SET_NAME; GHELPER_COMM_TICKS - a thread calls
 * ghelper_comm_tick() at least every 100 ms (the agent's thread). A forked
 * child has no such thread: the ticker's owner turns GHELPER_COMM_TICKS off
 * there (the agent in its pthread_atfork child handler, before it starts
 * the child's thread, which turns it on again). Otherwise the cache is at
 * most 100 ms old by the coarse clock. Every change of either makes all
 * threads re-read. */
#define GHELPER_COMM_SYSCALLS 1u
#define GHELPER_COMM_TICKS    2u
void ghelper_comm_watch(unsigned what, int on);
void ghelper_comm_tick(void);
/* This thread renamed itself (prctl PR_SET_NAME returned 0). */
void ghelper_comm_renamed(void);

/* The prototype of helper id, or NULL if graft has no such helper. */
const struct ghelper_proto *ghelper_proto(uint32_t id);
/* Look up by name ("ktime_get_ns"), for EIM helper groups and messages. */
const struct ghelper_proto *ghelper_by_name(const char *name);

/* Whether JIT-compiled code of insns[0..n) leaves the vector and x87
 * registers alone: the JIT emits none of those instructions, so only its
 * calls matter; 1 if every call is a bpf-to-bpf call or one of a helper
 * marked GHELPER_F_FP_FREE (not tail calls: the target may call anything;
 * not kfuncs or callx). The syscall hooks then need not save xmm0-15
 * around the program (gsys_attach_opts.handler_keeps_fp). */
int ghelper_prog_fp_free(const struct bpf_insn *insns, uint32_t n);

/* The calling thread is a new task that glibc's fork handlers never saw
 * (the child of a raw clone or vfork), or one that ran on its TLS has just
 * ended (vfork, clone(CLONE_VM) without CLONE_SETTLS, as posix_spawn
 * makes): forget the cached ids, comm and random state, so the helpers
 * read them afresh. No libc call that allocates or locks (the syscall
 * hooks call it right after clone returns, in the child too). */
void ghelper_task_forget(void);

/* A BPF_MAX_HELPER_ID-entry table for struct gvm_env.helpers. */
const gvm_helper_fn *ghelper_table(void);
/* And one for struct gvm_env.helper_inline: which helpers the JIT may
 * compute inline (bpf_get_current_pid_tgid from the thread's cached ids,
 * bpf_ktime_get_ns from the TSC line). */
const struct gvm_helper_inline *ghelper_inline_table(void);

/* Per-thread state of the invocation in progress, set by whoever runs a
 * program (runtime, hooks, tests) around each run. */
struct ghelper_run {
    void *ctx;                 /* the program's context (pt_regs for probes) */
    uint64_t func_ip;          /* bpf_get_func_ip */
    uint64_t cookie;           /* bpf_get_attach_cookie */
    int override_set;          /* bpf_override_return was called ... */
    uint64_t override_value;   /* ... with this return value */
    uint32_t tail_calls;       /* tail calls taken so far */
    /* Registers of the probed function for get_func_arg/ret/arg_cnt and
     * get_stack; NULL when the hook has none (those helpers then fail with
     * -EINVAL / -EFAULT). For uprobes ctx and regs are the same pointer. */
    const struct graft_pt_regs *regs;
    uint32_t func_nargs;       /* get_func_arg_cnt; 0 = unknown, report 6 */
    int at_return;             /* regs->ax is the return value (uretprobe) */
};
struct ghelper_run *ghelper_run_state(void);   /* this thread's */
/* The same state as a variable, for hot paths: initial-exec TLS, so it is a
 * fixed %fs offset even in the agent library (the syscall hooks' assembly
 * uses it). Not exported from shared libraries. It is this thread's state
 * unless ghelper_run_state_set() moved it. */
extern __thread struct ghelper_run ghelper_run_tls
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
/* Make rs this thread's state from now on (NULL: ghelper_run_tls again).
 * The attach layer, with isolation on, moves each thread's state into a
 * page under the extension key, so the helpers read it from there and the
 * host cannot write it; everything that fills it then runs between gates.
 * rs must outlive the thread's use of it. */
void ghelper_run_state_set(struct ghelper_run *rs);

/* Run a BPF callback (bpf_loop, for_each_map_elem): fn is the value the
 * program passed as GARG_PTR_TO_FUNC (BPF_PSEUDO_FUNC load: an instruction
 * address for the interpreter, a code address for the JIT); a1..a5 go to
 * r1..r5; returns the callback's r0. Set by the VM layer/runtime; process-
 * wide. Without one, bpf_loop and for_each_map_elem return -EOPNOTSUPP. */
typedef uint64_t (*ghelper_callback_invoker)(uint64_t fn, uint64_t a1,
                                             uint64_t a2, uint64_t a3,
                                             uint64_t a4, uint64_t a5);
void ghelper_set_callback_invoker(ghelper_callback_invoker invoke);

/* Install the fault handler behind the safe memory helpers now rather than
 * on first use (e.g. at attach time, before the host runs on), or re-install
 * it on top of a handler the host set since. Idempotent; 0 or -errno. */
int ghelper_safe_mem_init(struct graft_err *err);

/* A SIGSEGV that is not one of the helpers' own guarded copies is offered
 * to filter (if set) before it goes on to the host's handler: filter returns
 * 1 when it dealt with the fault and the interrupted code may resume. The
 * attach layer sets isolation's giso_xstack_fault here when extensions run
 * on their own stacks. It runs in the signal handler: async-signal-safe
 * only. NULL removes it. */
typedef int (*ghelper_fault_filter)(const siginfo_t *si, void *uc);
void ghelper_safe_mem_set_filter(ghelper_fault_filter filter);

/* Where bpf_ktime_get_ns reads time from, one line for status messages:
 * "ktime: tsc (...)" or "ktime: clock_gettime (reason)" (see h_time.c). */
const char *ghelper_ktime_source(void);
/* Decide it now (reads sysfs and CPUID; idempotent): the runtime calls this
 * when it creates a program, so that no helper call opens files. Without
 * it, the first bpf_ktime_get_ns call decides. */
void ghelper_time_init(void);

/* Where bpf_trace_printk output goes: a callback, or stderr when NULL. */
void ghelper_set_trace_sink(void (*sink)(const char *line, void *arg), void *arg);

#endif
