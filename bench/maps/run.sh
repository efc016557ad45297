#!/bin/sh
# bench/maps/run.sh BUILD_DIR - ns per map operation, measured inside a
# JIT-compiled eBPF program doing 1000 operations per run (graft), and the
# same program run by the kernel through BPF_PROG_TEST_RUN (needs root;
# skipped with a reason on stderr otherwise). Prints `BENCH <name> <v> ns`.
set -e
BUILD=${1:-build}
BIN="$BUILD/bench/maps/bench_maps"
cmake --build "$BUILD" --target bench_maps >/dev/null
exec "$BIN"
