#!/usr/bin/env bash
# bench/apps/syscount.sh BUILD - use case 3: count nginx's system calls per
# syscall under load, in the kernel vs under graft.
#
# The same object (examples/apps/nginx/syscount.bpf.c, raw_tracepoint/sys_enter,
# filtered to processes named nginx) runs
#   kernel  loaded with examples/apps/kloader.c (libbpf, raw tracepoint: fires
#           for every syscall on the machine, wrk's included)
#   graft   nginx started by `graft start` (master and its forked worker carry
#           the agent; syscall hooks in each), object loaded with `graft load`
# Throughput: wrk -t1 -c16 for $APPS_SECS s on a 612-byte page, 1 nginx
# worker, $APPS_RUNS rounds of the three, medians of each round's difference
# from its base.
#   BENCH syscount_base_rps, syscount_{kernel,graft}_loss_pct (req/s lost),
#   syscount_base_worker_us_per_req, syscount_{kernel,graft}_worker_cpu_pct
#   (the nginx worker's CPU time per request, % more than base),
#   syscount_graft_fires_per_req (graft's count of nginx's syscalls / wrk
#   requests), syscount_graft_fire_ns (one fire of the same object through
#   the hook, in a tight loop: bench/apps/scloop.c) and
#   syscount_graft_model_pct = fires x fire cost / base
#   worker CPU per request: the extension's cost from first principles;
#   syscount_base_insn_per_req (user-space instructions per request under
#   callgrind; graft's figure only where its syscall hook runs under
#   valgrind, which it does not: see below; APPS_INSN=0 skips it)
# Correctness: kernel and graft count the same nginx at the same time while a
# client makes $SC_REQS requests, one connection each: accept4 must match
# exactly, and every syscall seen >= $SC_REQS/2 times within 1%.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
apps_init "${1:-}"
apps_install nginx wrk curl || { echo "SKIP: nginx/wrk/curl not installed"; exit 0; }
PORT=18403
RUNS=${APPS_RUNS:-5}
SECS=${APPS_SECS:-3}
SC_REQS=${SC_REQS:-1000}
fails=0

D=$APPS_WORK/nginx
apps_nginx_prepare "$D"
apps_build_kloader || exit 1
apps_bpf "$APPS_EX/nginx/syscount.bpf.c" "$APPS_WORK/syscount.bpf.o" || exit 1

start() {   # start CONFIG
    case $1 in
        base) apps_nginx_start "$D" $PORT "" "" "listen 127.0.0.1:$PORT;" ;;
        kernel) apps_kload "$APPS_WORK/syscount.bpf.o" || return 1
                apps_nginx_start "$D" $PORT "" "" "listen 127.0.0.1:$PORT;" ;;
        graft) apps_load "$APPS_WORK/syscount.bpf.o" || return 1
               apps_nginx_start "$D" $PORT "" "" "listen 127.0.0.1:$PORT;" "$GRAFT" start -- ;;
    esac
}
stop() {
    apps_nginx_stop
    case $1 in kernel) apps_kunload ;; graft) apps_unload ;; esac
}

URL="http://127.0.0.1:$PORT/index.html"
counted=0
FIRES=()
# the syscalls nginx made in this graft run (start-up included), counted by
# graft itself, per wrk request: how often the program fired per request
fires_per_req() {   # fires_per_req REQS
    "$GRAFT" map dump counts | python3 -c '
import json, sys
n = sum(v if not isinstance(v, list) else int.from_bytes(bytes(v), "little")
        for v in (e["value"] for e in json.load(sys.stdin)["entries"]))
print("%.2f" % (n / float(sys.argv[1])))' "$1"
}
paired_hook() {   # the first graft run must have counted nginx's syscalls
    [ "$1" = graft ] || return 0
    local f
    f=$(fires_per_req "$2") && FIRES+=("$f")
    [ $counted = 0 ] || return 0
    counted=1
    local n w
    n=$(tp_mapval counts 288)     # accept4
    w=$(tp_mapval counts 20)      # writev
    check "graft counted nginx's syscalls under wrk (accept4 $n, writev $w)" test "${w:-0}" -gt 1000
}
if [ "${SC_FIRE_ONLY:-0}" != 1 ]; then
apps_paired "$RUNS" base kernel graft
echo "BENCH syscount_base_rps ${PAIRED_RPS[base]:-0} req/s"
echo "BENCH syscount_base_worker_us_per_req ${PAIRED_US[base]:-0} us"
for cfg in kernel graft; do
    [ -n "${PAIRED_LOSS[$cfg]:-}" ] || continue
    echo "BENCH syscount_${cfg}_loss_pct ${PAIRED_LOSS[$cfg]} %"
    echo "BENCH syscount_${cfg}_worker_cpu_pct ${PAIRED_CPU[$cfg]} %"
