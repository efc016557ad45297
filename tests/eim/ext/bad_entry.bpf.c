/* violation: class observer is bound to handle_request, not parse_header */
#include "eim_ext.h"
SEC("uprobe/app:parse_header")
int bad_entry(struct eim_regs *ctx) { return 0; }
