/*
 * scloop.c - the cost of one fire of the syscount extension
 * (examples/apps/nginx/syscount.bpf.c), in a tight loop
 * (bench/apps/syscount.sh builds and runs it).
 *
 * The script builds this file as an executable named `nginx`, so its comm
 * passes the extension's name filter as nginx's processes do, runs it
 * under `graft start` and loads the same object with `graft load` (graft's
 * loader, the object's own hash map). Each line read on stdin starts one
 * round: N getpid system calls through a copy of `mov $39, %eax; syscall;
 * ret` in anonymous memory, which graft never rewrites (plain), and N
 * through the same code in this binary, which its syscall hook rewrites
 * (hooked), each timed in thread CPU time (the syscall and the hook both
 * count); scloop answers "plain_ns hooked_ns" per call. The script takes
 * rounds before and after loading: the median of (hooked - plain) after,
 * less the same before, is one fire: graft's syscall hook and the JIT'd
 * program (bpf_get_current_comm, the name test, the hash lookup and atomic
 * add) on the raw sys_enter tracepoint. The map must count every hooked
 * getpid and no plain one.
 *
 * usage: nginx N   (rounds on demand from stdin, "plain_ns hooked_ns" on stdout)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef long (*getpid_fn)(void);

/* In this binary's text: graft's syscall hook rewrites its syscall. */
long scloop_getpid(void);
__asm__(".text\n.globl scloop_getpid\n.type scloop_getpid, @function\n"
        "scloop_getpid:\n\tmov $39, %eax\n\tsyscall\n\tret\n"
        ".size scloop_getpid, .-scloop_getpid\n");

/* ns per call of n calls of fn; bad counts results other than pid */
static double per_call(getpid_fn fn, long n, long pid, long *bad)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        *bad += fn() != pid;
    return (now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    if (n <= 0) {
        fprintf(stderr, "usage: %s N (getpid calls per round)\n", argv[0]);
        return 2;
    }
    static const unsigned char stub[] = { 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3 };
    void *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) {
        perror("scloop: mmap");
        return 1;
    }
    memcpy(anon, stub, sizeof(stub));
    if (mprotect(anon, 4096, PROT_READ | PROT_EXEC) != 0) {
        perror("scloop: mprotect");
        return 1;
    }
    getpid_fn plain = (getpid_fn)anon, hooked = scloop_getpid;
    long pid = getpid(), round = 0;
    char line[64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin)) {
        long bad = 0;
        double p, h;
        if (round++ % 2) {         /* alternate the order */
            h = per_call(hooked, n, pid, &bad);
            p = per_call(plain, n, pid, &bad);
        } else {
            p = per_call(plain, n, pid, &bad);
            h = per_call(hooked, n, pid, &bad);
        }
        if (bad) {
            fprintf(stderr, "scloop: %ld of %ld getpid calls returned another pid\n", bad, 2 * n);
            return 1;
        }
        printf("%.2f %.2f\n", p, h);
    }
    return 0;
}
