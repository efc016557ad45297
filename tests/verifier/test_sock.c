/*
 * test_sock.c - socket pointers and reference tracking in the verifier
 * (sock.c, sock_helpers.c), for kernel program types verified offline:
 * the field rules of struct bpf_sock / bpf_tcp_sock / bpf_xdp_sock views,
 * cgroup storage (get_local_storage), spin locks across subprogram calls,
 * null checks, socket references (acquired by sk_lookup_* and sockmap
 * lookups, released once on every path, dead after release, carried by
 * casts), the kernel's rules on tail calls and LD_ABS while a reference is
 * held, socket maps per program type, and the root-only inference of
 * non-null from a comparison of two pointers. Each case is a program, a
 * kernel type, and the kernel's verdict (with a substring of graft's
 * reason for rejections).
 */
#include <stdio.h>

#include "loader/loader.h"   /* enum gprog_ktype */
#include "vtest.h"


/* r6 = ctx; r0 = sk_lookup_tcp(ctx, a zeroed 16-byte tuple on the stack, 16, 0, 0) */
#define LOOKUP_ID(id) "mov r6, r1\nstdw [r10-16], 0\nstdw [r10-8], 0\nmov r2, r10\nadd r2, -16\nmov r3, 16\n" \
                      "mov r4, 0\nmov r5, 0\ncall " #id "\n"
#define LOOKUP LOOKUP_ID(84)
/* r7 = skb->sk, null-checked */
#define SKB_SK "mov r6, r1\nldxdw r7, [r6+168]\njeq r7, 0, out\n"
/* sockmap key 0 at fp-4 */
#define KEY0 "stw [r10-4], 0\nmov r2, r10\nadd r2, -4\n"
#define OUT "out:\nmov r0, 0\nexit\n"

