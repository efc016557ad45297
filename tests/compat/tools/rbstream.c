/* rbstream - print compat_emit() calls in order, through a ring buffer. */
#include "tool.h"
#include "rbstream.skel.h"

struct stream_event { __u32 seq; char msg[28]; };

static int on_event(void *ctx, void *data, size_t size)
{
    const struct stream_event *e = data;
    printf("%u %s\n", e->seq, e->msg);
    return 0;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct rbstream_bpf *skel = rbstream_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (rbstream_bpf__load(skel) || rbstream_bpf__attach(skel)) {
        fprintf(stderr, "rbstream: load/attach failed\n");
        return 1;
    }
    struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
    if (!rb)
        return 1;
    tool_attached();
    TOOL_FOLLOW(pid, ring_buffer__poll(rb, 50), ring_buffer__consume(rb));
    ring_buffer__free(rb);
    rbstream_bpf__destroy(skel);
    return 0;
}