done
fi
# --- the model: fires per request x one fire in a tight loop ---------------
# One fire of the same object (same program, its own hash map, loaded by
# `graft load`) through the same syscall hook: bench/apps/scloop.c, built
# as an executable named nginx (the program's name filter passes, as in
# nginx), under `graft start`; each round times SC_CALLS getpid calls
# through a copy graft does not rewrite and SC_CALLS through one it hooks.
# One fire = median over SC_ROUNDS rounds after `graft load` of (hooked -
# plain), less the same over SC_ROUNDS rounds before. The map must count exactly the
# hooked getpid calls.
SC_CALLS=${SC_CALLS:-200000}
SC_ROUNDS=${SC_ROUNDS:-11}
fire_ns() {
    local u=() h=() v i a0 a1
    mkdir -p "$APPS_WORK/scloop" &&
        cc -O2 -Wall -o "$APPS_WORK/scloop/nginx" "$APPS_SRC/bench/apps/scloop.c" || return 1
    coproc SCLOOP { taskset -c 1 "$GRAFT" start -- "$APPS_WORK/scloop/nginx" "$SC_CALLS"; }
    apps_track "$SCLOOP_PID"
    # one round: hooked - plain, ns per call
    round() { echo go >&"${SCLOOP[1]}" && read -r -t 60 v <&"${SCLOOP[0]}" &&
              awk -v l="$v" 'BEGIN { split(l, f, " "); printf "%.2f\n", f[2] - f[1] }'; }
    for i in $(seq "$SC_ROUNDS"); do u+=("$(round)"); done
    apps_load "$APPS_WORK/syscount.bpf.o" || return 1
    # hooked once the map counts the loop's getpid calls (warm-up rounds)
    for i in $(seq 100); do
        round >/dev/null
        [ "$(tp_mapval counts 39)" -gt 0 ] 2>/dev/null && break
        sleep 0.05
    done
    round >/dev/null
    a0=$(tp_mapval counts 39)
    for i in $(seq "$SC_ROUNDS"); do h+=("$(round)"); done
    a1=$(tp_mapval counts 39)
    exec {SCLOOP[1]}>&-
    wait "$SCLOOP_PID" 2>/dev/null
    apps_unload
    echo "runs scloop: ns per getpid hooked - plain, before the load ${u[*]}; after ${h[*]}; counted $((a1 - a0))" >&2
    [ $((a1 - a0)) = $((SC_ROUNDS * SC_CALLS)) ] ||
        { echo "scloop: the extension counted $((a1 - a0)) getpid calls, want $((SC_ROUNDS * SC_CALLS))" >&2; return 1; }
    awk -v h="$(apps_median "${h[@]}")" -v u="$(apps_median "${u[@]}")" 'BEGIN { printf "%.1f\n", h - u }'
}
# SC_FIRE_ONLY=1: only this figure (no nginx, no port): to compare builds,
# interleaved (bench/apps/syscount.sh OTHER_BUILD runs OTHER_BUILD's graft
# with this tree's scloop.c and object)
if [ "${SC_FIRE_ONLY:-0}" = 1 ]; then
    fns=$(fire_ns) || { echo "FAIL: syscount's cost per fire (scloop)"; exit 1; }
    echo "BENCH syscount_graft_fire_ns $fns ns"
    exit 0
