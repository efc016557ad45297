/*
 * pkey.c - detect PKU, own the extension protection key, build the gates.
 *
 * Invariants:
 *  - giso_init() decides once (under g_lock) and never changes its mind:
 *    g_state goes NONE -> ON or NONE -> OFF. Everything else reads the
 *    decision without locking, after init published it.
 *  - When OFF no instruction that needs PKU (RDPKRU/WRPKRU) is ever
 *    executed, so nothing here can raise #UD on a CPU without PKU.
 *  - The only WRPKRUs this file causes to run are in the gate page built at
 *    init: immediates in a page that is mapped read+execute only, and
 *    registered as a gate range so giso_scan() does not report it.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "isolation/isolation.h"
#include "util/pkru_pattern.h"
#include "util/settings.h"

enum iso_state { ISO_NONE = 0, ISO_ON, ISO_OFF };
#define HWCAP2_FSGSBASE_BIT (1ul << 1)     /* AT_HWCAP2: RDFSBASE & co. usable */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* What init decides, on a page of its own that is made read-only once the
 * decision is taken (protect_decision): the key, the PKRU values, where
 * the gate page's entry points and the control-block arena are. A host
 * write cannot change them afterwards. */
struct iso_ro {
    enum iso_state state;
    int pkey;
    uint32_t pkru_host, pkru_ext;
    void (*enter_fn)(void);
    void (*leave_fn)(void);
    uint64_t (*call_ext_fn)(void *fn, void *ctx, uint64_t len, uint64_t top);
    uint64_t xctl_base;         /* the control-block arena (GISO_XCTL_ARENA bytes) */
};
static union {
    struct iso_ro v;
    char page[4096];
} g_ro __attribute__((aligned(4096))) = { .v = { .state = ISO_NONE, .pkey = -1 } };
#define g_state (g_ro.v.state)
#define g_pkey (g_ro.v.pkey)
#define g_pkru_host (g_ro.v.pkru_host)
#define g_pkru_ext (g_ro.v.pkru_ext)
#define g_enter_fn (g_ro.v.enter_fn)
#define g_leave_fn (g_ro.v.leave_fn)
#define g_call_ext_fn (g_ro.v.call_ext_fn)
#define g_xctl_base (g_ro.v.xctl_base)
static char g_status[160] = "isolation: off (not initialised)";
static char g_off_reason[128];
/* This thread's extension stack (giso_xstack_bind): host-writable, so only
 * used where a wrong value costs the host itself (the "already on the
 * extension stack" test, the host-call thunks' switch, the signal filter's
 * range, which is cross-checked against the keyed block). Initial-exec
 * because the host-call thunks read it at a constant %fs offset. */
static __thread uint64_t t_xtop __attribute__((tls_model("initial-exec")));
/* This thread's control-block candidate (giso_xctl_bind): validated before
 * every use (xctl_valid, and the gate page's copy of that check). */
static __thread uint64_t t_xctl __attribute__((tls_model("initial-exec")));
/* Host signal handlers let onto their extension stack (giso_xstack_fault). */
static uint64_t g_xstack_grants;
static void pkru_xsave_offset_init(void);

void giso_cpu_features(struct giso_cpu *out)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    memset(out, 0, sizeof(*out));
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;                         /* no leaf 7: certainly no PKU */
    out->pku = !!(c & (1u << 3));
    out->ospke = !!(c & (1u << 4));
}

/* RDPKRU; only call when PKU is on (else #UD). */
static uint32_t rdpkru_raw(void)
{
    uint32_t eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}

uint32_t giso_rdpkru(void)
{
    return g_state == ISO_ON ? rdpkru_raw() : 0;
}

size_t giso_emit_gate(uint8_t *buf, size_t cap, uint32_t pkru)
{
    static const uint8_t save[] = { 0x50, 0x51, 0x52,       /* push rax, rcx, rdx */
                                    0x31, 0xc9, 0x31, 0xd2 }; /* xor ecx,ecx; xor edx,edx */
    static const uint8_t wrpkru[] = { 0x0f, 0x01, 0xef };
    /* je +2 over ud2: reached only if someone jumped to the wrpkru itself */
    static const uint8_t check[] = { 0x74, 0x02, 0x0f, 0x0b };
    static const uint8_t restore[] = { 0x5a, 0x59, 0x58 };  /* pop rdx, rcx, rax */
    size_t n = 0, need = sizeof(save) + 5 + sizeof(wrpkru) + 5 + sizeof(check) +
                         sizeof(restore);
    if (!buf || cap < need)
        return 0;
    memcpy(buf + n, save, sizeof(save)), n += sizeof(save);
    buf[n++] = 0xb8;                                /* mov eax, imm32 */
    memcpy(buf + n, &pkru, 4), n += 4;
    memcpy(buf + n, wrpkru, sizeof(wrpkru)), n += sizeof(wrpkru);
    buf[n++] = 0x3d;                                /* cmp eax, imm32 */
    memcpy(buf + n, &pkru, 4), n += 4;
    memcpy(buf + n, check, sizeof(check)), n += sizeof(check);
    memcpy(buf + n, restore, sizeof(restore)), n += sizeof(restore);
    return n;
}

int giso_check_emitted(const uint8_t *code, size_t len, const size_t *wrpkru_ok, size_t n,
                       size_t *bad)
{
    for (size_t at = gpkru_find(code, len, 0); at < len; at = gpkru_find(code, len, at + 1)) {
        int ok = 0;
        for (size_t i = 0; i < n && !ok; i++)
            ok = wrpkru_ok[i] == at && gpkru_pattern_at(code + at, len - at) == GPKRU_WRPKRU;
        if (!ok) {
            if (bad)
                *bad = at;
            return -1;
        }
    }
    return 0;
}

