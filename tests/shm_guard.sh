#!/bin/sh
# shm_guard.sh clean|check /REGISTRY - the test suite's shared-memory guard
# (see tests/CMakeLists.txt). Only objects named REGISTRY or REGISTRY.* are
# looked at: a name of this build tree's own, so other processes on the
# machine cannot make the check fail. The registry itself is the run's
# default one, like a HOME: removed, not reported; everything named after
# it (agents' status objects, program stores, maps, the registries a test
# made for itself) is litter.
mode=$1
reg=${2#/}
case "$reg" in graft.ct*) ;; *) echo "shm_guard: refusing registry '$2'"; exit 2 ;; esac
# An object named after a live process (".<pid>" right after a test's own
# registry name or an agent's ".a.") belongs to a test still running, of a
# ctest started concurrently in this build tree: not litter yet.
left=
for o in $(cd /dev/shm && ls -d "$reg".* 2>/dev/null); do
    pid=$(echo "${o#"$reg".}" | sed -n 's/^[^.]*\.\([0-9][0-9]*\).*/\1/p')
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && continue
    left="$left $o"
done
for o in $reg $left; do rm -f "/dev/shm/$o"; done
[ "$mode" = clean ] && exit 0
if [ -n "$left" ]; then
    echo "FAIL: the tests left these shared-memory objects (removed now):"
    for o in $left; do echo "  /dev/shm/$o"; done
    exit 1
fi
echo "ok: no shared-memory object left under /dev/shm/$reg"
