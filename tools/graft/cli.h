/*
 * cli.h - what the graft command's subcommands share.
 *
 * Each subcommand lives in cmd_<name>.c as `int cmd_<name>(int argc, char **argv)`
 * with argv[0] the subcommand name. Exit codes: 0 success, 1 the operation
 * failed (e.g. a program was rejected), 2 usage or input error.
 */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

#define EXIT_USAGE 2

struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;         /* printed by --help and on usage errors */
};

extern const struct cli_cmd cli_cmds[];

/* Print "graft <cmd>: message" to stderr and return the exit code. */
int cli_fail(int code, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cli_fail_err(int code, const char *cmd, const struct graft_err *err);
/* Print the usage of cmd to f. */
void cli_usage(FILE *f, const char *cmd);
/* True when argv asks for help. */
int cli_wants_help(int argc, char **argv);
/* Parse a decimal pid; -1 if it is not one. */
long cli_parse_pid(const char *s);
/* Directory holding the running graft binary (to find libgraft-agent.so). */
const char *cli_self_dir(void);
/* A library graft preloads: $ENV_NAME when set, else ../lib/FILE next to
 * this binary; made absolute (realpath) in buf. 0, or -errno with the path
 * tried in buf. */
int cli_lib_path(char *buf, size_t len, const char *env_name, const char *file);

struct geim_spec;
struct grt_grant;
/* Load an EIM spec and check it has class_name; errors say which. */
int cli_open_eim(const char *path, const char *class_name, struct geim_spec **spec,
                 struct graft_err *err);

/* The options that decide what programs may do, shared by load, verify
 * and prog run: --eim SPEC --class NAME, --allow RIGHTS (write-user,
 * override, signal, all), --insn-budget N. None given: observe-only. */
struct cli_policy_opts {
    const char *eim_path, *class_name;
    uint32_t rights;           /* GVER_RIGHT_* from --allow */
    uint64_t insn_budget;      /* --insn-budget; 0: the default */
};
/* If argv[*i] is one of those options, consume it (and its value): 1; not
 * one: 0; a bad value: -1 after printing the usage error. */
int cli_policy_opt(const char *cmd, int argc, char **argv, int *i, struct cli_policy_opts *o);
/* The grant for o (opening the spec into *spec, freed by the caller with
 * geim_free); prints one WARNING line on stderr per right --allow grants.
 * 0, or the exit code after printing the error. */
int cli_policy_grant(const char *cmd, const struct cli_policy_opts *o, struct geim_spec **spec,
                     struct grt_grant *g);
/* The WARNING lines for rights granted by a flag. */
void cli_warn_rights(const char *cmd, uint32_t rights);

#endif
