/* mallocs - count a process's malloc() calls by size (libbpf skeleton). */
#include "tool.h"
#include "mallocs.skel.h"

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct mallocs_bpf *skel = mallocs_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    int err = mallocs_bpf__load(skel);
    if (!err)
        err = mallocs_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "mallocs: load/attach failed: %d\n", err);
        mallocs_bpf__destroy(skel);
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    int fd = bpf_map__fd(skel->maps.sizes);
    __u64 key, next, val, *prev = NULL;
    /* Sizes the program saw at least 100 times, ascending. */
    __u64 keys[4096];
    int n = 0;
    while (n < 4096 && bpf_map_get_next_key(fd, prev, &next) == 0) {
        keys[n++] = next;
        key = next;
        prev = &key;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (keys[j] < keys[i]) { __u64 t = keys[i]; keys[i] = keys[j]; keys[j] = t; }
    for (int i = 0; i < n; i++)
        if (bpf_map_lookup_elem(fd, &keys[i], &val) == 0 && val >= 100)
            printf("malloc size %llu: %llu calls\n", (unsigned long long)keys[i], (unsigned long long)val);
    mallocs_bpf__destroy(skel);
    return 0;
}
