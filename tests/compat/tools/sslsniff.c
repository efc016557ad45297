/* sslsniff - plaintext going through SSL_write/SSL_read (ring buffer). */
#include "tool.h"
#include "sslsniff.skel.h"

struct ssl_event { __u32 dir; __s32 len; char data[48]; };

static int on_event(void *ctx, void *data, size_t size)
{
    const struct ssl_event *e = data;
    int n = e->len < 0 ? 0 : e->len > (int)sizeof(e->data) ? (int)sizeof(e->data) : e->len;
    printf("%s %d %.*s\n", e->dir ? "READ" : "WRITE", e->len, n, e->data);
    return 0;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct sslsniff_bpf *skel = sslsniff_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (sslsniff_bpf__load(skel) || sslsniff_bpf__attach(skel)) {
        fprintf(stderr, "sslsniff: load/attach failed\n");
        return 1;
    }
    struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
    if (!rb)
        return 1;
    tool_attached();
    TOOL_FOLLOW(pid, ring_buffer__poll(rb, 50), ring_buffer__consume(rb));
    ring_buffer__free(rb);
    sslsniff_bpf__destroy(skel);
    return 0;
}
