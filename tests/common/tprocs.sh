# tests/common/tprocs.sh - sourced (not run) by the shell tests and the
# application benchmarks that drive the graft command:
#   * every process a script starts in the background is given to tp_track;
#     tp_stop_all (from the script's EXIT trap) stops exactly those, by pid,
#     never by name;
#   * tp_registry_remove unloads what is left in the script's own registry
#     ($GRAFT_REGISTRY) and removes its shared memory;
#   * tp_load runs `graft load` in the background until it has loaded.
# The caller sets GRAFT (the graft binary) and GRAFT_REGISTRY (a registry of
# its own, e.g. ${GRAFT_REGISTRY:-/graft}.NAME.$$).

TP_PIDS=()

tp_track() { TP_PIDS+=("$@"); }

# tp_stop_all: SIGTERM to every tracked process, SIGKILL to those still
# there 0.2 s later, then reap them.
tp_stop_all() {
    local p
    [ ${#TP_PIDS[@]} = 0 ] && return 0
    for p in "${TP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${TP_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    return 0
}

# tp_registry_remove: unload everything in $GRAFT_REGISTRY (its maps' shared
# memory objects go with it), then remove the registry's own objects.
tp_registry_remove() {
    [ -x "${GRAFT:-}" ] && "$GRAFT" unload --all >/dev/null 2>&1
    rm -f "/dev/shm$GRAFT_REGISTRY" "/dev/shm$GRAFT_REGISTRY".*
}

# tp_load LOG OBJ [args]: `graft load OBJ args` in the background, its
# output in LOG, until it prints "loaded" (15 s); sets LOADER_PID (tracked).
# On failure prints LOG to stderr and returns 1. Unload with tp_unload.
tp_load() {
    local log=$1 obj=$2 i
    shift
    # Emptied here, not by the job's own redirection: that may come after
    # the first grep below, which would then see the last load's "loaded".
    : >"$log"
    "$GRAFT" load "$@" >"$log" 2>&1 &
    LOADER_PID=$!
    tp_track "$LOADER_PID"
    for i in $(seq 300); do
        grep -q '^loaded' "$log" && return 0
        kill -0 "$LOADER_PID" 2>/dev/null || break
        sleep 0.05
    done
    grep -q '^loaded' "$log" && return 0
    echo "graft load $obj failed:" >&2; cat "$log" >&2
    return 1
}

# tp_unload [PID]: stop a loader (the last one by default); graft load
# unloads what it loaded when it stops.
tp_unload() { kill "${1:-$LOADER_PID}" 2>/dev/null; wait "${1:-$LOADER_PID}" 2>/dev/null; }

# tp_mapval MAP KEY: the value of integer KEY in MAP as `graft map dump`
# shows it (a byte array's first 8 bytes as a little-endian integer); 0
# when the key is absent.
tp_mapval() {
    "$GRAFT" map dump "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
want = int(sys.argv[1])
for e in d["entries"]:
    k = e["key"]
    if isinstance(k, list): k = int.from_bytes(bytes(k), "little")
    if k == want:
        v = e["value"]
        print(v if not isinstance(v, list) else int.from_bytes(bytes(v[:8]), "little")); break
else:
    print(0)
' "$2"
}
