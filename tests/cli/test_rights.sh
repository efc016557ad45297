#!/usr/bin/env bash
# What programs may do to their host, through the graft command (no agent
# needed): observe-only by default; each right that changes the host
# (write-user, override, signal) refused by graft verify, graft load and
# graft prog run with a message naming the right and how to grant it;
# granted by --allow, loudly; host functions and globals only by an EIM
# class; --insn-budget. The EIM grants are in tests/eim/test_eim_cli.sh,
# the compat layer's in tests/compat/test_compat.sh.
set -uo pipefail
BUILD=$1
HERE=$2
GRAFT=$BUILD/bin/graft
B=$HERE/bpf
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.rights.$$   # under ctest: the run's own prefix
. "$(dirname "$0")/../common/tcheck.sh"
. "$(dirname "$0")/../common/tprocs.sh"
trap tp_registry_remove EXIT
registry_empty() { "$GRAFT" list 2>/dev/null | grep -q '^programs: 0'; }

echo "== graft verify: frozen .rodata decides branches (issue 17)"
# The default policy's Spectre rules (verifier/speculation.c) still check
# the dead side, as a path only a mispredicted branch takes: the load
# through a scalar is refused there too (test_verifier_frozen: the pruning)
out=$("$GRAFT" verify "$B/rodata_switch0.bpf.o" 2>&1); rc=$?
check "switch off: the dead load through a scalar is refused as speculative (exit 1)" test $rc = 1
check "... saying so" has "invalid mem access .*(speculative execution)" "$out"
out=$("$GRAFT" verify "$B/rodata_switch1.bpf.o" 2>&1); rc=$?
check "switch on: the same load is verified and refused (exit 1)" test $rc = 1
check "... with the verifier's reason, on the live path" has "invalid mem access 'scalar': not a pointer$" "$out"

echo "== weak __ksym externs without a class: absent (issue 17)"
# the guarded code runs only on a mispredicted branch: the default policy's
# Spectre rules refuse it there, the kernel's root rules prune it
out=$("$GRAFT" verify "$B/ksym_weak.bpf.o" 2>&1); rc=$?
check "guarded by bpf_ksym_exists: refused as speculative (exit 1)" test $rc = 1
check "... saying so" has "(speculative execution)" "$out"
out=$("$GRAFT" verify --privileged "$B/ksym_weak.bpf.o" 2>&1); rc=$?
check "... accepted under the kernel's root rules (exit 0)" test $rc = 0
out=$("$GRAFT" prog run "$B/ksym_weak.bpf.o" 2>&1); rc=$?
check "... and not run by default" has "rejected at insn [0-9]*: .*(speculative execution)" "$out"
out=$("$GRAFT" verify "$B/ksym_weak_unguarded.bpf.o" 2>&1); rc=$?
check "unguarded call: refused (exit 1)" test $rc = 1
check "... saying the function is absent" has "call of an absent function" "$out"

echo "== graft verify: one program per right, no flags"
out=$("$GRAFT" verify "$B/rights_all.bpf.o" 2>&1); rc=$?
check "exit 1: some programs need rights" test $rc = 1
check "the reader is accepted" has "reads_host (.*): accepted" "$out"
check "... and told observe-only" has "reads_host (.*): rights: observe-only (read-host)" "$out"
check "write-user: rights line" has "writes_host (.*): rights: write-user (not granted)" "$out"
check "write-user: refused naming insn, helper, right and both grants" \
    has "writes_host (.*): rejected: program 'writes_host' insn [0-9]* calls bpf_probe_write_user: that needs the right 'write-user', which the default policy (observe-only) does not grant; grant it with an EIM class listing helper probe_write_user or \`graft verify --allow=write-user\`" "$out"
check "override helper: refused" has "skips_work (.*): rejected: .*needs the right 'override'.*'override: true' or \`graft verify --allow=override\`" "$out"
check "override section alone (replace/): refused" \
    has "replaces_work (.*): rejected: program 'replaces_work' (section 'replace/.*') replaces the function: that needs the right 'override'" "$out"
check "send_signal: refused" has "signals_host (.*): rejected: .*calls bpf_send_signal: that needs the right 'signal'" "$out"
check "send_signal_thread: refused" has "signals_thread (.*): rejected: .*calls bpf_send_signal_thread: that needs the right 'signal'" "$out"
check "host function and global: rights line" \
    has "calls_host (.*): rights: global g_requests (not granted), host-call app_log (not granted)" "$out"
check "... refused: an EIM class only" \
    has "calls_host (.*): rejected: .*host global 'g_requests' (__ksym): host functions and globals need an EIM class (--eim SPEC --class NAME)" "$out"

echo "== graft verify --allow"
out=$("$GRAFT" verify "$B/rights_all.bpf.o" --allow write-user,override,signal 2>&1); rc=$?
check "exit 1 still: nothing but a class grants host functions" test $rc = 1
for p in writes_host skips_work replaces_work signals_host signals_thread; do
    check "$p accepted" has "$p (.*): accepted" "$out"
done
granted_lines() { grep 'rights:' <<<"$1" | grep -v calls_host; }
check "five rights lines, none '(not granted)'" \
    test "$(granted_lines "$out" | grep -vc 'not granted')" = 6
check "one WARNING line per right, on stderr" \
    test "$("$GRAFT" verify "$B/rights_all.bpf.o" --allow all 2>&1 >/dev/null | grep -c '^graft verify: WARNING: --allow ')" = 3
