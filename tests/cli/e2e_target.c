/*
 * e2e_target.c - a host program for the end-to-end tests. It calls work()
 * in rounds; before each round it waits for a line on stdin, so a test can
 * load, attach and detach between rounds and know exactly how many calls
 * each state saw.
 *
 *   e2e_target N        for each line read: call work() N times, print "round K done";
 *                       a line "sys" makes N getppid() and N uname() syscalls
 *                       instead, and
 *                       "open PATH" opens PATH and prints the error, if any,
 *                       "tiny" calls tiny() N times (too short for a jump: the
 *                       hook must fall back to int3 and say so),
 *                       "churn" starts a thread that rewrites the environment
 *                       without end (setenv/unsetenv, growing and shrinking
 *                       environ), as hosts that set a process title do
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

__attribute__((noinline)) long work(long x)
{
    __asm__ volatile("" ::: "memory");   /* a real call, never folded away */
    return x * 3 + 1;
}

/* xor %eax,%eax; ret: 3 bytes, fewer than the 5-byte jump needs. */
long tiny(void);
__asm__(".text\n.globl tiny\n.type tiny,@function\ntiny:\n"
        "  xor %eax, %eax\n  ret\n.size tiny, .-tiny\n");

/* Every setenv that adds a name may move environ to a new array and free
 * the old one: an agent that walked environ meanwhile read freed memory. */
static void *churn_environment(void *arg)
{
    (void)arg;
    char name[32];
    for (unsigned long i = 0;; i++) {
        snprintf(name, sizeof(name), "E2E_CHURN_%lu", i % 256);
        if (i % 512 < 256)
            setenv(name, "some value to copy", 1);
        else
            unsetenv(name);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100;
    char line[64];
    long sum = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("pid %d ready\n", getpid());
    for (int round = 1; fgets(line, sizeof(line), stdin); round++) {
        if (strncmp(line, "quit", 4) == 0)
            break;
        if (strncmp(line, "sys", 3) == 0) {           /* n getppid() and n uname() system calls */
            struct utsname u;
            for (long i = 0; i < n; i++) {
                syscall(SYS_getppid);
                syscall(SYS_uname, &u);
            }
            printf("round %d done sys\n", round);
            continue;
        }
        if (strncmp(line, "tiny", 4) == 0) {
            long (*volatile f)(void) = tiny;
            for (long i = 0; i < n; i++)
                sum += f();
            printf("round %d done tiny\n", round);
            continue;
        }
        if (strncmp(line, "churn", 5) == 0) {
            pthread_t t;
            int rc = pthread_create(&t, NULL, churn_environment, NULL);
            printf("round %d done churn %s\n", round, rc == 0 ? "started" : strerror(rc));
            continue;
        }
        if (strncmp(line, "open ", 5) == 0) {         /* open a path, report errno */
            line[strcspn(line, "\n")] = '\0';
            int fd = open(line + 5, O_RDONLY | O_CREAT, 0600);
            printf("round %d done open %s\n", round, fd >= 0 ? "ok" : strerror(errno));
            if (fd >= 0)
                close(fd);
            continue;
        }
        for (long i = 0; i < n; i++)
            sum += work(i);
        printf("round %d done sum %ld\n", round, sum);
    }
    return 0;
}
