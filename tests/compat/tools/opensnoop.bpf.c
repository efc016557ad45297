/* opensnoop.bpf.c - openat() calls with their file name and result
 * (sys_enter_openat saves the name pointer, sys_exit_openat emits). */
#include "common.bpf.h"

struct open_event { __s64 ret; __s32 flags; char fname[60]; };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct sys_enter_rec);
} inflight SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int on_enter(struct sys_enter_rec *ctx)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct sys_enter_rec rec = {};
    rec.args[1] = ctx->args[1];
    rec.args[2] = ctx->args[2];
    bpf_map_update_elem(&inflight, &tid, &rec, BPF_ANY);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_exit(struct sys_exit_rec *ctx)
{
    if (!is_target())
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct sys_enter_rec *rec = bpf_map_lookup_elem(&inflight, &tid);
    if (!rec)
        return 0;
    struct open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->ret = ctx->ret;
        e->flags = (__s32)rec->args[2];
        bpf_probe_read_user_str(e->fname, sizeof(e->fname), (const char *)rec->args[1]);
        bpf_ringbuf_submit(e, 0);
    }
    bpf_map_delete_elem(&inflight, &tid);
    return 0;
}
