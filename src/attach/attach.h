/*
 * attach.h - hook functions of the running process (and, in the section
 * marked below, its system calls).
 *
 * Function hooks are installed by rewriting the first instructions of the
 * target with a 5-byte `jmp rel32` to a per-address trampoline allocated
 * within +-2 GB. The trampoline saves the registers into a struct
 * graft_pt_regs on the stack, sets ghelper_run_state() (ctx, func_ip,
 * cookie, override flag) and calls each handler directly - a handler has
 * the signature of a JIT-compiled program (gvm_native_fn), so
 * gvm_prog_native() output can be passed as is. The displaced instructions
 * are relocated into the trampoline (Zydis decoding; RIP-relative operands,
 * short and conditional branches and calls are retargeted).
 *
 * When the entry cannot be rewritten (function shorter than the jump, a
 * branch into the patched bytes, an instruction that cannot be relocated)
 * the hook falls back to a permanent int3 handled by a SIGTRAP handler;
 * gattach_hook_method() tells which one is in use.
 *
 * Order: at one address the ENTRY and OVERRIDE handlers run in attach order;
 * then the REPLACE handler (at most one per address) unless an OVERRIDE
 * handler called bpf_override_return (then the first such value wins and the
 * function is skipped). RETURN handlers run when the function returns, in
 * attach order, with regs->ax holding the return value. An overridden or
 * replaced call does not run RETURN handlers.
 *
 * Return probes keep the real return address on a per-thread shadow stack
 * (depth GATTACH_SHADOW_DEPTH; deeper calls skip the return probe and are
 * counted in gattach_stats). longjmp() and C++ exceptions unwinding through
 * a probed frame leave stale entries; they are discarded when a later return
 * or entry shows that their stack slot is no longer live (entries whose slot
 * lies below the current stack pointer). A frame that is unwound by an
 * exception does not return through the trampoline, so its return handlers
 * do not run, as with kernel uretprobes. Switching stacks (makecontext,
 * coroutines) with probed frames outstanding is not supported.
 *
 * A handler that is called while another handler runs on the same thread
 * (e.g. it calls a hooked function) is skipped and counted as missed, like
 * the kernel's recursion guard.
 *
 * Patching is safe against running threads: int3 is written first, then the
 * tail of the jump, then its first byte, with a core-serialising barrier
 * between steps; a thread that hits the int3 meanwhile is redirected to the
 * trampoline. When the jump covers several instructions, threads stopped
 * between them are moved to the trampoline's copy of the same instruction
 * before the tail is written (patch_text.c); if one cannot be, the hook
 * keeps the int3 (gattach_hook_note() says why). Trampolines are kept for the life of the process and reused
 * when the same address is hooked again, so no thread can run freed code.
 * gattach_remove() returns only after no thread is still inside a handler it
 * removed, so the caller may free the program right after. Sites, handler
 * snapshots and struct ghook records are read-only memory outside
 * gattach_install()/gattach_remove() (meta_pages.c).
 */
#ifndef GRAFT_ATTACH_ATTACH_H
#define GRAFT_ATTACH_ATTACH_H

#include <signal.h>
#include <stdint.h>

#include "helpers/helpers.h"
#include "util/err.h"
#include "util/syscalls.h"

/* Hook handlers get a struct graft_pt_regs (helpers/helpers.h): the kernel
 * x86-64 pt_regs layout, 168 bytes. */

/* ---- function hooks ---------------------------------------------------- */

struct ghook;

enum ghook_kind {
    GHOOK_ENTRY = 0,     /* uprobe: run at entry, function then runs */
    GHOOK_RETURN,        /* uretprobe: run when the function returns */
    GHOOK_OVERRIDE,      /* run at entry; bpf_override_return skips the function */
    GHOOK_REPLACE,       /* the handler is the function: its r0 is returned */
};

/* Same signature as gvm_native_fn: ctx is a struct graft_pt_regs *,
 * ctx_len is sizeof(struct graft_pt_regs). The return value is ignored
 * except for GHOOK_REPLACE. */
typedef uint64_t (*ghook_handler)(void *regs_ctx, uint64_t ctx_len);

