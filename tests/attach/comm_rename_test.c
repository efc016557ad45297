/*
 * comm_rename_test.c - bpf_get_current_comm is FP-free and still exact when
 * a thread renames itself: its per-thread cache is invalidated by the
 * syscall hooks' dispatcher when it sees prctl(PR_SET_NAME) (glibc's
 * pthread_setname_np on the calling thread is that prctl), not by a clock.
 *
 * A JIT-compiled program on raw_tracepoint/sys_enter of getppid copies
 * bpf_get_current_comm into an array map, attached as the agent attaches
 * it (handler_keeps_fp, since ghelper_prog_fp_free says 1: the CALLS path
 * without the xmm save). The test plays the agent's part for the ticks
 * (ghelper_comm_watch(GHELPER_COMM_TICKS)) but never ticks during the
 * rename checks, so only the observed rename can make them pass.
 *
 *   self      prctl(PR_SET_NAME, new) then getppid, many times, on this
 *             thread and on a new one: the program sees new every time
 *             (with the old 100 ms coarse-clock cache it saw the old name).
 *   setname   the same through pthread_setname_np(pthread_self()).
 *   other     a thread renamed by another one (pthread_setname_np on it:
 *             a write to /proc/self/task/TID/comm, which graft does not
 *             see): seen after the next tick.
 *   fork      a forked child has no ticks (the atfork handler, as the
 *             agent's, says so): a /proc rename there is seen within the
 *             coarse clock's 100 ms.
 *   unwatched after gsys_uninstall the cache falls back to the coarse
 *             clock (a self-rename is then seen within 100 ms).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/vm.h"
#include "fp_util.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

static struct gmap *seen_map;   /* ARRAY, 1 x char[16]: comm at the last getppid */

static const char *prog_text =
    "stw [r10-4], 0\n"
    "lddw r1, map:1\n mov r2, r10\n add r2, -4\n call 1\n"
    "jeq r0, 0, +3\n"
    "mov r1, r0\n mov r2, 16\n call 16\n"
    "mov r0, 0\n exit\n";

/* What the program saw at this thread's getppid. */
static void seen_now(char out[16])
{
    syscall(SYS_getppid);
    uint32_t k = 0;
    const char *v = gmap_lookup(seen_map, &k);
    memcpy(out, v ? v : "", 16);
}

/* n renames of this thread by `how` (0 prctl, 1 pthread_setname_np), each
 * followed at once by a hooked syscall; the number of stale names seen */
static long rename_self(int how, long n, char first_bad[64])
{
    long bad = 0;
    for (long i = 0; i < n; i++) {
        char name[16], got[16];
        snprintf(name, sizeof(name), "%s%ld", how ? "set" : "nm", i);
        int rc = how ? pthread_setname_np(pthread_self(), name)
                     : prctl(PR_SET_NAME, name, 0, 0, 0);
        CHECK(rc == 0, "rename to %s: %d", name, rc);
        seen_now(got);
        if (strncmp(got, name, 16) != 0 && bad++ == 0)
            snprintf(first_bad, 64, "saw \"%.16s\" after renaming to \"%s\"", got, name);
    }
    return bad;
}

struct self_arg {
    long bad;
    char first_bad[64];
};

static void *self_thread(void *p)
{
    struct self_arg *a = p;
    a->bad = rename_self(0, 2000, a->first_bad) + rename_self(1, 2000, a->first_bad);
    return NULL;
}

/* the "other" case: the renamed thread waits for a go, then reports */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int step;
static char other_seen[2][16];

