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

struct geim_spec;
struct gobj;
struct gobj_prog;
struct gver_result;
/* Load an EIM spec and check it has class_name; errors say which. */
int cli_open_eim(const char *path, const char *class_name, struct geim_spec **spec,
                 struct graft_err *err);
/* Verify prog under the EIM class when spec is set, else under the policy
 * its section implies. 0 when the verifier ran (see res->accepted). */
int cli_verify_prog(const struct gobj *obj, const struct gobj_prog *prog,
                    const struct geim_spec *spec, const char *class_name, int log_level,
                    struct gver_result *res, struct graft_err *err);

#endif
