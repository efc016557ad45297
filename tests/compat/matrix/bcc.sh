#!/usr/bin/env bash
# BCC's Python tools (Debian's bpfcc-tools 0.26) against the kernel and
# against graft, side by side on trace_work, one MATRIX line per case (see
# trace_lib.sh). They create uprobes through tracefs (uprobe_events) and
# compile their programs with clang at run time against the running
# kernel's headers. This kernel may ship none: Debian's linux-headers-amd64
# then stands in, through /lib/modules/$(uname -r)/build and source links
# this script makes only if they are absent (and says so), or the cases
# are skipped with the reason.
#
# Usage: bcc.sh BUILD_DIR [--bench] [CASE...]; exit 1 when a case expected
# to pass fails or an unsupported one is not refused with a line.
#   --bench: also BENCH compat_funccount_{graft,kernel}_overhead_pct
#   (trace_work calls under funccount, 3 interleaved rounds, medians).
BUILD=$(cd "${1:?usage: bcc.sh BUILD_DIR [--bench] [CASE...]}" && pwd); shift
FAMILY=bcc
BENCH=0
ONLY=()
for a in "$@"; do if [ "$a" = --bench ]; then BENCH=1; else ONLY+=("$a"); fi; done
source "$(dirname "${BASH_SOURCE[0]}")/trace_lib.sh"
if ! command -v funccount-bpfcc >/dev/null || ! /usr/bin/python3 -c 'import bcc' 2>/dev/null; then
    matrix "all SKIP bpfcc-tools / python3-bpfcc are not installed"; exit 0
fi

mods=/lib/modules/$(uname -r)
if [ ! -e "$mods/build" ]; then
    hdr=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -1)
    common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -1)
    if [ -z "$hdr" ] || [ -z "$common" ]; then
        matrix "all SKIP no headers for kernel $(uname -r) and no Debian linux-headers-amd64 to stand in"; exit 0
    fi
    mkdir -p "$mods" && ln -s "$hdr" "$mods/build" && { [ -e "$mods/source" ] || ln -s "$common" "$mods/source"; } ||
        { matrix "all SKIP cannot link $mods/build to $hdr"; exit 0; }
    echo "bcc.sh: $mods/build -> $hdr (kernel $(uname -r) ships no headers)" >&2
fi

# Tools print their table or events after SIGINT; pids, times, latencies dropped.
funccount_rows() { awk 'NF == 2 && $2 ~ /^[0-9]+$/' | sort; }
trace_rows() { awk 'NR > 1 && NF >= 5 { $1 = $2 = ""; print }' | sort; }   # PID TID COMM FUNC MSG
latency_total() { awk '$2 == "->" && $4 == ":" { n += $5 } END { print "calls", n + 0 }'; }

T=("${SIGINT_DFL[@]}")
run_case funccount pass funccount_rows Tracing calls 20 \
    "${T[@]}" funccount-bpfcc -p '{PID}' '{W}:tw_*'
# (each case compiles with clang at run time, twice: few cases, several probes each)
run_case trace-uprobe-uretprobe pass trace_rows 'PID +TID' calls 10 \
    "${T[@]}" trace-bpfcc -p '{PID}' '{W}:tw_work "n=%d", arg1' 'r:{W}:tw_work "ret=%d", retval'
run_case trace-usdt pass trace_rows 'PID +TID' usdt 10 \
    "${T[@]}" trace-bpfcc -p '{PID}' 'u:{W}:tick "tick %d %d", arg1, arg2' 'u:{W}:semtick "semtick %d %d", arg1, arg2'
run_case funclatency pass latency_total Tracing calls 30 \
    "${T[@]}" funclatency-bpfcc -p '{PID}' '{W}:tw_work'
syscount_rows() { awk 'NF == 2 && $2 ~ /^[0-9]+$/ && $1 ~ /^(stat|statfs|kill|fdatasync|setuid)$/' | sort; }
run_case syscount pass syscount_rows Tracing sys 5 \
    "${T[@]}" syscount-bpfcc -T 40 -p '{PID}'
host_rows() { awk '/ trace_work / { print $3, $5 }' | sort; }   # TIME PID COMM LATms HOST
run_case gethostlatency pass host_rows LATms sys 5 \
    "${T[@]}" gethostlatency-bpfcc -p '{PID}'
