#!/usr/bin/env bash
# bench/apps/hotpatch.sh BUILD - use case 5: fix a bug in a running server.
#
# examples/apps/hotpatch/maxd.c answers "max N..." with an off-by-one
# (all-negative input gives 0). We start it, show the wrong answer, inject the
# agent (`graft attach PID`), load fix.bpf.c (replace/maxd:checked_max) for
# that pid, show the right answer from the same process and connection-less
# restart-free, unload, and show the wrong answer again.
# Prints ok:/FAIL: lines, then
#   BENCH hotpatch_apply_ms   attach + load until the first fixed answer
#   BENCH hotpatch_unpatch_ms unload until the first unpatched answer
# Exit status 1 if any check failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
apps_init "${1:-}"
PORT=18401
fails=0

cc -O2 -g -Wall -o "$APPS_WORK/maxd" "$APPS_EX/hotpatch/maxd.c" || exit 1
apps_bpf "$APPS_EX/hotpatch/fix.bpf.c" "$APPS_WORK/fix.bpf.o" -DMAXD="\"$APPS_WORK/maxd\"" || exit 1

ask() {   # ask "max ..." -> the server's answer line
    exec 3<>/dev/tcp/127.0.0.1/$PORT || return 1
    echo "$1" >&3
    local line
    read -r -t 5 line <&3
    exec 3>&-
    echo "$line"
}
now_ms() { date +%s%3N; }

"$APPS_WORK/maxd" $PORT >"$APPS_WORK/maxd.log" 2>&1 &
MAXD=$!
apps_track $MAXD
apps_wait_port $PORT || exit 1

check "unpatched: positive input is right" test "$(ask 'max 3 9 4')" = "max = 9"
check "unpatched: all-negative input is wrong (the bug)" test "$(ask 'max -5 -3 -9')" = "max = 0"

t0=$(now_ms)
check "graft attach to the running server" "$GRAFT" attach $MAXD
check "graft load the fix for that pid" apps_load "$APPS_WORK/fix.bpf.o" --pid $MAXD --allow override
fixed=0
for _ in $(seq 100); do
    [ "$(ask 'max -5 -3 -9')" = "max = -3" ] && { fixed=1; break; }
    sleep 0.02
done
t1=$(now_ms)
check "patched: all-negative input is right" test $fixed = 1
check "patched: positive input still right" test "$(ask 'max 3 9 4')" = "max = 9"
check "patched: 16 values" test "$(ask 'max -16 -15 -14 -13 -12 -11 -10 -9 -8 -7 -6 -5 -4 -3 -2 -20')" = "max = -2"
check "same process (no restart)" kill -0 $MAXD
calls=$(tp_mapval patched_calls 0)
check "the patch counted its calls (>= 3, got $calls)" test "$calls" -ge 3

t2=$(now_ms)
apps_unload
unfixed=0
for _ in $(seq 100); do
    [ "$(ask 'max -5 -3 -9')" = "max = 0" ] && { unfixed=1; break; }
    sleep 0.02
done
t3=$(now_ms)
check "unloaded: the original (buggy) function runs again" test $unfixed = 1
check "unloaded: positive input right" test "$(ask 'max 1 2 3')" = "max = 3"

[ $fixed = 1 ] && echo "BENCH hotpatch_apply_ms $((t1 - t0)) ms"
[ $unfixed = 1 ] && echo "BENCH hotpatch_unpatch_ms $((t3 - t2)) ms"
[ $fails = 0 ]
