#!/usr/bin/env bash
# bench/compat/run.sh BUILD: for each compat test tool, how much slower its
# workload runs while the tool traces it - on the kernel (the tool as is)
# and on graft (workload under `graft start`, tool under `graft compat`) -
# relative to the untraced workload. Rounds are interleaved (plain, kernel,
# graft, plain, ...) and medians reported:
#   BENCH <tool>_graft_overhead_pct X pct
#   BENCH <tool>_kernel_overhead_pct X pct
#   BENCH compat_tools_passing N tools   (graft output == kernel output)
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
ROUNDS=${ROUNDS:-3}
HERE_SRC=$(cd "$(dirname "$0")/../../tests/compat" && pwd)
BIN=$BUILD/tests/compat
if [ ! -x "$BIN/compat_work" ]; then
    cmake --build "$BUILD" --target compat_tools >/dev/null || { echo "bench-compat: cannot build the tools" >&2; exit 1; }
fi
COMPAT_SOURCE_ONLY=1 source "$HERE_SRC/test_compat.sh" "$BUILD" "$BIN"

# Untraced run: elapsed ns of the workload alone.
run_plain() {
    local mode=$1 n=$2
    rm -f "$tmp/in"; mkfifo "$tmp/in"
    "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>"$tmp/w.err" &
    local wpid=$!
    exec 7>"$tmp/in"
    for _ in $(seq 200); do grep -q ready "$tmp/w.out" && break; sleep 0.02; done
    echo go >&7; exec 7>&-
    wait "$wpid"
    sed -n 's/^elapsed_ns //p' "$tmp/w.err"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
pct() { awk -v t="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", (t - b) * 100.0 / b; else print "nan" }'; }

passing=0
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
        passing=$((passing + 1))
    else
        echo "bench-compat: $name: a run failed or graft's output differed from the kernel's" >&2
    fi
done
echo "BENCH compat_tools_passing $passing tools"
