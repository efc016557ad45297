#!/usr/bin/env bash
# bpftrace (Debian's 0.17) scripts against the kernel and against graft,
# side by side on trace_work, one MATRIX line per case (see trace_lib.sh).
#
# Usage: bpftrace.sh BUILD_DIR [--bench] [CASE...]; exit 1 when a case
# expected to pass fails or an unsupported one is not refused with a line.
#   --bench: also time the uprobe-count case traced on the kernel and on
#   graft against the untraced workload (interleaved rounds, medians):
#   BENCH compat_bpftrace_{graft,kernel}_overhead_pct.
BUILD=$(cd "${1:?usage: bpftrace.sh BUILD_DIR [--bench] [CASE...]}" && pwd); shift
FAMILY=bpftrace
BENCH=0
ONLY=()
for a in "$@"; do if [ "$a" = --bench ]; then BENCH=1; else ONLY+=("$a"); fi; done
source "$(dirname "${BASH_SOURCE[0]}")/trace_lib.sh"
if ! command -v bpftrace >/dev/null; then
    matrix "all SKIP bpftrace is not installed (Debian package bpftrace)"; exit 0
fi

maps_sorted() { grep '^@' | sort; }
printed() { grep -vE '^(Attaching|$|@)' | sort; }
everything() { grep -vE '^(Attaching|$)'; }

BT=(bpftrace)
run_case uprobe-count pass maps_sorted Attaching calls 20 \
    "${BT[@]}" -e 'uprobe:{W}:tw_work { @[arg0 % 4] = count(); }'
run_case uretprobe-sum pass maps_sorted Attaching calls 20 \
    "${BT[@]}" -e 'uretprobe:{W}:tw_work { @sum = sum(retval); @n = count(); @max = max(retval); }'
run_case predicate-printf pass printed Attaching calls 20 \
    "${BT[@]}" -e 'uprobe:{W}:tw_leaf /arg0 % 3 == 0/ { printf("leaf %d\n", arg0); }'
run_case hist pass everything Attaching calls 50 \
    "${BT[@]}" -e 'uprobe:{W}:tw_work { @h = hist(arg0); @l = lhist(arg0, 0, 50, 10); }'
run_case tracepoint-args pass printed Attaching open 5 \
    "${BT[@]}" -e 'tracepoint:syscalls:sys_enter_openat /pid == $1/ { printf("%s %d\n", str(args->filename), args->flags); }
                   tracepoint:syscalls:sys_exit_openat /pid == $1/ { printf("ret %d\n", args->ret); }' '{PID}'
NO_LINKS=1 run_case begin-interval-end pass printed begin wait 600 \
    "${BT[@]}" -e 'BEGIN { printf("begin\n"); } interval:ms:50 { @t++; if (@t == 4) { printf("fourth tick\n"); } }
                   END { printf("end\n"); clear(@t); }'
run_case usdt pass printed Attaching usdt 10 \
    "${BT[@]}" -p '{PID}' -e 'usdt:{W}:tw:tick { printf("tick %d %d\n", arg0, arg1); }'
run_case usdt-semaphore pass printed Attaching usdt 10 \
    "${BT[@]}" -p '{PID}' -e 'usdt:{W}:tw:semtick { printf("semtick %d %d\n", arg0, arg1); }'
# Bundled tools (system-wide: the workload's lines, time and latency columns dropped)
work_lines() { grep ' trace_work ' | sed -E 's/^[0-9]{2}:[0-9]{2}:[0-9]{2} +//' | tr -s ' ' | sort; }
no_latency() { work_lines | awk '{ $3 = ""; print }'; }
for t in opensnoop statsnoop killsnoop syncsnoop setuids; do
    mode=sys; [ $t = opensnoop ] && mode=open
    run_case "$t.bt" pass work_lines Attaching $mode 5 "${BT[@]}" /usr/sbin/$t.bt
