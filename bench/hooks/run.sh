#!/bin/sh
# bench/hooks/run.sh BUILD_DIR - ns per call of a hooked function: graft's
# uprobe/uretprobe/override trampolines running a 4-instruction JIT'd
# program, the cost on an unhooked function, and the kernel's uprobes with
# the same program (needs root). Prints `BENCH <name> <value> ns`.
set -e
BUILD=${1:-build}
BIN="$BUILD/bench/hooks/bench_hooks"
if [ ! -x "$BIN" ]; then
    cmake --build "$BUILD" --target bench_hooks >/dev/null
fi
exec "$BIN"
