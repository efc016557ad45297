/*
 * test_gate_count.c - no hook pays more gate crossings than it needs
 * (issue 15): counts the WRPKRU instructions one hook hit executes, by
 * single-stepping a forked child with ptrace over exactly that hit, so the
 * count costs the hooks nothing (no counter in the trampolines).
 *
 *  - an entry hook with one handler, and with three handlers on the same
 *    entry: one gate pair (2 WRPKRU) per hit either way;
 *  - a handler calling helpers that touch only extension memory or none
 *    (map lookup and update on a keyed map, ktime, pid_tgid, prandom): they
 *    run inside, still 2;
 *  - entry plus return hook on one function: 4 (two trampolines, a pair each);
 *  - a handler calling one host function through its thunk
 *    (giso_wrap_host_call): 4 (the reverse pair);
 *  - a syscall with two programs on one list: 2.
 *
 * Needs PKU (isolation on, via tests/common/tiso.h with
 * GRAFT_TEST_ISOLATION=1): run by pku_suite, natively or under QEMU.
 * Prints "gate count: N passed, M failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"
#include "maps/maps.h"
#include "tcheck.h"
#include "tiso.h"

#define MAX_STEPS 3000000L

static volatile uint64_t sink;
static struct gmap *g_map;

__attribute__((noinline)) long gc_target(long x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

/* Where the counted region ends (the parent stops stepping at its entry). */
__attribute__((noinline)) void gc_end(void)
{
    __asm__ volatile("");
}

static uint64_t h_count(void *ctx, uint64_t len)
{
    (void)ctx, (void)len;
    sink++;
    return 0;
}

static uint64_t h_helpers(void *ctx, uint64_t len)
{
    (void)ctx, (void)len;
    uint32_t key = 1;
    uint64_t val = ghelper_proto(5)->fn(0, 0, 0, 0, 0);          /* ktime_get_ns */
    val ^= ghelper_proto(14)->fn(0, 0, 0, 0, 0);                 /* get_current_pid_tgid */
    val ^= ghelper_proto(7)->fn(0, 0, 0, 0, 0);                  /* get_prandom_u32 */
    ghelper_proto(2)->fn((uint64_t)(uintptr_t)g_map, (uint64_t)(uintptr_t)&key,
                         (uint64_t)(uintptr_t)&val, 0, 0);      /* map_update_elem */
    uint64_t *v = (uint64_t *)(uintptr_t)ghelper_proto(1)->fn(
        (uint64_t)(uintptr_t)g_map, (uint64_t)(uintptr_t)&key, 0, 0, 0);   /* lookup */
    if (v)
        sink += *v != 0;
    return 0;
}

static uint64_t host_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return a + b + c + d + e;
}
static gvm_helper_fn g_host_thunk;

static uint64_t h_hostcall(void *ctx, uint64_t len)
{
    (void)ctx, (void)len;
    sink += g_host_thunk(1, 2, 3, 4, 5);
    return 0;
}

static uint64_t h_sys(void *ctx, uint64_t len)
{
    (void)ctx, (void)len;
    sink++;
    return 0;
}

enum what { CALL_TARGET, CALL_GETPPID };

/* In a forked child: the WRPKRU instructions executed by one call of the
 * hooked code, single-stepped from a SIGSTOP to gc_end. -1 on trouble. */
static long count_wrpkru(enum what w)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        if (w == CALL_TARGET)
            sink += (uint64_t)gc_target(7);
        else
            sink += (uint64_t)syscall(SYS_getppid);
        gc_end();
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
        return -1;
    long n = 0, steps = 0;
    uint64_t end = (uint64_t)(uintptr_t)gc_end;
    for (; steps < MAX_STEPS; steps++) {
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) < 0 || waitpid(pid, &st, 0) != pid ||
            !WIFSTOPPED(st))
            break;
        struct user_regs_struct r;
        if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
            break;
        if (r.rip == end)
            break;
        errno = 0;
        long word = ptrace(PTRACE_PEEKTEXT, pid, (void *)(uintptr_t)r.rip, 0);
        if (errno == 0 && (word & 0xffffff) == 0xef010f) {  /* 0f 01 ef: WRPKRU */
            n++;
            if (getenv("GRAFT_GATE_COUNT_VERBOSE")) {    /* where each one ran */
                long ra = ptrace(PTRACE_PEEKDATA, pid, (void *)(uintptr_t)r.rsp, 0);
                long ra2 = ptrace(PTRACE_PEEKDATA, pid, (void *)(uintptr_t)(r.rsp + 24), 0);
                printf("  WRPKRU at %#llx (page off %#llx) [rsp] %#lx [rsp+24] %#lx\n", r.rip, r.rip & 0xfff, ra, ra2);
            }
        }
    }
    int reached = steps < MAX_STEPS && WIFSTOPPED(st);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    printf("  (%ld instructions stepped)\n", steps);
    return reached ? n : -1;
}

