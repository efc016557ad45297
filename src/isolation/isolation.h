/*
 * isolation.h - keep extension state away from the host with x86 memory
 * protection keys (MPK/PKU).
 *
 * Model: extension state (maps' shared memory, extension stacks, and the
 * runtime metadata placed with giso_meta_alloc: map handles, program
 * descriptors, id tables, the helpers' run state) is tagged with one
 * protection key, "the extension key". Host code
 * runs with that key access-disabled (AD|WD set in PKRU), so a host read or
 * write of extension memory faults with SIGSEGV/SEGV_PKUERR. A trampoline's
 * entry gate sets PKRU to giso_pkru_ext() (key enabled) before calling the
 * extension; its exit gate sets PKRU back to giso_pkru_host(). Host helpers an
 * extension calls run between a leave/enter gate pair. The gates are WRPKRU
 * instructions with immediate PKRU values in non-writable code
 * (giso_emit_gate), and giso_scan() looks for other WRPKRU/XRSTOR/XRSTORS
 * instructions in the process that could change PKRU behind our back.
 *
 * Degradation: when the CPU or kernel has no PKU, or it is switched off
 * (opts.force_off or GRAFT_ISOLATION=off), giso_enabled() is 0, giso_status()
 * says "isolation: off (reason)", giso_protect() and the C gates are no-ops,
 * and giso_init() fails only when opts.require is set. See docs/isolation.md.
 */
#ifndef GRAFT_ISOLATION_ISOLATION_H
#define GRAFT_ISOLATION_ISOLATION_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "vm/vm.h"

struct giso_opts {
    size_t sz;          /* sizeof(struct giso_opts), for ABI growth */
    int require;        /* fail giso_init() with a clear error if PKU is unusable */
    int force_off;      /* act as if the CPU had no PKU (testing, debugging) */
};

/* Decide once whether isolation is on and, if so, allocate the extension key
 * with pkey_alloc(0, PKEY_DISABLE_ACCESS). Idempotent: later calls keep the
 * first decision but still fail when they ask for `require` and it is off.
 * The environment variable GRAFT_ISOLATION=off has the effect of force_off.
 * opts may be NULL. Returns 0, or -ENOTSUP (require and off) / -errno. */
int giso_init(const struct giso_opts *opts, struct graft_err *err);

/* Could giso_init() (without force_off) turn isolation on here? 1 when the
 * CPU and OS have PKU and GRAFT_ISOLATION is unset or names an "on" mode; 0
 * when giso_init() would decide off or fail on the variable. Allocates
 * nothing (cpuid and getenv only), so a caller can defer giso_init() - the
 * key, the gate page - until there is extension state to protect, and still
 * call giso_init() at once when the answer is "off" to get its status and
 * its require_isolation refusal. After giso_init(): giso_enabled(). */
int giso_available(void);

int giso_enabled(void);            /* 1 when the extension key is in use */
int giso_pkey(void);               /* the extension key, or -1 when off */
/* "isolation: on (pkey N)", "isolation: off (CPU has no PKU)", ... Before
 * giso_init(): "isolation: off (not initialised)". Static storage. */
const char *giso_status(void);

/* What the CPU says (cpuid leaf 7, ecx bit 3 PKU and bit 4 OSPKE). */
struct giso_cpu {
    int pku;            /* the CPU implements protection keys */
    int ospke;          /* the OS enabled them (CR4.PKE) */
};
void giso_cpu_features(struct giso_cpu *out);

/* Tag [addr, addr+len) (page aligned, as for mprotect) with the extension key
 * and protection prot. When isolation is off this is a plain mprotect(). */
int giso_protect(void *addr, size_t len, int prot, struct graft_err *err);

/* Pages for runtime metadata graft wants out of the host's reach (e.g. map
 * handles): len bytes rounded up to whole pages, zeroed, mapped on their
 * own (not in the malloc heap), read+write and tagged with the extension key
 * when isolation is on - so write to them with the key enabled. NULL with
 * err filled on failure. giso_meta_free() unmaps them (same len). */
void *giso_meta_alloc(size_t len, struct graft_err *err);
void giso_meta_free(void *p, size_t len);
/* The same with the signatures of gvm_prog_opts.desc_alloc/desc_free (arg
 * unused; no error detail). */
