/* tailcalls - count compat_work_fn() calls by parity through tail calls
 * (libbpf skeleton; the prog array's slots are declared in the object). */
#include "tool.h"
#include "tailcalls.skel.h"

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct tailcalls_bpf *skel = tailcalls_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (tailcalls_bpf__load(skel) || tailcalls_bpf__attach(skel)) {
        fprintf(stderr, "tailcalls: load/attach failed\n");
        tailcalls_bpf__destroy(skel);
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    static const char *const what[] = { "dispatched", "fell through", "even", "odd",
                                        "sum of odd arguments" };
    for (__u32 k = 0; k < 5; k++) {
        __u64 v = 0;
        bpf_map_lookup_elem(bpf_map__fd(skel->maps.counts), &k, &v);
        printf("%s %llu\n", what[k], (unsigned long long)v);
    }
    tailcalls_bpf__destroy(skel);
    return 0;
}