/* giso_call_ext as code: g_call_ext_fn(fn, ctx, len, use_stack), copied
 * from this template into the gate page with its two gate slots, the %fs
 * offset of t_xctl and the arena's address filled in (emit_call_ext).
 * Save rbx, r12, rbp (rsp is then 16-byte aligned) and keep the host rsp in
 * rbx; enter gate; with use_stack, validate this thread's control-block
 * candidate - inside the arena, on a block boundary, owned by this
 * thread's FS base (RDFSBASE) - or trap; if its stack is free, take it
 * (xtop := 0), store the host rsp at top-8 (host-call thunks find the host
 * stack there) and switch to top-16; call fn(ctx, len); give the stack
 * back (xtop := top, both read from the keyed block); back to the host
 * stack, exit gate (rax, the result, is preserved), ret. Nothing it
 * trusts after the enter gate comes from host-writable memory. */
__asm__(
    ".text\n"
    ".globl giso_tmpl_call_ext\n.hidden giso_tmpl_call_ext\n"
    "giso_tmpl_call_ext:\n"
    "  push %rbx\n  push %r12\n  push %rbp\n"
    "  mov %rsp, %rbx\n"
    "  mov %rdi, %rbp\n"
    "  xor %r12d, %r12d\n"
    "  .skip 27, 0xcc\n"
    ".globl giso_tp_cx_gin\n.hidden giso_tp_cx_gin\ngiso_tp_cx_gin:\n"
    "  test %rcx, %rcx\n  jz 1f\n"
    "  mov %fs:0x7ffffff0, %rax\n"
    ".globl giso_tp_cx_tls\n.hidden giso_tp_cx_tls\ngiso_tp_cx_tls:\n"
    "  movabs $0x8888888888888888, %r11\n"
    ".globl giso_tp_cx_base\n.hidden giso_tp_cx_base\ngiso_tp_cx_base:\n"
    "  mov %rax, %r10\n  sub %r11, %r10\n"
    "  cmp $" "0x100000" ", %r10\n  jae 9f\n"
    "  test $0xff, %r10d\n  jnz 9f\n"
    "  rdfsbase %r11\n  cmp %r11, (%rax)\n  jne 9f\n"
    "  mov 8(%rax), %r11\n  test %r11, %r11\n  jz 1f\n"   /* in use: nested */
    "  mov %rax, %r12\n  movq $0, 8(%rax)\n"
    "  mov %rbx, -8(%r11)\n  lea -16(%r11), %rsp\n"
    "1:\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  call *%rbp\n"
    "  test %r12, %r12\n  jz 2f\n"
    "  mov 16(%r12), %rcx\n  mov %rcx, 8(%r12)\n"
    "2:\n  mov %rbx, %rsp\n"
    "  .skip 27, 0xcc\n"
    ".globl giso_tp_cx_gout\n.hidden giso_tp_cx_gout\ngiso_tp_cx_gout:\n"
    "  pop %rbp\n  pop %r12\n  pop %rbx\n  ret\n"
    "9:\n  ud2\n"
    ".globl giso_tmpl_call_ext_end\n.hidden giso_tmpl_call_ext_end\ngiso_tmpl_call_ext_end:\n");
extern const uint8_t giso_tmpl_call_ext[], giso_tmpl_call_ext_end[], giso_tp_cx_gin[],
    giso_tp_cx_gout[], giso_tp_cx_tls[], giso_tp_cx_base[];
_Static_assert(GISO_XCTL_ARENA == 0x100000 && GISO_XCTL_SIZE == 0x100,
               "the arena check's immediates in giso_tmpl_call_ext");

static int32_t tls_offset_of(const void *tls_var)
{
    uint64_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return (int32_t)((uint64_t)(uintptr_t)tls_var - tp);
}

static size_t emit_call_ext(uint8_t *p)
{
    const uint8_t *t = giso_tmpl_call_ext;
    size_t n = (size_t)(giso_tmpl_call_ext_end - t);
    memcpy(p, t, n);
    giso_emit_gate(p + (giso_tp_cx_gin - t) - 27, 27, g_pkru_ext);
    giso_emit_gate(p + (giso_tp_cx_gout - t) - 27, 27, g_pkru_host);
    int32_t tls = tls_offset_of(&t_xctl);
    memcpy(p + (giso_tp_cx_tls - t) - 4, &tls, 4);
    uint64_t base = g_xctl_base;
    memcpy(p + (giso_tp_cx_base - t) - 8, &base, 8);
    return n;
}

/* Emit enter and leave gates (each followed by ret) into one page, make it
 * read+execute, and register it so the scanner knows it is ours. */
static int build_gate_page(struct graft_err *err)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return graft_errf(err, -errno, "isolation: mmap of the gate page failed: %s",
                          strerror(errno));
    memset(p, 0xcc, (size_t)page);                  /* int3 everywhere else */
    size_t n = giso_emit_gate(p, 64, g_pkru_ext);
    p[n] = 0xc3;
    n = giso_emit_gate(p + 64, 64, g_pkru_host);
    p[64 + n] = 0xc3;
    emit_call_ext(p + 128);
    /* The arena's address and a TLS offset are immediates in it: like every
     * stub graft emits, no stray WRPKRU/XRSTOR pattern may come of them. */
    const size_t ok[] = { GISO_GATE_WRPKRU_OFF, 64 + GISO_GATE_WRPKRU_OFF,
                          128 + (size_t)(giso_tp_cx_gin - giso_tmpl_call_ext) - 27 +
                              GISO_GATE_WRPKRU_OFF,
                          128 + (size_t)(giso_tp_cx_gout - giso_tmpl_call_ext) - 27 +
                              GISO_GATE_WRPKRU_OFF };
    size_t bad = 0;
    if (giso_check_emitted(p, (size_t)page, ok, 4, &bad) < 0) {
        munmap(p, (size_t)page);
        return graft_errf(err, -ENOTSUP, "isolation: the gate page would hold a stray "
                          "WRPKRU/XRSTOR byte pattern at offset %zu (from the arena's address "
                          "or a TLS offset); not built", bad);
    }
    if (mprotect(p, (size_t)page, PROT_READ | PROT_EXEC) != 0) {
        int e = errno;
        munmap(p, (size_t)page);
        return graft_errf(err, -e, "isolation: mprotect(PROT_READ|PROT_EXEC) of the gate "
                          "page failed: %s", strerror(e));
    }
    int rc = giso_register_gate_range(p, (size_t)page);
    if (rc < 0) {
        munmap(p, (size_t)page);
        return graft_errf(err, rc, "isolation: cannot register the gate page");
    }
    g_enter_fn = (void (*)(void))(void *)p;
    g_leave_fn = (void (*)(void))(void *)(p + 64);
    g_call_ext_fn = (uint64_t (*)(void *, void *, uint64_t, uint64_t))(void *)(p + 128);
    return 0;
}

