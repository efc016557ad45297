/* rbstream.bpf.c - an ordered event stream through a ring buffer: one
 * record per call of compat_emit(seq, msg). */
#include "common.bpf.h"

struct stream_event { __u32 seq; char msg[28]; };

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("uprobe/" WORK_PATH ":compat_emit")
int BPF_KPROBE(on_emit, int seq, const char *msg)
{
    if (!is_target())
        return 0;
    struct stream_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    e->seq = seq;
    bpf_probe_read_user_str(e->msg, sizeof(e->msg), msg);
    bpf_ringbuf_submit(e, 0);
    return 0;
}
