/* syscount.bpf.c - count system calls per syscall number, for processes
 * named "nginx" only (master and workers). The same object runs in the
 * kernel (examples/apps/kloader.c: raw tracepoint sys_enter, which fires for
 * every process on the machine, hence the name filter) and under graft
 * (raw_tracepoint/sys_enter: the syscall hooks of the processes that run
 * the agent). Map "counts": syscall number -> calls. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 512);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
    char comm[16];
    if (bpf_get_current_comm(comm, sizeof(comm)) < 0)
        return 0;
    if (comm[0] != 'n' || comm[1] != 'g' || comm[2] != 'i' || comm[3] != 'n' || comm[4] != 'x' ||
        comm[5] != 0)
        return 0;
    __u32 id = (__u32)ctx->args[1];
    __u64 one = 1, *v = bpf_map_lookup_elem(&counts, &id);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&counts, &id, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
