/* violation: the right function name but in another binary */
#include "eim_ext.h"
SEC("uprobe/other:handle_request")
int bad_entry_host(struct eim_regs *ctx) { return 0; }
