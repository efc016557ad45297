/* sslcap.bpf.c - capture the plaintext of OpenSSL's SSL_write/SSL_read in
 * full, the way libbpf-tools' sslsniff does: an entry probe saves the
 * buffer pointer per thread, the return probe copies the bytes the call
 * actually moved (its return value, up to MAX_DATA) into a per-CPU scratch
 * record and sends header + data through a ring buffer. */
#include "common.bpf.h"

#define MAX_DATA 16384   /* nginx hands SSL_write at most 16 KiB at a time */

struct cap_event {
    __u32 dir;     /* 0 write, 1 read */
    __s32 len;     /* the call's return value */
    __u8 data[MAX_DATA];
};
#define CAP_HDR 8

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct cap_event);
} scratch SEC(".maps");

/* thread id -> buffer of the SSL_write/SSL_read in progress */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} bufs SEC(".maps");

/* events that did not fit the ring buffer */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} dropped SEC(".maps");

static __always_inline int enter(const void *buf)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 p = (__u64)buf;
    bpf_map_update_elem(&bufs, &tid, &p, BPF_ANY);
    return 0;
}

static __always_inline int leave(__u32 dir, long ret)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid(), zero = 0;
    __u64 *p = bpf_map_lookup_elem(&bufs, &tid);
    if (!p)
        return 0;
    const void *buf = (const void *)*p;
    bpf_map_delete_elem(&bufs, &tid);
    if (ret <= 0)
        return 0;
    struct cap_event *e = bpf_map_lookup_elem(&scratch, &zero);
    if (!e)
        return 0;
    __u64 n = (__u64)ret;
    if (n > MAX_DATA)
        n = MAX_DATA;
    e->dir = dir;
    e->len = (__s32)ret;
    if (bpf_probe_read_user(e->data, n, buf))
        n = 0;
    if (bpf_ringbuf_output(&events, e, CAP_HDR + n, 0)) {
        __u64 *d = bpf_map_lookup_elem(&dropped, &zero);
        if (d)
            __sync_fetch_and_add(d, 1);
    }
    return 0;
}

SEC("uprobe/" LIBSSL_PATH ":SSL_write")
int BPF_KPROBE(write_enter, void *ssl, const void *buf, int num)
{
    return enter(buf);
}

SEC("uretprobe/" LIBSSL_PATH ":SSL_write")
int BPF_KRETPROBE(write_exit, int ret)
{
    return leave(0, ret);
}

SEC("uprobe/" LIBSSL_PATH ":SSL_read")
int BPF_KPROBE(read_enter, void *ssl, void *buf, int num)
{
    return enter(buf);
}

SEC("uretprobe/" LIBSSL_PATH ":SSL_read")
int BPF_KRETPROBE(read_exit, int ret)
{
    return leave(1, ret);
}
