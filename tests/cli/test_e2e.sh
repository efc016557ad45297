#!/usr/bin/env bash
# End to end through the graft command, on a real process:
#   1. graft start: a program loaded first is installed before main(); exact counts
#   2. graft attach into a running process, a program loaded after it started,
#      detach, re-attach; exact counts in each phase; syscall hooks; an entry
#      too short for the jump (int3 fallback, reported); the verifier's facts
#      used by the agent's JIT, and not with GRAFT_JIT_FACTS=0
#   3. errors: no such pid, process exits mid-attach, rejected program, bad object
#   4. permissions: another uid can neither read maps nor load into our registry
#   5. graft unload of what --detach left, shared memory included
#   6. isolation: on with PKU, otherwise said so; --require-isolation refuses
set -uo pipefail
BUILD=$1
HERE=$2
GRAFT=$BUILD/bin/graft
TARGET=$HERE/e2e_target
OBJ=$HERE/bpf/count_work.bpf.o
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.e2e.$$   # under ctest: the run's own prefix
work=$(mktemp -d)
. "$(dirname "$0")/../common/tprocs.sh"
cleanup() {
    tp_stop_all
    tp_registry_remove   # maps' shm objects (the trace buffer's too)
    rm -rf "$work"
}
trap cleanup EXIT

. "$(dirname "$0")/../common/tcheck.sh"

# counts KEY: value of key KEY in map "counts"; mapval MAP KEY: in map MAP (tprocs.sh)
counts() { tp_mapval counts "$1"; }
mapval() { tp_mapval "$@"; }

# start_loader [args]: graft load of $LOAD_OBJ (default $OBJ) in the background until "loaded"
start_loader() { tp_load "$work/load.log" "${LOAD_OBJ:-$OBJ}" "$@"; }
stop_loader() { tp_unload; }
# Wait until the agent in $tpid has installed every link of the last load
# (the agent reconciles asynchronously; a fixed sleep loses on a busy box).
wait_hooks() {
    local want
    want=$(sed -n 's/.* \([0-9][0-9]*\) link(s).*/\1/p' "$work/load.log")
    for _ in $(seq 400); do
        "$GRAFT" list | grep -E "^ +$tpid " | grep -q "hooks $want installed" && return 0
        sleep 0.05
    done
    "$GRAFT" list; return 1
}

# A target reading rounds from a fifo. start_target [graft start]
start_target() {
    rm -f "$work/in"; mkfifo "$work/in"
    if [ "${1:-}" = agent ]; then
        "$GRAFT" start -- "$TARGET" 1000 <"$work/in" >"$work/out" 2>&1 &
    else
        "$TARGET" 1000 <"$work/in" >"$work/out" 2>&1 &
    fi
    tpid=$!
    tp_track "$tpid"
    exec 7>"$work/in"
    for _ in $(seq 200); do grep -q ready "$work/out" && return 0; sleep 0.02; done
    return 1
}
round() {   # round N [LINE]: send LINE (default "go") and wait for round N
    echo "${2:-go}" >&7
    for _ in $(seq 500); do grep -q "round $1 done" "$work/out" && return 0; sleep 0.01; done
    cat "$work/out"; return 1
}
stop_target() { echo quit >&7; exec 7>&-; wait "$tpid" 2>/dev/null; }
# with_object NAME: a fresh target started with the agent and bpf/NAME.bpf.o
# loaded for it; end_object stops both.
with_object() {
    check "target starts with the agent" start_target agent
    LOAD_OBJ=$HERE/bpf/$1.bpf.o
    check "load $1 for this target" start_loader --pid "$tpid"
}
end_object() { stop_loader; unset LOAD_OBJ; stop_target; }

echo "== 1. graft start"
check "load comes up" start_loader
check "target starts with the agent" start_target agent
check "round 1" round 1
check "1000 calls counted" test "$(counts 0)" = 1000
check "argument sum seen (0+..+999)" test "$(counts 1)" = 499500
check "round 2" round 2
check "2000 calls counted" test "$(counts 0)" = 2000
check "graft list shows the agent process" sh -c "'$GRAFT' list | grep -q 'e2e_target.*running'"
stop_target
stop_loader
check "unload removed the map" sh -c "! '$GRAFT' map dump counts 2>/dev/null"

