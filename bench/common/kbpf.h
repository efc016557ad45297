/*
 * kbpf.h - the few bpf(2) commands the benchmarks use to measure the
 * kernel's eBPF as their baseline, made with the raw system call: linux/bpf.h
 * and graft's vm/isa.h both define struct bpf_insn, so the attribute
 * structs here hold only the leading fields of union bpf_attr each command
 * reads. Header-only, like bench_util.h.
 */
#ifndef GRAFT_BENCH_KBPF_H
#define GRAFT_BENCH_KBPF_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct kattr_load {
    uint32_t prog_type, insn_cnt;
    uint64_t insns, license;
    uint32_t log_level, log_size;
    uint64_t log_buf;
    uint32_t kern_version, prog_flags;
    char pad[96];
};
struct kattr_map {
    uint32_t map_type, key_size, value_size, max_entries, map_flags;
    char pad[108];
};
struct kattr_elem {
    uint32_t map_fd, pad0;
    uint64_t key, value, flags;
    char pad[96];
};
#define K_BPF_MAP_CREATE 0
#define K_BPF_MAP_LOOKUP_ELEM 1
#define K_BPF_PROG_LOAD 5
#define K_BPF_RAW_TRACEPOINT_OPEN 17
#define K_BPF_PROG_TYPE_TRACEPOINT 5
#define K_BPF_PROG_TYPE_RAW_TRACEPOINT 17
#define K_BPF_MAP_TYPE_HASH 1

/* The kernel verifier's log of the last kbpf_prog_load, for messages. */
static char klog[65536];

/* BPF_PROG_LOAD of n instructions (struct bpf_insn, 8 bytes each) as
 * prog_type, GPL; the fd or -errno. */
static inline int kbpf_prog_load(uint32_t prog_type, const void *insns, uint32_t n)
{
    struct kattr_load a;
    memset(&a, 0, sizeof(a));
    a.prog_type = prog_type;
    a.insn_cnt = n;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.license = (uint64_t)(uintptr_t)"GPL";
    a.log_level = 1;
    a.log_size = sizeof(klog);
    a.log_buf = (uint64_t)(uintptr_t)klog;
    long fd = syscall(SYS_bpf, K_BPF_PROG_LOAD, &a, sizeof(a));
    return fd < 0 ? -errno : (int)fd;
}

/* A kernel hash map with 4-byte keys; the fd or -errno. */
static inline int kbpf_hash_map(uint32_t value_size, uint32_t max_entries)
{
    struct kattr_map a;
    memset(&a, 0, sizeof(a));
    a.map_type = K_BPF_MAP_TYPE_HASH;
    a.key_size = 4;
    a.value_size = value_size;
    a.max_entries = max_entries;
    long fd = syscall(SYS_bpf, K_BPF_MAP_CREATE, &a, sizeof(a));
    return fd < 0 ? -errno : (int)fd;
}

/* Copy the value of key into value; 0 or -errno (-ENOENT: no such key). */
static inline int kbpf_map_get(int fd, uint32_t key, void *value)
{
    struct kattr_elem a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)value;
    return syscall(SYS_bpf, K_BPF_MAP_LOOKUP_ELEM, &a, sizeof(a)) < 0 ? -errno : 0;
}

#endif
