/*
 * app.c - the host application the EIM tests describe (tests/eim/app.eim.yaml).
 * Built with -g so DWARF exists. Entries: handle_request and parse_header
 * (functions), after_parse (a GRAFT_ENTRY site), the write syscall. State:
 * g_requests, g_config_limit. Host functions: app_log, app_tag, app_set_level,
 * app_random. Run with no arguments it serves a few fake requests.
 *
 *   app --serve N     for the end-to-end test: print "pid P ready", then for
 *                     each line on stdin serve N requests (request i has
 *                     i % 4 ':' in its path, so after_parse's n is i % 4) and
 *                     print "round K done sum=S requests=G", S = the sum of
 *                     handle_request's results, G = g_requests; "quit"
 *                     ends it. app_log writes to stderr.
 * Built with -DAPP_RENAME_LOG it has no app_log symbol (the e2e test's host
 * in which an extension's host function does not resolve).
 */
#include <graft/eim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_types.h"

GRAFT_STATE unsigned long long g_requests;
GRAFT_STATE int g_config_limit = 100;
static int g_level;

#ifdef APP_RENAME_LOG
#define app_log app_log_renamed
#endif

GRAFT_FUNCTION int app_log(const char *msg, int len)
{
    if (len < 0 || len > 4096)
        return -1;
    return (int)fwrite(msg, 1, (size_t)len, stderr);
}

GRAFT_FUNCTION void app_set_level(int level)
{
    g_level = level;
}

/* tag may be NULL (the spec declares it nonnull: false): untagged. */
GRAFT_FUNCTION int app_tag(const char *tag, int len)
{
    if (!tag)
        return 0;
    return len > 0 && tag[0] ? len : 0;
}

GRAFT_FUNCTION unsigned int app_random(void)
{
    static unsigned int x = 12345;
    x = x * 1103515245u + 12345u;
    return (x >> 8) % 100;
}

GRAFT_FUNCTION int parse_header(const char *buf, int len)
{
    int n = 0;
    for (int i = 0; i < len; i++)
        n += buf[i] == ':';
    return n;
}

GRAFT_FUNCTION int handle_request(struct request *r)
{
    g_requests++;
    int n = parse_header(r->path, (int)strnlen(r->path, sizeof(r->path)));
    GRAFT_ENTRY(after_parse, r, n);
    return (int)r->len + n + g_level;
}

/* The e2e mode: rounds of n requests, one per line on stdin. */
static int serve(long n)
{
    char line[64];
    unsigned long long next_id = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("pid %d ready\n", (int)getpid());
    for (int round = 1; fgets(line, sizeof(line), stdin); round++) {
        if (strncmp(line, "quit", 4) == 0)
            break;
        long sum = 0;
        for (long i = 0; i < n; i++, next_id++) {
            struct request r = { .id = next_id, .len = 10, .flags = 0 };
            static const char *const paths[4] = { "/a", "/a:b", "/a:b:c", "/a:b:c:d" };
            snprintf(r.path, sizeof(r.path), "%s", paths[next_id % 4]);
            sum += handle_request(&r);
        }
        printf("round %d done sum=%ld requests=%llu\n", round, sum, g_requests);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--serve") == 0)
        return serve(strtol(argv[2], NULL, 10));
    int total = 0;
    int rounds = argc > 1 ? 3 : 1;
    for (int i = 0; i < rounds; i++) {
        struct request r = { .id = (unsigned long long)i, .len = 10, .flags = 0 };
        snprintf(r.path, sizeof(r.path), "/a:b:%d", i);
        total += handle_request(&r);
    }
    char line[64];
    int l = snprintf(line, sizeof(line), "served %llu requests (%d)\n", g_requests, total);
    if (write(1, line, (size_t)l) < 0)
        return 1;
    return app_random() > 100;
}
