/*
 * bench_maps.h - the kernel half of bench_maps (bench_kernel.c), kept in its
 * own file because linux/bpf.h and graft's vm/isa.h both define struct
 * bpf_insn. Instructions cross this interface as 8-byte records.
 */
#ifndef GRAFT_BENCH_MAPS_H
#define GRAFT_BENCH_MAPS_H

#include <stddef.h>
#include <stdint.h>

enum bk_map { BK_NONE, BK_HASH, BK_ARRAY, BK_PERCPU_HASH, BK_RINGBUF, BK_COUNT };

struct bk_prog {
    int fd;
    int empty_fd;               /* SYSCALL type: an empty program, for the call's cost */
    int is_syscall;             /* test_run has no repeat: timed from user space */
};

/* Creates and fills the kernel maps; 0, or -errno with the reason printed. */
int bk_setup(uint32_t nkeys, uint32_t rb_size);
int bk_fill(enum bk_map kind);            /* keys 0..nkeys-1 = their number */
void bk_rb_reset(void);                   /* consumer position = producer position */
/* Load insns (map references: LD_IMM64 with src MAP_FD, patched to map's
 * fd) as a SOCKET_FILTER, or as a SYSCALL program when allow_syscall and
 * socket filters may not have its helpers. -1 with the reason printed. */
int bk_load(const char *name, const void *insns, uint32_t n, enum bk_map map, int allow_syscall,
            struct bk_prog *out);
/* ns per program run over k runs, and the last run's r0. */
int bk_run(const struct bk_prog *p, int k, double *ns, uint32_t *retval);
void bk_close(struct bk_prog *p);

#endif