static void set_off(const char *reason)
{
    snprintf(g_off_reason, sizeof(g_off_reason), "%s", reason);
    snprintf(g_status, sizeof(g_status), "isolation: off (%s)", reason);
    g_state = ISO_OFF;
}

static const char *pkey_alloc_reason(int e, char *buf, size_t len)
{
    switch (e) {
    case ENOSPC:
        return "no free protection key: all 15 are allocated in this process";
    case ENOSYS:
        return "kernel has no pkey_alloc system call";
    case EINVAL:
        return "kernel does not support protection keys (pkey_alloc: EINVAL)";
    default:
        snprintf(buf, len, "pkey_alloc failed: %s", strerror(e));
        return buf;
    }
}

/* GRAFT_ISOLATION: NULL/"" (default), "on", "gates", "strict" ask for
 * isolation, "off" switches it off; anything else is an error. */
static int env_mode_ok(const char *env)
{
    return !env || !*env || !strcmp(env, "on") || !strcmp(env, "gates") || !strcmp(env, "strict");
}

int giso_available(void)
{
    if (g_state != ISO_NONE)
        return g_state == ISO_ON;
    struct giso_cpu cpu;
    giso_cpu_features(&cpu);
    return env_mode_ok(gsetting("GRAFT_ISOLATION")) && cpu.pku && cpu.ospke;
}

/* The decision itself; called once with g_lock held. */
static int decide(const struct giso_opts *o, struct graft_err *err)
{
    const char *env = gsetting("GRAFT_ISOLATION");
    struct giso_cpu cpu;
    char buf[96];

    if (o && o->force_off)
        return set_off("disabled by opts.force_off"), 0;
    if (env && strcmp(env, "off") == 0)
        return set_off("disabled by GRAFT_ISOLATION=off"), 0;
    if (!env_mode_ok(env))
        return graft_errf(err, -EINVAL, "isolation: GRAFT_ISOLATION=%s is not one of "
                          "off, gates, on (the default; \"strict\" is a synonym)", env);
    giso_cpu_features(&cpu);
    if (!cpu.pku)
        return set_off("CPU has no PKU"), 0;
    if (!cpu.ospke)
        return set_off("CPU has PKU but the OS did not enable it (no OSPKE)"), 0;

    if (!(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE_BIT))
        return set_off("the kernel does not let user code read the FS base (FSGSBASE, "
                       "Linux >= 5.9), which binds keyed control blocks to threads"), 0;

    int key = pkey_alloc(0, PKEY_DISABLE_ACCESS);
    if (key < 0)
        return set_off(pkey_alloc_reason(errno, buf, sizeof(buf))), 0;
    /* The control-block arena: block 0 is its header (the count of blocks
     * handed out, written before the key is applied); never unmapped. */
    uint8_t *arena = mmap(NULL, GISO_XCTL_ARENA, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) {
        pkey_free(key);
        return set_off("could not map the control-block arena"), 0;
    }
    ((uint64_t *)arena)[1] = 1;
    if (pkey_mprotect(arena, GISO_XCTL_ARENA, PROT_READ | PROT_WRITE, key) != 0) {
        munmap(arena, GISO_XCTL_ARENA);
        pkey_free(key);
        return set_off("could not key the control-block arena"), 0;
    }
    g_xctl_base = (uint64_t)(uintptr_t)arena;

    /* pkey_alloc set this thread's rights for key to "access disabled";
     * host additionally denies writes so both bits are in a known state. */
    uint32_t bits = 3u << (2 * key);
    g_pkey = key;
    g_pkru_host = rdpkru_raw() | bits;
    g_pkru_ext = g_pkru_host & ~bits;
    int rc = build_gate_page(err);
    if (rc < 0) {
        munmap(arena, GISO_XCTL_ARENA);
        g_xctl_base = 0;
        pkey_free(key);
        g_pkey = -1;
        g_pkru_host = g_pkru_ext = 0;
        set_off("could not build the gate page");
        return rc;
    }
    pkru_xsave_offset_init();
    g_state = ISO_ON;
    snprintf(g_status, sizeof(g_status), "isolation: on (pkey %d)", key);
    g_leave_fn();                   /* this thread now runs as the host */
    return 0;
}

int giso_init(const struct giso_opts *opts, struct graft_err *err)
{
    struct giso_opts o = { 0 };
    if (opts) {
        size_t n = opts->sz && opts->sz < sizeof(o) ? opts->sz : sizeof(o);
        memcpy(&o, opts, n);
    }
    int rc = 0;
    pthread_mutex_lock(&g_lock);
    if (g_state == ISO_NONE) {
        rc = decide(&o, err);
        if (g_state != ISO_NONE)    /* decided for good: seal it */
            mprotect(&g_ro, sizeof(g_ro), PROT_READ);
    }
    pthread_mutex_unlock(&g_lock);
    if (rc < 0)
        return rc;
    if (g_state != ISO_ON && o.require)
        return graft_errf(err, -ENOTSUP,
                          "isolation required but unavailable: %s; run on a CPU with "
                          "memory protection keys (cpuinfo flags pku and ospke, Linux >= "
                          "4.9 with CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS) or drop "
                          "require_isolation", g_off_reason);
    return 0;
}

int giso_enabled(void) { return g_state == ISO_ON; }
int giso_pkey(void) { return g_state == ISO_ON ? g_pkey : -1; }
const char *giso_status(void) { return g_status; }
uint32_t giso_pkru_host(void) { return g_state == ISO_ON ? g_pkru_host : 0; }
uint32_t giso_pkru_ext(void) { return g_state == ISO_ON ? g_pkru_ext : 0; }

void giso_enter(void)
{
    if (g_state == ISO_ON)
        g_enter_fn();
}

void giso_leave(void)
{
    if (g_state == ISO_ON)
        g_leave_fn();
}

