/* deny_open.bpf.c - make openat() of paths under /tmp/graft-denied fail
 * with EACCES, and count the denials. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define EACCES 13

struct sys_enter_args {
    __u64 common;
    long id;
    unsigned long args[6];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} denied SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int deny_open(struct sys_enter_args *ctx)
{
    char path[32] = {};
    const char prefix[] = "/tmp/graft-denied";
    if (bpf_probe_read_user_str(path, sizeof(path), (const void *)ctx->args[1]) < 0)
        return 0;
    for (int i = 0; i < (int)sizeof(prefix) - 1; i++)
        if (path[i] != prefix[i])
            return 0;
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&denied, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    bpf_override_return((void *)ctx, -EACCES);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
