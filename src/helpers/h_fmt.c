/*
 * h_fmt.c - formatted output: bpf_trace_printk, bpf_snprintf, and
 * bpf_strncmp.
 *
 * Both printers accept the kernel's subset of printf (bpf_bprintf_prepare):
 * flags "-+ #0", a width and precision of digits, length "l"/"ll", and the
 * conversions d i u x X c s p (plus %px and %pK, printed as plain hex) and
 * %%. Without "l" an integer argument is truncated to 32 bits like the
 * kernel's int. Anything else, a format that is not printable ASCII, or more
 * conversions than arguments allowed fails with -EINVAL before anything is
 * written. %s strings are read through the safe reader: a bad pointer prints
 * as an empty string instead of crashing, as in the kernel.
 *
 * trace_printk lines go to the sink set with ghelper_set_trace_sink (or
 * stderr) as "<comm>-<tid>: <message>", without a trailing newline in the
 * line handed to a sink; stderr gets one. Sink calls are serialised so that
 * lines never interleave and a sink can be swapped safely at any time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "helpers/helpers_internal.h"
#include "helpers/safe_mem.h"

#define TRACE_PRINTK_SIZE   1024   /* the kernel's BPF_TRACE_PRINTK_SIZE */
#define TRACE_PRINTK_ARGS   3
#define SNPRINTF_MAX_ARGS   12     /* the kernel's MAX_BPRINTF_VARARGS */
#define FMT_STR_MAX         512    /* longest %s argument printed */
#define SPEC_MAX            24     /* "%" + 6 flags + width + "." + precision + "ll" + conv */

/* Where formatted text goes; len counts every byte, even those not stored. */
struct fmt_out {
    char *buf;
    size_t cap;                    /* bytes available in buf, incl. the NUL */
    size_t len;
};

