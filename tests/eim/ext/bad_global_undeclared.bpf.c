/* violation: g_hidden is not state the host offers */
#include "eim_ext.h"
extern __u64 g_hidden __ksym;
SEC("uprobe/app:handle_request")
int bad_global_undeclared(struct eim_regs *ctx) { return (int)g_hidden; }
