/* violation: reads 8 bytes of the 4-byte global g_config_limit */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_global_oob(struct eim_regs *ctx) { return (int)*(volatile __u64 *)&g_config_limit; }
