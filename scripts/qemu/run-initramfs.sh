#!/usr/bin/env bash
# run-initramfs.sh CACHE_DIR BINARY PATTERN... - boot BINARY as /init of an
# initramfs under QEMU full-system emulation and check its console output.
#
# Used by ctest (isolation_qemu) to run the MPK tests where PKU always exists:
# QEMU's TCG with -cpu max emulates protection keys, so the tests that need
# them run even on CI machines whose CPU lacks PKU. The kernel is Debian's
# amd64 kernel, fetched once into CACHE_DIR by get-kernel.sh. BINARY is
# dynamically linked (Debian ships no static libZydis), so the initramfs also
# carries the shared libraries ldd lists, at their usual paths.
#
# GRAFT_QEMU_CPU (default max) picks the CPU model, GRAFT_QEMU_APPEND adds
# kernel arguments (name=value ones become /init's environment),
# GRAFT_QEMU_FILES lists more files to put in the initramfs (same paths).
#
# Passes iff every PATTERN (an extended regex) matches a line of the serial
# console. Fails loudly - never skips - when the kernel cannot be had, QEMU is
# missing, or the guest does not finish in time. Prints the boot time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: run-initramfs.sh CACHE_DIR BINARY PATTERN...}
bin=${2:?usage: run-initramfs.sh CACHE_DIR BINARY PATTERN...}
shift 2
timeout_s=${GRAFT_QEMU_TIMEOUT:-120}
cpu=${GRAFT_QEMU_CPU:-max}              # e.g. max,pku=off to test degradation
extra=${GRAFT_QEMU_APPEND:-}            # more kernel args; k=v ones reach /init's env

fail() { echo "QEMU HARNESS FAILED: $*" >&2; exit 1; }

command -v qemu-system-x86_64 >/dev/null ||
    fail "qemu-system-x86_64 not installed (scripts/install-deps.sh installs qemu-system-x86)"
command -v cpio >/dev/null || fail "cpio not installed (scripts/install-deps.sh installs it)"
[ -x "$bin" ] || fail "test binary $bin does not exist; build it first"

kernel=$("$here/get-kernel.sh" "$cache") ||
    fail "could not obtain a Debian kernel for the emulator (see the message above);" \
         "the MPK tests under QEMU did NOT run"

work=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/dev" "$root/proc"
cp "$bin" "$root/init"
# The loader and every library, at the paths ldd resolved them to; the
# same for GRAFT_QEMU_FILES (more files the test needs, copied to the same
# absolute paths, e.g. the graft command, the agent, a host program).
for f in ${GRAFT_QEMU_FILES:-}; do
    [ -e "$f" ] || fail "GRAFT_QEMU_FILES: $f does not exist; build it first"
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
done
for elf in "$bin" ${GRAFT_QEMU_FILES:-}; do
    for lib in $(ldd "$elf" 2>/dev/null | grep -o '/[^ ]*'); do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"

log=$work/console.log
start=$(date +%s.%N)
set +e
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu "$cpu" -smp 1 -m 512M \
    -nographic -no-reboot -kernel "$kernel" -initrd "$work/initramfs.cpio" \
    -append "console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init $extra" </dev/null >"$log" 2>&1
rc=$?
set -e
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc 2>/dev/null || awk "BEGIN{print $end - $start}")

tr -d '\r' <"$log" >"$log.txt"
cat "$log.txt"
echo "qemu: kernel $(cat "$cache/kernel-package" 2>/dev/null || echo "$kernel"), exit $rc," \
     "boot+test+poweroff took ${secs}s"
[ $rc -eq 124 ] || [ $rc -eq 137 ] && fail "the guest did not power off within ${timeout_s}s"
missing=0
for pat in "$@"; do
    if ! grep -Eq -- "$pat" "$log.txt"; then
        echo "QEMU HARNESS: console output lacks /$pat/" >&2
        missing=1
    fi
done
[ $missing -eq 0 ] || fail "expected lines missing from the guest's console (output above)"
echo "qemu: all expected lines present"
