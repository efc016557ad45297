/*
 * graft/graft.h - the embedding API of libgraft, for programs that run eBPF
 * themselves instead of through the graft command and its agent.
 *
 *   #include <graft/graft.h>          cc app.c $(pkg-config --cflags --libs graft)
 *
 * Each layer has its own header (installed under include/graft/<layer>/, so
 * the compile flags add include/graft to the search path):
 *   vm/vm.h              programs: validate, JIT or interpret, run; assembler
 *   maps/maps.h          every map type, in shared memory
 *   helpers/helpers.h    the eBPF helpers, for a gvm_env
 *   loader/loader.h      BPF ELF objects from clang: programs, maps, relocations
 *   verifier/verifier.h  the static verifier and its per-program policies
 * Errors come back as negative errno values with a message in struct
 * graft_err (util/err.h). Nothing here is thread-affine; a struct gvm_prog
 * may run on many threads at once.
 */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H

#define GRAFT_VERSION_MAJOR 0
#define GRAFT_VERSION_MINOR 1

#include "util/err.h"
#include "vm/isa.h"
#include "vm/vm.h"
#include "maps/maps.h"
#include "helpers/helpers.h"
#include "loader/loader.h"
#include "verifier/verifier.h"

#endif
