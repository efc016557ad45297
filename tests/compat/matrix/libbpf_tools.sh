#!/usr/bin/env bash
# Debian's libbpf-tools (0.26, prebuilt, BPF objects embedded) against the
# kernel and against graft, side by side, one line per tool:
#
#   MATRIX libbpf-tools <tool> PASS|FAIL|KERNEL-ONLY|UNSUPPORTED|SKIP <reason>
#
# PASS: on the same workload (compat_work MODE N) graft's output equals the
# kernel's after the normaliser keeps what does not depend on pids, times,
# descriptors or latencies. KERNEL-ONLY: the tool traces the kernel itself
# (block I/O, scheduler, TCP, file systems, kernel functions): nothing for a
# userspace runtime to run. UNSUPPORTED: traces userspace or syscalls but
# needs something graft does not provide (the reason says what). SKIP: the
# tool or its workload is not installed here.
#
# Usage: libbpf_tools.sh BUILD_DIR [--bench] [TOOL...]
#   exit 1 when a tool expected to pass fails.
#   --bench: also time the representative tool (syscount) traced on the
#   kernel and on graft against the untraced workload (interleaved rounds,
#   medians) and print BENCH compat_syscount_{graft,kernel}_overhead_pct.
BUILD=$(cd "${1:?usage: libbpf_tools.sh BUILD_DIR [--bench] [TOOL...]}" && pwd); shift
BENCH=0
ONLY=()
for a in "$@"; do
    if [ "$a" = --bench ]; then BENCH=1; else ONLY+=("$a"); fi
done
WORK=$BUILD/tests/compat/compat_work
SBIN=/usr/sbin
SIDE_NAME=ltmatrix
. "$(dirname "${BASH_SOURCE[0]}")/../side_lib.sh"

if [ ! -x "$WORK" ] || [ ! -x "$GRAFT" ]; then
    echo "libbpf_tools.sh: build the compat_tools target first ($WORK)" >&2
    exit 2
fi
# libbpf-tools' tracepoint_exists() looks under /sys/kernel/debug/tracing:
# without debugfs, statsnoop and others switch every program off.
if [ ! -d /sys/kernel/debug/tracing/events ]; then
    mount -t debugfs none /sys/kernel/debug 2>/dev/null
fi

# ---- one run ----

