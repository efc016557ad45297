/*
 * syscall_seccomp.c - the fallback when page 0 cannot be mapped: a seccomp
 * filter returns SECCOMP_RET_TRAP for every x86-64 syscall whose
 * instruction pointer is outside graft's own syscall instructions
 * (seccomp_data.instruction_pointer, the address after the instruction), and
 * a SIGSYS handler runs the programs and makes the syscall from graft's
 * range, which the filter allows.
 *
 * Always allowed by the filter: rt_sigreturn (the handler itself returns
 * through it; programs do not see it in this mode) and non-x86-64 ABIs.
 * Special cases in the handler:
 *  - clone/clone3 with a new stack: the return address is pushed on the
 *    child's stack and the syscall is made from graft_sys_raw6, whose `ret`
 *    takes the child straight back to the caller's code (exit programs do
 *    not run in the child).
 *  - vfork: the handler's frame would be overwritten by the child, so the
 *    handler only runs enter programs and resumes the caller at graft's
 *    vfork instruction (graft_sys_insn_vfork), as the zpoline path does.
 *  - execve/execveat fail with EPERM: a seccomp filter cannot be removed and
 *    is inherited by the new image, whose first syscall would then kill it.
 * The filter is installed with TSYNC (all threads) and is inherited by
 * children; it cannot be removed, so gsys_uninstall() only makes the
 * handler pass syscalls through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "attach/syscall_hook.h"
#include "attach/thread_state.h"

/* A sigaltstack() the handler made for the interrupted code (its own call,
 * trapped like every other) or for graft (the first hook hit of a thread
 * installs an alternate stack, thread_state.c) would be undone by this
 * handler's rt_sigreturn, which restores the alternate stack saved in the
 * frame (uc_stack): put the current one there so it stays. */
static void keep_altstack(ucontext_t *uc)
{
    stack_t cur;
    if (graft_sys_raw6(SYS_sigaltstack, 0, (long)(uintptr_t)&cur, 0, 0, 0, 0) != 0)
        return;
    uc->uc_stack.ss_sp = cur.ss_sp;
    uc->uc_stack.ss_size = cur.ss_size;
    uc->uc_stack.ss_flags = cur.ss_flags & ~SS_ONSTACK;
}

/* A clone or clone3 with CLONE_VFORK (posix_spawn's) whose child shares the
 * caller's thread pointer (no CLONE_SETTLS): graft_sys_vfork_ret is read
 * through it by the child too. */
static int vfork_clone(const struct gsys_frame *f)
{
    uint64_t flags;
    if (f->nr == SYS_clone) {
        flags = f->args[0];
    } else {
        const struct clone_args *ca = (const struct clone_args *)(uintptr_t)f->args[0];
        if (!ca || f->args[1] < sizeof(ca->flags))
            return 0;
        flags = ca->flags;
    }
    return (flags & CLONE_VFORK) && !(flags & CLONE_SETTLS);
}

/* The handler runs with SA_NODEFER so a thread created by clone inside it
 * (whose signal mask is copied) does not start with SIGSYS blocked. */
