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
WORK=$HERE/compat_work
TOOLS=$HERE/tools
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIDE_NAME=compat
. "$SRC/side_lib.sh"

compat() { "$GRAFT" compat -- "$@"; }

have_tracefs=0
[ -d /sys/kernel/tracing/events/syscalls ] || [ -d /sys/kernel/debug/tracing/events/syscalls ] && have_tracefs=1
[ $kernel_ok = 1 ] || echo "SKIP: kernel half: bpf() refused: $(head -1 "$tmp/bpferr")"

# run_tool HOW(kernel|graft) TOOL MODE N [TOOL ARGS...]: run_side
# (side_lib.sh) of tests/compat/tools/TOOL -p PID ARGS, which says
# "attached" on stderr and exits 0 when the workload has. Output in
# $tmp/HOW.out (the workload's files' pid made PID), the workload's elapsed
# ns in $tmp/HOW.ns.
run_tool() {
    local how=$1 tool=$2 mode=$3 n=$4 wpid; shift 4
    if ! SIDE_READY=attached SIDE_STOP=exit run_side "$how" "$mode" "$n" "$TOOLS/$tool" -p "{PID}" "$@"; then
        echo "--- $tool ($how) failed: $SIDE_WHY; stderr:"; sed 's/^/    /' "$tmp/$how.err" | head -40
        return 1
    fi
    # The workload's pid appears only in its file names (compat-open-PID-...);
    # replacing it anywhere else would also rewrite payloads that happen to
    # hold the same digits (event-6139), in one run and not the other.
    read -r wpid _ <"$tmp/$how.pid"
    sed -i "s/compat-open-$wpid-/compat-open-PID-/g" "$tmp/$how.out"
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
    local how=$1 tool=$2 mode=$3 n=$4 wpid
    if ! SIDE_READY_FN=sys_attached run_side "$how" "$mode" "$n" "$tool" -p "{PID}"; then
        echo "--- $tool ($how): $SIDE_WHY; stderr:"; head -20 "$tmp/$how.err"; return 1
    fi
    read -r wpid _ <"$tmp/$how.pid"
    awk 'NR > 1 { print $2, $4, $5 }' "$tmp/$how.out" | sed "s/compat-open-$wpid-/compat-open-PID-/" >"$tmp/$how.sys"
    if [ ! -s "$tmp/$how.sys" ]; then
        echo "--- $tool ($how): nothing seen; stderr:"; head -20 "$tmp/$how.err"; return 1
    fi
}
# sys_attached HOW WPID TPID: graft's side is judged by its agent's hooks
# (run_side); the kernel's links and the tool's perf buffer, all of them:
# opensnoop attaches enter and exit of open and openat one by one (the
# event is sent at the exit), then opens one perf event per online CPU for
# its perf buffer; an event sent before that is dropped. Going on after the
# first two links let a loaded machine run the workload too early: the
# kernel run then "saw nothing". Each tracepoint link holds a perf event too.
sys_attached() {
    [ "$1" = graft ] && return 0
    local links=0 ev fds ncpu
    ncpu=$(getconf _NPROCESSORS_ONLN)
    for ev in open openat; do
        [ -d /sys/kernel/tracing/events/syscalls/sys_enter_$ev ] ||
            [ -d /sys/kernel/debug/tracing/events/syscalls/sys_enter_$ev ] && links=$((links + 2))
    done
    fds=$(ls -l /proc/$3/fd 2>/dev/null)
    [ "$(grep -c bpf_link <<<"$fds")" -ge "$links" ] &&
        [ "$(grep -c 'perf_event\]' <<<"$fds")" -ge $((links + ncpu)) ]
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
