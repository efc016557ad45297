/* funclat.bpf.c - latency histogram of one function (funclatency style:
 * uprobe stores the entry time per thread, uretprobe adds the delta to a
 * log2 histogram). */
#include "common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u64);
} starts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} hist SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);      /* 0: calls entered, 1: calls returned */
    __type(key, __u32);
    __type(value, __u64);
} calls SEC(".maps");

static __always_inline void bump(__u32 k)
{
    __u64 *v = bpf_map_lookup_elem(&calls, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("uprobe/" WORK_PATH ":compat_work_fn")
int BPF_KPROBE(on_entry)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 ts = bpf_ktime_get_ns();
    bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
    bump(0);
    return 0;
}

SEC("uretprobe/" WORK_PATH ":compat_work_fn")
int BPF_KRETPROBE(on_return)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 *ts = bpf_map_lookup_elem(&starts, &tid);
    if (!ts)
        return 0;
    __u64 delta = bpf_ktime_get_ns() - *ts;
    bpf_map_delete_elem(&starts, &tid);
    __u32 slot = 0;
    for (int i = 0; i < 63 && delta > 1; i++) {
        delta >>= 1;
        slot++;
    }
    __u64 *v = bpf_map_lookup_elem(&hist, &slot);
    if (v)
        __sync_fetch_and_add(v, 1);
    bump(1);
    return 0;
}
