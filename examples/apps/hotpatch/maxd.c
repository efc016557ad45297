/*
 * maxd.c - a deliberately buggy toy server for the hot-patch use case.
 *
 * It listens on 127.0.0.1:PORT (argv[1]) and answers each line
 * "max N1 N2 ... Nk" (k <= 16) with "max = M\n". The values go into a
 * zeroed array and checked_max() finds the largest - with an off-by-one:
 * it reads one element past the last value (the zero after it), so for
 * all-negative input it answers 0. examples/apps/hotpatch/fix.bpf.c
 * replaces checked_max in the running process with a correct version
 * (replace/BINARY:checked_max), without a restart.
 *
 * One client at a time, one thread: enough for the demonstration.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_VALUES 16

/* Keep checked_max a real, separately callable function: the fix replaces
 * it by name, so it must not be inlined or cloned. */
#if defined(__clang__)
#define HOOKABLE __attribute__((noinline, used))
#else
#define HOOKABLE __attribute__((noipa, used))
#endif

HOOKABLE long checked_max(const long *v, long n)
{
    long best = v[0];
    for (long i = 1; i <= n; i++)     /* BUG: i <= n reads v[n] */
        if (v[i] > best)
            best = v[i];
    return best;
}

static void answer(FILE *in, FILE *out)
{
    char line[512];
    while (fgets(line, sizeof(line), in)) {
        long v[MAX_VALUES + 1];
        memset(v, 0, sizeof(v));
        long n = 0;
        char *save, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || strcmp(tok, "max") != 0) {
            fprintf(out, "error: expected 'max N...'\n");
            fflush(out);
            continue;
        }
        while ((tok = strtok_r(NULL, " \t\r\n", &save)) && n < MAX_VALUES)
            v[n++] = strtol(tok, NULL, 10);
        if (n == 0)
            fprintf(out, "error: no values\n");
        else
            fprintf(out, "max = %ld\n", checked_max(v, n));
        fflush(out);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: maxd PORT\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0) {
        perror("maxd: listen");
        return 1;
    }
    printf("maxd: listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        FILE *in = fdopen(c, "r"), *out = fdopen(dup(c), "w");
        if (in && out)
            answer(in, out);
        if (in)
            fclose(in);
        if (out)
            fclose(out);
    }
}
