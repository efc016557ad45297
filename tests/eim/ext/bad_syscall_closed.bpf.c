/* violation: syscall_audit closes buf */
#include "eim_ext.h"
SEC("tracepoint/syscalls/sys_enter_write")
int bad_syscall_closed(struct eim_sys_enter *ctx) { return (int)ctx->args[1]; }
