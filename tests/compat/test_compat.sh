#!/usr/bin/env bash
# Unmodified libbpf tools against the kernel and against graft, compared.
#
# For each tool: the workload (compat_work MODE N) starts and waits; the
# tool attaches to it (-p PID); the workload runs a fixed number of calls
# and exits; the tool prints what it saw. Run once plainly with the tool on
# the kernel, once with the workload under `graft start` and the tool under
# `graft compat` (libgraft-compat.so). The two outputs must be identical
# (after replacing the workload's pid, and sorting for per-CPU buffers),
# and the graft run must leave nothing in the registry.
#
# Usage: test_compat.sh BUILD_DIR TESTS_BINARY_DIR   (also sourced by bench/compat/run.sh)
set -uo pipefail
BUILD=$1
HERE=$2
GRAFT=$BUILD/bin/graft
WORK=$HERE/compat_work
TOOLS=$HERE/tools
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.compat.$$   # under ctest: the run's own prefix
export GRAFT_AGENT=$BUILD/lib/libgraft-agent.so
export GRAFT_COMPAT_LIB=$BUILD/lib/libgraft-compat.so
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
    "$GRAFT" unload --all >/dev/null 2>&1   # maps' shm objects too
    rm -f "/dev/shm$GRAFT_REGISTRY" "/dev/shm$GRAFT_REGISTRY".*
}
trap cleanup EXIT

compat() { "$GRAFT" compat -- "$@"; }

