/* violation: a syscall tracepoint under a function-entry class */
#include "eim_ext.h"
SEC("tracepoint/syscalls/sys_enter_write")
int bad_entry_kind(struct eim_sys_enter *ctx) { return 0; }
