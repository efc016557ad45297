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
# the real syscount pair (enter + exit) against the kernel (syscount_bench.c),
# RUNS whole runs: each figure is the median of the runs' figures (a run of
# this machine is sometimes ~30 % slower throughout, plain getpid included);
# the range goes to stderr
RUNS=${SYSCOUNT_RUNS:-5}
(rc=0
 for ((i = 0; i < RUNS; i++)); do
     "$BUILD/bench/syscalls/syscount_bench" || rc=1   # a FAIL line is printed
 done
 exit $rc) | awk '
    $1 == "BENCH" { if (!($2 in n)) order[++k] = $2; v[$2, ++n[$2]] = $3; unit[$2] = $4; next }
    { print }
    END {
        for (o = 1; o <= k; o++) {
            name = order[o]; c = n[name]
            for (i = 1; i <= c; i++) a[i] = v[name, i]
            for (i = 2; i <= c; i++)            # insertion sort, c is small
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            med = c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
            printf "BENCH %s %.1f %s\n", name, med, unit[name]
            printf "note: %s median of %d runs, range %s-%s\n", name, c, a[1], a[c] > "/dev/stderr"
        }
    }'
# graft's hook path taken apart: no program, CALLS and PAIR with no-op
# handlers, the syscount pair (alternating blocks, TSC)
exec "$BUILD/bench/syscalls/syscount_bench" --paths
