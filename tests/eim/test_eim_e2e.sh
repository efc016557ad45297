#!/usr/bin/env bash
# EIM extensions running inside the real host (tests/eim/host/app.c, spec
# tests/eim/app.eim.yaml), end to end through the graft command:
#   1. a host function: e2e_log (class observer) calls app_log; the host's
#      stderr shows exactly one line per request, and its map shows the
#      host's g_requests as the host had it
#   2. a host global: ok_counter (class counter) writes g_requests and reads
#      g_config_limit; the host prints the changed counter, capped at 100
#   3. the GRAFT_ENTRY source entry: e2e_source (class source_counter) runs
#      exactly once per request and sees n (= request id % 4); after unload
#      the NOP is back and nothing runs
#   4. refusals: violating extensions (exit 1, nothing loaded), an extern-using
#      object without --eim (the message), a host function missing in the
#      target (an agent error shown by graft list)
set -uo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
GRAFT=$BUILD/bin/graft
APP=$BUILD/tests/eim/app
APP_NOLOG=$BUILD/tests/eim/nolog/app
EXT=$BUILD/tests/eim/ext
E2E=$BUILD/tests/eim/e2e
SPEC=$HERE/app.eim.yaml
N=30                                  # requests per round
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.eime2e.$$   # under ctest: the run's own prefix
work=$(mktemp -d)
. "$HERE/../common/tprocs.sh"
cleanup() {
    tp_stop_all
    rm -rf "$work"
    tp_registry_remove   # maps' shm objects too
}
trap cleanup EXIT

. "$HERE/../common/tcheck.sh"

# field MAP NAME OFFSET: the u64 field NAME (at byte OFFSET) of element 0 of MAP
field() {
    "$GRAFT" map dump "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
name, off = sys.argv[1], int(sys.argv[2])
for e in d["entries"]:
    k = e["key"]
    if isinstance(k, list): k = int.from_bytes(bytes(k), "little")
    if k != 0: continue
    v = e["value"]
    if isinstance(v, dict): print(v[name])
    else: print(int.from_bytes(bytes(v[off:off + 8]), "little"))
' "$2" "$3"
}

start_loader() { tp_load "$work/load.log" "$@"; }   # start_loader OBJ [args]: until "loaded"
stop_loader() { tp_unload; }

start_app() {   # start_app BINARY: under graft start, rounds from a fifo
    rm -f "$work/in"; mkfifo "$work/in"
    "$GRAFT" start -- "$1" --serve $N <"$work/in" >"$work/out" 2>"$work/err" &
    tpid=$!
    tp_track "$tpid"
    exec 7>"$work/in"
    for _ in $(seq 200); do grep -q ready "$work/out" && return 0; sleep 0.02; done
    cat "$work/out" "$work/err"; return 1
}
round() {   # round K: one round of N requests; prints g_requests after it
    echo go >&7
    for _ in $(seq 500); do
        local l
        l=$(grep "^round $1 done" "$work/out") && { echo "${l##*requests=}"; return 0; }
        sleep 0.01
    done
    cat "$work/out" "$work/err" >&2; return 1
}
stop_app() { echo quit >&7; exec 7>&-; wait "$tpid" 2>/dev/null; }

# hooks PID INSTALLED FAILED: wait until the agent reports these counts
hooks() {
    for _ in $(seq 200); do
        "$GRAFT" list 2>/dev/null | grep -Eq "^  $1 .* hooks $2 installed, $3 failed" && return 0
        sleep 0.05
    done
    "$GRAFT" list; return 1
}
logs() { grep -a -c 'ext-log' "$work/err"; }