# Syscall tracepoints need tracefs (libbpf reads event ids from it).
if [ ! -d /sys/kernel/tracing/events/syscalls ] && [ ! -d /sys/kernel/debug/tracing/events/syscalls ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
fi
have_tracefs=0
[ -d /sys/kernel/tracing/events/syscalls ] || [ -d /sys/kernel/debug/tracing/events/syscalls ] && have_tracefs=1

kernel_ok=1
if ! bpftool prog list >/dev/null 2>"$tmp/bpferr"; then
    if grep -qi "not permitted" "$tmp/bpferr"; then
        echo "SKIP: kernel half: bpf() returns EPERM"; kernel_ok=0
    fi
fi

# wait_hooks PID: until the agent in PID has installed every link (or fail).
wait_hooks() {
    local out n
    for _ in $(seq 3000); do
        out=$("$GRAFT" list 2>/dev/null)
        n=$(sed -n 's/^links: \([0-9]*\)$/\1/p' <<<"$out")
        if grep -qE "^  $1 .*hooks [0-9]+ installed, [1-9][0-9]* failed" <<<"$out"; then
            echo "agent failed to install a hook:"; echo "$out"; return 1
        fi
        if [ -n "$n" ] && [ "$n" -gt 0 ] && grep -qE "^  $1 .*hooks $n installed, 0 failed" <<<"$out"; then
            return 0
        fi
        sleep 0.02
    done
    echo "agent in $1 did not install the links:"; echo "$out"; return 1
}

# run_tool HOW(kernel|graft) TOOL MODE N [TOOL ARGS...]: output in $tmp/HOW.out,
# the workload's elapsed ns in $tmp/HOW.ns. {W} in tool args = workload path.
run_tool() {
    local how=$1 tool=$2 mode=$3 n=$4; shift 4
    local args=("${@//\{W\}/$WORK}")
    # The waits below read these files: the previous run's copies (which
    # say "ready" and "attached") must not answer for this one, or under
    # load the workload runs before the tool has attached.
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
    # Generous: a loaded machine may take seconds to start a process.
    for _ in $(seq 3000); do grep -q ready "$tmp/w.out" 2>/dev/null && break; sleep 0.02; done
    grep -q ready "$tmp/w.out" 2>/dev/null || { echo "--- $tool ($how): the workload never said ready"; ok=0; }
    if [ "$how" = graft ]; then
        compat "$TOOLS/$tool" -p "$wpid" "${args[@]}" >"$tmp/t.out" 2>"$tmp/t.err" &
    else
        "$TOOLS/$tool" -p "$wpid" "${args[@]}" >"$tmp/t.out" 2>"$tmp/t.err" &
    fi
    local tpid=$!
    pids+=("$tpid")
    for _ in $(seq 3000); do
        grep -q attached "$tmp/t.err" 2>/dev/null && break
        kill -0 "$tpid" 2>/dev/null || break
        sleep 0.02
    done
    grep -q attached "$tmp/t.err" 2>/dev/null || { echo "--- $tool ($how): the tool never said attached"; ok=0; }
    if [ $ok = 1 ] && [ "$how" = graft ]; then wait_hooks "$wpid" || ok=0; fi
    echo go >&7
    exec 7>&-
    wait "$wpid"
    local trc=0
    wait "$tpid" || trc=$?
    [ $trc = 0 ] || ok=0
    # The workload's pid appears only in its file names (compat-open-PID-...);
    # replacing it anywhere else would also rewrite payloads that happen to
    # hold the same digits (event-6139), in one run and not the other.
    sed "s/compat-open-$wpid-/compat-open-PID-/g" "$tmp/t.out" >"$tmp/$how.out"
    sed -n 's/^elapsed_ns //p' "$tmp/w.err" >"$tmp/$how.ns"
    if [ $ok = 0 ]; then
        echo "--- $tool ($how) failed (rc $trc); stderr:"; sed 's/^/    /' "$tmp/t.err" | head -40
        return 1
    fi
    return 0
}

registry_empty() {
    local out
    out=$("$GRAFT" list 2>/dev/null)
    grep -q "^programs: 0" <<<"$out" && grep -q "^maps: 0" <<<"$out" && grep -q "^links: 0" <<<"$out"
}

# name mode N sort(0/1) [tool args]
TESTS=(
    "mallocs malloc 8000 0"
    "readline readline 200 1"
    "funclat funclat 2000 0"
    "tailcalls funclat 2000 0"
    "sslsniff ssl 20 1"
    "opensnoop open 200 0 -f compat-open-"
    "syscount syscalls 1000 0"
    "rawsyscount rawsys 300 0"
    "usdt usdt 1000 0 -b {W}"
    "rbstream emit 2000 0"
    "stacks stack 300 0"      # bpf_get_stackid: user stacks by frame pointers, as the kernel's
    "cpuprof spin 300 0"      # perf_event sampling of the target (cpu-clock, 499 Hz, pid = target)
    "taskinfo emit 100 0"     # bpf_get_current_task + CO-RE task fields; frozen .rodata prunes dead code
    "taskinfo emit 100 0 -b"  # bpf_get_current_task_btf, a direct load
    "perfstream emit 500 1"   # 500 x 48-byte records fit one buffer: graft produces faster than any reader drains
)

[ "${COMPAT_SOURCE_ONLY:-0}" = 1 ] && return 0

pass=0; fails=0; skipped=0
for t in "${TESTS[@]}"; do
    set -- $t
    name=$1 mode=$2 n=$3 sorted=$4; shift 4
    if { [ "$name" = opensnoop ] || [ "$name" = rawsyscount ]; } && [ $have_tracefs = 0 ]; then
        echo "SKIP: $name: no tracefs with syscall events"; skipped=$((skipped + 1)); continue
    fi
    ok=1
    run_tool graft "$name" "$mode" "$n" "$@" || ok=0
    [ -s "$tmp/graft.out" ] || { [ $ok = 1 ] && echo "--- $name: graft run printed nothing"; ok=0; }
    if [ $ok = 1 ] && ! registry_empty; then
        echo "--- $name: the tool left records in the registry:"; "$GRAFT" list; ok=0
    fi
    if [ $kernel_ok = 1 ] && [ $ok = 1 ]; then
        run_tool kernel "$name" "$mode" "$n" "$@" || ok=0
        if [ $ok = 1 ]; then
            if [ "$sorted" = 1 ]; then
                sort "$tmp/kernel.out" -o "$tmp/kernel.out"; sort "$tmp/graft.out" -o "$tmp/graft.out"
            fi
            if ! cmp -s "$tmp/kernel.out" "$tmp/graft.out"; then
                echo "--- $name: kernel and graft outputs differ:"
                diff "$tmp/kernel.out" "$tmp/graft.out" | head -20
                ok=0
            fi
        fi
    fi
    if [ $ok = 1 ]; then
        pass=$((pass + 1)); echo "ok: $name ($(wc -l <"$tmp/graft.out") lines identical: $(head -1 "$tmp/graft.out"))"
    else
        fails=$((fails + 1)); echo "FAIL: $name"
    fi
done

echo "== a prog array is bound to one kind of program, as in the kernel"
kern=$("$HERE/tailmix" 2>&1); krc=$?
out=$(compat "$HERE/tailmix" 2>/dev/null); rc=$?
if [ $krc = 0 ] && [ $rc = 0 ] && [ "$out" = "$kern" ] && grep -q "socket filter into the kprobe's prog array: EINVAL" <<<"$out"; then
    pass=$((pass + 1)); echo "ok: tailmix (a socket filter refused in a kprobe's prog array, as by the kernel)"
else
    fails=$((fails + 1)); echo "FAIL: tailmix"; echo "--- kernel (rc $krc):"; echo "$kern"; echo "--- graft (rc $rc):"; echo "$out"
fi

# Debian's libbpf-tools (prebuilt with their own libbpf and embedded BPF
# objects), as their project builds them. They run until SIGINT and print
# the fd the workload got, which graft's agent (its own descriptors in the
# target) shifts: compare command, errno and path.
# sys_tool HOW TOOL MODE N: output in $tmp/HOW.sys
sys_tool() {
    local how=$1 tool=$2 mode=$3 n=$4 ok=1
    rm -f "$tmp/in" "$tmp/w.out" "$tmp/t.out" "$tmp/t.err"
    mkfifo "$tmp/in"
    if [ "$how" = graft ]; then
        "$GRAFT" start -- "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>/dev/null &
    else
        "$WORK" "$mode" "$n" <"$tmp/in" >"$tmp/w.out" 2>/dev/null &
    fi
    local wpid=$!; pids+=("$wpid")
    exec 7>"$tmp/in"
    for _ in $(seq 3000); do grep -q ready "$tmp/w.out" 2>/dev/null && break; sleep 0.02; done
    if [ "$how" = graft ]; then "$GRAFT" compat -- "$tool" -p "$wpid" >"$tmp/t.out" 2>"$tmp/t.err" &
    else "$tool" -p "$wpid" >"$tmp/t.out" 2>"$tmp/t.err" & fi
    local tpid=$!; pids+=("$tpid")
    if [ "$how" = graft ]; then
        wait_hooks "$wpid" || ok=0
    else   # the kernel's links and the tool's perf buffer, all of them:
        # opensnoop attaches enter and exit of open and openat one by one
        # (the event is sent at the exit), then opens one perf event per
        # online CPU for its perf buffer; an event sent before that is
        # dropped. Going on after the first two links, as this did, let a
        # loaded machine run the workload too early: the kernel run then
        # "saw nothing". Each tracepoint link holds a perf event too.
        local links=0 ev fds ncpu
        ncpu=$(getconf _NPROCESSORS_ONLN)
        for ev in open openat; do
            [ -d /sys/kernel/tracing/events/syscalls/sys_enter_$ev ] ||
                [ -d /sys/kernel/debug/tracing/events/syscalls/sys_enter_$ev ] && links=$((links + 2))
        done
        for _ in $(seq 1500); do
            fds=$(ls -l /proc/$tpid/fd 2>/dev/null)
            [ "$(grep -c bpf_link <<<"$fds")" -ge "$links" ] &&
                [ "$(grep -c 'perf_event\]' <<<"$fds")" -ge $((links + ncpu)) ] && break
            kill -0 "$tpid" 2>/dev/null || break; sleep 0.02
        done
    fi
    echo go >&7; exec 7>&-
    wait "$wpid"
    sleep 0.5   # the last records reach the tool's perf buffer
    kill -INT "$tpid" 2>/dev/null; wait "$tpid"
    awk 'NR > 1 { print $2, $4, $5 }' "$tmp/t.out" | sed "s/compat-open-$wpid-/compat-open-PID-/" >"$tmp/$how.sys"
    if [ $ok = 0 ] || [ ! -s "$tmp/$how.sys" ]; then
        echo "--- $tool ($how): nothing seen; stderr:"; head -20 "$tmp/t.err"; return 1
    fi
}
if [ -x /usr/sbin/opensnoop ] && [ $have_tracefs = 1 ]; then
    echo "== Debian libbpf-tools (prebuilt): opensnoop"
    sys_ok=1
    sys_tool graft /usr/sbin/opensnoop open 100 || sys_ok=0
    if [ $sys_ok = 1 ] && [ "$(grep -c compat-open-PID "$tmp/graft.sys")" != 100 ]; then
        echo "--- opensnoop (graft): $(wc -l <"$tmp/graft.sys") lines, not the 100 opens"; sys_ok=0
    fi
    registry_empty || { echo "--- opensnoop left records in the registry"; sys_ok=0; }
    if [ $sys_ok = 1 ] && [ $kernel_ok = 1 ]; then
        sys_tool kernel /usr/sbin/opensnoop open 100 || sys_ok=0
        grep compat-open-PID "$tmp/kernel.sys" >"$tmp/k"; grep compat-open-PID "$tmp/graft.sys" >"$tmp/g"
        cmp -s "$tmp/k" "$tmp/g" || { echo "--- opensnoop: kernel and graft differ"; diff "$tmp/k" "$tmp/g" | head; sys_ok=0; }
    fi
    if [ $sys_ok = 1 ]; then pass=$((pass + 1)); echo "ok: Debian opensnoop (100 opens, as on the kernel)"
    else fails=$((fails + 1)); echo "FAIL: Debian opensnoop"; fi
else
    echo "SKIP: Debian libbpf-tools' opensnoop (package libbpf-tools) or tracefs missing"; skipped=$((skipped + 1))
fi

echo "== descriptors: libbpf >= 1.4's placeholder dup3, F_DUPFD_CLOEXEC, close_range, fork, exec; direct bpf syscalls"
fd_ok=1
if [ $kernel_ok = 1 ]; then
    kern=$("$HERE/fdreplay" 2>"$tmp/fdk.err"); krc=$?
    if [ $krc != 0 ] || [ "$kern" != "$(cat "$SRC/fdreplay.expected")" ]; then
        echo "--- fdreplay on the kernel (rc $krc) differs from fdreplay.expected:"
        diff <(echo "$kern") "$SRC/fdreplay.expected" | head; fd_ok=0
    fi
fi
out=$(compat "$HERE/fdreplay" 2>"$tmp/fdg.err"); rc=$?
if [ $rc != 0 ] || [ "$out" != "$(cat "$SRC/fdreplay.expected")" ] || ! grep -q "^backend: graft" "$tmp/fdg.err"; then
    echo "--- fdreplay under graft compat (rc $rc):"; diff <(echo "$out") "$SRC/fdreplay.expected" | head -20
    cat "$tmp/fdg.err" | head -5; fd_ok=0
fi
if [ $fd_ok = 1 ]; then pass=$((pass + 1)); echo "ok: fdreplay (descriptor copies name the same object; direct bpf syscalls reach graft)"
else fails=$((fails + 1)); echo "FAIL: fdreplay"; fi

echo "== errors: what graft does not support fails with the kernel's errno and says so"
err_ok=1
out=$(compat bpftool prog list 2>&1); rc=$?
if [ $rc = 0 ] || ! grep -q "graft-compat: bpf(BPF_PROG_GET_NEXT_ID" <<<"$out"; then
    echo "--- bpftool prog list under compat: rc $rc, output:"; echo "$out" | head; err_ok=0
fi
out=$(compat bpftool map create /sys/fs/bpf/compat_x type sockmap key 4 value 4 entries 1 name x 2>&1); rc=$?
if [ $rc = 0 ] || ! grep -q "map type 15 is not supported" <<<"$out"; then
    echo "--- unsupported map type: rc $rc, output:"; echo "$out" | head; err_ok=0
fi
# A cgroup array is created (tools make one for an optional -c filter);
# pinning it is what fails here; so for a stack trace map. Build-id stacks
# fail with their own line.
out=$(compat bpftool map create /sys/fs/bpf/compat_cg type cgroup_array key 4 value 4 entries 1 name cg 2>&1); rc=$?
if [ $rc = 0 ] || grep -q "map type 8" <<<"$out" || ! grep -q "graft-compat: bpf(BPF_OBJ_PIN" <<<"$out"; then
    echo "--- cgroup array: rc $rc, output:"; echo "$out" | head; err_ok=0
fi
out=$(compat bpftool map create /sys/fs/bpf/compat_st type stack_trace key 4 value 64 entries 1 name st 2>&1); rc=$?
if [ $rc = 0 ] || grep -q "map type 7" <<<"$out" || ! grep -q "graft-compat: bpf(BPF_OBJ_PIN" <<<"$out"; then
    echo "--- stack trace map: rc $rc, output:"; echo "$out" | head; err_ok=0
fi
out=$(compat bpftool map create /sys/fs/bpf/compat_sb type stack_trace key 4 value 64 entries 1 name sb flags 0x20 2>&1); rc=$?
if [ $rc = 0 ] || ! grep -q "stack trace map with build ids (BPF_F_STACK_BUILD_ID): not supported" <<<"$out"; then
    echo "--- stack trace map with build ids: rc $rc, output:"; echo "$out" | head; err_ok=0
fi
if [ $err_ok = 1 ]; then pass=$((pass + 1)); echo "ok: unsupported commands and map types"; else fails=$((fails + 1)); echo "FAIL: errors"; fi
echo "== rights: a tool's programs are observe-only unless graft compat --allow grants more"
rights_ok=1
out=$(compat "$TOOLS/sigwork" -p $$ 2>&1); rc=$?
if [ $rc = 0 ] || ! grep -q "sigwork: load failed: Operation not permitted" <<<"$out" ||
   ! grep -q "needs the right 'signal'.*\`graft compat --allow=signal\`" <<<"$out" ||
   grep -q "EIM class" <<<"$out"; then
    echo "--- bpf_send_signal without --allow: rc $rc, output:"; echo "$out" | head; rights_ok=0
fi
out=$("$GRAFT" compat --allow signal -- "$TOOLS/sigwork" -p $$ 2>&1); rc=$?
if [ $rc != 0 ] || ! grep -q "^attached" <<<"$out" || ! grep -q "graft compat: WARNING: --allow signal" <<<"$out"; then
    echo "--- bpf_send_signal with --allow signal: rc $rc, output:"; echo "$out" | head; rights_ok=0
fi
out=$("$GRAFT" compat --allow write-user -- "$TOOLS/sigwork" -p $$ 2>&1); rc=$?
if [ $rc = 0 ] || ! grep -q "needs the right 'signal'" <<<"$out"; then
    echo "--- bpf_send_signal with only --allow write-user: rc $rc, output:"; echo "$out" | head; rights_ok=0
fi
out=$(GRAFT_COMPAT_ALLOW=signal "$GRAFT" compat -- "$TOOLS/sigwork" -p $$ 2>&1); rc=$?
if [ $rc = 0 ]; then
    echo "--- GRAFT_COMPAT_ALLOW from the caller's environment granted a right:"; echo "$out" | head; rights_ok=0
fi
if [ $rights_ok = 1 ]; then pass=$((pass + 1)); echo "ok: rights (EPERM and the flag to use; granted by --allow)"
else fails=$((fails + 1)); echo "FAIL: rights"; fi
registry_empty || { echo "FAIL: registry not empty at the end"; fails=$((fails + 1)); }

echo "compat: $pass passed, $fails failed, $skipped skipped"
[ $fails = 0 ]
