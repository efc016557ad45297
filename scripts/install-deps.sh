#!/usr/bin/env bash
# Install the Debian packages graft needs, but only those missing, and only as root.
# Non-root users get the list to install by hand instead of a failure halfway through.
set -euo pipefail
PKGS=(cmake make gcc clang llvm libelf-dev libbpf-dev libzydis-dev libyaml-dev libdw-dev
      bpftool libclang-rt-14-dev qemu-system-x86 cpio zstd xz-utils strace systemtap-sdt-dev
      # Debian's prebuilt libbpf tools, run unmodified by the compat tests
      libbpf-tools
      # bpftrace and BCC, run unmodified by the compat matrix (tests/compat/matrix);
      # BCC compiles against kernel headers: Debian's stand in for a kernel without
      bpftrace bpfcc-tools python3-bpfcc linux-headers-amd64
      libssl-dev python3 pkg-config libmd-dev
      # the kernel's lib/test_bpf.c table the VM tests run (tests/vm) and its
      # test_verifier table (tests/verifier/test_verifier_61)
      linux-source-6.1
      # the kernel's verifier selftests (tests/verifier/kernel_selftests)
      linux-source-6.12 clang-19
      # static archives the graft CLI links (libdw.a and libelf.a need them)
      liblzma-dev libbz2-dev libzstd-dev zlib1g-dev
      # the real-application tests (tests/apps, bench/apps)
      nginx nginx-dev libnginx-mod-http-lua redis-server redis-tools wrk curl fuse3 libfuse3-dev openssl
      valgrind)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "graft: missing Debian packages: ${missing[*]}" >&2
    echo "graft: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "graft: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Servers among them (nginx, redis) must not start as system services: the
# tests run their own instances on private ports. policy-rc.d says so to
# the packages' maintainer scripts; we remove it again if it is ours.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && own_policy=1
fi
trap '[ $own_policy = 1 ] && rm -f $policy' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
