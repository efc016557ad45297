/*
 * bench_kernel.c - loads the benchmark's instructions into the kernel as a
 * BPF_PROG_TYPE_KPROBE program. Separate from bench_hooks.c because libbpf's
 * headers and graft's vm/isa.h both define struct bpf_insn.
 */
#include <bpf/bpf.h>

int bench_kernel_prog_load(const void *insns, int n)
{
    return bpf_prog_load(BPF_PROG_TYPE_KPROBE, "graft_bench", "GPL",
                         (const struct bpf_insn *)insns, (size_t)n, NULL);
}
