#!/usr/bin/env bash
# build_corpus.sh WORKDIR - the kernel's verifier selftests as BPF objects:
# tools/testing/selftests/bpf/progs/verifier_*.c from Debian's
# linux-source-6.12, compiled with clang-19 as the selftests' Makefile does.
# Only the files needed are extracted; both steps are cached in WORKDIR.
# Prints the object directory. Exit 77 (skip) when a tool or the source is
# missing (scripts/install-deps.sh installs them).
set -euo pipefail
WORK=$1
TAR=/usr/src/linux-source-6.12.tar.xz
for need in "$TAR" /usr/bin/clang-19 /usr/sbin/bpftool /usr/bin/python3; do
    [ -e "$need" ] || { echo "SKIP: $need is missing (linux-source-6.12, clang-19, bpftool)" >&2; exit 77; }
done
mkdir -p "$WORK"
K=$WORK/linux-source-6.12
if [ ! -e "$WORK/.extracted" ]; then
    tar -xJf "$TAR" -C "$WORK" --wildcards \
        'linux-source-6.12/tools/testing/selftests/bpf/progs/verifier_*.c' \
        'linux-source-6.12/tools/testing/selftests/bpf/progs/*.h' \
        'linux-source-6.12/tools/testing/selftests/bpf/*.h' \
        'linux-source-6.12/tools/lib/bpf/*.h' \
        'linux-source-6.12/tools/include/uapi/*' \
        'linux-source-6.12/tools/include/linux/filter.h' \
        'linux-source-6.12/include/uapi/linux/bpf.h' \
        'linux-source-6.12/scripts/bpf_doc.py'
    python3 "$K/scripts/bpf_doc.py" --header --file "$K/include/uapi/linux/bpf.h" \
        > "$K/tools/lib/bpf/bpf_helper_defs.h"
    touch "$WORK/.extracted"
fi
# vmlinux.h (14 of the objects include it) from the running kernel's BTF;
# without it those objects are not built and not compared.
INC=$WORK/include
mkdir -p "$INC" "$WORK/obj"
if [ ! -s "$INC/vmlinux.h" ] && [ -r /sys/kernel/btf/vmlinux ]; then
    bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$INC/vmlinux.h.tmp" && mv "$INC/vmlinux.h.tmp" "$INC/vmlinux.h"
fi
T=$K/tools
P=$T/testing/selftests/bpf/progs
build_one() {
    local src=$1 out=$2
    [ "$out" -nt "$src" ] && return 0
    clang-19 -g -O2 --target=bpf -mcpu=v3 -mlittle-endian -D__TARGET_ARCH_x86 -DENABLE_ATOMICS_TESTS \
        -std=gnu11 -fno-strict-aliasing -Wno-compare-distinct-pointer-types \
        -I"$INC" -I"$T/testing/selftests/bpf" -I"$T/include/uapi" -I"$T/lib" \
        -I/usr/include/x86_64-linux-gnu -c "$src" -o "$out" 2>"$out.err" || rm -f "$out"
}
export -f build_one
export INC T
ls "$P"/verifier_*.c | sed 's|.*/||; s|\.c$||' |
    xargs -P2 -I{} bash -c 'build_one "$0/{}.c" "$1/{}.o"' "$P" "$WORK/obj"
# Target BTF objects the tests name (__btf_path: the kernel's test runner
# resolves their CO-RE relocations against it), built the same way.
mkdir -p "$WORK/obj/btf"
for o in "$WORK"/obj/verifier_*.o; do
    { bpftool btf dump file "$o" 2>/dev/null || true; } | { grep -o "comment:test_btf_path=[^']*" || true; } |
        sed 's/.*=//'
done | sort -u | while read -r b; do
    src=$P/${b%.bpf.o}.c
    if [ ! -e "$src" ]; then
        tar -xJf "$TAR" -C "$WORK" "linux-source-6.12/tools/testing/selftests/bpf/progs/${b%.bpf.o}.c" 2>/dev/null || continue
    fi
    build_one "$src" "$WORK/obj/btf/$b"
done
echo "$WORK/obj"
