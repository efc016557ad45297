#!/usr/bin/env bash
# bench/apps/sslsniff.sh BUILD - use case 2: capture the plaintext of nginx's
# HTTPS traffic with uprobes on OpenSSL's SSL_write/SSL_read, the same
# unmodified libbpf tool on the kernel and on graft.
#
# The tool is tests/compat/tools/sslcap (libbpf-tools sslsniff style: entry
# probe saves the buffer, return probe copies the bytes the call moved - up
# to 16 KiB - into a ring buffer record). Debian's nginx links libssl.so.3,
# the library the tool's uprobes name. nginx serves HTTPS on 127.0.0.1:18405
# (self-signed certificate, 1 worker pinned to CPU 1), three ways:
#   base    no tool
#   kernel  the tool on the kernel (4 uprobes/uretprobes in libssl)
#   graft   nginx under `graft start`, the tool under `graft compat`
# Throughput: wrk -t1 -c16 (on CPU 0) over HTTPS (keep-alive) for $APPS_SECS s
# on the 612-byte page; $APPS_RUNS rounds of base, kernel, graft; a loss is
# the median over rounds of the loss against the same round's base. The
# tool (unpinned) only counts during these runs (no output files).
#   BENCH sslsniff_base_rps               median req/s without the tool
#   BENCH sslsniff_{kernel,graft}_loss_pct req/s lost, %
#   BENCH sslsniff_base_worker_us_per_req  the nginx worker's CPU time per
#                                          request (/proc/PID/schedstat)
#   BENCH sslsniff_{kernel,graft}_worker_cpu_pct  how much more of it, %
#   BENCH sslsniff_graft_{fires_per_req,fire_ns,model_pct}  the model: graft's
#         records per request x one probe pair (bench/hooks/sslsniff_bench)
#         / base worker CPU per request
#   BENCH sslsniff_{base,graft}_insn_per_req, sslsniff_graft_insn_pct
#         user-space instructions per request under callgrind (APPS_INSN=0
#         skips them)
# Correctness (kernel and graft): a client makes $SS_REQS requests over a
# few keep-alive connections (the 612-byte page, a 40 KiB page of random
# text that takes several SSL_writes, a 404) and keeps every byte it sent and
# received; the bytes the tool captured from SSL_write must equal the bytes
# received, those from SSL_read the bytes sent, and the client checks every
# response body against the file served.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
apps_init "${1:-}"
apps_install nginx wrk curl openssl || { echo "SKIP: nginx/wrk/curl/openssl not installed"; exit 0; }
PORT=18405
RUNS=${APPS_RUNS:-5}
SECS=${APPS_SECS:-3}
SS_REQS=${SS_REQS:-300}
fails=0

TOOL=$APPS_BUILD/tests/compat/tools/sslcap
if [ "${APPS_NOBUILD:-0}" != 1 ]; then
    cmake --build "$APPS_BUILD" --target compat_tool_sslcap graft-compat >"$APPS_WORK/build-tool.log" 2>&1 ||
        { tail -5 "$APPS_WORK/build-tool.log" >&2; }
fi
[ -x "$TOOL" ] && [ -e "$APPS_BUILD/lib/libgraft-compat.so" ] ||
    { echo "SKIP: $TOOL or libgraft-compat.so not built (tests/compat needs bpftool, libbpf, libssl)"; exit 0; }
LIBSSL=/usr/lib/x86_64-linux-gnu/libssl.so.3
nginx_ssl=$(ldd /usr/sbin/nginx 2>/dev/null | awk '$1 == "libssl.so.3" {print $3}')
[ -n "$nginx_ssl" ] && [ "$(readlink -f "$nginx_ssl")" = "$(readlink -f "$LIBSSL")" ] ||
    { echo "SKIP: /usr/sbin/nginx does not link $LIBSSL (the library the tool probes)"; exit 0; }

D=$APPS_WORK/nginx
apps_nginx_prepare "$D"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/key.pem" -out "$D/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 >/dev/null 2>&1 || { echo "FAIL: openssl could not make a certificate"; exit 1; }
python3 -c 'import base64, os, sys; sys.stdout.write(base64.b64encode(os.urandom(30000)).decode())' >"$D/html/big.html"
SERVER="listen 127.0.0.1:$PORT ssl; ssl_certificate $D/cert.pem; ssl_certificate_key $D/key.pem;"
URL=https://127.0.0.1:$PORT/index.html

