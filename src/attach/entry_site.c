/*
 * entry_site.c - running handlers at GRAFT_ENTRY() sites (source entries,
 * include/graft/eim.h): the 5-byte NOP becomes a jump to a per-site stub.
 *
 * Per-site stub (one page of its own within +-2 GB of the site, written
 * once while RW, then RX for good; never unmapped):
 *    0  lea rsp,[rsp-128]          skip the red zone of the interrupted code
 *    5  push qword [rip+site]      our struct gentry_site *
 *   11  call qword [rip+tramp]     graft_entry_tramp (below)
 *   17  lea rsp,[rsp+136]          drop the slot and the gap
 *   25  jmp qword [rip+back]       the instruction after the NOP
 *   32  .quad site, .quad graft_entry_tramp, .quad addr + 5
 * A jump, not a call, replaces the NOP: a call would push its return
 * address into the red zone of a leaf function, which may hold live data.
 *
 * graft_entry_tramp saves the flags, every general-purpose register (into a
 * struct graft_pt_regs, sp = the interrupted rsp) and xmm0-15, aligns the
 * stack, and calls graft_entry_run(), which evaluates the site's argument
 * specs into u64 args[] and runs the handlers; then it restores everything.
 * The compiler treats GRAFT_ENTRY's asm as clobbering nothing, so nothing
 * may change (the upper halves of ymm/zmm registers are not saved, as in
 * the function hooks' mid-function trampoline).
 *
 * Invariants: a site is created once per address and never freed, nor its
 * stub, so a thread that entered it can always finish. The handler list is
 * an immutable snapshot swapped whole; a thread counts itself in
 * *site->inflight before reading it, and a remover waits for that count to
 * drop to 0 after publishing the new snapshot, so the removed handler (and
 * the old snapshot) are no longer in use when gattach_entry_remove returns.
 * Patching uses the int3-first protocol of patch_text.c; our SIGTRAP
 * handler (chained with whatever was installed before) sends a thread that
 * meets that int3 past the NOP. Changes happen under g_entry_lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "attach/func_internal.h"

#define ENTRY_NOP_LEN 5
#define ENTRY_CTX_WORDS 21          /* 168 bytes: any ctx up to pt_regs size */
#define STUB_PAGE 4096u

static const uint8_t k_nop5[ENTRY_NOP_LEN] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

enum arg_kind { ARG_IMM, ARG_REG, ARG_MEM };

struct entry_arg {
    enum arg_kind kind;
    int size;                       /* bytes; negative: signed */
    uint16_t reg;                   /* offset in graft_pt_regs (reg, mem base) */
    uint8_t shift;                  /* %ah etc: 8 */
    int has_index;
    uint16_t index;                 /* offset in graft_pt_regs */
    uint8_t scale;
    int64_t value;                  /* imm, or the displacement */
};

struct entry_handlers {             /* immutable once published */
    uint32_t n;
    struct { ghook_handler fn; uint64_t cookie; } h[];
};

struct gentry_site {
    uint64_t addr;
    uint8_t *stub;
    struct entry_arg args[GENTRY_MAX_ARGS];
    uint32_t n_args;
    _Atomic(struct entry_handlers *) hs;
    _Atomic uint64_t *inflight;     /* writable: counted on every hit */
    int patched;
    struct gentry_link *links;      /* attach order, under g_entry_lock */
    struct gentry_site *next;       /* g_sites, never unlinked */
};

struct gentry_link {
    struct gentry_site *site;
    ghook_handler fn;
    uint64_t cookie;
    struct gentry_link *next;
};

static pthread_mutex_t g_entry_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct gentry_site *) g_sites;
static _Atomic uint64_t g_missed;
static __thread int t_busy;

GHIDDEN void graft_entry_run(struct graft_pt_regs *regs, struct gentry_site *site);
void graft_entry_tramp(void) __attribute__((visibility("hidden")));

/* ---- the common trampoline ----------------------------------------------- */

