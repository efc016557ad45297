/*
 * th.h - the few assertion macros the helper tests share. A failed check
 * prints where and what, and the test exits non-zero at the end.
 */
#ifndef GRAFT_TESTS_HELPERS_TH_H
#define GRAFT_TESTS_HELPERS_TH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/helpers.h"

static int th_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            th_failures++;                                                  \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_) {                                                     \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",     \
                    __FILE__, __LINE__, #a, a_, #b, b_);                    \
            th_failures++;                                                  \
        }                                                                   \
    } while (0)

#define CHECK_STR(a, b)                                                     \
    do {                                                                    \
        const char *a_ = (a), *b_ = (b);                                    \
        if (strcmp(a_, b_) != 0) {                                          \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n",       \
                    __FILE__, __LINE__, #a, a_, b_);                        \
            th_failures++;                                                  \
        }                                                                   \
    } while (0)

/* Call helper `name` through the table the VM would use, by its number. */
static inline uint64_t th_call(const char *name, uint64_t a1, uint64_t a2,
                               uint64_t a3, uint64_t a4, uint64_t a5)
{
    const struct ghelper_proto *p = ghelper_by_name(name);
    if (!p) {
        fprintf(stderr, "no helper named %s\n", name);
        exit(2);
    }
    return ghelper_table()[p->id](a1, a2, a3, a4, a5);
}
#define H(name, ...) th_call_n(name, __VA_ARGS__, 0, 0, 0, 0, 0)
#define th_call_n(name, a, b, c, d, e, ...)                                 \
    th_call(name, (uint64_t)(uintptr_t)(a), (uint64_t)(uintptr_t)(b),       \
            (uint64_t)(uintptr_t)(c), (uint64_t)(uintptr_t)(d),             \
            (uint64_t)(uintptr_t)(e))
#define H0(name) th_call(name, 0, 0, 0, 0, 0)

#define TH_DONE()                                                           \
    do {                                                                    \
        if (th_failures) {                                                  \
            fprintf(stderr, "%d check(s) failed\n", th_failures);           \
            return 1;                                                       \
        }                                                                   \
        printf("ok\n");                                                     \
        return 0;                                                           \
    } while (0)

#endif