static const struct vt_kcase cases[] = {
    /* references */
    { "lookup, null check, release", GKT_SCHED_CLS, "tc", 1, NULL,
      LOOKUP "jeq r0, 0, out\nmov r1, r0\ncall 86\n" OUT },
    { "lookup never released", GKT_SCHED_CLS, "tc", 1, "Unreleased reference",
      LOOKUP "jeq r0, 0, out\n" OUT },
    { "released on one path only", GKT_SCHED_CLS, "tc", 1, "Unreleased reference",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nldxw r1, [r6+0]\njeq r1, 0, out\nmov r1, r7\ncall 86\n" OUT },
    { "released before its null check", GKT_SCHED_CLS, "tc", 1, "sock_or_null",
      LOOKUP "mov r1, r0\ncall 86\n" OUT },
    { "released twice", GKT_SCHED_CLS, "tc", 1, "R1",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nmov r1, r0\ncall 86\nmov r1, r7\ncall 86\n" OUT },
    { "read after release (root: a number)", GKT_SCHED_CLS, "tc", 1, "invalid mem access 'scalar'",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nmov r1, r0\ncall 86\nldxw r0, [r7+4]\n" OUT },
    { "read after release (unprivileged: dead)", GKT_SCHED_CLS, "tc", 0, "R7 !read_ok",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nmov r1, r0\ncall 86\nldxw r0, [r7+4]\n" OUT },
    { "the null side holds nothing", GKT_SCHED_CLS, "tc", 1, NULL,
      LOOKUP "jne r0, 0, rel\nja out\nrel:\nmov r1, r0\ncall 86\n" OUT },
    { "spilled, refilled, released", GKT_SCHED_CLS, "tc", 1, NULL,
      LOOKUP "jeq r0, 0, out\nstxdw [r10-24], r0\nldxdw r1, [r10-24]\ncall 86\n" OUT },
    { "released in a subprogram", GKT_SCHED_CLS, "tc", 1, NULL,
      LOOKUP "jeq r0, 0, out\nmov r1, r0\ncall rel\n" OUT "rel:\ncall 86\nmov r0, 0\nexit\n" },
    { "releasing skb->sk, which is not acquired", GKT_SCHED_CLS, "tc", 1, "must be referenced",
      SKB_SK "mov r1, r7\ncall 86\n" OUT },
    { "releasing the listener (not reference-counted)", GKT_SCHED_CLS, "tc", 1, "must be referenced",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nmov r1, r0\ncall 98\njeq r0, 0, rel\nmov r1, r0\ncall 86\n"
      "rel:\nmov r1, r7\ncall 86\n" OUT },
    { "a cast carries the reference: releasing it releases the socket", GKT_SCHED_CLS, "tc", 1, NULL,
      LOOKUP_ID(99) "jeq r0, 0, out\nmov r7, r0\nmov r1, r0\ncall 95\njeq r0, 0, rel\nmov r1, r0\ncall 86\n"
      "ja out\nrel:\nmov r1, r7\ncall 86\n" OUT },
    { "a cast dies with its socket", GKT_SCHED_CLS, "tc", 1, "invalid mem access 'scalar'",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nmov r1, r0\ncall 96\nmov r8, r0\nmov r1, r7\ncall 86\n"
      "jeq r8, 0, out\nldxw r0, [r8+0]\n" OUT },
    { "tail call while holding a reference", GKT_SCHED_CLS, "tc", 1, "leak reference",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nmov r1, r6\nlddw r2, map:5\nmov r3, 0\ncall 12\nmov r1, r7\n"
      "call 86\n" OUT },
    { "LD_ABS while holding a reference", GKT_SCHED_CLS, "tc", 1, "socket references",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\n.raw 0x30, 0, 0, 0, 0\nmov r1, r7\ncall 86\n" OUT },
    /* field views */
    { "bpf_sock: family, narrow type, dst_port half and byte, an address byte", GKT_SCHED_CLS, "tc", 1, NULL,
      LOOKUP "jeq r0, 0, out\nldxw r1, [r0+4]\nldxb r1, [r0+8]\nldxh r1, [r0+48]\nldxb r1, [r0+49]\n"
      "ldxb r1, [r0+29]\nldxw r1, [r0+76]\nmov r1, r0\ncall 86\n" OUT },
    { "bpf_sock: dst_port's padding", GKT_SCHED_CLS, "tc", 1, "invalid sock access off=50",
      LOOKUP "jeq r0, 0, out\nldxh r1, [r0+50]\nmov r1, r0\ncall 86\n" OUT },
    { "bpf_sock: mark only whole", GKT_SCHED_CLS, "tc", 1, "invalid sock access off=16 size=2",
      LOOKUP "jeq r0, 0, out\nldxh r1, [r0+16]\nmov r1, r0\ncall 86\n" OUT },
    { "bpf_sock: past its last field", GKT_SCHED_CLS, "tc", 1, "invalid sock access off=80",
      LOOKUP "jeq r0, 0, out\nldxw r1, [r0+80]\nmov r1, r0\ncall 86\n" OUT },
    { "bpf_sock: no writes", GKT_SCHED_CLS, "tc", 1, "cannot write into sock",
      LOOKUP "jeq r0, 0, out\nstw [r0+16], 1\nmov r1, r0\ncall 86\n" OUT },
    { "bpf_sock: no pointer arithmetic", GKT_SCHED_CLS, "tc", 1, "pointer arithmetic on sock",
      LOOKUP "jeq r0, 0, out\nadd r0, 4\n" OUT },
    { "bpf_sock: a socket is not memory for a helper", GKT_SCHED_CLS, "tc", 1, "expected=fp, map_value, mem",
      LOOKUP "jeq r0, 0, out\nmov r7, r0\nlddw r1, map:4\nmov r2, r7\ncall 1\nmov r1, r7\ncall 86\n" OUT },
    { "bpf_sock: no arithmetic with the socket as the added operand", GKT_SCHED_CLS, "tc", 1,
      "pointer arithmetic on sock",
      LOOKUP "jeq r0, 0, out\nmov r1, 4\nadd r1, r0\n" OUT },
    { "bpf_sock: a released socket spilled to the stack is a number (root)", GKT_SCHED_CLS, "tc", 1,
      "invalid mem access 'scalar'",
      LOOKUP "jeq r0, 0, out\nstxdw [r10-24], r0\nmov r1, r0\ncall 86\nldxdw r1, [r10-24]\nldxw r0, [r1+4]\n" OUT },
    { "xdp_sock: not referenced, not released", GKT_XDP, "xdp", 1, "must be referenced",
      "lddw r1, map:2\n" KEY0 "call 1\njeq r0, 0, out\nmov r1, r0\ncall 86\n" OUT },
    { "bpf_sock: no read before the null check", GKT_SCHED_CLS, "tc", 1, "sock_or_null",
      LOOKUP "ldxw r1, [r0+4]\njeq r0, 0, out\nmov r1, r0\ncall 86\n" OUT },
    { "skb->sk: family and ports of any socket", GKT_SCHED_CLS, "tc", 1, NULL,
      SKB_SK "ldxw r0, [r7+4]\nldxw r0, [r7+44]\nldxw r0, [r7+72]\n" OUT },
    { "skb->sk: type only on a full socket", GKT_SCHED_CLS, "tc", 1, "invalid sock_common access off=8",
      SKB_SK "ldxw r0, [r7+8]\n" OUT },
    { "skb->sk: needs its null check", GKT_SCHED_CLS, "tc", 1, "sock_common_or_null",
      "ldxdw r7, [r1+168]\nldxw r0, [r7+4]\n" OUT },
    { "sk_fullsock(skb->sk): type readable", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, NULL,
      SKB_SK "mov r1, r7\ncall 95\njeq r0, 0, out\nldxw r0, [r0+8]\n" OUT },
    { "tcp_sock: bytes_acked is a u64", GKT_SCHED_CLS, "tc", 1, NULL,
      SKB_SK "mov r1, r7\ncall 96\njeq r0, 0, out\nldxdw r1, [r0+88]\nldxw r1, [r0+108]\n" OUT },
    { "tcp_sock: bytes_acked not as a u32", GKT_SCHED_CLS, "tc", 1, "invalid tcp_sock access off=88 size=4",
      SKB_SK "mov r1, r7\ncall 96\njeq r0, 0, out\nldxw r1, [r0+88]\n" OUT },
    { "tcp_sock: past icsk_retransmits", GKT_SCHED_CLS, "tc", 1, "invalid tcp_sock access off=112",
      SKB_SK "mov r1, r7\ncall 96\njeq r0, 0, out\nldxw r1, [r0+112]\n" OUT },
    { "skc_to_tcp_sock: a BTF socket graft cannot read", GKT_SCHED_CLS, "tc", 1, "BTF",
      SKB_SK "mov r1, r7\ncall 137\njeq r0, 0, out\nldxw r1, [r0+0]\n" OUT },
    { "skc_to_tcp_sock: root only (CAP_PERFMON)", GKT_CGROUP_SKB, "cgroup_skb/ingress", 0, "unknown func",
      SKB_SK "mov r1, r7\ncall 137\n" OUT },
    { "sk_lookup_tcp is not a socket filter's", GKT_SOCKET_FILTER, "socket", 1, "unknown func",
      LOOKUP "jeq r0, 0, out\nmov r1, r0\ncall 86\n" OUT },
    { "xdp: lookup and release", GKT_XDP, "xdp", 1, NULL,
      LOOKUP "jeq r0, 0, out\nmov r1, r0\ncall 86\n" OUT },
    /* pointer comparisons */
    { "equal to a non-null socket: not null (root)", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, NULL,
      SKB_SK "mov r1, r7\ncall 95\nmov r8, r0\nmov r1, r7\ncall 95\njeq r0, 0, out\njne r0, r8, out\n"
      "ldxw r0, [r8+8]\n" OUT },
    { "... not on the unequal side", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, "sock_or_null",
      SKB_SK "mov r1, r7\ncall 95\nmov r8, r0\nmov r1, r7\ncall 95\njeq r0, 0, out\njeq r0, r8, out\n"
      "ldxw r0, [r8+8]\n" OUT },
    { "... and no pointer comparison unprivileged", GKT_CGROUP_SKB, "cgroup_skb/ingress", 0,
      "pointer comparison",
      SKB_SK "mov r1, r7\ncall 95\nmov r8, r0\nmov r1, r7\ncall 95\njeq r0, 0, out\njne r0, r8, out\n"
      "ldxw r0, [r8+8]\n" OUT },
    { "a register holding 0 is no null check (kernel rule)", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1,
      "sock_or_null",
      SKB_SK "mov r1, r7\ncall 95\nmov r2, 0\njeq r0, r2, out\nldxw r0, [r0+8]\n" OUT },
    { "storing a socket into a map value (unprivileged)", GKT_SCHED_CLS, "tc", 0, "leaks pointer",
      SKB_SK "lddw r1, map:4\n" KEY0 "call 1\njeq r0, 0, out\nstxdw [r0+0], r7\n" OUT },
    /* socket maps */
    { "tc: sockmap update with skb->sk, delete", GKT_SCHED_CLS, "tc", 1, NULL,
      SKB_SK "lddw r1, map:0\n" KEY0 "mov r3, r7\nmov r4, 0\ncall 2\nlddw r1, map:1\n" KEY0 "call 3\n" OUT },
    { "tc: a sockmap value must be a socket", GKT_SCHED_CLS, "tc", 1, "expected=sock_common",
      "stw [r10-8], 0\nlddw r1, map:0\n" KEY0 "mov r3, r10\nadd r3, -8\nmov r4, 0\ncall 2\n" OUT },
    { "sock_ops: delete from a sockmap", GKT_SOCK_OPS, "sockops", 1, NULL,
      "lddw r1, map:0\n" KEY0 "call 3\n" OUT },
    { "sock_ops: no generic update", GKT_SOCK_OPS, "sockops", 1, "cannot update sockmap",
      "ldxdw r7, [r1+184]\njeq r7, 0, out\nlddw r1, map:0\n" KEY0 "mov r3, r7\nmov r4, 0\ncall 2\n" OUT },
    { "sock_ops: the dedicated update", GKT_SOCK_OPS, "sockops", 1, NULL,
      "mov r6, r1\nlddw r2, map:0\nstw [r10-4], 0\nmov r3, r10\nadd r3, -4\nmov r4, 0\ncall 53\n" OUT },
    { "sock_ops: the dedicated update takes a sockmap only", GKT_SOCK_OPS, "sockops", 1, "cannot pass map_type 18",
      "mov r6, r1\nlddw r2, map:1\nstw [r10-4], 0\nmov r3, r10\nadd r3, -4\nmov r4, 0\ncall 53\n" OUT },
    { "sockmap lookup holds a reference", GKT_SCHED_CLS, "tc", 1, "Unreleased reference",
      "lddw r1, map:0\n" KEY0 "call 1\njeq r0, 0, out\nldxw r1, [r0+4]\n" OUT },
    { "sockmap lookup, read, release", GKT_SCHED_CLS, "tc", 1, NULL,
      "lddw r1, map:1\n" KEY0 "call 1\njeq r0, 0, out\nldxw r1, [r0+4]\nmov r1, r0\ncall 86\n" OUT },
    { "xskmap lookup: queue_id", GKT_XDP, "xdp", 1, NULL,
      "lddw r1, map:2\n" KEY0 "call 1\njeq r0, 0, out\nldxw r0, [r0+0]\n" OUT },
    { "xskmap lookup: nothing past queue_id", GKT_XDP, "xdp", 1, "invalid xdp_sock access off=4",
      "lddw r1, map:2\n" KEY0 "call 1\njeq r0, 0, out\nldxw r0, [r0+4]\n" OUT },
    { "xskmap: no update", GKT_XDP, "xdp", 1, "cannot pass map_type 17",
      "lddw r1, map:2\n" KEY0 "mov r3, r2\nmov r4, 0\ncall 2\n" OUT },
    { "sk_storage_get on a full socket", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, NULL,
      SKB_SK "mov r1, r7\ncall 95\njeq r0, 0, out\nmov r2, r0\nlddw r1, map:3\nmov r3, 0\nmov r4, 1\n"
      "call 107\njeq r0, 0, out\nldxdw r1, [r0+0]\nstdw [r0+0], 1\n" OUT },
    { "sk_storage_get takes a socket storage map only", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1,
      "cannot pass map_type 1",
      SKB_SK "mov r2, r7\nlddw r1, map:4\nmov r3, 0\nmov r4, 0\ncall 107\n" OUT },
    { "a socket storage map only with its helpers", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1,
      "cannot pass map_type 24",
      "lddw r1, map:3\n" KEY0 "call 1\n" OUT },
    { "get_netns_cookie: the context or NULL", GKT_CGROUP_SOCK_ADDR, "cgroup/sendmsg6", 1, NULL,
      "mov r6, r1\ncall 122\nmov r1, 0\ncall 122\n" OUT },
    { "get_netns_cookie: not a number", GKT_CGROUP_SOCK_ADDR, "cgroup/sendmsg6", 1, "R1 type=scalar expected=ctx",
      "mov r1, 1\ncall 122\n" OUT },
    { "get_netns_cookie: not a moved context", GKT_CGROUP_SOCK, "cgroup/post_bind4", 1, "unmodified ctx",
      "add r1, 8\ncall 122\n" OUT },
    { "sockopt: ctx->sk is a full socket: tcp_sock of it", GKT_CGROUP_SOCKOPT, "cgroup/getsockopt", 1, NULL,
      "ldxdw r1, [r1+0]\ncall 96\njeq r0, 0, out\nldxw r0, [r0+0]\n" OUT },
    /* spin locks across bpf-to-bpf calls (map 4's value: the lock at 4) */
    { "lock taken in a subprogram, released by its caller", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, NULL,
      "lddw r1, map:4\n" KEY0 "call 1\njeq r0, 0, out\nmov r6, r0\nmov r1, r0\nadd r1, 4\ncall lock\n"
      "mov r1, r6\nadd r1, 4\ncall 94\n" OUT "lock:\ncall 93\nmov r0, 0\nexit\n" },
    { "... but the program may not end with it held", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, "spin_unlock is missing",
      "lddw r1, map:4\n" KEY0 "call 1\njeq r0, 0, out\nmov r1, r0\nadd r1, 4\ncall lock\n" OUT
      "lock:\ncall 93\nmov r0, 0\nexit\n" },
    { "... nor call a helper in the subprogram under it", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1,
      "while holding a spin lock",
      "lddw r1, map:4\n" KEY0 "call 1\njeq r0, 0, out\nmov r6, r0\nmov r1, r0\nadd r1, 4\ncall 93\ncall sub\n"
      "mov r1, r6\nadd r1, 4\ncall 94\n" OUT "sub:\ncall 5\nmov r0, 0\nexit\n" },
    /* cgroup storage (map 6: cgroup_storage, 64-byte values) */
    { "get_local_storage: a value, never NULL", GKT_CGROUP_SKB, "cgroup_skb/ingress", 0, NULL,
      "lddw r1, map:6\nmov r2, 0\ncall 81\nldxw r1, [r0+60]\nstw [r0+0], 1\n" OUT },
    { "get_local_storage: within the value", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, "map value",
      "lddw r1, map:6\nmov r2, 0\ncall 81\nldxw r1, [r0+64]\n" OUT },
    { "get_local_storage: flags must be 0", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, "non-zero flags",
      "lddw r1, map:6\nmov r2, 7\ncall 81\n" OUT },
    { "get_local_storage: a cgroup storage map only", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1,
      "cannot pass map_type 1",
      "lddw r1, map:4\nmov r2, 0\ncall 81\n" OUT },
    { "a cgroup storage map: not for lookups", GKT_CGROUP_SKB, "cgroup_skb/ingress", 1, "cannot pass map_type 19",
      "lddw r1, map:6\n" KEY0 "call 1\n" OUT },
    { "sk_lookup: ctx->sk needs a null check", GKT_SK_LOOKUP, "sk_lookup", 1, "sock_or_null",
      "ldxdw r7, [r1+0]\nldxw r0, [r7+4]\n" OUT },
    { "sk_lookup: assign NULL or ctx->sk", GKT_SK_LOOKUP, "sk_lookup", 1, NULL,
      "mov r6, r1\nmov r2, 0\nmov r3, 0\ncall 124\nldxdw r2, [r6+0]\nmov r1, r6\nmov r3, 0\ncall 124\n" OUT },
};

int main(void)
{
    int failures = 0;
    static const struct gmap_def maps[7] = {
        { .type = 15, .key_size = 4, .value_size = 4, .max_entries = 1, .name = "sockmap" },
        { .type = 18, .key_size = 4, .value_size = 4, .max_entries = 1, .name = "sockhash" },
        { .type = 17, .key_size = 4, .value_size = 4, .max_entries = 1, .name = "xskmap" },
        { .type = 24, .key_size = 4, .value_size = 8, .max_entries = 0, .map_flags = 1, .name = "sk_storage" },
        { .type = GMAP_HASH, .key_size = 4, .value_size = 8, .max_entries = 4, .name = "hash" },
        { .type = GMAP_PROG_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 2, .name = "progs" },
        { .type = 19, .key_size = 12, .value_size = 64, .max_entries = 0, .name = "cgroup_storage" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failures += vt_kernel_case(&cases[i], maps, 7);
    printf("%zu socket and reference cases, %d failures\n", sizeof(cases) / sizeof(cases[0]), failures);
    return failures ? 1 : 0;
}
