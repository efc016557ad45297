#!/usr/bin/env bash
# bench/apps/firewall.sh BUILD - use case 1: an nginx request firewall.
#
# Reject URIs starting with "/admin" (403), count accepted and rejected
# requests, in Debian's /usr/sbin/nginx (1 worker, 127.0.0.1:18404), four ways:
#   none    no filter
#   native  examples/apps/nginx/firewall_module: a C access-phase module built
#           as a dynamic module with nginx-dev (configure --with-compat)
#   lua     libnginx-mod-http-lua: access_by_lua_block + lua_shared_dict counters
#   graft   examples/apps/nginx/firewall.bpf.c: override of
#           ngx_http_discard_request_body (see that file for why there),
#           request field offsets from nginx-dev's headers (offsets.c),
#           loaded under the EIM class 'firewall' of
#           examples/apps/nginx/nginx.eim.yaml (offsets filled in here)
# Throughput of accepted requests: wrk -t1 -c16, $APPS_SECS s, $APPS_RUNS
# rounds of the four, medians of each round's difference from its 'none'.
# Prints BENCH nginx_base_rps, nginx_{native,lua,graft}_overhead_pct
# (throughput lost vs none, %) and, steadier on a shared machine,
# nginx_base_worker_us_per_req and nginx_{native,lua,graft}_worker_cpu_pct
# (the nginx worker's CPU time per request, % more than none).
# Figures noise cannot swamp, same run: nginx_graft_model_pct = the
# extension's fires per request (its own counts, nginx_graft_fires_per_req)
# x one fire in a tight loop (bench/apps/fwloop.c, nginx_graft_fire_ns) /
# the base worker's CPU per request; and user-space instructions per
# request under callgrind (nginx_{base,native,lua,agent,graft}_insn_per_req,
# nginx_{native,lua,agent,graft}_insn_pct; agent = graft start, no
# extension; APPS_INSN=0 skips them).
# Correctness (every filter): /admin/secret.html -> 403, /public/a.html and
# / -> 200; graft's map counts exactly the requests made; the spec checks
# against the nginx binary (symbols; Debian's nginx has no DWARF) and the
# extension is refused under a class without the override grant.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
apps_init "${1:-}"
apps_install nginx nginx-dev libnginx-mod-http-lua wrk curl ||
    { echo "SKIP: nginx, nginx-dev, libnginx-mod-http-lua, wrk or curl not installed"; exit 0; }
PORT=18404
RUNS=${APPS_RUNS:-5}
SECS=${APPS_SECS:-3}
fails=0

# The native module and the offsets, built once per nginx version (cached
# in the build directory: nginx's configure takes a while).
ver=$(dpkg-query -W -f='${Version}' nginx-dev)
C=$APPS_BUILD/apps/nginx-$ver
if [ ! -e "$C/ngx_http_firewall_module.so" ] || [ ! -e "$C/offsets.flags" ] ||
   [ "$APPS_EX/nginx/firewall_module/ngx_http_firewall_module.c" -nt "$C/ngx_http_firewall_module.so" ] ||
   [ "$APPS_EX/nginx/offsets.c" -nt "$C/offsets.flags" ]; then
    rm -rf "$C"; mkdir -p "$C"
    cp -r /usr/share/nginx/src "$C/src"
    (
        cd "$C/src" || exit 1
        # shellcheck disable=SC1091
        . ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$APPS_EX/nginx/firewall_module" &&
            make -f objs/Makefile -j2 modules &&
            cp objs/ngx_http_firewall_module.so "$C/" &&
            cc -Iobjs -Isrc/core -Isrc/event -Isrc/event/modules -Isrc/os/unix -Isrc/http \
               -Isrc/http/modules -Isrc/http/v2 -o "$C/offsets" "$APPS_EX/nginx/offsets.c" &&
            "$C/offsets" >"$C/offsets.flags"
    ) >"$C/build.log" 2>&1 || { tail -20 "$C/build.log"; echo "FAIL: building the native module"; exit 1; }
    rm -rf "$C/src"
fi
apps_bpf "$APPS_EX/nginx/firewall.bpf.c" "$APPS_WORK/firewall.bpf.o" $(cat "$C/offsets.flags") \
    -DNGINX="\"$(readlink -f /usr/sbin/nginx)\"" || exit 1
