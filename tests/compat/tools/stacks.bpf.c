/* stacks.bpf.c - user stacks at each compat_stack_leaf() call, counted by
 * stack id (bpf_get_stackid into a stack trace map). */
#include "common.bpf.h"

#define DEPTH 32

/* Stack ids are a hash of the frames modulo max_entries, and a stack whose
 * id another holds fails with -EEXIST (the kernel's rule, and graft's): with
 * 64 entries the two stacks here shared an id in about 1 run in 32 (on
 * either side, the layouts differ per run), and the test failed. 4096
 * entries make that about 1 in 2000. */
struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 4096);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} errors SEC(".maps");

SEC("uprobe/" WORK_PATH ":compat_stack_leaf")
int BPF_KPROBE(on_leaf)
{
    if (!is_target())
        return 0;
    long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    if (id < 0) {
        __u32 z = 0;
        __u64 *e = bpf_map_lookup_elem(&errors, &z);
        if (e)
            __sync_fetch_and_add(e, 1);
        return 0;
    }
    __u32 key = (__u32)id;
    __u64 one = 1, *v = bpf_map_lookup_elem(&counts, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
    return 0;
}
