# bench/apps/lib.sh - shared helpers for the real-application benchmarks and
# tests (sourced, not run). Every script that sources it:
#   * takes the graft build directory as $1 and builds only graft + the agent;
#   * keeps its files in one temporary directory ($APPS_WORK) and its graft
#     state in a private registry (GRAFT_REGISTRY=$GRAFT_REGISTRY.apps.<pid>, /graft.apps.<pid> without one);
#   * registers every process it starts with `apps_track PID`; an EXIT trap
#     stops exactly those processes (by pid, never by name) and removes the
#     temporary files and the registry's shared memory.
# Ports are fixed and unusual (18xxx on 127.0.0.1 only).

APPS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
APPS_EX=$APPS_SRC/examples/apps
. "$APPS_SRC/tests/common/tprocs.sh"
. "$APPS_SRC/tests/common/tcheck.sh"   # check WHAT CMD...

apps_init() {   # apps_init BUILD
    APPS_BUILD=$(cd "${1:-$APPS_SRC/build}" 2>/dev/null && pwd) || { echo "no build dir ${1:-build}" >&2; exit 2; }
    GRAFT=$APPS_BUILD/bin/graft
    APPS_WORK=$(mktemp -d /tmp/graft-apps.XXXXXX)
    export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.apps.$$   # under ctest: the run's own prefix
    trap apps_cleanup EXIT
    trap 'exit 130' INT TERM
    # The tree may be mid-edit by others: with binaries from an earlier
    # build we go on (and say so); without them we cannot.
    if [ "${APPS_NOBUILD:-0}" != 1 ] &&
       ! cmake --build "$APPS_BUILD" --target graft-cli graft-agent >"$APPS_WORK/build.log" 2>&1; then
        if [ -x "$GRAFT" ] && [ -e "$APPS_BUILD/lib/libgraft-agent.so" ]; then
            echo "warning: graft build failed (tail of log below); using the existing binaries" >&2
            tail -3 "$APPS_WORK/build.log" >&2
        else
            cat "$APPS_WORK/build.log" >&2; echo "graft build failed" >&2; exit 1
        fi
    fi
}

apps_track() { tp_track "$@"; }

apps_cleanup() {
    tp_stop_all
    tp_registry_remove
    rm -rf "$APPS_WORK"
}

# apps_have PKG...: are all these Debian packages installed?
apps_have() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
    done
}

# apps_install PKG...: install the missing ones (root only). Returns 1 when
# they are missing and cannot be installed.
apps_install() {
    local p missing=()
    for p in "$@"; do apps_have "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${APPS_NO_INSTALL:-0}" = 1 ]; then
        echo "missing Debian packages: ${missing[*]} (make bench-apps installs them)" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "installing ${missing[*]}" >&2
    # Package scripts must not start services (nginx, redis) on their default ports.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.graft-apps
    local had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    [ $had_policy = 0 ] && cp /usr/sbin/policy-rc.d.graft-apps /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
    local rc=$?
    [ $had_policy = 0 ] && rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.graft-apps
    return $rc
}

# apps_bpf SRC OUT [clang flags...]: compile an extension with stock clang.
apps_bpf() {
    local src=$1 out=$2; shift 2
    clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I"$APPS_SRC/include" \
        -I/usr/include/x86_64-linux-gnu "$@" -c "$src" -o "$out"
}

# apps_load OBJ [args]: `graft load` in the background until it says
# "loaded" (tests/common/tprocs.sh); sets LOADER_PID. Unload with apps_unload.
apps_load() { tp_load "$APPS_WORK/load.$(basename "$1").log" "$@"; }
apps_unload() { tp_unload "$@"; }

# apps_wait_hooks PID PATTERN: until the agent in PID (a process that was
# already running when the program was loaded, so it installs the links
# asynchronously) reports at least as many hooks installed as `graft list`
# shows links matching PATTERN (links for any process count too) (20 s).
apps_wait_hooks() {
    local want i n
    want=$("$GRAFT" list | grep -E '^ +[0-9]+ +prog [0-9]+ ' | grep -cF -- "$2")
    for i in $(seq 400); do
        n=$("$GRAFT" list | grep -E "^ +$1 " | sed -n 's/.* hooks \([0-9]*\) installed.*/\1/p')
        [ -n "$n" ] && [ "$n" -ge "$want" ] && return 0
        sleep 0.05
    done
    echo "the agent in $1 did not install its $want hooks:" >&2; "$GRAFT" list >&2
    return 1
}

