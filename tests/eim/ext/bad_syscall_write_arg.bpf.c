/* violation: syscall_audit may read fd, not rewrite it */
#include "eim_ext.h"
SEC("tracepoint/syscalls/sys_enter_write")
int bad_syscall_write_arg(struct eim_sys_enter *ctx) { ctx->args[0] = 2; return 0; }