# The EIM spec with this nginx's request layout (offsets.flags: -DNAME=VALUE).
SPEC=$APPS_WORK/nginx.eim.yaml
sed_args=()
for f in $(cat "$C/offsets.flags"); do f=${f#-D}; sed_args+=(-e "s/@${f%%=*}@/${f#*=}/g"); done
sed "${sed_args[@]}" "$APPS_EX/nginx/nginx.eim.yaml" >"$SPEC" || exit 1
if grep -q '@[A-Z_]*@' "$SPEC"; then echo "FAIL: unfilled offsets in $SPEC"; exit 1; fi

D=$APPS_WORK/nginx
apps_nginx_prepare "$D"
LISTEN="listen 127.0.0.1:$PORT;"
M=/usr/lib/nginx/modules
start() {
    case $1 in
        none) apps_nginx_start "$D" $PORT "" "" "$LISTEN" ;;
        native) apps_nginx_start "$D" $PORT "load_module $C/ngx_http_firewall_module.so;" "" "$LISTEN" ;;
        lua) apps_nginx_start "$D" $PORT "load_module $M/ndk_http_module.so; load_module $M/ngx_http_lua_module.so;" \
                 "lua_shared_dict fw 1m;" "$LISTEN
        access_by_lua_block {
            local fw = ngx.shared.fw
            if string.sub(ngx.var.uri, 1, 6) == \"/admin\" then
                fw:incr(\"rejected\", 1, 0)
                return ngx.exit(ngx.HTTP_FORBIDDEN)
            end
            fw:incr(\"accepted\", 1, 0)
        }" ;;
        agent) apps_nginx_start "$D" $PORT "" "" "$LISTEN" "$GRAFT" start -- ;;   # graft's agent, no extension
        graft) apps_load "$APPS_WORK/firewall.bpf.o" --eim "$SPEC" --class firewall || return 1
               apps_nginx_start "$D" $PORT "" "" "$LISTEN" "$GRAFT" start -- ;;
    esac
}
stop() { apps_nginx_stop; [ "$1" = graft ] && apps_unload; }
status() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$1"; }

# --- correctness ----------------------------------------------------------
eimcheck() { "$GRAFT" eim check "$SPEC" --host "$(command -v nginx)" >"$APPS_WORK/eimcheck.log" 2>&1 ||
                 { cat "$APPS_WORK/eimcheck.log"; return 1; }; }
check "graft eim check $SPEC --host nginx" eimcheck
refuse() {   # the override needs the class's grant; nothing gets loaded
    local out
    out=$("$GRAFT" load "$APPS_WORK/firewall.bpf.o" --eim "$SPEC" --class request_observer 2>&1) && return 1
    grep -q "override of entry 'ngx_http_discard_request_body' is not granted to class 'request_observer'" <<<"$out"
}
check "graft: refused under class request_observer (no override grant)" refuse
for cfg in native lua graft; do
    start $cfg || { echo "FAIL: start $cfg"; fails=$((fails + 1)); stop $cfg; continue; }
    # the start-up probe already made one accepted request: count from here
    [ $cfg = graft ] && { acc0=$(tp_mapval fw 0); rej0=$(tp_mapval fw 1); }
    check "$cfg: /admin/secret.html -> 403" test "$(status /admin/secret.html)" = 403
    check "$cfg: /public/a.html -> 200" test "$(status /public/a.html)" = 200
    check "$cfg: / -> 200" test "$(status /)" = 200
    if [ $cfg = graft ]; then
        for _ in $(seq 9); do status /admin/secret.html >/dev/null; status /public/a.html >/dev/null; done
        rej=$(($(tp_mapval fw 1) - rej0)); acc=$(($(tp_mapval fw 0) - acc0))
        check "graft: 10 rejected counted (got $rej)" test "$rej" = 10
        check "graft: 11 accepted counted (got $acc)" test "$acc" = 11
    fi
    stop $cfg
done
[ "${APPS_TEST_ONLY:-0}" = 1 ] && exit $((fails > 0))

# --- throughput -----------------------------------------------------------
URL="http://127.0.0.1:$PORT/index.html"
FIRES=()
paired_hook() {   # how often the extension decided per wrk request (its own counts)
    [ "$1" = graft ] || return 0
    FIRES+=("$(awk -v a="$(tp_mapval fw 0)" -v r="$(tp_mapval fw 1)" -v n="$2" \
        'BEGIN { printf "%.3f", (a + r) / n }')")
}
apps_paired "$RUNS" none native lua graft
echo "BENCH nginx_base_rps ${PAIRED_RPS[none]:-0} req/s"
echo "BENCH nginx_base_worker_us_per_req ${PAIRED_US[none]:-0} us"
for cfg in native lua graft; do
    [ -n "${PAIRED_LOSS[$cfg]:-}" ] || continue
    echo "BENCH nginx_${cfg}_overhead_pct ${PAIRED_LOSS[$cfg]} %"
    echo "BENCH nginx_${cfg}_worker_cpu_pct ${PAIRED_CPU[$cfg]} %"