# wait_hooks PID N: until graft's agent in PID has installed N hooks.
wait_hooks() {
    local out
    for _ in $(seq 250); do
        out=$("$GRAFT" list 2>/dev/null)
        grep -qE "^  $1 .*hooks $2 installed, 0 failed" <<<"$out" && return 0
        sleep 0.02
    done
    echo "graft's agent in $1 did not install $2 hooks:" >&2; echo "$out" >&2
    return 1
}

# tool_start HOW(kernel|graft) [sslcap args]: the tool on nginx's worker,
# until it is attached (and, on graft, its hooks are in the worker). Sets TOOL_PID.
tool_start() {
    local how=$1; shift
    local worker
    worker=$(pgrep -P "$NGINX_PID" | head -1)
    [ -n "$worker" ] || [ -z "${APPS_CALLGRIND:-}" ] || worker=$NGINX_PID   # one process under callgrind
    [ -n "$worker" ] || { echo "no nginx worker" >&2; return 1; }
    : >"$APPS_WORK/tool.err"
    if [ "$how" = graft ]; then
        "$GRAFT" compat -- "$TOOL" -p "$worker" "$@" >"$APPS_WORK/tool.out" 2>"$APPS_WORK/tool.err" &
    else
        "$TOOL" -p "$worker" "$@" >"$APPS_WORK/tool.out" 2>"$APPS_WORK/tool.err" &
    fi
    TOOL_PID=$!
    apps_track "$TOOL_PID"
    for _ in $(seq 500); do
        grep -q '^attached' "$APPS_WORK/tool.err" && break
        kill -0 "$TOOL_PID" 2>/dev/null || break
        sleep 0.02
    done
    grep -q '^attached' "$APPS_WORK/tool.err" || { echo "sslcap ($how) did not attach:" >&2; cat "$APPS_WORK/tool.err" >&2; return 1; }
    [ "$how" = graft ] && { wait_hooks "$worker" 4 || return 1; }
    return 0
}
# tool_stop: SIGINT, the tool drains its ring buffer and prints its counts.
tool_stop() {
    kill -INT "$TOOL_PID" 2>/dev/null
    wait "$TOOL_PID" 2>/dev/null
}
tool_count() { awk -v d="$1" -v f="$2" '$1 == d { for (i = 2; i < NF; i += 2) if ($i == f) print $(i + 1) }' "$APPS_WORK/tool.out"; }

start() {
    case $1 in
        base|kernel) apps_nginx_start "$D" "$PORT ssl" "" "" "$SERVER" || return 1 ;;
        graft) apps_nginx_start "$D" "$PORT ssl" "" "" "$SERVER" "$GRAFT" start -- || return 1 ;;
    esac
    [ "$1" = base ] || tool_start "$1" "${@:2}"
}
stop() {
    [ "$1" = base ] || tool_stop
    apps_nginx_stop
}

