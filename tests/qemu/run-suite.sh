#!/usr/bin/env bash
# run-suite.sh QEMU_CACHE RUNNER LIST - run the test programs LIST names
# (see suite_run.c) with protection keys: natively when this CPU has PKU
# (cpuinfo flags pku and ospke), else with RUNNER as /init of a QEMU TCG
# guest with -cpu max (scripts/qemu/run-initramfs.sh), which gets every
# absolute path LIST mentions (a directory: its files) at the same path, and
# the files of "#files: PATH..." lines.
# Passes iff the runner says "SUITE: N passed, 0 failed" for a CPU with PKU.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: run-suite.sh QEMU_CACHE RUNNER LIST}
runner=${2:?usage: run-suite.sh QEMU_CACHE RUNNER LIST}
list=${3:?usage: run-suite.sh QEMU_CACHE RUNNER LIST}
[ -r "$list" ] || { echo "run-suite: no test list $list" >&2; exit 1; }
list=$(cd "$(dirname "$list")" && pwd)/$(basename "$list")   # the guest gets it by path
want=("SUITE: pku=yes" "SUITE: [0-9]+ passed, 0 failed")

if grep -qw pku /proc/cpuinfo && grep -qw ospke /proc/cpuinfo && [ -z "${GRAFT_SUITE_FORCE_QEMU:-}" ]; then
    echo "run-suite: this CPU has PKU: running the list natively"
    out=$("$runner" "$list" 2>&1); rc=$?
    echo "$out"
    for pat in "${want[@]}"; do
        grep -Eq -- "$pat" <<<"$out" || { echo "run-suite: output lacks /$pat/" >&2; exit 1; }
    done
    [ $rc -eq 0 ] || { echo "run-suite: $runner exited $rc" >&2; exit 1; }
    exit 0
fi

files=("$list")
while read -r -a words; do
    if [ "${words[0]:-}" = "#files:" ]; then     # more files a test needs, e.g. /bin/true
        files+=("${words[@]:1}")
        continue
    fi
    [ ${#words[@]} -eq 0 ] || [[ ${words[0]} == \#* ]] && continue
    for w in "${words[@]:2}"; do
        w=${w#*=}                        # VAR=/path too
        [[ $w == /* ]] || continue
        if [ -d "$w" ]; then
            for f in "$w"/*; do [ -f "$f" ] && files+=("$f"); done
        elif [ -f "$w" ]; then
            files+=("$w")
        fi
    done
done <"$list"
echo "run-suite: this CPU has no PKU: running the list under QEMU TCG (${#files[@]} files)"
export GRAFT_QEMU_FILES="${files[*]}"
export GRAFT_QEMU_APPEND="graft_suite=$list ${GRAFT_QEMU_APPEND:-}"
exec "$here/../../scripts/qemu/run-initramfs.sh" "$cache" "$runner" "${want[@]}"
