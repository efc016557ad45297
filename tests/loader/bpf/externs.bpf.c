/* externs.bpf.c - __ksym and __kconfig externs left for the EIM layer. */
#include "types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern int graft_app_config __ksym;
extern void graft_app_hook(int x) __ksym;
extern int LINUX_KERNEL_VERSION __kconfig;

SEC("uprobe/./app:f")
int use_externs(void *ctx)
{
    graft_app_hook(1);
    return graft_app_config + LINUX_KERNEL_VERSION;
}
