/*
 * app.c - the host application the EIM tests describe (tests/eim/app.eim.yaml).
 * Built with -g so DWARF exists. Entries: handle_request and parse_header
 * (functions), after_parse (a GRAFT_ENTRY site), the write syscall. State:
 * g_requests, g_config_limit. Host functions: app_log, app_set_level,
 * app_random. Run with no arguments it serves a few fake requests.
 */
#include <graft/eim.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app_types.h"

GRAFT_STATE unsigned long long g_requests;
GRAFT_STATE int g_config_limit = 100;
static int g_level;

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

int main(int argc, char **argv)
{
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
