#!/usr/bin/env bash
# run_test.sh GRAFT WORKDIR [--privileged] - the ctest: build (cached) the
# kernel's verifier selftests and compare graft verify's per-program
# verdicts with theirs; a disagreement not in known_differences.txt fails
# (with --privileged: the kernel's root rules, known_differences_privileged.txt).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
GRAFT=$1 WORK=$2
shift 2
OBJ=$("$HERE/build_corpus.sh" "$WORK") || exit $?
KNOWN=$HERE/known_differences.txt
for a in "$@"; do [ "$a" = --privileged ] && KNOWN=$HERE/known_differences_privileged.txt; done
exec python3 "$HERE/compare.py" "$GRAFT" "$OBJ" "$KNOWN" "$@"
