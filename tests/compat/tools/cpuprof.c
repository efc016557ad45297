/* cpuprof - sample one process (-p PID) at 499 Hz of CPU time with a
 * perf_event program on a software cpu-clock event opened for that pid
 * (frequency mode, any CPU), then say what the samples show: whether the
 * target was sampled and nothing else, whether most samples lie in the
 * target's own code, and how many of the most frequent stack's frames are
 * in the target's code. Counts vary from run to run (on the kernel too):
 * only those verdicts are printed. */
#include <linux/perf_event.h>
#include <sys/syscall.h>

#include "tool.h"
#include "cpuprof.skel.h"

#define DEPTH 32

static unsigned long text_lo[64], text_hi[64];
static int n_text;

/* The executable mappings of the target's own binary. */
static void read_text(int pid)
{
    char path[64], exe[512] = "", line[768];
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof(exe) - 1);
    if (n > 0)
        exe[n] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (n_text < 64 && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[8], file[512] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %511s", &lo, &hi, perms, file) >= 3 && perms[2] == 'x' &&
            strcmp(file, exe) == 0) {
            text_lo[n_text] = lo;
            text_hi[n_text++] = hi;
        }
    }
    fclose(f);
}

static int in_text(unsigned long ip)
{
    for (int i = 0; i < n_text; i++)
        if (ip >= text_lo[i] && ip < text_hi[i])
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct cpuprof_bpf *skel = cpuprof_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    if (cpuprof_bpf__load(skel)) {
        fprintf(stderr, "cpuprof: load failed\n");
        return 1;
    }
    struct perf_event_attr attr = {
        .type = PERF_TYPE_SOFTWARE, .size = sizeof(attr), .config = PERF_COUNT_SW_CPU_CLOCK,
        .freq = 1, .sample_freq = 499,
    };
    int pfd = (int)syscall(__NR_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0) {
        fprintf(stderr, "cpuprof: perf_event_open: %s\n", strerror(errno));
        return 1;
    }
    struct bpf_link *link = bpf_program__attach_perf_event(skel->progs.on_sample, pfd);
    if (!link) {
        fprintf(stderr, "cpuprof: attach: %s\n", strerror(errno));
        return 1;
    }
    read_text(pid);
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    __u64 st[3] = {0};
    for (__u32 k = 0; k < 3; k++)
        bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &k, &st[k]);
    __u64 ip, next, *prev = NULL, in = 0, total = 0;
    int ifd = bpf_map__fd(skel->maps.ip_counts);
    while (bpf_map_get_next_key(ifd, prev, &next) == 0) {
        __u64 c = 0;
        ip = next;
        prev = &ip;
        if (bpf_map_lookup_elem(ifd, &ip, &c) == 0) {
            total += c;
            in += in_text(ip) ? c : 0;
        }
    }
    __u32 sk, snext, *sprev = NULL, best = 0;
    __u64 best_count = 0;
    int cfd = bpf_map__fd(skel->maps.stack_counts);
    while (bpf_map_get_next_key(cfd, sprev, &snext) == 0) {
        __u64 c = 0;
        sk = snext;
        sprev = &sk;
        if (bpf_map_lookup_elem(cfd, &sk, &c) == 0 && c > best_count) {
            best_count = c;
            best = sk;
        }
    }
    __u64 frames[DEPTH] = {0};
    int own = 0;
    if (best_count && bpf_map_lookup_elem(bpf_map__fd(skel->maps.stacks), &best, frames) == 0)
        for (int i = 0; i < DEPTH && frames[i] && in_text(frames[i]); i++)
            own++;
    printf("target sampled: %s\n", st[0] >= 10 ? "yes" : "no");
    printf("samples of other processes: %llu\n", (unsigned long long)st[1]);
    printf("samples in the target's code: %s\n", total && in * 2 > total ? "most" : "few");
    printf("frames of the commonest stack in the target's code: %s\n", own >= 2 ? "2 or more" : own ? "1" : "0");
    bpf_link__destroy(link);
    close(pfd);
    cpuprof_bpf__destroy(skel);
    return 0;
}