void *giso_meta_alloc_cb(size_t len, void *arg);
void giso_meta_free_cb(void *p, size_t len, void *arg);

/* The PKRU values gates load: host = PKRU at giso_init() with the extension
 * key's AD and WD bits set; ext = the same with both clear. When off both are
 * 0 and gates must not be emitted. */
uint32_t giso_pkru_host(void);
uint32_t giso_pkru_ext(void);
uint32_t giso_rdpkru(void);        /* current PKRU of this thread; 0 when off */

/* Gate code, for the attach layer's trampolines. Position independent; sets
 * PKRU to pkru and preserves every general register (rax, rcx, rdx are
 * saved and restored on the stack: it needs 24 bytes below rsp, so do not
 * place it where a red zone is live). Clobbers only the flags. After WRPKRU
 * it checks eax still holds the immediate and executes ud2 if not, so a jump
 * straight to the WRPKRU with an attacker-chosen eax cannot change PKRU to
 * anything but traps. Returns the bytes written, or 0 if cap is too small.
 * The code must end up in a non-writable page; register the page with
 * giso_register_gate_range() so giso_scan() does not report it. */
#define GISO_GATE_MAX 32
size_t giso_emit_gate(uint8_t *buf, size_t cap, uint32_t pkru);

/* C-callable gates: enter sets PKRU to giso_pkru_ext(), leave to
 * giso_pkru_host(). They call gates that giso_init() emitted into a read-only
 * executable page, but reach them through a function pointer in writable
 * memory, so they are meant for tests and host helpers; production
 * trampolines inline giso_emit_gate() bytes. No-ops when off. */
void giso_enter(void);
void giso_leave(void);

/* Run fn(ctx, len) - an extension entry, e.g. a JIT-compiled program -
 * between an enter and an exit gate: PKRU is the ext value while fn runs and
 * the host value when this returns. The gates are emitted at giso_init()
 * into a read+execute page. For the C paths of the attach layer (the
 * per-site trampolines inline their own gates). If the caller already runs
 * on this thread's bound extension stack (extension-side code, e.g. a hook
 * nested in a helper; PKRU is already ext), fn is called directly. When
 * off: fn(ctx, len).
 * giso_call_ext_on() with top != 0 also runs fn on this thread's extension
 * stack: after the enter gate it takes the stack from the thread's
 * validated control block (giso_xctl_bind; trap if the candidate is not
 * one), never from top, which only says "use it" (the caller's host-side
 * hint); if the block says the stack is in use, fn runs on the caller's
 * stack (nested). rsp is switched after the gate and back before the exit
 * gate; the host rsp is stored at top-8 for the host-call thunks. */
uint64_t giso_call_ext(uint64_t (*fn)(void *ctx, uint64_t len), void *ctx, uint64_t len);
uint64_t giso_call_ext_on(uint64_t (*fn)(void *ctx, uint64_t len), void *ctx, uint64_t len,
                          uint64_t top);

/* Extension stacks: where extensions run, so their frames (the JIT's BPF
 * stack, spills, helpers' frames) are not in host-writable memory.
 * giso_xstack_alloc() maps GISO_XSTACK_SIZE bytes tagged with the extension
 * key (read+write) above one untagged PROT_NONE guard page and returns the
 * top (16-byte aligned); 0 when off or on failure (err filled). Stacks are
 * never freed: the owner (the attach layer's per-thread struct) keeps and
 * reuses them. Layout while in use: top-8 holds the host rsp to return to
 * (host-call thunks switch back to the host stack through it), top-16 is
 * padding, the extension's frames start below.
 * giso_xstack_bind(top) makes top this thread's extension stack for the
 * host-call thunks and giso_call_ext*()'s "already on it" check
 * (thread-local; 0 unbinds);
 * giso_xstack_bound() returns it; giso_on_xstack() is 1 when the caller runs
 * on it (isolation on). */
#define GISO_XSTACK_SIZE (64u * 1024u)
uint64_t giso_xstack_alloc(struct graft_err *err);
void giso_xstack_bind(uint64_t top);
uint64_t giso_xstack_bound(void);
int giso_on_xstack(void);

