/* rights.bpf.c - one program per right a program may need to change its
 * host, for tests/cli/test_rights.sh. Built once with every program
 * (-DWANT_ALL, for graft verify) and once per right (-DWANT_<RIGHT>, for
 * graft load, which loads a whole object). E2E_TARGET is the e2e target. */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>


/* observe-only: reads the argument's memory */
#if defined(WANT_ALL) || defined(WANT_READ)
SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(reads_host, long x)
{
    long v = 0;
    bpf_probe_read_user(&v, sizeof(v), (void *)x);
    return v != 0;
}
#endif

/* write-user: writes host memory */
#if defined(WANT_ALL) || defined(WANT_WRITE)
SEC("uprobe/" E2E_TARGET ":work")
int BPF_KPROBE(writes_host, long x)
{
    long v = 0;
    bpf_probe_write_user((void *)x, &v, sizeof(v));
    return 0;
}
#endif

/* override: the helper, at a function's start */
#if defined(WANT_ALL) || defined(WANT_OVERRIDE)
SEC("override/" E2E_TARGET ":work")
int skips_work(struct pt_regs *ctx)
{
    bpf_override_return(ctx, 0);
    return 0;
}
#endif

/* override: the section alone (the program is the function) */
#if defined(WANT_ALL) || defined(WANT_REPLACE)
SEC("replace/" E2E_TARGET ":work")
int replaces_work(struct pt_regs *ctx)
{
    return 7;
}
#endif

/* signal: both helpers */
#if defined(WANT_ALL) || defined(WANT_SIGNAL)
SEC("uprobe/" E2E_TARGET ":work")
int signals_host(struct pt_regs *ctx)
{
    bpf_send_signal(10);
    return 0;
}

SEC("uprobe/" E2E_TARGET ":work")
int signals_thread(struct pt_regs *ctx)
{
    bpf_send_signal_thread(10);
    return 0;
}
#endif

/* a host function and a host global: an EIM class only */
#if defined(WANT_ALL) || defined(WANT_HOST)
extern int app_log(const char *msg, int len) __ksym;
extern __u64 g_requests __ksym;

SEC("uprobe/" E2E_TARGET ":work")
int calls_host(struct pt_regs *ctx)
{
    char msg[8] = "hello\n";
    g_requests = 1;
    return app_log(msg, sizeof(msg));
}
#endif

char LICENSE[] SEC("license") = "GPL";
