/*
 * cli.h - what the graft command's subcommands share.
 *
 * Each subcommand lives in cmd_<name>.c as `int cmd_<name>(int argc, char **argv)`
 * with argv[0] the subcommand name. Exit codes: 0 success, 1 the operation
 * failed (e.g. a program was rejected), 2 usage or input error.
 */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

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

#endif
