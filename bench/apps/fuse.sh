#!/usr/bin/env bash
# shellcheck disable=SC2046  # path lists are split on purpose (mktemp paths have no spaces)
# bench/apps/fuse.sh BUILD - use case 6: a FUSE metadata cache kept coherent
# by hooks (the bpftime paper's FUSE use case).
#
# examples/apps/fuse/passfs.c is a passthrough FUSE filesystem (libfuse3)
# that lets the kernel cache nothing (timeouts 0), so every stat()/open()
# through it is a round trip to the daemon. The same backing tree
# (DIRS x FILES files) is mounted twice:
#   mnt_plain  passfs, no graft                                 ("nocache")
#   mnt_graft  passfs under `graft start`, with fuse_cache.bpf.c loaded:
#              the daemon answers getattr from the shared map attr_cache,
#              and clients under graft answer fstatat() of paths under the
#              mount from the same map without entering the kernel ("cache")
# plus the backing directory itself ("native") and a passfs with the
# kernel's own attribute/entry cache on (PASSFS_TIMEOUT=60, "kcache"; not
# coherent with changes made to the backing directory).
#
# Checks (ok:/FAIL:): cached stat results equal the uncached ones field by
# field; after chmod/truncate/write/utimens/rename (file and directory)/
# unlink/link/mkdir/symlink through the mount, stat (cached client, and
# stat(1) through the kernel) shows the new metadata; getattr calls reaching
# the backing directory drop to 0 with a warm cache.
# Benchmark, interleaved, $APPS_RUNS runs, medians:
#   BENCH fuse_stat_{native,kcache,nocache,dcache,cache}_us  per fstatat
#         (dcache: plain client on mnt_graft = daemon-side cache only)
#   BENCH fuse_open_{native,kcache,nocache,cache}_us          per openat+close
#         (cache: plain client on mnt_graft; open cannot be answered in the
#         client, only its LOOKUP/GETATTRs in the daemon)
#   BENCH fuse_find_{native,kcache,nocache,cache}_ms  `find DIR` minus `find EMPTY`
#         with the same launcher (cache: find under graft; find stats only
#         directories, dirfd-relative, which the client part does not serve)
#   BENCH fuse_{stat,open,find}_speedup  nocache / cache
#   BENCH fuse_backing_getattr_{nocache,cache}  backing lstat()s per stat pass
# Knobs: FUSE_DIRS, FUSE_FILES, FUSE_PASSES. Exit 1 if a check failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
apps_init "${1:-}"
apps_install fuse3 libfuse3-dev || { echo "SKIP: fuse3/libfuse3-dev not installed"; exit 0; }
if ! [ -c /dev/fuse ] || ! (exec 3<>/dev/fuse) 2>/dev/null; then
    echo "SKIP: /dev/fuse is not usable here"; exit 0
fi
RUNS=${APPS_RUNS:-5}
DIRS=${FUSE_DIRS:-20}
FILES=${FUSE_FILES:-100}
PASSES=${FUSE_PASSES:-3}
N=$((DIRS * FILES))
W=$APPS_WORK
FB=$W/fsbench
fails=0

MOUNTS=()
fuse_cleanup() {
    local m
    for m in "${MOUNTS[@]}"; do
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
    done
    apps_cleanup
}
trap fuse_cleanup EXIT

# shellcheck disable=SC2046
cc -O2 -g -Wall $(pkg-config --cflags fuse3) -o "$W/passfs" "$APPS_EX/fuse/passfs.c" \
    $(pkg-config --libs fuse3) || exit 1
cc -O2 -g -Wall -o "$FB" "$APPS_EX/fuse/fsbench.c" || exit 1
mkdir -p "$W/back" "$W/mnt_plain" "$W/mnt_graft" "$W/mnt_kcache"
"$FB" mktree "$W/back" "$DIRS" "$FILES" || exit 1

mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
# mount_passfs MNT [LAUNCHER...]: passfs BACK MNT in the foreground; sets DPID.
mount_passfs() {
    local mnt=$1; shift
    PASSFS_COUNT_FILE=$W/count.$(basename "$mnt") "$@" "$W/passfs" "$W/back" "$mnt" -f \
        >"$W/$(basename "$mnt").log" 2>&1 &
    DPID=$!
    apps_track $DPID
    MOUNTS+=("$mnt")
    local i
    for i in $(seq 200); do
        mounted "$mnt" && return 0
        kill -0 $DPID 2>/dev/null || break
        sleep 0.05
    done
    echo "passfs did not mount $mnt:" >&2; cat "$W/$(basename "$mnt").log" >&2
    return 1
}
# backing_getattr PID NAME: the daemon's count of getattrs that reached the backing dir.
backing_getattr() {
    local f=$W/count.$2 i
    rm -f "$f"
    kill -USR1 "$1"
    for i in $(seq 100); do [ -s "$f" ] && { cat "$f"; return; }; sleep 0.02; done
    echo -1
}

mount_passfs "$W/mnt_plain" || exit 1
PLAIN_PID=$DPID
PASSFS_TIMEOUT=60 mount_passfs "$W/mnt_kcache" || exit 1
mount_passfs "$W/mnt_graft" "$GRAFT" start -- || exit 1
GRAFT_PID=$DPID
MNT=$W/mnt_graft
apps_bpf "$APPS_EX/fuse/fuse_cache.bpf.c" "$W/fuse_cache.bpf.o" -DPASSFS="\"$W/passfs\"" \
    -DMNT="\"$MNT\"" -DMNT_DEV="$(stat -c %d "$MNT")" || exit 1
apps_load "$W/fuse_cache.bpf.o" --allow write-user,override || exit 1   # fills struct stat, skips the call
apps_wait_hooks "$GRAFT_PID" "$W/passfs:" || exit 1   # the daemon hooks asynchronously
# stat_val K: counter K of the extension's array map "stats" (no python: fast).
stat_val() {
    "$GRAFT" map dump stats | grep -o "{\"key\":$1,\"value\":[0-9]*}" | grep -o '[0-9]*}' | tr -d '}'
}
gfb() { "$GRAFT" start -- "$FB" "$@" 2>/dev/null; }   # fsbench as a graft client

