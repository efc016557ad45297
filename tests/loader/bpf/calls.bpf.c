/* calls.bpf.c - bpf-to-bpf calls: static and global subprograms in .text,
 * chains of calls, two programs sharing subprograms, a callback passed by
 * address (ld_imm64 BPF_PSEUDO_FUNC), and global data read by subprograms. */
#include "types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

int scale = 3;                     /* .data */
const volatile int bias = 100;     /* .rodata */
int hits;                          /* .bss */

static __attribute__((noinline)) int sq(int x)
{
    return x * x;
}

static __attribute__((noinline)) int sum_sq(int a, int b)
{
    return sq(a) + sq(b);
}

__attribute__((noinline)) int global_mul(int a, int b)
{
    return a * b * scale;
}

struct cb_ctx { int acc; };

static long add_idx(__u32 idx, void *data)
{
    struct cb_ctx *c = data;
    c->acc += idx;
    return 0;
}

/* r0 = sq(3)+sq(4) + 2*5*scale + bias = 25 + 30 + 100 = 155 */
SEC("uprobe/./app:f")
int prog_a(void *ctx)
{
    hits++;
    return sum_sq(3, 4) + global_mul(2, 5) + bias;
}

/* r0 = sq(6) + 1*1*scale = 39 */
SEC("replace/./app:g")
int prog_b(void *ctx)
{
    return sq(6) + global_mul(1, 1);
}

SEC("uprobe/./app:h")
int prog_loop(void *ctx)
{
    struct cb_ctx c = { 0 };
    bpf_loop(5, add_idx, &c, 0);
    return c.acc;
}
