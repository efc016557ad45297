/* common.bpf.h - what the compat test tools' BPF sides share: the target
 * process filter (set by the loader through the skeleton's rodata, as
 * libbpf-tools do) and the syscall tracepoint records. */
#ifndef COMPAT_COMMON_BPF_H
#define COMPAT_COMMON_BPF_H
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile int target_tgid = 0;

static __always_inline int is_target(void)
{
    return (int)(bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

struct sys_enter_rec { __u64 common; long id; unsigned long args[6]; };
struct sys_exit_rec { __u64 common; long id; long ret; };

char LICENSE[] SEC("license") = "GPL";
#endif
