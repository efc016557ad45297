#!/usr/bin/env bash
# bench/syscalls/run.sh BUILD_DIR - cost per getpid() syscall: no hook, a
# graft sys_enter program (4 instructions, JIT), and the kernel's
# raw_syscalls sys_enter tracepoint with the same program (root only).
# Prints: BENCH syscall_nohook_ns / syscall_hook_added_ns / kernel_tp_added_ns.
set -euo pipefail
BUILD=${1:-build}
cmake --build "$BUILD" --target syscall_bench >/dev/null
exec "$BUILD/bench/syscalls/syscall_bench"
