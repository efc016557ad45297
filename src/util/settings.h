/*
 * settings.h - the process settings graft reads (GRAFT_* variables and the
 * few standard ones it needs), through one function.
 *
 * Why not getenv: an agent injected by `graft attach` starts while the host's
 * other threads run, and a host that calls setenv (or rewrites its
 * environment for a process title) can free the array getenv is walking.
 * Its settings are also the operator's, not the host's: `graft attach` runs
 * with the registry and isolation the operator chose. So `graft attach`
 * writes them to a small file named after the target (gsettings_attach_path)
 * and the injected agent installs that file as its settings before anything
 * reads one; from then on gsetting() never touches the environment.
 * Everywhere else (a preloaded agent, the CLI, tests) gsetting() is getenv.
 */
#ifndef GRAFT_UTIL_SETTINGS_H
#define GRAFT_UTIL_SETTINGS_H

#include <stddef.h>
#include <sys/types.h>

/* The value of setting NAME, or NULL when unset. */
const char *gsetting(const char *name);

/* The names `graft attach` hands to an injected agent (NULL-terminated). */
extern const char *const gsettings_passed[];

/* Where `graft attach` leaves the settings for process PID. */
int gsettings_attach_path(pid_t pid, char *buf, size_t len);

/* Writes the file for PID from this process's environment; 0 or -errno. */
int gsettings_write_attach(pid_t pid);

/* In the target: installs the settings left for this process, if a valid
 * file (a regular file of root's or ours, not writable by others, naming
 * this process and its start time) is there. 1 when installed, 0 when there
 * is none (gsetting() stays getenv), -errno when one is there but invalid
 * (then no setting is read from the environment either). */
int gsettings_install_attach(void);

#endif
