/* tool.h - what the compat test tools' loaders share. Each tool is used as
 *   TOOL -p PID [ARGS]
 * and follows the target: it loads and attaches its skeleton, prints
 * "attached" on stderr, collects while PID lives, then prints its results
 * on stdout. Nothing here knows about graft: the tools are plain libbpf. */
#ifndef COMPAT_TOOL_H
#define COMPAT_TOOL_H
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static volatile sig_atomic_t tool_exiting;
static void tool_on_signal(int sig) { (void)sig; tool_exiting = 1; }

static int libbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
    if (level == LIBBPF_DEBUG && !getenv("TOOL_DEBUG"))
        return 0;
    return vfprintf(stderr, fmt, args);
}

/* -p PID (required); returns the pid, or exits with usage. */
static int tool_init(int argc, char **argv)
{
    int pid = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-p") == 0)
            pid = atoi(argv[i + 1]);
    if (pid <= 0) {
        fprintf(stderr, "usage: %s -p PID [ARGS]\n", argv[0]);
        exit(2);
    }
    libbpf_set_print(libbpf_print_fn);
    signal(SIGINT, tool_on_signal);
    signal(SIGTERM, tool_on_signal);
    return pid;
}

/* Alive and not a zombie. */
static int tool_target_alive(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void tool_attached(void)
{
    fprintf(stderr, "attached\n");
    fflush(stderr);
}

/* Poll fn (e.g. ring_buffer__poll) until the target is gone, then drain. */
#define TOOL_FOLLOW(pid, poll_expr, drain_expr)                       \
    do {                                                              \
        while (!tool_exiting && tool_target_alive(pid))               \
            (void)(poll_expr);                                        \
        for (int drain_i = 0; drain_i < 3; drain_i++)                 \
            (void)(drain_expr);                                       \
    } while (0)
#endif
