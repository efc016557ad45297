/*
 * tfault.h - a fault the test expects, caught: after sigsetjmp(t_jb, 1)
 * returned 0 the test sets t_armed and touches the memory; a SIGSEGV (or
 * another signal given to tfault_install) while armed jumps back to the
 * sigsetjmp with the signal's number, its siginfo in t_si and t_armed
 * cleared. Unarmed, the signal kills the program as it would have. Per
 * thread.
 */
#ifndef GRAFT_TESTS_TFAULT_H
#define GRAFT_TESTS_TFAULT_H

#include <setjmp.h>
#include <signal.h>
#include <string.h>

static __thread sigjmp_buf t_jb;
static __thread volatile int t_armed;
static __thread siginfo_t t_si;

static inline void tfault_on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (!t_armed) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    t_si = *si;
    t_armed = 0;
    siglongjmp(t_jb, sig);
}

static inline void tfault_install(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = tfault_on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, NULL);
}

#endif