done
# execsnoop.bt: sys_enter_exec* with join(argv); the workload's execs fail
# (ENOENT: it stays, with its agent); TIME and PID dropped. Ready once BEGIN
# has printed the header (after every probe is attached, unlike "Attaching")
exec_lines() { grep 'trace-work-exec' | awk '{ $1 = $2 = ""; print }' | sort; }
run_case execsnoop.bt pass exec_lines 'TIME\(ms\)' exec 5 "${BT[@]}" /usr/sbin/execsnoop.bt
# sslsnoop.bt: libssl/libcrypto uprobes, system-wide; compat_work's TLS
# client and server threads over a socketpair (TIME, TID, LAT dropped; FUNC
# too: bpftrace prints it as a name or as a raw address (ASLR) from run to
# run: the kernel run here named one SSL_do_handshake, left the other raw)
ssl_lines() { awk '$3 == "compat_work" { print $3, $5 }' | sort; }   # COMM RET
WORK=$BUILD/tests/compat/compat_work run_case sslsnoop.bt pass ssl_lines '^Tracing SSL' ssl 5 "${BT[@]}" /usr/sbin/sslsnoop.bt
run_case gethostlatency.bt pass no_latency Attaching sys 5 "${BT[@]}" /usr/sbin/gethostlatency.bt
# bashreadline.bt: uretprobe on /bin/bash's readline, system-wide; the
# workload runs an interactive bash on a pseudo-terminal (bash reads with
# readline only from a terminal), which under graft start carries an agent;
# its commands, TIME and PID dropped
bash_lines() { awk 'NR > 2 && /tw-cmd|exit/ { $1 = $2 = ""; print }'; }
LINKS_IN_CHILDREN=1 run_case bashreadline.bt pass bash_lines 'Tracing bash' bashpty 4 "${BT[@]}" /usr/sbin/bashreadline.bt
# profile: a CPU-time timer on each thread of the target (attach/sample.c).
# Sample counts and the hot instructions within a loop vary from run to
# run (kernel and graft alike): a sample is keyed by whether its ip lies in
# tw_spin (by page offset: the workload exits before bpftrace prints, so
# addresses stay unsymbolised, and ASLR moves the pages), and the keys
# holding at least a quarter of the samples are compared. The stacks are
# walked from the interrupted registers: their callers (the sampled ip
# dropped) are compared the same way. Only samples of user code: graft has
# no kernel to interrupt (a sample taken in the kernel reaches the thread
# when it returns to user space), so the kernel's samples of the workload in
# kernel mode (system calls, page faults, its share of scheduling on a
# loaded machine) are left out on both sides (user mode: cs & 3 == 3)
top_keys() { awk '/^@/ { k = $0; sub(/: [0-9]+$/, "", k); c[k] += $NF; t += $NF }
                 END { for (k in c) if (c[k] * 4 >= t) print k }' | sort; }
page_off() { sed -E 's/0x[0-9a-f]*([0-9a-f]{3})([^0-9a-f]|$)/0x..\1\2/g'; }
top_callers() { page_off | awk '/^@\[/ { k = ""; first = 1; next } /^]: / { c[k] += $2; t += $2; next }
                 { if (first) { first = 0; next } gsub(/^ +/, ""); k = k $0 ";" }
                 END { for (k in c) if (c[k] * 4 >= t) print k }' | sort; }
read -r spin_addr spin_len < <(nm -S "$WORK" 2>/dev/null | awk '$4 == "tw_spin" { print $1, $2 }')
spin_off=$((0x${spin_addr:-0} % 4096)) spin_len=$((0x${spin_len:-0}))
in_spin="(reg(\"ip\") & 0xfff) >= $spin_off && (reg(\"ip\") & 0xfff) < $spin_off + $spin_len"
run_case profile pass top_keys Attaching spin 300 \
    "${BT[@]}" -e "profile:hz:99 /pid == \$1 && (reg(\"cs\") & 3) == 3/ { @[comm, $in_spin] = count(); }" '{PID}'
run_case profile-ustack pass top_callers Attaching spin 300 \
    "${BT[@]}" -e 'profile:hz:99 /pid == $1 && (reg("cs") & 3) == 3/ { @[ustack(3)] = count(); }' '{PID}'
run_case profile-ms pass top_keys Attaching spin 300 \
    "${BT[@]}" -e "profile:ms:10 /pid == \$1 && (reg(\"cs\") & 3) == 3/ { @[comm, $in_spin] = count(); }" '{PID}'
# Tracepoints graft runs from the process's own calls (attach/sys_events.c):
# every field of signal_generate's record on compat_work's signals (caught,
# ignored, default-ignored, already pending) and of sched_process_exit with
# the exit code from curtask, on children that exec and exit
LT=$BUILD/tests/compat/compat_work
WORK=$LT run_case signal-generate pass printed Attaching signal 3 \
    "${BT[@]}" -e 'tracepoint:signal:signal_generate /pid == $1/ { printf("sig %d errno %d code %d comm %s tpid-is-self %d group %d result %d\n",
                   args->sig, args->errno, args->code, args->comm, args->pid == $1, args->group, args->result); }' '{PID}'
