/*
 * safe_mem.h - copying from and to addresses a BPF program chose, without
 * ever crashing the host. Private to src/helpers/.
 */
#ifndef GRAFT_HELPERS_SAFE_MEM_H
#define GRAFT_HELPERS_SAFE_MEM_H

#include <stddef.h>

/* Copy n bytes; 0 on success, -EFAULT if any byte of src or dst faults (dst
 * may then hold a prefix of the data). */
int gsafe_copy(void *dst, const void *src, size_t n);

/* Copy a NUL-terminated string of at most n bytes including the NUL, like
 * the kernel's strncpy_from_user_nofault: returns the length copied
 * including the NUL, or n when truncated (dst[n-1] is then the NUL), or
 * -EFAULT. n == 0 returns 0 and touches nothing. */
long gsafe_strncpy(char *dst, const char *src, size_t n);

#endif
