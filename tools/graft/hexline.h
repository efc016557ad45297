/*
 * hexline.h - the conformance plugins' program format: one line of
 * space-separated hex bytes, eight per instruction.
 */
#ifndef GRAFT_CLI_HEXLINE_H
#define GRAFT_CLI_HEXLINE_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"
#include "vm/isa.h"

int hexline_read_program(FILE *in, struct bpf_insn **out, uint32_t *n, struct graft_err *err);

#endif
