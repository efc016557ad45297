/* readline.bpf.c - log lines returned by a readline()-like function
 * (bashreadline style: uretprobe, string from the return value, perf buffer). */
#include "common.bpf.h"

struct line_event { __u32 pid; char text[60]; };

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("uretprobe/" WORK_PATH ":compat_readline")
int BPF_KRETPROBE(on_readline_ret, const char *ret)
{
    struct line_event e = {};
    if (!is_target() || !ret)
        return 0;
    e.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_probe_read_user_str(e.text, sizeof(e.text), ret);
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
