/* core.bpf.c - CO-RE relocations without vmlinux.h: local, partial
 * definitions marked preserve_access_index whose layouts differ from the
 * target's, so every offset must be patched. __VMLINUX_H__ makes
 * bpf_tracing.h use the kernel's register names (di, si, ...). */
#define __VMLINUX_H__
#include "types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
struct pt_regs {          /* target: di at 112, si at 104, ip at 128, ax at 80 */
    unsigned long si;
    unsigned long di;
    unsigned long ax;
    unsigned long ip;
};
struct pt_regs___v2 {     /* a flavor: matches struct pt_regs by name */
    unsigned long not_in_target;
    unsigned long dx;
};
struct trace_entry { unsigned short type; int pid; };
struct trace_event_raw_sys_enter {
    struct trace_entry ent;
    long id;
    unsigned long args[6];
};
struct trace_event_raw_sys_exit { long ret; long id; };
struct graft_no_such_type { int x; };
#pragma clang attribute pop

/* 5, 7 in di, si -> 5 + 70 = 75 */
SEC("uprobe/./app:compute")
int regs_direct(struct pt_regs *ctx)
{
    return PT_REGS_PARM1(ctx) + PT_REGS_PARM2(ctx) * 10;
}

SEC("uprobe/./app:compute")
int regs_core_read(struct pt_regs *ctx)
{
    return PT_REGS_PARM1_CORE(ctx) + BPF_CORE_READ(ctx, ip);
}

SEC("uretprobe/./app:compute")
int BPF_KRETPROBE(regs_ret, long rc)
{
    return rc;
}

/* bit 0: dx exists, bit 1: not_in_target exists (must be 0), bits 8+: size of dx */
SEC("uprobe/./app:exists")
int field_exists(struct pt_regs___v2 *ctx)
{
    int r = 0;
    if (bpf_core_field_exists(ctx->dx))
        r |= 1;
    if (bpf_core_field_exists(ctx->not_in_target))
        r |= 2;
    r |= bpf_core_field_size(ctx->dx) << 8;
    return r;
}

/* 1 + 0 + sizeof target pt_regs (168) * 4 */
SEC("uprobe/./app:types")
int type_facts(void *ctx)
{
    return bpf_core_type_exists(struct trace_entry) +
           bpf_core_type_exists(struct graft_no_such_type) * 2 +
           bpf_core_type_size(struct pt_regs) * 4;
}

/* id + args[1] * 1000: target layout id at 8, args at 16 */
SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter(struct trace_event_raw_sys_enter *ctx)
{
    return ctx->id + ctx->args[1] * 1000;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_exit(struct trace_event_raw_sys_exit *ctx)
{
    return ctx->ret;
}
