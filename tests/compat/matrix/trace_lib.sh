# trace_lib.sh - sourced by bpftrace.sh and bcc.sh: run one case of a tool
# family on the kernel and on graft, side by side, and print its MATRIX line.
#
#   MATRIX <family> <case> PASS|FAIL|KERNEL-ONLY|UNSUPPORTED|SKIP <reason>
#
# A case: the workload (trace_work MODE N) starts and waits; the tool starts
# (on graft: the workload under `graft start`, the tool under `graft
# compat`); once it has attached the workload runs and exits; the tool is
# then sent SIGINT and prints what it saw. Its stdout, normalised by the
# case's filter (which drops pids, times, latencies), must be non-empty and
# the same on both sides. The tool's process (and the target) must not hang:
# each side is bounded in time.
# Needs: BUILD, FAMILY set by the caller.
WORK=$BUILD/tests/compat/trace_work
SIDE_NAME=tmatrix
. "$(dirname "${BASH_SOURCE[0]}")/../side_lib.sh"
unexpected=0

if [ ! -x "$WORK" ] || [ ! -x "$GRAFT" ]; then
    echo "$FAMILY matrix: build the compat_tools target first ($WORK)" >&2
    exit 2
fi

# Python tools ignore SIGINT when started in the background by a shell (they
# inherit SIG_IGN); this resets it so that they print their summary on it,
# and unbuffers their output (the "attached" line is awaited).
SIGINT_DFL=(/usr/bin/python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.environ["PYTHONUNBUFFERED"] = "1"; os.execvp(sys.argv[1], sys.argv[1:])')

matrix() { echo "MATRIX $FAMILY $*"; }

# uprobe_events must hold after a graft run what it held before: nothing of
# graft's ever reaches the kernel.
kernel_uprobes() { cat /sys/kernel/tracing/uprobe_events 2>/dev/null; }

# trace_side HOW(kernel|graft) READY_RE MODE N TOOL ARGS...: run_side
# (side_lib.sh), READY_RE being what the tool prints (stdout or stderr) once
# attached; bpftrace says "Attaching" a moment before it attaches. The tool's
# stdout, the workload's pid made PID and normalised by $FILTER, in
# $tmp/HOW.out.
trace_side() {
    local how=$1 ready_re=$2 mode=$3 n=$4 rc=0 wpid; shift 4
    SIDE_READY=$ready_re SIDE_SETTLE=1 run_side "$how" "$mode" "$n" "$@" || rc=1
    read -r wpid _ <"$tmp/$how.pid"
    [ -n "${MATRIX_RAW:-}" ] && cp "$tmp/$how.out" "$MATRIX_RAW.$how" && cp "$tmp/$how.err" "$MATRIX_RAW.$how.err"
    # the workload's pid (the same column on both sides) becomes PID
    sed -E "s/(^|[^0-9])$wpid([^0-9]|$)/\1PID\2/g" "$tmp/$how.out" | "$FILTER" >"$tmp/$how.norm"
    mv "$tmp/$how.norm" "$tmp/$how.out"
    return $rc
}

# case NAME EXPECT(pass|unsupported) FILTER READY_RE MODE N TOOL ARGS...
# EXPECT unsupported: graft must refuse it with a graft-compat line (the
# reason printed is the first such line) and not crash the target.
run_case() {
    local name=$1 expect=$2 ready_re=$4 mode=$5 n=$6
    FILTER=$3
    shift 6
    if [ ${#ONLY[@]} -gt 0 ] && ! printf '%s\n' "${ONLY[@]}" | grep -qx "$name"; then return; fi
    if [ $kernel_ok = 0 ]; then matrix "$name SKIP the kernel refuses bpf() here (no comparison)"; return; fi
    local before; before=$(kernel_uprobes)
    [ "$expect" = unsupported ] && local NO_LINKS=1   # refused: nothing gets installed
    trace_side kernel "$ready_re" "$mode" "$n" "$@"; local krc=$?
    trace_side graft "$ready_re" "$mode" "$n" "$@"; local grc=$?
    local after; after=$(kernel_uprobes)
    local why
    if [ "$before" != "$after" ]; then
        matrix "$name FAIL graft left a kernel uprobe_events entry: $after"; unexpected=1; return
    fi
    if [ "$expect" = unsupported ]; then
        # (bpftrace's feature probe of kprobe_multi links is refused on every run)
        why=$(grep '^graft-compat:' "$tmp/graft.err" | grep -v 'attach type 42' | head -1 | cut -c15-170)
        if [ -n "$why" ] && ! grep -qE "^target (hung|exited)" "$tmp/graft.err"; then
            matrix "$name UNSUPPORTED $why"
        else
            matrix "$name FAIL expected a refusal naming what is unsupported"; unexpected=1
        fi
        return
    fi
    if [ $krc != 0 ] || [ ! -s "$tmp/kernel.out" ]; then
        matrix "$name SKIP the kernel run failed: $(grep -v RLIMIT_MEMLOCK "$tmp/kernel.err" | head -1 | cut -c1-120)"
        return
    fi
    if [ $grc = 0 ] && cmp -s "$tmp/kernel.out" "$tmp/graft.out"; then
        matrix "$name PASS $(wc -l <"$tmp/graft.out") lines equal the kernel output"
    else
        why=$(grep -v RLIMIT_MEMLOCK "$tmp/graft.err" | grep -m1 -iE 'graft-compat|error|hung|exited' | cut -c1-140)
        matrix "$name FAIL ${why:-output differs from the kernel output}"
        # what differed, for the log (stderr: the MATRIX lines stay one per case)
        { diff "$tmp/kernel.out" "$tmp/graft.out" | head -12
          [ -n "${MATRIX_VERBOSE:-}" ] && cat "$tmp/graft.err"; } | sed "s/^/  $name: /" >&2
        unexpected=1
    fi
}

# bench_overhead NAME ROUNDS READY_RE TOOL ARGS...: trace_work calls 200000
# untraced, traced by the tool on the kernel and on graft, ROUNDS interleaved
# rounds; the medians' slowdowns as BENCH compat_NAME_{graft,kernel}_overhead_pct.
bench_overhead() {
    local name=$1 rounds=$2 ready_re=$3; shift 3
    [ $kernel_ok = 1 ] || return 0
    median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
    pct() { awk -v t="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", (t - b) * 100.0 / b; else print "nan" }'; }
    FILTER=cat
    : >"$tmp/plain.all"; : >"$tmp/kernel.all"; : >"$tmp/graft.all"
    for _ in $(seq "$rounds"); do
        "$WORK" calls 200000 <<<go 2>&1 >/dev/null | sed -n 's/^elapsed_ns //p' >>"$tmp/plain.all"
        for how in kernel graft; do
            trace_side $how "$ready_re" calls 200000 "$@" >/dev/null 2>&1
            sed -n 's/^elapsed_ns //p' "$tmp/w.err" >>"$tmp/$how.all"
        done
    done
    local base; base=$(median <"$tmp/plain.all")
    echo "BENCH compat_${name}_graft_overhead_pct $(pct "$(median <"$tmp/graft.all")" "$base") pct"
    echo "BENCH compat_${name}_kernel_overhead_pct $(pct "$(median <"$tmp/kernel.all")" "$base") pct"
}
