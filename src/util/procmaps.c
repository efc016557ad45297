/* procmaps.c - parsing a line of /proc/PID/maps (procmaps.h). */
#include "util/procmaps.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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
