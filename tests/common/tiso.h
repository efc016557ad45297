/*
 * tiso.h - let a test program of the attach layer run with isolation on.
 *
 * The agent turns isolation on (protection keys, gates, keyed extension
 * stacks) whenever the CPU has PKU, but the attach tests install their hooks
 * directly and would run without it on every machine. With
 * GRAFT_TEST_ISOLATION set, tiso_setup() turns it on the way the agent does,
 * before the first hook: "1" (or "stacks") with keyed extension stacks, the
 * agent's default, "gates" with the gates alone. It fails the program when
 * isolation cannot be had (no PKU), so a run that asked for it never passes
 * silently without it. The suite runner (tests/qemu) sets the variable where
 * PKU exists: natively on such a CPU, else in a QEMU guest.
 *
 * Prints one line either way, "<who>: isolation: on (pkey N), extension
 * stacks keyed" or "<who>: isolation: off (GRAFT_TEST_ISOLATION not set)",
 * which the runner reports next to the test's verdict.
 */
#ifndef GRAFT_TESTS_TISO_H
#define GRAFT_TESTS_TISO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach/attach.h"
#include "isolation/isolation.h"

/* 1 when isolation was turned on. */
static inline int tiso_setup(const char *who)
{
    const char *mode = getenv("GRAFT_TEST_ISOLATION");
    if (!mode || !*mode || !strcmp(mode, "0")) {
        printf("%s: isolation: off (GRAFT_TEST_ISOLATION not set)\n", who);
        fflush(stdout);
        return 0;
    }
    int gates_only = !strcmp(mode, "gates");
    if (!gates_only && strcmp(mode, "1") && strcmp(mode, "stacks")) {
        fprintf(stderr, "%s: GRAFT_TEST_ISOLATION=%s: want 1, stacks or gates\n", who, mode);
        exit(2);
    }
    struct giso_opts o = { .sz = sizeof(o), .require = 1 };
    struct graft_err err = { 0 };
    if (giso_init(&o, &err) < 0 || gattach_set_isolation(1, &err) < 0 ||
        (!gates_only && gattach_set_ext_stacks(1, &err) < 0)) {
        fprintf(stderr, "%s: GRAFT_TEST_ISOLATION=%s but isolation cannot be turned on: %s\n",
                who, mode, err.msg);
        exit(2);
    }
    printf("%s: %s, extension stacks %s\n", who, giso_status(),
           gates_only ? "not keyed (gates only)" : "keyed");
    fflush(stdout);
    return 1;
}

#endif