/* Per-thread control blocks: what decides where an extension runs (its
 * stack, whether that stack is in use) and the helpers' run state, kept
 * under the extension key in one arena (GISO_XCTL_MAX blocks of
 * GISO_XCTL_SIZE bytes, block 0 the arena's header) and bound to their
 * thread by its FS base. Host-writable memory (struct gthread, TLS) only
 * holds *candidates*: extension-side code (the trampolines after their
 * entry gate, giso_call_ext_on, giso_xctl_self) accepts a block only if
 * its address is a block of the arena and its owner is the running
 * thread's FS base (RDFSBASE, a register), else it traps (ud2). So a host
 * write can neither make an extension run on host-chosen memory nor give
 * it another thread's run state; it can only crash the host.
 * Isolation needs RDFSBASE (Linux >= 5.9 enables FSGSBASE; every CPU with
 * PKU has it): without it giso_init() decides off. */
#define GISO_XCTL_SIZE 256u
#define GISO_XCTL_MAX 4096u
#define GISO_XCTL_ARENA (GISO_XCTL_SIZE * GISO_XCTL_MAX)
#define GISO_XCTL_OFF_OWNER 0       /* FS base of the owning thread, 0 if none */
#define GISO_XCTL_OFF_XTOP 8        /* stack top while free, 0 while in use */
#define GISO_XCTL_OFF_TOP 16        /* the stack's top (0: no stack) */
#define GISO_XCTL_OFF_USER 64       /* GISO_XCTL_USER bytes for the attach layer */
#define GISO_XCTL_USER (GISO_XCTL_SIZE - GISO_XCTL_OFF_USER)
struct giso_xctl;
/* A new block (zeroed, no owner, no stack) or NULL (off, arena full). */
struct giso_xctl *giso_xctl_new(struct graft_err *err);
/* Make c this thread's (owner := its FS base) and its candidate for the
 * extension side (thread-local; also giso_xstack_bind(top of c)). */
void giso_xctl_bind(struct giso_xctl *c);
/* Give c the extension stack top (giso_xstack_alloc), free. */
void giso_xctl_set_stack(struct giso_xctl *c, uint64_t top);
/* No owner any more (the thread exits; a reused block is bound again). */
void giso_xctl_release(struct giso_xctl *c);
/* 1 while c's stack is in use (an extension runs on it or is suspended in
 * a host call from it): read between gates, for the detacher's wait. */
int giso_xctl_busy(struct giso_xctl *c);
/* longjmp out of an extension: a host function called through a thunk
 * from the extension stack (the thunk recorded the host rsp of that call
 * in the keyed block) left by longjmp, so the stack stays taken. If this
 * thread's validated block has such a host call recorded and frame (the
 * rsp of a new trampoline frame on the same stack) is at or above it, the
 * call's frames are gone: free the stack, clear the record, return 1.
 * A frame below it is real nesting (the host function hit a hook): 0. The
 * caller makes sure frame is on the thread's own stack (not a signal
 * stack). Host-side (C gates inside). */
int giso_xctl_release_stale(uint64_t frame);
/* Extension-side only (PKRU ext): this thread's validated block, NULL if
 * it has none bound; traps on a candidate that is not a block of this
 * thread. */
struct giso_xctl *giso_xctl_self(void);
/* For the helpers' run-state pointer (a host-writable TLS copy, cand):
 * when the caller runs with the ext PKRU (extension-side code, which may
 * write through the result), the user area of this thread's validated
 * block - trapping if there is none or the candidate is forged - else (host
 * PKRU, which cannot dereference keyed memory anyway, or isolation off)
 * cand itself. */
void *giso_xctl_user_checked(void *cand);
static inline void *giso_xctl_user(struct giso_xctl *c)
{
    return c ? (char *)c + GISO_XCTL_OFF_USER : NULL;
}
/* The arena's address, for the trampolines' immediates (0 when off). */
uint64_t giso_xctl_base(void);

