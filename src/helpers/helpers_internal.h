/*
 * helpers_internal.h - what the helper implementation files share. Private
 * to src/helpers/: other components see only helpers.h.
 */
#ifndef GRAFT_HELPERS_INTERNAL_H
#define GRAFT_HELPERS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "helpers/helpers.h"

/* Hidden: called through the registry's table, and among the helper files
 * directly (not through the PLT of a shared library). */
#define GH_HIDDEN __attribute__((visibility("hidden")))
#define GH_FN(name) GH_HIDDEN uint64_t gh_##name(uint64_t r1, uint64_t r2, uint64_t r3, \
                                                 uint64_t r4, uint64_t r5)

/* A negative errno as the 64-bit r0 value the program sees. */
#define GH_ERR(e) ((uint64_t)(int64_t)(e))

/* h_mem.c */
GH_FN(probe_read); GH_FN(probe_read_user); GH_FN(probe_read_kernel);
GH_FN(probe_read_str); GH_FN(probe_read_user_str); GH_FN(probe_read_kernel_str);
GH_FN(probe_write_user);

/* h_maps.c */
GH_FN(map_lookup_elem); GH_FN(map_update_elem); GH_FN(map_delete_elem);
GH_FN(map_push_elem); GH_FN(map_pop_elem); GH_FN(map_peek_elem);
GH_FN(tail_call); GH_FN(perf_event_output); GH_FN(current_task_under_cgroup);
/* h_stack.c */
GH_FN(get_stackid);
GH_FN(ringbuf_output); GH_FN(ringbuf_reserve); GH_FN(ringbuf_submit);
GH_FN(ringbuf_discard); GH_FN(ringbuf_query);
GH_FN(spin_lock); GH_FN(spin_unlock);
GH_FN(loop); GH_FN(for_each_map_elem);

/* h_time.c */
GH_FN(ktime_get_ns); GH_FN(ktime_get_boot_ns); GH_FN(ktime_get_coarse_ns);

/* h_task.c */
GH_FN(get_prandom_u32); GH_FN(get_smp_processor_id);
GH_FN(get_current_pid_tgid); GH_FN(get_current_uid_gid); GH_FN(get_current_comm);
GH_FN(override_return); GH_FN(get_func_ip); GH_FN(get_attach_cookie);
GH_FN(get_func_arg); GH_FN(get_func_ret); GH_FN(get_func_arg_cnt);
GH_FN(get_stack); GH_FN(send_signal); GH_FN(send_signal_thread);

/* h_taskimg.c */
GH_FN(get_current_task); GH_FN(get_current_task_btf);
/* This thread's task image (see h_taskimg.c), or NULL without memory. */
const void *ghelper_task_image(void) GH_HIDDEN;
/* [src, src + size) is inside this thread's task images. */
int ghelper_task_image_holds(const void *src, uint64_t size) GH_HIDDEN;

/* h_fmt.c */
GH_FN(trace_printk); GH_FN(snprintf); GH_FN(strncmp);

/* h_task.c: this thread's comm (16 bytes, NUL-terminated) and ids, cached. */
const char *gh_comm(void) GH_HIDDEN;
uint32_t gh_tid(void) GH_HIDDEN;
uint32_t gh_tgid(void) GH_HIDDEN;
/* How the JIT may compute a helper inline (ghelper_inline_table):
 * bpf_get_current_pid_tgid from this thread's {tid, tgid} cache (h_task.c),
 * bpf_ktime_get_ns from the TSC line and the thread's last value (h_time.c). */
void gh_pid_tgid_inline(struct gvm_helper_inline *out) GH_HIDDEN;
void gh_ktime_inline(struct gvm_helper_inline *out) GH_HIDDEN;
/* Where the initial-exec TLS variable var lies from the thread pointer:
 * the same in every thread. */
static inline int32_t gh_tls_offset(const void *var)
{
    const char *tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));     /* glibc's TCB points at itself */
    return (int32_t)((const char *)var - tp);
}
/* The user stack at regs by frame pointers: up to max return addresses
 * after skipping skip frames (regs->ip first). */
uint32_t gh_user_stack(const struct graft_pt_regs *regs, uint64_t *ips, uint32_t max, uint32_t skip) GH_HIDDEN;

#endif