/* Entry: [rsp] = return into the stub, [rsp+8] = site, then the 128-byte
 * gap, then the interrupted stack. Frame after the prologue: [rbp] = rbp,
 * [rbp+8] = flags, [rbp+16] = return, [rbp+24] = site, interrupted rsp =
 * rbp + 160; xmm0-15 at rsp+0, the pt_regs at rsp+256. */
__asm__(
    ".text\n"
    ".globl graft_entry_tramp\n"
    ".hidden graft_entry_tramp\n"
    ".type graft_entry_tramp,@function\n"
    "graft_entry_tramp:\n"
    "    pushfq\n"
    "    push %rbp\n"
    "    mov %rsp, %rbp\n"
    "    sub $432, %rsp\n"
    "    and $-16, %rsp\n"
    "    mov %r15, 256+0(%rsp)\n"
    "    mov %r14, 256+8(%rsp)\n"
    "    mov %r13, 256+16(%rsp)\n"
    "    mov %r12, 256+24(%rsp)\n"
    "    mov (%rbp), %r12\n"
    "    mov %r12, 256+32(%rsp)\n"
    "    mov %rbx, 256+40(%rsp)\n"
    "    mov %r11, 256+48(%rsp)\n"
    "    mov %r10, 256+56(%rsp)\n"
    "    mov %r9, 256+64(%rsp)\n"
    "    mov %r8, 256+72(%rsp)\n"
    "    mov %rax, 256+80(%rsp)\n"
    "    mov %rcx, 256+88(%rsp)\n"
    "    mov %rdx, 256+96(%rsp)\n"
    "    mov %rsi, 256+104(%rsp)\n"
    "    mov %rdi, 256+112(%rsp)\n"
    "    mov 8(%rbp), %r12\n"
    "    mov %r12, 256+144(%rsp)\n"
    "    lea 160(%rbp), %r12\n"
    "    mov %r12, 256+152(%rsp)\n"
    "    movups %xmm0, 0(%rsp)\n"
    "    movups %xmm1, 16(%rsp)\n"
    "    movups %xmm2, 32(%rsp)\n"
    "    movups %xmm3, 48(%rsp)\n"
    "    movups %xmm4, 64(%rsp)\n"
    "    movups %xmm5, 80(%rsp)\n"
    "    movups %xmm6, 96(%rsp)\n"
    "    movups %xmm7, 112(%rsp)\n"
    "    movups %xmm8, 128(%rsp)\n"
    "    movups %xmm9, 144(%rsp)\n"
    "    movups %xmm10, 160(%rsp)\n"
    "    movups %xmm11, 176(%rsp)\n"
    "    movups %xmm12, 192(%rsp)\n"
    "    movups %xmm13, 208(%rsp)\n"
    "    movups %xmm14, 224(%rsp)\n"
    "    movups %xmm15, 240(%rsp)\n"
    "    lea 256(%rsp), %rdi\n"
    "    mov 24(%rbp), %rsi\n"
    "    call graft_entry_run\n"
    "    movups 0(%rsp), %xmm0\n"
    "    movups 16(%rsp), %xmm1\n"
    "    movups 32(%rsp), %xmm2\n"
    "    movups 48(%rsp), %xmm3\n"
    "    movups 64(%rsp), %xmm4\n"
    "    movups 80(%rsp), %xmm5\n"
    "    movups 96(%rsp), %xmm6\n"
    "    movups 112(%rsp), %xmm7\n"
    "    movups 128(%rsp), %xmm8\n"
    "    movups 144(%rsp), %xmm9\n"
    "    movups 160(%rsp), %xmm10\n"
    "    movups 176(%rsp), %xmm11\n"
    "    movups 192(%rsp), %xmm12\n"
    "    movups 208(%rsp), %xmm13\n"
    "    movups 224(%rsp), %xmm14\n"
    "    movups 240(%rsp), %xmm15\n"
    "    mov 256+0(%rsp), %r15\n"
    "    mov 256+8(%rsp), %r14\n"
    "    mov 256+16(%rsp), %r13\n"
    "    mov 256+24(%rsp), %r12\n"
    "    mov 256+40(%rsp), %rbx\n"
    "    mov 256+48(%rsp), %r11\n"
    "    mov 256+56(%rsp), %r10\n"
    "    mov 256+64(%rsp), %r9\n"
    "    mov 256+72(%rsp), %r8\n"
    "    mov 256+80(%rsp), %rax\n"
    "    mov 256+88(%rsp), %rcx\n"
    "    mov 256+96(%rsp), %rdx\n"
    "    mov 256+104(%rsp), %rsi\n"
    "    mov 256+112(%rsp), %rdi\n"
    "    mov %rbp, %rsp\n"
    "    pop %rbp\n"
    "    popfq\n"
    "    ret\n"
    ".size graft_entry_tramp, .-graft_entry_tramp\n");

