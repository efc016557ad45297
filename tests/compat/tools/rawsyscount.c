/* rawsyscount - a process's system calls by number (entries, exits, failed
 * exits) for those entered >= 100 times, and its fstat calls. */
#include "tool.h"
#include "rawsyscount.skel.h"

struct counts { __u64 enter, exit, failed; };

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct rawsyscount_bpf *skel = rawsyscount_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (rawsyscount_bpf__load(skel) || rawsyscount_bpf__attach(skel)) {
        fprintf(stderr, "rawsyscount: load/attach failed\n");
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    int fd = bpf_map__fd(skel->maps.by_id);
    for (__u32 nr = 0; nr < 512; nr++) {
        struct counts c;
        if (bpf_map_lookup_elem(fd, &nr, &c) == 0 && c.enter >= 100)
            printf("syscall %u: enter %llu exit %llu failed %llu\n", nr, (unsigned long long)c.enter,
                   (unsigned long long)c.exit, (unsigned long long)c.failed);
    }
    __u32 k = 0;
    __u64 v = 0;
    bpf_map_lookup_elem(bpf_map__fd(skel->maps.newfstat_calls), &k, &v);
    printf("sys_enter_newfstat: %llu\n", (unsigned long long)v);
    rawsyscount_bpf__destroy(skel);
    return 0;
}
