/*
 * tcheck.h - the check line the stand-alone test programs print: "ok: what"
 * or "FAIL: what  [line N: expression]", counted in g_pass/g_fail for the
 * program's closing "N passed, M failed" line. Header-only: each test is one
 * program, often booted alone as /init of a QEMU guest.
 */
#ifndef GRAFT_TESTS_TCHECK_H
#define GRAFT_TESTS_TCHECK_H

#include <stdarg.h>
#include <stdio.h>

static int g_pass, g_fail;

#define CHECK(cond, ...) tcheck_(!!(cond), #cond, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 4, 5)))
static inline void tcheck_(int ok, const char *expr, int line, const char *fmt, ...)
{
    va_list ap;
    printf("%s: ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok)
        printf("  [line %d: %s]", line, expr);
    printf("\n");
    fflush(stdout);
    ok ? g_pass++ : g_fail++;
}

#endif
