/*
 * inject.h - load a shared library into another running process with
 * ptrace (no external tools): the target's main thread is stopped, made to
 * call dlopen(path, RTLD_NOW) from its own libc, and resumed with its
 * registers and stack restored. The library's constructors then run inside
 * the target (typically: start graft's runtime there).
 */
#ifndef GRAFT_RUNTIME_INJECT_H
#define GRAFT_RUNTIME_INJECT_H

#include <sys/types.h>

#include "util/err.h"

struct ginject_opts {
    unsigned long sz;          /* sizeof(struct ginject_opts) */
    int timeout_ms;            /* each wait for the target; 0 means 5000 */
};

/* Load so_path (made absolute) into pid. Returns 0, or:
 *   -ESRCH      no such process, or it exited during the attach
 *   -EPERM      not allowed to ptrace it (see the message: ptrace_scope,
 *               CAP_SYS_PTRACE, different user)
 *   -ENOENT     dlopen/libc not found in the target
 *   -ELIBBAD    dlopen failed in the target (message has its dlerror())
 *   -ETIMEDOUT  the target did not stop or return in time
 * The target keeps running whatever the outcome (unless it exits by itself;
 * its exit status is then left for its parent to collect). */
int ginject_load_library(pid_t pid, const char *so_path, struct graft_err *err);
int ginject_load_library_opts(pid_t pid, const char *so_path,
                              const struct ginject_opts *opts, struct graft_err *err);

/* May the caller ptrace pid? 0 if it exists and nothing we can see forbids
 * it (Yama ptrace_scope, uid, CAP_SYS_PTRACE); else -ESRCH or -EPERM with
 * the reason and what to do. */
int ginject_check_access(pid_t pid, struct graft_err *err);

#endif
