/*
 * safe_mem.c - fault-tolerant copies for probe_read*, probe_write_user and
 * every other helper that dereferences an address a BPF program chose.
 *
 * Design: the kernel's exception-table trick, in userspace. All copying from
 * untrusted addresses happens in two tiny assembly routines below. A
 * SIGSEGV/SIGBUS handler checks whether the faulting instruction pointer lies
 * inside one of them; if so it rewrites the saved RIP in the ucontext to the
 * routine's fixup label, which returns an error, and the signal returns.
 * Any other fault is passed to the handler that was installed before ours
 * (or to the default action), so the host's own crash handling is unchanged.
 *
 * Why this and not the alternatives:
 *  - process_vm_readv(getpid()) is safe but a syscall (~300 ns per call).
 *  - Validating against a snapshot of /proc/self/maps is fast but cannot be
 *    made safe: another thread may munmap the range between the check and
 *    the copy, and we cannot learn of it without hooking the host.
 *  - sigsetjmp per copy needs sigprocmask (a syscall) or, without it,
 *    leaves the signal mask to chance; the fixup approach costs nothing at
 *    all on the success path: no setjmp, no TLS, no syscall. A successful
 *    8-byte probe_read_user is a call plus `rep movsb`.
 *
 * Invariants:
 *  - The handler touches no TLS, takes no locks and calls only
 *    async-signal-safe functions; it acts only on real faults (si_code > 0)
 *    whose RIP is inside our routines, so it cannot misinterpret a fault in
 *    the host or a SIGSEGV sent with kill(). The one exception is the
 *    filter (ghelper_safe_mem_set_filter), offered other real SIGSEGVs
 *    first; isolation's reads an initial-exec TLS word (a %fs load).
 *  - SA_NODEFER: returning from the handler to the fixup leaves the thread's
 *    signal mask exactly as before, so repeated faults keep working.
 *  - If the host installs its own SIGSEGV handler after us, faults in our
 *    routines would reach it. Each thread re-checks our installation every
 *    GSAFE_RECHECK copies (one sigaction query, amortised to well under a
 *    nanosecond) and re-installs on top, chaining to the new handler; the
 *    runtime can also call ghelper_safe_mem_init() right after attaching.
 *  - Addresses below the first page and ranges that wrap are rejected
 *    without touching memory (the common NULL case costs no signal).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "helpers/helpers.h"
#include "helpers/safe_mem.h"

#if !defined(__x86_64__)
#error "safe_mem.c: the guarded copy routines are written for x86-64"
#endif

/* size_t gsm_copy(void *dst, const void *src, size_t n): bytes NOT copied.
 * A fault at the rep movsb resumes at gsm_copy_done with rcx = bytes left. */
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl gsm_copy\n.hidden gsm_copy\n.type gsm_copy,@function\n"
    "gsm_copy:\n"
    "    mov %rdx, %rcx\n"
    ".globl gsm_copy_insn\n.hidden gsm_copy_insn\n"
    "gsm_copy_insn:\n"
    "    rep movsb\n"
    ".globl gsm_copy_done\n.hidden gsm_copy_done\n"
    "gsm_copy_done:\n"
    "    mov %rcx, %rax\n"
    "    ret\n"
    ".size gsm_copy, .-gsm_copy\n"

    /* long gsm_strncpy(char *dst, const char *src, size_t n), n > 0:
     * length copied including the NUL, n when no NUL was met, or -EFAULT
     * (via gsm_str_fault) when a load or store faults. */
    ".p2align 4\n"
    ".globl gsm_strncpy\n.hidden gsm_strncpy\n.type gsm_strncpy,@function\n"
    "gsm_strncpy:\n"
    "    xor %eax, %eax\n"
    ".globl gsm_str_begin\n.hidden gsm_str_begin\n"
    "gsm_str_begin:\n"
    ".Lgsm_str_loop:\n"
    "    movzbl (%rsi,%rax,1), %ecx\n"
    "    mov %cl, (%rdi,%rax,1)\n"
    "    inc %rax\n"
    "    test %cl, %cl\n"
    "    jz .Lgsm_str_out\n"
    "    cmp %rdx, %rax\n"
    "    jb .Lgsm_str_loop\n"
    ".Lgsm_str_out:\n"
    "    ret\n"
    ".globl gsm_str_end\n.hidden gsm_str_end\n"
    "gsm_str_end:\n"
    ".globl gsm_str_fault\n.hidden gsm_str_fault\n"
    "gsm_str_fault:\n"
    "    mov $-14, %rax\n"
    "    ret\n"
    ".size gsm_strncpy, .-gsm_strncpy\n");

