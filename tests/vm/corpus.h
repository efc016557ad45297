/*
 * corpus.h - reading the VM test corpus (tests/vm/corpus/ *.data), a format
 * like bpf_conformance's:
 *
 *   # comment
 *   -- asm            assembler text (asm.c syntax), required
 *   -- mem            input memory as hex bytes ("01 02 ff"), optional
 *   -- result         expected r0 (0x-hex or decimal, all 64 bits compared)
 *   -- error          expected load/run error: a substring of the message
 *   -- no-checked     skip the checked-interpreter run for this file
 *
 * plus the test environment every corpus program runs in (helpers, map
 * resolution), shared by the corpus runner, the round-trip test and the
 * fuzzer so they agree on what a program can call.
 */
#ifndef GRAFT_TESTS_VM_CORPUS_H
#define GRAFT_TESTS_VM_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/vm.h"

struct corpus_case {
    char *path;
    char *asm_text;
    uint8_t *mem;
    size_t mem_len;
    bool has_result;
    uint64_t result;
    char *error;               /* NULL unless an error is expected */
    bool no_checked;
};

/* Read one .data file; returns 0 or -errno with a message in err. */
int corpus_read(const char *path, struct corpus_case *c, struct graft_err *err);
void corpus_free(struct corpus_case *c);

/* Sorted list of the *.data files in dir; returns the count, -errno on error. */
int corpus_list(const char *dir, char ***paths);
void corpus_list_free(char **paths, int n);

/* Parse "01 02 ff" into bytes (malloc'd); returns the count or -1. */
long corpus_hex_bytes(const char *text, uint8_t **out);

/* The environment corpus programs run in:
 *   helper 1: r1+r2+r3+r4+r5     helper 2: r1 * 2
 *   helper 5: r1                 helper 7: 0x1122334455667788
 *   helper 12 (tail call): no target is ever found (r0 = -2, continue)
 *   lddw map:N -> 0xaaaa0000+N, mapval:N+O -> 0xbbbb0000+N*0x100+O,
 *   mapidx:N -> 0xcccc0000+N, mapidxval:N+O -> 0xdddd0000+N*0x100+O,
 *   btf:N -> 0xeeee0000+N; fd/index 99 does not resolve (load error). */
const struct gvm_env *corpus_env(void);

#endif