# --- correctness: captured bytes == bytes on the wire ------------------------
client() {   # client SENT RECEIVED: $SS_REQS requests, raw bytes kept
    python3 - "$PORT" "$SS_REQS" "$D/html" "$1" "$2" <<'PY'
import socket, ssl, sys
port, n, root, sent_path, recv_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
pages = {"/index.html": open(root + "/index.html", "rb").read(),
         "/big.html": open(root + "/big.html", "rb").read(), "/nope.html": None}
order = ["/index.html", "/big.html", "/index.html", "/nope.html"]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sent, recv = bytearray(), bytearray()
conn, buf = None, b""
def read_response():
    global buf
    while b"\r\n\r\n" not in buf:
        d = conn.recv(65536); assert d, "connection closed"; recv.extend(d); buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(buf) < length:
        d = conn.recv(65536); assert d, "connection closed"; recv.extend(d); buf += d
    body, buf = buf[:length], buf[length:]
    return status, body
for i in range(n):
    if i % 100 == 0:   # a new connection (a new TLS session) now and then
        if conn: conn.close()
        conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        buf = b""
    path = order[i % len(order)]
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sslsniff-check/%d\r\n\r\n" % (path, i)).encode()
    conn.sendall(req); sent.extend(req)
    status, body = read_response()
    want = pages[path]
    if want is None:
        assert status == 404, (path, status)
    else:
        assert status == 200 and body == want, (path, status, len(body), len(want))
conn.close()
open(sent_path, "wb").write(sent)
open(recv_path, "wb").write(recv)
PY
}
for how in kernel graft; do
    start "$how" -w "$APPS_WORK/$how.write" -r "$APPS_WORK/$how.read" ||
        { echo "FAIL: start $how"; fails=$((fails + 1)); stop "$how"; continue; }
    check "$how: $SS_REQS HTTPS responses have the served bodies" client "$APPS_WORK/sent" "$APPS_WORK/recv"
    sleep 0.2
    stop "$how"
    sz=$(stat -c %s "$APPS_WORK/recv" 2>/dev/null)
    check "$how: SSL_write capture == the $sz response bytes received ($(tool_count WRITE calls) calls, $(tool_count WRITE truncated) truncated)" \
        cmp -s "$APPS_WORK/$how.write" "$APPS_WORK/recv"
    check "$how: SSL_read capture == the $(stat -c %s "$APPS_WORK/sent" 2>/dev/null) request bytes sent" \
        cmp -s "$APPS_WORK/$how.read" "$APPS_WORK/sent"
    check "$how: nothing dropped" test "$(sed -n 's/^dropped //p' "$APPS_WORK/tool.out")" = 0
done
check "graft: the tool left nothing in the registry" \
    grep -q "^links: 0" <<<"$("$GRAFT" list 2>/dev/null)"
[ "${APPS_TEST_ONLY:-0}" = 1 ] && exit $((fails > 0))

# --- throughput -----------------------------------------------------------
# ss_wrk: one wrk run; prints "req/s requests worker-cpu-ns" (lib.sh).
ss_wrk() { apps_wrk_cpu "$URL" "$SECS"; }
# Each round runs base, kernel, graft back to back; a configuration's loss
# is the median over rounds of its loss against that round's base (the
# machine's load drifts more between rounds than within one).
declare -A res cpu loss cost
FIRES=()
for _ in $(seq "$RUNS"); do
    declare -A r=() c=()
    for cfg in base kernel graft; do
        start $cfg || { echo "FAIL: start $cfg"; fails=$((fails + 1)); stop $cfg; continue; }
        read -r v n t <<<"$(ss_wrk)"
        stop $cfg
        [ -n "${n:-}" ] || { echo "FAIL: $cfg: wrk did not run"; fails=$((fails + 1)); continue; }
        if [ $cfg != base ]; then
            # one SSL_write per response: the tool saw every response wrk
            # counted, plus at most the 16 in flight when wrk stopped
            w=$(tool_count WRITE calls)
            [ "${w:-0}" -ge "$n" ] && [ "${w:-0}" -le $((n + 16)) ] ||
                { echo "FAIL: $cfg: the tool saw ${w:-0} SSL_writes for $n responses"; fails=$((fails + 1)); }
            # the model's fires: graft's records (SSL_write + SSL_read calls
            # that moved bytes) per request
            [ $cfg = graft ] && FIRES+=("$(awk -v w="${w:-0}" -v r="$(tool_count READ calls)" -v n="$n" \
                'BEGIN { printf "%.3f", (w + r) / n }')")
        fi
        r[$cfg]=$v
        # the worker's CPU time per request (us): less sensitive than req/s
        # to how much of the shared machine other processes took
        c[$cfg]=$(awk -v t="$t" -v n="$n" 'BEGIN { printf "%.2f", t / n / 1000 }')
        res[$cfg]+="$v "; cpu[$cfg]+="${c[$cfg]} "
    done
    for cfg in kernel graft; do
        [ -n "${r[base]:-}" ] && [ -n "${r[$cfg]:-}" ] || continue
        loss[$cfg]+="$(apps_pct "${r[base]}" "${r[$cfg]}") "
        cost[$cfg]+="$(awk -v b="${c[base]}" -v x="${c[$cfg]}" 'BEGIN { printf "%.1f", (x - b) * 100 / b }') "
    done
