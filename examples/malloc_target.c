/*
 * malloc_target.c - the demo's host program: an ordinary process that calls
 * malloc() a known number of times, in itself and in a forked child, and
 * says how many, so the counts the extension collects can be compared.
 *
 *   malloc_target [N]   (default 1000 calls in the parent, N/2 in the child)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* volatile sink: keeps the compiler from eliding malloc/free pairs */
static void *volatile sink;

static void churn(long n)
{
    for (long i = 0; i < n; i++) {
        sink = malloc((size_t)(16 + i % 256));
        free(sink);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (n <= 0)
        n = 1000;
    pid_t child = fork();
    if (child == 0) {
        churn(n / 2);
        printf("malloc_target: child  %d called malloc %ld times\n", getpid(), n / 2);
        fflush(stdout);
        _exit(0);
    }
    churn(n);
    waitpid(child, NULL, 0);
    printf("malloc_target: parent %d called malloc %ld times\n", getpid(), n);
    return 0;
}
