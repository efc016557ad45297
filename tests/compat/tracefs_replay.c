/*
 * tracefs_replay.c - what BCC does with tracefs to make a uprobe, and the
 * ill-formed requests a tool may make, run under `graft compat`
 * (libgraft-compat.so preloaded): each step prints one line, compared with
 * tracefs_replay.expected.
 *
 *   tracefs_replay TRACEFS BINARY FILE_OFFSET SEMAPHORE_OFFSET
 *
 * The kernel's uprobe_events must be the same before and after: nothing
 * is registered in the kernel. Ids graft hands out are past the kernel's
 * 16-bit event type numbers. A uprobe PMU event with a USDT semaphore for
 * every process (pid -1) is refused; one whose semaphore offset lies in no
 * writable segment is accepted and the offset ignored, as by the kernel.
 * Last, the library's gate to the kernel (a page at a fixed address the
 * seccomp filter lets bpf() through from, for read-only BTF commands) is
 * called with BPF_MAP_CREATE: it must be graft that answers (the descriptor
 * is graft's eventfd, not a kernel map).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char root[256];

static int slurp(const char *rel, char *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n < 0 ? -EIO : (int)n;
}

static void define(const char *what, const char *line)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/uprobe_events", root);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        printf("%s: open: %s\n", what, strerror(errno));
        return;
    }
    ssize_t n = write(fd, line, strlen(line));
    printf("%s: %s\n", what, n == (ssize_t)strlen(line) ? "ok" : strerror(errno));
    close(fd);
}

static long event_id(const char *name)
{
    char rel[256], buf[64];
    snprintf(rel, sizeof(rel), "events/uprobes/%s/id", name);
    int rc = slurp(rel, buf, sizeof(buf));
    return rc < 0 ? rc : atol(buf);
}

static int pmu_uprobe(const char *bin, unsigned long off, unsigned long ref, int pid)
{
    char buf[32];
    FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
    int type = -1;
    if (!f || !fgets(buf, sizeof(buf), f))
        return -ENOENT;
    fclose(f);
    type = atoi(buf);
    struct perf_event_attr a;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.type = (unsigned)type;
    a.config = (unsigned long long)ref << 32;
    a.config1 = (unsigned long)bin;   /* uprobe_path */
    a.config2 = off;                  /* probe_offset */
    long fd = syscall(__NR_perf_event_open, &a, pid, pid == -1 ? 0 : -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -errno;
    close((int)fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: tracefs_replay TRACEFS BINARY FILE_OFFSET SEMAPHORE_OFFSET\n");
        return 2;
    }
    snprintf(root, sizeof(root), "%s", argv[1]);
    const char *bin = argv[2];
    unsigned long off = strtoul(argv[3], NULL, 0), sem = strtoul(argv[4], NULL, 0);
    static char before[65536], after[65536];
    slurp("uprobe_events", before, sizeof(before));

    char line[1024];
    snprintf(line, sizeof(line), "p:uprobes/gr_entry %s:0x%lx", bin, off);
    define("define p", line);
    snprintf(line, sizeof(line), "r:uprobes/gr_ret %s:0x%lx", bin, off);
    define("define r", line);
    snprintf(line, sizeof(line), "p:uprobes/gr_sem %s:0x%lx(0x%lx)", bin, off, sem);
    define("define with semaphore", line);
    long a = event_id("gr_entry"), b = event_id("gr_ret");
    printf("ids past the kernel's 16 bits: %s, distinct: %s\n", a >= 65536 && b >= 65536 ? "yes" : "no",
           a != b ? "yes" : "no");
    printf("the kernel's uprobe_events unchanged: %s\n",
           slurp("uprobe_events", after, sizeof(after)) >= 0 && !strcmp(before, after) ? "yes" : "no");
    struct perf_event_attr t;
    memset(&t, 0, sizeof(t));
    t.size = sizeof(t);
    t.type = PERF_TYPE_TRACEPOINT;
    t.config = (unsigned long)a;
    long pfd = syscall(__NR_perf_event_open, &t, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    printf("perf_event_open of the id: %s\n", pfd >= 0 ? "ok" : strerror(errno));
    if (pfd >= 0)
        close((int)pfd);

    snprintf(line, sizeof(line), "p:uprobes/gr_entry %s:0x%lx", bin, off);
    define("define again", line);
    snprintf(line, sizeof(line), "p:uprobes/gr_args %s:0x%lx %%ax", bin, off);
    define("fetch arguments", line);
    define("unknown command", "x:uprobes/gr_x /bin/true:0x10");
    snprintf(line, sizeof(line), "p:uprobes/gr_sym %s:main", bin);
    define("symbol instead of offset", line);
    define("remove unknown", "-:uprobes/gr_none");
    define("remove", "-:uprobes/gr_entry");
    printf("id after removal: %s\n", event_id("gr_entry") == -ENOENT ? "ENOENT" : "still there");
    define("remove the rest", "-:uprobes/gr_ret\n-:uprobes/gr_sem\n");

    int rc = pmu_uprobe(bin, off, sem, -1);
    printf("PMU uprobe, semaphore, every process: %s\n", rc ? strerror(-rc) : "ok");
    rc = pmu_uprobe(bin, off, 6, -1);
    printf("PMU uprobe, semaphore offset in no writable segment: %s\n", rc ? strerror(-rc) : "ok");
    /* the gate: mov $__NR_bpf, %eax; syscall; ret at 0x3e5f00000000 (btf_cmds.c) */
    long (*gate)(long, long, long) = (long (*)(long, long, long))0x3e5f00000000ul;
    union bpf_attr m;
    memset(&m, 0, sizeof(m));
    m.map_type = BPF_MAP_TYPE_ARRAY;
    m.key_size = 4;
    m.value_size = 8;
    m.max_entries = 1;
    long mfd = gate(BPF_MAP_CREATE, (long)&m, sizeof(m));
    char info[256] = "", fdinfo[64];
    snprintf(fdinfo, sizeof(fdinfo), "fdinfo/%ld", mfd);
    if (mfd >= 0) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fdinfo/%ld", mfd);
        int f = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t n = f >= 0 ? read(f, info, sizeof(info) - 1) : -1;
        info[n > 0 ? n : 0] = '\0';
        if (f >= 0)
            close(f);
    }
    printf("BPF_MAP_CREATE through the gate: %s\n",
           mfd < 0 ? "refused" : strstr(info, "map_type") ? "reached the kernel" : "answered by graft");
    slurp("uprobe_events", after, sizeof(after));
    printf("the kernel's uprobe_events unchanged at the end: %s\n", !strcmp(before, after) ? "yes" : "no");
    return 0;
}
