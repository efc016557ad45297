/* spinlock.bpf.c - maps whose values hold a struct bpf_spin_lock where the
 * loader has to look for it: behind a typedef and const volatile, inside a
 * nested struct, and in global data (.bss); a value without one; a map
 * without a BTF value type. */
#include "types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct bpf_spin_lock { __u32 val; };

typedef const volatile struct bpf_spin_lock lock_t;

struct guarded {
    __u32 pad;
    lock_t lock;               /* offset 8 + 4 = 12 in struct locked_val */
};

typedef struct {
    __u64 count;
    struct guarded g;
    __u64 total;
} locked_val;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, locked_val);
} locked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} plain SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(key_size, 4);
    __uint(value_size, 16);
} untyped SEC(".maps");

/* .bss: clang leaves the DATASEC's offsets 0; the symbols place glock
 * after hits (the test takes its offset from the symbol). */
__u64 hits[2];
__u8 tiny;
struct bpf_spin_lock glock;

SEC("uprobe/./app:f")
int count(void *ctx)
{
    __u32 k = 0;
    hits[1]++;                 /* clang lays .bss out in order of first use */
    locked_val *v = bpf_map_lookup_elem(&locked, &k);
    if (!v)
        return 0;
    bpf_spin_lock((struct bpf_spin_lock *)&v->g.lock);
    v->count++;
    bpf_spin_unlock((struct bpf_spin_lock *)&v->g.lock);
    __u64 *p = bpf_map_lookup_elem(&plain, &k);
    if (p)
        *p += 1;
    bpf_map_lookup_elem(&untyped, &k);
    bpf_spin_lock(&glock);
    hits[0]++;
    tiny = 1;
    bpf_spin_unlock(&glock);
    return 0;
}