fi
if [ ${#FIRES[@]} -gt 0 ] && [ -n "${PAIRED_US[base]:-}" ]; then
    if fns=$(fire_ns); then
        apps_model syscount "${PAIRED_US[base]}" "$fns" "${FIRES[@]}"
    else
        echo "FAIL: syscount's cost per fire (scloop)"; fails=$((fails + 1))
    fi
fi

# --- user-space instructions per request (callgrind: deterministic) -------
# The kernel configuration is not counted: its tracepoint runs in the kernel,
# which callgrind does not see. graft's syscall hook must fire under valgrind
# too: its map counts nginx's syscalls.
# It does not: zpoline needs page 0, which valgrind never maps for its
# client, and the seccomp fallback needs seccomp(2), which valgrind does not
# implement ("unhandled amd64-linux syscall: 317"); so graft's syscall path
# is as invisible to callgrind as the kernel's, and no graft figure is
# printed unless the hook did fire.
SC_INSN_FIRES=()
insn_hook() {
    [ "$1" = graft ] || return 0
    SC_INSN_FIRES+=("$(fires_per_req "$2")")
    [ "${SC_INSN_FIRES[-1]}" != 0.00 ] ||
        echo "note: graft's syscall hook did not fire under callgrind ($(grep -m1 -o 'syscall hooks: .*' "$INSN_OUT.log"))"
}
if apps_insn_enabled; then
    declare -A INSN
    for cfg in base graft; do
        if apps_insn_per_req $cfg http $PORT; then INSN[$cfg]=$INSN_PER_REQ
        else echo "FAIL: insn $cfg"; fails=$((fails + 1)); fi
    done
    echo "BENCH syscount_base_insn_per_req ${INSN[base]:-0} insns"
    if [ -n "${INSN[graft]:-}" ] && [ -n "${INSN[base]:-}" ] && [ "${SC_INSN_FIRES[0]:-0.00}" != 0.00 ]; then
        echo "BENCH syscount_graft_insn_per_req ${INSN[graft]} insns"
        echo "BENCH syscount_graft_insn_pct $(awk -v b="${INSN[base]}" -v x="${INSN[graft]}" \
            'BEGIN { printf "%.2f", (x - b) * 100 / b }') %"
    fi
fi

# --- the same counts from both, at the same time ------------------------------
apps_kload "$APPS_WORK/syscount.bpf.o" &&
apps_load "$APPS_WORK/syscount.bpf.o" &&
apps_nginx_start "$D" $PORT "" "" "listen 127.0.0.1:$PORT;" "$GRAFT" start -- || exit 1
sleep 0.5
# snapshots before and after the requests: compare the deltas, so the
# agent's own start-up syscalls (made in nginx's name) do not count
snap() {   # snap N: graft's map to graft.N.json, the kernel's to kernel.N
    local lines
    lines=$(grep -c '^--' "$APPS_WORK/kloader.out")
    kill -USR1 "$KLOADER_PID"
    "$GRAFT" map dump counts >"$APPS_WORK/graft.$1.json"
    for _ in $(seq 100); do [ "$(grep -c '^--' "$APPS_WORK/kloader.out")" -gt "$lines" ] && break; sleep 0.02; done
    awk -v n=$((lines + 1)) '/^--/ {seen++; next} seen == n - 1 && NF == 3' "$APPS_WORK/kloader.out" >"$APPS_WORK/kernel.$1"
}
snap 0
python3 - "$PORT" "$SC_REQS" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/index.html", headers={"Connection": "close"})
    r = c.getresponse(); r.read(); c.close()
    assert r.status == 200
PY
sleep 0.3
snap 1
apps_nginx_stop
apps_kunload
python3 - "$APPS_WORK" "$SC_REQS" <<'PY' || fails=$((fails + 1))
import json, sys
w = sys.argv[1]
def graft(i):
    g = {}
    for e in json.load(open("%s/graft.%d.json" % (w, i)))["entries"]:
        k, v = e["key"], e["value"]
        k = k if not isinstance(k, list) else int.from_bytes(bytes(k), "little")
        v = v if not isinstance(v, list) else int.from_bytes(bytes(v), "little")
        g[k] = v
    return g
def kernel(i):
    k = {}
    for line in open("%s/kernel.%d" % (w, i)):
        f = line.split()
        if f[0] == "counts":
            k[int(f[1])] = int(f[2])
    return k
def delta(a, b):
    return {x: b.get(x, 0) - a.get(x, 0) for x in set(a) | set(b)}
g = delta(graft(0), graft(1))
k = delta(kernel(0), kernel(1))
n = int(sys.argv[2])
bad = 0
def ok(what, cond):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += not cond
ok("accept4: kernel %d == graft %d (>= %d requests)" % (k.get(288, 0), g.get(288, 0), n),
   k.get(288, 0) == g.get(288, 0) and g.get(288, 0) >= n)
for nr in sorted(set(g) | set(k)):
    a, b = k.get(nr, 0), g.get(nr, 0)
    if max(a, b) >= n // 2:
        ok("syscall %d: kernel %d, graft %d (within 1%%)" % (nr, a, b), abs(a - b) <= max(a, b) // 100)
sys.exit(1 if bad else 0)
PY
apps_unload
[ $fails = 0 ]