/* A host signal handler (one installed without SA_ONSTACK) that interrupts
 * an extension running on its extension stack starts on that stack, with
 * the kernel's default PKRU (extension key disabled): its first push
 * faults. giso_xstack_fault(si, uc), called from a SIGSEGV handler that runs
 * on an alternate stack, recognises exactly that fault - SEGV_PKUERR on the
 * extension key, at an address inside this thread's bound extension stack,
 * with the interrupted rsp inside it too - and opens the key in the PKRU the
 * kernel will restore from uc (the XSAVE image in the signal frame), so
 * the handler resumes and runs to its end; its own sigreturn then restores
 * the extension's PKRU. Returns 1 when it did so (the caller returns from
 * its handler), 0 for any other fault. Async-signal-safe. The price: that
 * host handler runs with the extension key open (docs/isolation.md).
 * giso_xstack_grants() counts the faults handled so. */
int giso_xstack_fault(const siginfo_t *si, void *uc);
uint64_t giso_xstack_grants(void);

/* A thunk with fn's signature that an extension calls instead of fn, a host
 * function (EIM kfunc): exit gate (PKRU := host), call fn with the same five
 * arguments, enter gate (PKRU := ext), return fn's result. So host code an
 * extension calls runs with the extension key disabled, like all host code.
 * When the caller runs on this thread's bound extension stack, fn runs on the
 * host stack below the rsp saved at its top-8 (the host cannot use the
 * extension stack), and the extension's rsp stays in a register meanwhile.
 * fn is an immediate in the thunk's read+execute page (never writable after
 * it is emitted, registered as a gate range). Thunks are cached per fn and
 * never freed. When isolation is off this returns fn itself (no cost).
 * NULL with err filled on failure. Thread safe. */
gvm_helper_fn giso_wrap_host_call(gvm_helper_fn fn, struct graft_err *err);
/* The same for a host function some of whose arguments point to memory:
 * bit i of mem_args (i = 0..3) says argument i is a pointer whose size in
 * bytes is argument i+1 (the EIM's `size: NEXT_ARG`). The host cannot read
 * extension memory (the extension stack, map values), so the thunk copies
 * those bytes - with the extension's PKRU, before the exit gate - to the
 * host stack it runs fn on and passes fn the copy (NULL stays NULL). The
 * copy is one-way: fn's writes through it are not seen by the extension.
 * A size over GISO_HOST_COPY_MAX traps (ud2); the EIM policy caps size
 * arguments there so verified programs never reach it. Thunks are cached
 * per (fn, mem_args). -EINVAL for a mask with bits above 3 or two adjacent
 * bits (an argument cannot be both a size and a pointer). */
#define GISO_HOST_COPY_MAX (64u * 1024u)
gvm_helper_fn giso_wrap_host_call_mem(gvm_helper_fn fn, uint32_t mem_args,
                                      struct graft_err *err);

/* Code graft emits into registered gate ranges (which giso_scan() skips)
 * must hold no WRPKRU/XRSTOR/XRSTORS byte pattern - at any alignment,
 * including inside immediates and relocated instructions - except the
 * WRPKRUs of its own gates: GISO_GATE_WRPKRU_OFF bytes into each
 * giso_emit_gate() output. giso_check_emitted() returns 0 if every pattern
 * in code[0, len) starts at one of the n offsets in wrpkru_ok (each a
 * WRPKRU), else -1 with *bad the offset of the first stray one. */
#define GISO_GATE_WRPKRU_OFF 12
int giso_check_emitted(const uint8_t *code, size_t len, const size_t *wrpkru_ok, size_t n,
                       size_t *bad);

/* Mark [start, start+len) as graft gate code that giso_scan() must not
 * report. Returns 0 or -ENOMEM / -EINVAL. */
int giso_register_gate_range(const void *start, size_t len);
int giso_unregister_gate_range(const void *start, size_t len);

enum giso_insn {
    GISO_INSN_WRPKRU = 1,      /* 0f 01 ef: sets PKRU from eax */
    GISO_INSN_XRSTOR = 2,      /* 0f ae /5: can load PKRU (xsave component 9) */
    GISO_INSN_XRSTORS = 3,     /* 0f c7 /3: likewise, supervisor form */
};

/* What a finding can do, from the instructions around it (scan_find.c;
 * the policy is in docs/isolation.md, "Stray WRPKRU/XRSTOR"). */