# ---- correctness ------------------------------------------------------------
# The same files, cached (graft client on mnt_graft) and not (mnt_plain).
sample=()
for f in 0 1 $((FILES - 1)); do sample+=("d0/f$f" "d$((DIRS - 1))/f$f"); done
sample+=(d0 "d$((DIRS - 1))")
paths() { local p; for p in "${sample[@]}"; do printf '%s\n' "$1/$p"; done; }
gfb dump $(paths "$MNT") >/dev/null               # warm: fills the cache
hits0=$(stat_val 4)
gfb dump $(paths "$MNT") | sed "s|$MNT|M|" >"$W/cached.txt"
hits1=$(stat_val 4)
"$FB" dump $(paths "$W/mnt_plain") | sed "s|$W/mnt_plain|M|" >"$W/plain.txt"
check "cached stat answered in the client (${#sample[@]} paths, $((hits1 - hits0)) hits)" \
    test $((hits1 - hits0)) -eq ${#sample[@]}
check "cached stat results equal the uncached ones, field by field" cmp -s "$W/cached.txt" "$W/plain.txt" ||
    diff "$W/cached.txt" "$W/plain.txt" | head -5

# Coherence, on a separate subtree t/ (the benchmark tree stays as it is).
T=t
mkdir -p "$W/back/$T/a" "$W/back/$T/b"
for i in 0 1 2 3 4 5 6 7; do echo "file $i" >"$W/back/$T/a/f$i"; done
echo x >"$W/back/$T/b/g"
# same_as_backing WHAT REL...: the cached client's view of MNT/REL equals the
# backing file's (all fields but the path), and so does stat(1) through the kernel.
same_as_backing() {
    local what=$1 r c n k b; shift
    c=$(gfb dump "${@/#/$MNT/}" | cut -d' ' -f2-)
    n=$("$FB" dump "${@/#/$W/back/}" | cut -d' ' -f2-)
    k=$(for r in "$@"; do stat -c '%i %a %h %s %Y' "$MNT/$r" 2>&1 | sed 's/.*: //'; done)
    b=$(for r in "$@"; do stat -c '%i %a %h %s %Y' "$W/back/$r" 2>&1 | sed 's/.*: //'; done)
    if [ "$c" != "$n" ] || [ "$k" != "$b" ]; then
        echo "FAIL: $what ($*): cached '$c', backing '$n'; kernel '$k', backing '$b'"
        fails=$((fails + 1))
    else
        echo "ok: $what"
    fi
}
all_t="$T $T/a $T/b $T/b/g $(for i in 0 1 2 3 4 5 6 7; do printf '%s ' "$T/a/f$i"; done)"
# shellcheck disable=SC2086
gfb dump $(for r in $all_t; do printf '%s ' "$MNT/$r"; done) >/dev/null   # cache all of t/
inval0=$(stat_val 6)
chmod 600 "$MNT/$T/a/f0";                  same_as_backing "chmod" "$T/a/f0"
truncate -s 1000 "$MNT/$T/a/f1";           same_as_backing "truncate" "$T/a/f1"
echo more >>"$MNT/$T/a/f2";                same_as_backing "write (append)" "$T/a/f2"
touch -d '2001-02-03 04:05:06' "$MNT/$T/a/f3"; same_as_backing "utimens" "$T/a/f3"
rm "$MNT/$T/a/f4";                         same_as_backing "unlink (the name is gone, the directory changed)" "$T/a/f4" "$T/a"
mv "$MNT/$T/a/f5" "$MNT/$T/a/f5x";         same_as_backing "rename a file" "$T/a/f5" "$T/a/f5x" "$T/a"
mv "$MNT/$T/b" "$MNT/$T/bx";               same_as_backing "rename a directory (its subtree)" "$T/b/g" "$T/bx/g" "$T/b" "$T"
ln "$MNT/$T/a/f6" "$MNT/$T/a/f6l";         same_as_backing "link (nlink of the other name)" "$T/a/f6" "$T/a/f6l"
chmod 640 "$MNT/$T/a/f6l";                 same_as_backing "chmod through a second hard link" "$T/a/f6"
mkdir "$MNT/$T/a/sub";                     same_as_backing "mkdir (parent nlink)" "$T/a" "$T/a/sub"
ln -s f7 "$MNT/$T/a/s7";                   same_as_backing "symlink" "$T/a/s7" "$T/a"
inval1=$(stat_val 6)
check "the mutating hooks ran ($((inval1 - inval0)) invalidations)" test $((inval1 - inval0)) -ge 22

# The daemon's own count of getattrs that reached the backing directory.
b0=$(backing_getattr $PLAIN_PID mnt_plain)
"$FB" stat "$W/mnt_plain" "$DIRS" "$FILES" 1 >/dev/null
b1=$(backing_getattr $PLAIN_PID mnt_plain)
gfb stat "$MNT" "$DIRS" "$FILES" 1 >/dev/null     # warm
g0=$(backing_getattr $GRAFT_PID mnt_graft)
gfb stat "$MNT" "$DIRS" "$FILES" 1 >/dev/null
g1=$(backing_getattr $GRAFT_PID mnt_graft)
"$FB" stat "$MNT" "$DIRS" "$FILES" 1 >/dev/null   # plain client: the daemon's cache
g2=$(backing_getattr $GRAFT_PID mnt_graft)
per_pass_plain=$(((b1 - b0) / 2))
per_pass_cache=$(((g1 - g0) / 2))
check "without the cache every stat reaches the backing dir ($per_pass_plain getattrs per pass of $N)" \
    test "$per_pass_plain" -ge "$N"
check "with a warm cache no stat reaches the backing dir (graft client: $((g1 - g0)))" test $((g1 - g0)) -eq 0
check "with a warm cache the daemon answers the kernel from the map (plain client: $((g2 - g1)))" \
    test $((g2 - g1)) -eq 0
check "daemons still running" kill -0 $PLAIN_PID $GRAFT_PID

[ "${APPS_TEST_ONLY:-0}" = 1 ] && { [ $fails = 0 ]; exit; }

# ---- benchmark --------------------------------------------------------------
now_ns() { date +%s%N; }
# find_ms DIR [LAUNCHER...]: time of `find DIR` minus that of `find EMPTY`
# with the same launcher (process and agent start-up are not the walk).
mkdir -p "$W/empty"
find_ms() {
    local d=$1; shift
    local t0 t1 t2
    t0=$(now_ns)
    "$@" find "$W/empty" >/dev/null 2>&1
    t1=$(now_ns)
    "$@" find "$d" >/dev/null 2>&1
    t2=$(now_ns)
    awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.2f\n", ((c - b) - (b - a)) / 1e6 }'
}
first() { awk '{print $1}'; }
declare -A R
for _ in $(seq "$RUNS"); do
    R[stat_native]+=" $("$FB" stat "$W/back" "$DIRS" "$FILES" "$PASSES" | first)"
    R[stat_kcache]+=" $("$FB" stat "$W/mnt_kcache" "$DIRS" "$FILES" "$PASSES" | first)"
    R[stat_nocache]+=" $("$FB" stat "$W/mnt_plain" "$DIRS" "$FILES" "$PASSES" | first)"
    R[stat_dcache]+=" $("$FB" stat "$MNT" "$DIRS" "$FILES" "$PASSES" | first)"
    R[stat_cache]+=" $(gfb stat "$MNT" "$DIRS" "$FILES" "$PASSES" | first)"
    R[open_native]+=" $("$FB" open "$W/back" "$DIRS" "$FILES" "$PASSES" | first)"
    R[open_kcache]+=" $("$FB" open "$W/mnt_kcache" "$DIRS" "$FILES" "$PASSES" | first)"
    R[open_nocache]+=" $("$FB" open "$W/mnt_plain" "$DIRS" "$FILES" "$PASSES" | first)"
    R[open_cache]+=" $("$FB" open "$MNT" "$DIRS" "$FILES" "$PASSES" | first)"
    R[find_native]+=" $(find_ms "$W/back")"
    R[find_kcache]+=" $(find_ms "$W/mnt_kcache")"
    R[find_nocache]+=" $(find_ms "$W/mnt_plain")"
    R[find_cache]+=" $(find_ms "$MNT" "$GRAFT" start --)"
done
declare -A M
for k in "${!R[@]}"; do
    # shellcheck disable=SC2086
    M[$k]=$(apps_median ${R[$k]})
done
for k in stat_native stat_kcache stat_nocache stat_dcache stat_cache open_native open_kcache open_nocache open_cache; do
    echo "BENCH fuse_${k}_us ${M[$k]} us"
done
for k in find_native find_kcache find_nocache find_cache; do
    echo "BENCH fuse_${k}_ms ${M[$k]} ms"
done
for w in stat open find; do
    echo "BENCH fuse_${w}_speedup $(awk -v a="${M[${w}_nocache]}" -v b="${M[${w}_cache]}" 'BEGIN { printf "%.2f\n", a / b }') x"
done
echo "BENCH fuse_backing_getattr_nocache $per_pass_plain per_pass"
echo "BENCH fuse_backing_getattr_cache $per_pass_cache per_pass"
echo "# stats: $("$GRAFT" map dump stats | python3 -c 'import json,sys; print([e["value"] for e in json.load(sys.stdin)["entries"]])')" \
     "(daemon hit, daemon miss, filled, fill raced, client hit, client miss, inval, flush)"
[ $fails = 0 ]