enum gattach_method {
    GATTACH_METHOD_NONE = 0,
    GATTACH_METHOD_JUMP,       /* entry rewritten with jmp rel32 */
    GATTACH_METHOD_TRAP,       /* int3 + SIGTRAP handler (slower) */
};

struct gattach_opts {
    uint64_t sz;               /* sizeof(struct gattach_opts) */
    /* Never rewrite with a jump, use the int3 fallback. */
    int force_trap;
    /* Fail instead of falling back to int3 when the jump can't be used. */
    int no_trap_fallback;
    /* Bytes of the function at addr (for the branch-into-patch scan); 0 means
     * look the symbol up in the ELF file backing addr. */
    uint64_t func_size;
    /* The handler leaves xmm/ymm registers alone: it calls no C code that
     * may use them (e.g. a JIT-compiled program that calls no helpers).
     * Lets the trampoline skip saving the float argument / return
     * registers (about 5 ns per call) and, except for OVERRIDE hooks,
     * filling ghelper_run_state(), which such a handler has no way to
     * read. Wrong when set for a handler that does clobber them: the
     * hooked function then sees corrupt float arguments. */
    int handler_preserves_fp;
    /* Weaker: the handler may call helpers (the run state is filled for
     * it) but neither it nor anything it calls changes a vector or x87
     * register: a JIT-compiled program whose every call is to a
     * GHELPER_F_FP_FREE helper (ghelper_prog_fp_free). The entry and
     * return templates then skip saving xmm0-7 / xmm0-1 (docs/hooks.md,
     * "Vector registers"). Mid-function and int3 sites save everything
     * anyway. Wrong when set for a handler that may reach ordinary C. */
    int handler_keeps_fp;
};

#define GATTACH_SHADOW_DEPTH 4096

/* Find symbol (+offset) in binary (NULL: the main executable; a path or a
 * library name such as "libc.so.6" or "libc") via .symtab, then .dynsym,
 * and the load address in /proc/self/maps. The library must be loaded.
 * symbol "": offset is a link-time address in binary (stripped code: a
 * USDT probe in a function no symbol names), which must be mapped
 * executable; gattach_install hooks such an address with int3. */
int gattach_resolve(const char *binary, const char *symbol, uint64_t offset,
                    void **addr, struct graft_err *err);
/* Same, also giving the symbol's size (0 if unknown). */
int gattach_resolve_sym(const char *binary, const char *symbol, uint64_t offset,
                        void **addr, uint64_t *size, struct graft_err *err);

/* Hook addr (a function entry, or an instruction boundary inside one). fn is
 * called with the cookie visible through bpf_get_attach_cookie. opts may be
 * NULL. An address in a mapped file that no function symbol covers (and no
 * opts->func_size) is taken as inside a function whose bounds are unknown:
 * int3 (a jump could cover a branch target), entry hooks only. */
int gattach_install(void *addr, enum ghook_kind kind, ghook_handler fn,
                    uint64_t cookie, const struct gattach_opts *opts,
                    struct ghook **out, struct graft_err *err);
/* Detach and free h. When the last hook at an address goes, the original
 * bytes are restored. */
int gattach_remove(struct ghook *h, struct graft_err *err);

/* The file backing binary (NULL: the main executable) in this process and
 * its load bias (runtime address = link-time address + bias). */
int gattach_binary_info(const char *binary, char *path, size_t path_len,
                        uint64_t *bias, struct graft_err *err);

enum gattach_method gattach_hook_method(const struct ghook *h);
const char *gattach_method_name(enum gattach_method m);
/* Why the int3 fallback was chosen for h ("" for jump hooks). */
const char *gattach_hook_note(const struct ghook *h);

/* Isolation (memory protection keys, isolation/isolation.h). With on = 1,
 * which needs giso_init() to have turned isolation on (-ENOTSUP otherwise):
 *  - function hooks installed from now on get trampolines whose handler
 *    calls sit between an entry gate (PKRU := giso_pkru_ext()) and an exit
 *    gate (PKRU := giso_pkru_host()): giso_emit_gate() bytes in the
 *    read+execute stub, registered with giso_register_gate_range(); the
 *    stubs' writable views are tagged with the extension key;
 *  - the C paths (override/replace, mid-function probes, int3 fallback,
 *    first hit on a thread) and the syscall dispatcher call each handler
 *    through giso_call_ext_on();
 *  - handlers run on a per-thread extension stack tagged with the key
 *    (giso_xstack_alloc), switched to after the entry gate and back before
 *    the exit gate, in the templates and the C paths alike.
 * Handlers (and the helpers they call) thus run with the extension key
 * enabled, and the hooked code never does. Sites built before keep the
 * variant they were built with (hooking an address again reuses its site),
 * so turn it on before the first hook. on = 0: no gates for new sites and
 * C paths - not a single extra instruction on the hot path. */
