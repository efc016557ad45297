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
 * For the loss measurement it also keeps, in map "st", how many bytes the
 * AOF file (the fd fdatasync is called on) holds and the file offset up to
 * which the last completed real fdatasync made it durable (ST_SYNCED):
 * acknowledged commands that end past that offset are what a power failure
 * at this instant would lose.
 *
 * Bytes are counted when write() *returns*, with its result, never when it
 * is entered: graft runs the entry program before the kernel sees the call,
 * so a kill -9 between the two would count bytes that never reached the
 * file. The AOF's fd is learnt at the first fdatasync, after the first write
 * to it; map "early" keeps the bytes written per fd until then, so the
 * offsets are absolute for an AOF that was empty when the extension came.
 *
 * Invariant: only redis's main thread calls fdatasync/write on the AOF in
 * "always" mode; the programs ignore every other thread, so the counters
 * need no atomics.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum {
    ST_CALLS,      /* fdatasync calls seen */
    ST_REAL,       /* ... let through */
    ST_SKIPPED,    /* ... answered 0 without syncing */
    ST_WRITTEN,    /* bytes in the AOF file (writes that returned) */
    ST_SYNCED,     /* ST_WRITTEN as of the last completed real fdatasync */
    ST_FD,         /* AOF fd + 1 (0: not learnt yet) */
    ST_PENDING,    /* ST_WRITTEN + 1 at a real fdatasync's entry, until its exit */
    ST_LAST_NS,    /* time of the last real fdatasync */
    ST_WRITE_FD,   /* fd + 1 of the main thread's write() in flight (0: none) */
    ST_N,
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ST_N);
    __type(key, __u32);
    __type(value, __u64);
} st SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u64);       /* fd */
    __type(value, __u64);     /* bytes written to it before the AOF fd was learnt */
} early SEC(".maps");

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

static int main_thread(void)
{
    __u64 id = bpf_get_current_pid_tgid();
    return (__u32)id == id >> 32;
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
    if (!main_thread())
        return 0;
    if (*fd == 0) {
        __u64 aof = ctx->args[0];
        __u64 *before = bpf_map_lookup_elem(&early, &aof);
        *fd = aof + 1;
        *written = before ? *before : 0;
    }
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
    if (!pending || !synced || *pending == 0 || !main_thread())
        return 0;
    if (ctx->ret == 0)
        *synced = *pending - 1;
    *pending = 0;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int write_enter(struct sys_enter_args *ctx)
{
    __u64 *fd = slot(ST_FD), *inflight = slot(ST_WRITE_FD);
    if (!fd || !inflight || !main_thread())
        return 0;
    /* before the AOF is known every fd is a candidate; after, only it */
    *inflight = (*fd == 0 || ctx->args[0] + 1 == *fd) ? ctx->args[0] + 1 : 0;
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int write_exit(struct sys_exit_args *ctx)
{
    __u64 *fd = slot(ST_FD), *written = slot(ST_WRITTEN), *inflight = slot(ST_WRITE_FD);
    if (!fd || !written || !inflight || *inflight == 0 || !main_thread())
        return 0;
    __u64 wfd = *inflight - 1, n = ctx->ret > 0 ? ctx->ret : 0;
    *inflight = 0;
    if (*fd) {
        if (wfd + 1 == *fd)
            *written += n;
        return 0;
    }
    __u64 *before = bpf_map_lookup_elem(&early, &wfd);
    if (before)
        *before += n;
    else
        bpf_map_update_elem(&early, &wfd, &n, BPF_ANY);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
