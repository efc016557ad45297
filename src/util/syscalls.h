/*
 * syscalls.h - x86-64 system call names and numbers, generated at build time
 * from the kernel's uapi header so it matches the machine it was built on.
 */
#ifndef GRAFT_UTIL_SYSCALLS_H
#define GRAFT_UTIL_SYSCALLS_H

/* The number of the system call called name ("openat"), or -1. */
int gsyscall_nr(const char *name);
/* The number of the system call whose tracepoints are syscalls/sys_enter_NAME
 * and sys_exit_NAME, or -1. Mostly name itself, but the kernel names a few
 * events after its implementation rather than the call (sys_enter_newfstat
 * is fstat, sys_enter_umount is umount2). */
int gsyscall_tracepoint_nr(const char *name);
/* The name of system call nr, or NULL. */
const char *gsyscall_name(int nr);
/* One more than the largest known number. */
int gsyscall_count(void);

#endif
