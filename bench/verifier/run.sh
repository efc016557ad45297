#!/bin/sh
# bench/verifier/run.sh BUILD_DIR - verification time of the repository's BPF
# programs (every *.bpf.o under the build tree, or the verifier's corpus when
# there are none yet) and of large synthetic programs.
# Prints `BENCH verify_ms_typical_max <x> ms` and `BENCH verify_ms_largest <x> ms`.
set -e
BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cmake --build "$BUILD" --target bench_verifier >/dev/null
OBJS=$(find "$BUILD" -name '*.bpf.o' -type f 2>/dev/null | sort)
# shellcheck disable=SC2086
exec "$BUILD/bench/verifier/bench_verifier" --cases "$SRC/tests/verifier/cases" $OBJS