size_t gsm_copy(void *dst, const void *src, size_t n);
long gsm_strncpy(char *dst, const char *src, size_t n);
extern const char gsm_copy_insn[], gsm_copy_done[];
extern const char gsm_str_begin[], gsm_str_end[], gsm_str_fault[];

#define GSAFE_MIN_ADDR 4096u     /* the NULL page is never mapped */
#define GSAFE_RECHECK  4096u     /* copies per thread between handler checks */

static pthread_mutex_t g_install_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_installed;
/* The actions we replaced, read by the handler to chain. Written only while
 * our handler is not yet installed for that signal (under g_install_lock). */
static struct sigaction g_prev_segv, g_prev_bus;
static __thread unsigned t_copies_until_check;
static _Atomic(ghelper_fault_filter) g_filter;

void ghelper_safe_mem_set_filter(ghelper_fault_filter filter)
{
    atomic_store_explicit(&g_filter, filter, memory_order_release);
}

/* Give a fault that is not ours to whoever would have had it. */
static void chain_fault(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *prev = sig == SIGBUS ? &g_prev_bus : &g_prev_segv;

    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction) {
            prev->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    if (prev->sa_handler == SIG_IGN && si->si_code <= 0)
        return;                 /* an ignored kill(SIGSEGV): ignore it */
    /* Default action: restore it and let the fault happen again (or, for a
     * sent signal, re-send it) so the process dies with the right status. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];

    if (si->si_code > 0) {
        if (ip == (uintptr_t)gsm_copy_insn) {
            uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)gsm_copy_done;
            return;
        }
        if (ip >= (uintptr_t)gsm_str_begin && ip < (uintptr_t)gsm_str_end) {
            uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)gsm_str_fault;
            return;
        }
        ghelper_fault_filter filter = atomic_load_explicit(&g_filter, memory_order_acquire);
        if (sig == SIGSEGV && filter && filter(si, ucv))
            return;
    }
    chain_fault(sig, si, ucv);
}

/* Make on_fault the handler of sig, remembering the one it replaces. */
static int install_for(int sig, struct sigaction *prev, struct graft_err *err)
{
    struct sigaction cur, act;

    if (sigaction(sig, NULL, &cur) != 0)
        return graft_errf(err, -errno, "helpers: cannot query the handler of "
                          "signal %d: %s", sig, strerror(errno));
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault)
        return 0;
    memset(&act, 0, sizeof(act));
    act.sa_sigaction = on_fault;
    act.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
    sigemptyset(&act.sa_mask);
    *prev = cur;
    if (sigaction(sig, &act, NULL) != 0)
        return graft_errf(err, -errno, "helpers: cannot install the fault "
                          "handler for signal %d: %s; probe_read helpers "
                          "would be unsafe", sig, strerror(errno));
    return 0;
}

int ghelper_safe_mem_init(struct graft_err *err)
{
    pthread_mutex_lock(&g_install_lock);
    int rc = install_for(SIGSEGV, &g_prev_segv, err);
    if (rc == 0)
        rc = install_for(SIGBUS, &g_prev_bus, err);
    if (rc == 0)
        atomic_store_explicit(&g_installed, 1, memory_order_release);
    pthread_mutex_unlock(&g_install_lock);
    return rc;
}

/* Is it safe to run a guarded copy now? Installs on first use and
 * re-checks every GSAFE_RECHECK copies of this thread. */
static inline int ensure_handler(void)
{
    if (__builtin_expect(atomic_load_explicit(&g_installed, memory_order_acquire)
                         && t_copies_until_check-- > 0, 1))
        return 0;
    t_copies_until_check = GSAFE_RECHECK;
    return ghelper_safe_mem_init(NULL);
}

static inline int range_plausible(uintptr_t addr, size_t n)
{
    return addr >= GSAFE_MIN_ADDR && addr + n >= addr;
}

int gsafe_copy(void *dst, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    if (!range_plausible((uintptr_t)src, n) || !range_plausible((uintptr_t)dst, n))
        return -EFAULT;
    if (ensure_handler() != 0)
        return -EFAULT;
    return gsm_copy(dst, src, n) == 0 ? 0 : -EFAULT;
}

long gsafe_strncpy(char *dst, const char *src, size_t n)
{
    if (n == 0)
        return 0;
    /* Only the first byte is known to be read; the string may end early. */
    if (!range_plausible((uintptr_t)src, 1) || !range_plausible((uintptr_t)dst, n))
        return -EFAULT;
    if (ensure_handler() != 0)
        return -EFAULT;
    long len = gsm_strncpy(dst, src, n);
    if (len == (long)n)
        dst[n - 1] = '\0';
    return len;
}
