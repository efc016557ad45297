/* syscount - a process's system calls by number; those made >= 100 times. */
#include "tool.h"
#include "syscount.skel.h"

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct syscount_bpf *skel = syscount_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (syscount_bpf__load(skel) || syscount_bpf__attach(skel)) {
        fprintf(stderr, "syscount: load/attach failed\n");
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    int fd = bpf_map__fd(skel->maps.counts);
    for (__u32 nr = 0; nr < 512; nr++) {
        __u64 v;
        if (bpf_map_lookup_elem(fd, &nr, &v) == 0 && v >= 100)
            printf("syscall %u: %llu\n", nr, (unsigned long long)v);
    }
    syscount_bpf__destroy(skel);
    return 0;
}
