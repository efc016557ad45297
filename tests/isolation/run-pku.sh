#!/usr/bin/env bash
# run-pku.sh QEMU_CACHE BINARY PATTERN... - run an isolation test where
# protection keys exist: natively when this CPU has PKU (cpuinfo flags pku
# and ospke), else as /init under QEMU TCG with -cpu max (run-initramfs.sh).
# The binary prints "isolation: native PKU" or "isolation: QEMU TCG" itself
# (it knows by being PID 1); this script passes iff every PATTERN (an
# extended regex) matches a line of its output and, natively, it exits 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: run-pku.sh QEMU_CACHE BINARY PATTERN...}
bin=${2:?usage: run-pku.sh QEMU_CACHE BINARY PATTERN...}
shift 2
if grep -qw pku /proc/cpuinfo && grep -qw ospke /proc/cpuinfo; then
    out=$("$bin" 2>&1); rc=$?
    echo "$out"
    [ $rc -eq 0 ] || { echo "run-pku: $bin exited $rc" >&2; exit 1; }
    for pat in "$@"; do
        grep -Eq -- "$pat" <<<"$out" || { echo "run-pku: output lacks /$pat/" >&2; exit 1; }
    done
    exit 0
fi
echo "run-pku: this CPU has no PKU: running $bin under QEMU TCG"
exec "$here/../../scripts/qemu/run-initramfs.sh" "$cache" "$bin" "$@"
