/*
 * agent.h - the agent: the part of graft that lives inside a target process.
 *
 * It is libgraft-agent.so, entered at start (LD_PRELOAD, by `graft start`) or
 * into a running process (ptrace injection, by `graft attach`). Its
 * constructor opens the registry, applies every link that targets this
 * process before main() runs, then a thread waits for registry changes and
 * applies them: a program loaded later is picked up, a link removed is
 * unhooked, a detach request removes everything.
 *
 * detach: `graft detach` makes the agent remove every hook and idle; a later
 * `graft attach` of the same process resumes it instead of injecting again.
 *
 * fork: the child keeps the parent's hooks (the code is copied) and gets its
 * own agent thread and registry entry, so later changes reach it too.
 * exec: hooks never survive exec. A process started by `graft start` keeps
 * LD_PRELOAD in its environment, so the new image gets a fresh agent; a
 * process entered by `graft attach` does not.
 */
#ifndef GRAFT_RUNTIME_AGENT_H
#define GRAFT_RUNTIME_AGENT_H

#include <stdint.h>

#include "runtime/registry.h"

struct gagent;

/* Start an agent in this process on the registry named reg_name (NULL: the
 * default). Applies the current links before returning. The library's
 * constructor calls this; tests may call it directly. */
int gagent_start(const char *reg_name, struct gagent **out, struct graft_err *err);
/* Apply registry changes now (the agent thread does this on its own). */
int gagent_sync(struct gagent *agent);
/* Remove every hook, stop the thread, leave the registry. */
void gagent_stop(struct gagent *agent);

struct gagent_stats {
    uint32_t links_installed;
    uint32_t links_failed;
    uint64_t generation;
};
void gagent_get_stats(struct gagent *agent, struct gagent_stats *st);

#endif
