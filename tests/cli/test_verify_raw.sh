#!/usr/bin/env bash
# graft verify --raw with map fixtures (--map) and a kernel program type
# (--prog-type): fixtures bind maps to the ld_imm64 instructions that load
# them, bad fixtures are one-line usage errors (exit 2), and each kernel
# type may call only its own helpers ("unknown func", as the kernel says).
set -uo pipefail
GRAFT=$1/bin/graft
. "$(dirname "$0")/../common/tcheck.sh"
run() { out=$(echo "$1" | "$GRAFT" verify --raw "${@:2}" 2>&1); rc=$?; }

# r1 = map; r2 = fp - 8; *(u64 *)(fp - 8) = 0; r0 = lookup(r1, r2);
# if r0 == 0 goto exit; r0 = *(u64 *)(r0 + 0); exit
lookup="18 11 00 00 00 00 00 00 00 00 00 00 00 00 00 00 bf a2 00 00 00 00 00 00 07 02 00 00 f8 ff ff ff 7a 0a f8 ff 00 00 00 00 85 00 00 00 01 00 00 00 15 00 01 00 00 00 00 00 79 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00"

echo "== --map"
run "$lookup" --map hash:8:8:1@0
check "an 8-byte read of an 8-byte value: accepted" test $rc = 0
run "$lookup" --map hash:8:4:1@0
check "... of a 4-byte value: rejected (exit 1)" test $rc = 1
check "... the access is named" has "exceeds its 4 bytes" "$out"
run "$lookup" --map array:4:4:1 --map hash:8:8:1@0
check "the second --map is map 1: insn 0 loads it" test $rc = 0
run "$lookup" --map hash:8:8:1:flags=0x1@0 --prog-type socket_filter --privileged
check "flags, a kernel type and --privileged" test $rc = 0

echo "== map value rules: write-only maps, kptr fields"
run "$lookup" --map hash:8:8:1:flags=0x100@0
check "a read of a BPF_F_WRONLY_PROG value: rejected" has "read from write-only map 'map0'" "$out"
run "$lookup" --map hash:8:24:1:kptr=0:kptr_ref=8@0
check "an 8-byte load of a kptr field: accepted" test $rc = 0
run "${lookup/79 00 00 00 00 00 00 00 95/61 00 00 00 00 00 00 00 95}" --map hash:8:24:1:kptr=0@0
check "a 4-byte load of it: rejected" has "kptr access size must be BPF_DW" "$out"
run "$lookup" --map hash:8:24:1:kptr=4@0
check "a misplaced kptr field: exit 2" test $rc = 2
check "... says so" has "kptr=4: a kptr is 8 aligned bytes" "$out"

echo "== --strict-alignment"
# *(u64 *)(fp - 12) = 0; r0 = 0; exit
unaligned="7a 0a f4 ff 00 00 00 00 b7 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00"
run "$unaligned"
check "graft's own rules: an unaligned stack store is fine (x86-64)" test $rc = 0
run "$unaligned" --strict-alignment
check "the kernel's BPF_F_STRICT_ALIGNMENT: refused" has "misaligned stack access" "$out"
run "$unaligned" --prog-type sched_cls
check "a kernel program's stack is always aligned" has "misaligned stack access" "$out"
out=$("$GRAFT" verify "$1/tests/cli/bpf/count_work.bpf.o" --strict-alignment 2>&1)
check "graft's own program: the option is said not to apply" has "applies to kernel programs only" "$out"

echo "== bad fixtures: exit 2, one line naming the problem"
run "$lookup" --map hash:8:8:1@1
check "an index that is not a map load" test $rc = 2
check "... says so" has "instruction 1 (code 0x00 src_reg 0) is not an ld_imm64 map load" "$out"
run "$lookup" --map hash:8:8:1@40
check "an index past the end" has "past the program's end" "$out"
run "$lookup" --map hash:8:8@0
check "too few fields" has "expected TYPE:KEY:VALUE:ENTRIES" "$out"
run "$lookup" --map hsh:8:8:1@0
check "an unknown type" has "unknown map type 'hsh'" "$out"
run "$lookup" --map hash:x:8:1@0
check "a size that is no number" has "key size 'x' is not a number" "$out"
run "$lookup" --map array_of_maps:4:4:1@0
check "a map of maps without its inner map" has "needs inner=MAP" "$out"
run "$lookup" --map array_of_maps:4:4:1:inner=0@0
check "an inner map that is not earlier" has "must be an earlier --map" "$out"
run "$lookup" --map array:4:8:1:lock=6@0
check "a misplaced spin lock" has "lock=6" "$out"
run "$lookup" --map hash:8:8:1:size=3@0
check "an unknown option" has "unknown option 'size'" "$out"
run "$lookup" --map array:8:8:1@0
check "an array key that is not 4 bytes" has "an array's key is 4 bytes" "$out"
check "all of them exit 2" test $rc = 2
out=$("$GRAFT" verify /dev/null --map hash:8:8:1 2>&1); rc=$?
check "--map without --raw" has "are for --raw" "$out"

