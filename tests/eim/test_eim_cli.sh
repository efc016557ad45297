#!/usr/bin/env bash
# The EIM through the graft command: graft eim check, graft verify --eim,
# graft load --eim. Exit codes and that every rejection names the class.
set -uo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
GRAFT=$BUILD/bin/graft
EXT=$BUILD/tests/eim/ext
SPEC=$HERE/app.eim.yaml
pass=0 fails=0
check() { local what=$1; shift; if "$@"; then pass=$((pass+1)); else fails=$((fails+1)); echo "FAIL: $what"; fi; }

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

echo "$pass passed, $fails failed"
[ $fails = 0 ]
