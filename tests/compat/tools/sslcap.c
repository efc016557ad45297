/* sslcap - the plaintext of SSL_write/SSL_read in full (libbpf-tools
 * sslsniff style, ring buffer).
 *   sslcap -p PID [-w FILE] [-r FILE]
 * appends the bytes each SSL_write (-w) and SSL_read (-r) of PID moved to
 * FILE, in order, and prints per direction the number of calls and bytes
 * when PID exits or on SIGINT/SIGTERM. */
#include <time.h>
#include "tool.h"
#include "sslcap.skel.h"

#define MAX_DATA 16384
struct cap_event { __u32 dir; __s32 len; __u8 data[MAX_DATA]; };
#define CAP_HDR 8

struct dir_stats { unsigned long long calls, bytes, truncated; FILE *out; };
static struct dir_stats stats[2];

static int on_event(void *ctx, void *data, size_t size)
{
    const struct cap_event *e = data;
    if (size < CAP_HDR || e->dir > 1)
        return 0;
    struct dir_stats *s = &stats[e->dir];
    size_t n = size - CAP_HDR;
    s->calls++;
    s->bytes += n;
    if ((size_t)e->len != n)
        s->truncated++;
    if (s->out && fwrite(e->data, 1, n, s->out) != n) {
        perror("sslcap: write");
        return -1;
    }
    return 0;
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "sslcap: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return f;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-w") == 0)
            stats[0].out = open_out(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0)
            stats[1].out = open_out(argv[++i]);
    }
    struct sslcap_bpf *skel = sslcap_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (sslcap_bpf__load(skel) || sslcap_bpf__attach(skel)) {
        fprintf(stderr, "sslcap: load/attach failed\n");
        return 1;
    }
    struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
    if (!rb)
        return 1;
    tool_attached();
    /* Like libbpf-tools: poll until told to stop. Whether the target still
     * lives is checked at most every 200 ms (reading /proc on every wake-up
     * would cost the tool more than the records do). */
    struct timespec last = {0}, now;
    while (!tool_exiting) {
        int err = ring_buffer__poll(rb, 100);
        if (err < 0 && err != -EINTR) {
            fprintf(stderr, "sslcap: ring_buffer__poll: %s\n", strerror(-err));
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec) >= 200000000L) {
            if (!tool_target_alive(pid))
                break;
            last = now;
        }
    }
    for (int i = 0; i < 3; i++)
        ring_buffer__consume(rb);
    __u32 zero = 0;
    __u64 dropped = 0;
    bpf_map__lookup_elem(skel->maps.dropped, &zero, sizeof(zero), &dropped, sizeof(dropped), 0);
    for (int d = 0; d < 2; d++) {
        printf("%s calls %llu bytes %llu truncated %llu\n", d ? "READ" : "WRITE", stats[d].calls,
               stats[d].bytes, stats[d].truncated);
        if (stats[d].out)
            fclose(stats[d].out);
    }
    printf("dropped %llu\n", (unsigned long long)dropped);
    ring_buffer__free(rb);
    sslcap_bpf__destroy(skel);
    return 0;
}