/* ---- argument specs -------------------------------------------------------- */

#define R(f) ((uint16_t)offsetof(struct graft_pt_regs, f))

static const struct reg_name {
    const char *name;
    uint16_t off;
    uint8_t shift;
} k_regs[] = {
    { "rax", R(ax), 0 }, { "eax", R(ax), 0 }, { "ax", R(ax), 0 }, { "al", R(ax), 0 }, { "ah", R(ax), 8 },
    { "rbx", R(bx), 0 }, { "ebx", R(bx), 0 }, { "bx", R(bx), 0 }, { "bl", R(bx), 0 }, { "bh", R(bx), 8 },
    { "rcx", R(cx), 0 }, { "ecx", R(cx), 0 }, { "cx", R(cx), 0 }, { "cl", R(cx), 0 }, { "ch", R(cx), 8 },
    { "rdx", R(dx), 0 }, { "edx", R(dx), 0 }, { "dx", R(dx), 0 }, { "dl", R(dx), 0 }, { "dh", R(dx), 8 },
    { "rsi", R(si), 0 }, { "esi", R(si), 0 }, { "si", R(si), 0 }, { "sil", R(si), 0 },
    { "rdi", R(di), 0 }, { "edi", R(di), 0 }, { "di", R(di), 0 }, { "dil", R(di), 0 },
    { "rbp", R(bp), 0 }, { "ebp", R(bp), 0 }, { "bp", R(bp), 0 }, { "bpl", R(bp), 0 },
    { "rsp", R(sp), 0 }, { "esp", R(sp), 0 }, { "sp", R(sp), 0 }, { "spl", R(sp), 0 },
    { "r8", R(r8), 0 },   { "r9", R(r9), 0 },   { "r10", R(r10), 0 }, { "r11", R(r11), 0 },
    { "r12", R(r12), 0 }, { "r13", R(r13), 0 }, { "r14", R(r14), 0 }, { "r15", R(r15), 0 },
};

/* "%rax", "%r8d", "%r12w", "%r9b": the register's pt_regs slot. */
static int parse_reg(const char **pp, uint16_t *off, uint8_t *shift)
{
    const char *p = *pp;
    if (*p != '%')
        return -1;
    p++;
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9'))
        n++;
    char name[8];
    if (n == 0 || n >= sizeof(name))
        return -1;
    memcpy(name, p, n);
    name[n] = '\0';
    /* r8-r15 with a d/w/b suffix are the same slot */
    if (name[0] == 'r' && name[1] >= '0' && name[1] <= '9' && strchr("dwb", name[n - 1]))
        name[n - 1] = '\0';
    for (size_t i = 0; i < sizeof(k_regs) / sizeof(k_regs[0]); i++)
        if (strcmp(k_regs[i].name, name) == 0) {
            *off = k_regs[i].off;
            *shift = k_regs[i].shift;
            *pp = p + n;
            return 0;
        }
    return -1;
}

