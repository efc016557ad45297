/*
 * trap.c - bpf(2) calls that do not go through libc's syscall() reach graft
 * too.
 *
 * The interposed syscall() sees libbpf's bpf() calls, but a tool may make
 * the system call itself (inline assembly, a statically linked libc, a Go
 * runtime), which would load its programs into the kernel past graft. A
 * seccomp filter installed when the library loads turns every bpf system
 * call of the process into SIGSYS, whose handler answers it with gc_bpf and
 * puts the result in the return register, as the kernel would. The library
 * itself calls the kernel's bpf() only for read-only BTF commands, through
 * a gate at a fixed address the filter lets pass (btf_cmds.c). If the filter cannot be installed,
 * the library says so once: such calls would reach the kernel.
 *
 * The filter is inherited by children and kept across exec, like the
 * LD_PRELOAD that `graft compat` sets: an exec'd program without this
 * library that calls bpf() dies of SIGSYS ("Bad system call") rather than
 * load into the kernel unseen.
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1   /* si_code of a seccomp SIGSYS */
#endif

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    ucontext_t *uc = uctx;
    greg_t *r = uc->uc_mcontext.gregs;
    if (si->si_code != SYS_SECCOMP || si->si_syscall != __NR_bpf) {
        r[REG_RAX] = -ENOSYS;
        return;
    }
    int saved = errno;
    long rc = gc_bpf((int)r[REG_RDI], (void *)r[REG_RSI], (unsigned int)r[REG_RDX]);
    r[REG_RAX] = rc < 0 ? -errno : rc;
    errno = saved;
}

void gc_trap_direct_bpf(void)
{
    /* The one exception: the library's gate to the kernel for read-only
     * BTF commands (btf_cmds.c), recognised by its address. */
    gc_kernel_gate_init();
    uint64_t gate = gc_kernel_gate_ip();
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 9),
        /* from the gate, and only the read-only commands it exists for */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)gate, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(gate >> 32), 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BPF_OBJ_GET_INFO_BY_FD, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BPF_BTF_GET_FD_BY_ID, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BPF_BTF_GET_NEXT_ID, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0) {
        gc_warn("cannot handle SIGSYS (%s): bpf system calls made without libc's syscall() would reach the kernel",
                strerror(errno));
        return;
    }
    long rc = gc_real_syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&fprog, 0, 0, 0);
    if (rc < 0 && errno == EACCES) {
        /* Without CAP_SYS_ADMIN a filter needs no_new_privs: the tool can
         * then not gain privileges by exec'ing a set-uid program. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
            rc = gc_real_syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&fprog, 0, 0, 0);
    }
    if (rc < 0)
        gc_warn("cannot install the seccomp filter (%s): bpf system calls made without libc's syscall() "
                "would reach the kernel", strerror(errno));
}
