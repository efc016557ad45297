/* readline - print lines returned by compat_readline() (bashreadline
 * style, perf buffer). */
#include "tool.h"
#include "readline.skel.h"

struct line_event { __u32 pid; char text[60]; };

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
    const struct line_event *e = data;
    printf("readline: %s\n", e->text);
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
    fprintf(stderr, "lost %llu events on CPU %d\n", (unsigned long long)n, cpu);
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct readline_bpf *skel = readline_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (readline_bpf__load(skel) || readline_bpf__attach(skel)) {
        fprintf(stderr, "readline: load/attach failed\n");
        return 1;
    }
    /* 16 pages, as libbpf-tools' bashreadline asks (graft sizes each buffer at its mmap) */
    struct perf_buffer *pb = perf_buffer__new(bpf_map__fd(skel->maps.events), 16, on_event, on_lost, NULL, NULL);
    if (!pb) {
        fprintf(stderr, "readline: perf_buffer__new failed: %s\n", strerror(errno));
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, perf_buffer__poll(pb, 50), perf_buffer__consume(pb));
    perf_buffer__free(pb);
    readline_bpf__destroy(skel);
    return 0;
}
