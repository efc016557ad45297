#!/usr/bin/env bash
# get-kernel.sh OUT_DIR - put a Debian amd64 kernel at OUT_DIR/vmlinuz.
#
# The QEMU harness (run-initramfs.sh) boots the isolation tests under full
# system emulation, so it needs a bootable x86-64 kernel that enables
# CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS (Debian's amd64 kernels do). We take
# the one Debian's linux-image-amd64 metapackage points at, with apt-get
# download (no root, no install), and keep the extracted vmlinuz in OUT_DIR so
# a build tree downloads it once. Prints the path on success; on failure says
# why on stderr and exits non-zero - never pretends.
set -euo pipefail
out=${1:?usage: get-kernel.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -s "$out/vmlinuz" ] && { echo "$out/vmlinuz"; exit 0; }

# Several tests/builds may race for the same cache: one downloads, the rest wait.
exec 9>"$out/.lock"
flock -w 600 9 || { echo "get-kernel: timed out waiting for $out/.lock" >&2; exit 1; }
[ -s "$out/vmlinuz" ] && { echo "$out/vmlinuz"; exit 0; }

pick_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
pkg=$(pick_pkg || true)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
    # apt lists may be missing on a fresh machine; refreshing them is harmless.
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(pick_pkg || true)
fi
if [ -z "$pkg" ]; then
    echo "get-kernel: cannot find the versioned kernel package behind linux-image-amd64" \
         "(apt-cache depends gave nothing; run 'apt-get update' as root)" >&2
    exit 1
fi

work=$(mktemp -d "$out/dl.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download -q "$pkg" >"$work/apt.log" 2>&1); then
    echo "get-kernel: 'apt-get download $pkg' failed (no access to the Debian mirror?):" >&2
    tail -n 5 "$work/apt.log" >&2
    exit 1
fi
deb=$(ls "$work"/*.deb | head -n1)
dpkg-deb -x "$deb" "$work/x"
vmlinuz=$(ls "$work"/x/boot/vmlinuz-* 2>/dev/null | head -n1)
config=$(ls "$work"/x/boot/config-* 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || { echo "get-kernel: $deb has no boot/vmlinuz-*" >&2; exit 1; }
if [ -n "$config" ] && ! grep -q '^CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS=y' "$config"; then
    echo "get-kernel: $pkg lacks CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS=y; useless for the PKU tests" >&2
    exit 1
fi
cp "$vmlinuz" "$out/vmlinuz.tmp"
[ -n "$config" ] && cp "$config" "$out/config"
echo "$pkg" >"$out/kernel-package"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$out/vmlinuz"
