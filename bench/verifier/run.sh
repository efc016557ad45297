#!/bin/sh
# bench/verifier/run.sh BUILD_DIR - verification time of the repository's BPF
# programs (every *.bpf.o under the build tree, or the verifier's corpus when
# there are none yet) and of large synthetic programs; then the soundness
# fuzzer's throughput (programs generated, verified and - when accepted - run
# on the checked interpreter, per second) and the share of its programs the
# verifier accepts, the median of three runs over the same programs; then the
# kernel's verifier selftests' agreement.
# Prints `BENCH verify_ms_typical_max <x> ms`, `BENCH verify_ms_largest <x> ms`
# (and both _nospec: the same programs without the Spectre v1 rules),
# `BENCH soundness_fuzz_progs_per_s <x> progs/s`,
# `BENCH soundness_fuzz_accepted_pct <x> %`, BENCH kernel_selftests_* and
# BENCH test_verifier_*.
set -e
BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cmake --build "$BUILD" --target bench_verifier soundness_fuzz >/dev/null
OBJS=$(find "$BUILD" -name '*.bpf.o' -type f 2>/dev/null | sort)
# shellcheck disable=SC2086
"$BUILD/bench/verifier/bench_verifier" --cases "$SRC/tests/verifier/cases" $OBJS

FUZZ_ITERS=${FUZZ_ITERS:-20000}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for i in 1 2 3; do
    "$BUILD/tests/fuzz/soundness_fuzz" --bench --iters "$FUZZ_ITERS" --seed 1 --seconds 120 |
        grep '^BENCH soundness_fuzz' >>"$OUT"
done
for name in soundness_fuzz_progs_per_s soundness_fuzz_accepted_pct; do
    grep "^BENCH $name " "$OUT" | sort -n -k3 | sed -n 2p
done

# The kernel's verifier selftests (when linux-source-6.12 and clang-19 are
# installed): agreement with the kernel's verdicts under graft's default
# policy, then under the kernel's rules for root (--privileged), and the
# time graft verify takes for all 95 objects (one process per object).
# Then, as root, the kernel's own BPF_PROG_LOAD time for every program of
# them it loads, next to graft's in-process verification time for the same
# programs (bench_kernel_load.c says which, and how many).
KS=$SRC/tests/verifier/kernel_selftests
cmake --build "$BUILD" --target graft-cli >/dev/null
if OBJ=$("$KS/build_corpus.sh" "$BUILD/tests/verifier/kernel_selftests" 2>/dev/null); then
    python3 "$KS/compare.py" "$BUILD/bin/graft" "$OBJ" /dev/null | grep '^BENCH'
    python3 "$KS/compare.py" "$BUILD/bin/graft" "$OBJ" /dev/null --privileged | grep '^BENCH' |
        sed 's/kernel_selftests_/kernel_selftests_privileged_/'
    if cmake --build "$BUILD" --target bench_kernel_load >/dev/null 2>&1; then
        "$BUILD/bench/verifier/bench_kernel_load" "$OBJ" 3 ||
            echo "bench/verifier: the kernel loaded none of them (needs root and bpf(2))" >&2
    fi
else
    echo "bench/verifier: kernel selftests skipped (install linux-source-6.12 and clang-19)" >&2
fi

# The kernel 6.1 test_verifier table (linux-source-6.1): agreement with the
# kernel's privileged verdicts (and the unprivileged ones), fixups included.
if cmake --build "$BUILD" --target ktv_run >/dev/null 2>&1; then
    "$BUILD/tests/verifier/test_verifier_61/ktv_run" /dev/null | grep '^BENCH'
else
    echo "bench/verifier: test_verifier table skipped (install linux-source-6.1)" >&2
fi
