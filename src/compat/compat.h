/*
 * compat.h - libgraft-compat.so: run unmodified libbpf-based tools against
 * graft instead of the kernel.
 *
 * The library is preloaded (LD_PRELOAD) into a tool's loader process. It
 * interposes libc's syscall(), ioctl(), mmap() and close(): bpf(2) commands
 * and perf_event_open(2) for uprobes, syscall tracepoints and BPF output
 * buffers are answered by graft (maps in shared memory, programs verified by
 * graft's verifier and registered in the shared registry, links that graft
 * agents inside target processes install). Everything else goes to the
 * kernel unchanged. `graft compat [--] TOOL ARGS` (also `graft load
 * --compat TOOL ARGS`) sets this up. See docs/compat.md.
 *
 * This header is the library's whole public face: its file name and the
 * environment variables it reads.
 */
#ifndef GRAFT_COMPAT_COMPAT_H
#define GRAFT_COMPAT_COMPAT_H

#define GCOMPAT_LIB_NAME      "libgraft-compat.so"
/* Path of the library for `graft compat` (default: ../lib next to graft). */
#define GCOMPAT_ENV_LIB       "GRAFT_COMPAT_LIB"
/* Data pages per CPU a perf event array reserves (default 256); a tool's
 * perf buffer may be any power of 2 of pages up to it, sized at its mmap. */
#define GCOMPAT_ENV_PERF_PAGES "GRAFT_COMPAT_PERF_PAGES"
/* Set to 1 to log every bpf() command the library answers on stderr. */
#define GCOMPAT_ENV_DEBUG     "GRAFT_COMPAT_DEBUG"
/* How often (ms) ring and perf buffers are checked to wake epoll_wait. */
#define GCOMPAT_ENV_POLL_MS   "GRAFT_COMPAT_POLL_MS"
/* Rights the tool's programs get beyond observing (`graft compat --allow`):
 * a comma-separated list of write-user, override, signal, all. Unset:
 * observe-only; BPF_PROG_LOAD of a program that needs more fails (EPERM). */
#define GCOMPAT_ENV_ALLOW     "GRAFT_COMPAT_ALLOW"

#endif
