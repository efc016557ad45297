/* eim_ext.h - what every test extension includes: fixed-width types, libbpf's
 * helper declarations, the host's structs (shared with the host), the
 * contexts of the three entry kinds, and the host's functions and globals
 * named the kernel way (__ksym). */
#ifndef EIM_EXT_H
#define EIM_EXT_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u64 __be64;

enum { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2 };

#include <bpf/bpf_helpers.h>

#include "../include/app_types.h"

/* function entries: struct pt_regs (x86-64) */
struct eim_regs {
    __u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
    __u64 ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
/* syscall entries: the sys_enter record */
struct eim_sys_enter {
    __u64 common;
    __s64 id;
    __u64 args[6];
};
/* source entries (GRAFT_ENTRY): one u64 per declared argument */
struct eim_src_args {
    __u64 args[6];
};

extern int app_log(const char *msg, int len) __ksym;
extern int app_tag(const char *tag, int len) __ksym;
extern void app_set_level(int level) __ksym;
extern unsigned int app_random(void) __ksym;
extern __u64 g_requests __ksym;
extern int g_config_limit __ksym;

char LICENSE[] SEC("license") = "GPL";

#endif
