/* perfstream.bpf.c - the same event stream as rbstream through a perf
 * event array (per-CPU perf buffers). */
#include "common.bpf.h"

struct stream_event { __u32 seq; char msg[28]; };

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("uprobe/" WORK_PATH ":compat_emit")
int BPF_KPROBE(on_emit, int seq, const char *msg)
{
    if (!is_target())
        return 0;
    struct stream_event e = {};
    e.seq = seq;
    bpf_probe_read_user_str(e.msg, sizeof(e.msg), msg);
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
