#!/usr/bin/env bash
# A tool under the compat layer that is killed (SIGKILL: no destructor)
# after BPF_MAP_CREATE and before it registers anything: its map is named
# under the registry, so `graft unload --all` removes it. (It used to get
# a name of no registry, /graft.<uid>.<hex>, that nothing could collect.)
# Usage: test_killed_maps.sh BUILD_DIR
set -uo pipefail
BUILD=$1
GRAFT=$BUILD/bin/graft
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.killed.$$   # under ctest: the run's own prefix
reg=${GRAFT_REGISTRY#/}
trap 'rm -f "/dev/shm$GRAFT_REGISTRY" "/dev/shm$GRAFT_REGISTRY".*' EXIT
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 0; }
. "$(dirname "$0")/../common/tcheck.sh"

# bpf(BPF_MAP_CREATE) of a 4-entry array through libc's syscall(), which the
# compat layer interposes; then SIGKILL.
LD_PRELOAD=$BUILD/lib/libgraft-compat.so python3 -c '
import ctypes, os, signal, struct
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(struct.pack("IIIII", 2, 4, 8, 4, 0) + bytes(108))
fd = libc.syscall(321, 0, attr, 128)
print("map fd", fd, flush=True)
if fd >= 0:
    os.kill(os.getpid(), signal.SIGKILL)
' 2>&1
maps=$(cd /dev/shm && ls -d "$reg".m.* 2>/dev/null)
check "the killed tool's map is named under the registry ($maps)" test -n "$maps"
"$GRAFT" unload --all
left=$(cd /dev/shm && ls -d "$reg".m.* 2>/dev/null)
check "graft unload --all removed it" test -z "$left"
echo "killed_maps: $fails failed"
[ $fails = 0 ]
