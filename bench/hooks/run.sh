#!/bin/sh
# bench/hooks/run.sh BUILD_DIR - ns per call of a hooked function: graft's
# uprobe/uretprobe/override trampolines running a 4-instruction JIT'd
# program, the cost on an unhooked function, and the kernel's uprobes with
# the same program (needs root), then what `graft start` adds to running a
# command and how long `graft attach` takes. Prints `BENCH <name> <value> <unit>`.
set -e
BUILD=${1:-build}
BIN="$BUILD/bench/hooks/bench_hooks"
GRAFT="$BUILD/bin/graft"
if [ ! -x "$BIN" ] || [ ! -x "$GRAFT" ] || [ ! -x "$BUILD/bench/hooks/sslsniff_bench" ]; then
    cmake --build "$BUILD" --target bench_hooks sslsniff_bench graft-cli graft-agent >/dev/null
fi
"$BIN" "$(realpath "$GRAFT")"
# sslsniff's uprobe + uretprobe + ring-buffer copy per KiB, and memcpy
exec "$BUILD/bench/hooks/sslsniff_bench"
