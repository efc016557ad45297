/*
 * test_helpers_fmt.c - bpf_snprintf and bpf_trace_printk formatting (the
 * kernel's subset, 32-bit truncation without "l", truncation and return
 * values, rejected formats), the trace sink and line prefix, strncmp.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "th.h"

static char out[256];

/* snprintf through the helper with up to 4 u64 args. */
static int64_t fmt4(const char *fmt, int nargs, uint64_t a, uint64_t b,
                    uint64_t c, uint64_t d)
{
    uint64_t data[4] = { a, b, c, d };
    memset(out, 'x', sizeof(out));
    return (int64_t)H("snprintf", out, sizeof(out), fmt, data, nargs * 8);
}

static void test_snprintf(void)
{
    CHECK_EQ(fmt4("plain", 0, 0, 0, 0, 0), 6);
    CHECK_STR(out, "plain");
    CHECK_EQ(fmt4("%d %i %u", 3, (uint64_t)-5, 42, (uint64_t)-1, 0), 17);
    CHECK_STR(out, "-5 42 4294967295");
    CHECK_EQ(fmt4("%lld %llu %llx", 3, (uint64_t)-5, (uint64_t)-1, 0xdeadbeefcafeull, 0), 37);
    CHECK_STR(out, "-5 18446744073709551615 deadbeefcafe");
    fmt4("%ld|%lx|%X", 3, 1ull << 40, 255, 0xabcull, 0);
    CHECK_STR(out, "1099511627776|ff|ABC");
    /* Without "l" the argument is a 32-bit int. */
    fmt4("%d %x", 2, 0x100000005ull, 0x1ffffffffull, 0, 0);
    CHECK_STR(out, "5 ffffffff");
    fmt4("[%5d|%-5d|%05u|%.3d]", 4, 42, 42, 42, 7);
    CHECK_STR(out, "[   42|42   |00042|007]");
    fmt4("%c%c%c 100%%", 3, 'a', 'b', 'c', 0);
    CHECK_STR(out, "abc 100%");
    fmt4("%s and %s", 2, (uint64_t)(uintptr_t)"one", (uint64_t)(uintptr_t)"two", 0, 0);
    CHECK_STR(out, "one and two");
    fmt4("%p %px", 2, 0x1234, 0xabc, 0, 0);
    CHECK_STR(out, "0x1234 0xabc");
    /* A bad %s pointer prints nothing instead of crashing. */
    long page = sysconf(_SC_PAGESIZE);
    char *gone = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fmt4("<%s><%s>", 2, (uint64_t)(uintptr_t)gone, 0, 0, 0);
    CHECK_STR(out, "<><(null)>");
    munmap(gone, page);

    /* Truncation: returns the full length + 1, output NUL-terminated. */
    uint64_t v = 123456;
    char small[4];
    CHECK_EQ((int64_t)H("snprintf", small, 4, "%d!", &v, 8), 8);
    CHECK_STR(small, "123");
    CHECK_EQ((int64_t)H("snprintf", NULL, 0, "%d!", &v, 8), 8);

    /* Errors: bad conversions, too few args, bad data_len, too many args. */
    CHECK_EQ(fmt4("%d %d", 1, 1, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("%f", 1, 1, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("%n", 1, 1, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("%lls", 1, 1, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("%lllx", 1, 1, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("%", 1, 1, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("bell\a", 0, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(fmt4("%1000d", 1, 1, 0, 0, 0), -EINVAL);
    CHECK(out[0] == 'x');                     /* nothing written on error */
    CHECK_EQ((int64_t)H("snprintf", out, sizeof(out), "%d", &v, 7), -EINVAL);
    uint64_t many[13] = { 0 };
    CHECK_EQ((int64_t)H("snprintf", out, sizeof(out), "%d", many, 13 * 8), -EINVAL);
    CHECK_EQ((int64_t)H("snprintf", out, sizeof(out),
                        "%d%d%d%d%d%d%d%d%d%d%d%d", many, 12 * 8), 13);
    CHECK_STR(out, "000000000000");
}

static char last_line[2048];
static int lines;

static void sink(const char *line, void *arg)
{
    (void)arg;
    snprintf(last_line, sizeof(last_line), "%s", line);
    lines++;
}

static void test_trace_printk(void)
{
    char expect[128];
    const char fmt[] = "x=%d s=%s u=%llu\n";
    int tid = (int)syscall(SYS_gettid);

    prctl(PR_SET_NAME, "tpk-test", 0, 0, 0);
    ghelper_set_trace_sink(sink, NULL);
    int64_t rc = (int64_t)H("trace_printk", fmt, sizeof(fmt), -7, "hi", 99);
    CHECK_EQ(rc, (int64_t)strlen("x=-7 s=hi u=99\n"));
    CHECK_EQ(lines, 1);
    snprintf(expect, sizeof(expect), "tpk-test-%d: x=-7 s=hi u=99", tid);
    CHECK_STR(last_line, expect);

    /* Format errors: not NUL-terminated within fmt_size, 4 conversions. */
    const char nonul[4] = { 'a', 'b', 'c', 'd' };
    CHECK_EQ((int64_t)H("trace_printk", nonul, 4, 0), -EINVAL);
    const char four[] = "%d %d %d %d";
    CHECK_EQ((int64_t)H("trace_printk", four, sizeof(four), 1, 2, 3), -EINVAL);
    CHECK_EQ((int64_t)H("trace_printk", fmt, 0, 0), -EINVAL);
    CHECK_EQ(lines, 1);

    /* Long messages are cut at the kernel's 1024-byte buffer. */
    const char longfmt[] = "%s";
    char big[2000];
    memset(big, 'L', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    H("trace_printk", longfmt, sizeof(longfmt), big);
    CHECK_EQ(lines, 2);
    CHECK(strlen(last_line) < 1100);
    ghelper_set_trace_sink(NULL, NULL);
}

static void test_strncmp(void)
{
    CHECK_EQ((int64_t)H("strncmp", "abc", 4, "abc"), 0);
    CHECK_EQ((int64_t)H("strncmp", "abd", 4, "abc"), 1);
    CHECK_EQ((int64_t)H("strncmp", "abb", 4, "abc"), -1);
    CHECK_EQ((int64_t)H("strncmp", "abX", 2, "abc"), 0);
    CHECK_EQ((int64_t)H("strncmp", "ab", 3, "abc"), -1);
    CHECK_EQ((int64_t)H("strncmp", "\xff", 2, "a"), 1);   /* unsigned */
}

int main(void)
{
    test_snprintf();
    test_trace_printk();
    test_strncmp();
    TH_DONE();
}
