#!/usr/bin/env bash
# BCC's tracefs uprobe path under `graft compat`, step by step
# (tracefs_replay.c): output must equal tracefs_replay.expected.
# Usage: test_tracefs.sh BUILD_DIR TESTS_BINARY_DIR SOURCE_DIR
set -uo pipefail
BUILD=$1 HERE=$2 SRC=$3
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.tfsreplay.$$   # under ctest: the run's own prefix
export GRAFT_COMPAT_LIB=$BUILD/lib/libgraft-compat.so
trap '"$BUILD/bin/graft" unload --all >/dev/null 2>&1; rm -f "/dev/shm$GRAFT_REGISTRY" "/dev/shm$GRAFT_REGISTRY".*' EXIT
root=/sys/kernel/tracing
[ -e $root/uprobe_events ] || mount -t tracefs nodev $root 2>/dev/null
[ -e $root/uprobe_events ] || { echo "SKIP: no tracefs"; exit 0; }
bin=$HERE/trace_work
# file offset of a virtual address, from the LOAD program headers
off_of() {
    local v=$((16#$1)) o va fs
    while read -r o va fs; do
        if (( v >= va && v < va + fs )); then printf '0x%x\n' $((v - va + o)); return; fi
    done < <(readelf -lW "$bin" | awk '$1 == "LOAD" { print $2, $3, $5 }')
}
fn=$(readelf -sW "$bin" | awk '$8 == "tw_work" { print $2; exit }')
sem=$(readelf -sW "$bin" | awk '$8 == "tw_semtick_semaphore" { print $2; exit }')
out=$("$BUILD/bin/graft" compat -- "$HERE/tracefs_replay" $root "$bin" "$(off_of "$fn")" "$(off_of "$sem")" 2>"$HERE/tracefs_replay.err")
if diff <(echo "$out") "$SRC/tracefs_replay.expected"; then
    echo "tracefs replay: output as expected"
    grep -c '^graft-compat:' "$HERE/tracefs_replay.err" | sed 's/^/graft-compat lines: /'
    exit 0
fi
echo "tracefs replay: output differs (above); stderr:"; cat "$HERE/tracefs_replay.err"
exit 1