/* 1 when rsp is inside this thread's bound extension stack. */
static inline int on_xstack(uint64_t top)
{
    uint64_t sp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
    return top && sp < top && sp >= top - GISO_XSTACK_SIZE;
}

uint64_t giso_call_ext_on(uint64_t (*fn)(void *ctx, uint64_t len), void *ctx, uint64_t len,
                          uint64_t top)
{
    if (g_state == ISO_ON) {
        /* Already on the extension stack: we are extension-side code (a
         * helper's nested hook), PKRU is the ext value; a second gate pair
         * would leave it host on return. */
        if (on_xstack(t_xtop))
            return fn(ctx, len);
        return g_call_ext_fn((void *)fn, ctx, len, top);
    }
    return fn(ctx, len);
}

uint64_t giso_call_ext(uint64_t (*fn)(void *ctx, uint64_t len), void *ctx, uint64_t len)
{
    return giso_call_ext_on(fn, ctx, len, 0);
}

/* ---- extension stacks ---- */

uint64_t giso_xstack_alloc(struct graft_err *err)
{
    if (g_state != ISO_ON)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    size_t total = GISO_XSTACK_SIZE + (size_t)page;
    uint8_t *p = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (p == MAP_FAILED) {
        graft_errf(err, -errno, "isolation: mmap of an extension stack failed: %s",
                   strerror(errno));
        return 0;
    }
    /* The lowest page stays PROT_NONE with the default key: an overflow
     * faults instead of running into whatever is mapped below. */
    if (giso_protect(p + page, GISO_XSTACK_SIZE, PROT_READ | PROT_WRITE, err) < 0) {
        munmap(p, total);
        return 0;
    }
    return (uint64_t)(uintptr_t)(p + total);
}

void giso_xstack_bind(uint64_t top)
{
    t_xtop = top;
}

uint64_t giso_xstack_bound(void)
{
    return t_xtop;
}

int giso_on_xstack(void)
{
    return g_state == ISO_ON && on_xstack(t_xtop);
}

/* ---- per-thread control blocks ---- */

struct giso_xctl {
    uint64_t owner;             /* GISO_XCTL_OFF_OWNER */
    uint64_t xtop;              /* GISO_XCTL_OFF_XTOP */
    uint64_t top;               /* GISO_XCTL_OFF_TOP */
    uint64_t hc_ext_rsp;        /* 24: a host call from the stack: the extension's rsp */
    uint64_t hc_host_rsp;       /* 32: ... and the host rsp at the call */
    uint64_t spare[3];
    uint8_t user[GISO_XCTL_USER];
};
_Static_assert(sizeof(struct giso_xctl) == GISO_XCTL_SIZE &&
               offsetof(struct giso_xctl, xtop) == GISO_XCTL_OFF_XTOP &&
               offsetof(struct giso_xctl, top) == GISO_XCTL_OFF_TOP &&
               offsetof(struct giso_xctl, user) == GISO_XCTL_OFF_USER, "control block layout");

static inline uint64_t fs_base(void)
{
    uint64_t v;
    __asm__ volatile("rdfsbase %0" : "=r"(v));
    return v;
}

uint64_t giso_xctl_base(void)
{
    return g_state == ISO_ON ? g_xctl_base : 0;
}

/* c is a block of the arena (not its header) owned by this thread? Reads
 * the block: PKRU must be ext. */
static int xctl_ok(uint64_t c)
{
    uint64_t off = c - g_xctl_base;
    return g_xctl_base && off >= GISO_XCTL_SIZE && off < GISO_XCTL_ARENA &&
           !(off % GISO_XCTL_SIZE) && ((struct giso_xctl *)(uintptr_t)c)->owner == fs_base();
}

struct giso_xctl *giso_xctl_self(void)
{
    uint64_t c = t_xctl;
    if (g_state != ISO_ON || !c)
        return NULL;
    if (!xctl_ok(c))
        __builtin_trap();           /* a host write: never use it */
    return (struct giso_xctl *)(uintptr_t)c;
}

void *giso_xctl_user_checked(void *cand)
{
    if (g_state != ISO_ON || (rdpkru_raw() & (3u << (2 * g_pkey))))
        return cand;
    struct giso_xctl *c = giso_xctl_self();
    if (!c)
        __builtin_trap();           /* the candidate was cleared under a running extension */
    return c->user;
}

struct giso_xctl *giso_xctl_new(struct graft_err *err)
{
    if (g_state != ISO_ON) {
        graft_errf(err, -ENOTSUP, "isolation: control blocks need isolation on");
        return NULL;
    }
    struct giso_xctl *c = NULL;
    pthread_mutex_lock(&g_lock);
    giso_enter();
    uint64_t *count = (uint64_t *)(uintptr_t)g_xctl_base + 1;
    if (*count < GISO_XCTL_MAX)
        c = (struct giso_xctl *)(uintptr_t)(g_xctl_base + GISO_XCTL_SIZE * (*count)++);
    giso_leave();
    pthread_mutex_unlock(&g_lock);
    if (!c)
        graft_errf(err, -ENOSPC, "isolation: all %u control blocks are in use",
                   GISO_XCTL_MAX - 1);
    return c;
}

void giso_xctl_bind(struct giso_xctl *c)
{
    if (g_state != ISO_ON || !c)
        return;
    giso_enter();
    c->owner = fs_base();
    uint64_t top = c->top;
    giso_leave();
    t_xctl = (uint64_t)(uintptr_t)c;
    t_xtop = top;
}

void giso_xctl_set_stack(struct giso_xctl *c, uint64_t top)
{
    if (g_state != ISO_ON || !c)
        return;
    giso_enter();
    c->top = c->xtop = top;
    giso_leave();
    if (t_xctl == (uint64_t)(uintptr_t)c)
        t_xtop = top;
}

void giso_xctl_release(struct giso_xctl *c)
{
    if (g_state != ISO_ON || !c)
        return;
    giso_enter();
    c->owner = 0;
    c->xtop = c->top;
    c->hc_ext_rsp = c->hc_host_rsp = 0;
    giso_leave();
    if (t_xctl == (uint64_t)(uintptr_t)c)
        t_xctl = t_xtop = 0;
}

