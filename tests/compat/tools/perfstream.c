/* perfstream - compat_emit() calls through per-CPU perf buffers. */
#include "tool.h"
#include "perfstream.skel.h"

struct stream_event { __u32 seq; char msg[28]; };

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
    const struct stream_event *e = data;
    printf("%u %s\n", e->seq, e->msg);
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
    printf("lost %llu\n", (unsigned long long)n);
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct perfstream_bpf *skel = perfstream_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (perfstream_bpf__load(skel) || perfstream_bpf__attach(skel)) {
        fprintf(stderr, "perfstream: load/attach failed\n");
        return 1;
    }
    /* 64 pages, as bpftrace's default (graft sizes each buffer at its mmap) */
    struct perf_buffer *pb = perf_buffer__new(bpf_map__fd(skel->maps.events), 64, on_event, on_lost, NULL, NULL);
    if (!pb)
        return 1;
    tool_attached();
    TOOL_FOLLOW(pid, perf_buffer__poll(pb, 50), perf_buffer__consume(pb));
    perf_buffer__free(pb);
    perfstream_bpf__destroy(skel);
    return 0;
}