int gattach_set_isolation(int on, struct graft_err *err);
int gattach_isolation(void);       /* 1 when on */

/* Extension stacks (needs isolation on, -ENOTSUP otherwise): sites built
 * from now on, and the C paths, run handlers on a per-thread stack tagged
 * with the extension key (giso_xstack_alloc), so the extensions' frames are
 * not host-writable either. The agent turns it on whenever isolation is on
 * (GRAFT_ISOLATION=gates keeps it off). A kernel rule needs care: a signal
 * is delivered on the interrupted stack and its handler starts with the
 * default PKRU, which cannot touch that stack. Graft's own handlers are
 * SA_ONSTACK and each thread that runs an extension gets an alternate
 * stack; a host handler without SA_ONSTACK faults at its first push, and
 * turning this on makes graft's SIGSEGV handler (helpers' safe_mem, with
 * isolation's giso_xstack_fault as its filter) open the key for that
 * handler so it runs to its end. See docs/isolation.md. */
int gattach_set_ext_stacks(int on, struct graft_err *err);
int gattach_ext_stacks(void);      /* 1 when on */

struct gattach_stats {
    uint64_t shadow_overflows;   /* return probes skipped: shadow stack full */
    uint64_t missed_recursion;   /* handler runs skipped: nested on a thread */
    uint64_t stale_discarded;    /* shadow entries dropped (longjmp/exception) */
    uint64_t trap_hits;          /* int3 traps taken (fallback or mid-patch) */
    uint64_t threads_moved;      /* threads moved out of bytes a jump covers */
};
void gattach_get_stats(struct gattach_stats *st);
/* From now on, function hooks run no handlers on the calling thread:
 * graft's own threads (the agent's) are not the host's to trace - what
 * they allocate while installing links is not the application's. Call it
 * before the thread's first hook hit: 0, or -EBUSY if it already had one. */
int gattach_ignore_this_thread(void);

/* ---- source entries (GRAFT_ENTRY, include/graft/eim.h) ----------------- */
/* A GRAFT_ENTRY() site is a 5-byte NOP (0f 1f 44 00 00) plus a .note.graft
 * record giving its link-time address and where its arguments live
 * ("SIZE@OPERAND ...", see src/eim geim_list_src_entries). Attaching patches
 * the NOP (int3 first, as for function hooks) into a jmp to a per-site stub
 * that skips the red zone and calls a common trampoline: it saves every
 * general-purpose register, the flags and xmm0-15, evaluates the argument
 * specs into u64 args[] (zero-padded to 168 bytes, so any context of at
 * most pt_regs size stays in bounds), calls each handler with (args, n * 8),
 * restores everything and jumps back after the NOP. Removing the last
 * handler of a site restores the NOP; gattach_entry_remove() returns only
 * after no thread still runs the removed handler. A thread that meets the
 * int3 while a site is being patched skips the NOP (the entry does nothing
 * for that one pass). An entry reached while an entry handler already runs
 * on the thread is skipped and counted (gattach_entry_missed). */

struct gentry_link;

#define GENTRY_MAX_ARGS 6

/* Attach fn at the NOP at addr (runtime address) whose note arguments are
 * args ("-4@%edi 8@%rsi 4@$7 8@-16(%rbp)"). Fails when addr does not hold
 * the NOP (or our jump) or an operand cannot be evaluated. */
int gattach_entry_install(void *addr, const char *args, ghook_handler fn, uint64_t cookie,
                          struct gentry_link **out, struct graft_err *err);
int gattach_entry_remove(struct gentry_link *l, struct graft_err *err);
/* Handler runs skipped because another entry handler ran on the thread. */
uint64_t gattach_entry_missed(void);

