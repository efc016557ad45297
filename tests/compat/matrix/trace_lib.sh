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
set -uo pipefail
GRAFT=$BUILD/bin/graft
WORK=$BUILD/tests/compat/trace_work
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.tmatrix.$$   # under ctest: the run's own prefix
export GRAFT_AGENT=$BUILD/lib/libgraft-agent.so
export GRAFT_COMPAT_LIB=$BUILD/lib/libgraft-compat.so
tmp=$(mktemp -d)
pids=()
unexpected=0
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
    "$GRAFT" unload --all >/dev/null 2>&1
    rm -f "/dev/shm$GRAFT_REGISTRY" "/dev/shm$GRAFT_REGISTRY".*
}
trap cleanup EXIT

if [ ! -x "$WORK" ] || [ ! -x "$GRAFT" ]; then
    echo "$FAMILY matrix: build the compat_tools target first ($WORK)" >&2
    exit 2
fi
if [ ! -d /sys/kernel/tracing/events/syscalls ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
fi
kernel_ok=1
bpftool prog list >/dev/null 2>&1 || kernel_ok=0

# Python tools ignore SIGINT when started in the background by a shell (they
# inherit SIG_IGN); this resets it so that they print their summary on it,
# and unbuffers their output (the "attached" line is awaited).
SIGINT_DFL=(/usr/bin/python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.environ["PYTHONUNBUFFERED"] = "1"; os.execvp(sys.argv[1], sys.argv[1:])')

matrix() { echo "MATRIX $FAMILY $*"; }

# uprobe_events must hold after a graft run what it held before: nothing of
# graft's ever reaches the kernel.
kernel_uprobes() { cat /sys/kernel/tracing/uprobe_events 2>/dev/null; }

# run_side HOW(kernel|graft) READY_RE MODE N TOOL ARGS...: normalised stdout
# in $tmp/HOW.out, stderr in $tmp/HOW.err. {PID} and {W} in the arguments
# become the workload's pid and path. READY_RE: what the tool prints (stdout
# or stderr) once attached. 0 if both the tool and the workload ended well.
run_side() {
    local how=$1 ready_re=$2 mode=$3 n=$4; shift 4
    local args=("${@//\{W\}/$WORK}")
    rm -f "$tmp/in" "$tmp/w.out" "$tmp/w.err" "$tmp/t.out" "$tmp/t.err"
    mkfifo "$tmp/in"
    if [ "$how" = graft ]; then
        "$GRAFT" start -- "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>"$tmp/w.err" &
    else
        "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>"$tmp/w.err" &
    fi
    local wpid=$!
    pids+=("$wpid")
    exec 7>"$tmp/in"
    local ok=1
    for _ in $(seq 750); do grep -q ready "$tmp/w.out" 2>/dev/null && break; sleep 0.02; done
    args=("${args[@]//\{PID\}/$wpid}")
    if [ "$how" = graft ]; then
        "$GRAFT" compat -- "${args[@]}" >"$tmp/t.out" 2>"$tmp/t.err" &
    else
        "${args[@]}" >"$tmp/t.out" 2>"$tmp/t.err" &
    fi
    local tpid=$!
    pids+=("$tpid")
    for _ in $(seq 1500); do
        grep -qE "$ready_re" "$tmp/t.out" "$tmp/t.err" 2>/dev/null && break
        kill -0 "$tpid" 2>/dev/null || break
        sleep 0.02
    done
    grep -qE "$ready_re" "$tmp/t.out" "$tmp/t.err" 2>/dev/null || ok=0
    # READY_FD: a tool that says nothing once attached (BCC's profile) has
    # then opened its perf events (on graft the links are awaited below)
    if [ "$how" = kernel ] && [ -n "${READY_FD:-}" ]; then
        for _ in $(seq 1500); do ls -l "/proc/$tpid/fd" 2>/dev/null | grep -q "$READY_FD" && break; sleep 0.02; done
    fi
    sleep 1   # bpftrace says "Attaching" before it attaches
    # graft: until the target's agent has installed every link (a loaded
    # machine may take seconds)
    if [ "$how" = graft ]; then
        local out nl
        # No link yet means the tool has not registered them yet, not that
        # there are none: only a case that registers none (timers, BEGIN/END,
        # a refused probe) says so with NO_LINKS=1. Breaking on 0 let the
        # workload run before a slow bpftrace attached (empty output).
        for _ in $(seq 750); do
            kill -0 "$tpid" 2>/dev/null || break
            out=$("$GRAFT" list 2>/dev/null)
            nl=$(sed -n 's/^links: \([0-9]*\)$/\1/p' <<<"$out")
            if [ "${nl:-0}" = 0 ]; then
                [ "${NO_LINKS:-0}" = 1 ] && break
            elif grep -qE "^  $wpid .*hooks $nl installed, 0 failed" <<<"$out"; then
                break
            fi
            sleep 0.02
        done
    fi
    echo go >&7
    exec 7>&-
    local wrc=0
    for _ in $(seq 500); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.02; done
    kill -0 "$wpid" 2>/dev/null && { ok=0; kill -9 "$wpid"; echo "target hung" >>"$tmp/t.err"; }
    wait "$wpid" || wrc=$?
    [ $wrc = 0 ] || { ok=0; echo "target exited with $wrc" >>"$tmp/t.err"; }
    sleep "${POST_WAIT:-0.5}"   # a tool printing every interval: one more than the workload took
    kill -INT "$tpid" 2>/dev/null
    # (bpftrace detaching from many kernel tracepoints on a loaded machine is slow)
    for _ in $(seq 1500); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.02; done
    if kill -0 "$tpid" 2>/dev/null; then
        # the tool itself (under graft: graft compat's child, so that graft
        # compat removes what it registered), then what started it
        local kids; kids=$(cat /proc/$tpid/task/$tpid/children 2>/dev/null)
        [ -n "$kids" ] && kill -9 $kids 2>/dev/null
        sleep 0.5
        kill -9 "$tpid" 2>/dev/null
        ok=0; echo "tool hung after SIGINT" >>"$tmp/t.err"
    fi
    wait "$tpid" 2>/dev/null
    cp "$tmp/t.err" "$tmp/$how.err"
    [ -n "${MATRIX_RAW:-}" ] && cp "$tmp/t.out" "$MATRIX_RAW.$how" && cp "$tmp/t.err" "$MATRIX_RAW.$how.err"
    # the workload's pid (the same column on both sides) becomes PID
    sed -E "s/(^|[^0-9])$wpid([^0-9]|$)/\1PID\2/g" "$tmp/t.out" | "$FILTER" >"$tmp/$how.out"
    return $((1 - ok))
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
    run_side kernel "$ready_re" "$mode" "$n" "$@"; local krc=$?
    run_side graft "$ready_re" "$mode" "$n" "$@"; local grc=$?
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
            run_side $how "$ready_re" calls 200000 "$@" >/dev/null 2>&1
            sed -n 's/^elapsed_ns //p' "$tmp/w.err" >>"$tmp/$how.all"
        done
    done
    local base; base=$(median <"$tmp/plain.all")
    echo "BENCH compat_${name}_graft_overhead_pct $(pct "$(median <"$tmp/graft.all")" "$base") pct"
    echo "BENCH compat_${name}_kernel_overhead_pct $(pct "$(median <"$tmp/kernel.all")" "$base") pct"
}
