# side_lib.sh - sourced by the compat tests and tool matrices
# (test_compat.sh, matrix/libbpf_tools.sh, matrix/trace_lib.sh): one side of
# a kernel-versus-graft comparison of a tracing tool on a workload.
#
# The caller sets BUILD (the build tree), SIDE_NAME (its registry's suffix)
# and WORK (the workload: WORK MODE N prints "ready", waits for a line on
# stdin, runs, prints "elapsed_ns T" on stderr and exits 0). This file sets
# GRAFT, a registry of the caller's own, the agent and compat libraries,
# $tmp (removed at exit with every process started and the registry's
# shared memory: tests/common/tprocs.sh) and kernel_ok (0 when the kernel
# refuses bpf() here).
set -uo pipefail
GRAFT=$BUILD/bin/graft
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.$SIDE_NAME.$$   # under ctest: the run's own prefix
export GRAFT_AGENT=$BUILD/lib/libgraft-agent.so
export GRAFT_COMPAT_LIB=$BUILD/lib/libgraft-compat.so
. "$(dirname "${BASH_SOURCE[0]}")/../common/tprocs.sh"
tmp=$(mktemp -d)
side_cleanup() {
    tp_stop_all
    rm -rf "$tmp"
    tp_registry_remove
}
trap side_cleanup EXIT