WORK=$LT run_case process-exit pass printed Attaching spawn 6 \
    "${BT[@]}" -e 'tracepoint:sched:sched_process_exit /comm == "compat_work"/ { printf("%s prio %d group_dead %d code %d\n",
                   args->comm, args->prio, args->group_dead, curtask->exit_code >> 8); }'
# The tool killed (-9) while the target runs its probes flat out (a printf
# per call into a perf buffer nobody drains, a timer): the target must run
# to the end and exit 0, and `graft compat` must leave the registry empty.
tool_killed() {
    if [ ${#ONLY[@]} -gt 0 ] && ! printf '%s\n' "${ONLY[@]}" | grep -qx tool-killed; then return; fi
    rm -f "$tmp/in" "$tmp/w.out"; mkfifo "$tmp/in"
    local before; before=$("$GRAFT" list 2>/dev/null | sed -n 's/^links: //p')
    "$GRAFT" start -- "$WORK" calls 50000000 <"$tmp/in" >"$tmp/w.out" 2>/dev/null &
    local wpid=$!; tp_track "$wpid"
    exec 7>"$tmp/in"
    for _ in $(seq 750); do grep -q ready "$tmp/w.out" 2>/dev/null && break; sleep 0.02; done
    "$GRAFT" compat -- bpftrace -e "uprobe:$WORK:tw_work { printf(\"%d\\n\", arg0); @n = count(); }
        uretprobe:$WORK:tw_leaf { @r = sum(retval); } interval:ms:10 { @t = count(); }" >/dev/null 2>"$tmp/k.err" &
    local cpid=$!; tp_track "$cpid"
    for _ in $(seq 750); do grep -q "links: $((${before:-0} + 2))" <("$GRAFT" list 2>/dev/null) && break; sleep 0.02; done
    echo go >&7; exec 7>&-
    sleep 0.1
    local tool; tool=$(cat /proc/$cpid/task/$cpid/children 2>/dev/null | awk '{print $1}')
    local running=0
    kill -0 "$wpid" 2>/dev/null && ! grep -q done "$tmp/w.out" && running=1
    [ -n "$tool" ] && kill -9 "$tool"
    local wrc=0 hung=1
    for _ in $(seq 1000); do kill -0 "$wpid" 2>/dev/null || { hung=0; break; }; sleep 0.02; done
    [ $hung = 1 ] && kill -9 "$wpid"
    wait "$wpid" || wrc=$?
    wait "$cpid" 2>/dev/null
    local left; left=$("$GRAFT" list 2>/dev/null | sed -n 's/^links: //p')
    if [ -z "$tool" ]; then matrix "tool-killed FAIL the tool never started: $(head -c 200 "$tmp/k.err")"; unexpected=1
    elif [ $running = 0 ]; then matrix "tool-killed FAIL the target had finished before the kill (make it longer)"; unexpected=1
    elif [ $hung = 1 ] || [ $wrc != 0 ]; then matrix "tool-killed FAIL the target hung or failed (rc $wrc)"; unexpected=1
    elif [ "${left:-0}" != "${before:-0}" ]; then matrix "tool-killed FAIL $left links in the registry, $before before"; unexpected=1
    else matrix "tool-killed PASS the target ran to the end (rc 0) after the tool was killed; its links removed"; fi
}
tool_killed
# bpftrace's feature probe must see bpf_probe_read_kernel as missing (the
# kernel's "unknown func" words), or it emits it for strings it cannot place
# (opensnoop.bt's str() of a saved pointer) and the load is refused
if [ ${#ONLY[@]} -eq 0 ] || printf '%s\n' "${ONLY[@]}" | grep -qx feature-probe; then
    info=$("$GRAFT" compat -- bpftrace --info 2>&1)
    if grep -qE '^ +probe_read_kernel: no' <<<"$info"; then
        matrix "feature-probe PASS bpftrace --info under graft: probe_read_kernel: no"
    else
        matrix "feature-probe FAIL bpftrace --info under graft does not report probe_read_kernel missing"; unexpected=1
    fi
fi
for k in kprobe kretprobe kfunc software hardware watchpoint; do
    if [ ${#ONLY[@]} -eq 0 ]; then matrix "$k KERNEL-ONLY probes the kernel itself (or a PMU): nothing to run in userspace"; fi
done

[ $BENCH = 1 ] && bench_overhead bpftrace 5 Attaching bpftrace -e 'uprobe:{W}:tw_work { @c = count(); }'
exit $unexpected
