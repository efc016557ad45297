#!/bin/sh
# bench/eim/run.sh BUILD_DIR - EIM costs, as `BENCH <name> <value> <unit>`:
#   concealed_entry_delta_ns  ns/iteration of a loop with a GRAFT_ENTRY()
#                             minus without (interleaved, medians): ~0
#   wrpkru_pair_ns            two bare WRPKRUs: the hardware floor
#   gate_overhead_ns          one emitted gate pair (what a trampoline adds)
#   c_gate_pair_ns            giso_enter()+giso_leave()
#                             (the last three when PKU is usable; otherwise
#                             "# ... not measured: no PKU")
set -e
BUILD=${1:-build}
BIN="$BUILD/bench/eim/bench_eim"
if [ ! -x "$BIN" ]; then
    cmake --build "$BUILD" --target bench_eim >/dev/null
fi
# Taskset keeps both loops on one core when available.
if command -v taskset >/dev/null 2>&1; then
    exec taskset -c 0 "$BIN"
fi
exec "$BIN"
