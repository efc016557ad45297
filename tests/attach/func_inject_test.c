/*
 * func_inject_test.c - src/runtime/inject.c against real child processes:
 * load a library whose constructor writes a marker (and check the target
 * keeps running correctly afterwards), a pid that does not exist, a library
 * that does not exist (dlerror reported), and a target that exits during
 * the injection (must return -ESRCH quickly, never hang).
 *
 * argv: target program, payload .so, exiting .so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/inject.h"

static int g_fail;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            g_fail++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

static pid_t spawn(const char *prog, const char *marker)
{
    pid_t p = fork();
    if (p == 0) {
        setenv("GRAFT_INJECT_MARKER", marker, 1);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(prog, prog, (char *)NULL);
        _exit(127);
    }
    /* Wait until the child sleeps in its loop: exec, the dynamic loader
     * and (in the sanitizer build) ASan's start-up are done. A fixed sleep
     * is not enough on a loaded machine. */
    char path[64], buf[64];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)p);
    struct timespec ts = { 0, 2 * 1000 * 1000 };
    for (int i = 0; i < 5000; i++) {
        FILE *f = fopen(path, "r");
        int nr = -1;
        if (f) {
            if (fgets(buf, sizeof(buf), f))
                nr = atoi(buf);
            fclose(f);
        }
        if (nr == 230 /* clock_nanosleep */ || nr == 35 /* nanosleep */)
            break;
        nanosleep(&ts, NULL);
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s target payload.so exit.so\n", argv[0]);
        return 2;
    }
    struct graft_err err = { 0 };
    char marker[] = "/tmp/graft-inject-XXXXXX";
    int mfd = mkstemp(marker);
    close(mfd);
    unlink(marker);

    struct graft_err probe = { 0 };
    if (ginject_check_access(getpid(), &probe) == -EPERM) {
        printf("SKIP: ptrace not permitted: %s\n", probe.msg);
        return 0;
    }

    /* 1. success: marker written by the constructor inside the child */
    pid_t child = spawn(argv[1], marker);
    int rc = ginject_load_library(child, argv[2], &err);
    CHECK(rc == 0, "inject: %d %s", rc, err.msg);
    FILE *f = fopen(marker, "r");
    int got = 0;
    if (f) {
        if (fscanf(f, "%d", &got) != 1)
            got = 0;
        fclose(f);
    }
    CHECK(got == child, "marker has pid %d, child is %d", got, (int)child);
    /* the target still runs: a second injection works and it is alive */
    unlink(marker);
    rc = ginject_load_library(child, argv[2], &err);
    CHECK(rc == 0, "second inject: %d %s", rc, err.msg);
    CHECK(kill(child, 0) == 0, "child died after injection");
    int st = 0;
    pid_t w = waitpid(child, &st, WNOHANG);
    CHECK(w == 0, "child exited after injection (status %d)", st);

    /* 2. dlopen failure is reported with the target's dlerror() */
    char bad[] = "/tmp/graft-inject-not-an-elf-XXXXXX";
    int bfd = mkstemp(bad);
    CHECK(write(bfd, "nope", 4) == 4, "write");
    close(bfd);
    rc = ginject_load_library(child, bad, &err);
    CHECK(rc == -ELIBBAD && strstr(err.msg, "dlopen"), "bad library: %d %s", rc, err.msg);
    printf("dlopen failure message: %s\n", err.msg);
    unlink(bad);
    CHECK(kill(child, 0) == 0 && waitpid(child, &st, WNOHANG) == 0, "child died after failure");
    kill(child, SIGKILL);
    waitpid(child, &st, 0);

    /* 3. no such process */
    rc = ginject_load_library(4000000, argv[2], &err);
    CHECK(rc == -ESRCH && strstr(err.msg, "no such process"), "bad pid: %d %s", rc, err.msg);

    /* 4. the target exits inside the injected dlopen */
    child = spawn(argv[1], marker);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = ginject_load_library(child, argv[3], &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(rc == -ESRCH && strstr(err.msg, "exited"), "exit during attach: %d %s", rc, err.msg);
    CHECK(secs < 3.0, "took %.2f s", secs);
    printf("exit during attach: %s (%.3f s)\n", err.msg, secs);
    waitpid(child, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "child status %d", st);

    unlink(marker);
    printf("%s\n", g_fail ? "FAILED" : "all injector checks passed");
    return g_fail ? 1 : 0;
}
