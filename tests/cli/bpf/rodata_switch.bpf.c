/* rodata_switch.bpf.c - a `const volatile` switch in .rodata guards code
 * the verifier refuses (a load through a scalar): with the switch off
 * (MODE 0, the default) graft verify must prune it, as the kernel does for
 * frozen .rodata; built with MODE=1 the same code is live and refused. The
 * task fields come from bpf_get_current_task_btf (direct loads) and
 * bpf_get_current_task (probe_read), relocated by CO-RE. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef MODE
#define MODE 0
#endif

struct task_struct {
    int tgid;
    struct task_struct *real_parent;
} __attribute__((preserve_access_index));

const volatile int mode = MODE;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);
} seen SEC(".maps");

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(switched, long x)
{
    __u32 k = 0, tgid, ppid;
    struct task_struct *t = bpf_get_current_task_btf();
    tgid = t->tgid;
    ppid = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), real_parent, tgid);
    bpf_map_update_elem(&seen, &k, &tgid, BPF_ANY);
    k = 1;
    bpf_map_update_elem(&seen, &k, &ppid, BPF_ANY);
    if (mode)
        return *(volatile int *)(long)x;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