echo "== 1b. \"loaded\" means the target's agent has installed the hooks"
# A slow agent (GRAFT_TEST_AGENT_DELAY_MS: it waits before each reconcile):
# the very first round after "loaded", with no wait_hooks, must be counted.
# graft load used to say "loaded" once the registry held the links, and this
# round ran unhooked.
GRAFT_TEST_AGENT_DELAY_MS=700 check "target starts with a slow agent" start_target agent
check "load for it, no other wait" start_loader --pid "$tpid"
check "round 1 right after \"loaded\"" round 1
check "... counted in full" test "$(counts 0)" = 1000
stop_target
stop_loader

echo "== 2. graft attach, late load, detach, re-attach"
check "plain target starts" start_target
check "round 1 unhooked" round 1
check "graft attach" "$GRAFT" attach "$tpid"
check "load after the target started" start_loader --pid "$tpid"
check "the agent installed the hooks" wait_hooks
check "round 2 hooked" round 2
check "exactly the hooked round counted" test "$(counts 0)" = 1000
check "graft detach" "$GRAFT" detach "$tpid"
check "round 3 after detach" round 3
check "nothing counted after detach" test "$(counts 0)" = 1000
stop_target
stop_loader

echo "== 2a. graft attach passes its own settings, never reads the host's environment"
# The target runs with another registry in its environment and a thread
# rewriting that environment: the injected agent must join graft attach's
# registry (it used to take the target's, so attach waited for it in vain)
# and must not walk environ while the host frees it.
GRAFT_REGISTRY=$GRAFT_REGISTRY.not-this-one check "plain target with another registry starts" start_target
check "a thread rewrites its environment" round 1 churn
check "graft attach" "$GRAFT" attach "$tpid"
check "the agent is in graft attach's registry" sh -c "'$GRAFT' list | grep -E '^ +$tpid ' | grep -q running"
check "no settings file left behind" test ! -e "/dev/shm/graft.attach.$tpid"
check "load for it" start_loader --pid "$tpid"
check "the agent installed the hooks" wait_hooks
check "round 2 hooked" round 2
check "exactly the hooked round counted" test "$(counts 0)" = 1000
stop_target
stop_loader

echo "== 2b. detach and re-attach repeatedly"
check "plain target starts" start_target
check "load for this target" start_loader --pid "$tpid"
expected=0
r=0
for cycle in 1 2 3 4 5; do
    check "attach (cycle $cycle)" "$GRAFT" attach "$tpid"
    r=$((r + 1)); check "hooked round $r" round $r; expected=$((expected + 1000))
    check "detach (cycle $cycle)" "$GRAFT" detach "$tpid"
    r=$((r + 1)); check "unhooked round $r" round $r
done
check "counted exactly the attached rounds ($expected)" test "$(counts 0)" = "$expected"
stop_target
stop_loader

echo "== 2c. syscall hooks: syscount and a deny list"
check "target starts with the agent" start_target agent
LOAD_OBJ=$HERE/bpf/syscount.bpf.o
check "load syscount for this target" start_loader --pid "$tpid"
check "the agent installed the syscall hooks" wait_hooks
check "syscall round" round 1 sys
check "sys_enter_getppid saw exactly 1000 getppid calls" test "$(mapval getppid_calls 0)" = 1000
check "raw sys_enter counted getppid (nr 110) exactly 1000 times" test "$(mapval by_id 110)" = 1000
check "sys_enter_newuname (the kernel's name) saw exactly 1000 uname calls" test "$(mapval uname_calls 0)" = 1000
check "raw sys_enter counted uname (nr 63) exactly 1000 times" test "$(mapval by_id 63)" = 1000
check "raw sys_enter saw the target's write(2) calls too" test "$(mapval by_id 1)" -ge 1
check "tracepoint raw_syscalls/sys_enter saw exactly 1000 getppid calls" test "$(mapval raw_tp_getppid 0)" = 1000
stop_loader
LOAD_OBJ=$HERE/bpf/deny_open.bpf.o
out=$("$GRAFT" load "$LOAD_OBJ" --pid "$tpid" 2>&1); rc=$?
check "the deny list (bpf_override_return) is refused without --allow override" test $rc = 1
check "... naming the right and the flag" grep -q "needs the right 'override'.*--allow=override" <<<"$out"
check "load the deny list with --allow override" start_loader --pid "$tpid" --allow override
check "... said loudly" grep -q "graft load: WARNING: --allow override" "$work/load.log"
check "the agent installed the deny list" wait_hooks
check "open of a denied path" round 2 "open /tmp/graft-denied-$$"
check "... fails with EACCES" grep -q "round 2 done open Permission denied" "$work/out"
check "open of another path" round 3 "open $work/allowed"
check "... succeeds" grep -q "round 3 done open ok" "$work/out"
check "exactly one denial counted" test "$(mapval denied 0)" = 1
check "the denied file was never created" test ! -e "/tmp/graft-denied-$$"
stop_loader
unset LOAD_OBJ
stop_target

