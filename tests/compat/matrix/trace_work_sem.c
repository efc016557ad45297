/* trace_work_sem.c - trace_work's USDT probe tw:semtick, which has a
 * semaphore: a tracer attached to it increments tw_semtick_semaphore (the
 * kernel through the uprobe's ref_ctr_offset, BCC through /proc/PID/mem). */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short tw_semtick_semaphore __attribute__((section(".probes")));

__attribute__((noinline)) void tw_semtick(long i, long v)
{
    STAP_PROBE2(tw, semtick, i, v);
}
