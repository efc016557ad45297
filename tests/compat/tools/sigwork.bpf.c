/* sigwork.bpf.c - signal the target each time it calls compat_work_fn, as
 * kernel tools that stop or kill a process on an event do
 * (bpf_send_signal). graft grants that right only to a tool run with
 * `graft compat --allow signal`. */
#include "common.bpf.h"

SEC("uprobe/" WORK_PATH ":compat_work_fn")
int BPF_KPROBE(on_work)
{
    if (is_target())
        bpf_send_signal(0);   /* signal 0: the right is needed, nothing is delivered */
    return 0;
}
