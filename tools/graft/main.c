/*
 * main.c - the graft command: dispatch to a subcommand, shared error and
 * usage printing. Subcommands live in cmd_*.c.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_overview(FILE *f)
{
    fprintf(f, "graft - run verified eBPF extensions inside running applications\n\n"
               "usage: graft <command> [options]\n\ncommands:\n");
    for (const struct cli_cmd *c = cli_cmds; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n`graft <command> --help` describes one command.\n");
}

void cli_usage(FILE *f, const char *cmd)
{
    for (const struct cli_cmd *c = cli_cmds; c->name; c++)
        if (strcmp(c->name, cmd) == 0) {
            fprintf(f, "%s\n", c->usage);
            return;
        }
}

int cli_fail(int code, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "graft %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (code == EXIT_USAGE && fmt[0] != '\0')
        fprintf(stderr, "try `graft %s --help`\n", cmd);
    return code;
}

int cli_fail_err(int code, const char *cmd, const struct graft_err *err)
{
    return cli_fail(code, cmd, "%s", err->msg[0] ? err->msg : strerror(-err->code));
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

long cli_parse_pid(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > INT_MAX)
        return -1;
    return v;
}

const char *cli_self_dir(void)
{
    static char dir[PATH_MAX];
    if (!dir[0]) {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
        if (n <= 0)
            return ".";
        dir[n] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
    }
    return dir;
}

int cli_lib_path(char *buf, size_t len, const char *env_name, const char *file)
{
    const char *env = getenv(env_name);
    if (env && *env)
        snprintf(buf, len, "%s", env);
    else
        snprintf(buf, len, "%s/../lib/%s", cli_self_dir(), file);
    char *real = realpath(buf, NULL);
    if (!real)
        return -errno;
    snprintf(buf, len, "%s", real);
    free(real);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_overview(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("graft 0.1.0\n");
        return 0;
    }
    for (const struct cli_cmd *c = cli_cmds; c->name; c++) {
        if (strcmp(c->name, argv[1]) != 0)
            continue;
        if (cli_wants_help(argc - 1, argv + 1)) {
            cli_usage(stdout, c->name);
            return 0;
        }
        return c->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "graft: unknown command '%s'\n\n", argv[1]);
    print_overview(stderr);
    return EXIT_USAGE;
}