/* ---- syscall hooks (owned by the syscalls developer) -------------------- */
/* (their declarations go below this line) */
/* --- syscall hooks (syscall_*.c) --- see docs/syscalls.md
 *
 * Every syscall/sysenter instruction in the process's file-backed executable
 * mappings is rewritten to `call *%rax` landing in a trampoline at address 0
 * (zpoline), including libraries mapped later (dlopen). Where page 0 cannot
 * be mapped, a seccomp filter traps syscalls to a SIGSYS handler instead.
 * Handlers see the kernel's tracepoint records. An enter handler may call
 * bpf_override_return(ctx, v) to skip the syscall and return v (e.g.
 * -EACCES); an exit handler may call it to replace the result. */

enum gsys_kind {
    GSYS_ENTER = 0,       /* tracepoint/syscalls/sys_enter_NAME: struct gsys_enter_ctx */
    GSYS_EXIT,            /* tracepoint/syscalls/sys_exit_NAME: struct gsys_exit_ctx */
    GSYS_RAW_ENTER,       /* raw_tracepoint/sys_enter: u64[2] = {pt_regs *, id} */
    GSYS_RAW_EXIT,        /* raw_tracepoint/sys_exit: u64[2] = {pt_regs *, ret} */
};

/* The kernel's trace_event_raw_sys_enter / _sys_exit records. */
struct gsys_trace_entry {
    uint16_t type;        /* 0: graft has no tracefs event ids */
    uint8_t flags;
    uint8_t preempt_count;
    int32_t pid;          /* thread id, as the kernel's */
};
struct gsys_enter_ctx {
    struct gsys_trace_entry ent;
    int64_t id;           /* syscall number, offset 8 */
    uint64_t args[6];     /* offset 16; 64 bytes in all */
};
struct gsys_exit_ctx {
    struct gsys_trace_entry ent;
    int64_t id;           /* offset 8 */
    int64_t ret;          /* offset 16; 24 bytes in all */
};

/* Same signature as gvm_native_fn / ghook_handler. */
typedef uint64_t (*gsys_handler)(void *ctx, uint64_t ctx_len);

struct gsys_link;

#define GSYS_F_FORCE_SECCOMP     0x1u  /* don't try zpoline, use the seccomp fallback */
#define GSYS_F_SET_MMAP_MIN_ADDR 0x2u  /* may write 0 to vm.mmap_min_addr (restored
                                        * right after page 0 is mapped) */
#define GSYS_F_NO_FALLBACK       0x4u  /* fail rather than fall back to seccomp */

struct gsys_opts {
    uint64_t sz;          /* sizeof(struct gsys_opts) */
    uint32_t flags;       /* GSYS_F_* */
};

/* Register fn for syscall nr (-1: every syscall). Handlers run only while
 * hooks are installed (gsys_install). The link is valid until gsys_detach. */
int gsys_attach(enum gsys_kind kind, int nr, gsys_handler fn, uint64_t cookie,
                struct gsys_link **out, struct graft_err *err);

struct gsys_attach_opts {
    uint64_t sz;          /* sizeof(struct gsys_attach_opts) */
    uint64_t cookie;      /* bpf_get_attach_cookie */
    /* The gattach_opts.handler_preserves_fp promise, read strictly: the
     * handler calls nothing - no helper, no C code - so it needs no
     * ghelper_run_state() (no cookie, override, regs) and leaves xmm
     * alone; e.g. a JIT-compiled program without calls (the runtime's
     * !calls_out). A syscall whose only program is such an enter program
     * runs it from the assembly fast path (a few ns instead of ~70).
     * Wrong when set for a handler that calls helpers or C code. */
    int handler_preserves_fp;
    /* Weaker: the handler may call helpers (the run state is set for it)
     * but neither it nor anything it calls changes a vector or x87
     * register, e.g. a JIT-compiled program whose every call is to a
     * GHELPER_F_FP_FREE helper (ghelper_prog_fp_free). The assembly paths
     * that run helper-calling programs then skip saving xmm0-15. Wrong
     * when set for a handler that may reach ordinary C code directly. */
    int handler_keeps_fp;
};
/* gsys_attach with options; opts may be NULL (= gsys_attach, cookie 0). */
int gsys_attach_opts(enum gsys_kind kind, int nr, gsys_handler fn,
                     const struct gsys_attach_opts *opts, struct gsys_link **out,
                     struct graft_err *err);