echo "== 2d. a function too short for the jump: int3 hook, said so"
with_object count_tiny
check "the agent installed the hook" wait_hooks
check "tiny round" round 1 tiny
check "the int3 hook counted all 1000 calls" test "$(mapval tiny_calls 0)" = 1000
check "graft list says the hook is an int3 and why" \
    sh -c "'$GRAFT' list | grep -E '^ +$tpid ' | grep -q 'int3 hook (.*shorter than the 5-byte jump'"
check "the agent said it on stderr too" grep -q "graft-agent\[$tpid\]: link .* at tiny: int3 hook" "$work/out"
end_object

echo "== 2e. tail calls through a declared prog array"
with_object tail_work
check "one link: the tail-call target has none" grep -q " 1 link(s)" "$work/load.log"
check "the loader filled the declared slot" test "$(mapval jumps 1)" -gt 0
check "the agent installed the hook" wait_hooks
check "tail-call round" round 1
check "first ran 1000 times" test "$(mapval tc_counts 0)" = 1000
check "the empty slot fell through each time" test "$(mapval tc_counts 1)" = 1000
check "second ran 1000 times by tail call" test "$(mapval tc_counts 2)" = 1000
check "nothing ran after a tail call that worked" test "$(mapval tc_counts 3)" = 0
check "second saw work()'s argument (0+..+999)" test "$(mapval tc_counts 4)" = 499500
end_object

echo "== 2e'. a prog array joining a uprobe and a socket program"
out=$("$GRAFT" load "$HERE/bpf/tail_mixed.bpf.o" --detach 2>&1); rc=$?
check "load refused: exit 1" test $rc = 1
check "... naming the prog array" \
    grep -q "prog array mixed joins programs verified for different contexts or policies" <<<"$out"
check "... and both programs" \
    grep -q "deep_reader (socket, socket).*dispatch (uprobe/.*:work, uprobe)\|dispatch (uprobe/.*:work, uprobe).*deep_reader (socket, socket)" <<<"$out"
check "... and nothing is loaded" sh -c "! '$GRAFT' map dump mixed 2>/dev/null"
"$GRAFT" unload --all >/dev/null 2>&1

echo "== 2f. a map of maps with declared inner maps"
with_object mim_work
check "the loader filled declared slot 0" test "$(mapval outer 0)" -gt 0
check "the loader filled declared slot 1" test "$(mapval outer 1)" -gt 0
check "the agent installed the hook" wait_hooks
check "map-of-maps round" round 1
check "500 even arguments counted in inner_even" test "$(mapval inner_even 0)" = 500
check "500 odd arguments counted in inner_odd" test "$(mapval inner_odd 0)" = 500
check "no lookup of the outer map came back empty" test "$(mapval no_inner 0)" = 0
end_object

echo "== 2h. the verifier's facts reach the agent's JIT (GRAFT_JIT_FACTS=0 turns them off)"
# facts_work's shift and branch rest on frozen .rodata constants that the
# facts fold into the code; its sum must not change with them.
facts_want=$(python3 -c 'print(sum(((i * 40503) ^ ((i * 40503) >> 7)) for i in range(1000)))')
facts_rewritten() {
    "$GRAFT" list | grep -E "^ +$tpid " | sed -n 's/.*jit facts: \([0-9]*\) insns rewritten in \([0-9]*\) programs.*/\1 \2/p'
}
with_object facts_work
check "graft list marks the program as stored with the verifier's facts" \
    sh -c "'$GRAFT' list | grep -E '^ +[0-9]+ +facts_work ' | grep -q 'verifier facts'"
check "the agent installed the hook" wait_hooks
check "facts round" round 1
with_facts=$(facts_rewritten)
check "the agent's JIT rewrote instructions of one program by the facts ($with_facts)" \
    sh -c "test \"\${1% *}\" -gt 0 && test \"\${1#* }\" = 1" sh "$with_facts"
