/* opensnoop - openat() calls of a process: name and outcome (ring buffer).
 * Only names containing the filter argument are printed (a process may
 * open other files, e.g. its runtime's). */
#include "tool.h"
#include "opensnoop.skel.h"

struct open_event { __s64 ret; __s32 flags; char fname[60]; };
static const char *filter = "";

static int on_event(void *ctx, void *data, size_t size)
{
    const struct open_event *e = data;
    if (!strstr(e->fname, filter))
        return 0;
    printf("openat %s flags %#x: %s\n", e->fname, e->flags, e->ret >= 0 ? "ok" : strerror((int)-e->ret));
    return 0;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-f") == 0)
            filter = argv[i + 1];
    struct opensnoop_bpf *skel = opensnoop_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (opensnoop_bpf__load(skel) || opensnoop_bpf__attach(skel)) {
        fprintf(stderr, "opensnoop: load/attach failed\n");
        return 1;
    }
    struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
    if (!rb)
        return 1;
    tool_attached();
    TOOL_FOLLOW(pid, ring_buffer__poll(rb, 50), ring_buffer__consume(rb));
    ring_buffer__free(rb);
    opensnoop_bpf__destroy(skel);
    return 0;
}
