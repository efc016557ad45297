/* err.c - formatting of struct graft_err; see err.h. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int graft_errf(struct graft_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int graft_err_prefix(struct graft_err *err, const char *fmt, ...)
{
    if (!err)
        return 0;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    /* Shift the old message right and put the prefix in front; whatever no
     * longer fits is cut at the end, where it matters least. */
    size_t plen = strlen(prefix);
    if (plen + 2 >= sizeof(err->msg))
        plen = sizeof(err->msg) - 3;
    size_t olen = strnlen(err->msg, sizeof(err->msg) - 1);
    if (plen + 2 + olen >= sizeof(err->msg))
        olen = sizeof(err->msg) - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, olen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    err->msg[plen + 2 + olen] = '\0';
    return err->code;
}

void graft_copy_str(char *dst, size_t len, const char *src)
{
    if (!len)
        return;
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}
