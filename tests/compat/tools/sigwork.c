/* sigwork - load and attach a program that calls bpf_send_signal, then
 * exit: what tests/compat/test_compat.sh needs to see the right refused
 * (BPF_PROG_LOAD fails with EPERM) or granted. */
#include "tool.h"
#include "sigwork.skel.h"

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    if (!tool_target_alive(pid)) {
        fprintf(stderr, "sigwork: no process %d\n", pid);
        return 1;
    }
    struct sigwork_bpf *skel = sigwork_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    int err = sigwork_bpf__load(skel);
    if (err) {
        fprintf(stderr, "sigwork: load failed: %s\n", strerror(-err));
        sigwork_bpf__destroy(skel);
        return 1;
    }
    err = sigwork_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "sigwork: attach failed: %s\n", strerror(-err));
        sigwork_bpf__destroy(skel);
        return 1;
    }
    tool_attached();
    sigwork_bpf__destroy(skel);
    return 0;
}
