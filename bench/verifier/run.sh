#!/bin/sh
# bench/verifier/run.sh BUILD_DIR - verification time of the repository's BPF
# programs (every *.bpf.o under the build tree, or the verifier's corpus when
# there are none yet) and of large synthetic programs.
# Prints `BENCH verify_ms_typical_max <x> ms` and `BENCH verify_ms_largest <x> ms`,
# and the kernel selftests' agreement (BENCH kernel_selftests_*).
set -e
BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cmake --build "$BUILD" --target bench_verifier >/dev/null
OBJS=$(find "$BUILD" -name '*.bpf.o' -type f 2>/dev/null | sort)
# shellcheck disable=SC2086
"$BUILD/bench/verifier/bench_verifier" --cases "$SRC/tests/verifier/cases" $OBJS
# The kernel's verifier selftests (when linux-source-6.12 and clang-19 are
# installed): agreement with the kernel's verdicts under graft's default
# policy, then under the kernel's rules for root (--privileged), and the
# time graft takes to verify all 95 objects. The kernel's own load time is
# not measured yet.
KS=$SRC/tests/verifier/kernel_selftests
cmake --build "$BUILD" --target graft-cli >/dev/null
if OBJ=$("$KS/build_corpus.sh" "$BUILD/tests/verifier/kernel_selftests" 2>/dev/null); then
    python3 "$KS/compare.py" "$BUILD/bin/graft" "$OBJ" /dev/null | grep '^BENCH'
    python3 "$KS/compare.py" "$BUILD/bin/graft" "$OBJ" /dev/null --privileged | grep '^BENCH' |
        sed 's/kernel_selftests_/kernel_selftests_privileged_/'
else
    echo "bench/verifier: kernel selftests skipped (install linux-source-6.12 and clang-19)" >&2
fi