/* One "SIZE@OPERAND": OPERAND is %reg, $imm, or [disp](%base[,%index[,scale]]). */
static int parse_arg(const char *text, struct entry_arg *a)
{
    char *end;
    memset(a, 0, sizeof(*a));
    long size = strtol(text, &end, 10);
    if (end == text || *end != '@' ||
        !(size == 1 || size == 2 || size == 4 || size == 8 || size == -1 || size == -2 ||
          size == -4 || size == -8))
        return -1;
    a->size = (int)size;
    const char *p = end + 1;
    if (*p == '$') {
        a->kind = ARG_IMM;
        errno = 0;
        a->value = strtoll(p + 1, &end, 0);
        return end == p + 1 || *end || errno ? -1 : 0;
    }
    if (*p == '%') {
        a->kind = ARG_REG;
        return parse_reg(&p, &a->reg, &a->shift) < 0 || *p ? -1 : 0;
    }
    a->kind = ARG_MEM;
    if (*p != '(') {
        a->value = strtoll(p, &end, 0);
        if (end == p)
            return -1;
        p = end;
    }
    uint8_t shift;
    if (*p++ != '(' || parse_reg(&p, &a->reg, &shift) < 0 || shift)
        return -1;
    if (*p == ',') {
        p++;
        a->has_index = 1;
        a->scale = 1;
        if (parse_reg(&p, &a->index, &shift) < 0 || shift)
            return -1;
        if (*p == ',') {
            long sc = strtol(p + 1, &end, 10);
            if (sc != 1 && sc != 2 && sc != 4 && sc != 8)
                return -1;
            a->scale = (uint8_t)sc;
            p = end;
        }
    }
    return *p == ')' && p[1] == '\0' ? 0 : -1;
}

static int parse_args(const char *args, struct gentry_site *s, struct graft_err *err)
{
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", args) >= (int)sizeof(buf))
        return graft_errf(err, -E2BIG, "attach: entry argument specs are too long: %s", args);
    s->n_args = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (s->n_args == GENTRY_MAX_ARGS)
            return graft_errf(err, -E2BIG, "attach: more than %d entry arguments in '%s'",
                              GENTRY_MAX_ARGS, args);
        if (parse_arg(tok, &s->args[s->n_args]) < 0)
            return graft_errf(err, -EINVAL,
                              "attach: entry argument %u '%s' is not SIZE@%%reg, SIZE@$imm or "
                              "SIZE@disp(%%reg[,%%index,scale]) (%%rip operands are not supported)",
                              s->n_args, tok);
        s->n_args++;
    }
    return 0;
}

static uint64_t reg_of(const struct graft_pt_regs *regs, uint16_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)regs + off, sizeof(v));
    return v;
}

/* Keep |size| bytes of v, extended as the sign of size says. */
static uint64_t extend(uint64_t v, int size)
{
    int bytes = size < 0 ? -size : size;
    if (bytes == 8)
        return v;
    unsigned bits = (unsigned)bytes * 8;
    v &= (1ull << bits) - 1;
    if (size < 0 && (v >> (bits - 1)) & 1)
        v |= ~0ull << bits;
    return v;
}

static uint64_t eval_arg(const struct entry_arg *a, const struct graft_pt_regs *regs)
{
    switch (a->kind) {
    case ARG_IMM:
        return extend((uint64_t)a->value, a->size);
    case ARG_REG:
        return extend(reg_of(regs, a->reg) >> a->shift, a->size);
    default: {
        uint64_t addr = reg_of(regs, a->reg) + (uint64_t)a->value;
        if (a->has_index)
            addr += reg_of(regs, a->index) * a->scale;
        uint64_t v = 0;
        memcpy(&v, (const void *)(uintptr_t)addr, (size_t)(a->size < 0 ? -a->size : a->size));
        return extend(v, a->size);
    }
    }
}

/* ---- running handlers ------------------------------------------------------ */

/* A site's handlers, each with a fresh run state; with isolation one loop
 * behind one gate pair on the extension stack. We may run inside a function
 * hook's handler (a host function the extension called): its run state is
 * left as it was. */
struct entry_run {
    struct ghelper_run *rs;
    const struct entry_handlers *hs;
    uint64_t *args, len, func_ip;
};

