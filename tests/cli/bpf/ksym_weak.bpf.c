/* ksym_weak.bpf.c - weak kernel symbols graft cannot provide: without an
 * EIM class they are absent, so bpf_ksym_exists() is false and the code it
 * guards is dead (accepted, and runs); built with UNGUARDED the call is
 * reachable and refused. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef bpf_ksym_exists           /* libbpf 1.2's; Debian ships 1.1 */
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), #sym " must be __weak"); !!sym; })
#endif

extern int graft_test_absent_kfunc(int x) __ksym __weak;
extern const int graft_test_absent_var __ksym __weak;

SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(weak_syms, long x)
{
    int r = 1;
#ifndef UNGUARDED
    if (bpf_ksym_exists(graft_test_absent_kfunc))
#endif
        r += graft_test_absent_kfunc(1);
    if (bpf_ksym_exists(&graft_test_absent_var))
        r += graft_test_absent_var;
    return r;
}

char LICENSE[] SEC("license") = "GPL";
