/* usdt - sum the arguments of USDT probe compat:tick in BINARY
 * (bpf_program__attach_usdt). Usage: usdt -p PID -b BINARY */
#include "tool.h"
#include "usdt.skel.h"

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    const char *binary = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-b") == 0)
            binary = argv[i + 1];
    if (!binary)
        return 2;
    struct usdt_bpf *skel = usdt_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (usdt_bpf__load(skel)) {
        fprintf(stderr, "usdt: load failed\n");
        return 1;
    }
    skel->links.on_tick = bpf_program__attach_usdt(skel->progs.on_tick, pid, binary, "compat", "tick", NULL);
    if (!skel->links.on_tick) {
        fprintf(stderr, "usdt: attach failed: %s\n", strerror(errno));
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    __u64 v[3] = {0};
    for (__u32 k = 0; k < 3; k++)
        bpf_map_lookup_elem(bpf_map__fd(skel->maps.totals), &k, &v[k]);
    printf("compat:tick fired %llu times, sum(seq) %llu, sum(val) %llu\n", (unsigned long long)v[0],
           (unsigned long long)v[1], (unsigned long long)v[2]);
    usdt_bpf__destroy(skel);
    return 0;
}
