/*
 * fsync_batch.bpf.c - durability tuning for an unmodified redis-server in
 * appendfsync-always mode, at its fdatasync() calls (syscall hooks).
 *
 * Redis in "always" mode writes each event-loop iteration's commands to the
 * AOF and calls fdatasync(aof) before it replies. This extension lets only
 * some of those flushes reach the disk and makes the others return 0 at
 * once (bpf_override_return), bounding what a power failure could lose:
 *
 *   -DBATCH=N       every N-th flush is real (the first one too): at most
 *                   N-1 acknowledged flushes are ever un-synced.
 *   -DDELAY_US=T    "delayed" flush: a flush is real only if the last real
 *                   one was at least T us ago: at most T us of acknowledged
 *                   writes are un-synced.
 *
 * For the loss measurement it also keeps, in map "st", how many bytes were
 * written to the AOF file descriptor (the fd fdatasync is called on) and
 * how many of those had been written when the last real fdatasync
 * *returned*: st[ST_WRITTEN] - st[ST_SYNCED] bytes at the end of the AOF are
 * what a power failure at this instant would lose.
 *
 * Invariant: only redis's main thread calls fdatasync/write on the AOF in
 * "always" mode, so the counters need no atomics.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum {
    ST_CALLS,      /* fdatasync calls seen */
    ST_REAL,       /* ... let through */
    ST_SKIPPED,    /* ... answered 0 without syncing */
    ST_WRITTEN,    /* bytes written to the AOF fd since it was learnt */
    ST_SYNCED,     /* ST_WRITTEN as of the last completed real fdatasync */
    ST_FD,         /* AOF fd + 1 (0: not learnt yet) */
    ST_PENDING,    /* ST_WRITTEN + 1 at a real fdatasync's entry, until its exit */
    ST_LAST_NS,    /* time of the last real fdatasync */
    ST_N,
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ST_N);
    __type(key, __u32);
    __type(value, __u64);
} st SEC(".maps");

struct sys_enter_args {
    __u64 common;
    long id;
    unsigned long args[6];
};

struct sys_exit_args {
    __u64 common;
    long id;
    long ret;
};

static __u64 *slot(__u32 k)
{
    return bpf_map_lookup_elem(&st, &k);
}

static int should_sync(__u64 calls, __u64 last_ns)
{
#ifdef DELAY_US
    return bpf_ktime_get_ns() - last_ns >= (__u64)DELAY_US * 1000;
#else
    return (calls - 1) % BATCH == 0;
#endif
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int flush_enter(struct sys_enter_args *ctx)
{
    __u64 *calls = slot(ST_CALLS), *fd = slot(ST_FD), *last = slot(ST_LAST_NS);
    __u64 *real = slot(ST_REAL), *skipped = slot(ST_SKIPPED);
    __u64 *written = slot(ST_WRITTEN), *pending = slot(ST_PENDING);
    if (!calls || !fd || !last || !real || !skipped || !written || !pending)
        return 0;
    if (*fd == 0)
        *fd = ctx->args[0] + 1;
    *calls += 1;
    if (should_sync(*calls, *last)) {
        *real += 1;
        *pending = *written + 1;
        *last = bpf_ktime_get_ns();
        return 0;
    }
    *skipped += 1;
    bpf_override_return((void *)ctx, 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_fdatasync")
int flush_exit(struct sys_exit_args *ctx)
{
    __u64 *pending = slot(ST_PENDING), *synced = slot(ST_SYNCED);
    if (!pending || !synced || *pending == 0)
        return 0;
    if (ctx->ret == 0)
        *synced = *pending - 1;
    *pending = 0;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int aof_write(struct sys_enter_args *ctx)
{
    __u64 *fd = slot(ST_FD), *written = slot(ST_WRITTEN);
    if (fd && written && *fd && ctx->args[0] + 1 == *fd)
        *written += ctx->args[2];
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
