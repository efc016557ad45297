/*
 * kload_obj.c - load one program of a BPF object into the kernel with
 * libbpf and time the kernel's BPF_PROG_LOAD of it alone (kload_obj.h).
 *
 * libbpf creates the object's maps, loads its BTF and relocates the
 * program; none of that is the verifier's time. So this file interposes
 * syscall() (libbpf's only way into bpf(2)) and times the BPF_PROG_LOAD
 * calls that name the program, keeping the one that succeeded: libbpf's
 * feature probes load programs of other names, and a failed first attempt
 * (libbpf retries some loads) is not counted.
 *
 * Kept apart from graft's headers: linux/bpf.h and graft's vm/isa.h both
 * define struct bpf_insn.
 */
#define _GNU_SOURCE
#include "kload_obj.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/bpf.h>

static char want_name[BPF_OBJ_NAME_LEN];
static double last_ok_s;
static int seen_ok;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* libbpf calls syscall(__NR_bpf, cmd, attr, size); everything else passes
 * through unchanged (six long arguments, as the C library forwards them). */
long syscall(long nr, ...)
{
    static long (*real)(long, ...);
    if (!real)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    va_list ap;
    va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr != __NR_bpf || a[0] != BPF_PROG_LOAD || !want_name[0])
        return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    const union bpf_attr *attr = (const union bpf_attr *)a[1];
    int ours = strncmp(attr->prog_name, want_name, sizeof(want_name)) == 0;
    double t0 = now_s();
    long rc = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    double dt = now_s() - t0;
    int saved = errno;
    if (ours && rc >= 0) {
        last_ok_s = dt;
        seen_ok = 1;
    }
    errno = saved;
    return rc;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

int ko_load_one(const char *path, const char *prog, double *secs)
{
    libbpf_set_print(quiet);
    struct bpf_object *obj = bpf_object__open_file(path, NULL);
    if (!obj)
        return -errno;
    struct bpf_program *p, *target = NULL;
    bpf_object__for_each_program(p, obj) {
        int me = strcmp(bpf_program__name(p), prog) == 0;
        bpf_program__set_autoload(p, me);
        if (me)
            target = p;
    }
    if (!target) {
        bpf_object__close(obj);
        return -ENOENT;
    }
    /* the kernel keeps BPF_OBJ_NAME_LEN - 1 characters of the name */
    memset(want_name, 0, sizeof(want_name));
    strncpy(want_name, prog, sizeof(want_name) - 1);
    seen_ok = 0;
    int rc = bpf_object__load(obj);
    memset(want_name, 0, sizeof(want_name));
    bpf_object__close(obj);
    if (rc < 0 || !seen_ok)
        return rc < 0 ? rc : -ENOENT;
    *secs = last_ok_s;
    return 0;
}