/* Same, from a section name: "tracepoint/syscalls/sys_enter_openat",
 * "tp/syscalls/sys_exit_read", "raw_tracepoint/sys_enter", "raw_tp/sys_exit". */
int gsys_attach_section(const char *section, gsys_handler fn, uint64_t cookie,
                        struct gsys_link **out, struct graft_err *err);
/* Unregister; after it returns the handler is not called again by new
 * syscalls (a thread already inside it finishes). */
int gsys_detach(struct gsys_link *link);

/* Start hooking this process (idempotent). opts may be NULL. */
int gsys_install(const struct gsys_opts *opts, struct graft_err *err);
/* Stop: rewritten instructions are restored; a seccomp filter cannot be
 * removed, its handler then only passes syscalls through. */
void gsys_uninstall(void);
/* From now on, syscalls of the calling thread run no programs (graft's own
 * threads, such as the agent's, are not the host's to trace). */
void gsys_ignore_this_thread(void);
/* "zpoline", "seccomp" or "none". */
const char *gsys_method(void);
/* What install did that a person should know (mmap_min_addr changed, why
 * the fallback was used); "" when nothing. */
const char *gsys_install_note(void);

struct gsys_stats {
    uint64_t sites_rewritten;     /* syscall instructions rewritten so far */
    uint64_t regions_scanned;     /* executable mappings scanned */
    uint64_t regions_skipped;     /* could not be read or made writable */
    uint64_t desyncs;             /* decoder resynchronised at a symbol */
};
void gsys_get_stats(struct gsys_stats *st);

/* Syscall names and numbers: util/syscalls.h (gsyscall_nr, gsyscall_name). */
/* --- end of syscall hooks --- */

/* --- sampling (sample.c): perf_event programs on a CPU clock (profile) ---
 * fn runs in a signal handler on each thread of the process, every
 * period_ns of that thread's CPU time, with struct bpf_perf_event_data
 * (the interrupted registers) as its context and cookie as its attach
 * cookie; cpu >= 0: only samples taken on that CPU (one event per CPU, as
 * tools open them; events of one fn and period share the timers). The
 * signal is GSAMPLE_SIGNAL; the start fails with -EBUSY if the process
 * handles it. Samples landing inside a graft program are dropped. */
#define GSAMPLE_SIGNAL (SIGRTMAX - 3)
struct gsample;
int gsample_start(gsys_handler fn, uint64_t cookie, uint64_t period_ns, int cpu, struct gsample **out,
                  struct graft_err *err);
/* After it returns the program no longer runs from this link. */
void gsample_stop(struct gsample *h);
uint64_t gsample_missed(void);   /* samples dropped (inside a graft program, or overruns) */
/* Expired CPU-time timers the kernel had not noticed (it looks at a
 * thread's at ticks that find it running), fired by the sampler thread. */
uint64_t gsample_kicked(void);
/* The mask graft's own threads run with: every signal sent to the process
 * blocked (they go to the host's threads), the synchronous ones graft's
 * handlers need left open (SIGTRAP: a hook's int3 met mid-patch; SIGSEGV,
 * SIGBUS: safe memory reads; SIGSYS: the seccomp mode; SIGILL, SIGFPE). A
 * blocked synchronous signal kills the process. */
void gattach_async_signals(sigset_t *set);

/* --- tracepoints emulated from syscalls (sys_events.c; needs gsys_install) ---
 * GEVENT_PROC_EXIT: sched/sched_process_exit at exit/exit_group entry;
 * GEVENT_SIGNAL_GENERATE: signal/signal_generate at kill, tkill, tgkill,
 * rt_[tg]sigqueueinfo of one process or thread. fn gets the kernel's record
 * (zero-padded to 64 bytes). */
enum gevent_kind { GEVENT_PROC_EXIT = 0, GEVENT_SIGNAL_GENERATE = 1 };
struct gevent_link;
int gevent_attach(enum gevent_kind kind, gsys_handler fn, uint64_t cookie, struct gevent_link **out,
                  struct graft_err *err);
void gevent_detach(struct gevent_link *l);
/* In a new image after a successful execve (the agent, once its links are
 * installed): run execve's exit programs as if it returned 0 here. */
void gsys_fire_exec_exit(void);

#endif