static uint64_t entry_handlers_run(void *arg, uint64_t unused)
{
    struct entry_run *r = arg;
    struct ghelper_run *rs = gattach_run_state_inside(r->rs);   /* keyed, validated */
    struct ghelper_run saved = *rs;
    (void)unused;
    for (uint32_t i = 0; i < r->hs->n; i++) {
        *rs = (struct ghelper_run){ .ctx = r->args, .func_ip = r->func_ip,
                                    .cookie = r->hs->h[i].cookie };
        r->hs->h[i].fn(r->args, r->len);
    }
    *rs = saved;
    return 0;
}

GHIDDEN void graft_entry_run(struct graft_pt_regs *regs, struct gentry_site *site)
{
    if (t_busy) {
        atomic_fetch_add_explicit(&g_missed, 1, memory_order_relaxed);
        return;
    }
    t_busy = 1;
    atomic_fetch_add(site->inflight, 1);
    struct entry_handlers *hs = atomic_load(&site->hs);
    if (hs && hs->n) {
        uint64_t args[ENTRY_CTX_WORDS] = {0};
        for (uint32_t i = 0; i < site->n_args; i++)
            args[i] = eval_arg(&site->args[i], regs);
        regs->ip = site->addr;
        struct entry_run r = { .rs = gattach_run_state(), .hs = hs, .args = args,
                               .len = (uint64_t)site->n_args * 8, .func_ip = site->addr };
        if (__builtin_expect(gattach_iso_on(), 0))
            gattach_call_ext(entry_handlers_run, &r, 0);   /* one gate pair for all */
        else
            entry_handlers_run(&r, 0);
    }
    atomic_fetch_sub(site->inflight, 1);
    t_busy = 0;
}

uint64_t gattach_entry_missed(void)
{
    return atomic_load_explicit(&g_missed, memory_order_relaxed);
}

/* ---- SIGTRAP while a NOP is being patched ---------------------------------- */

static struct sigaction g_old_trap;
static int g_trap_installed;

static struct gentry_site *site_at(uint64_t addr)
{
    for (struct gentry_site *s = atomic_load(&g_sites); s; s = s->next)
        if (s->addr == addr)
            return s;
    return NULL;
}

static void on_sigtrap(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    uint64_t rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    if (site_at(rip - 1)) {
        /* the int3 stands for the NOP (or our jump): the entry does
         * nothing this once */
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(rip - 1 + ENTRY_NOP_LEN);
        return;
    }
    gtrap_pass_on(&g_old_trap, sig, si, ucv);
}

static int trap_install(struct graft_err *err)
{
    if (g_trap_installed)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigtrap;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTRAP, &sa, &g_old_trap) < 0)
        return graft_errf(err, -errno, "attach: cannot install the SIGTRAP handler: %s",
                          strerror(errno));
    g_trap_installed = 1;
    return 0;
}

/* ---- sites ----------------------------------------------------------------- */

static int in_rel32(uint64_t a, uint64_t b)
{
    int64_t d = (int64_t)(a - b);
    return d > -0x7fff0000ll && d < 0x7fff0000ll;
}

/* A fresh page within rel32 reach of addr, nearest first. */
static uint8_t *page_near(uint64_t addr)
{
    uint64_t base = addr & ~(uint64_t)(STUB_PAGE - 1);
    uint64_t step = 1u << 20;
    for (uint64_t d = step; d < 0x7f000000ull; d += step) {
        if (d >= (64u << 20))
            step = 32u << 20;       /* sparse beyond the first 64 MB */
        for (int up = 1; up >= 0; up--) {
            if (!up && base < d + 0x10000)
                continue;
            uint64_t want = up ? base + d : base - d;
            if (!in_rel32(want, addr) || !in_rel32(want + STUB_PAGE, addr))
                continue;
            void *p = mmap((void *)want, STUB_PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED)
                continue;
            if ((uint64_t)p != want) {      /* a kernel that ignores NOREPLACE */
                munmap(p, STUB_PAGE);
                continue;
            }
            return p;
        }
    }
    return NULL;
}

static void put_rel32(uint8_t *code, uint32_t at, uint32_t insn_end, uint32_t target)
{
    int32_t rel = (int32_t)target - (int32_t)insn_end;
    memcpy(code + at, &rel, 4);
}

