/* compliant only thanks to app_random's post-condition [0, 99]: the result
 * indexes a 100-byte map value without a bounds check */
#include "eim_ext.h"
struct big { char b[100]; };
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct big);
} slots SEC(".maps");
SEC("uprobe/app:handle_request")
int ok_random_post(struct eim_regs *ctx)
{
    __u32 k = 0;
    struct big *v = bpf_map_lookup_elem(&slots, &k);
    if (!v)
        return 0;
    __u64 i = app_random();
    v->b[i] = 1;
    return 0;
}
