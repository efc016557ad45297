/* violation: attaches inside the entry function, not at its start */
#include "eim_ext.h"
SEC("uprobe/app:handle_request+0x10")
int bad_entry_offset(struct eim_regs *ctx) { return 0; }
