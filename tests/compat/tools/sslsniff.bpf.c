/* sslsniff.bpf.c - plaintext of OpenSSL's SSL_write/SSL_read (sslsniff
 * style: SSL_write at entry, SSL_read at return with the buffer saved at
 * entry), events through a ring buffer. */
#include "common.bpf.h"

struct ssl_event { __u32 dir; __s32 len; char data[48]; };

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u64);
} read_bufs SEC(".maps");

static __always_inline void emit(__u32 dir, const void *buf, long len)
{
    struct ssl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return;
    e->dir = dir;
    e->len = (__s32)len;
    __builtin_memset(e->data, 0, sizeof(e->data));
    /* A fixed-size copy (variable sizes trip clang's 32-bit codegen up
     * with both verifiers); the reader prints only len bytes. */
    bpf_probe_read_user(e->data, sizeof(e->data), buf);
    bpf_ringbuf_submit(e, 0);
}

SEC("uprobe/" LIBSSL_PATH ":SSL_write")
int BPF_KPROBE(on_write, void *ssl, const void *buf, int num)
{
    if (is_target())
        emit(0, buf, num);
    return 0;
}

SEC("uprobe/" LIBSSL_PATH ":SSL_read")
int BPF_KPROBE(on_read, void *ssl, void *buf, int num)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 p = (__u64)buf;
    bpf_map_update_elem(&read_bufs, &tid, &p, BPF_ANY);
    return 0;
}

SEC("uretprobe/" LIBSSL_PATH ":SSL_read")
int BPF_KRETPROBE(on_read_ret, int ret)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    __u64 *p = bpf_map_lookup_elem(&read_bufs, &tid);
    if (!p)
        return 0;
    const void *buf = (const void *)*p;
    bpf_map_delete_elem(&read_bufs, &tid);
    if (ret > 0)
        emit(1, buf, ret);
    return 0;
}
