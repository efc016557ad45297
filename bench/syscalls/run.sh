#!/usr/bin/env bash
# bench/syscalls/run.sh BUILD_DIR - cost per getpid() syscall: no hook, graft
# sys_enter programs (a 4-instruction one through the fast path and the
# general path, a syscount-like one calling helpers), and the kernel's
# raw_syscalls sys_enter tracepoint with the same programs (root only).
# Prints BENCH lines (see syscall_bench.c).
set -euo pipefail
BUILD=${1:-build}
cmake --build "$BUILD" --target syscall_bench syscount_bench >/dev/null
export GRAFT_AGENT_OFF=1   # the agent library is linked in, but must stay idle
"$BUILD/bench/syscalls/syscall_bench"
# the real syscount pair (enter + exit) against the kernel (syscount_bench.c)
"$BUILD/bench/syscalls/syscount_bench"
# graft's hook path taken apart: no program, CALLS and PAIR with no-op
# handlers, the syscount pair (alternating blocks, TSC)
exec "$BUILD/bench/syscalls/syscount_bench" --paths