check "the sum computed with the facts is right" test "$(mapval facts_out 0)" = "$facts_want"
check "... and the branch the facts removed went the right way" test "$(mapval facts_out 1)" = 0
end_object
export GRAFT_JIT_FACTS=0
with_object facts_work
check "the agent installed the hook" wait_hooks
check "facts-off round" round 1
check "GRAFT_JIT_FACTS=0: no instruction rewritten" test "$(facts_rewritten)" = "0 0"
check "... and the same sum" test "$(mapval facts_out 0)" = "$facts_want"
end_object
unset GRAFT_JIT_FACTS

echo "== 2g. a map of maps whose declared inner map is not its template"
out=$("$GRAFT" load "$HERE/bpf/mim_bad.bpf.o" --detach 2>&1); rc=$?
check "load refused as a bad object: exit 2" test $rc = 2
check "... naming the slot, the map and both shapes" \
    grep -q "map 'outer_bad' slot 1: map 'inner_small' (type 2, key 4, value 4, 1 entries, flags 0) is not the inner map the outer map declares (type 2, key 4, value 64" <<<"$out"
check "... and nothing is loaded" sh -c "! '$GRAFT' map dump outer_bad 2>/dev/null"
"$GRAFT" verify "$HERE/bpf/mim_bad.bpf.o" >/dev/null 2>&1; rc=$?
check "graft verify refuses it too (exit 2)" test $rc = 2
"$GRAFT" unload --all >/dev/null 2>&1

echo "== 3. errors"
out=$("$GRAFT" attach 999999 2>&1); rc=$?
check "attach to a missing pid fails with exit 1" test $rc = 1
check "... and says so" grep -qi "no such process\|999999" <<<"$out"
out=$("$GRAFT" load "$HERE/bpf/reject_oob.bpf.o" 2>&1); rc=$?
check "rejected program: exit 1" test $rc = 1
check "... names the rule" grep -qi "insn" <<<"$out"
check "... and loads nothing" sh -c "! '$GRAFT' map dump vals 2>/dev/null"
printf 'not an elf' >"$work/bad.o"
"$GRAFT" load "$work/bad.o" >/dev/null 2>&1; rc=$?
check "malformed object: exit 2" test $rc = 2
"$GRAFT" verify "$HERE/bpf/reject_oob.bpf.o" >/dev/null 2>&1; rc=$?
check "graft verify rejects with exit 1" test $rc = 1
"$GRAFT" verify "$OBJ" >/dev/null 2>&1; rc=$?
check "graft verify accepts with exit 0" test $rc = 0
"$GRAFT" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command: exit 2" test $rc = 2
# Processes that exit while we attach, at different moments: every attempt
# must end in success or a clean failure naming the process, never a crash
# (exit >= 128) or a hang (timeout gives 124).
clean=1
for delay in 0 0.001 0.003 0.01 0.03; do
    sleep "$delay" & short=$!
    out=$(timeout 20 "$GRAFT" attach "$short" 2>&1); rc=$?
    wait "$short" 2>/dev/null
    if [ $rc = 1 ]; then
        grep -q "$short\|exited\|no such process" <<<"$out" || { echo "unclear failure: $out"; clean=0; }
    elif [ $rc != 0 ]; then
        echo "attach to exiting pid $short: rc=$rc: $out"; clean=0
    fi
done
check "processes exiting mid-attach: success or a clean error, never a crash or hang" test $clean = 1

echo "== 4. permissions"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    check "load for permission tests" start_loader
    mapshm=$(ls /dev/shm | grep "^${GRAFT_REGISTRY#/}\.m\." | head -1)
    nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    check "graft load names its maps under the registry" test -n "$mapshm"
    check "map objects are 0600" sh -c "test \"\$(stat -c %a /dev/shm/$mapshm)\" = 600"
    check "another uid cannot read a map" sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat /dev/shm/$mapshm >/dev/null 2>&1"
    check "another uid cannot use our registry" sh -c "! GRAFT_REGISTRY=$GRAFT_REGISTRY setpriv --reuid=65534 --regid=65534 --clear-groups '$GRAFT' list >/dev/null 2>&1"
    check "another uid cannot attach to our process" sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups '$GRAFT' attach $$ >/dev/null 2>&1"
    stop_loader
else
    echo "SKIP: permission tests need root and setpriv"
fi