# Syscall tracepoints need tracefs (libbpf reads event ids from it).
if [ ! -d /sys/kernel/tracing/events/syscalls ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
fi
kernel_ok=1
bpftool prog list >/dev/null 2>"$tmp/bpferr" || kernel_ok=0

# side_hooks_wait PID TPID: until the agent in PID has installed every link
# in the registry (60 s). No link yet means the tool has not registered them
# yet, not that there are none: only a case that registers none (timers,
# BEGIN/END, a refused probe) says so with NO_LINKS=1. Returns at once when
# the tool TPID has exited (the caller judges that); 1 when a hook failed or
# the time ran out. LINKS_IN_CHILDREN=1: return once links are registered.
side_hooks_wait() {
    local out n last=-1 stable=0
    for _ in $(seq 3000); do
        kill -0 "$2" 2>/dev/null || return 0
        out=$("$GRAFT" list 2>/dev/null)
        n=$(sed -n 's/^links: \([0-9]*\)$/\1/p' <<<"$out")
        # A tool may still be attaching (bpftrace says "Attaching" first, then
        # adds its probes one by one): the count must hold still for 0.5 s
        # before "all installed" means all of the tool's links.
        if [ "${n:-0}" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=${n:-0}; fi
        if [ $stable -lt 25 ]; then sleep 0.02; continue; fi
        if grep -qE "^  $1 .*hooks [0-9]+ installed, [1-9][0-9]* failed" <<<"$out"; then
            echo "graft's agent failed to install a hook:"; echo "$out"; return 1
        fi
        # LINKS_IN_CHILDREN=1: the links are for processes the workload
        # starts (bash under script): registered is all there is to wait for
        [ "${LINKS_IN_CHILDREN:-0}" = 1 ] && [ "${n:-0}" != 0 ] && return 0
        if [ "${n:-0}" = 0 ]; then
            [ "${NO_LINKS:-0}" = 1 ] && return 0
        elif grep -qE "^  $1 .*hooks $n installed, 0 failed" <<<"$out"; then
            return 0
        fi
        sleep 0.02
    done
    echo "graft's agent in $1 did not install the links:"; echo "$out"
    return 1
}

# side_attached HOW WPID TPID: has the tool attached? SIDE_READY_FN (a
# function called with the same arguments) decides when set; else a line
# matching SIDE_READY on the tool's stdout or stderr, or when SIDE_READY is
# empty, anything on its stdout (tools that print a header once attached:
# run them line-buffered, stdbuf -oL).
side_attached() {
    if [ -n "${SIDE_READY_FN:-}" ]; then
        "$SIDE_READY_FN" "$@" || return 1
    elif [ -n "${SIDE_READY:-}" ]; then
        grep -qE "$SIDE_READY" "$tmp/t.out" "$tmp/t.err" 2>/dev/null || return 1
    else
        [ -s "$tmp/t.out" ] || return 1
    fi
    # READY_FD: a tool that says nothing once attached (BCC's profile) has
    # then opened its perf events: on the kernel, wait for that fd (on graft
    # side_hooks_wait waits for the links)
    if [ "$1" = kernel ] && [ -n "${READY_FD:-}" ]; then
        ls -l "/proc/$3/fd" 2>/dev/null | grep -q "$READY_FD" || return 1
    fi
}

# side_fail WHY: the run failed; the first reason is SIDE_WHY, every reason
# a line of the tool's stderr copy.
side_fail() {
    [ -n "$SIDE_WHY" ] || SIDE_WHY=$1
    echo "$1" >>"$tmp/t.err"
    ok=0
}

# run_side HOW(plain|kernel|graft) MODE N [TOOL ARGS...]
# The workload (WORK MODE N; under `graft start` for graft) starts and says
# ready; the tool (under `graft compat` for graft) starts; once it has
# attached (side_attached; then SIDE_SETTLE seconds; for graft, until the
# agent has installed every link) the workload runs and must exit
# 0 within 30 s. Then, with SIDE_STOP=int (the default), the tool gets
# SIGINT after POST_WAIT seconds (0.5; a tool printing every interval: one
# more than the workload took); with SIDE_STOP=exit it ends by itself and
# must exit 0. Either must end within 30 s. {PID} and {W} in the arguments
# become the workload's pid and path. HOW plain runs the workload alone.
# Results: the tool's stdout and stderr in $tmp/HOW.out and $tmp/HOW.err,
# the workload's elapsed ns in $tmp/HOW.ns, its "pid ppid" in $tmp/HOW.pid;
# 0 if all went well, else 1 with the first reason in SIDE_WHY.
run_side() {
    local how=$1 mode=$2 n=$3 ok=1; shift 3
    SIDE_WHY=
    rm -f "$tmp/in" "$tmp/w.out" "$tmp/w.err" "$tmp/t.out" "$tmp/t.err"
    : >"$tmp/t.out"; : >"$tmp/t.err"
    mkfifo "$tmp/in"
    if [ "$how" = graft ]; then
        "$GRAFT" start -- "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>"$tmp/w.err" &
    else
        "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>"$tmp/w.err" &
    fi
    local wpid=$!
    tp_track "$wpid"
    exec 7>"$tmp/in"
    # Generous: a loaded machine may take seconds to start a process.
    for _ in $(seq 3000); do grep -q ready "$tmp/w.out" 2>/dev/null && break; sleep 0.02; done
    grep -q ready "$tmp/w.out" 2>/dev/null || side_fail "the workload never said ready"
    local wppid
    wppid=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$wpid/stat" 2>/dev/null)
    echo "$wpid ${wppid:-0}" >"$tmp/$how.pid"
    local tpid=
    if [ $# -gt 0 ] && [ $ok = 1 ]; then
        local args=("${@//\{W\}/$WORK}")
        args=("${args[@]//\{PID\}/$wpid}")
        if [ "$how" = graft ]; then
            "$GRAFT" compat -- "${args[@]}" >"$tmp/t.out" 2>>"$tmp/t.err" &
        else
            "${args[@]}" >"$tmp/t.out" 2>>"$tmp/t.err" &
        fi
        tpid=$!
        tp_track "$tpid"
        for _ in $(seq 3000); do
            side_attached "$how" "$wpid" "$tpid" && break
            kill -0 "$tpid" 2>/dev/null || break
            sleep 0.02
        done
        side_attached "$how" "$wpid" "$tpid" || side_fail "the tool never showed it had attached"
        [ "${SIDE_STOP:-int}" = exit ] || kill -0 "$tpid" 2>/dev/null || side_fail "the tool exited early"
        sleep "${SIDE_SETTLE:-0}"
        if [ $ok = 1 ] && [ "$how" = graft ]; then
            side_hooks_wait "$wpid" "$tpid" >>"$tmp/t.err" || side_fail "graft's agent did not install the links"
        fi
    fi
    echo go >&7
    exec 7>&-
    local wrc=0
    for _ in $(seq 1500); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.02; done
    kill -0 "$wpid" 2>/dev/null && { kill -9 "$wpid"; side_fail "target hung"; }
    wait "$wpid" || wrc=$?
    [ $wrc = 0 ] || side_fail "target exited with $wrc"
    if [ -n "$tpid" ]; then
        if [ "${SIDE_STOP:-int}" = int ]; then
            sleep "${POST_WAIT:-0.5}"   # the last records reach the tool's buffers
            kill -INT "$tpid" 2>/dev/null
        fi
        for _ in $(seq 1500); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.02; done
        if kill -0 "$tpid" 2>/dev/null; then
            # the tool itself (under graft: graft compat's child, so that
            # graft compat removes what it registered), then what started it
            local kids; kids=$(cat /proc/$tpid/task/$tpid/children 2>/dev/null)
            [ -n "$kids" ] && kill -9 $kids 2>/dev/null
            sleep 0.5
            kill -9 "$tpid" 2>/dev/null
            side_fail "tool hung (SIDE_STOP=${SIDE_STOP:-int})"
        fi
        local trc=0
        wait "$tpid" 2>/dev/null || trc=$?
        [ "${SIDE_STOP:-int}" = int ] || [ $trc = 0 ] || side_fail "the tool exited with $trc"
    fi
    cp "$tmp/t.out" "$tmp/$how.out"; cp "$tmp/t.err" "$tmp/$how.err"
    sed -n 's/^elapsed_ns //p' "$tmp/w.err" >"$tmp/$how.ns"
    [ $ok = 1 ]
}
