/* violation: syscall_audit is bound to write, not read */
#include "eim_ext.h"
SEC("tracepoint/syscalls/sys_enter_read")
int bad_syscall_other(struct eim_sys_enter *ctx) { return 0; }