static int stub_build(struct gentry_site *s, struct graft_err *err)
{
    uint8_t *page = page_near(s->addr);
    if (!page)
        return graft_errf(err, -ENOMEM,
                          "attach: no free address within +-2GB of entry %p for its stub",
                          (void *)s->addr);
    static const uint8_t code[32] = {
        0x48, 0x8d, 0x64, 0x24, 0x80,               /* lea rsp,[rsp-128] */
        0xff, 0x35, 0, 0, 0, 0,                     /* push qword [rip+site] */
        0xff, 0x15, 0, 0, 0, 0,                     /* call qword [rip+tramp] */
        0x48, 0x8d, 0xa4, 0x24, 0x88, 0, 0, 0,      /* lea rsp,[rsp+136] */
        0xff, 0x25, 0, 0, 0, 0,                     /* jmp qword [rip+back] */
        0xcc,
    };
    memcpy(page, code, sizeof(code));
    put_rel32(page, 7, 11, 32);
    put_rel32(page, 13, 17, 40);
    put_rel32(page, 27, 31, 48);
    uint64_t data[3] = { (uint64_t)(uintptr_t)s, (uint64_t)(uintptr_t)graft_entry_tramp,
                         s->addr + ENTRY_NOP_LEN };
    memcpy(page + 32, data, sizeof(data));
    if (mprotect(page, STUB_PAGE, PROT_READ | PROT_EXEC) < 0) {
        int e = errno;
        munmap(page, STUB_PAGE);
        return graft_errf(err, -e, "attach: cannot make the entry stub executable: %s",
                          strerror(e));
    }
    s->stub = page;
    return 0;
}

/* The jump that replaces the NOP. */
static void jump_bytes(const struct gentry_site *s, uint8_t out[ENTRY_NOP_LEN])
{
    int32_t rel = (int32_t)((int64_t)(uintptr_t)s->stub - (int64_t)(s->addr + ENTRY_NOP_LEN));
    out[0] = 0xe9;
    memcpy(out + 1, &rel, 4);
}

/* The sites' in-flight counters change on every hit, so they stay out of
 * the read-only arena: blocks of them, chained from a global (never freed,
 * like the sites). Under g_entry_lock. */
struct counter_block {
    struct counter_block *next;
    uint32_t used;
    _Atomic uint64_t c[62];
};
static struct counter_block *g_counters;

static _Atomic uint64_t *inflight_counter(void)
{
    struct counter_block *b = g_counters;
    if (!b || b->used == sizeof(b->c) / sizeof(b->c[0])) {
        if (!(b = calloc(1, sizeof(*b))))
            return NULL;
        b->next = g_counters;
        g_counters = b;
    }
    return &b->c[b->used++];
}

/* The site for addr, created (stub built, specs parsed) on first use. */
static int site_get(uint64_t addr, const char *args, struct gentry_site **out,
                    struct graft_err *err)
{
    struct gentry_site *s = site_at(addr);
    if (s) {
        *out = s;
        return 0;
    }
    uint8_t cur[ENTRY_NOP_LEN];
    memcpy(cur, (const void *)(uintptr_t)addr, sizeof(cur));
    if (memcmp(cur, k_nop5, sizeof(cur)) != 0)
        return graft_errf(err, -EINVAL,
                          "attach: no GRAFT_ENTRY NOP at %p (found %02x %02x %02x %02x %02x): "
                          "is the binary the one whose .note.graft was read?",
                          (void *)addr, cur[0], cur[1], cur[2], cur[3], cur[4]);
    _Atomic uint64_t *inflight = inflight_counter();
    s = inflight ? gmeta_alloc(sizeof(*s)) : NULL;
    if (!s)
        return graft_errf(err, -ENOMEM, "attach: out of memory for hook metadata");
    s->inflight = inflight;      /* 0; reused by the next site if this one fails */
    s->addr = addr;
    int rc = parse_args(args ? args : "", s, err);
    if (rc == 0)
        rc = stub_build(s, err);
    if (rc < 0) {
        g_counters->used--;      /* the counter just taken, still 0 */
        gmeta_free(s, sizeof(*s));
        return rc;
    }
    s->next = atomic_load(&g_sites);
    atomic_store(&g_sites, s);
    *out = s;
    return 0;
}

