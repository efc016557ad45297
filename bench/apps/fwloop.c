/*
 * fwloop.c - the cost of one fire of the nginx firewall extension, in a
 * tight loop (bench/apps/firewall.sh builds and runs it).
 *
 * It defines a function named like the one the extension overrides in
 * nginx, ngx_http_discard_request_body(r), and calls it with a request laid
 * out as nginx's (the offsets of r->uri and r->err_status from offsets.c,
 * passed as -D flags; URI "/index.html", accepted as in the throughput
 * runs). The script compiles the extension for this binary instead of
 * nginx and runs fwloop under `graft start`. Each line read on stdin starts
 * one round of N calls, timed in thread CPU time; fwloop answers with the
 * ns per call. The script times rounds before and after loading the
 * extension; the difference is one fire: the override trampoline, the
 * JIT'd program's four probe reads and its count in the array map.
 *
 * usage: fwloop N   (rounds on demand from stdin, "ns_per_call" on stdout)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char request[SIZE_REQUEST] __attribute__((aligned(16)));
static const char uri[] = "/index.html";

/* Not inlined, not static: the extension hooks it by symbol, as in nginx. */
__attribute__((noinline, used)) long ngx_http_discard_request_body(char *r)
{
    /* enough code for a patchable entry; the real one checks r->headers_in */
    if (*(volatile unsigned long *)(r + OFF_ERR_STATUS) == 1)
        return -1;
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    if (n <= 0) {
        fprintf(stderr, "usage: fwloop N (calls per round)\n");
        return 2;
    }
    size_t len = sizeof(uri) - 1;
    const char *data = uri;
    memcpy(request + OFF_URI_LEN, &len, sizeof(len));
    memcpy(request + OFF_URI_DATA, &data, sizeof(data));
    memset(request + OFF_ERR_STATUS, 0, sizeof(unsigned long));
    long (*volatile fn)(char *) = ngx_http_discard_request_body;
    char line[64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin)) {
        long bad = 0;
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            bad += fn(request) != 0;
        double t = now_ns() - t0;
        if (bad) {
            fprintf(stderr, "fwloop: %ld of %ld calls rejected /index.html\n", bad, n);
            return 1;
        }
        printf("%.2f\n", t / n);
    }
    return 0;
}