static struct ghook *hook(void *addr, enum ghook_kind k, ghook_handler fn)
{
    struct ghook *h = NULL;
    struct graft_err err = { 0 };
    if (gattach_install(addr, k, fn, 0, NULL, &h, &err) < 0) {
        printf("FAIL gattach_install: %s\n", err.msg);
        exit(1);
    }
    return h;
}

static void unhook(struct ghook *h)
{
    struct graft_err err = { 0 };
    gattach_remove(h, &err);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!tiso_setup("gate count")) {
        printf("gate count: needs GRAFT_TEST_ISOLATION=1 and a CPU with PKU (run by pku_suite)\n");
        return 1;
    }
    struct graft_err err = { 0 };
    struct gmap_def def = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 8,
                            .max_entries = 4 };
    if (gmap_create(&def, -1, &g_map, &err) < 0) {
        printf("FAIL gmap_create: %s\n", err.msg);
        return 1;
    }
    gmap_unlink(gmap_shm_name(g_map));
    g_host_thunk = giso_wrap_host_call(host_add, &err);
    CHECK(g_host_thunk && g_host_thunk != host_add, "a host-call thunk (%s)", err.msg);

    /* Each case calls the hooked code once first, in the parent: a thread's
     * first hit registers it (C path, stack allocation); the child inherits
     * that and steps over a steady-state hit. */
    struct ghook *h1 = hook((void *)gc_target, GHOOK_ENTRY, h_count);
    gc_target(1);
    long n = count_wrpkru(CALL_TARGET);
    CHECK(n == 2, "an entry hook with one handler: %ld WRPKRU per hit, want 2", n);
    struct ghook *h2 = hook((void *)gc_target, GHOOK_ENTRY, h_count);
    struct ghook *h3 = hook((void *)gc_target, GHOOK_ENTRY, h_count);
    gc_target(1);
    n = count_wrpkru(CALL_TARGET);
    CHECK(n == 2, "three handlers on one entry share one gate pair: %ld WRPKRU, want 2", n);
    unhook(h2);
    unhook(h3);
    struct ghook *hh = hook((void *)gc_target, GHOOK_ENTRY, h_helpers);
    gc_target(1);
    n = count_wrpkru(CALL_TARGET);
    CHECK(n == 2, "helpers on extension memory cross no gate: %ld WRPKRU, want 2", n);
    unhook(hh);
    struct ghook *hr = hook((void *)gc_target, GHOOK_RETURN, h_count);
    gc_target(1);
    n = count_wrpkru(CALL_TARGET);
    CHECK(n == 4, "entry and return hook: %ld WRPKRU, want 4 (a pair each)", n);
    unhook(hr);
    unhook(h1);
    struct ghook *hc = hook((void *)gc_target, GHOOK_ENTRY, h_hostcall);
    gc_target(1);
    n = count_wrpkru(CALL_TARGET);
    CHECK(n == 4, "a handler calling one host function: %ld WRPKRU, want 4", n);
    unhook(hc);

    struct gsys_opts so = { .sz = sizeof(so) };
    struct gsys_link *l1 = NULL, *l2 = NULL;
    if (gsys_install(&so, &err) < 0) {
        printf("FAIL gsys_install: %s\n", err.msg);
        return 1;
    }
    CHECK(gsys_attach(GSYS_RAW_ENTER, SYS_getppid, h_sys, 0, &l1, &err) == 0 &&
          gsys_attach(GSYS_RAW_ENTER, SYS_getppid, h_sys, 0, &l2, &err) == 0,
          "two syscall programs (%s)", err.msg);
    syscall(SYS_getppid);
    n = count_wrpkru(CALL_GETPPID);
    CHECK(n == 2, "a syscall with two programs on one list: %ld WRPKRU, want 2", n);
    gsys_detach(l1);
    gsys_detach(l2);
    gsys_uninstall();

    printf("gate count: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