done
for cfg in base kernel graft; do
    echo "runs $cfg: req/s ${res[$cfg]:-}; worker us/request ${cpu[$cfg]:-}; loss % ${loss[$cfg]:-}; worker CPU +% ${cost[$cfg]:-}"
done
[ -n "${res[base]:-}" ] && echo "BENCH sslsniff_base_rps $(apps_median ${res[base]}) req/s"
[ -n "${cpu[base]:-}" ] && echo "BENCH sslsniff_base_worker_us_per_req $(apps_median ${cpu[base]}) us"
for cfg in kernel graft; do
    [ -n "${loss[$cfg]:-}" ] || continue
    echo "BENCH sslsniff_${cfg}_loss_pct $(apps_median ${loss[$cfg]}) %"
    echo "BENCH sslsniff_${cfg}_worker_cpu_pct $(apps_median ${cost[$cfg]}) %"
done

# --- the model: fires per request x one fire in a tight loop ---------------
# One fire = an uprobe + uretprobe pair that saves the buffer in a hash and
# copies 1 KiB into a ring-buffer record (bench/hooks/sslsniff_bench,
# sslsniff_prog_ns_per_kib_1k: the same-shaped programs; a 612-byte page is
# ~850 bytes with its headers, wrk's requests are smaller). Fires are the
# calls that moved bytes: a lower bound (nginx's SSL_read calls that return
# "want read" fire too, with no record).
if [ ${#FIRES[@]} -gt 0 ] && [ -n "${cpu[base]:-}" ] &&
   { [ "${APPS_NOBUILD:-0}" = 1 ] || cmake --build "$APPS_BUILD" --target sslsniff_bench >/dev/null; }; then
    fires=$(apps_median "${FIRES[@]}")
    fire_ns=$("$APPS_BUILD/bench/hooks/sslsniff_bench" 2>/dev/null | awk '$2 == "sslsniff_prog_ns_per_kib_1k" {print $3}')
    echo "runs graft: records per request ${FIRES[*]}"
    echo "BENCH sslsniff_graft_fires_per_req $fires"
    echo "BENCH sslsniff_graft_fire_ns ${fire_ns:-0} ns"
    echo "BENCH sslsniff_graft_model_pct $(awk -v f="$fires" -v c="${fire_ns:-0}" -v u="$(apps_median ${cpu[base]})" \
        'BEGIN { printf "%.2f", f * c * 100 / (u * 1000) }') %"
fi

# --- user-space instructions per request (callgrind: deterministic) -------
# base and graft only: the kernel's uprobes run in the kernel (int3 traps),
# which callgrind does not see. Under graft the tool's hooks are installed
# in the valgrind-run nginx by its agent (code patched while valgrind runs
# it: --smc-check=all) and must see every response.
if apps_insn_enabled; then
    declare -A INSN
    for cfg in base graft; do
        if apps_insn_per_req $cfg https $PORT; then INSN[$cfg]=$INSN_PER_REQ
        else echo "FAIL: insn $cfg"; fails=$((fails + 1)); fi
    done
    w=$(tool_count WRITE calls)   # the last graft run's
    check "graft under callgrind: the tool saw ${w:-0} SSL_writes for ${INSN_REQS2:-1200} requests (+1 probe)" \
        test "${w:-0}" -ge "${INSN_REQS2:-1200}" -a "${w:-0}" -le $((${INSN_REQS2:-1200} + 1))
    echo "BENCH sslsniff_base_insn_per_req ${INSN[base]:-0} insns"
    if [ -n "${INSN[graft]:-}" ] && [ -n "${INSN[base]:-}" ]; then
        echo "BENCH sslsniff_graft_insn_per_req ${INSN[graft]} insns"
        echo "BENCH sslsniff_graft_insn_pct $(awk -v b="${INSN[base]}" -v x="${INSN[graft]}" \
            'BEGIN { printf "%.2f", (x - b) * 100 / b }') %"
    fi
fi
[ $fails = 0 ]
