/*
 * func_internal.h - what the function-hook files of src/attach share
 * (func_hook.c, hook_hit.c, tramp_x86.c, tramp_reloc.c, patch_text.c,
 * thread_park.c, symbols_elf.c, meta_pages.c, entry_site.c). Not for use
 * outside src/attach/. Which file owns which shared state, and the
 * file-level dependency graph (no cycles): docs/hooks.md, "The files of
 * src/attach and what each owns".
 *
 * Invariants: a struct gsite exists once per hooked address and is never
 * freed, nor is its stub, so a thread that was redirected there (by the jump,
 * an int3 hit or a shadow-stack return) can always finish. Everything that
 * changes a site runs under the attach lock (hook_mode.h).
 */
#ifndef GRAFT_ATTACH_FUNC_INTERNAL_H
#define GRAFT_ATTACH_FUNC_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "attach/attach.h"
#include "attach/hook_mode.h"
#include "attach/thread_state.h"
#include "isolation/isolation.h"

/* Stack frame the entry trampoline builds (offsets from rsp after the
 * frame is allocated): 16 xmm registers, the pt_regs record, then the slot
 * the stub pushed (site pointer, later the continuation address), then the
 * 128-byte red-zone gap the stub skipped, then the interrupted stack. */
#define GF_XMM   0
#define GF_REGS  256
#define GF_SLOT  (GF_REGS + 168)
#define GF_SIZE  GF_SLOT
#define GF_ORIG_SP (GF_SLOT + 8 + 128)

/* Stub layout (GSTUB_SIZE bytes, one per site). Sites inside a function
 * use the shared bodies (tramp_x86.c) through the 128-byte head below;
 * function-entry sites get copies of the entry and return templates:
 *    0  entry template, then the relocated instructions (GSTUB_ERELOC_MAX)
 *  GSTUB_CALL  call rel32 to the relocated instructions, so that the
 *              address it pushes is the return template's
 *  GSTUB_RET  return template */
#define GSTUB_SIZE      4096        /* one per page since the templates validate the keyed control block */
#define GSTUB_RET       1536        /* _gs entry template (gcc: 1282) + ERELOC_MAX below */
#define GSTUB_CALL      (GSTUB_RET - 5)   /* `call rel32` to the relocated code */
#define GSTUB_ERELOC_MAX 80         /* >= 5 bytes of code, widened, + the jump back */
#define GSTUB_CONT      17          /* after `lea; push [site]; jmp [entry]` */
#define GSTUB_RELOC     25          /* after `lea rsp,[rsp+136]` */
#define GSTUB_DATA_SITE 112
#define GSTUB_DATA_ENTRY 120
#define GSTUB_RELOC_MAX (GSTUB_DATA_SITE - GSTUB_RELOC - 14)

#define GPATCH_LEN 5                /* jmp rel32 */

/* struct ghandlers.flags (read by the templates) */
#define GHS_SLOW    1               /* REPLACE: the C path */
#define GHS_SAVE_FP 2               /* a handler may clobber xmm registers */
#define GHS_NEED_RS 4               /* a handler may read ghelper_run_state():
                                     * one may call C code, or is an OVERRIDE */

struct gslot {                      /* one handler in a published snapshot */
    ghook_handler fn;
    uint64_t cookie;
    uint32_t kind;
};

/* Immutable snapshot of a site's handlers; replaced whole (RCU). */
struct ghandlers {                  /* offsets fixed: used by the templates */
    uint32_t n_entry;               /* 0: ENTRY and OVERRIDE, attach order */
    uint32_t n_ret;                 /* 4 */
    int has_replace;                /* 8 */
    uint32_t flags;                 /* 12: GHS_* */
    struct gslot replace;           /* 16 */
    struct gslot *entry;            /* points into slots[] */
    struct gslot *ret;
    struct gslot slots[];
};

