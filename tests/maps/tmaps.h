/*
 * tmaps.h - tiny check macros shared by the map tests: a failed CHECK prints
 * file:line and the expression and makes the test exit non-zero.
 */
#ifndef GRAFT_TESTS_TMAPS_H
#define GRAFT_TESTS_TMAPS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maps/maps.h"

static int t_failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            t_failures++;                                                        \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long long _a = (long long)(a), _b = (long long)(b);                      \
        if (_a != _b) {                                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n",    \
                    __FILE__, __LINE__, #a, _a, #b, _b);                         \
            t_failures++;                                                        \
        }                                                                        \
    } while (0)

/* Creates a map or exits: tests cannot go on without it. */
static inline struct gmap *t_create(const struct gmap_def *d)
{
    struct gmap *m;
    struct graft_err err;
    graft_err_clear(&err);
    int r = gmap_create(d, -1, &m, &err);
    if (r) {
        fprintf(stderr, "gmap_create(%s) failed: %d %s\n", d->name, r, err.msg);
        exit(1);
    }
    return m;
}

static inline void t_destroy(struct gmap *m)
{
    char name[64];
    snprintf(name, sizeof(name), "%s", gmap_shm_name(m));
    gmap_close(m);
    gmap_unlink(name);
}

static inline void t_consistent(struct gmap *m)
{
    struct graft_err err;
    graft_err_clear(&err);
    int r = gmap_check_consistency(m, &err);
    if (r) {
        fprintf(stderr, "consistency check failed: %s\n", err.msg);
        t_failures++;
    }
}

static inline int t_done(const char *name)
{
    if (t_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, t_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
