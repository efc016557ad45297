/* fix.bpf.c - the hot patch for maxd: replaces checked_max(v, n) with a
 * correct version. A replace program *is* the function: its return value is
 * checked_max's, and the buggy body never runs while the patch is loaded.
 * MAXD is the server binary's path (set at build time). Counts the calls it
 * served in map "patched_calls". */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_VALUES 16

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} patched_calls SEC(".maps");

SEC("replace/" MAXD ":checked_max")
long fixed_max(struct pt_regs *ctx)
{
    const long *v = (const long *)PT_REGS_PARM1(ctx);
    long n = (long)PT_REGS_PARM2(ctx);
    long best = 0, x;
    __u32 k = 0;
    __u64 *calls = bpf_map_lookup_elem(&patched_calls, &k);
    if (calls)
        __sync_fetch_and_add(calls, 1);
    if (bpf_probe_read_user(&best, sizeof(best), &v[0]) < 0)
        return 0;
    for (int i = 1; i < MAX_VALUES; i++) {    /* i < n: the fix */
        if (i >= n)
            break;
        if (bpf_probe_read_user(&x, sizeof(x), &v[i]) < 0)
            break;
        if (x > best)
            best = x;
    }
    return best;
}

char LICENSE[] SEC("license") = "GPL";
