/* syscount.bpf.c - count system calls per syscall id (raw tracepoint, like
 * the syscount tool) and getppid() and uname() separately (syscall
 * tracepoints; the kernel names uname's sys_enter_newuname), and getppid()
 * once more through the raw_syscalls/sys_enter tracepoint. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 512);
    __type(key, __u32);
    __type(value, __u64);
} by_id SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} getppid_calls SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} uname_calls SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} raw_tp_getppid SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int count_all(struct bpf_raw_tracepoint_args *ctx)
{
    __u32 id = (__u32)ctx->args[1];
    __u64 one = 1, *v = bpf_map_lookup_elem(&by_id, &id);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&by_id, &id, &one, BPF_NOEXIST);
    return 0;
}

/* The kernel's record: 8 bytes of common fields, the id, then the args. */
struct sys_enter_args {
    __u64 common;
    long id;
    unsigned long args[6];
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(struct sys_enter_args *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&getppid_calls, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_newuname")
int count_uname(struct sys_enter_args *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&uname_calls, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}

/* The raw_syscalls tracepoint: every syscall, the id in the record. */
SEC("tracepoint/raw_syscalls/sys_enter")
int count_raw_getppid(struct sys_enter_args *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&raw_tp_getppid, &k);
    if (v && ctx->id == 110)
        __sync_fetch_and_add(v, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
