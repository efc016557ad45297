/*
 * syscall_hook.h - internals shared by the syscall_*.c files (syscall
 * hooking: zpoline rewrite, seccomp fallback, dispatcher, scanner). The
 * public API is the "syscall hooks" section of attach/attach.h.
 *
 * Invariants:
 *  - Every syscall instruction graft itself executes lies between
 *    graft_sys_text_start and graft_sys_text_end: the section
 *    GSYS_TEXT_SECTION (syscall_raw.c, syscall_tramp.c). The scanner never
 *    rewrites there and the seccomp filter lets exactly that range through.
 *  - Code that may run inside a hooked syscall (dispatcher, scanner, SIGSYS
 *    handler) makes no libc call that could allocate or take a lock that the
 *    interrupted code may hold: it uses graft_sys_raw6() and its own memory.
 */
#ifndef GRAFT_ATTACH_SYSCALL_HOOK_H
#define GRAFT_ATTACH_SYSCALL_HOOK_H

#include <stddef.h>
#include <stdint.h>

#include "attach/attach.h"

#define GSYS_HIDDEN __attribute__((visibility("hidden")))

/* Page 0 layout (see syscall_tramp.c): [0, GSYS_SLED) jcc sled; up to
 * GSYS_LAND - 4 a run of 0x3d bytes (5-byte `cmp $imm32,%eax` from any
 * offset), 4 NOPs, at GSYS_LAND the jump to graft_sys_entry (GSYS_STUB_LEN
 * bytes); then another 0x3d run, NOPs and the same jump at GSYS_STUB_OFF. */
#define GSYS_PAGE      4096
#define GSYS_SLED      512
#define GSYS_LAND      (GSYS_SLED + 136)   /* movabs+jmp to graft_sys_entry */
#define GSYS_STUB_LEN  13
#define GSYS_STUB_OFF  (GSYS_PAGE - 16)
#define GSYS_TABLE     4096     /* graft_sys_hooked[] entries, >= STUB_OFF */

/* graft_sys_hooked[nr]: 0 = no program, nothing special: the entry makes the
 * syscall at once. GSYS_H_FAST or GSYS_H_CALLS alone = graft_sys_fast[nr]
 * is the only program and runs from assembly. Anything else: the C
 * dispatcher. */
#define GSYS_H_PROGS   0x1      /* programs are attached for nr (or all) */
#define GSYS_H_SPECIAL 0x2      /* nr needs the dispatcher (clone, sigreturn, mmap...) */
#define GSYS_H_FAST    0x4      /* one enter program that calls nothing */
#define GSYS_H_CALLS   0x8      /* one enter program that may call helpers:
                                 * from assembly too, with the run state set
                                 * and xmm0-15 saved (syscall_tramp.c) */
#define GSYS_H_PAIR    0x10     /* one enter and one exit program (either
                                 * may call helpers): both from assembly,
                                 * the syscall between them (syscall_tramp.c) */

/* A registered program (syscall_dispatch.c). The assembly reads kind, fn,
 * cookie, calls_nothing and keeps_fp at these offsets. Never freed (readers may hold
 * it). */
struct gsys_link {
    struct gsys_link *_Atomic next;
    enum gsys_kind kind;       /* 8 */
    int nr;                    /* -1: all */
    gsys_handler fn;           /* 16 */
    uint64_t cookie;
    _Atomic int dead;
    int calls_nothing;         /* gsys_attach_opts.handler_preserves_fp */
    int64_t keeps_fp;          /* 40: either promise, no xmm save needed
                                * (one word: the assembly pushes it) */
    struct gsys_link *grave_next;   /* detached links, kept reachable */
};
#define GSYS_LINK_OFF_KIND   8
#define GSYS_LINK_OFF_FN     16
#define GSYS_LINK_OFF_COOKIE 24
#define GSYS_LINK_OFF_CALLS_NOTHING 36
#define GSYS_LINK_OFF_KEEPS_FP 40

/* What the assembly entry saved; lowest address first. The offsets are used
 * by syscall_tramp.c's assembly: change both together. */
struct gsys_frame {
    uint64_t args[6];          /* rdi rsi rdx r10 r8 r9 at 0..40 */
    uint64_t nr;               /* 48: rax at entry */
    uint64_t ret;              /* 56: value for rax on return */
    uint64_t rbx;              /* 64: the interrupted code's rbx */
};
/* From the frame: 0x80 bytes of red zone, then the return address pushed by
 * `call *%rax`, then the interrupted code's stack pointer. */
#define GSYS_FRAME_RETADDR 200
#define GSYS_FRAME_APPSP   208

/* Actions graft_sys_dispatch() asks the assembly to take. */
enum {
    GSYS_ACT_RETURN = 0,       /* frame->ret is the result */
    GSYS_ACT_SIGRETURN = 1,    /* run the syscall on the caller's stack, no return */
    GSYS_ACT_CLONE = 2,        /* clone/clone3 with a new stack prepared by C */
    GSYS_ACT_VFORK = 3,        /* vfork: keep nothing on the shared stack */
};

/* syscall_dispatch.c: the tables the assembly reads (it writes them). */
extern uint8_t graft_sys_hooked[GSYS_TABLE] GSYS_HIDDEN;
/* Set (on) or clear GSYS_H_SPECIAL in graft_sys_hooked[] for the n numbers
 * nrs (syscall_install.c's list). */