# argdist -c: cumulative counts, printed every second; the last table counts
last_table() { awk '/^\[/ { delete rows; n = 0; next } NF >= 2 && $1 ~ /^[0-9]+$/ { rows[n++] = $1 " " $NF }
                   END { for (i = 0; i < n; i++) print rows[i] }' | sort; }
POST_WAIT=1.6 run_case argdist pass last_table '^\[' calls 12 \
    "${T[@]}" argdist-bpfcc -p '{PID}' -c -i 1 -C 'p:{W}:tw_leaf(unsigned long n):unsigned long:n%4'
# funcslower: one line per call slower than 1 ms (COMM PID LAT RVAL FUNC ARGS;
# latency dropped). Refused: it copies the saved arguments out of its map
# value with bpf_probe_read_kernel
slow_rows() { awk 'NF >= 5 && $2 == "PID" { $3 = ""; print }' | sort; }
run_case funcslower pass slow_rows Tracing slow 8 \
    "${T[@]}" funcslower-bpfcc -p '{PID}' -m 1 -a 1 '{W}:tw_slow'
# funcinterval: a histogram of the times between calls; the intervals' total
hist_total() { awk '$2 == "->" && $4 == ":" { n += $5 } END { print "intervals", n + 0 }'; }
run_case funcinterval pass hist_total Tracing slow 8 \
    "${T[@]}" funcinterval-bpfcc -p '{PID}' -m '{W}:tw_slow'
# stackcount -U: the user stacks (frame pointers) of each call and their counts
run_case stackcount pass cat Tracing calls 20 \
    "${T[@]}" stackcount-bpfcc -p '{PID}' -U '{W}:tw_leaf'
# memleak -p: uprobes + uretprobes on libc's allocator (glibc's realloc
# tail-calls malloc: two return probes share a return), mmap among them
# (graft's own thread set-up maps memory). It prints every second until
# killed; the last table naming the workload's tw_alloc (printed while the
# workload holds its blocks, so that its symbols still resolve), without
# addresses
leak_rows() { awk '/stacks with outstanding allocations/ { if (cur ~ /tw_alloc/) last = cur; cur = ""; next }
                   { sub(/0x[0-9a-f]+[ \t]+/, ""); gsub(/^[ \t]+/, ""); cur = cur $0 "\n" }
                   END { if (cur ~ /tw_alloc/) last = cur; printf "%s", last }'; }
run_case memleak pass leak_rows 'Attaching to pid' alloc 12 \
    "${T[@]}" memleak-bpfcc -p '{PID}' 1
# The language tools (cobjnew, pythongc, ...) are bash wrappers around
# lib tools that do not pass SIGINT on: the lib tools themselves are run.
# uobjnew -l c (cobjnew): a uprobe on libc's malloc, allocations per size
objnew_rows() { awk '$1 == "block" && $2 == "size" { print $3, $4, $5 }' | sort; }
run_case uobjnew-c pass objnew_rows 'Tracing allocations' alloc 12 \
    "${T[@]}" /usr/sbin/uobjnew -l c '{PID}'
# ugc -l python (pythongc): USDT python:gc__start/gc__done (semaphores) in
# Debian's python3.11 running py_work.py; one line per collection,
# durations dropped
gc_rows() { awk 'NR > 2 && NF >= 3 { $1 = $2 = ""; print }'; }
WORK=/usr/bin/python3 run_case ugc-python pass gc_rows 'Tracing garbage' "$(dirname "${BASH_SOURCE[0]}")/py_work.py" 6 \
    "${T[@]}" /usr/sbin/ugc -l python '{PID}'
# bashreadline -s: uretprobe on the workload's own readline (comm "bash")
line_rows() { awk 'NR > 1 { $1 = ""; print }' | sort; }
run_case bashreadline pass line_rows COMMAND readline 10 \
    "${T[@]}" bashreadline-bpfcc -s '{W}'
# bashreadline on /bin/bash itself: an interactive bash on a pseudo-terminal
# (script), started by the workload (under graft start it carries an agent)
bash_rows() { awk 'NR > 1 { $1 = $2 = ""; print }' | sort; }   # bash's own pid dropped too
LINKS_IN_CHILDREN=1 run_case bashreadline-bash pass bash_rows COMMAND bashpty 4 \
    "${T[@]}" bashreadline-bpfcc
# profile -U: a CPU-time timer on each thread of the target (attach/sample.c)
# samples its user stacks; the stacks holding a quarter of the samples are
# compared (counts vary from run to run, on the kernel too). 199 Hz: enough
# samples that the kernel's few of the workload in kernel mode (its exit,
# whose user stack differs; graft samples user code only) stay below that
prof_stacks() { awk '/^Sampling/ { next } /^ +[0-9]+$/ { c[k] += $1; t += $1; k = ""; next } /^ *$/ { next }
                     { gsub(/^ +/, ""); gsub(/\+0x[0-9a-f]+/, ""); k = k $0 ";" }
                     END { for (s in c) if (c[s] * 4 >= t) print s }' | sort; }
READY_FD='perf_event' run_case profile pass prof_stacks Sampling spin 400 \
    "${T[@]}" profile-bpfcc -U -F 199 -p '{PID}'
[ $BENCH = 1 ] && bench_overhead funccount 3 Tracing "${T[@]}" funccount-bpfcc -p '{PID}' '{W}:tw_work'
exit $unexpected
