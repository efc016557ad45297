/* e2e (class source_counter): at the GRAFT_ENTRY(after_parse, r, n) site,
 * count the runs and sum n (args[1]) in a map the test reads. */
#include "../ext/eim_ext.h"

struct src {
    __u64 runs;
    __u64 sum_n;
    __u64 max_n;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct src);
} e2e_src SEC(".maps");

SEC("usdt/app:graft:after_parse")
int e2e_source(struct eim_src_args *ctx)
{
    __u32 key = 0;
    __u64 n = ctx->args[1];
    struct src *s = bpf_map_lookup_elem(&e2e_src, &key);
    if (!s)
        return 0;
    s->runs++;
    s->sum_n += n;
    if (n > s->max_n)
        s->max_n = n;
    return 0;
}