enum giso_class {
    GISO_CLASS_OPEN = 0,       /* on an instruction boundary, value not fixed */
    GISO_CLASS_UNALIGNED,      /* inside another instruction: only a jump into
                                  the middle of code executes it */
    GISO_CLASS_CHECKED,        /* wrpkru; cmp eax, imm; je/jne: writes value or traps */
    GISO_CLASS_FIXED,          /* mov eax, imm; wrpkru: its own path writes value */
    GISO_CLASS_RMW,            /* rdpkru ... wrpkru (glibc pkey_set): changes the
                                  key bits its caller names */
    GISO_CLASS_MASKED,         /* xrstor(s) after mov eax, imm without bit 9:
                                  its own path leaves PKRU alone */
};
const char *giso_class_name(enum giso_class c);

struct giso_finding {
    uintptr_t addr;            /* run-time address of the instruction */
    enum giso_insn insn;
    const char *insn_name;     /* "wrpkru", "xrstor", "xrstor64", ... */
    const char *path;          /* mapping path ("[vdso]", "" when anonymous) */
    uint64_t offset;           /* file offset (addr - start + mapping offset) */
    const char *symbol;        /* enclosing ELF symbol, or NULL */
    uint64_t symbol_off;       /* addr - symbol start */
    int special;               /* 1 for [vdso] and other kernel-provided maps */
    int aligned;               /* on an instruction boundary of the decode */
    enum giso_class cls;
    int has_value;             /* value is known: */
    uint32_t value;            /* the PKRU a checked/fixed wrpkru writes, or
                                  the xrstor's eax (requested features) */
};
typedef void (*giso_report_fn)(const struct giso_finding *f, void *arg);

/* Could the host's own control flow use f to open the extension key?
 * (Classes open, and checked/fixed with a value that leaves the key's
 * access-disable bit clear; rmw only if the host passes graft's key to
 * pkey_set, which it never allocated - counted apart, not here.) */
int giso_finding_usable(const struct giso_finding *f);

/* Scan every readable executable mapping of this process (/proc/self/maps)
 * for WRPKRU, XRSTOR(64) and XRSTORS(64): every occurrence of their byte
 * patterns, on instruction boundaries or not (aligned says which: Zydis
 * decodes linearly from each ELF function symbol (.symtab, else .dynsym)
 * and from the start of mappings without symbols), also across two
 * adjacent executable mappings; each classified (enum giso_class). The
 * bytes are read through /proc/self/mem. Results of file-backed mappings are
 * cached per file identity and range (scan_cache.c, GRAFT_SCAN_CACHE) and
 * reused for every page that still holds the file's bytes (pagemap); pages
 * written since (patched code) are scanned again. Findings inside
 * registered gate ranges are skipped. report (may be NULL) is called per
 * finding; the strings in it live only during the call. Returns the number
 * of findings or -errno. */
int giso_scan(giso_report_fn report, void *arg, struct graft_err *err);

/* The same for the executable mappings that appeared (or changed) since
 * the last giso_scan()/giso_scan_new() of this process - e.g. a dlopen. */
int giso_scan_new(giso_report_fn report, void *arg, struct graft_err *err);

/* The one-line load-time report: giso_status(), and when on the result of
 * a giso_scan() of the whole process, classified, e.g.
 *   "isolation: on (pkey 1); host has 5 stray WRPKRU/XRSTOR, 0 usable
 *    without a control-flow hijack (1 rmw: wrpkru at 0x7f..(libc.so.6
 *    pkey_set+0x32); 2 masked, 2 unaligned)"
 * Findings that are usable are listed first and in full (up to a few);
 * graft's registered gates are excluded. Writes at most cap bytes (always
 * NUL-terminated). Returns the number of findings (0 when off), or -errno
 * when the scan itself failed (buf then says why). */
int giso_scan_summary(char *buf, size_t cap, struct graft_err *err);
/* The same for giso_scan_new(): "" in buf and 0 when nothing new was found. */
int giso_scan_summary_new(char *buf, size_t cap, struct graft_err *err);

/* The same check for one buffer of code, decoded from its first byte;
 * base is the address reported for code[0]. Returns findings or -errno. */
int giso_scan_code(const void *code, size_t len, uintptr_t base,
                   giso_report_fn report, void *arg);

#endif
