#!/usr/bin/env bash
# graft verify gives every program of an object its own verdict: kernel
# program types (kprobe, tc, cgroup_skb, bare tracepoint/raw_tp, pre-1.0
# names like xdp_prog, old-style .text-only code) are verified offline and
# reported "verified; not attachable by graft"; a program that cannot be
# linked is rejected alone; graft load still refuses kernel programs.
set -uo pipefail
BUILD=$1
FIX=$2          # the loader's fixture directory (kernel.bpf.o, oldstyle.bpf.o)
GRAFT=$BUILD/bin/graft
export GRAFT_REGISTRY=${GRAFT_REGISTRY:-/graft}.vkernel.$$   # under ctest: the run's own prefix
trap 'rm -f "/dev/shm$GRAFT_REGISTRY" "/dev/shm$GRAFT_REGISTRY".*' EXIT
. "$(dirname "$0")/../common/tcheck.sh"

out=$("$GRAFT" verify "$FIX/kernel.bpf.o" 2>&1); rc=$?
echo "$out"
check "exit 1: one program cannot be linked" test $rc = 1
for p in "bare_tp (tracepoint): verified; not attachable by graft (kernel tracepoint program)" \
         "bare_raw_tp (raw_tp): verified; not attachable by graft (kernel raw_tracepoint program)" \
         "sched_tp (tracepoint/sched/sched_switch): verified; not attachable by graft (kernel tracepoint" \
         "kp (kprobe/do_sys_openat2): verified; not attachable by graft (kernel kprobe program)" \
         "cls (tc): verified; not attachable by graft (kernel sched_cls program)" \
         "old_xdp (xdp_prog): verified; not attachable by graft (kernel xdp program)" \
         "cg (cgroup_skb/ingress): verified; not attachable by graft (kernel cgroup_skb program)"; do
    check "$p" has "$p" "$out"
done
check "cgroup_skb/egress may return 3" has "cg_egress (cgroup_skb/egress): verified; not attachable" "$out"
check "cgroup_skb/ingress may not return 2 (the kernel's rule)" \
    has "cg_bad_ret (cgroup_skb/ingress): rejected: insn [0-9]*: R0 return value may be in \[2, 2\], the policy requires \[0, 1\]" "$out"
check "? section: a graft socket filter, accepted" has "no_autoload (?socket): accepted" "$out"
check "graft's own tracepoint: accepted, attachable" has "graft_tp (tracepoint/syscalls/sys_enter_openat): accepted" "$out"
check "... and not called a kernel program" bash -c "! grep -q 'graft_tp.*not attachable' <<<\"\$1\"" _ "$out"
check "unresolved symbol: that program alone rejected" \
    has "unresolved (socket/unresolved): rejected: cannot be built: .*undefined symbol 'missing_global'" "$out"

check "a returned pointer is refused by default" \
    has "leaks_ctx (kprobe/do_nanosleep): rejected: insn [0-9]*: R0 pointer leak" "$out"

out=$("$GRAFT" verify "$FIX/kernel.bpf.o" --privileged 2>&1)
check "--privileged says whose rules" has "the kernel's rules for root, offline" "$out"
check "--privileged: a returned pointer is the kernel's root verdict, accepted" \
    has "leaks_ctx (kprobe/do_nanosleep): verified; not attachable by graft" "$out"
check "--privileged: the kernel's return rules still hold" \
    has "cg_bad_ret (cgroup_skb/ingress): rejected: insn [0-9]*: R0 return value" "$out"

out=$("$GRAFT" verify "$FIX/kernel.bpf.o" --section cls 2>&1); rc=$?
check "--section of a kernel program: exit 0" test $rc = 0

out=$("$GRAFT" verify "$FIX/oldstyle.bpf.o" 2>&1); rc=$?
check "old style .text-only object: both programs verified, exit 0" \
    test $rc = 0 -a "$(grep -c 'verified; not attachable by graft' <<<"$out")" = 2

out=$("$GRAFT" load "$FIX/oldstyle.bpf.o" 2>&1); rc=$?
check "graft load refuses a kernel program" has "is a kernel unknown program: graft cannot attach it" "$out"
check "... with a failure exit" test $rc != 0

echo "$pass passed, $fails failed"
test $fails = 0
