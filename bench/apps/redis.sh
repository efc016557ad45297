#!/usr/bin/env bash
# bench/apps/redis.sh BUILD - use case 4: redis durability tuning at fdatasync.
#
# Unmodified Debian redis-server 7 on 127.0.0.1:18402, AOF in a fresh
# directory on disk for every run. Throughput: redis-benchmark SET
# (-c 16, -n $REDIS_N) for
#   noaof     appendonly no
#   everysec  appendfsync everysec
#   always    appendfsync always (fdatasync before every reply batch)
#   batchN    always + examples/apps/redis/fsync_batch.bpf.c -DBATCH=N under
#             graft (only every N-th fdatasync reaches the disk), N=2,4,8,16
#   delayed   always + the same extension with -DDELAY_US=1000 (a flush is
#             real only if the last real one is >= 1 ms old)
# interleaved, $APPS_RUNS runs each, median reported.
#
# Loss bound. kill -9 of redis loses nothing that was written to the AOF:
# skipped fdatasyncs leave the data in the page cache, which survives the
# process. So a kill -9 + restart test shows 0 lost writes even with no
# fsync at all (we run it anyway and report it: redis_kill9_lost_writes).
# What skipping a flush risks is a *power failure*. We measure that: a client
# does sequential acknowledged SETs (one in flight, so one write per flush);
# we kill -9 redis mid-stream, then take from the extension's map the AOF
# offset up to which the last *completed* real fdatasync made the file
# durable, and count the acknowledged SETs that end past it
# (examples/apps/redis/redis_loss.py). The extension counts bytes when
# write() returns: counting them at its entry (before the kernel has them)
# over-counted by one SET when the kill fell in between. Over several kills per configuration
# the maximum is redis_graft_max_lost_writes (batch-N must be <= N-1 < N).
# Exit status 1 if a bound is violated or a check fails.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
apps_init "${1:-}"
apps_install redis-server redis-tools || { echo "SKIP: redis-server/redis-tools not installed"; exit 0; }
PORT=18402
RUNS=${APPS_RUNS:-5}
REDIS_N=${REDIS_N:-20000}
BATCHES=${REDIS_BATCHES:-2 4 8 16}
KILLS=${REDIS_KILLS:-3}
LOSS=$APPS_EX/redis/redis_loss.py
fails=0

for n in $BATCHES; do
    apps_bpf "$APPS_EX/redis/fsync_batch.bpf.c" "$APPS_WORK/batch$n.bpf.o" -DBATCH=$n || exit 1
done
apps_bpf "$APPS_EX/redis/fsync_batch.bpf.c" "$APPS_WORK/delayed.bpf.o" -DDELAY_US=1000 || exit 1

# The extension's byte accounting, checked without redis: a process writes
# an AOF-like file (one write before its first fdatasync, as redis does), then
# makes a write the kernel cuts short (RLIMIT_FSIZE). The map must hold the
# file's real size and the offset of the last real fdatasync: bytes counted
# at write()'s entry instead of its return would claim the 40 asked for.
accounting_check() {
    local f=$APPS_WORK/acct.aof flag=$APPS_WORK/acct.flag pid
    "$GRAFT" start -- python3 -c '
import os, resource, signal, sys, time
path, flag = sys.argv[1], sys.argv[2]
def wait_for(what):
    while not os.path.exists(flag + what):
        time.sleep(0.01)
wait_for(".go")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, b"a" * 51)
os.fdatasync(fd)                      # the first flush: real
os.write(fd, b"b" * 28)
os.fdatasync(fd)                      # batch 2: skipped
resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
os.write(fd, b"c" * 40)               # only 21 bytes fit
open(flag + ".done", "w").close()
wait_for(".end")
' "$f" "$flag" &
    pid=$!
    apps_track $pid
    apps_load "$APPS_WORK/batch2.bpf.o" --pid $pid --allow override || return 1
    : >"$flag.go"
    local i
    for i in $(seq 200); do [ -e "$flag.done" ] && break; sleep 0.05; done
    local size written synced
    size=$(stat -c %s "$f" 2>/dev/null || echo missing)
    written=$(tp_mapval st 3); synced=$(tp_mapval st 4)
    : >"$flag.end"; wait $pid; apps_unload
    check "accounting: AOF bytes counted as written ($written) = file size ($size)" test "$written" = "$size"
    check "accounting: durable offset ($synced) = bytes at the real fdatasync (51)" test "$synced" = 51
}
case " $BATCHES " in *" 2 "*) accounting_check || { echo "FAIL: accounting check did not run"; fails=$((fails + 1)); } ;; esac

# start_redis CONFIG [keep]: a fresh server (fresh AOF dir unless keep).
start_redis() {
    local cfg=$1 dir=$APPS_WORK/data
    [ "${2:-}" = keep ] || { rm -rf "$dir"; mkdir -p "$dir"; }
    local args=(--port $PORT --bind 127.0.0.1 --dir "$dir" --save '' --daemonize no
                --auto-aof-rewrite-percentage 0 --logfile "$APPS_WORK/redis.log")
    case $cfg in
        noaof) args+=(--appendonly no) ;;
        everysec) args+=(--appendonly yes --appendfsync everysec) ;;
        *) args+=(--appendonly yes --appendfsync always) ;;
    esac
    case $cfg in
        batch* | delayed) "$GRAFT" start -- redis-server "${args[@]}" & ;;
        *) redis-server "${args[@]}" & ;;
    esac
    RPID=$!
    apps_track $RPID
    apps_wait_port $PORT || return 1
    # The port accepts before redis's event loop runs; its start-up writes
    # and fdatasyncs (the AOF manifest) must be over before the extension
    # comes, or it would learn the wrong fd.
    local i
    for i in $(seq 200); do
        [ "$(redis-cli -p $PORT ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
    done
    case $cfg in
        batch* | delayed) apps_load "$APPS_WORK/$cfg.bpf.o" --pid $RPID --allow override || return 1 ;;
    esac
}
stop_redis() {
    kill -9 $RPID 2>/dev/null; wait $RPID 2>/dev/null
    case $1 in batch* | delayed) apps_unload ;; esac
}