static void wait_step(int s)
{
    pthread_mutex_lock(&mu);
    while (step < s)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void set_step(int s)
{
    pthread_mutex_lock(&mu);
    step = s;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void *other_thread(void *p)
{
    (void)p;
    prctl(PR_SET_NAME, "before", 0, 0, 0);
    seen_now(other_seen[0]);       /* cached "before" */
    set_step(1);
    wait_step(2);                  /* renamed by main, then a tick */
    seen_now(other_seen[1]);
    return NULL;
}

/* As the agent's atfork child handler: a child has no ticking thread. */
static void child_without_ticks(void)
{
    ghelper_comm_watch(GHELPER_COMM_TICKS, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    seen_map = fp_make_map(GMAP_ARRAY, 16, 1);
    int fp_free;
    static struct gmap *maps[2];   /* map:1 */
    maps[1] = seen_map;
    struct gvm_prog *p = fp_jit(prog_text, maps, 2, &fp_free);
    CHECK(fp_free, "ghelper_prog_fp_free of a program calling get_current_comm: 0");
    struct graft_err err = {0};

    ghelper_comm_watch(GHELPER_COMM_TICKS, 1);   /* the agent's part; no ticks below */
    pthread_atfork(NULL, NULL, child_without_ticks);  /* also the agent's */
    if (gsys_install(NULL, &err) < 0) {
        printf("FAIL install: %s\n", err.msg);
        return 1;
    }
    struct gsys_attach_opts o = {.sz = sizeof(o), .handler_keeps_fp = fp_free};
    struct gsys_link *l = NULL;
    if (gsys_attach_opts(GSYS_RAW_ENTER, SYS_getppid, (gsys_handler)gvm_prog_native(p), &o, &l,
                         &err) < 0) {
        printf("FAIL attach: %s\n", err.msg);
        return 1;
    }

    /* self, on this thread and a new one */
    char first_bad[64] = "";
    long bad = rename_self(0, 5000, first_bad);
    CHECK(bad == 0, "prctl: %ld of 5000 renames not seen (%s)", bad, first_bad);
    bad = rename_self(1, 5000, first_bad);
    CHECK(bad == 0, "pthread_setname_np(self): %ld of 5000 renames not seen (%s)", bad,
          first_bad);
    struct self_arg sa = {0};
    pthread_t th;
    pthread_create(&th, NULL, self_thread, &sa);
    pthread_join(th, NULL);
    CHECK(sa.bad == 0, "new thread: %ld of 4000 renames not seen (%s)", sa.bad, sa.first_bad);
    printf("self renames: %s\n", bad || sa.bad ? "stale names seen" : "all seen at once");

    /* other: renamed through /proc, seen after a tick */
    pthread_create(&th, NULL, other_thread, NULL);
    wait_step(1);
    CHECK(strcmp(other_seen[0], "before") == 0, "other: saw \"%.16s\" first", other_seen[0]);
    CHECK(pthread_setname_np(th, "after") == 0, "pthread_setname_np(other)");
    ghelper_comm_tick();
    set_step(2);
    pthread_join(th, NULL);
    CHECK(strcmp(other_seen[1], "after") == 0, "other: saw \"%.16s\" after a rename and a tick",
          other_seen[1]);

    /* fork: the child has no ticks (no agent thread yet), so a rename it
     * does not see (a /proc write) must still be seen within 100 ms */
    char cur[16];
    seen_now(cur);                 /* this thread's copy current at the fork */
    pid_t child = fork();
    if (child == 0) {
        char got0[16];
        FILE *f = fopen("/proc/thread-self/comm", "w");
        int ok = f && fputs("forked", f) >= 0;
        if (f)
            fclose(f);
        nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
        seen_now(got0);
        if (!ok || strcmp(got0, "forked") != 0) {
            printf("FAIL fork: child saw \"%.16s\" 150 ms after a /proc rename\n", got0);
            _exit(1);
        }
        _exit(0);
    }
    int st = 0;
    waitpid(child, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: the child's check failed (%#x)", st);

    /* unwatched: the coarse clock bounds it */
    gsys_detach(l);
    gsys_uninstall();
    prctl(PR_SET_NAME, "unwatched", 0, 0, 0);
    nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
    char got[16] = "";
    ghelper_table()[16]((uint64_t)(uintptr_t)got, 16, 0, 0, 0);   /* get_current_comm */
    CHECK(strncmp(got, "unwatched", 16) == 0, "unwatched: \"%.16s\" 150 ms after a rename", got);

    gvm_prog_free(p);
    printf("comm_rename: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