static void out_bytes(struct fmt_out *o, const char *s, size_t n)
{
    if (o->cap && o->len < o->cap - 1) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

/* Format one conversion with libc, given the spec text we validated. */
#define OUT_SPEC(o, spec, val)                                            \
    do {                                                                  \
        char tmp_[1100]; /* width, precision <= 999, strings < 512 */ \
        int n_ = snprintf(tmp_, sizeof(tmp_), spec, val);                 \
        if (n_ > 0)                                                       \
            out_bytes(o, tmp_, (size_t)n_ < sizeof(tmp_) ? (size_t)n_     \
                                                          : sizeof(tmp_) - 1); \
    } while (0)

static int is_fmt_char(unsigned char c)
{
    return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r' ||
           c == '\v' || c == '\f';
}

/* Parse one conversion starting after '%' at fmt[*i]; on success write the
 * libc spec (with a 64-bit-safe length) to spec, the conversion to *conv and
 * the number of 'l's to *longs. */
static int parse_spec(const char *fmt, size_t *i, char *spec, char *conv, int *longs)
{
    size_t k = 0, j = *i;
    spec[k++] = '%';
    while (fmt[j] && strchr("-+ #0", fmt[j]) && k < 7)
        spec[k++] = fmt[j++];
    for (int d = 0; fmt[j] >= '0' && fmt[j] <= '9'; d++, j++)
        if (d < 3)                 /* width capped at 999: bounded output */
            spec[k++] = fmt[j];
        else
            return -EINVAL;
    if (fmt[j] == '.') {
        spec[k++] = fmt[j++];
        for (int d = 0; fmt[j] >= '0' && fmt[j] <= '9'; d++, j++)
            if (d < 3)
                spec[k++] = fmt[j];
            else
                return -EINVAL;
    }
    *longs = 0;
    while (fmt[j] == 'l' && *longs < 2) {
        (*longs)++;
        j++;
    }
    *conv = fmt[j];
    switch (*conv) {
    case 'd': case 'i': case 'u': case 'x': case 'X':
        spec[k++] = 'l';
        spec[k++] = 'l';
        break;
    case 'c': case 's': case 'p':
        if (*longs)
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    spec[k++] = *conv == 'p' ? 's' : *conv;
    spec[k] = '\0';
    j++;
    if (*conv == 'p' && (fmt[j] == 'x' || fmt[j] == 'K'))
        j++;
    *i = j;
    return 0;
}

/* Check fmt and count its conversions without producing output. */
static int check_format(const char *fmt, int max_args)
{
    int nconv = 0;
    for (size_t i = 0; fmt[i]; ) {
        if (!is_fmt_char((unsigned char)fmt[i]))
            return -EINVAL;
        if (fmt[i++] != '%')
            continue;
        if (fmt[i] == '%') {
            i++;
            continue;
        }
        char spec[SPEC_MAX], conv;
        int longs;
        if (parse_spec(fmt, &i, spec, &conv, &longs) != 0 || ++nconv > max_args)
            return -EINVAL;
    }
    return nconv;
}

static void out_conv(struct fmt_out *o, const char *spec, char conv, int longs,
                     uint64_t arg)
{
    char str[FMT_STR_MAX];

    switch (conv) {
    case 'd': case 'i':
        OUT_SPEC(o, spec, longs ? (long long)arg : (long long)(int32_t)arg);
        break;
    case 'u': case 'x': case 'X':
        OUT_SPEC(o, spec, longs ? (unsigned long long)arg
                                : (unsigned long long)(uint32_t)arg);
        break;
    case 'c':
        OUT_SPEC(o, spec, (int)(unsigned char)arg);
        break;
    case 'p':
        snprintf(str, sizeof(str), "0x%llx", (unsigned long long)arg);
        OUT_SPEC(o, spec, str);
        break;
    case 's':
        if (arg == 0)
            strcpy(str, "(null)");
        else if (gsafe_strncpy(str, (const char *)(uintptr_t)arg, sizeof(str)) < 0)
            str[0] = '\0';
        OUT_SPEC(o, spec, str);
        break;
    }
}

/* Format fmt (already checked) with args into o. */
static void format(struct fmt_out *o, const char *fmt, const uint64_t *args)
{
    int argi = 0;
    for (size_t i = 0; fmt[i]; ) {
        size_t start = i;
        while (fmt[i] && fmt[i] != '%')
            i++;
        out_bytes(o, fmt + start, i - start);
        if (!fmt[i])
            break;
        i++;
        if (fmt[i] == '%') {
            out_bytes(o, "%", 1);
            i++;
            continue;
        }
        char spec[SPEC_MAX], conv;
        int longs;
        parse_spec(fmt, &i, spec, &conv, &longs);
        out_conv(o, spec, conv, longs, args[argi++]);
    }
    if (o->cap)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
}

/* ---- trace_printk ---- */

static pthread_mutex_t g_sink_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*g_sink)(const char *line, void *arg);
static void *g_sink_arg;

void ghelper_set_trace_sink(void (*sink)(const char *line, void *arg), void *arg)
{
    pthread_mutex_lock(&g_sink_lock);
    g_sink = sink;
    g_sink_arg = arg;
    pthread_mutex_unlock(&g_sink_lock);
}

static void emit_trace_line(const char *msg)
{
    char line[TRACE_PRINTK_SIZE + 64];
    int n = snprintf(line, sizeof(line), "%s-%u: %s", gh_comm(), gh_tid(), msg);
    if (n > 0 && (size_t)n < sizeof(line) && line[n - 1] == '\n')
        line[n - 1] = '\0';

    pthread_mutex_lock(&g_sink_lock);
    if (g_sink)
        g_sink(line, g_sink_arg);
    else
        fprintf(stderr, "%s\n", line);
    pthread_mutex_unlock(&g_sink_lock);
}

/* trace_printk(fmt, fmt_size, a1, a2, a3): returns the message length. */
GH_FN(trace_printk)
{
    const char *fmt = (const char *)r1;
    uint32_t fmt_size = (uint32_t)r2;
    const uint64_t args[TRACE_PRINTK_ARGS] = { r3, r4, r5 };
    char msg[TRACE_PRINTK_SIZE];

    if (fmt_size == 0 || !memchr(fmt, '\0', fmt_size))
        return GH_ERR(-EINVAL);
    if (check_format(fmt, TRACE_PRINTK_ARGS) < 0)
        return GH_ERR(-EINVAL);
    struct fmt_out o = { msg, sizeof(msg), 0 };
    format(&o, fmt, args);
    emit_trace_line(msg);
    return o.len;
}

/* snprintf(str, str_size, fmt, data, data_len): data holds data_len / 8
 * u64 arguments; returns the formatted length plus one for the NUL, even
 * when str_size truncated it, like the kernel. */
GH_FN(snprintf)
{
    char *str = (char *)r1;
    uint32_t str_size = (uint32_t)r2;
    const char *fmt = (const char *)r3;
    const uint64_t *data = (const uint64_t *)r4;
    uint32_t data_len = (uint32_t)r5;
    uint64_t args[SNPRINTF_MAX_ARGS] = { 0 };

    if ((data_len & 7) || data_len > SNPRINTF_MAX_ARGS * 8 || (data_len && !data))
        return GH_ERR(-EINVAL);
    int nconv = check_format(fmt, (int)(data_len / 8));
    if (nconv < 0)
        return GH_ERR(-EINVAL);
    if (data_len)
        memcpy(args, data, data_len);
    struct fmt_out o = { str, str_size, 0 };
    format(&o, fmt, args);
    return o.len + 1;
}

/* strncmp(s1, s1_sz, s2): -1, 0 or 1, comparing at most s1_sz bytes. */
GH_FN(strncmp)
{
    const unsigned char *a = (const unsigned char *)r1;
    const unsigned char *b = (const unsigned char *)r3;
    uint32_t n = (uint32_t)r2;

    for (uint32_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return a[i] < b[i] ? GH_ERR(-1) : 1;
        if (a[i] == '\0')
            break;
    }
    return 0;
}
