/* compliant: write(2) audit reads fd and count, not buf */
#include "eim_ext.h"
SEC("tracepoint/syscalls/sys_enter_write")
int ok_syscall(struct eim_sys_enter *ctx)
{
    __u64 t = bpf_ktime_get_ns();
    return (int)(ctx->args[0] + ctx->args[2] + t);
}