# lt_side HOW(plain|kernel|graft) MODE N [TOOL ARGS...]: run_side
# (side_lib.sh) of the tool line-buffered: it prints its header once
# attached.
lt_side() {
    local how=$1 mode=$2 n=$3; shift 3
    if [ $# -gt 0 ]; then
        SIDE_SETTLE=0.2 run_side "$how" "$mode" "$n" stdbuf -oL "$@"
    else
        run_side "$how" "$mode" "$n"
    fi
}

# ---- normalisers: stdin = the tool's output, $1 $2 = workload pid, ppid ----
pidsub() { sed -E "s/\b$1\b/PID/g; s/\b$2\b/PPID/g; s/compat-open-PID-/compat-open-N-/g"; }
# the workload's own calls: the kernel also counts the read() it is blocked
# in when the tool attaches, graft also its agent's calls (unlink at exit)
norm_syscount()  { grep -E '^(SYSCALL|PID|getppid|getuid|getgid|[0-9]+) ' | pidsub "$@"; }
# per process: the total to the hundred (the extra calls above, +-2)
norm_syscount_P() { awk '/^[0-9]+ / { print "PID", $2, int(($3 + 50) / 100) "00" }'; }
norm_columns()   { awk -v keep="$3" 'NR > 1 { n = split(keep, k, ","); s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") $k[i]; print s }' | pidsub "$1" "$2"; }
norm_statsnoop() { norm_columns "$1" "$2" "1,2,3,4,5"; }
norm_sigsnoop()  { norm_columns "$1" "$2" "2,3,4,5,6"; }
norm_mount()     { grep -v '^COMM' | pidsub "$@" | awk '{ $3 = "TID"; print }'; }
norm_readline()  { awk 'NR > 1 { $1 = ""; print }' | pidsub "$@"; }
norm_gethost()   { norm_columns "$1" "$2" "2,3,5"; }
norm_opensnoop() { norm_columns "$1" "$2" "1,2,4,5"; }
norm_execsnoop() { grep -v '^PCOMM' | pidsub "$@"; }
# spawned children (their parent is the workload: other compat_work processes
# on the machine are not its): their own pid varies (column 2); sorted (children
# exit in order, but the tools' buffers are per CPU)
norm_execsnoop_ok() { grep -v '^PCOMM' | pidsub "$@" | awk '$3 == "PID" { $2 = "CHILD"; print }' | sort; }
# PCOMM PID PPID TID AGE EXIT_CODE: the workload's processes, without pids and age
norm_exitsnoop() { awk '$1 == "compat_work"' | pidsub "$@" | awk '$2 == "PID" || $3 == "PID" { if ($2 != "PID") $2 = $4 = "CHILD"; $5 = ""; print }' | sort; }
# histogram: only the total count, latencies differ
norm_funclat()   { awk -F'|' '/->/ { split($1, a, ":"); c += a[2] } END { print "calls", c + 0 }'; }

# ---- the tools ----
# name | status(expect PASS, or KERNEL-ONLY/UNSUPPORTED) | mode N normaliser | args | reason
TOOLS=(
"syscount|PASS|syscalls 300 norm_syscount|$SBIN/syscount -p {PID}|raw_syscalls tracepoints, bpf_get_current_task, batch map reads"
"syscount-P|PASS|syscalls 300 norm_syscount_P|$SBIN/syscount -p {PID} -P|per process: task->group_leader->comm via bpf_get_current_task"
"statsnoop|SKIP|||Debian 0.26's statsnoop traces nothing on the kernel either: it checks events/syscalls/statfs (not sys_enter_statfs) and so switches every program off"
"sigsnoop|PASS|kill 50 norm_sigsnoop|$SBIN/sigsnoop -k -p {PID}|kill/tkill/tgkill tracepoints (-k)"
"killsnoop|PASS|kill 50 norm_sigsnoop|$SBIN/killsnoop -k -p {PID}|as sigsnoop -k"
"mountsnoop|PASS|mount 20 norm_mount|$SBIN/mountsnoop -p {PID}|mount/umount tracepoints, task->nsproxy->mnt_ns->ns.inum"
"opensnoop|PASS|open 40 norm_opensnoop|$SBIN/opensnoop -p {PID}|open/openat tracepoints (the workload's own opens)"
"bashreadline|PASS|bashreadline 50 norm_readline|$SBIN/bashreadline -s {W}|uretprobe on readline (-s: the workload's own readline, bash's needs a terminal)"
"gethostlatency|PASS|gethost 20 norm_gethost|$SBIN/gethostlatency -p {PID}|uprobes on libc getaddrinfo/gethostbyname/gethostbyname2"
"funclatency|PASS|funclat 2000 norm_funclat|$SBIN/funclatency -p {PID} :compat_work_fn|uprobe + uretprobe on the binary of -p PID"
"execsnoop|PASS|exec 20 norm_execsnoop|$SBIN/execsnoop -x -n compat_work|execve tracepoints, task->real_parent->tgid; failed execs (-x)"
"execsnoop-ok|PASS|spawn 12 norm_execsnoop_ok|$SBIN/execsnoop -n compat_work|successful execs of forked children: sys_exit_execve runs in the new image once its agent has installed the links"
"exitsnoop|PASS|spawn 12 norm_exitsnoop|$SBIN/exitsnoop|sched/sched_process_exit from exit_group in the exiting process, task->exit_code (system-wide: the workload's processes compared)"
"sigsnoop-tp|PASS|signal 20 norm_sigsnoop|$SBIN/sigsnoop -p {PID}|signal/signal_generate from kill/tkill/tgkill in the sender (default mode, no -k)"
"javagc|SKIP|||USDT probes in a HotSpot JVM (libjvm.so); no JVM installed here"
)
KERNEL_ONLY=(
"biolatency biopattern biosnoop biostacks biotop bitesize mdflush|block I/O (block tracepoints, kprobes)"
"cpudist cpufreq hardirqs softirqs runqlat runqlen runqslower offcputime wakeuptime klockstat llcstat|scheduler, interrupts, locks, PMU (kernel tracepoints, kprobes, perf events)"
"bindsnoop solisten tcpconnect tcpconnlat tcplife tcprtt tcpstates tcpsynbl tcptop tcptracer|TCP/socket stack (kprobes, fentry, sock tracepoints)"
"cachestat drsnoop filelife filetop fsdist fsslower vfsstat readahead numamove oomkill slabratetop capable ksnoop|kernel functions (kprobes/fentry on VFS, mm, security)"
"btrfsdist btrfsslower ext4dist ext4slower nfsdist nfsslower xfsdist xfsslower|file system internals (kprobes/fentry)"
)

wanted() {
    [ ${#ONLY[@]} = 0 ] && return 0
    local t; for t in "${ONLY[@]}"; do [ "$t" = "$1" ] && return 0; done
    return 1
}

unexpected=0
for spec in "${TOOLS[@]}"; do
    IFS='|' read -r name expect run args reason <<<"$spec"
    wanted "$name" || continue
    bin=${args%% *}
    if [ "$expect" != PASS ] && [ "$expect" != COMPARE ]; then
        echo "MATRIX libbpf-tools $name $expect $reason"
        continue
    fi
    if [ ! -x "$bin" ]; then
        echo "MATRIX libbpf-tools $name SKIP $bin not installed (package libbpf-tools)"; continue
    fi
    if [ $kernel_ok = 0 ]; then
        echo "MATRIX libbpf-tools $name SKIP the kernel side cannot run (bpf() refused)"; continue
    fi
    read -r mode n norm <<<"$run"
    read -r -a argv <<<"$args"
    why=""
    if ! lt_side graft "$mode" "$n" "${argv[@]}"; then
        why="graft: $SIDE_WHY: $(grep -m1 -E 'graft-compat|libbpf|failed|error' "$tmp/t.err" 2>/dev/null)"
    elif ! "$GRAFT" list 2>/dev/null | grep -q "^links: 0"; then
        why="graft: the tool left links in the registry"
    else
        read -r gp gpp <"$tmp/graft.pid"
        $norm "$gp" "$gpp" <"$tmp/graft.out" >"$tmp/g.norm"
        if ! lt_side kernel "$mode" "$n" "${argv[@]}"; then
            why="kernel: $SIDE_WHY"
        else
            read -r kp kpp <"$tmp/kernel.pid"
            $norm "$kp" "$kpp" <"$tmp/kernel.out" >"$tmp/k.norm"
            if [ ! -s "$tmp/k.norm" ]; then
                why="the kernel's run printed nothing to compare"
            elif ! cmp -s "$tmp/k.norm" "$tmp/g.norm"; then
                why="output differs from the kernel's: $(diff "$tmp/k.norm" "$tmp/g.norm" | grep -m2 '^[<>]' | tr '\n' ' ')"
            fi
        fi
    fi
    if [ -z "$why" ]; then
        echo "MATRIX libbpf-tools $name PASS $(wc -l <"$tmp/g.norm") lines as on the kernel; $reason"
        [ "${MATRIX_VERBOSE:-0}" = 2 ] && head -4 "$tmp/g.norm"
    else
        echo "MATRIX libbpf-tools $name FAIL $why"
        unexpected=$((unexpected + 1))
        if [ -n "${MATRIX_VERBOSE:-}" ]; then
            echo "--- graft stdout/stderr:"; cat "$tmp/graft.out" "$tmp/graft.err" 2>/dev/null | head -30
            echo "--- normalised kernel / graft:"; cat "$tmp/k.norm" 2>/dev/null | head -10; echo; cat "$tmp/g.norm" | head -10
        fi
    fi
done
for group in "${KERNEL_ONLY[@]}"; do
    reason=${group#*|}
    for t in ${group%%|*}; do
        wanted "$t" && echo "MATRIX libbpf-tools $t KERNEL-ONLY $reason"
    done
done

if [ $BENCH = 1 ] && [ $kernel_ok = 1 ]; then
    median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
    pct() { awk -v t="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", (t - b) * 100.0 / b; else print "nan" }'; }
    : >"$tmp/plain.all"; : >"$tmp/kernel.all"; : >"$tmp/graft.all"
    for _ in $(seq "${ROUNDS:-5}"); do
        lt_side plain syscalls 20000 && cat "$tmp/plain.ns" >>"$tmp/plain.all"
        lt_side kernel syscalls 20000 "$SBIN/syscount" -p "{PID}" && cat "$tmp/kernel.ns" >>"$tmp/kernel.all"
        lt_side graft syscalls 20000 "$SBIN/syscount" -p "{PID}" && cat "$tmp/graft.ns" >>"$tmp/graft.all"
    done
    base=$(median <"$tmp/plain.all")
    echo "BENCH compat_syscount_graft_overhead_pct $(pct "$(median <"$tmp/graft.all")" "$base") pct"
    echo "BENCH compat_syscount_kernel_overhead_pct $(pct "$(median <"$tmp/kernel.all")" "$base") pct"
fi
[ $unexpected = 0 ]
