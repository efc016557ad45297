/* violation: len 5000 with a 64-byte buffer (and outside [0, 4096]) */
#include "eim_ext.h"
SEC("uprobe/app:handle_request")
int bad_log_len_large(struct eim_regs *ctx)
{
    char msg[64] = {};
    return app_log(msg, 5000);
}