# site_bytes PID: the 5 bytes at app's after_parse GRAFT_ENTRY site in PID,
# in hex (the note's link-time address + the executable's load bias)
site_bytes() {
    objcopy --dump-section .note.graft="$work/note" "$APP" "$work/junk" || return 1
    python3 - "$1" "$APP" "$work/note" <<'PY'
import os, struct, sys
pid, exe, note = int(sys.argv[1]), os.path.realpath(sys.argv[2]), open(sys.argv[3], "rb").read()
off, addr = 0, None
while off + 12 <= len(note):
    namesz, descsz, typ = struct.unpack_from("<III", note, off)
    name_end = off + 12 + ((namesz + 3) & ~3)
    desc = note[name_end:name_end + descsz]
    if desc[8:].split(b"\0")[0] == b"after_parse":
        addr = struct.unpack_from("<Q", desc)[0]
    off = name_end + ((descsz + 3) & ~3)
base = None
for line in open("/proc/%d/maps" % pid):
    f = line.split()
    if len(f) >= 6 and os.path.realpath(f[5]) == exe and (base is None or int(f[0].split("-")[0], 16) < base):
        base = int(f[0].split("-")[0], 16)
with open("/proc/%d/mem" % pid, "rb") as m:
    m.seek(base + addr)   # PIE: lowest PT_LOAD vaddr is 0
    print(m.read(5).hex())
PY
}

echo "== 1. a host function (app_log) and a host global read (observer)"
check "host starts under graft start" start_app "$APP"
check "e2e_log loads in class observer" start_loader "$E2E/e2e_log.bpf.o" --eim "$SPEC" --class observer --pid "$tpid"
check "the agent installed it" hooks "$tpid" 1 0
g=$(round 1); check "round 1 (g_requests $g, host alone: $N)" test "$g" = "$N"
check "app_log ran once per request ($N lines on the host's stderr)" test "$(logs)" = "$N"
check "the program ran $N times" test "$(field e2e_obs calls 0)" = "$N"
check "it saw the host's g_requests (= $((N - 1)) at the last entry)" test "$(field e2e_obs last_requests 8)" = "$((N - 1))"
check "app_log's results reached it (8 bytes x $N)" test "$(field e2e_obs log_ret 16)" = "$((8 * N))"
stop_loader
check "unloaded: the agent removed the hook" hooks "$tpid" 0 0
g=$(round 2); check "round 2 ran unhooked (g_requests $g)" test "$g" = "$((2 * N))"
check "no app_log calls after unload" test "$(logs)" = "$N"

echo "== 2. a host global written (counter)"
check "ok_counter loads in class counter" start_loader "$EXT/ok_counter.bpf.o" --eim "$SPEC" --class counter --pid "$tpid"
check "the agent installed it" hooks "$tpid" 1 0
# g_requests = 60: each request below g_config_limit (100) adds one more, so
# 20 requests take it to 100, then 10 add one each: 110.
g=$(round 3); check "the extension raised g_requests to 110 (got $g)" test "$g" = 110
g=$(round 4); check "capped by g_config_limit: only the host counts now (got $g)" test "$g" = $((110 + N))
stop_loader
check "unloaded" hooks "$tpid" 0 0

echo "== 3. the GRAFT_ENTRY source entry (source_counter)"
check "e2e_source loads in class source_counter" start_loader "$E2E/e2e_source.bpf.o" --eim "$SPEC" --class source_counter --pid "$tpid"
check "the agent patched the entry" hooks "$tpid" 1 0
check "graft list shows the source-entry link" sh -c "'$GRAFT' list | grep -q 'src_entry *app:after_parse'"
b=$(site_bytes "$tpid"); check "the NOP is now a jmp rel32 ($b)" test "${b:0:2}" = e9
g=$(round 5)
# requests 4N..5N-1 in this round; n = id % 4
want=$(python3 -c "print(sum(i % 4 for i in range(4 * $N, 5 * $N)))")
check "ran exactly once per request ($N)" test "$(field e2e_src runs 0)" = "$N"
check "saw the entry's argument n (sum $want)" test "$(field e2e_src sum_n 8)" = "$want"
check "n's largest value is 3" test "$(field e2e_src max_n 16)" = 3
g=$(round 6)
check "a second round: $((2 * N)) runs" test "$(field e2e_src runs 0)" = "$((2 * N))"
stop_loader
check "unloaded" hooks "$tpid" 0 0
b=$(site_bytes "$tpid"); check "the NOP is restored ($b)" test "$b" = 0f1f440000
# reload (a fresh map): the site is patched again and counts only new rounds
check "e2e_source loads again" start_loader "$E2E/e2e_source.bpf.o" --eim "$SPEC" --class source_counter --pid "$tpid"
check "patched again" hooks "$tpid" 1 0
round 7 >/dev/null
check "counts only the round after the reload" test "$(field e2e_src runs 0)" = "$N"
stop_loader
check "unloaded again" hooks "$tpid" 0 0
round 8 >/dev/null
check "no runs after the unload (the map is gone, the site a NOP)" test "$(site_bytes "$tpid")" = 0f1f440000
check "the host still serves after all of it" grep -q "^round 8 done" "$work/out"
check "the host never crashed" kill -0 "$tpid"