static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    greg_t *g = uc->uc_mcontext.gregs;
    int saved_errno = errno;
    struct gsys_frame f = {
        .args = {(uint64_t)g[REG_RDI], (uint64_t)g[REG_RSI], (uint64_t)g[REG_RDX],
                 (uint64_t)g[REG_R10], (uint64_t)g[REG_R8], (uint64_t)g[REG_R9]},
        .nr = (uint64_t)(unsigned)si->si_syscall,
        .rbx = (uint64_t)g[REG_RBX],
    };
    uint64_t retaddr = (uint64_t)(uintptr_t)si->si_call_addr;
    uint64_t ov;
    switch (f.nr) {
    case SYS_execve:
    case SYS_execveat:
        if (!gsys_is_active()) {   /* after uninstall: pass through */
            g[REG_RAX] = graft_sys_raw6((long)f.nr, (long)f.args[0], (long)f.args[1],
                                        (long)f.args[2], 0, 0, 0);
        } else if (gsys_run_enter(&f, &ov)) {
            g[REG_RAX] = (greg_t)ov;
        } else {
            f.ret = (uint64_t)-EPERM;
            gsys_run_exit(&f);
            g[REG_RAX] = (greg_t)f.ret;
        }
        break;
    case SYS_vfork:
        if (gsys_run_enter(&f, &ov)) {
            g[REG_RAX] = (greg_t)ov;
            break;
        }
        graft_sys_vfork_ret = retaddr;
        g[REG_RAX] = SYS_vfork;
        g[REG_RIP] = (greg_t)(uintptr_t)graft_sys_insn_vfork;
        break;
    case SYS_clone:
    case SYS_clone3: {
        if (gsys_run_enter(&f, &ov)) {
            g[REG_RAX] = (greg_t)ov;
            break;
        }
        if (vfork_clone(&f)) {
            /* The caller waits in the kernel while the child runs in its
             * memory with its alternate signal stack: made here, on that
             * stack when there is one, the child's own SIGSYS frames would
             * land on this handler's. So, as for vfork, resume the caller at
             * a syscall instruction of ours; exit programs run after it. */
            graft_sys_vfork_ret = retaddr;
            g[REG_RAX] = (greg_t)f.nr;
            g[REG_RIP] = (greg_t)(uintptr_t)(f.nr == SYS_clone ? graft_sys_insn_clone_vfork
                                                                : graft_sys_insn_clone3_vfork);
            break;
        }
        uint64_t *top = NULL;
        struct clone_args *ca = NULL;
        if (f.nr == SYS_clone && f.args[1]) {
            top = (uint64_t *)(uintptr_t)f.args[1];
            f.args[1] -= 8;
        } else if (f.nr == SYS_clone3) {
            ca = (struct clone_args *)(uintptr_t)f.args[0];
            if (ca && f.args[1] >= 64 && ca->stack && ca->stack_size >= 8) {
                top = (uint64_t *)(uintptr_t)(ca->stack + ca->stack_size);
                ca->stack_size -= 8;
            } else {
                ca = NULL;
            }
        }
        if (top)
            top[-1] = retaddr;   /* the child's `ret` in graft_sys_raw6 */
        f.ret = (uint64_t)graft_sys_raw6((long)f.nr, (long)f.args[0], (long)f.args[1],
                                         (long)f.args[2], (long)f.args[3],
                                         (long)f.args[4], (long)f.args[5]);
        if (ca)
            ca->stack_size += 8;
        if (f.nr == SYS_clone && top)
            f.args[1] += 8;
        gsys_new_task_caches(&f);   /* the child of a fork-like clone returns here too */
        gsys_run_exit(&f);
        g[REG_RAX] = (greg_t)f.ret;
        break;
    }
    default:
        g[REG_RAX] = (greg_t)gsys_run_plain(&f);
        if (f.nr == SYS_sigaltstack && g[REG_RAX] == 0 && f.args[0])
            keep_altstack(uc);
        break;
    }
    if (__builtin_expect(gthread_take_altstack_change(), 0))
        keep_altstack(uc);
    errno = saved_errno;
}

int gsys_seccomp_install(struct graft_err *err)
{
    static int installed;
    if (installed)
        return 0;
    uint64_t lo = (uint64_t)(uintptr_t)graft_sys_text_start;
    uint64_t hi = (uint64_t)(uintptr_t)graft_sys_text_end;
    if ((lo >> 32) != (hi >> 32))
        return graft_errf(err, -ERANGE, "syscall hooks: graft's syscall range "
                          "%#lx-%#lx crosses a 4 GiB boundary; the seccomp filter "
                          "cannot express it", (unsigned long)lo, (unsigned long)hi);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return graft_errf(err, -errno, "syscall hooks: sigaction(SIGSYS): %s",
                          strerror(errno));
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(lo >> 32), 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)lo, 0, 1),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)hi, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};
    /* Without CAP_SYS_ADMIN the kernel requires no_new_privs. */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog) != 0) {
        if (errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                    &fprog) == 0)
            goto ok;
        return graft_errf(err, -errno, "syscall hooks: installing the seccomp filter "
                          "failed: %s", strerror(errno));
    }
ok:
    installed = 1;
    return 0;
}
