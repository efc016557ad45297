/* oldstyle.bpf.c - no SEC() at all: the code is only in .text, as in old
 * hand-built objects; each global function is a program. */
#include "types.h"

static __attribute__((noinline)) int helper(int x) { return x + 1; }

int first(void *ctx) { return helper(1); }
int second(void *ctx) { return helper(2); }
