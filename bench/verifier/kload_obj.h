/* kload_obj.h - one program of a BPF object loaded into the kernel, its
 * BPF_PROG_LOAD timed (kload_obj.c). */
#ifndef GRAFT_BENCH_KLOAD_OBJ_H
#define GRAFT_BENCH_KLOAD_OBJ_H

/* Load program prog (its function name) of the object at path, alone,
 * with libbpf; 0 and *secs = the kernel's BPF_PROG_LOAD time when the
 * kernel accepted it, or a negative errno. */
int ko_load_one(const char *path, const char *prog, double *secs);

#endif
