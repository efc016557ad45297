/* procmaps.c - parsing a line of /proc/PID/maps; a process's start time
 * (procmaps.h). */
#define _GNU_SOURCE
#include "util/procmaps.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int gprocmaps_parse(char *line, struct gprocmaps_line *m)
{
    int pos = 0;
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s%n", &m->lo, &m->hi, m->perms,
               &m->off, &pos) < 4 || !pos)
        return -1;
    char *p = line + pos;
    while (*p == ' ')
        p++;
    p[strcspn(p, "\n")] = '\0';
    m->path = p;
    return 0;
}

uint64_t gproc_start_time(pid_t pid)
{
    char path[32], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count
     * fields from the last ')'. */
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}