rps() {   # one redis-benchmark run
    redis-benchmark -p $PORT -t set -n "$REDIS_N" -c 16 -r 100000 -q 2>/dev/null |
        tr '\r' '\n' | awk '/^SET: [0-9.]+ requests per second/ {print $2}' | tail -1
}

configs=(noaof everysec always)
for n in $BATCHES; do configs+=(batch$n); done
configs+=(delayed)
declare -A res
for run in $(seq "$RUNS"); do
    for cfg in "${configs[@]}"; do
        start_redis "$cfg" || { echo "FAIL: start $cfg"; fails=$((fails + 1)); continue; }
        v=$(rps)
        if [ "$cfg" != "${cfg#batch}" ]; then
            real=$(tp_mapval st 1); skipped=$(tp_mapval st 2)
            n=${cfg#batch}
            # with 16 clients flushes are few; the ratio must still be ~1/N
            check "$cfg run $run: real fdatasyncs ($real) ~ calls/$n ($((real + skipped))/$n)" \
                test $(( (real + skipped + n - 1) / n )) = "$real"
        fi
        stop_redis "$cfg"
        [ -n "$v" ] && res[$cfg]+="$v "
    done
done
for cfg in "${configs[@]}"; do
    # shellcheck disable=SC2086
    [ -n "${res[$cfg]:-}" ] && echo "BENCH redis_$( [ "$cfg" = "${cfg#batch}" ] && [ "$cfg" != delayed ] && echo "$cfg" || echo "graft_$cfg")_rps $(apps_median ${res[$cfg]}) req/s"
done

# --- loss bound: acknowledged writes at risk on power failure ---------------
loss_once() {   # loss_once CONFIG -> "at_risk kill9_lost acked"
    local cfg=$1
    start_redis "$cfg" || return 1
    rm -f "$APPS_WORK/writing"
    python3 "$LOSS" write $PORT "$APPS_WORK/writing" >"$APPS_WORK/acked" &
    local wpid=$!
    apps_track $wpid
    local i
    for i in $(seq 400); do
        [ -e "$APPS_WORK/writing" ] && break
        kill -0 $wpid 2>/dev/null || break
        sleep 0.05
    done
    [ -e "$APPS_WORK/writing" ] || { echo "the writer never got an acknowledgement" >&2; kill -9 $RPID $wpid; wait $RPID $wpid 2>/dev/null; [ "$cfg" = always ] || apps_unload; return 1; }
    sleep "0.$((RANDOM % 5 + 2))"
    kill -9 $RPID; wait $RPID 2>/dev/null
    wait $wpid
    local last at_risk=0 aof
    last=$(cat "$APPS_WORK/acked")
    aof=$(ls "$APPS_WORK"/data/appendonlydir/*.incr.aof)
    if [ "$cfg" != always ]; then
        local written synced
        written=$(tp_mapval st 3); synced=$(tp_mapval st 4)
        at_risk=$(python3 "$LOSS" unsynced "$aof" "$synced" "$written" "$last")
        local st=$?
        apps_unload
        [ $st = 0 ] || return 1
    fi
    # The restart: what kill -9 really lost (page cache survives: expect 0).
    start_redis always keep || return 1
    local gone
    gone=$(python3 "$LOSS" missing $PORT "$last")
    stop_redis always
    echo "$at_risk $gone $last"
}
maxlost_all=0
for cfg in always $(for n in $BATCHES; do echo batch$n; done) delayed; do
    max=0 k9=0
    for k in $(seq "$KILLS"); do
        read -r at_risk gone acked < <(loss_once "$cfg") || { echo "FAIL: loss run $cfg"; fails=$((fails + 1)); continue; }
        echo "loss $cfg kill $k: $acked acknowledged, $at_risk un-synced at the kill, $gone lost by kill -9"
        [ "$at_risk" -gt "$max" ] && max=$at_risk
        [ "$gone" -gt "$k9" ] && k9=$gone
    done
    case $cfg in
        always) echo "BENCH redis_always_max_lost_writes $max writes"
                check "always: nothing acknowledged is un-synced" test "$max" = 0 ;;
        batch*) n=${cfg#batch}
                echo "BENCH redis_graft_${cfg}_max_lost_writes $max writes"
                check "batch-$n: at most $((n - 1)) acknowledged writes un-synced (max $max)" test "$max" -le $((n - 1))
                [ "$max" -gt "$maxlost_all" ] && maxlost_all=$max ;;
        delayed) echo "BENCH redis_graft_delayed_max_lost_writes $max writes" ;;
    esac
    check "$cfg: kill -9 + restart loses no acknowledged write (page cache survives)" test "$k9" = 0
done
echo "BENCH redis_graft_max_lost_writes $maxlost_all writes"
[ $fails = 0 ]
