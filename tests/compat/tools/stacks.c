/* stacks - count the target's user stacks at compat_stack_leaf() and print
 * each with its count, frames as MODULE+OFFSET (stable across runs and
 * address-space layouts); only frames in the workload itself (the C
 * library has no frame pointers: what follows its frames is not defined). */
#include "tool.h"
#include "stacks.skel.h"

#define DEPTH 32

struct region { unsigned long lo, hi, off; char name[64]; };
static struct region regions[256];
static int n_regions;

static void read_maps(int pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (n_regions < 256 && fgets(line, sizeof(line), f)) {
        struct region *r = &regions[n_regions];
        char perms[8], file[400] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %399s", &r->lo, &r->hi, perms, &r->off, file) < 4)
            continue;
        const char *base = strrchr(file, '/');
        snprintf(r->name, sizeof(r->name), "%s", base ? base + 1 : file);
        if (perms[2] == 'x')
            n_regions++;
    }
    fclose(f);
}

static const struct region *region_of(unsigned long ip)
{
    for (int i = 0; i < n_regions; i++)
        if (ip >= regions[i].lo && ip < regions[i].hi)
            return &regions[i];
    return NULL;
}

int main(int argc, char **argv)
{
    int pid = tool_init(argc, argv);
    struct stacks_bpf *skel = stacks_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_tgid = pid;
    int err = stacks_bpf__load(skel);
    if (!err)
        err = stacks_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "stacks: load/attach failed: %d\n", err);
        stacks_bpf__destroy(skel);
        return 1;
    }
    read_maps(pid);
    tool_attached();
    TOOL_FOLLOW(pid, usleep(20000), 0);
    int cfd = bpf_map__fd(skel->maps.counts), sfd = bpf_map__fd(skel->maps.stacks);
    __u32 key, next, *prev = NULL;
    char lines[64][512];
    int n = 0;
    while (n < 64 && bpf_map_get_next_key(cfd, prev, &next) == 0) {
        __u64 count = 0, ips[DEPTH] = {0};
        key = next;
        prev = &key;
        if (bpf_map_lookup_elem(cfd, &key, &count) || bpf_map_lookup_elem(sfd, &key, ips))
            continue;
        int len = snprintf(lines[n], sizeof(lines[n]), "%llu:", (unsigned long long)count);
        for (int i = 0; i < DEPTH && ips[i]; i++) {
            const struct region *r = region_of(ips[i]);
            if (!r || strcmp(r->name, "compat_work") != 0)
                break;
            len += snprintf(lines[n] + len, sizeof(lines[n]) - (size_t)len, " %s+%#lx", r->name, (unsigned long)
                            ips[i] - r->lo + r->off);
        }
        n++;
    }
    /* sorted, so the order of stack ids does not matter */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(lines[j], lines[i]) < 0) {
                char t[512];
                memcpy(t, lines[i], sizeof(t));
                memcpy(lines[i], lines[j], sizeof(t));
                memcpy(lines[j], t, sizeof(t));
            }
    for (int i = 0; i < n; i++)
        printf("%s\n", lines[i]);
    __u32 z = 0;
    __u64 errs = 0;
    bpf_map_lookup_elem(bpf_map__fd(skel->maps.errors), &z, &errs);
    printf("errors %llu\n", (unsigned long long)errs);
    stacks_bpf__destroy(skel);
    return 0;
}