static size_t handlers_size(uint32_t n)
{
    return sizeof(struct entry_handlers) + n * sizeof(((struct entry_handlers *)0)->h[0]);
}

/* Publish the handler list of s's links (NULL when none), then wait until
 * no thread can still be using the previous one. */
static int publish(struct gentry_site *s, struct graft_err *err)
{
    uint32_t n = 0;
    for (struct gentry_link *l = s->links; l; l = l->next)
        n++;
    struct entry_handlers *hs = NULL;
    int rc = 0;
    if (n && !(hs = gmeta_alloc(handlers_size(n)))) {
        /* No handlers at all is always safe (a remover must not leave the
         * removed one published). */
        rc = graft_errf(err, -ENOMEM, "attach: out of memory");
        n = 0;
    }
    if (n) {
        for (struct gentry_link *l = s->links; l; l = l->next) {
            hs->h[hs->n].fn = l->fn;
            hs->h[hs->n].cookie = l->cookie;
            hs->n++;
        }
    }
    struct entry_handlers *old = atomic_exchange(&s->hs, hs);
    while (atomic_load(s->inflight))
        sched_yield();
    /* inflight is host-writable: a host that clears it must not get the
     * snapshot freed under a running extension (keyed stacks' in-use) */
    gthread_wait_ext_idle();
    if (old)
        gmeta_free(old, handlers_size(old->n));
    return rc;
}

int gattach_entry_install(void *addr, const char *args, ghook_handler fn, uint64_t cookie,
                          struct gentry_link **out, struct graft_err *err)
{
    if (!addr || !fn || !out)
        return graft_errf(err, -EINVAL, "attach: entry install needs an address and a handler");
    pthread_mutex_lock(&g_entry_lock);
    gmeta_open();
    struct gentry_link *l = gmeta_alloc(sizeof(*l));
    if (!l) {
        gmeta_close();
        pthread_mutex_unlock(&g_entry_lock);
        return graft_errf(err, -ENOMEM, "attach: out of memory for hook metadata");
    }
    l->fn = fn;
    l->cookie = cookie;
    struct gentry_site *s = NULL;
    int rc = trap_install(err);
    if (rc == 0)
        rc = site_get((uint64_t)(uintptr_t)addr, args, &s, err);
    if (rc == 0) {
        struct gentry_link **tail = &s->links;
        while (*tail)
            tail = &(*tail)->next;
        *tail = l;
        l->site = s;
        rc = publish(s, err);
        if (rc == 0 && !s->patched) {
            uint8_t jmp[ENTRY_NOP_LEN];
            jump_bytes(s, jmp);
            rc = gpatch_replace(s->addr, jmp, sizeof(jmp), err);
            if (rc == 0)
                s->patched = 1;
        }
        if (rc < 0) {
            *tail = NULL;
            publish(s, NULL);
        }
    }
    if (rc < 0)
        gmeta_free(l, sizeof(*l));
    gmeta_close();
    pthread_mutex_unlock(&g_entry_lock);
    if (rc < 0)
        return rc;
    *out = l;
    return 0;
}

int gattach_entry_remove(struct gentry_link *l, struct graft_err *err)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&g_entry_lock);
    gmeta_open();
    struct gentry_site *s = l->site;
    for (struct gentry_link **pp = &s->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    int rc = 0;
    if (!s->links && s->patched) {
        rc = gpatch_replace(s->addr, k_nop5, sizeof(k_nop5), err);
        if (rc == 0)
            s->patched = 0;
    }
    /* Even when restoring the NOP failed, the handler is unpublished. */
    int rc2 = publish(s, rc < 0 ? NULL : err);
    gmeta_free(l, sizeof(*l));
    gmeta_close();
    pthread_mutex_unlock(&g_entry_lock);
    return rc < 0 ? rc : rc2;
}