struct gsite {
    uint64_t addr;                  /* offset 0 (templates) */
    _Atomic(struct ghandlers *) hs; /* offset 8 (templates) */
    _Atomic uint32_t ret_only;      /* offset 16 (templates): hs has return
                                     * hooks and nothing else */
    uint64_t ret_tramp;             /* address planted by return probes */
    uint8_t *stub;                  /* RX view */
    uint8_t *stub_rw;               /* RW view of the same bytes */
    uint64_t cont;                  /* stub + GSTUB_CONT */
    uint8_t orig[16];               /* bytes at addr before patching */
    uint8_t orig_long[32];          /* more of them, to notice reloaded code */
    uint32_t patch_len;             /* GPATCH_LEN or 1 (trap) */
    uint32_t reloc_len;             /* bytes of original code displaced */
    /* Instruction starts strictly inside the displaced bytes (offsets from
     * addr) and where their copies start in the stub: a thread found
     * stopped at one while the jump is written is moved to its copy. */
    uint32_t n_inner;
    uint8_t inner_off[8];
    uint16_t inner_stub[8];
    int int3_kept;                  /* a jump site left as int3 (threads) */
    enum gattach_method method;
    int is_entry;                   /* addr is a function's first byte */
    int patched;                    /* the jump/int3 is in place */
    int gated;                      /* template variant: GSITE_PLAIN, _GATED, _XSTACK */
    char note[160];                 /* why the trap fallback was used */
    struct ghook *hooks;            /* attach order, under the attach lock */
    struct gsite *retired_next;     /* on g_retired once replaced */
};

#define GSITE_OFF_HS 8
#define GSITE_OFF_RET_ONLY 16

struct ghook {
    struct gsite *site;
    enum ghook_kind kind;
    ghook_handler fn;
    uint64_t cookie;
    int preserves_fp;               /* gattach_opts.handler_preserves_fp */
    int keeps_fp;                   /* gattach_opts.handler_keeps_fp */
    struct ghook *next;
};


/* tramp_x86.c */
void graft_tramp_entry_fn(void) __attribute__((visibility("hidden")));
void graft_tramp_entry_mid(void) __attribute__((visibility("hidden")));
void graft_tramp_ret(void) __attribute__((visibility("hidden")));
/* graft_hook_enter_slow / graft_shadow_push_slow with xmm0-7 kept. */
void graft_tramp_enter_slow(void) __attribute__((visibility("hidden")));
void graft_tramp_push_slow(void) __attribute__((visibility("hidden")));
/* entry_fn: function entry (xmm0-7 saved, flags not restored); entry_mid:
 * any instruction (all xmm, flags); ret: planted return address. */

/* hook_hit.c, called by the trampolines (hidden: called without a PLT) */
GHIDDEN uint64_t graft_hook_enter(struct graft_pt_regs *regs, struct gsite *site);
GHIDDEN uint64_t graft_hook_return(struct graft_pt_regs *regs, uint64_t *slot);
/* From the entry template: 1 if the function is to be skipped (regs->ax
 * holds its result). */
GHIDDEN int graft_hook_enter_slow(struct graft_pt_regs *regs, struct gsite *site);
GHIDDEN void graft_shadow_push_slow(struct gthread *t, uint64_t *slot, struct gsite *site);
/* The continuation graft_hook_enter returns to skip the function: drops the
 * stub's slot and gap and returns to the caller (asm, in hook_hit.c). */
void graft_tramp_skip(void) GHIDDEN;
/* Where the return templates count hits skipped inside handlers. */
GHIDDEN uint64_t ghit_missed_addr(void);
/* The counters of gattach_get_stats() that hook_hit.c keeps. */
GHIDDEN void ghit_get_stats(struct gattach_stats *st);

/* The templates (tramp_x86.c) and the ends of their patched operands, in
 * three variants: without gates; (suffix _g) with GGATE_LEN-byte slots
 * around the handler loops that get the PKRU gates (isolation on); (suffix
 * _gs) the same, running the handlers on the thread's extension stack
 * (isolation with extension stacks, gattach_set_ext_stacks). */
#define GGATE_LEN 27                /* giso_emit_gate() output */
#define GTMPL_LABELS(sfx)                                                          \
    graft_tmpl_entry##sfx[], graft_tmpl_entry_end##sfx[], graft_tmpl_ret##sfx[],   \
    graft_tmpl_ret_end##sfx[], graft_tp_e_addr##sfx[], graft_tp_e_tls##sfx[],      \
    graft_tp_e_site##sfx[], graft_tp_e_gp##sfx[], graft_tp_e_ret##sfx[],           \
    graft_tp_e_site2##sfx[], graft_tp_e_slow##sfx[], graft_tp_e_push##sfx[],       \
    graft_tp_e_ret2##sfx[], graft_tp_e_call##sfx[], graft_tp_e_site3##sfx[],       \
    graft_tp_e_tls2##sfx[], graft_tp_e_call2##sfx[],                               \
    graft_tp_r_tls##sfx[], graft_tp_r_gp##sfx[], graft_tp_r_missed##sfx[],         \
    graft_tp_r_site##sfx[],                                                         \
    graft_tp_r_slow##sfx[]