echo "== 5. graft unload: what --detach left behind"
"$GRAFT" load "$OBJ" --detach >/dev/null 2>&1
shm=$("$GRAFT" map dump counts | python3 -c 'import json,sys; print(json.load(sys.stdin)["shm"])')
trace_shm=$("$GRAFT" map dump graft.trace | python3 -c 'import json,sys; print(json.load(sys.stdin)["shm"])')
prog=$("$GRAFT" list | awk '/^programs:/ {getline; print $1}')
check "--detach left a program and its map" test -n "$prog" -a -e "/dev/shm$shm"
check "graft unload PROG" "$GRAFT" unload "$prog"
check "... the program and its link are gone" sh -c "'$GRAFT' list | grep -q '^programs: 0' && '$GRAFT' list | grep -q '^links: 0'"
"$GRAFT" unload 999999 >/dev/null 2>&1; rc=$?
check "unknown id: exit 1" test $rc = 1
check "graft unload --all" "$GRAFT" unload --all
check "... maps gone from the registry" sh -c "'$GRAFT' list | grep -q '^maps: 0'"
check "... and their shared memory, the trace buffer's too" test ! -e "/dev/shm$shm" -a ! -e "/dev/shm$trace_shm"

echo "== 5b. a damaged registry; names a stranger created first"
"$GRAFT" load "$OBJ" --detach >/dev/null 2>&1
shm=$("$GRAFT" map dump counts | python3 -c 'import json,sys; print(json.load(sys.stdin)["shm"])')
check "--detach left a map" test -e "/dev/shm$shm"
printf 'garbage!garbage!' | dd of="/dev/shm$GRAFT_REGISTRY" bs=1 conv=notrunc 2>/dev/null
out=$("$GRAFT" list 2>&1); rc=$?
check "graft list on a damaged registry: exit 1, saying so and what to do" \
    sh -c 'test "$1" = 1 && echo "$2" | grep -q "damaged.*graft unload --all"' _ "$rc" "$out"
check "graft unload --all removes a damaged registry" "$GRAFT" unload --all
check "... and every map of it" test ! -e "/dev/shm$shm" -a ! -e "/dev/shm$GRAFT_REGISTRY"
check "... after which graft load works again" sh -c "'$GRAFT' load '$OBJ' --detach >/dev/null 2>&1 && '$GRAFT' unload --all >/dev/null"
# A program store changed after graft load verified it: agents refuse it.
"$GRAFT" load "$OBJ" --detach >/dev/null 2>&1
store=$(ls /dev/shm | grep "^${GRAFT_REGISTRY#/}\.p\." | head -1)
printf '\267\000\000\000\001\000\000\000' | dd of="/dev/shm/$store" bs=1 conv=notrunc 2>/dev/null
check "target starts with the agent" start_target agent
check "an agent does not compile a program whose store was changed after verification" \
    sh -c "for i in \$(seq 200); do grep -q 'does not hold what was verified' '$work/out' && exit 0; sleep 0.02; done; exit 1"
check "... the target still runs" round 1
check "... unhooked, and graft list says why" sh -c "'$GRAFT' list | grep -E '^ +$tpid ' | grep 'hooks 0 installed, 1 failed' | grep -q 'SHA-256'"
stop_target
"$GRAFT" unload --all >/dev/null 2>&1
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    # Program stores used to be <registry>.prog<id>: guessable.
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
        "for i in \$(seq 1 600); do : > /dev/shm$GRAFT_REGISTRY.prog\$i; done"
    check "program-store names a stranger created first do not block graft load" \
        sh -c "'$GRAFT' load '$OBJ' --detach >/dev/null 2>&1"
    "$GRAFT" unload --all >/dev/null 2>&1
    rm -f /dev/shm$GRAFT_REGISTRY.prog*
    squat=/graft.squat.$$
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "umask 022; : > /dev/shm$squat"
    out=$(GRAFT_REGISTRY=$squat "$GRAFT" load "$OBJ" --detach 2>&1); rc=$?
    check "a registry another user created first: refused, naming it, its owner and the fix" \
        sh -c 'test "$1" = 1 && echo "$2" | grep -q "$3.*owned by uid 65534.*rm /dev/shm$3"' _ "$rc" "$out" "$squat"
    check "... left as it was, and no map was made for it" \
        sh -c "test \"\$(stat -c %s /dev/shm$squat)\" = 0 && ! ls /dev/shm | grep -q '^${squat#/}\.'"
    rm -f /dev/shm$squat
else
    echo "SKIP: squatting tests need root and setpriv"
fi