echo "== map in map"
# r1 = outer; r2 = fp - 4; *(u32 *)(fp - 4) = 0; r0 = lookup(r1, r2); if r0 == 0 exit;
# r1 = r0; r2 = fp - 4; r0 = lookup(r1, r2) (the inner map); if r0 == 0 exit; r0 = *(u32 *)(r0 + 0); exit
mim="18 11 00 00 00 00 00 00 00 00 00 00 00 00 00 00 bf a2 00 00 00 00 00 00 07 02 00 00 fc ff ff ff 62 0a fc ff 00 00 00 00 85 00 00 00 01 00 00 00 15 00 06 00 00 00 00 00 bf 01 00 00 00 00 00 00 bf a2 00 00 00 00 00 00 07 02 00 00 fc ff ff ff 85 00 00 00 01 00 00 00 15 00 01 00 00 00 00 00 61 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00"
run "$mim" --map array:4:4:1 --map array_of_maps:4:4:1:inner=0@0
check "a 4-byte read of the inner map's 4-byte value" test $rc = 0
run "$mim" --map array:4:2:1 --map array_of_maps:4:4:1:inner=0@0
check "... of a 2-byte inner value: rejected" test $rc = 1

echo "== helpers per kernel program type"
# call bpf_get_current_pid_tgid; exit
pid="85 00 00 00 0e 00 00 00 95 00 00 00 00 00 00 00"
run "$pid" --prog-type kprobe
check "a kprobe may read the current pid" test $rc = 0
run "$pid" --prog-type xdp
check "an xdp program may not" test $rc = 1
check "... unknown func, as the kernel says" has "unknown func bpf_get_current_pid_tgid#14: xdp programs may not call it" "$out"
run "$pid" --prog-type socket_filter --privileged
check "nor a socket filter, even for root" has "unknown func bpf_get_current_pid_tgid#14" "$out"
# call bpf_ktime_get_coarse_ns; exit: packet types only
coarse="85 00 00 00 a0 00 00 00 95 00 00 00 00 00 00 00"
run "$coarse" --prog-type sched_cls
check "ktime_get_coarse_ns in tc" test $rc = 0
run "$coarse" --prog-type tracepoint
check "... not in a tracepoint" has "unknown func bpf_ktime_get_coarse_ns#160: tracepoint" "$out"
# csum_diff(NULL, SIZE, fp - 8, 8, 0) (its first buffer may be NULL): NULL
# with size 0 is nothing to read (and the size is that argument's, not a
# stray one); NULL with bytes is refused, as the kernel does
csum="7a 0a f8 ff 00 00 00 00 b7 01 00 00 00 00 00 00 b7 02 00 00 SZ 00 00 00 bf a3 00 00 00 00 00 00 07 03 00 00 f8 ff ff ff b7 04 00 00 08 00 00 00 b7 05 00 00 00 00 00 00 85 00 00 00 1c 00 00 00 95 00 00 00 00 00 00 00"
run "${csum/SZ/00}" --prog-type sched_cls
check "csum_diff(NULL, 0, ...) in tc: accepted" test $rc = 0
run "${csum/SZ/08}" --prog-type sched_cls
check "csum_diff(NULL, 8, ...): refused" has "R1 is NULL but its size R2 may be up to 8 (helper csum_diff)" "$out"
run "${csum/SZ/00}" --prog-type kprobe
check "csum_diff is not a kprobe helper" has "unknown func bpf_csum_diff#28: kprobe programs may not call it" "$out"
run "$pid" --prog-type nosuchtype
check "an unknown type: exit 2" test $rc = 2
check "... names it" has "unknown program type 'nosuchtype'" "$out"
run "$pid" --prog-type xdp --ctx-size 8
check "--prog-type with --ctx-size" has "drop --ctx-size" "$out"

echo "$pass passed, $fails failed"
[ "$fails" = 0 ]
