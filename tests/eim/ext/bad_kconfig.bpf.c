/* violation: __kconfig has no meaning for a userspace host */
#include "eim_ext.h"
extern int LINUX_KERNEL_VERSION __kconfig;
SEC("uprobe/app:handle_request")
int bad_kconfig(struct eim_regs *ctx) { return LINUX_KERNEL_VERSION; }
