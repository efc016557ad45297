/* cpuprof.bpf.c - a profiler of one process, as libbpf-tools' profile is
 * built: a perf_event program on a software cpu-clock event in frequency
 * mode, counting the sampled instruction pointers and user stacks. */
#include "common.bpf.h"
#include <linux/bpf_perf_event.h>

#define DEPTH 32

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 256);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u64);
} stack_counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u64);
    __type(value, __u64);
} ip_counts SEC(".maps");

/* 0: samples of the target, 1: of another process, 2: stacks not stored */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 3);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

static __always_inline void bump(void *map, const void *key)
{
    __u64 one = 1, *v = bpf_map_lookup_elem(map, key);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    __u32 k = is_target() ? 0 : 1;
    bump(&stats, &k);
    if (k)
        return 0;
    __u64 ip = PT_REGS_IP(&ctx->regs);
    bump(&ip_counts, &ip);
    long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    if (id < 0) {
        k = 2;
        bump(&stats, &k);
        return 0;
    }
    __u32 sid = (__u32)id;
    bump(&stack_counts, &sid);
    return 0;
}
