#!/usr/bin/env bash
# The EIM through the graft command: graft eim check, graft verify --eim,
# graft load --eim. Exit codes and that every rejection names the class.
set -uo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
GRAFT=$BUILD/bin/graft
EXT=$BUILD/tests/eim/ext
SPEC=$HERE/app.eim.yaml
. "$HERE/../common/tcheck.sh"

cd "$HERE"   # the spec names its host relative to here
"$GRAFT" eim check "$SPEC" --host "$BUILD/tests/eim/app" >/dev/null; rc=$?
check "eim check of the real host: exit 0" test $rc = 0
"$GRAFT" eim check "$HERE/specs/bad_host.eim.yaml" --host "$BUILD/tests/eim/app" >/dev/null 2>&1; rc=$?
check "eim check of a mismatching spec: exit 1" test $rc = 1
# The real spec with one key misspelt.
sed 's/^    insn_budget: 1000$/    insn_budjet: 1000/' "$SPEC" >/tmp/graft-typo.$$.yaml
line=$(grep -n 'insn_budjet' /tmp/graft-typo.$$.yaml | cut -d: -f1)
out=$("$GRAFT" eim check /tmp/graft-typo.$$.yaml 2>&1); rc=$?
rm -f /tmp/graft-typo.$$.yaml
check "a typo in the spec: exit 2" test $rc = 2
check "... with the line and the closest valid key" grep -q ":$line:5: .*insn_budjet.*did you mean 'insn_budget'" <<<"$out"

for ok in ok_observer:observer ok_counter:counter ok_syscall:syscall_audit; do
    "$GRAFT" verify "$EXT/${ok%%:*}.bpf.o" --eim "$SPEC" --class "${ok##*:}" >/dev/null 2>&1; rc=$?
    check "${ok%%:*} accepted in class ${ok##*:}" test $rc = 0
done
for bad in bad_helper bad_write_arg bad_insn_budget bad_kfunc_ungranted bad_entry bad_mem_budget; do
    out=$("$GRAFT" verify "$EXT/$bad.bpf.o" --eim "$SPEC" --class observer 2>&1); rc=$?
    check "$bad rejected with exit 1" test $rc = 1
    check "$bad: the message names the class" grep -q "class 'observer'" <<<"$out"
done
"$GRAFT" verify "$EXT/ok_observer.bpf.o" --eim "$SPEC" --class nosuch >/dev/null 2>&1; rc=$?
check "unknown class: exit 2" test $rc = 2
"$GRAFT" verify "$EXT/ok_observer.bpf.o" --eim "$SPEC" >/dev/null 2>&1; rc=$?
check "--eim without --class: exit 2" test $rc = 2
out=$("$GRAFT" load "$EXT/bad_helper.bpf.o" --eim "$SPEC" --class observer 2>&1); rc=$?
check "graft load --eim refuses a violating extension" test $rc = 1
check "... and says nothing was loaded" grep -q "nothing was loaded" <<<"$out"

# Rights that change the host: withheld by default, granted by a class;
# graft verify prints what each program uses and whether it is granted.
rights() { "$GRAFT" verify "$EXT/$1.bpf.o" "${@:2}" 2>/dev/null | sed -n 's/^.*: rights: //p'; }
check "write-user granted by class field_reader" \
    test "$(rights ok_field_read --eim "$SPEC" --class field_reader)" = "read-host, write-user"
check "... withheld without a class" test "$(rights ok_field_read)" = "read-host, write-user (not granted)"
out=$("$GRAFT" verify "$EXT/ok_field_read.bpf.o" 2>&1); rc=$?
check "... refused (exit 1)" test $rc = 1
check "... naming the right and both grants" \
    grep -q "needs the right 'write-user'.*an EIM class listing helper probe_write_user or .graft verify --allow=write-user." <<<"$out"
check "override granted by class header_override (override/)" \
    test "$(rights ok_override --eim "$SPEC" --class header_override)" = "override"
check "override granted by class header_override (replace/)" \
    test "$(rights ok_replace --eim "$SPEC" --class header_override)" = "override"
check "... withheld by class header_filter" \
    test "$(rights ok_override --eim "$SPEC" --class header_filter)" = "override (not granted)"
check "signal granted by class signaller" test "$(rights ok_signal --eim "$SPEC" --class signaller)" = "signal"
"$GRAFT" verify "$EXT/ok_signal.bpf.o" --eim "$SPEC" --class signaller >/dev/null 2>&1; rc=$?
check "... accepted there (exit 0)" test $rc = 0
check "... withheld by class observer" test "$(rights ok_signal --eim "$SPEC" --class observer)" = "signal (not granted)"
"$GRAFT" verify "$EXT/ok_signal.bpf.o" >/dev/null 2>&1; rc=$?
check "... and without a class (exit 1)" test $rc = 1
check "a host function and a read-only global in class observer" \
    test "$(rights ok_observer --eim "$SPEC" --class observer)" = "host-call app_log, global-read g_requests"
check "a global the program writes, and one it only reads, in class counter" \
    test "$(rights ok_counter --eim "$SPEC" --class counter)" = "global-write g_requests, global-read g_config_limit"
out=$("$GRAFT" verify "$EXT/ok_observer.bpf.o" --eim "$SPEC" --class observer --insn-budget 2 2>&1); rc=$?
check "--insn-budget tightens the class's budget (exit 1)" test $rc = 1
check "... and the message says whose budget" grep -q "the loader's --insn-budget 2, tighter than class 'observer''s insn_budget" <<<"$out"
"$GRAFT" verify "$EXT/ok_observer.bpf.o" --eim "$SPEC" --class observer --insn-budget 100000 >/dev/null 2>&1; rc=$?
check "... but never loosens it (a larger one changes nothing: exit 0)" test $rc = 0
out=$("$GRAFT" verify "$EXT/bad_insn_budget.bpf.o" --eim "$SPEC" --class observer --insn-budget 100000 2>&1); rc=$?
check "... a program over the class's budget stays refused" test $rc = 1

echo "$pass passed, $fails failed"
[ $fails = 0 ]