done

# --- the model: fires per request x one fire in a tight loop ---------------
# One fire of the same object (same program, same array map) through the
# same override hook, on a function of the same name in bench/apps/fwloop.c
# called with a request of nginx's layout: rounds of FW_CALLS calls before
# and after `graft load`, medians; the map must count every hooked call.
FW_CALLS=${FW_CALLS:-1000000}
fire_ns() {
    local u=() h=() v i a0 a1
    cc -O2 -Wall $(cat "$C/offsets.flags") -o "$APPS_WORK/fwloop" "$APPS_SRC/bench/apps/fwloop.c" &&
        apps_bpf "$APPS_EX/nginx/firewall.bpf.c" "$APPS_WORK/fwloop.bpf.o" $(cat "$C/offsets.flags") \
            -DNGINX="\"$APPS_WORK/fwloop\"" || return 1
    coproc FWLOOP { taskset -c 1 "$GRAFT" start -- "$APPS_WORK/fwloop" "$FW_CALLS"; }
    apps_track "$FWLOOP_PID"
    round() { echo go >&"${FWLOOP[1]}" && read -r -t 30 v <&"${FWLOOP[0]}" && echo "$v"; }
    for i in $(seq 7); do u+=("$(round)"); done
    apps_load "$APPS_WORK/fwloop.bpf.o" --allow override || return 1
    for i in $(seq 250); do
        "$GRAFT" list 2>/dev/null | grep -qE "^  $FWLOOP_PID .*hooks 1 installed" && break
        sleep 0.02
    done
    a0=$(tp_mapval fw 0)
    for i in $(seq 7); do h+=("$(round)"); done
    a1=$(tp_mapval fw 0)
    exec {FWLOOP[1]}>&-
    wait "$FWLOOP_PID" 2>/dev/null
    apps_unload
    echo "runs fwloop: ns per call unhooked ${u[*]}; hooked ${h[*]}; counted $((a1 - a0))" >&2
    [ $((a1 - a0)) = $((7 * FW_CALLS)) ] || { echo "fwloop: the extension counted $((a1 - a0)) of $((7 * FW_CALLS)) calls" >&2; return 1; }
    awk -v h="$(apps_median "${h[@]}")" -v u="$(apps_median "${u[@]}")" 'BEGIN { printf "%.1f\n", h - u }'
}
if [ ${#FIRES[@]} -gt 0 ] && [ -n "${PAIRED_US[none]:-}" ]; then
    if fns=$(fire_ns); then
        apps_model nginx "${PAIRED_US[none]}" "$fns" "${FIRES[@]}"
    else
        echo "FAIL: the firewall's cost per fire (fwloop)"; fails=$((fails + 1))
    fi
fi

# --- user-space instructions per request (callgrind: deterministic) -------
# graft's hook must fire under valgrind too: its map counts every request.
insn_hook() {
    [ "$1" = graft ] || return 0
    local acc
    acc=$(tp_mapval fw 0)
    check "graft under callgrind: the firewall counted $acc accepted for $2 requests (+1 probe)" \
        test "$acc" -ge "$2" -a "$acc" -le $(($2 + 1))
}
if apps_insn_enabled; then
    declare -A INSN
    for cfg in none native lua agent graft; do
        if apps_insn_per_req $cfg http $PORT; then INSN[$cfg]=$INSN_PER_REQ
        else echo "FAIL: insn $cfg"; fails=$((fails + 1)); fi
    done
    echo "BENCH nginx_base_insn_per_req ${INSN[none]:-0} insns"
    for cfg in native lua agent graft; do
        [ -n "${INSN[$cfg]:-}" ] && [ -n "${INSN[none]:-}" ] || continue
        echo "BENCH nginx_${cfg}_insn_per_req ${INSN[$cfg]} insns"
        echo "BENCH nginx_${cfg}_insn_pct $(awk -v b="${INSN[none]}" -v x="${INSN[$cfg]}" \
            'BEGIN { printf "%.2f", (x - b) * 100 / b }') %"
    done
fi
[ $fails = 0 ]