void gsys_mark_special(const int *nrs, size_t n, int on) GSYS_HIDDEN;
/* The program of each GSYS_H_FAST / GSYS_H_CALLS number (NULL otherwise). */
extern struct gsys_link *_Atomic graft_sys_fast[GSYS_TABLE] GSYS_HIDDEN;
/* The exit program of each GSYS_H_PAIR number (NULL otherwise). */
extern struct gsys_link *_Atomic graft_sys_fast_exit[GSYS_TABLE] GSYS_HIDDEN;
/* The section of graft's own syscall instructions (a C identifier, so the
 * linker defines __start_ and __stop_ symbols bounding it). */
#define GSYS_TEXT_SECTION "graft_sys_text"
extern char __start_graft_sys_text[] GSYS_HIDDEN;
extern char __stop_graft_sys_text[] GSYS_HIDDEN;
#define graft_sys_text_start __start_graft_sys_text
#define graft_sys_text_end __stop_graft_sys_text
/* syscall_raw.c: graft's own syscalls (a leaf: it calls nothing). */
long graft_sys_raw6(long nr, long a0, long a1, long a2, long a3, long a4,
                    long a5) GSYS_HIDDEN;
/* syscall_tramp.c */
extern char graft_sys_entry[] GSYS_HIDDEN;
extern char graft_sys_insn_vfork[] GSYS_HIDDEN;
extern char graft_sys_insn_clone_vfork[] GSYS_HIDDEN;   /* seccomp mode, CLONE_VFORK */
extern char graft_sys_insn_clone3_vfork[] GSYS_HIDDEN;
extern __thread uint64_t graft_sys_vfork_ret
    __attribute__((tls_model("initial-exec"))) GSYS_HIDDEN;
int gsys_page0_map(int set_min_addr, char *note, size_t note_len,
                   struct graft_err *err) GSYS_HIDDEN;

static inline long gsys_raw(long nr, long a0, long a1, long a2)
{
    return graft_sys_raw6(nr, a0, a1, a2, 0, 0, 0);
}

/* syscall_dispatch.c */
int graft_sys_dispatch(struct gsys_frame *f) GSYS_HIDDEN;
void graft_sys_dispatch_exit(struct gsys_frame *f) GSYS_HIDDEN;
/* Enter programs, the syscall itself, exit programs, for a frame that is
 * not one of the special cases; used by the SIGSYS handler too. */
uint64_t gsys_run_plain(struct gsys_frame *f) GSYS_HIDDEN;
int gsys_run_enter(struct gsys_frame *f, uint64_t *override) GSYS_HIDDEN;
/* Run programs between PKRU gates (gattach_set_isolation). */
void gsys_set_isolation(int on) GSYS_HIDDEN;
void gsys_run_exit(struct gsys_frame *f) GSYS_HIDDEN;
/* After fork, vfork, clone or clone3 returned (in the child too): a new
 * task - or the parent, once a child has run on its TLS - must not keep
 * the per-thread ids the syscall path (gsys_tid) and the helpers cache:
 * glibc's fork handlers, which the helpers rely on otherwise, never run
 * for a raw clone or vfork. */
void gsys_new_task_caches(const struct gsys_frame *f) GSYS_HIDDEN;
/* Initial-exec TLS: the assembly reads them at a fixed %fs offset, and C
 * code reaches them without __tls_get_addr even in libgraft.so. */
#define GSYS_TLS_IE __attribute__((tls_model("initial-exec")))
extern __thread int gsys_in_hook GSYS_TLS_IE GSYS_HIDDEN;
extern __thread int32_t gsys_tid GSYS_TLS_IE GSYS_HIDDEN;   /* 0: not known yet */
/* Whether hooks are active and how they were installed: owned by
 * syscall_dispatch.c (which reads them on every hooked syscall), set only
 * by syscall_install.c under its lock, through these setters; others read
 * them with the accessors, which declare the globals at block scope so
 * that no other file has a name to write through. Separate setters
 * because install and uninstall order the two stores differently. */
enum { GSYS_MODE_NONE = 0, GSYS_MODE_ZPOLINE, GSYS_MODE_SECCOMP };
void gsys_set_active(int on) GSYS_HIDDEN;
void gsys_set_mode(int mode) GSYS_HIDDEN;
static inline int gsys_is_active(void)
{
    extern volatile int gsys_active GSYS_HIDDEN;
    return gsys_active;
}
static inline int gsys_install_mode(void)
{
    extern volatile int gsys_mode GSYS_HIDDEN;
    return gsys_mode;
}
void gsys_refresh_hooked(void) GSYS_HIDDEN;

/* syscall_rewrite.c: rewrite syscall/sysenter in file-backed executable
 * mappings that intersect [lo, hi); returns sites rewritten or -errno. */
long gsys_scan_range(uint64_t lo, uint64_t hi) GSYS_HIDDEN;
int gsys_scanner_init(struct graft_err *err) GSYS_HIDDEN;
/* Put the original bytes back at every rewritten site. */
void gsys_unrewrite_all(void) GSYS_HIDDEN;

/* syscall_seccomp.c */
int gsys_seccomp_install(struct graft_err *err) GSYS_HIDDEN;


#endif
