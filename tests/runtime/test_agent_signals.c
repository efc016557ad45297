/*
 * test_agent_signals.c - the agent's thread takes none of the process's
 * signals: a signal sent to the process while every host thread blocks it
 * stays pending (the kernel would otherwise deliver it to the agent's
 * thread, which would run the host's handler there).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/agent.h"
#include "runtime/registry.h"

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled = 1;
}

int main(void)
{
    char name[64];
    snprintf(name, sizeof(name), "/graft-test-agentsig.%d", (int)getpid());
    struct gagent *a = NULL;
    struct graft_err err = {0};
    if (gagent_start(name, &a, &err) < 0) {
        fprintf(stderr, "FAIL gagent_start: %s\n", err.msg);
        return 1;
    }
    signal(SIGUSR1, on_usr1);
    sigset_t usr1, pending;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    kill(getpid(), SIGUSR1);
    struct timespec ts = { 0, 100 * 1000000L };
    nanosleep(&ts, NULL);
    sigpending(&pending);
    int ok = !handled && sigismember(&pending, SIGUSR1);
    if (!ok)
        fprintf(stderr, "FAIL: SIGUSR1 sent to the process while its only host thread blocks it was %s\n",
                handled ? "handled (on the agent's thread)" : "not pending");
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);   /* delivered here, to the host's thread */
    if (ok && !handled) {
        fprintf(stderr, "FAIL: unblocking did not deliver SIGUSR1\n");
        ok = 0;
    }
    gagent_stop(a);
    greg_destroy(name, NULL);
    if (ok)
        printf("ok: the agent's thread took no signal\n");
    return ok ? 0 : 1;
}