int giso_xctl_release_stale(uint64_t frame)
{
    uint64_t cand = t_xctl;
    int released = 0;
    if (g_state != ISO_ON || !cand)
        return 0;
    /* Extension-side code (a helper that reached a hook: the key is open)
     * is inside a live section by definition - and must not get the host
     * PKRU back from our leave gate. */
    if (!(rdpkru_raw() & (3u << (2 * g_pkey))))
        return 0;
    giso_enter();
    struct giso_xctl *c = (struct giso_xctl *)(uintptr_t)cand;
    if (xctl_ok(cand) && c->top && !c->xtop && c->hc_host_rsp && frame >= c->hc_host_rsp) {
        c->xtop = c->top;
        c->hc_ext_rsp = c->hc_host_rsp = 0;
        released = 1;
    }
    giso_leave();
    return released;
}

int giso_xctl_busy(struct giso_xctl *c)
{
    if (g_state != ISO_ON || !c)
        return 0;
    giso_enter();
    int busy = c->top && !c->xtop;
    giso_leave();
    return busy;
}

/* ---- metadata pages ---- */

static size_t page_round(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (len + page - 1) & ~(page - 1);
}

void *giso_meta_alloc(size_t len, struct graft_err *err)
{
    size_t n = page_round(len ? len : 1);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        graft_errf(err, -errno, "isolation: mmap of %zu bytes of metadata failed: %s", n,
                   strerror(errno));
        return NULL;
    }
    if (g_state == ISO_ON && giso_protect(p, n, PROT_READ | PROT_WRITE, err) < 0) {
        munmap(p, n);
        return NULL;
    }
    return p;
}

void giso_meta_free(void *p, size_t len)
{
    if (p)
        munmap(p, page_round(len ? len : 1));
}

void *giso_meta_alloc_cb(size_t len, void *arg)
{
    (void)arg;
    return giso_meta_alloc(len, NULL);
}

void giso_meta_free_cb(void *p, size_t len, void *arg)
{
    (void)arg;
    giso_meta_free(p, len);
}

/* ---- host signal handlers on an extension stack ---- */

/* Where PKRU sits in the XSAVE (standard, non-compacted) image the kernel
 * writes into a signal frame: CPUID leaf 0xD, sub-leaf 9 (the PKRU state
 * component) gives its offset in ebx. Read once at init, 0 if unknown. */
#define XFEATURE_PKRU   9
#define FP_XSTATE_MAGIC 0x46505853u     /* "FPXS": an XSAVE image follows */
static uint32_t g_pkru_xoff;

static void pkru_xsave_offset_init(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_count(0xd, XFEATURE_PKRU, &a, &b, &c, &d) && a >= 4)
        g_pkru_xoff = b;
}

/* The layout of the 48 software-reserved bytes at the end of the legacy
 * FXSAVE area of a signal frame (the kernel's struct _fpx_sw_bytes). */
struct fpx_sw {
    uint32_t magic1, extended_size;
    uint64_t xfeatures;
    uint32_t xstate_size, padding[7];
};

int giso_xstack_fault(const siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    uint64_t top = t_xtop;
    if (g_state != ISO_ON || !top || !si || !uc || si->si_signo != SIGSEGV ||
        si->si_code != SEGV_PKUERR || (int)si->si_pkey != g_pkey || !g_pkru_xoff)
        return 0;
    uint64_t addr = (uint64_t)(uintptr_t)si->si_addr;
    uint64_t sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
    uint64_t lo = top - GISO_XSTACK_SIZE;
    /* Host code whose own stack is the extension stack: only a handler the
     * kernel started on it. Anything else (a host access to a map, a stray
     * pointer into the stack from host code on its own stack) stays a fault. */
    if (addr < lo || addr >= top || sp < lo || sp >= top)
        return 0;
    /* t_xtop is host-writable: the range must be the keyed block's stack. */
    uint64_t c = t_xctl, ktop = 0;
    g_enter_fn();
    if (c && xctl_ok(c))
        ktop = ((struct giso_xctl *)(uintptr_t)c)->top;
    g_leave_fn();
    if (ktop != top)
        return 0;
    uint8_t *fx = (uint8_t *)uc->uc_mcontext.fpregs;
    if (!fx)
        return 0;
    const struct fpx_sw *sw = (const struct fpx_sw *)(fx + 464);
    if (sw->magic1 != FP_XSTATE_MAGIC || !(sw->xfeatures & (1ull << XFEATURE_PKRU)) ||
        (uint64_t)g_pkru_xoff + 4 > sw->xstate_size)
        return 0;
    uint64_t *xstate_bv = (uint64_t *)(fx + 512);
    uint32_t *pkru = (uint32_t *)(fx + g_pkru_xoff);
    uint32_t key_bits = 3u << (2 * g_pkey);
    uint32_t saved = (*xstate_bv & (1ull << XFEATURE_PKRU)) ? *pkru : 0;
    if (!(saved & key_bits))
        return 0;                       /* the key was open: not our case */
    *pkru = saved & ~key_bits;
    *xstate_bv |= 1ull << XFEATURE_PKRU;
    __atomic_fetch_add(&g_xstack_grants, 1, __ATOMIC_RELAXED);
    return 1;
}

uint64_t giso_xstack_grants(void)
{
    return __atomic_load_n(&g_xstack_grants, __ATOMIC_RELAXED);
}

/* ---- host-call thunks ---- */

/* One thunk per host function (and argument-copy mask), in its own page
 * that is written once and then made read+execute (never writable again),
 * so a thunk's target and its PKRU immediates cannot be changed afterwards.
 * Thunks are never freed (JIT code may keep calling them) and are shared by
 * every caller of the same function. */
#define THUNK_MAX 256
static struct { gvm_helper_fn fn, thunk; uint32_t mem_args; } g_thunks[THUNK_MAX];
static size_t g_nthunks;

/* Just enough of an x86-64 encoder for the argument copies. */
enum { X_RAX = 0, X_RCX = 1, X_RDX = 2, X_RSP = 4, X_RSI = 6, X_RDI = 7, X_R8 = 8,
       X_R9 = 9, X_R10 = 10 };