echo "== 6. isolation: on with PKU, otherwise off and said so"
if grep -qw pku /proc/cpuinfo; then iso_want="isolation: on"; else iso_want="isolation: off (CPU has no PKU)"; fi
check "target starts with the agent" start_target agent
check "the agent states its isolation on stderr" grep -qF "graft-agent[$tpid]: $iso_want" "$work/out"
check "graft list shows it" sh -c "'$GRAFT' list | grep -F 'e2e_target' | grep -qF '$iso_want'"
stop_target
rm -f "$work/in"; mkfifo "$work/in"
"$GRAFT" start --require-isolation -- "$TARGET" 1000 <"$work/in" >"$work/out" 2>&1 &
tpid=$!; tp_track "$tpid"; exec 7>"$work/in"
for _ in $(seq 200); do grep -q ready "$work/out" && break; sleep 0.02; done
if grep -qw pku /proc/cpuinfo; then
    check "--require-isolation with PKU: the agent runs isolated" grep -qF "graft-agent[$tpid]: isolation: on" "$work/out"
else
    check "--require-isolation without PKU: the agent refuses, naming why" \
        grep -qE "graft-agent\[$tpid\]: not active: agent: isolation required.*PKU" "$work/out"
    check "... and the target still runs unextended" round 1
fi
stop_target

echo "== 7. nothing left in /dev/shm after an interrupted run or a bad registry; exit codes"
# In a private /dev/shm (a mount namespace), so that other graft users of
# this machine cannot change the count.
shm_leftovers() {   # prints the /dev/shm objects the case named $1 added
    unshare -m sh -c '
        mount -t tmpfs tmpfs /dev/shm || exit 99
        G=$1 O=$2 case=$3
        export GRAFT_REGISTRY=/graft.leak
        if [ $case = corrupt-registry ]; then
            # creates the registry; then damage its header (magic and
            # version), which readers refuse as damaged: a load must
            # then fail before it creates any map object
            "$G" list >/dev/null 2>&1
            for f in /dev/shm/*; do
                python3 -c "
import sys
f = open(sys.argv[1], \"r+b\"); b = bytearray(f.read())
for i in range(0, 16): b[i] ^= 0xff
f.seek(0); f.write(b)" "$f"
            done
        fi
        ls /dev/shm >/tmp/graft-leak-before.$$
        case $case in
        prog-run-sigterm)
            "$G" prog run "$O" --repeat 1000000000 >/dev/null 2>&1 & p=$!
            sleep 0.5; kill -TERM $p; wait $p 2>/dev/null ;;
        prog-run-sigkill)
            "$G" prog run "$O" --repeat 1000000000 >/dev/null 2>&1 & p=$!
            sleep 0.5; kill -KILL $p; wait $p 2>/dev/null ;;
        corrupt-registry)
            "$G" load "$O" --detach >/dev/null 2>&1 ;;
        esac
        ls /dev/shm | grep -vxF -f /tmp/graft-leak-before.$$
        rm -f /tmp/graft-leak-before.$$
    ' sh "$GRAFT" "$OBJ" "$1"
}
if unshare -m true 2>/dev/null; then
    check "graft prog run stopped by SIGTERM in a long --repeat leaves no map object" \
        test -z "$(shm_leftovers prog-run-sigterm)"
    check "... nor when SIGKILLed" test -z "$(shm_leftovers prog-run-sigkill)"
    check "graft load meeting a damaged registry leaves no map object" \
        test -z "$(shm_leftovers corrupt-registry)"
else
    echo "SKIP: /dev/shm leftover tests need a private mount namespace (unshare -m)"
fi
out=$("$GRAFT" start -- /nonexistent/graft-e2e-cmd 2>&1); rc=$?
check "graft start of a missing command: exit 2 (input error), not 127" test $rc = 2
check "... naming the path and the reason" \
    grep -q "cannot run /nonexistent/graft-e2e-cmd: No such file or directory" <<<"$out"
out=$("$GRAFT" start -- graft-e2e-no-such-cmd 2>&1); rc=$?
check "graft start of a command not in PATH: exit 2" test $rc = 2
check "... said so" grep -q "cannot run graft-e2e-no-such-cmd: no such command in PATH" <<<"$out"
out=$("$GRAFT" compat -- /nonexistent/graft-e2e-tool 2>&1); rc=$?
check "graft compat of a missing tool: exit 2, naming it" \
    sh -c "test $rc = 2 && echo \"\$1\" | grep -q 'cannot run /nonexistent/graft-e2e-tool: No such file or directory'" sh "$out"
"$GRAFT" start -- sh -c 'exit 7' 2>/dev/null; rc=$?
check "graft start passes on the command's own exit status" test $rc = 7

echo "$pass passed, $fails failed"
[ "$fails" = 0 ]
