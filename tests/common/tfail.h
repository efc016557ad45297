/*
 * tfail.h - the check of the unit tests that print only what fails:
 * CHECK(cond, fmt, ...) prints "FAIL file:line: message" on stderr and
 * counts it in g_fails; the program ends non-zero when g_fails is. (tcheck.h
 * is the other kind: a line for every check, for the programs run as /init
 * of a QEMU guest and the end-to-end tests.)
 */
#ifndef GRAFT_TESTS_TFAIL_H
#define GRAFT_TESTS_TFAIL_H

#include <stdio.h>

static int g_fails;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            g_fails++;                                                        \
        }                                                                     \
    } while (0)

#endif