static const uint8_t g_arg_reg[5] = { X_RDI, X_RSI, X_RDX, X_RCX, X_R8 };

struct xbuf { uint8_t *p; size_t n; };

static void xb(struct xbuf *b, uint8_t v) { b->p[b->n++] = v; }

/* REX with W and the high bits of reg (R), index (X), base/rm (B); omitted
 * when it would be a bare 0x40. */
static void xrex(struct xbuf *b, int w, int reg, int idx, int rm)
{
    uint8_t r = (uint8_t)(0x40 | (w ? 8 : 0) | (reg & 8 ? 4 : 0) | (idx & 8 ? 2 : 0) |
                          (rm & 8 ? 1 : 0));
    if (r != 0x40)
        xb(b, r);
}

/* op r/m64(rm), r64(reg), register form: 48 op /r */
static void xrr(struct xbuf *b, uint8_t op, int reg, int rm)
{
    xrex(b, 1, reg, 0, rm);
    xb(b, op);
    xb(b, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* [base + index] memory operand (mod 00, SIB); base is never rbp/r13 here. */
static void xsib(struct xbuf *b, int reg, int base, int idx)
{
    xb(b, (uint8_t)((reg & 7) << 3 | 4));
    xb(b, (uint8_t)((idx & 7) << 3 | (base & 7)));
}

/* A rel8 jump to be patched: returns where its displacement byte is. */
static size_t xjcc(struct xbuf *b, uint8_t op)
{
    xb(b, op);
    xb(b, 0);
    return b->n - 1;
}

static void xlink(struct xbuf *b, size_t at, size_t target)
{
    b->p[at] = (uint8_t)(int8_t)((long)target - (long)(at + 1));
}

/* The same with a rel32 (0f 8x): for the far jump to the trap. */
static size_t xjcc32(struct xbuf *b, uint8_t op)
{
    xb(b, 0x0f);
    xb(b, op);
    b->n += 4;
    return b->n - 4;
}

static void xlink32(struct xbuf *b, size_t at, size_t target)
{
    int32_t d = (int32_t)((long)target - (long)(at + 4));
    memcpy(b->p + at, &d, 4);
}

/* Copy the memory argument reg_p points to (reg_s bytes, the next argument)
 * to the stack below rsp and point reg_p at the copy, unless reg_p is NULL:
 *     test P,P; jz done; cmp S,MAX; ja trap; mov rax,S; add rax,15;
 *     and rax,-16; sub rsp,rax; xor r9,r9; jmp q_test
 *   q: mov r10,[P+r9]; mov [rsp+r9],r10; add r9,8
 *   q_test: lea rax,[r9+8]; cmp rax,S; jbe q; jmp b_test
 *   b: movzx r10d,byte [P+r9]; mov [rsp+r9],r10b; inc r9
 *   b_test: cmp r9,S; jb b; mov P,rsp
 *   done:
 * Eight bytes at a time, then the tail byte by byte: never a byte outside
 * [P, P+S). rax, r9, r10 are free (not arguments; the call clobbers them
 * anyway). rsp stays 16-byte aligned. A size over GISO_HOST_COPY_MAX (the
 * EIM policy never lets one through) jumps to trap (ud2). */
static void emit_copy_arg(struct xbuf *b, int P, int S, size_t *trap_fix, int *n_trap)
{
    xrr(b, 0x85, P, P);                             /* test P, P */
    size_t j_done = xjcc(b, 0x74);                  /* jz done */
    xrex(b, 1, 0, 0, S);                            /* cmp S, imm32 */
    xb(b, 0x81), xb(b, (uint8_t)(0xf8 | (S & 7)));
    uint32_t max = GISO_HOST_COPY_MAX;
    memcpy(b->p + b->n, &max, 4), b->n += 4;
    trap_fix[(*n_trap)++] = xjcc32(b, 0x87);        /* ja trap (rel32) */
    xrr(b, 0x89, S, X_RAX);                         /* mov rax, S */
    xb(b, 0x48), xb(b, 0x83), xb(b, 0xc0), xb(b, 15);       /* add rax, 15 */
    xb(b, 0x48), xb(b, 0x83), xb(b, 0xe0), xb(b, 0xf0);     /* and rax, -16 */
    xrr(b, 0x29, X_RAX, X_RSP);                     /* sub rsp, rax */
    xb(b, 0x4d), xb(b, 0x31), xb(b, 0xc9);          /* xor r9, r9 */
    size_t j_qtest = xjcc(b, 0xeb);                 /* jmp q_test */
    size_t q = b->n;
    xrex(b, 1, X_R10, X_R9, P), xb(b, 0x8b), xsib(b, X_R10, P, X_R9);     /* mov r10,[P+r9] */
    xrex(b, 1, X_R10, X_R9, X_RSP), xb(b, 0x89), xsib(b, X_R10, X_RSP, X_R9); /* mov [rsp+r9],r10 */
    xb(b, 0x49), xb(b, 0x83), xb(b, 0xc1), xb(b, 8);        /* add r9, 8 */
    xlink(b, j_qtest, b->n);
    xb(b, 0x49), xb(b, 0x8d), xb(b, 0x41), xb(b, 8);        /* lea rax, [r9+8] */
    xrr(b, 0x39, S, X_RAX);                         /* cmp rax, S */
    xlink(b, xjcc(b, 0x76), q);                     /* jbe q */
    size_t j_btest = xjcc(b, 0xeb);                 /* jmp b_test */
    size_t bl = b->n;
    xrex(b, 0, X_R10, X_R9, P), xb(b, 0x0f), xb(b, 0xb6), xsib(b, X_R10, P, X_R9);
    xrex(b, 0, X_R10, X_R9, X_RSP), xb(b, 0x88), xsib(b, X_R10, X_RSP, X_R9);
    xb(b, 0x49), xb(b, 0xff), xb(b, 0xc1);          /* inc r9 */
    xlink(b, j_btest, b->n);
    xrr(b, 0x39, S, X_R9);                          /* cmp r9, S */
    xlink(b, xjcc(b, 0x72), bl);                    /* jb b */
    xrr(b, 0x89, X_RSP, P);                         /* mov P, rsp */
    xlink(b, j_done, b->n);
}

/* The host-call thunk's fixed parts, copied by emit_host_thunk (the %fs
 * offset of t_xctl and the arena's address patched at the labels).
 *
 * pre: push rbx; rbx = rsp; r11 = 0. If this thread has a control-block
 * candidate, validate it (in the arena, on a block boundary, owned by this
 * thread's FS base) or trap; if rsp is inside that block's extension stack
 * (its top from the keyed block, not from host memory), the caller is an
 * extension on its stack: push the other callee-saved registers there
 * (keyed), record that rsp in the block (hc_ext_rsp), r11 = the block, and
 * switch to the host stack below the rsp the trampoline stored at top-8.
 * Align rsp. Only rax, r9, r10, r11 are used: the argument registers pass
 * through.
 *
 * post_sw (after the host function returned and the enter gate, on the
 * path that switched): the block again from the candidate, validated (a
 * host that cleared or changed it meanwhile gets a trap, never a stack of
 * its choice), this rsp must be the one recorded at the call; back to the
 * recorded extension rsp and restore the callee-saved registers from the
 * extension stack - not the values the host function returned with, which
 * passed through host memory - and return. rax, the result, is kept. */
__asm__(
    ".text\n"
    ".globl giso_tmpl_hc_pre\n.hidden giso_tmpl_hc_pre\ngiso_tmpl_hc_pre:\n"
    "  push %rbx\n  mov %rsp, %rbx\n  xor %r11d, %r11d\n"
    "  mov %fs:0x7ffffff0, %rax\n"
    ".globl giso_tp_hc_tls\n.hidden giso_tp_hc_tls\ngiso_tp_hc_tls:\n"
    "  test %rax, %rax\n  jz 1f\n"
    "  movabs $0x8888888888888888, %r10\n"
    ".globl giso_tp_hc_base\n.hidden giso_tp_hc_base\ngiso_tp_hc_base:\n"
    "  mov %rax, %r9\n  sub %r10, %r9\n"
    "  sub $0x100, %r9\n  cmp $0xfff00, %r9\n  jae 9f\n"   /* header or outside */
    "  test $0xff, %r9b\n  jnz 9f\n"
    "  rdfsbase %r10\n  cmp %r10, (%rax)\n  jne 9f\n"
    "  mov 16(%rax), %r10\n  cmp %r10, %rsp\n  jae 1f\n"
    "  lea -0x10000(%r10), %r9\n  cmp %r9, %rsp\n  jb 1f\n"
    "  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  mov %rsp, 24(%rax)\n"
    "  mov %rax, %r11\n"
    "  mov -8(%r10), %rsp\n"
    "  jmp 1f\n"
    "9:\n  ud2\n"
    "1:\n  and $-16, %rsp\n"
    ".globl giso_tmpl_hc_pre_end\n.hidden giso_tmpl_hc_pre_end\ngiso_tmpl_hc_pre_end:\n"

    ".globl giso_tmpl_hc_post\n.hidden giso_tmpl_hc_post\ngiso_tmpl_hc_post:\n"
    "  mov %fs:0x7ffffff0, %r11\n"
    ".globl giso_tp_hc_tls2\n.hidden giso_tp_hc_tls2\ngiso_tp_hc_tls2:\n"
    "  movabs $0x8888888888888888, %r10\n"
    ".globl giso_tp_hc_base2\n.hidden giso_tp_hc_base2\ngiso_tp_hc_base2:\n"
    "  mov %r11, %r9\n  sub %r10, %r9\n"
    "  sub $0x100, %r9\n  cmp $0xfff00, %r9\n  jae 9f\n"
    "  test $0xff, %r9b\n  jnz 9f\n"
    "  rdfsbase %r10\n  cmp %r10, (%r11)\n  jne 9f\n"
    "  cmp 32(%r11), %rsp\n  jne 9f\n"
    "  mov 24(%r11), %rsp\n"
    "  test %rsp, %rsp\n  jz 9f\n"
    "  movq $0, 24(%r11)\n  movq $0, 32(%r11)\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n  ret\n"
    "9:\n  ud2\n"
    ".globl giso_tmpl_hc_post_end\n.hidden giso_tmpl_hc_post_end\ngiso_tmpl_hc_post_end:\n");
extern const uint8_t giso_tmpl_hc_pre[], giso_tmpl_hc_pre_end[], giso_tp_hc_tls[],
    giso_tp_hc_base[], giso_tmpl_hc_post[], giso_tmpl_hc_post_end[], giso_tp_hc_tls2[],
    giso_tp_hc_base2[];
_Static_assert(GISO_XSTACK_SIZE == 0x10000, "the thunk's stack-range immediate");

/* Copy the piece [t, end) to b, patching the t_xctl offset and the arena
 * address that end at the labels ltls and lbase. */
static void put_piece(struct xbuf *b, const uint8_t *t, const uint8_t *end,
                      const uint8_t *ltls, const uint8_t *lbase)
{
    int32_t tls = tls_offset_of(&t_xctl);
    uint64_t base = g_xctl_base;
    memcpy(b->p + b->n, t, (size_t)(end - t));
    memcpy(b->p + b->n + (ltls - t) - 4, &tls, 4);
    memcpy(b->p + b->n + (lbase - t) - 8, &base, 8);
    b->n += (size_t)(end - t);
}

/* exit gate; movabs rax, fn; call rax; enter gate. The gates' WRPKRU
 * offsets go to gates[*ngates...]. */
static void put_call(struct xbuf *b, uint64_t target, size_t *gates, int *ngates)
{
    gates[(*ngates)++] = b->n + GISO_GATE_WRPKRU_OFF;
    b->n += giso_emit_gate(b->p + b->n, GISO_GATE_MAX, g_pkru_host);
    xb(b, 0x48), xb(b, 0xb8);                       /* movabs rax, imm64 */
    memcpy(b->p + b->n, &target, 8), b->n += 8;
    xb(b, 0xff), xb(b, 0xd0);                       /* call rax */
    gates[(*ngates)++] = b->n + GISO_GATE_WRPKRU_OFF;
    b->n += giso_emit_gate(b->p + b->n, GISO_GATE_MAX, g_pkru_ext);
}

/* The thunk: pre (above); copy each memory argument (mem_args) to the host
 * stack, still with the extension's PKRU, which can read extension memory
 * (map values, the extension stack) and write the host stack; then two
 * copies of the call: if pre switched stacks (r11, set by our own code just
 * before), record the host rsp in the block (hc_host_rsp), call, and
 * post_sw; else call and rsp = rbx, pop rbx, ret (an extension that runs on
 * a host stack - gates only, or nested - has its frames in host memory
 * anyway). Which copy returns is decided by the return address the `call`
 * pushed, not by any value the host function could have changed. */
static size_t emit_host_thunk(uint8_t *p, gvm_helper_fn fn, uint32_t mem_args,
                              size_t gates[4])
{
    int ngates = 0;
    uint64_t target = (uint64_t)(uintptr_t)fn;
    struct xbuf b = { p, 0 };
    put_piece(&b, giso_tmpl_hc_pre, giso_tmpl_hc_pre_end, giso_tp_hc_tls, giso_tp_hc_base);
    size_t trap_fix[5];
    int n_trap = 0;
    for (int i = 0; i < 4; i++)
        if (mem_args & (1u << i))
            emit_copy_arg(&b, g_arg_reg[i], g_arg_reg[i + 1], trap_fix, &n_trap);
    xb(&b, 0x4d), xb(&b, 0x85), xb(&b, 0xdb);      /* test r11, r11 */
    size_t j_sw = xjcc32(&b, 0x85);                 /* jnz sw */
    put_call(&b, target, gates, &ngates);
    static const uint8_t back[] = { 0x48, 0x89, 0xdc, 0x5b, 0xc3 };   /* mov rsp,rbx; pop rbx; ret */
    memcpy(p + b.n, back, sizeof(back)), b.n += sizeof(back);
    xlink32(&b, j_sw, b.n);
    xb(&b, 0x49), xb(&b, 0x89), xb(&b, 0x63), xb(&b, 0x20);   /* sw: mov [r11+32], rsp */
    put_call(&b, target, gates, &ngates);
    put_piece(&b, giso_tmpl_hc_post, giso_tmpl_hc_post_end, giso_tp_hc_tls2, giso_tp_hc_base2);
    for (int i = 0; i < n_trap; i++)
        xlink32(&b, trap_fix[i], b.n);
    xb(&b, 0x0f), xb(&b, 0x0b);                     /* trap: ud2 */
    return b.n;
}

/* Bits 0..3 only, never two adjacent (argument i+1 is argument i's size). */
static int mem_args_valid(uint32_t m)
{
    return !(m & ~0xfu) && !(m & (m << 1));
}

gvm_helper_fn giso_wrap_host_call_mem(gvm_helper_fn fn, uint32_t mem_args,
                                      struct graft_err *err)
{
    if (!fn) {
        graft_errf(err, -EINVAL, "isolation: giso_wrap_host_call: NULL function");
        return NULL;
    }
    if (!mem_args_valid(mem_args)) {
        graft_errf(err, -EINVAL, "isolation: giso_wrap_host_call_mem: argument mask %#x: "
                   "only arguments 1-4 can be memory, each followed by its size", mem_args);
        return NULL;
    }
    if (g_state != ISO_ON)
        return fn;
    gvm_helper_fn out = NULL;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_nthunks; i++)
        if (g_thunks[i].fn == fn && g_thunks[i].mem_args == mem_args) {
            out = g_thunks[i].thunk;
            goto done;
        }
    if (g_nthunks == THUNK_MAX) {
        graft_errf(err, -ENOSPC, "isolation: more than %d distinct host functions to "
                   "wrap in gates", THUNK_MAX);
        goto done;
    }
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        graft_errf(err, -errno, "isolation: mmap of a host-call thunk page failed: %s",
                   strerror(errno));
        goto done;
    }
    memset(p, 0xcc, (size_t)page);
    size_t gates[4], bad = 0;
    emit_host_thunk(p, fn, mem_args, gates);
    /* fn's address, the arena's and a TLS offset are immediates in it */
    if (giso_check_emitted(p, (size_t)page, gates, 4, &bad) < 0) {
        graft_errf(err, -ENOTSUP, "isolation: the host-call thunk for %p would hold a stray "
                   "WRPKRU/XRSTOR byte pattern at offset %zu (from an address it holds); "
                   "not made", (void *)fn, bad);
        munmap(p, (size_t)page);
        goto done;
    }
    if (mprotect(p, (size_t)page, PROT_READ | PROT_EXEC) != 0 ||
        giso_register_gate_range(p, (size_t)page) != 0) {
        graft_errf(err, -errno ? -errno : -ENOMEM, "isolation: cannot seal the host-call "
                   "thunk page: %s", strerror(errno));
        munmap(p, (size_t)page);
        goto done;
    }
    out = (gvm_helper_fn)(void *)p;
    g_thunks[g_nthunks].fn = fn;
    g_thunks[g_nthunks].mem_args = mem_args;
    g_thunks[g_nthunks++].thunk = out;
done:
    pthread_mutex_unlock(&g_lock);
    return out;
}

gvm_helper_fn giso_wrap_host_call(gvm_helper_fn fn, struct graft_err *err)
{
    return giso_wrap_host_call_mem(fn, 0, err);
}

int giso_protect(void *addr, size_t len, int prot, struct graft_err *err)
{
    if (g_state == ISO_ON) {
        if (pkey_mprotect(addr, len, prot, g_pkey) == 0)
            return 0;
        return graft_errf(err, -errno, "isolation: pkey_mprotect(%p, %zu, 0x%x, pkey %d) "
                          "failed: %s (address and length must be page aligned and "
                          "mapped)", addr, len, prot, g_pkey, strerror(errno));
    }
    if (mprotect(addr, len, prot) == 0)
        return 0;
    return graft_errf(err, -errno, "isolation: mprotect(%p, %zu, 0x%x) failed: %s",
                      addr, len, prot, strerror(errno));
}
