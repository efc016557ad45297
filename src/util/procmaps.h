/*
 * procmaps.h - what graft reads of /proc/PID: one line of its maps
 *   lo-hi perms offset dev inode [path]
 * and when the process started.
 */
#ifndef GRAFT_UTIL_PROCMAPS_H
#define GRAFT_UTIL_PROCMAPS_H

#include <stdint.h>
#include <sys/types.h>

struct gprocmaps_line {
    uint64_t lo, hi;      /* the mapping's addresses, [lo, hi) */
    uint64_t off;         /* its offset in the file */
    char perms[8];        /* "r-xp", ... */
    char *path;           /* in the line itself, without the newline; "" when anonymous */
};

/* Parses LINE (the path is cut out of it in place); 0, or -1 when it is not
 * a maps line. */
int gprocmaps_parse(char *line, struct gprocmaps_line *m);

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * since boot, which tells it from an earlier process of the same pid; 0
 * when unreadable. */
uint64_t gproc_start_time(pid_t pid);

#endif