check "a right granted is not another" \
    has "writes_host (.*): rejected: .*'write-user'" "$("$GRAFT" verify "$B/rights_all.bpf.o" --allow signal --allow override 2>&1)"
out=$("$GRAFT" verify "$B/rights_all.bpf.o" --allow=frobnicate 2>&1); rc=$?
check "an unknown right: exit 2" test $rc = 2
check "... named, with the valid ones" has "unknown right 'frobnicate' (rights: write-user, override, signal, all" "$out"
out=$("$GRAFT" verify "$B/rights_all.bpf.o" --allow all --eim "$HERE/../../../tests/eim/app.eim.yaml" --class observer 2>&1); rc=$?
check "--allow with --eim: exit 2 (the class decides)" test $rc = 2
check "... said so" has "does not combine with --eim" "$out"

echo "== graft load: refused without the right, loaded with it"
for r in write:write-user override:override replace:override signal:signal; do
    obj=$B/rights_${r%%:*}.bpf.o right=${r##*:}
    out=$("$GRAFT" load "$obj" --detach 2>&1); rc=$?
    check "rights_${r%%:*}: refused (exit 1)" test $rc = 1
    check "... names the right and \`graft load --allow=$right\`" \
        has "needs the right '$right', .* or \`graft load --allow=$right\`; nothing was loaded" "$out"
    check "... registered nothing" registry_empty
    out=$("$GRAFT" load "$obj" --detach --allow "$right" 2>&1); rc=$?
    check "rights_${r%%:*} with --allow $right: loaded" test $rc = 0
    check "... with the WARNING line" has "graft load: WARNING: --allow $right: extensions may" "$out"
    "$GRAFT" unload --all >/dev/null 2>&1
done
out=$("$GRAFT" load "$B/rights_read.bpf.o" --detach 2>&1); rc=$?
check "the observe-only program loads without flags" test $rc = 0
check "... and without a WARNING" test "$(grep -c WARNING <<<"$out")" = 0
"$GRAFT" unload --all >/dev/null 2>&1
out=$("$GRAFT" load "$B/rights_host.bpf.o" --allow all 2>&1); rc=$?
check "host function and global: refused even with --allow all" test $rc = 1
check "... an EIM class grants them" has "need an EIM class (--eim SPEC --class NAME)" "$out"
check "... registered nothing" registry_empty

echo "== --insn-budget"
out=$("$GRAFT" verify "$B/rights_read.bpf.o" --insn-budget 3 2>&1); rc=$?
check "a budget below the program's worst case: rejected (exit 1)" test $rc = 1
check "... naming the budget" has "instruction budget exceeded: .* the policy allows 3" "$out"
"$GRAFT" verify "$B/rights_read.bpf.o" --insn-budget 100 >/dev/null 2>&1; rc=$?
check "a budget above it: accepted" test $rc = 0
out=$("$GRAFT" load "$B/rights_read.bpf.o" --insn-budget 3 2>&1); rc=$?
check "graft load applies it too (exit 1)" test $rc = 1
check "... nothing was loaded" has "nothing was loaded" "$out"
"$GRAFT" verify "$B/rights_read.bpf.o" --insn-budget 0 >/dev/null 2>&1; rc=$?
check "--insn-budget 0: exit 2" test $rc = 2

echo "== graft prog run"
out=$("$GRAFT" prog run "$B/rights_write.bpf.o" 2>&1); rc=$?
check "a write-user program is not run without the right (exit 1)" test $rc = 1
check "... names it" has "needs the right 'write-user'.*\`graft prog run --allow=write-user\`" "$out"
out=$("$GRAFT" prog run "$B/rights_write.bpf.o" --allow write-user 2>&1); rc=$?
check "with --allow write-user it runs (writing to address 0 fails softly)" test $rc = 0

echo "== graft verify --raw"
# stdw [r10-8], 0; r1 = 0; r2 = r10 - 8; r3 = 8; call probe_write_user; r0 = 0; exit
raw="7a 0a f8 ff 00 00 00 00 b7 01 00 00 00 00 00 00 bf a2 00 00 00 00 00 00 07 02 00 00 f8 ff ff ff b7 03 00 00 08 00 00 00 85 00 00 00 24 00 00 00 b7 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00"
echo "$raw" | "$GRAFT" verify --raw >/dev/null 2>&1; rc=$?
check "raw probe_write_user refused by default" test $rc = 1
echo "$raw" | "$GRAFT" verify --raw --allow write-user >/dev/null 2>&1; rc=$?
check "... accepted with --allow write-user" test $rc = 0

# A '?' section (libbpf's no-autoload) is loaded only on request: graft load
# skips it, so one the verifier would reject blocks nothing; graft verify
# still gives it its own verdict.
out=$("$GRAFT" load "$B/noautoload.bpf.o" --detach 2>&1); rc=$?
check "graft load of an object with a rejected '?' program: exit 0" test $rc = 0
check "... says the '?' program was not loaded" grep -q "na_skipped .* not loaded: a '?' section" <<<"$out"
check "... loaded the other one alone" grep -q "loaded .*noautoload.bpf.o: 1 program(s)" <<<"$out"
check "... graft list shows only the loaded program" \
    bash -c '"$1" list | grep -q " na_loaded " && ! "$1" list | grep -q na_skipped' sh "$GRAFT"
"$GRAFT" unload --all >/dev/null 2>&1
out=$("$GRAFT" verify "$B/noautoload.bpf.o" 2>&1)
check "graft verify still rejects the '?' program by itself" grep -q "na_skipped .*: rejected" <<<"$out"

echo "$pass passed, $fails failed"
[ $fails = 0 ]
