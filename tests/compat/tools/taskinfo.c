/* taskinfo - bpf_get_current_task[_btf]'s view of a process, checked against
 * the process's own (libbpf skeleton; -b: the BTF-typed helper). */
#include <sys/stat.h>

#include "tool.h"
#include "taskinfo.skel.h"

struct result {
    __u32 hits, tgid_ok, pid_ok, comm_ok, leader_comm_ok, uid_ok, ppid, mntns, ksym_absent, direct_ok;
};

static int ppid_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    int ppid = -1;
    if (p)
        sscanf(p + 2, "%*c %d", &ppid);
    return ppid;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    int btf = 0;
    for (int i = 1; i < argc; i++)
        btf |= strcmp(argv[i], "-b") == 0;
    int ppid = ppid_of(pid);
    char ns[64];
    struct stat st;
    snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", pid);
    unsigned long mntns = stat(ns, &st) == 0 ? (unsigned long)st.st_ino : 0;
    struct taskinfo_bpf *skel = taskinfo_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    skel->rodata->use_btf = btf;
    int err = taskinfo_bpf__load(skel);
    if (!err)
        err = taskinfo_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "taskinfo: load/attach failed: %d\n", err);
        taskinfo_bpf__destroy(skel);
        return 1;
    }
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    struct result r;
    __u32 zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.results), &zero, &r) == 0)
        printf("hits %u tgid %u pid %u comm %u leader_comm %u uid %u ppid %s mntns %s ksym_absent %u direct %u\n",
               r.hits, r.tgid_ok, r.pid_ok, r.comm_ok, r.leader_comm_ok, r.uid_ok,
               (int)r.ppid == ppid ? "ok" : "WRONG", r.mntns == mntns ? "ok" : "WRONG", r.ksym_absent,
               r.direct_ok);
    taskinfo_bpf__destroy(skel);
    return 0;
}
