#!/usr/bin/env bash
# bench/compat/run.sh BUILD: the unmodified-tool compat matrix and overheads.
#
# 1. Runs every tests/compat/matrix/*.sh (one per tool family: libbpf-tools,
#    bpftrace, BCC) with --bench. Each prints one line per tool
#      MATRIX <family> <tool> PASS|FAIL|KERNEL-ONLY|UNSUPPORTED|SKIP <reason>
#    and, for its representative tool, the workload's slowdown while traced
#    relative to the untraced workload (interleaved rounds, medians):
#      BENCH compat_<tool>_graft_overhead_pct X pct
#      BENCH compat_<tool>_kernel_overhead_pct X pct
#    This script passes those BENCH lines on and prints
#      BENCH compat_tools_passing N tools   (distinct tools with PASS:
#      graft == kernel; bpftrace one-liner features not counted)
# 2. With COMPAT_TEST_TOOLS=1, also the same overheads for each of
#    tests/compat's own tools (BENCH <tool>_{graft,kernel}_overhead_pct).
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
ROUNDS=${ROUNDS:-3}
HERE_SRC=$(cd "$(dirname "$0")/../../tests/compat" && pwd)
BIN=$BUILD/tests/compat
if [ ! -x "$BIN/compat_work" ] || [ ! -x "$BIN/trace_work" ]; then
    cmake --build "$BUILD" --target compat_tools >/dev/null || { echo "bench-compat: cannot build the tools" >&2; exit 1; }
fi

passing=0
for script in "$HERE_SRC"/matrix/*.sh; do
    [ -x "$script" ] || continue
    out=$("$script" "$BUILD" --bench 2>&1)
    grep '^MATRIX ' <<<"$out" >&2
    grep '^BENCH ' <<<"$out"
    # distinct tools: a row "tool-X" is the tool with option -X or another
    # use of it (BCC's trace-usdt); bpftrace's tools are its bundled .bt
    # scripts, its one-liner rows are features of one tool and not counted
    passing=$((passing + $(awk '$1 == "MATRIX" && $4 == "PASS" && ($2 != "bpftrace" || $3 ~ /\.bt$/) {
                                    sub(/-.*$/, "", $3); print $3 }' <<<"$out" | sort -u | wc -l)))
done
echo "BENCH compat_tools_passing $passing tools"
[ "${COMPAT_TEST_TOOLS:-0}" = 1 ] || exit 0

COMPAT_SOURCE_ONLY=1 source "$HERE_SRC/test_compat.sh" "$BUILD" "$BIN"

# Untraced run: elapsed ns of the workload alone (run_side, tests/compat/side_lib.sh).
run_plain() { run_side plain "$1" "$2" && cat "$tmp/plain.ns"; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
pct() { awk -v t="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", (t - b) * 100.0 / b; else print "nan" }'; }

tool_passing=0
for t in "${TESTS[@]}"; do
    set -- $t
    name=$1 mode=$2 n=$3 sorted=$4; shift 4
    : >"$tmp/plain.all"; : >"$tmp/kernel.all"; : >"$tmp/graft.all"
    same=1
    for r in $(seq "$ROUNDS"); do
        run_plain "$mode" "$n" >>"$tmp/plain.all"
        if [ $kernel_ok = 1 ]; then
            run_tool kernel "$name" "$mode" "$n" "$@" >/dev/null && cat "$tmp/kernel.ns" >>"$tmp/kernel.all" || same=0
        fi
        run_tool graft "$name" "$mode" "$n" "$@" >/dev/null && cat "$tmp/graft.ns" >>"$tmp/graft.all" || same=0
        if [ $kernel_ok = 1 ] && [ $r = 1 ]; then
            if [ "$sorted" = 1 ]; then
                sort "$tmp/kernel.out" -o "$tmp/kernel.out"; sort "$tmp/graft.out" -o "$tmp/graft.out"
            fi
            cmp -s "$tmp/kernel.out" "$tmp/graft.out" && [ -s "$tmp/graft.out" ] || same=0
        fi
    done
    base=$(median <"$tmp/plain.all")
    echo "BENCH ${name}_graft_overhead_pct $(pct "$(median <"$tmp/graft.all")" "$base") pct"
    [ $kernel_ok = 1 ] && echo "BENCH ${name}_kernel_overhead_pct $(pct "$(median <"$tmp/kernel.all")" "$base") pct"
    if [ $same = 1 ]; then
        tool_passing=$((tool_passing + 1))
    else
        echo "bench-compat: $name: a run failed or graft's output differed from the kernel's" >&2
    fi
done
echo "BENCH compat_test_tools_passing $tool_passing tools"