extern const uint8_t GHIDDEN GTMPL_LABELS(), GTMPL_LABELS(_g), GTMPL_LABELS(_gs),
    graft_tp_e_gin_g[], graft_tp_e_gout_g[], graft_tp_r_gin_g[], graft_tp_r_gout_g[],
    graft_tp_e_gin_gs[], graft_tp_e_gout_gs[], graft_tp_r_gin_gs[], graft_tp_r_gout_gs[],
    graft_tp_e_xbase_g[], graft_tp_r_xbase_g[], graft_tp_e_xbase_gs[], graft_tp_r_xbase_gs[];

/* One template variant, for tramp_reloc.c. */
struct gtmpl {
    const uint8_t *entry, *entry_end, *e_addr, *e_tls, *e_site, *e_gp, *e_ret, *e_site2,
        *e_slow, *e_push, *e_gin, *e_gout, *e_ret2, *e_call, *e_site3, *e_tls2, *e_call2;
    const uint8_t *ret, *ret_end, *r_tls, *r_gp, *r_missed, *r_slow, *r_gin, *r_gout, *r_site;
    const uint8_t *e_xbase, *r_xbase;   /* gated: the control-block arena's address */
};

void gsys_set_isolation(int on) GHIDDEN;     /* syscall_dispatch.c */

struct gsite *gsite_lookup(uint64_t addr);

/* tramp_reloc.c: choose the method and write the stub for site. */
int gtramp_build(struct gsite *site, uint64_t func_size, int force_trap,
                 int no_trap, struct graft_err *err);

/* patch_text.c */
int gpatch_write(uint64_t addr, const void *bytes, size_t n, struct graft_err *err);
void gpatch_sync_cores(void);
/* The int3-first protocol on any len bytes at addr (entry_site.c uses it;
 * a thread hitting the int3 meanwhile is the caller's SIGTRAP to handle). */
int gpatch_replace(uint64_t addr, const uint8_t *new, size_t len, struct graft_err *err);
int gpatch_apply(struct gsite *site, struct graft_err *err);

/* meta_pages.c: sites, the site table, handler snapshots and hook records
 * (function hooks and GRAFT_ENTRY sites) come from an arena that is
 * read-only outside gmeta_open()/gmeta_close() (nesting, its own lock).
 * gmeta_alloc() and gmeta_free() only inside; gmeta_alloc() returns zeroed
 * memory, or NULL when the arena is full. */
void gmeta_open(void);
void gmeta_close(void);
void *gmeta_alloc(size_t size);
void gmeta_free(void *p, size_t size);

/* thread_park.c: the process's other threads (read before the int3 goes
 * in), and moving those stopped inside site's displaced bytes to the same
 * instruction in its stub. 0, or -1 with why[] naming a thread that could
 * not be moved (the caller then keeps the int3). */
int gpark_list_threads(int32_t **tids, int *n);
int gpark_threads_out(const struct gsite *site, const int32_t *tids, int n,
                      char *why, size_t why_len);
uint64_t gpark_threads_moved(void);
int gpatch_revert(struct gsite *site, struct graft_err *err);

/* symbols_elf.c: the function symbol containing addr (from the ELF file
 * that backs it). Returns 0 and fills start/size; -ESRCH when a file maps
 * addr but no function symbol covers it (stripped code); another negative
 * errno when no file maps it (anonymous memory) or it cannot be read. */
int gsym_containing(uint64_t addr, uint64_t *start, uint64_t *size);

/* func_hook.c: a SIGTRAP that is not ours goes to the handler installed
 * before ours (old), or, when there was none, kills the process as it
 * would have without graft. Shared by the function-hook and source-entry
 * trap handlers. */
void gtrap_pass_on(const struct sigaction *old, int sig, siginfo_t *si, void *uc);

#endif
