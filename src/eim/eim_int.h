/*
 * eim_int.h - private to src/eim: shared small utilities.
 */
#ifndef GRAFT_EIM_INT_H
#define GRAFT_EIM_INT_H

#include <stddef.h>

#include "eim/eim.h"

/* The closest of n candidates to word (edit distance small enough to be a
 * plausible typo), or NULL. get(i) returns candidate i (NULL entries skipped). */
const char *geim_suggest(const char *word, const char *(*get)(const void *arg, size_t i),
                         const void *arg, size_t n);
/* " (did you mean 'x'?)" or "" - into buf. */
const char *geim_did_you_mean(char *buf, size_t len, const char *s);

/* Parse "TYPE [NAME]" in the spec's C syntax. want_name: 1 required,
 * 0 forbidden, -1 optional. Returns 0 or -1 with why filled. */
int geim_parse_decl(const struct geim_spec *spec, const char *text, int want_name,
                    struct geim_type *t, char *name, size_t name_len,
                    char *why, size_t why_len);

/* notes.c: open path as an ELF file for reading (libelf). On success *fd
 * and *elf are set; close with geim_elf_close. Errors name the file. */
typedef struct Elf Elf;
int geim_elf_open(const char *path, int *fd, Elf **elf, struct graft_err *err);
void geim_elf_close(int fd, Elf *elf);

void geim_report_add(struct geim_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
