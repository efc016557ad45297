/* hexline.c - parse a line of hex bytes into instructions; see hexline.h. */
#define _GNU_SOURCE
#include "hexline.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int hexline_read_program(FILE *in, struct bpf_insn **out, uint32_t *n, struct graft_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, in) < 0) {
        free(line);
        return graft_errf(err, -EINVAL, "no program on standard input (expected hex bytes)");
    }
    size_t nbytes = 0, max = strlen(line) / 2 + 1;
    uint8_t *bytes = malloc(max);
    char *p = line;
    while (bytes) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char *end;
        unsigned long v = strtoul(p, &end, 16);
        if (end == p || v > 0xff || (*end && !isspace((unsigned char)*end))) {
            free(bytes);
            free(line);
            return graft_errf(err, -EINVAL, "byte %zu of the program is not a hex byte", nbytes);
        }
        bytes[nbytes++] = (uint8_t)v;
        p = end;
    }
    free(line);
    if (!bytes)
        return graft_errf(err, -ENOMEM, "out of memory");
    if (nbytes == 0 || nbytes % 8) {
        free(bytes);
        return graft_errf(err, -EINVAL, "program is %zu bytes: not a whole number of 8-byte instructions", nbytes);
    }
    *out = (struct bpf_insn *)bytes;
    *n = (uint32_t)(nbytes / 8);
    return 0;
}
