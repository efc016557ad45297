/*
 * malloc_count.bpf.c - the demo extension: count malloc() calls and bytes
 * per process, in a hash map any process can read (`graft map dump counts`).
 * Plain libbpf-style BPF C: the same source builds for the kernel.
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>            /* struct pt_regs, as userspace sees it */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct stats {
    __u64 calls;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);                 /* process id */
    __type(value, struct stats);
} counts SEC(".maps");

SEC("uprobe/libc.so.6:malloc")
int BPF_KPROBE(count_malloc, unsigned long size)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct stats *s = bpf_map_lookup_elem(&counts, &pid);
    if (!s) {
        struct stats zero = {0};
        bpf_map_update_elem(&counts, &pid, &zero, BPF_NOEXIST);
        s = bpf_map_lookup_elem(&counts, &pid);
        if (!s)
            return 0;
    }
    __sync_fetch_and_add(&s->calls, 1);
    __sync_fetch_and_add(&s->bytes, size);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
