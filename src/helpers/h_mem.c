/*
 * h_mem.c - the probe_read family and probe_write_user: copies between the
 * program's memory and arbitrary host addresses, through safe_mem.c so a bad
 * address yields -EFAULT and never a crash.
 *
 * Kernel semantics kept: on any error a read zeroes the whole destination;
 * string reads return the length including the NUL, truncate to size-1
 * characters plus a NUL, and return 0 for size 0. The only kernel memory in
 * a userspace process is the task images of h_taskimg.c: the *_kernel
 * variants read those and fail with -EFAULT (zeroing the destination)
 * everywhere else - which is also what the kernel returns for a user
 * address passed to them. bpf_probe_read (4) and bpf_probe_read_str
 * (45) read user memory, as the kernel's compat versions do for user
 * addresses on x86.
 */
#include <errno.h>
#include <string.h>

#include "helpers/helpers_internal.h"
#include "helpers/safe_mem.h"

static uint64_t read_mem(void *dst, uint32_t size, const void *src)
{
    int rc = gsafe_copy(dst, src, size);
    if (rc < 0 && size)
        memset(dst, 0, size);
    return GH_ERR(rc);
}

static uint64_t read_str(char *dst, uint32_t size, const char *src)
{
    if (size == 0)
        return 0;
    long rc = gsafe_strncpy(dst, src, size);
    if (rc < 0)
        memset(dst, 0, size);
    return GH_ERR(rc);
}

/* probe_read_user(void *dst, u32 size, const void *unsafe_ptr) */
GH_FN(probe_read_user)
{
    return read_mem((void *)r1, (uint32_t)r2, (const void *)r3);
}

GH_FN(probe_read)
{
    return read_mem((void *)r1, (uint32_t)r2, (const void *)r3);
}

/* The only kernel memory in a process is the synthetic task images
 * bpf_get_current_task returns (h_taskimg.c): reads inside them succeed,
 * every other address fails with -EFAULT, as the kernel's for a user one. */
GH_FN(probe_read_kernel)
{
    if (ghelper_task_image_holds((const void *)r3, (uint32_t)r2))
        return read_mem((void *)r1, (uint32_t)r2, (const void *)r3);
    if ((uint32_t)r2)
        memset((void *)r1, 0, (uint32_t)r2);
    return GH_ERR(-EFAULT);
}

/* probe_read_user_str(void *dst, u32 size, const void *unsafe_ptr) */
GH_FN(probe_read_user_str)
{
    return read_str((char *)r1, (uint32_t)r2, (const char *)r3);
}

GH_FN(probe_read_str)
{
    return read_str((char *)r1, (uint32_t)r2, (const char *)r3);
}

GH_FN(probe_read_kernel_str)
{
    if ((uint32_t)r2 == 0)
        return 0;
    if (ghelper_task_image_holds((const void *)r3, 1)) {
        /* up to the end of the images: a string there is read, never past */
        uint32_t size = (uint32_t)r2;
        while (size > 1 && !ghelper_task_image_holds((const void *)r3, size))
            size--;
        long n = read_str((char *)r1, size, (const char *)r3);
        if (size < (uint32_t)r2)
            memset((char *)r1 + size, 0, (uint32_t)r2 - size);
        return n;
    }
    memset((void *)r1, 0, (uint32_t)r2);
    return GH_ERR(-EFAULT);
}

/* probe_write_user(void *dst, const void *src, u32 len): the program's
 * bytes into host memory. Read-only or unmapped targets give -EFAULT. */
GH_FN(probe_write_user)
{
    return GH_ERR(gsafe_copy((void *)r1, (const void *)r2, (uint32_t)r3));
}
