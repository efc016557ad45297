/*
 * treg.h - a test program's own registry name, "<prefix>.<what>.<pid>".
 * The prefix is $GRAFT_REGISTRY: ctest gives every test one of the run's
 * own, which the suite's /dev/shm guard watches (tests/CMakeLists.txt), so
 * whatever the test leaves is reported. Else, or when the name would pass
 * a registry name's 36 bytes (GREG_REG_NAME_MAX), /graft.test.
 */
#ifndef GRAFT_TESTS_TREG_H
#define GRAFT_TESTS_TREG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *treg_name(char *buf, size_t len, const char *what)
{
    const char *env = getenv("GRAFT_REGISTRY");
    int n = -1;
    if (env && env[0] == '/' && !strchr(env + 1, '/'))
        n = snprintf(buf, len, "%s.%s.%d", env, what, (int)getpid());
    if (n < 0 || n > 36 || (size_t)n >= len)
        snprintf(buf, len, "/graft.test.%s.%d", what, (int)getpid());
    return buf;
}

#endif
