/*
 * btf_cmds.c - the read-only BTF commands, answered by the kernel.
 *
 * Tools read the kernel's type information through bpf(2): bpftrace walks
 * every BTF object (BPF_BTF_GET_NEXT_ID, BPF_BTF_GET_FD_BY_ID, then
 * BPF_OBJ_GET_INFO_BY_FD with a buffer for the BTF) to type tracepoint
 * `args` and kernel structs. Those objects are the kernel's and reading
 * them changes nothing, so graft passes these commands through, and
 * BPF_OBJ_GET_INFO_BY_FD on a descriptor that is no graft object (such a
 * BTF descriptor) goes to the kernel too. Nothing is ever loaded into the
 * kernel this way: only these read-only commands take this path.
 *
 * The seccomp filter (trap.c) sends every bpf system call of the process to
 * graft, so the library reaches the kernel through a gate: a page at a
 * fixed address holding `mov $__NR_bpf, %eax; syscall; ret`, the one place
 * the filter lets a bpf system call through. The address is fixed so that
 * a filter inherited across exec (filters stack and cannot be removed)
 * recognises the gate of the new image's copy of the library. If the page
 * cannot be placed there, the commands fail with EOPNOTSUPP and one line
 * says why.
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Far from where Linux puts executables (0x55...), the heap and libraries
 * (0x7f...). */
#define GATE_ADDR 0x3e5f00000000ul

static long (*g_gate)(long cmd, long attr, long size);

void gc_kernel_gate_init(void)
{
    static const uint8_t code[] = {
        0xb8, __NR_bpf & 0xff, (__NR_bpf >> 8) & 0xff, 0, 0,   /* mov $__NR_bpf, %eax */
        0x0f, 0x05,                                            /* syscall */
        0xc3,                                                  /* ret */
    };
    void *p = mmap((void *)GATE_ADDR, (size_t)getpagesize(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != (void *)GATE_ADDR) {
        if (p != MAP_FAILED)
            munmap(p, (size_t)getpagesize());
        return;
    }
    memcpy(p, code, sizeof(code));
    if (mprotect(p, (size_t)getpagesize(), PROT_READ | PROT_EXEC) < 0) {
        munmap(p, (size_t)getpagesize());
        return;
    }
    g_gate = (long (*)(long, long, long))p;
}

uint64_t gc_kernel_gate_ip(void)
{
    return GATE_ADDR + 7;   /* the address after `syscall`: what seccomp reports */
}

/* bpf(2) in the kernel, for the read-only commands; -1 and errno. */
static long kernel_bpf(int cmd, void *attr, unsigned int size)
{
    if (!g_gate) {
        gc_warn_once("bpf(cmd %d): graft passes the read-only BTF commands to the kernel through a page at %#lx, "
                     "which could not be mapped", cmd, GATE_ADDR);
        errno = EOPNOTSUPP;
        return -1;
    }
    long rc = g_gate(cmd, (long)attr, (long)size);
    if (rc < 0 && rc > -4096) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

long gc_btf_cmd(int cmd, void *uattr, unsigned int size)
{
    switch (cmd) {
    case BPF_BTF_GET_NEXT_ID:
    case BPF_BTF_GET_FD_BY_ID:
        return kernel_bpf(cmd, uattr, size);
    case BPF_OBJ_GET_INFO_BY_FD:
        /* Only for descriptors that are no graft object (bpf.c asks). */
        return kernel_bpf(cmd, uattr, size);
    default:
        errno = EINVAL;
        return -1;
    }
}
