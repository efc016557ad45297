/*
 * ktv_shim.h - what the kernel 6.1 test_verifier table needs to compile in
 * user space: the UAPI headers (Debian's linux-libc-dev), the kernel's
 * tools/include/linux/filter.h instruction macros and the selftests' BTF
 * and random-number headers (both extracted with the table at build time).
 * This translation unit includes no graft header; ktv.h is its interface.
 */
#ifndef GRAFT_TESTS_VERIFIER_KTV_SHIM_H
#define GRAFT_TESTS_VERIFIER_KTV_SHIM_H

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/btf.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/types.h>

#include "tools/include/linux/filter.h"
#include "tools/testing/selftests/bpf/bpf_rand.h"
#include "tools/testing/selftests/bpf/test_btf.h"

/* x86-64 (what test_verifier.c decides from the architecture) */
#define CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS 1
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define offsetofend(TYPE, MEMBER) (offsetof(TYPE, MEMBER) + sizeof(((TYPE *)0)->MEMBER))
typedef __u32 u32;
typedef __u64 u64;

#endif
