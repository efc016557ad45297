#!/usr/bin/env bash
# make demo: load the malloc-counting extension, run a bundled program under
# the graft agent, and print what the extension counted per process.
set -euo pipefail
BUILD=${1:-build}
GRAFT=$BUILD/bin/graft
# A registry of its own, so the demo never touches anything else loaded.
export GRAFT_REGISTRY=/graft.demo.$$
log=$(mktemp)
cleanup() {
    [ -n "${loader:-}" ] && kill "$loader" 2>/dev/null
    wait 2>/dev/null || true
    "$GRAFT" unload --all >/dev/null 2>&1 || true    # the trace buffer outlives the loader
    rm -f "$log" "/dev/shm$GRAFT_REGISTRY"
}
trap cleanup EXIT

echo "== graft verify: the extension is proven safe before anything runs"
"$GRAFT" verify "$BUILD/examples/malloc_count.bpf.o"

echo; echo "== graft load: register it (attaches to libc's malloc in agent processes)"
"$GRAFT" load "$BUILD/examples/malloc_count.bpf.o" >"$log" 2>&1 &
loader=$!
for _ in $(seq 200); do grep -q '^loaded' "$log" && break; sleep 0.05; done
cat "$log"
grep -q '^loaded' "$log" || { echo "demo: graft load did not come up" >&2; exit 1; }

echo; echo "== graft start: run the host with the agent inside"
"$GRAFT" start -- "$BUILD/examples/malloc_target" 2000

echo; echo "== graft list"
"$GRAFT" list

echo; echo "== graft map dump counts: the raw map, as JSON"
"$GRAFT" map dump counts | tee "$log.json"

echo; echo "== per process, as the extension counted (includes libc's own mallocs, e.g. stdio buffers)"
python3 - "$log.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in sorted(d["entries"], key=lambda e: e["key"]):
    v = bytes(e["value"])
    calls, nbytes = int.from_bytes(v[:8], "little"), int.from_bytes(v[8:16], "little")
    print(f"  pid {e['key']:>7}: {calls:>6} malloc calls, {nbytes:>9} bytes")
PY
rm -f "$log.json"