echo "== 3b. an override of a function entry (header_override)"
# handle_request returns len (10) + parse_header's result + level (0);
# ok_override makes parse_header return 9 for paths of 6+ bytes (id % 4 >= 2)
sum_of() { grep "^round $1 done" "$work/out" | sed 's/.*sum=\([0-9-]*\).*/\1/'; }
want_sum() { python3 -c "print(sum(10 + ((9 if i % 4 >= 2 else i % 4) if $3 else i % 4) for i in range($1, $2)))"; }
round 9 >/dev/null
check "unextended: handle_request's sum" test "$(sum_of 9)" = "$(want_sum $((8 * N)) $((9 * N)) 0)"
check "ok_override loads in class header_override" start_loader "$EXT/ok_override.bpf.o" --eim "$SPEC" --class header_override --pid "$tpid"
check "the agent installed it" hooks "$tpid" 1 0
round 10 >/dev/null
check "parse_header overridden: the host's results changed ($(sum_of 10))" \
    test "$(sum_of 10)" = "$(want_sum $((9 * N)) $((10 * N)) 1)"
stop_loader
check "unloaded" hooks "$tpid" 0 0
round 11 >/dev/null
check "the host's own results again" test "$(sum_of 11)" = "$(want_sum $((10 * N)) $((11 * N)) 0)"
out=$("$GRAFT" load "$EXT/ok_override.bpf.o" --eim "$SPEC" --class header_filter 2>&1); rc=$?
check "the override in a class without the grant: exit 1" test $rc = 1
check "... names class, capability and program" \
    grep -q "override of entry 'parse_header' is not granted to class 'header_filter': program 'ok_override'" <<<"$out"
out=$("$GRAFT" load "$EXT/bad_override_range.bpf.o" --eim "$SPEC" --class header_override 2>&1); rc=$?
check "an override outside the entry's return range: exit 1" test $rc = 1
check "... names the range" grep -q "R2 override return value may be in \[100, 100\], the policy requires \[0, 48\]" <<<"$out"
check "the host still serves" kill -0 "$tpid"
stop_app

echo "== 4. refusals"
for bad in bad_kfunc_ungranted:observer bad_global_write_ro:observer bad_global_ungranted:observer \
           bad_log_unbounded:observer bad_source_closed:source_probe; do
    out=$("$GRAFT" load "$EXT/${bad%%:*}.bpf.o" --eim "$SPEC" --class "${bad##*:}" 2>&1); rc=$?
    check "${bad%%:*} refused by graft load (exit 1)" test $rc = 1
    check "... nothing was loaded" grep -q "nothing was loaded" <<<"$out"
done
check "source entry in the wrong class refused" sh -c "! '$GRAFT' load '$E2E/e2e_source.bpf.o' --eim '$SPEC' --class observer >/dev/null 2>&1"
out=$("$GRAFT" load "$EXT/ok_observer.bpf.o" 2>&1); rc=$?
check "an extern-using object without --eim: exit 1" test $rc = 1
check "... says host functions and globals need an EIM class" \
    grep -q "host functions and globals need an EIM class (--eim SPEC --class NAME)" <<<"$out"
check "nothing registered by the refusals" sh -c "'$GRAFT' list 2>/dev/null | grep -q '^programs: 0'"

echo "== 5. a granted host function the target does not have"
check "host without app_log starts" start_app "$APP_NOLOG"
check "ok_observer loads (the spec grants app_log)" start_loader "$EXT/ok_observer.bpf.o" --eim "$SPEC" --class observer --pid "$tpid"
check "the agent reports the link failed" hooks "$tpid" 0 1
check "graft list names the missing host function" \
    sh -c "'$GRAFT' list | grep -q \"host function 'app_log' is not in this process\""
g=$(round 1); check "the host runs unextended (g_requests $g)" test "$g" = "$N"
stop_loader
stop_app

echo "$pass passed, $fails failed"
[ $fails = 0 ]
