/*
 * test_packet.c - the kernel program types' contexts in the verifier
 * (packet.c, ctx_kernel.c): packet pointers and the ranges comparisons with
 * data_end prove, in every branch form; accesses just past a range; copies,
 * spills and variable offsets; helpers that invalidate packet pointers;
 * per-type __sk_buff / xdp_md field rules and context writes; the moved
 * context pointer rule; the kernel's static stack-chain limit and its
 * one-map-per-tail-call rule for unprivileged programs; may_goto loops.
 * Each case is a program, a kernel type, and the
 * verdict the kernel gives (with a substring of graft's reason for
 * rejections). The wrong accepts this work fixed are among them (a narrow
 * load of a pointer field, tc_classid read by lwt, ...): they fail on the
 * code before it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "verifier/verifier.h"
#include "vm/vm.h"
#include "vtest.h"


/* r6 = ctx, r2 = data, r3 = data_end (xdp_md) */
#define XDP_PRE "mov r6, r1\nldxw r2, [r6+0]\nldxw r3, [r6+4]\n"
/* the same from __sk_buff */
#define SKB_PRE "mov r6, r1\nldxw r2, [r6+76]\nldxw r3, [r6+80]\n"
#define OUT "out:\nmov r0, 0\nexit\n"

static const struct vt_kcase cases[] = {
    /* ranges, branch forms, operand orders */
    { "xdp: ptr+8 > end skips, 8 bytes read", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxdw r0, [r2+0]\n" OUT },
    { "xdp: one byte past the range", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxb r0, [r2+8]\n" OUT },
    { "xdp: no check", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "ldxb r0, [r2+0]\n" OUT },
    { "xdp: end < ptr skips (operands swapped)", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njlt r3, r1, out\nldxdw r0, [r2+0]\n" OUT },
    { "xdp: ptr <= end jumps to the access", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 4\njle r1, r3, ok\nja out\nok:\nldxw r0, [r2+0]\n" OUT },
    { "xdp: end >= ptr jumps to the access", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 4\njge r3, r1, ok\nja out\nok:\nldxw r0, [r2+0]\n" OUT },
    { "xdp: ptr >= end skips: ptr < end, one byte more", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njge r1, r3, out\nldxb r0, [r2+8]\n" OUT },
    { "xdp: end <= ptr skips: ptr < end", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njle r3, r1, out\nldxb r0, [r2+8]\n" OUT },
    { "xdp: ptr < end jumps: one byte more", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njlt r1, r3, ok\nja out\nok:\nldxb r0, [r2+8]\n" OUT },
    { "xdp: ptr < end jumps: two bytes more is too far", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 8\njlt r1, r3, ok\nja out\nok:\nldxh r0, [r2+8]\n" OUT },
    { "xdp: the access on the side where ptr > end", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, bad\nja out\nbad:\nldxb r0, [r2+0]\n" OUT },
    { "xdp: signed comparisons prove nothing", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 8\njsgt r1, r3, out\nldxb r0, [r2+0]\n" OUT },
    { "xdp: a negative offset", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxb r0, [r2-1]\n" OUT },
    { "sk_skb: a second ptr > end on a path that found it past the end is known taken", GKT_SK_SKB,
      "sk_skb/stream_verdict", 1, NULL,
      "ldxw r2, [r1+80]\nldxw r4, [r1+76]\nmov r3, r4\nadd r3, 42\nmov r1, 0\njgt r3, r2, again\n"
      "add r4, 14\nmov r1, r4\nagain:\njgt r3, r2, out\nldxh r2, [r1+9]\n" OUT },
    { "sk_skb: ... but not once the pointer moved back", GKT_SK_SKB, "sk_skb/stream_verdict", 1,
      "invalid mem access 'scalar'",
      "ldxw r2, [r1+80]\nldxw r4, [r1+76]\nmov r3, r4\nadd r3, 42\nmov r1, 0\njgt r3, r2, again\n"
      "add r4, 14\nmov r1, r4\nagain:\nadd r3, -1\njgt r3, r2, out\nldxh r2, [r1+9]\n" OUT },
    { "xdp: end <= ptr found (ptr >= end) decides a later ptr < end", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\nmov r5, 0\njle r3, r1, again\nmov r5, r2\nagain:\n"
              "jlt r1, r3, use\nja out\nuse:\nldxb r0, [r5+0]\n" OUT },
    /* copies, spills, variable offsets */
    { "xdp: a copy made before the check shares the range", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r5, r2\nadd r5, 2\nmov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxw r0, [r5+2]\n" OUT },
    { "xdp: the copy's own offset counts", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r5, r2\nadd r5, 2\nmov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxw r0, [r5+4]\n" OUT },
    { "xdp: spilled and refilled, the range stays", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstxdw [r10-8], r2\nldxdw r4, [r10-8]\nldxdw r0, [r4+0]\n" OUT },
    { "xdp: bounded variable offset", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "ldxw r4, [r6+12]\nand r4, 255\nadd r2, r4\nmov r1, r2\nadd r1, 4\njgt r1, r3, out\nldxw r0, [r2+0]\n" OUT },
    { "xdp: unbounded variable offset", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "ldxw r4, [r6+12]\nadd r2, r4\nmov r1, r2\nadd r1, 4\njgt r1, r3, out\nldxw r0, [r2+0]\n" OUT },
    { "xdp: a check on data says nothing of data + var", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "ldxw r4, [r6+12]\nand r4, 255\nmov r5, r2\nadd r5, r4\nmov r1, r2\nadd r1, 4\n"
              "jgt r1, r3, out\nldxw r0, [r5+0]\n" OUT },
    { "xdp: a variable offset that may be negative", GKT_XDP, "xdp", 1, "min value is negative",
      XDP_PRE "ldxw r4, [r6+12]\nand r4, 255\nsub r2, r4\nmov r1, r2\nadd r1, 4\njgt r1, r3, out\nldxw r0, [r2+0]\n" OUT },
    { "xdp: meta checked against data", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "ldxw r4, [r6+8]\nmov r1, r4\nadd r1, 4\njgt r1, r2, out\nldxw r0, [r4+0]\n" OUT },
    { "xdp: meta checked against data_end proves nothing", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "ldxw r4, [r6+8]\nmov r1, r4\nadd r1, 4\njgt r1, r3, out\nldxw r0, [r4+0]\n" OUT },
    { "xdp: a path that proved nothing joins one that did (no pruning by the wider range)", GKT_XDP, "xdp", 1,
      "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, join\nmov r0, 0\njoin:\nldxb r0, [r2+0]\n" OUT },
    { "xdp: both paths proved the range", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxw r4, [r6+12]\njeq r4, 0, join\nmov r0, 0\n"
              "join:\nldxb r0, [r2+7]\n" OUT },
    { "xdp: equal pointers of different bases are not one base (no pruning across ids)", GKT_XDP, "xdp", 1,
      "outside of the packet",
      XDP_PRE "ldxw r4, [r6+12]\nand r4, 15\nldxw r0, [r6+16]\nmov r5, r2\nadd r5, r4\njeq r0, 0, other\n"
              "mov r8, r5\nja join\nother:\nmov r8, r2\nadd r8, r4\njoin:\nmov r1, r5\nadd r1, 8\n"
              "jgt r1, r3, out\nldxb r0, [r8+0]\n" OUT },
    { "xdp: no arithmetic on data_end", GKT_XDP, "xdp", 1, "pointer arithmetic on pkt_end",
      XDP_PRE "add r3, 4\n" OUT },
    { "xdp: data_end is not readable", GKT_XDP, "xdp", 1, "packet end",
      XDP_PRE "ldxb r0, [r3+0]\n" OUT },
    { "xdp: atomics on the packet", GKT_XDP, "xdp", 1, "BPF_ATOMIC stores into R2 pkt",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nmov r4, 1\nlock add [r2+0], r4\n" OUT },
    { "xdp: storing a packet pointer into the packet (unprivileged)", GKT_XDP, "xdp", 0, "leaks pointer",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstxdw [r2+0], r2\n" OUT },
    { "xdp: storing a packet pointer into the packet (root)", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstxdw [r2+0], r2\n" OUT },
    { "tc: tail_call moves the packet: old pointers are gone", GKT_SCHED_CLS, "tc", 1, "R2",
      SKB_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstxdw [r10-8], r2\nmov r1, r6\nlddw r2, map:0\nmov r3, 0\n"
              "call 12\nldxdw r2, [r10-8]\nldxb r0, [r2+0]\n" OUT },
    /* helpers and packet memory */
    { "xdp: a map key in the packet", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 4\njgt r1, r3, out\nlddw r1, map:1\ncall 1\n" OUT },
    { "xdp: a map key one byte past the range", GKT_XDP, "xdp", 1, "outside of the packet",
      XDP_PRE "mov r1, r2\nadd r1, 3\njgt r1, r3, out\nlddw r1, map:1\ncall 1\n" OUT },
    { "xdp: a helper the kernel does not let read the packet", GKT_XDP, "xdp", 1,
      "helper access to the packet is not allowed",
      XDP_PRE "mov r1, r2\nadd r1, 4\njgt r1, r3, out\nmov r1, r2\nmov r2, 4\ncall 6\n" OUT },
    { "xdp: bpf_xdp_adjust_head moves the packet: a checked pointer is gone", GKT_XDP, "xdp", 1,
      "invalid mem access 'scalar'",
      XDP_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nmov r7, r2\nmov r1, r6\nmov r2, 4\ncall 44\n"
              "ldxb r0, [r7+0]\n" OUT },
    { "xdp: ... and one loaded again after it must be checked again", GKT_XDP, "xdp", 1, NULL,
      "mov r6, r1\nmov r2, 4\ncall 44\nldxw r2, [r6+0]\nldxw r3, [r6+4]\nmov r1, r2\nadd r1, 8\n"
      "jgt r1, r3, out\nldxb r0, [r2+7]\n" OUT },
    { "sk_skb: bpf_skb_pull_data moves the packet: a spilled pointer is gone too", GKT_SK_SKB,
      "sk_skb/stream_verdict", 1, "invalid mem access 'scalar'",
      SKB_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstxdw [r10-8], r2\nmov r1, r6\nmov r2, 8\ncall 39\n"
              "ldxdw r2, [r10-8]\nldxb r0, [r2+0]\n" OUT },
    /* who may write the packet */
    { "tc writes the packet", GKT_SCHED_CLS, "tc", 1, NULL,
      SKB_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstw [r2+0], 1\n" OUT },
    { "cgroup_skb reads but cannot write the packet", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1,
      "cannot write into packet", SKB_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nldxw r0, [r2+0]\nstw [r2+0], 1\n" OUT },
    { "lwt_in cannot write the packet", GKT_LWT, "lwt_in", 1, "cannot write into packet",
      SKB_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstw [r2+0], 1\n" OUT },
    { "lwt_xmit writes the packet", GKT_LWT, "lwt_xmit", 1, NULL,
      SKB_PRE "mov r1, r2\nadd r1, 8\njgt r1, r3, out\nstw [r2+0], 1\n" OUT },
    /* context fields per type */
    { "socket filter: skb->data is hidden", GKT_SOCKET_FILTER, "socket/x", 1, "invalid bpf_context access",
      "ldxw r0, [r1+76]\nexit\n" },
    { "socket filter writes cb[] bytes", GKT_SOCKET_FILTER, "socket/x", 1, NULL,
      "stb [r1+49], 1\nstdw [r1+48], 2\nmov r0, 0\nexit\n" },
    { "socket filter cannot write mark", GKT_SOCKET_FILTER, "socket/x", 1, "invalid bpf_context access",
      "stw [r1+8], 1\nmov r0, 0\nexit\n" },
    { "tc writes mark, priority, tc_index, tc_classid", GKT_SCHED_CLS, "tc", 1, NULL,
      "stw [r1+8], 1\nstw [r1+32], 1\nstw [r1+44], 1\nstw [r1+72], 1\nmov r0, 0\nexit\n" },
    { "tc cannot write len", GKT_SCHED_CLS, "tc", 1, "invalid bpf_context access",
      "stw [r1+0], 1\nmov r0, 0\nexit\n" },
    { "tc: narrow write of mark", GKT_SCHED_CLS, "tc", 1, "invalid bpf_context access",
      "sth [r1+8], 1\nmov r0, 0\nexit\n" },
    { "tc: narrow read of a u32 field", GKT_SCHED_CLS, "tc", 1, NULL,
      "ldxb r0, [r1+3]\nexit\n" },
    { "tc: 8-byte read of a u32 field", GKT_SCHED_CLS, "tc", 1, "invalid bpf_context access",
      "ldxdw r0, [r1+0]\nexit\n" },
    { "tc: narrow load of the sk pointer field", GKT_SCHED_CLS, "tc", 1, "invalid bpf_context access",
      "ldxw r0, [r1+172]\nexit\n" },
    { "tc: data_meta readable", GKT_SCHED_CLS, "tc", 1, NULL, "ldxw r0, [r1+140]\nmov r0, 0\nexit\n" },
    { "lwt: tc_classid is hidden", GKT_LWT, "lwt_in", 1, "invalid bpf_context access",
      "ldxw r0, [r1+72]\nexit\n" },
    { "cgroup_skb: data_meta is hidden", GKT_CGROUP_SKB, "cgroup_skb/egress", 1, "invalid bpf_context access",
      "ldxw r0, [r1+140]\nmov r0, 0\nexit\n" },
    { "cgroup_skb: data needs CAP_BPF", GKT_CGROUP_SKB, "cgroup_skb/egress", 0, "invalid bpf_context access",
      "ldxw r0, [r1+76]\nmov r0, 0\nexit\n" },
    { "cgroup_skb: tstamp write needs CAP_BPF", GKT_CGROUP_SKB, "cgroup_skb/egress", 1, NULL,
      "mov r2, 0\nstxdw [r1+152], r2\nmov r0, 0\nexit\n" },
    { "sk_skb: mark is hidden", GKT_SK_SKB, "sk_skb/stream_verdict", 1, "invalid bpf_context access",
      "ldxw r0, [r1+8]\nexit\n" },
    { "flow_dissector: only data, data_end and flow_keys", GKT_FLOW_DISSECTOR, "flow_dissector", 1,
      "invalid bpf_context access", "ldxw r0, [r1+0]\nexit\n" },
    { "xdp: sign-extending load of data", GKT_XDP, "xdp", 1, "invalid bpf_context access",
      "ldxsw r2, [r1+0]\nmov r0, 0\nexit\n" },
    { "xdp: context is read-only", GKT_XDP, "xdp", 1, "invalid bpf_context access",
      "stw [r1+16], 1\nmov r0, 0\nexit\n" },
    { "xdp: egress_ifindex only for devmap programs", GKT_XDP, "xdp", 1, "invalid bpf_context access",
      "ldxw r0, [r1+20]\nexit\n" },
    { "xdp/devmap reads egress_ifindex", GKT_XDP, "xdp/devmap", 1, NULL, "ldxw r0, [r1+20]\nexit\n" },
    { "sk_msg: data is an 8-byte pointer", GKT_SK_MSG, "sk_msg", 1, "invalid bpf_context access",
      "ldxw r0, [r1+0]\nmov r0, 0\nexit\n" },
    { "sockopt: narrow load of optval", GKT_CGROUP_SOCKOPT, "cgroup/getsockopt", 1, "invalid bpf_context access",
      "ldxw r0, [r1+12]\nmov r0, 1\nexit\n" },
    { "sockopt: optval is a packet pointer", GKT_CGROUP_SOCKOPT, "cgroup/getsockopt", 1, NULL,
      "ldxdw r2, [r1+8]\nldxdw r3, [r1+16]\nmov r4, r2\nadd r4, 4\njgt r4, r3, out\nldxw r0, [r2+0]\nout:\nmov r0, 1\nexit\n" },
    /* the kernel's own limits */
    { "a call chain whose functions' stacks add up past 512 bytes", GKT_SCHED_CLS, "tc", 1, "combined stack size",
      "mov r6, r1\ncall fa\nmov r1, r6\ncall fb\nstb [r10-64], 0\nmov r0, 0\nexit\n"
      "fa:\nstb [r10-224], 0\nmov r0, 0\nexit\nfb:\ncall fa\nstb [r10-256], 0\nmov r0, 0\nexit\n" },
    /* main -> fa -> ... -> fh: 9 functions, the call to fb behind a branch never taken */
    { "a chain of 9 functions through dead code is too deep", GKT_XDP, "xdp", 1, "the call stack of 9 frames",
      "mov r1, 0\ncall fa\nexit\nfa:\njeq r1, 0, skip\ncall fb\nskip:\nmov r0, 0\nexit\n"
      "fb:\ncall fc\nexit\nfc:\ncall fd\nexit\nfd:\ncall fe\nexit\nfe:\ncall ff\nexit\n"
      "ff:\ncall fg\nexit\nfg:\ncall fh\nexit\nfh:\nmov r0, 0\nexit\n" },
    { "a chain of 8 functions is not", GKT_XDP, "xdp", 1, NULL,
      "mov r1, 0\ncall fa\nexit\nfa:\njeq r1, 0, skip\ncall fb\nskip:\nmov r0, 0\nexit\n"
      "fb:\ncall fc\nexit\nfc:\ncall fd\nexit\nfd:\ncall fe\nexit\nfe:\ncall ff\nexit\n"
      "ff:\ncall fg\nexit\nfg:\nmov r0, 0\nexit\n" },
    { "a chain of 9 functions, tracing types too (a private stack changes only the stack rule)", GKT_KPROBE,
      "kprobe/f", 1, "the call stack of 9 frames",
      "mov r1, 0\ncall fa\nexit\nfa:\njeq r1, 0, skip\ncall fb\nskip:\nmov r0, 0\nexit\n"
      "fb:\ncall fc\nexit\nfc:\ncall fd\nexit\nfd:\ncall fe\nexit\nfe:\ncall ff\nexit\n"
      "ff:\ncall fg\nexit\nfg:\ncall fh\nexit\nfh:\nmov r0, 0\nexit\n" },
    { "one tail call, two prog arrays (unprivileged)", GKT_SCHED_CLS, "tc", 0, "tail_call abusing map_ptr",
      "ldxb r0, [r1+48]\nmov r3, 0\nlddw r2, map:0\njeq r0, 13, go\nlddw r2, map:2\ngo:\ncall 12\nmov r0, 1\nexit\n" },
    { "one tail call, two prog arrays (root)", GKT_SCHED_CLS, "tc", 1, NULL,
      "ldxb r0, [r1+48]\nmov r3, 0\nlddw r2, map:0\njeq r0, 13, go\nlddw r2, map:2\ngo:\ncall 12\nmov r0, 1\nexit\n" },
    { "sk_lookup: 8-byte read of family", GKT_SK_LOOKUP, "sk_lookup", 1, "invalid bpf_context access",
      "ldxdw r0, [r1+8]\nmov r0, 0\nexit\n" },
    { "sk_lookup: remote_port as u16 and as u32", GKT_SK_LOOKUP, "sk_lookup", 1, NULL,
      "ldxh r0, [r1+36]\nldxw r0, [r1+36]\nmov r0, 0\nexit\n" },
    { "sk_lookup: narrow load of sk", GKT_SK_LOOKUP, "sk_lookup", 1, "invalid bpf_context access",
      "ldxw r0, [r1+0]\nmov r0, 0\nexit\n" },
    { "connect4: no user_ip6", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", 1, "invalid bpf_context access",
      "ldxw r0, [r1+8]\nmov r0, 1\nexit\n" },
    { "connect4 writes user_ip4 and user_port", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", 1, NULL,
      "stw [r1+4], 1\nstw [r1+24], 2\nmov r0, 1\nexit\n" },
    { "connect6: 8-byte half of user_ip6", GKT_CGROUP_SOCK_ADDR, "cgroup/connect6", 1, NULL,
      "ldxdw r0, [r1+8]\nldxdw r0, [r1+16]\nmov r0, 1\nexit\n" },
    { "connect6: a misaligned 8-byte load of user_ip6", GKT_CGROUP_SOCK_ADDR, "cgroup/connect6", 1,
      "invalid bpf_context access", "ldxdw r0, [r1+12]\nmov r0, 1\nexit\n" },
    { "connect4: msg_src_ip4 only for sendmsg4", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", 1,
      "invalid bpf_context access", "ldxw r0, [r1+40]\nmov r0, 1\nexit\n" },
    { "sendmsg4 reads msg_src_ip4", GKT_CGROUP_SOCK_ADDR, "cgroup/sendmsg4", 1, NULL,
      "ldxw r0, [r1+40]\nmov r0, 1\nexit\n" },
    { "the context pointer may not be moved", GKT_SCHED_CLS, "tc", 1, "dereference of modified ctx ptr",
      "add r1, 4\nldxw r0, [r1+0]\nexit\n" },
    /* may_goto loops (kernel programs only): a pass through a may_goto's
     * fall-through that an earlier pass covers (after widening the ranges
     * that changed) ends the path - the kernel's run-time counter ends the
     * loop. Cycles through its taken edge only are not bounded by it. */
    { "may_goto: a loop of a million passes converges", GKT_SOCKET_FILTER, "socket", 1, NULL,
      "ldxw r1, [r1+0]\nmov r0, 0\nloop: add r0, r1\nadd r1, 1\n.raw 0xe5, 0, 0, 1, 0\n"
      "jlt r1, 1000000, loop\nmov r0, 0\nexit\n" },
    { "may_goto: a counter whose range drifts converges by widening", GKT_SOCKET_FILTER, "socket", 1, NULL,
      "ldxw r1, [r1+0]\nmov r0, 0\njgt r1, 999999, out\nloop: mov r2, r1\n.raw 0xe5, 0, 0, 4, 0\n"
      "add r0, r2\nmov r1, r2\nadd r1, 1\njlt r2, 999999, loop\nout: mov r0, 0\nexit\n" },
    { "may_goto: a pointer walking off the stack is still caught", GKT_SOCKET_FILTER, "socket", 1, "stack",
      "mov r1, r10\nloop: add r1, -8\nstb [r1+0], 0\n.raw 0xe5, 0, 0, 1, 0\nja loop\nmov r0, 0\nexit\n" },
    { "may_goto: a widened index is not used unchecked", GKT_SOCKET_FILTER, "socket", 1, "R3",
      "ldxw r2, [r1+0]\nand r2, 7\nloop: mov r3, r10\nadd r3, -64\nadd r3, r2\nstb [r3+0], 0\nadd r2, 1\n"
      ".raw 0xe5, 0, 0, 1, 0\nja loop\nmov r0, 0\nexit\n" },
    { "may_goto: jumping to itself is an infinite loop", GKT_SOCKET_FILTER, "socket", 1, "infinite loop",
      "mov r0, 0\n.raw 0xe5, 0, 0, -1, 0\nexit\n" },
    { "may_goto: a cycle through its taken edge only", GKT_SOCKET_FILTER, "socket", 1, "infinite loop",
      "mov r0, 0\n.raw 0xe5, 0, 0, 1, 0\nexit\n.raw 0x05, 0, 0, -3, 0\n" },
    /* without BPF_F_STRICT_ALIGNMENT (strict_cases below) packet words need no alignment ... */
    { "lenient alignment: the same word at data+12 is fine", GKT_XDP, "xdp", 1, NULL,
      XDP_PRE "mov r1, r2\nadd r1, 20\njgt r1, r3, out\nldxw r0, [r2+12]\n" OUT },
    /* ... but the kernel holds a kernel program's stack accesses to their
     * size's alignment always (its spill tracking relies on it) */
    { "kernel stack: a misaligned 8-byte store is refused without strict alignment", GKT_SOCKET_FILTER,
      "socket", 1, "misaligned stack access off 0+0+-10+0 size 8", "mov r1, r10\nadd r1, -10\nstdw [r1+0], 0\n"
      "mov r0, 0\nexit\n" },
    { "kernel stack: a 4-byte store at fp-12 is aligned", GKT_SOCKET_FILTER, "socket", 1, NULL,
      "stw [r10-12], 0\nmov r0, 0\nexit\n" },
};

/* Under BPF_F_STRICT_ALIGNMENT: packet data counts from NET_IP_ALIGN (2). */
static const struct vt_kcase strict_cases[] = {
    { "strict alignment: the IP header after 14 bytes of Ethernet reads as aligned words", GKT_XDP, "xdp", 1,
      NULL, XDP_PRE "mov r1, r2\nadd r1, 20\njgt r1, r3, out\nldxw r0, [r2+14]\nldxh r0, [r2+12]\n" OUT },
    { "strict alignment: a word at data+12 is misaligned (2+12)", GKT_XDP, "xdp", 1,
      "misaligned packet access off 2+0+0+12 size 4",
      XDP_PRE "mov r1, r2\nadd r1, 20\njgt r1, r3, out\nldxw r0, [r2+12]\n" OUT },
    { "strict alignment: a variable offset of unknown low bits is misaligned", GKT_SCHED_CLS, "tc", 1,
      "misaligned packet access",
      SKB_PRE "ldxw r4, [r6+0]\nand r4, 6\nadd r2, r4\nmov r1, r2\nadd r1, 8\njgt r1, r3, out\n"
      "ldxw r0, [r2+0]\n" OUT },
    { "strict alignment: a variable offset of known even low bits keeps half-words aligned", GKT_SCHED_CLS, "tc",
      1, NULL,
      SKB_PRE "ldxw r4, [r6+0]\nand r4, 6\nadd r2, r4\nmov r1, r2\nadd r1, 8\njgt r1, r3, out\n"
      "ldxh r0, [r2+0]\n" OUT },
};

int main(void)
{
    int failures = 0;
    static const struct gmap_def maps[3] = {
        { .type = GMAP_PROG_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 2, .name = "progs" },
        { .type = GMAP_HASH, .key_size = 4, .value_size = 8, .max_entries = 4, .name = "hash" },
        { .type = GMAP_PROG_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 2, .name = "progs2" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failures += vt_kernel_case(&cases[i], maps, 3);
    for (size_t i = 0; i < sizeof(strict_cases) / sizeof(strict_cases[0]); i++)
        failures += vt_kernel_case_strict(&strict_cases[i], maps, 3);
    printf("%zu packet and context cases, %d failures\n",
           sizeof(cases) / sizeof(cases[0]) + sizeof(strict_cases) / sizeof(strict_cases[0]), failures);
    return failures ? 1 : 0;
}
