#!/bin/sh
# bench/vm/run.sh BUILD_DIR - interpreter vs JIT vs native on the programs in
# bench/vm/progs, plus JIT compile speed. Prints `BENCH <name> <value> <unit>`.
set -e
BUILD=${1:-build}
cmake --build "$BUILD" --target bench_vm >/dev/null
exec "$BUILD/bench/vm/bench_vm" "$BUILD/bench/vm"