# apps_wait_port PORT: until something listens on 127.0.0.1:PORT (10 s).
apps_wait_port() {
    local i
    for i in $(seq 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# apps_median V...: the median of numbers.
apps_median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# apps_pct BASE X: how much lower X is than BASE, in percent (overhead/loss).
apps_pct() { awk -v b="$1" -v x="$2" 'BEGIN { printf "%.1f\n", (b - x) * 100 / b }'; }

# apps_wrk URL [seconds]: requests/s of one short wrk run (1 thread, 16
# connections, on CPU 0; the nginx worker is pinned to CPU 1).
apps_wrk() {
    taskset -c 0 wrk -t1 -c16 -d"${2:-3}"s "$1" 2>/dev/null | awk '/Requests\/sec/ {print $2}'
}

# apps_wrk_cpu URL [seconds]: one run as apps_wrk; prints "req/s requests
# worker_ns", worker_ns being the time the nginx worker (the child of
# $NGINX_PID, all its threads: an agent's too) spent on a CPU during the run,
# from /proc/PID/task/*/schedstat. Per request, that is far less sensitive
# than req/s to what else the shared machine runs at the time.
apps_worker_ns() {
    local w=$1 t sum=0 v
    for t in /proc/"$w"/task/*/schedstat; do
        read -r v _ <"$t" 2>/dev/null && sum=$((sum + v))
    done
    echo "$sum"
}
apps_wrk_cpu() {
    local worker a b out
    worker=$(pgrep -P "$NGINX_PID" | head -1)
    [ -n "$worker" ] || return 1
    a=$(apps_worker_ns "$worker")
    out=$(taskset -c 0 wrk -t1 -c16 -d"${2:-3}"s "$1" 2>/dev/null)
    b=$(apps_worker_ns "$worker")
    awk -v cpu=$((b - a)) '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {if (n && r) print r, n, cpu}' <<<"$out"
}

# apps_paired RUNS CONFIGS... : run every configuration once per round
# (the first is the baseline), each a fresh server through the caller's
# start/stop functions, wrk on URL for SECS. A configuration's figures are
# the medians over rounds of its difference from that round's baseline (the
# machine's load drifts more between rounds than within one). Sets
# PAIRED_RPS[cfg], PAIRED_US[cfg] (worker us/request), PAIRED_LOSS[cfg] and
# PAIRED_CPU[cfg] (%); needs URL and SECS; calls paired_hook CFG REQS
# after each run, before stop, when the caller defines it.
declare -A PAIRED_RPS PAIRED_US PAIRED_LOSS PAIRED_CPU
apps_paired() {
    local runs=$1 base=$2 cfg v n t _r
    shift
    local -A rps us loss cpu
    for _r in $(seq "$runs"); do
        local -A r=() c=()
        for cfg in "$@"; do
            start "$cfg" || { echo "FAIL: start $cfg"; fails=$((fails + 1)); stop "$cfg"; continue; }
            read -r v n t <<<"$(apps_wrk_cpu "$URL" "$SECS")"
            if [ -n "${n:-}" ] && declare -F paired_hook >/dev/null; then paired_hook "$cfg" "$n"; fi
            stop "$cfg"
            [ -n "${n:-}" ] || { echo "FAIL: $cfg: wrk did not run"; fails=$((fails + 1)); continue; }
            r[$cfg]=$v
            c[$cfg]=$(awk -v t="$t" -v n="$n" 'BEGIN { printf "%.3f", t / n / 1000 }')
            rps[$cfg]+="$v "; us[$cfg]+="${c[$cfg]} "
        done
        for cfg in "$@"; do
            [ "$cfg" != "$base" ] && [ -n "${r[$base]:-}" ] && [ -n "${r[$cfg]:-}" ] || continue
            loss[$cfg]+="$(apps_pct "${r[$base]}" "${r[$cfg]}") "
            cpu[$cfg]+="$(awk -v b="${c[$base]}" -v x="${c[$cfg]}" 'BEGIN { printf "%.1f", (x - b) * 100 / b }') "
        done
    done
    for cfg in "$@"; do
        echo "runs $cfg: req/s ${rps[$cfg]:-}; worker us/request ${us[$cfg]:-}; loss % ${loss[$cfg]:-}; worker CPU +% ${cpu[$cfg]:-}"
        [ -n "${rps[$cfg]:-}" ] && PAIRED_RPS[$cfg]=$(apps_median ${rps[$cfg]})
        [ -n "${us[$cfg]:-}" ] && PAIRED_US[$cfg]=$(apps_median ${us[$cfg]})
        [ -n "${loss[$cfg]:-}" ] && PAIRED_LOSS[$cfg]=$(apps_median ${loss[$cfg]})
        [ -n "${cpu[$cfg]:-}" ] && PAIRED_CPU[$cfg]=$(apps_median ${cpu[$cfg]})
    done
    return 0
}

# apps_nginx_prepare DIR: the document root all nginx use cases serve:
# /index.html (612 bytes, like Debian's default page), /public/a.html and
# /admin/secret.html (the firewall rejects /admin).
apps_nginx_prepare() {
    local d=$1
    mkdir -p "$d/html/public" "$d/html/admin" "$d/logs" "$d/tmp"
    head -c 612 /dev/zero | tr '\0' 'x' >"$d/html/index.html"
    cp "$d/html/index.html" "$d/html/public/a.html"
    echo "secret" >"$d/html/admin/secret.html"
}

# apps_nginx_start DIR PORT MAIN HTTP SERVER [LAUNCHER...]: write DIR/nginx.conf
# (one worker, running as root so the agent can open the registry, no access
# log, keepalive) with extra MAIN/HTTP/SERVER directives, start nginx in the
# foreground (through LAUNCHER, e.g. "$GRAFT start --"), wait for the port.
# Sets NGINX_PID (the master).
apps_nginx_start() {
    local d=$1 port=$2 main=$3 http=$4 server=$5; shift 5
    # Under callgrind (APPS_CALLGRIND=OUTFILE, see apps_insn_per_req) nginx
    # runs as one process, so the instructions counted are the worker's.
    local master=on
    [ -n "${APPS_CALLGRIND:-}" ] && master=off
    cat >"$d/nginx.conf" <<CONF
$main
daemon off;
master_process $master;
worker_processes 1;
worker_cpu_affinity 10;
user root;
pid $d/nginx.pid;
error_log $d/logs/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 1000000;
    $http
    server {
        $server
        root $d/html;
    }
}
CONF
    if [ -n "${APPS_CALLGRIND:-}" ]; then
        "$@" valgrind --tool=callgrind --smc-check=all --separate-threads=yes --callgrind-out-file="$APPS_CALLGRIND" \
            nginx -p "$d" -c "$d/nginx.conf" 2>"$APPS_CALLGRIND.log" &
    else
        "$@" nginx -p "$d" -c "$d/nginx.conf" &
    fi
    NGINX_PID=$!
    apps_track "$NGINX_PID"
    local scheme=http port_only=${port%% *}
    NGINX_PORT=$port_only
    apps_wait_port "$port_only" || { cat "$d/logs/error.log" >&2; return 1; }
    # the worker is up when a request succeeds
    local i
    for i in $(seq 100); do
        curl -sk -o /dev/null "$scheme://127.0.0.1:$port_only/" 2>/dev/null && return 0
        [ "${port#* }" = ssl ] && curl -sk -o /dev/null "https://127.0.0.1:$port_only/" && return 0
        sleep 0.05
    done
    return 0
}
apps_nginx_stop() {
    local i
    if [ -n "${APPS_CALLGRIND:-}" ]; then
        # nginx under valgrind may sit in epoll_wait with the signal unseen
        # (seen with HTTPS) until an event wakes it: a connection does
        kill -TERM "$NGINX_PID" 2>/dev/null
        for i in $(seq 300); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            [ $((i % 20)) = 1 ] && (exec 3<>/dev/tcp/127.0.0.1/"$NGINX_PORT") 2>/dev/null
            sleep 0.05
        done
    fi
    kill -QUIT "$NGINX_PID" 2>/dev/null
    for i in $(seq 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    # workers of a killed master: find them by the pid file's directory only
    pkill -9 -P "$NGINX_PID" 2>/dev/null || true
}

# apps_kload OBJ [kloader args]: the kernel loader in the background until
# "loaded"; its output (map dump at exit) goes to $APPS_WORK/kloader.out.
apps_kload() {
    : >"$APPS_WORK/kloader.out"
    "$APPS_WORK/kloader" "$@" >"$APPS_WORK/kloader.out" 2>"$APPS_WORK/kloader.err" &
    KLOADER_PID=$!
    apps_track "$KLOADER_PID"
    local i
    for i in $(seq 200); do
        grep -q '^loaded' "$APPS_WORK/kloader.out" && return 0
        kill -0 "$KLOADER_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$APPS_WORK/kloader.err" >&2
    return 1
}
apps_kunload() { kill "$KLOADER_PID" 2>/dev/null; wait "$KLOADER_PID" 2>/dev/null; }
apps_build_kloader() {
    [ -x "$APPS_WORK/kloader" ] || cc -O2 -Wall -o "$APPS_WORK/kloader" "$APPS_EX/kloader.c" -lbpf
}

# apps_insn_per_req CFG SCHEME PORT: sets INSN_PER_REQ to the user-space
# instructions per request of
# nginx in configuration CFG, counted by valgrind's callgrind (no PMU needed;
# deterministic): nginx started by the caller's `start CFG` as one process
# under callgrind, $INSN_REQS1 then (in a fresh server) $INSN_REQS2
# keep-alive requests for the 612-byte page from one curl, stopped by `stop
# CFG`; (Ir of the second run - Ir of the first) / (INSN_REQS2 - INSN_REQS1)
# cancels start-up and shutdown. Calls insn_hook CFG REQS before stop when
# the caller defines it (to check that the extension fired; valgrind's log
# is $INSN_OUT.log). Only user space
# is counted: what a configuration costs in the kernel (tracepoints, uprobe
# traps, syscalls) is invisible here.
apps_insn_run() {   # apps_insn_run CFG SCHEME PORT N: one run; sets INSN_IR, INSN_THR
    local cfg=$1 scheme=$2 port=$3 n=$4 out=$APPS_WORK/callgrind.$1.$4 args=() i
    rm -f "$out"-*
    APPS_CALLGRIND=$out start "$cfg" || { APPS_CALLGRIND=$out stop "$cfg"; echo "insn $cfg: start failed" >&2; return 1; }
    for i in $(seq "$n"); do args+=(-o /dev/null "$scheme://127.0.0.1:$port/index.html"); done
    curl -sk "${args[@]}" || { APPS_CALLGRIND=$out stop "$cfg"; echo "insn $cfg: curl failed" >&2; tail -3 "$out.log" >&2; return 1; }
    INSN_OUT=$out
    if declare -F insn_hook >/dev/null; then insn_hook "$cfg" "$n"; fi
    APPS_CALLGRIND=$out stop "$cfg"
    # one file per thread (--separate-threads): the worker's and the
    # agent's, whose background thread is counted too (it polls the
    # registry: a few thousand instructions per second of run time)
    INSN_IR=$(cat "$out"-* 2>/dev/null | awk '/^totals:/ {s += $2; n++} END {if (n) print s}')
    INSN_THR=$(cat "$out"-* 2>/dev/null | awk '/^totals:/ {printf "%s%s", n++ ? "+" : "", $2}')
    [ -n "$INSN_IR" ] || { echo "insn $cfg: no callgrind totals:" >&2; tail -5 "$out.log" >&2; return 1; }
}
apps_insn_per_req() {
    local cfg=$1 n ir=() thr=() t0=$SECONDS
    for n in "${INSN_REQS1:-200}" "${INSN_REQS2:-1200}"; do
        # once in a few runs nginx under valgrind dies of a SIGTRAP mid-run
        # (seen with LuaJIT, with graft over HTTPS and with plain HTTPS;
        # never without valgrind): one retry
        apps_insn_run "$@" "$n" || { echo "insn $cfg: retrying the $n-request run" >&2; apps_insn_run "$@" "$n"; } || return 1
        ir+=("$INSN_IR"); thr+=("$INSN_THR")
    done
    echo "insn $cfg: Ir ${ir[0]} (threads ${thr[0]}) after ${INSN_REQS1:-200} requests," \
         "${ir[1]} (${thr[1]}) after ${INSN_REQS2:-1200}; $((SECONDS - t0)) s"
    INSN_PER_REQ=$(awk -v a="${ir[0]}" -v b="${ir[1]}" -v n=$(( ${INSN_REQS2:-1200} - ${INSN_REQS1:-200} )) \
        'BEGIN { printf "%.0f\n", (b - a) / n }')
}

# apps_insn_enabled: run the instruction counts? (APPS_INSN=0 skips them;
# they need valgrind, which make bench-apps installs.)
apps_insn_enabled() {
    [ "${APPS_INSN:-1}" = 1 ] || return 1
    command -v valgrind >/dev/null && return 0
    echo "SKIP: instruction counts (valgrind not installed)"
    return 1
}

# apps_model CASE US_PER_REQ FIRE_NS FIRES...: the use case's model figures
# (a cost noise cannot swamp): hook fires per request (median of FIRES) x the
# cost of one fire of the same program, against the worker's CPU time per
# request (US_PER_REQ us).
apps_model() {
    local case=$1 us=$2 fns=$3 fires; shift 3
    fires=$(apps_median "$@")
    echo "runs graft: fires per request $*"
    echo "BENCH ${case}_graft_fires_per_req $fires"
    echo "BENCH ${case}_graft_fire_ns $fns ns"
    echo "BENCH ${case}_graft_model_pct $(awk -v f="$fires" -v c="$fns" -v u="$us" \
        'BEGIN { printf "%.2f", f * c * 100 / (u * 1000) }') %"
}
