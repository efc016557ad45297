/*
 * err.h - how every graft component reports a failure a person must read.
 *
 * Functions return a negative errno and, when given a non-NULL struct
 * graft_err, fill it with one line that says what was wrong, where (file,
 * section, instruction, symbol, pid) and, when there is one, what to do.
 * Errors are values, never printed by the library itself.
 */
#ifndef GRAFT_UTIL_ERR_H
#define GRAFT_UTIL_ERR_H

#include <stddef.h>

#define GRAFT_ERR_MSG_MAX 1024

struct graft_err {
    int code;                       /* negative errno, 0 when no error */
    char msg[GRAFT_ERR_MSG_MAX];
};

/* Record an error and return code (a negative errno) so callers can write
 * `return graft_errf(err, -EINVAL, "...", ...);`. err may be NULL. */
int graft_errf(struct graft_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context, e.g. the object file name. */
int graft_err_prefix(struct graft_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copy src into dst[len], cutting it short if it does not fit; always
 * NUL-terminates. For putting error messages into fixed record fields. */
void graft_copy_str(char *dst, size_t len, const char *src);

static inline void graft_err_clear(struct graft_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

#endif
