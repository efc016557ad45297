/* compliant (field_reader): reads the granted fields id, len and path of
 * the request through bpf_probe_read_user / _str, after a null check and a
 * spill of the pointer, and writes the writable field len */
#include "eim_ext.h"
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} seen SEC(".maps");
SEC("uprobe/app:handle_request")
int ok_field_read(struct eim_regs *ctx)
{
    struct request *r = (struct request *)ctx->di;
    struct request *volatile saved;
    __u64 id = 0;
    __u32 len = 0, zero = 0;
    char path[48];
    if (!r)
        return 0;
    if (bpf_probe_read_user(&id, sizeof(id), &r->id))
        return 0;
    saved = r;          /* spilled to the stack and filled: still the pointer */
    r = saved;
    bpf_probe_read_user(&len, sizeof(len), &r->len);
    bpf_probe_read_user_str(path, sizeof(path), r->path);
    len = len > 16 ? 16 : len;
    bpf_probe_write_user(&r->len, &len, sizeof(len));
    __u64 *v = bpf_map_lookup_elem(&seen, &zero);
    if (v)
        *v = id + (__u64)ctx->di;   /* the pointer as a number: allowed */
    return 0;
}
