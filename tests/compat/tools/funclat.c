/* funclat - latency histogram of compat_work_fn() (funclatency style).
 * Prints the call counts (deterministic) on stdout and the histogram,
 * whose shape depends on timing, on stderr. */
#include "tool.h"
#include "funclat.skel.h"

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct funclat_bpf *skel = funclat_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (funclat_bpf__load(skel) || funclat_bpf__attach(skel)) {
        fprintf(stderr, "funclat: load/attach failed\n");
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    __u64 total = 0, v;
    for (__u32 slot = 0; slot < 64; slot++) {
        if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.hist), &slot, &v) == 0 && v) {
            fprintf(stderr, "  %20llu ns .. : %llu\n", 1ull << slot, (unsigned long long)v);
            total += v;
        }
    }
    __u32 k0 = 0, k1 = 1;
    __u64 entered = 0, returned = 0;
    bpf_map_lookup_elem(bpf_map__fd(skel->maps.calls), &k0, &entered);
    bpf_map_lookup_elem(bpf_map__fd(skel->maps.calls), &k1, &returned);
    printf("calls entered %llu returned %llu in histogram %llu\n", (unsigned long long)entered,
           (unsigned long long)returned, (unsigned long long)total);
    funclat_bpf__destroy(skel);
    return 0;
}
