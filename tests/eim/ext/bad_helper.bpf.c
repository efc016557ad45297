/* violation: get_prandom_u32 is not granted to observer */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_helper(struct eim_regs *ctx) { return (int)bpf_get_prandom_u32(); }
