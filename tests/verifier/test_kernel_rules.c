/*
 * test_kernel_rules.c - kernel rules of `graft verify --privileged` beyond
 * contexts and packets (those are test_packet.c's): LSM hooks' return
 * ranges and disabled hooks (kernel_lsm.c), and kernel kfuncs
 * (kernel_kfuncs.c): prototypes by name, KF_ACQUIRE / KF_RELEASE /
 * KF_RET_NULL references, per-type availability, and the open-coded
 * iterators' state machine. Each case is a program, a kernel type and
 * section, the kfuncs its object declares (by name: the loader's extern
 * index is the call's imm), and the verdict the kernel gives (with a
 * substring of graft's reason for rejections).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "verifier/verifier.h"
#include "vm/vm.h"

struct kcase {
    const char *name;
    int ktype;
    const char *section;
    const char *expect;        /* NULL: accept; else a substring of the rejection */
    const char *text;
    const char *kfuncs;        /* the object's kfunc externs, "a,b,c": call kfunc N is the N-th */
};

/* the kfuncs the cases declare, in extern order */
#define NUM "bpf_iter_num_new,bpf_iter_num_next,bpf_iter_num_destroy"
#define TASK "bpf_task_from_pid,bpf_task_acquire,bpf_task_release"
/* r6 = fp-8: a bpf_iter_num over [0, 1000) */
#define NUM_NEW "mov r6, r10\nadd r6, -8\nmov r1, r6\nmov r2, 0\nmov r3, 1000\ncall kfunc 0\n"
#define NUM_NEXT "mov r1, r6\ncall kfunc 1\n"
#define NUM_DESTROY "mov r1, r6\ncall kfunc 2\n"
#define RET0 "mov r0, 0\nexit\n"
#define ARENA "bpf_arena_alloc_pages,bpf_arena_free_pages"
/* r6 = a hash map value; the subprogram lk locks its word r1 */
#define LOCK_PRE "stdw [r10-8], 0\nmov r2, r10\nadd r2, -8\nlddw r1, map:0\ncall 1\njne r0, 0, go\n" RET0 \
                 "go:\nmov r6, r0\nmov r1, r0\ncall lk\n"
#define COPY_TASK "call 158\nmov r4, r0\nmov r1, r10\nadd r1, -16\nmov r2, 16\nmov r3, 0\nmov r5, 0\ncall 191\n"
#define ARENA_ALLOC "lddw r1, map:2\nmov r2, 0\nmov r3, 1\nmov r4, -1\nmov r5, 0\ncall kfunc 0\n"
/* the task size the object's BTF would give */
#define TASK_SIZE 4096

static const struct kcase cases[] = {
    /* LSM hooks (kernel/bpf/bpf_lsm.c) */
    { "lsm: errno hook returns 0", GKT_LSM, "lsm/file_mprotect", NULL, "mov r0, 0\nexit\n", NULL },
    { "lsm: errno hook returns -4095", GKT_LSM, "lsm/file_mprotect", NULL, "mov r0, -4095\nexit\n", NULL },
    { "lsm: errno hook returns -4096", GKT_LSM, "lsm/file_mprotect", "[-4095, 0]", "mov r0, -4096\nexit\n", NULL },
    { "lsm: errno hook returns 1", GKT_LSM, "lsm/file_mprotect", "[-4095, 0]", "mov r0, 1\nexit\n", NULL },
    { "lsm: sleepable errno hook returns 1", GKT_LSM, "lsm.s/bprm_check_security", "[-4095, 0]",
      "mov r0, 1\nexit\n", NULL },
    { "lsm: bool hook returns 1", GKT_LSM, "lsm/audit_rule_known", NULL, "mov r0, 1\nexit\n", NULL },
    { "lsm: bool hook returns 2", GKT_LSM, "lsm/audit_rule_known", "[0, 1]", "mov r0, 2\nexit\n", NULL },
    { "lsm: void hook returns anything", GKT_LSM, "lsm/file_free_security", NULL, "mov r0, 4096\nexit\n", NULL },
    { "lsm: disabled hook", GKT_LSM, "lsm/getprocattr", "disabled LSM hook", "mov r0, 0\nexit\n", NULL },
    /* open-coded iterators */
    { "iter: new, a loop of next, destroy", GKT_SOCKET_FILTER, "socket", NULL,
      NUM_NEW "mov r7, 0\nloop:\n" NUM_NEXT "jeq r0, 0, done\nldxw r1, [r0+0]\nadd r7, r1\nja loop\ndone:\n"
      NUM_DESTROY "mov r0, r7\nexit\n", NUM },
    { "iter: a counter the loop bounds by its own check converges", GKT_SOCKET_FILTER, "socket", NULL,
      NUM_NEW "mov r7, 0\nloop:\n" NUM_NEXT "jeq r0, 0, done\njge r7, 1000, loop\nmov r1, r10\nadd r1, -16\n"
      "mov r2, r7\nand r2, 7\nadd r1, r2\nstb [r1+0], 1\nadd r7, 1\nja loop\ndone:\n" NUM_DESTROY RET0, NUM },
    { "iter: the counter is not bounded by the iterations", GKT_SOCKET_FILTER, "socket", "unbounded min value",
      NUM_NEW "mov r7, 0\nloop:\n" NUM_NEXT "jeq r0, 0, done\nmov r1, r10\nadd r1, -64\n"
      "add r1, r7\nstb [r1+0], 1\nadd r7, 1\nja loop\ndone:\n" NUM_DESTROY RET0, NUM },
    { "iter: not destroyed", GKT_SOCKET_FILTER, "socket", "Unreleased reference", NUM_NEW NUM_NEXT RET0, NUM },
    { "iter: next of an uninitialised iterator", GKT_SOCKET_FILTER, "socket", "expected an initialized iter_num",
      "mov r6, r10\nadd r6, -8\nstdw [r6+0], 0\n" NUM_NEXT RET0, NUM },
    { "iter: destroyed twice", GKT_SOCKET_FILTER, "socket", "expected an initialized iter_num",
      NUM_NEW NUM_DESTROY NUM_DESTROY RET0, NUM },
    { "iter: new over a live iterator", GKT_SOCKET_FILTER, "socket", "expected uninitialized iter_num",
      NUM_NEW NUM_NEW NUM_DESTROY RET0, NUM },
    { "iter: its state cannot be read", GKT_SOCKET_FILTER, "socket", "iterator's state cannot be read",
      NUM_NEW "ldxdw r7, [r10-8]\n" NUM_DESTROY RET0, NUM },
    { "iter: nor overwritten", GKT_SOCKET_FILTER, "socket", "cannot overwrite the iterator",
      NUM_NEW "stw [r10-4], 0\n" NUM_DESTROY RET0, NUM },
    { "iter: next's NULL is not dereferenced", GKT_SOCKET_FILTER, "socket", "scalar",
      NUM_NEW NUM_NEXT "ldxw r7, [r0+0]\n" NUM_DESTROY RET0, NUM },
    { "iter: next's int is read-only", GKT_SOCKET_FILTER, "socket", "read-only",
      NUM_NEW NUM_NEXT "jeq r0, 0, done\nstw [r0+0], 1\ndone:\n" NUM_DESTROY RET0, NUM },
    { "iter: misaligned", GKT_SOCKET_FILTER, "socket", "misaligned",
      "mov r1, r10\nadd r1, -12\nmov r2, 0\nmov r3, 1\ncall kfunc 0\n" RET0, NUM },
    /* acquired kernel objects */
    { "task: from_pid, null check, acquire, release both", GKT_SYSCALL, "syscall", NULL,
      "mov r1, 1\ncall kfunc 0\njeq r0, 0, out\nmov r6, r0\nmov r1, r0\ncall kfunc 1\njeq r0, 0, rel\n"
      "mov r1, r0\ncall kfunc 2\nrel:\nmov r1, r6\ncall kfunc 2\nout:\n" RET0, TASK },
    { "task: not released", GKT_SYSCALL, "syscall", "Unreleased reference",
      "mov r1, 1\ncall kfunc 0\n" RET0, TASK },
    { "task: maybe NULL passed to acquire", GKT_SYSCALL, "syscall", "Possibly NULL",
      "mov r1, 1\ncall kfunc 0\nmov r6, r0\nmov r1, r0\ncall kfunc 1\n" RET0, TASK },
    { "task: used after its release", GKT_SYSCALL, "syscall", "R6",
      "mov r1, 1\ncall kfunc 0\njeq r0, 0, out\nmov r6, r0\nmov r1, r0\ncall kfunc 2\nldxw r0, [r6+0]\nout:\n" RET0,
      TASK },
    /* under the root rules the copies of a released pointer become numbers
     * (the kernel's mark_reg_invalid with allow_ptr_leaks) */
    { "task: released twice (every copy died with the first)", GKT_SYSCALL, "syscall",
      "bpf_task_release: arg#0 expected pointer to struct task_struct, not scalar",
      "mov r1, 1\ncall kfunc 0\njeq r0, 0, out\nmov r6, r0\nmov r1, r0\ncall kfunc 2\nmov r1, r6\ncall kfunc 2\nout:\n"
      RET0, TASK },
    { "task: the current task is not a reference to release", GKT_SYSCALL, "syscall", "expects refcounted",
      "call 158\nmov r1, r0\ncall kfunc 2\n" RET0, TASK },
    { "task: a moved pointer is not the object", GKT_SYSCALL, "syscall", "offset 0",
      "call 158\nadd r0, 8\nmov r1, r0\ncall kfunc 1\n" RET0, TASK },
    { "task: the task kfuncs are not for raw_tp", GKT_RAW_TRACEPOINT, "raw_tp", "is not allowed",
      "mov r1, 1\ncall kfunc 0\njeq r0, 0, out\nmov r1, r0\ncall kfunc 2\nout:\n" RET0, TASK },
    { "task: a trusted object is never NULL (no NULL side to explore)", GKT_TRACEPOINT, "tracepoint", NULL,
      "call 158\njne r0, 0, ok\nldxw r0, [r9+0]\nok:\n" RET0, TASK },
    { "task: an acquired one may be", GKT_SYSCALL, "syscall", "R9",
      "mov r1, 1\ncall kfunc 0\njne r0, 0, ok\nldxw r0, [r9+0]\nok:\nmov r1, r0\ncall kfunc 2\n" RET0, TASK },
    { "task: a field of the current task", GKT_TRACEPOINT, "tracepoint", NULL,
      "call 158\nldxw r0, [r0+2000]\n" RET0, TASK },
    { "task: past the end of task_struct", GKT_TRACEPOINT, "tracepoint", "task_struct",
      "call 158\nldxw r0, [r0+4094]\n" RET0, TASK },
    { "task: its fields are not written", GKT_TRACEPOINT, "tracepoint", "only read",
      "call 158\nstw [r0+8], 1\n" RET0, TASK },
    /* the kernel's other rules for root that graft's own policy does not need */
    { "fp moves by adding, not subtracting", GKT_SOCKET_FILTER, "socket", "subtraction from stack pointer",
      "mov r1, r10\nsub r1, 8\nstdw [r1+0], 0\n" RET0, NULL },
    { "fp moves by adding", GKT_SOCKET_FILTER, "socket", NULL, "mov r1, r10\nadd r1, -8\nstdw [r1+0], 0\n" RET0, NULL },
    { "bpf_strtoul's result pointer must be aligned", GKT_SOCKET_FILTER, "socket", "misaligned stack access",
      "stdw [r10-8], 0x30\nstdw [r10-24], 0\nstdw [r10-16], 0\nmov r1, r10\nadd r1, -8\nmov r2, 1\nmov r3, 0\n"
      "mov r4, r10\nadd r4, -20\ncall 106\n" RET0, NULL },
    { "bpf_strtoul's result pointer aligned", GKT_SOCKET_FILTER, "socket", NULL,
      "stdw [r10-8], 0x30\nmov r1, r10\nadd r1, -8\nmov r2, 1\nmov r3, 0\n"
      "mov r4, r10\nadd r4, -24\ncall 106\n" RET0, NULL },
    /* kernel-only helper prototypes */
    { "get_netns_cookie of the context", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", NULL, "call 122\nmov r0, 1\nexit\n", NULL },
    { "get_netns_cookie of NULL", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", NULL,
      "mov r1, 0\ncall 122\nmov r0, 1\nexit\n", NULL },
    { "get_netns_cookie of a number", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", "expected=ctx",
      "mov r1, 1\ncall 122\nmov r0, 1\nexit\n", NULL },
    { "get_netns_cookie of a moved context", GKT_CGROUP_SOCK_ADDR, "cgroup/connect4", "unmodified ctx",
      "add r1, 8\ncall 122\nmov r0, 1\nexit\n", NULL },
    { "check_mtu: mtu_len initialised", GKT_SCHED_CLS, "tc", NULL,
      "stw [r10-4], 0\nmov r2, 0\nmov r3, r10\nadd r3, -4\nmov r4, 0\nmov r5, 0\ncall 163\nldxw r0, [r10-4]\nexit\n", NULL },
    { "check_mtu: mtu_len uninitialised (even for root)", GKT_SCHED_CLS, "tc", "invalid indirect read from stack",
      "mov r2, 0\nmov r3, r10\nadd r3, -4\nmov r4, 0\nmov r5, 0\ncall 163\n" RET0, NULL },
    { "check_mtu: the written mtu is not the constant stored", GKT_SCHED_CLS, "tc", "R0",
      "stw [r10-4], 0\nmov r2, 0\nmov r3, r10\nadd r3, -4\nmov r4, 0\nmov r5, 0\ncall 163\nldxw r0, [r10-4]\n"
      "jeq r0, 0, out\nldxw r0, [r0+0]\nout:\nexit\n", NULL },
    /* map pointers: root may add a known 0 (map 0 is a hash map) */
    { "map pointer plus a known 0", GKT_SOCKET_FILTER, "socket", NULL,
      "stdw [r10-8], 0\nmov r2, r10\nadd r2, -8\nmov r0, 0\nlddw r1, map:0\nadd r1, r0\ncall 1\n" RET0, NULL },
    { "map pointer plus 1", GKT_SOCKET_FILTER, "socket", "pointer arithmetic on map_ptr",
      "stdw [r10-8], 0\nmov r2, r10\nadd r2, -8\nmov r0, 1\nlddw r1, map:0\nadd r1, r0\ncall 1\n" RET0, NULL },
    /* root's helpers may overwrite spilled pointers (the bytes become data), not iterators */
    { "skb_load_bytes over a spilled pointer", GKT_SCHED_CLS, "tc", NULL,
      "stxdw [r10-8], r1\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 8\ncall 26\nldxdw r0, [r10-8]\nexit\n", NULL },
    { "skb_load_bytes over a spilled pointer: data, not the pointer", GKT_SCHED_CLS, "tc", "scalar",
      "stxdw [r10-8], r1\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 8\ncall 26\nldxdw r1, [r10-8]\n"
      "ldxw r0, [r1+0]\nexit\n", NULL },
    { "skb_load_bytes over an iterator", GKT_SCHED_CLS, "tc", "overwrite the iterator",
      "mov r7, r1\n" NUM_NEW "mov r1, r7\nmov r2, 0\nmov r3, r10\nadd r3, -8\nmov r4, 8\ncall 26\n" NUM_DESTROY RET0, NUM },
    /* get_local_storage: the cgroup storage map's value, never NULL, flags 0 */
    { "get_local_storage", GKT_CGROUP_SKB, "cgroup_skb/ingress", NULL,
      "mov r2, 0\nlddw r1, map:1\ncall 81\nldxw r0, [r0+60]\nand r0, 1\nexit\n", NULL },
    { "get_local_storage past the value", GKT_CGROUP_SKB, "cgroup_skb/ingress", "exceeds its 64 bytes",
      "mov r2, 0\nlddw r1, map:1\ncall 81\nldxw r0, [r0+64]\nand r0, 1\nexit\n", NULL },
    { "get_local_storage with flags", GKT_CGROUP_SKB, "cgroup_skb/ingress", "non-zero flags",
      "mov r2, 1\nlddw r1, map:1\ncall 81\nmov r0, 1\nexit\n", NULL },
    { "get_local_storage of a hash map", GKT_CGROUP_SKB, "cgroup_skb/ingress", "cannot pass map",
      "mov r2, 0\nlddw r1, map:0\ncall 81\nmov r0, 1\nexit\n", NULL },
    /* bpf_cast_to_kern_ctx: the context's kernel structure, whose layout graft does not know */
    { "cast_to_kern_ctx of the context", GKT_SCHED_CLS, "tc", NULL, "call kfunc 0\n" RET0, "bpf_cast_to_kern_ctx" },
    { "cast_to_kern_ctx of a moved context", GKT_SCHED_CLS, "tc", "unmodified context",
      "add r1, 4\ncall kfunc 0\n" RET0, "bpf_cast_to_kern_ctx" },
    { "cast_to_kern_ctx: its fields are not known", GKT_SCHED_CLS, "tc", "layout is unknown",
      "call kfunc 0\nldxw r0, [r0+0]\n" RET0, "bpf_cast_to_kern_ctx" },
    /* arenas: pages are numbers until addr_space_cast makes them pointers */
    { "arena: alloc, cast, store, load", GKT_SYSCALL, "syscall", NULL,
      ARENA_ALLOC "jeq r0, 0, out\n.raw 0xbf, 0, 0, 1, 1\nstw [r0+4092], 7\nldxw r0, [r0+0]\nout:\n" RET0, ARENA },
    { "arena: not dereferenced before the cast", GKT_SYSCALL, "syscall", "invalid mem access 'scalar'",
      ARENA_ALLOC "jeq r0, 0, out\nstw [r0+0], 7\nout:\n" RET0, ARENA },
    { "arena: cast back to address space 1 is a number", GKT_SYSCALL, "syscall", "invalid mem access 'scalar'",
      ARENA_ALLOC "jeq r0, 0, out\n.raw 0xbf, 0, 0, 1, 1\n.raw 0xbf, 0, 0, 1, 0x10000\nstw [r0+0], 7\nout:\n" RET0,
      ARENA },
    { "arena: the cast converts only between spaces 0 and 1", GKT_SYSCALL, "syscall", "between address space",
      ARENA_ALLOC ".raw 0xbf, 0, 0, 1, 2\n" RET0, ARENA },
    { "arena: its kfuncs are sleepable", GKT_SCHED_CLS, "tc", "must be sleepable", ARENA_ALLOC RET0, ARENA },
    { "arena: a hash map is not an arena", GKT_SYSCALL, "syscall", "expected an arena map",
      "lddw r1, map:0\nmov r2, 0\nmov r3, 1\nmov r4, -1\nmov r5, 0\ncall kfunc 0\n" RET0, ARENA },
    /* bpf_copy_from_user_task: sleepable programs, a trusted task */
    { "copy_from_user_task in a sleepable program", GKT_LSM, "lsm.s/file_open", NULL, COPY_TASK RET0, NULL },
    { "copy_from_user_task in a sleepable uprobe (as kprobe)", GKT_KPROBE, "uprobe.s", NULL, COPY_TASK RET0, NULL },
    { "copy_from_user_task in a non-sleepable program", GKT_LSM, "lsm/file_open", "only sleepable", COPY_TASK RET0, NULL },
    { "copy_from_user_task of a number", GKT_LSM, "lsm.s/file_open", "expected=ptr_to_btf_id",
      "mov r4, 1\nmov r1, r10\nadd r1, -16\nmov r2, 16\nmov r3, 0\nmov r5, 0\ncall 191\n" RET0, NULL },
    /* lwt_xmit's own helpers */
    { "lwt_xmit: skb_change_head", GKT_LWT, "lwt_xmit", NULL, "mov r2, 1\nmov r3, 0\ncall 43\n" RET0, NULL },
    { "lwt_in: no skb_change_head", GKT_LWT, "lwt_in", "may not call it", "mov r2, 1\nmov r3, 0\ncall 43\n" RET0, NULL },
    /* a subprogram may return with the spin lock held; the program may not */
    { "spin lock taken in a subprogram, released by its caller", GKT_SCHED_CLS, "tc", NULL,
      LOCK_PRE "mov r1, r6\ncall 94\n" RET0 "lk:\ncall 93\n" RET0, NULL },
    { "spin lock taken in a subprogram, never released", GKT_SCHED_CLS, "tc", "bpf_spin_unlock is missing",
      LOCK_PRE RET0 "lk:\ncall 93\n" RET0, NULL },
    /* root may hand a helper a spilled pointer's bytes (as a map key) */
    { "a spilled pointer as a map key", GKT_SCHED_CLS, "tc", NULL,
      "stxdw [r10-8], r10\nmov r2, r10\nadd r2, -8\nlddw r1, map:0\ncall 1\n" RET0, NULL },
    { "an iterator as a map key", GKT_SCHED_CLS, "tc", "spilled pointer",
      NUM_NEW "mov r2, r10\nadd r2, -8\nlddw r1, map:0\ncall 1\n" NUM_DESTROY RET0, NUM },
    /* bpf_get_stack returns a negative errno or at most the size asked */
    { "get_stack's result is at most its size", GKT_TRACEPOINT, "tracepoint", NULL,
      "mov r2, r10\nadd r2, -64\nmov r3, 24\nmov r4, 0\ncall 67\njslt r0, 0, out\nmov r4, r10\nadd r4, -32\n"
      "add r4, r0\nstb [r4+0], 0\nout:\n" RET0, NULL },
    { "get_stack's result is no more than that", GKT_TRACEPOINT, "tracepoint", "R4",
      "mov r2, r10\nadd r2, -64\nmov r3, 24\nmov r4, 0\ncall 67\njslt r0, 0, out\nmov r4, r10\nadd r4, -16\n"
      "add r4, r0\nstb [r4+0], 0\nout:\n" RET0, NULL },
    /* root's atomics: a pointer operand is a number; a whole spilled pointer too */
    { "atomic add of a pointer into a map value", GKT_SCHED_CLS, "tc", NULL,
      "stdw [r10-8], 0\nmov r2, r10\nadd r2, -8\nlddw r1, map:0\ncall 1\njeq r0, 0, out\n"
      ".raw 0xdb, 0, 10, 0, 0\nout:\n" RET0, NULL },
    { "atomic add on a spilled pointer: its bytes become a number", GKT_SCHED_CLS, "tc", NULL,
      "stxdw [r10-8], r1\nmov r2, 1\n.raw 0xdb, 10, 2, -8, 0\nldxdw r0, [r10-8]\nand r0, 1\nexit\n", NULL },
    { "32-bit atomic on a spilled pointer", GKT_SCHED_CLS, "tc", "spilled pointer",
      "stxdw [r10-8], r1\nmov r2, 1\n.raw 0xc3, 10, 2, -8, 1\n" RET0, NULL },
    { "atomic on an iterator", GKT_SCHED_CLS, "tc", "spilled pointer",
      NUM_NEW "mov r2, 1\n.raw 0xdb, 10, 2, -8, 0\n" NUM_DESTROY RET0, NUM },
    { "atomic fetch into r10", GKT_SCHED_CLS, "tc", "frame pointer is read only",
      "stdw [r10-8], 0\n.raw 0xdb, 10, 10, -8, 1\n" RET0, NULL },
    { "kfuncs unknown to graft stay refused", GKT_SYSCALL, "syscall", "not allowed by the policy",
      "mov r1, 1\ncall kfunc 3\n" RET0, TASK },
};

/* The policy's kernel kfunc table from a case's names. */
static const struct gver_kernel_kfunc *kk_table[8];
static uint32_t kk_fill(const char *names)
{
    uint32_t n = 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", names ? names : "");
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s && n < 7; s = strtok_r(NULL, ",", &save))
        kk_table[n++] = gver_kernel_kfunc_find(s);
    kk_table[n++] = NULL;      /* one extern graft does not know */
    return n;
}

int main(void)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct kcase *c = &cases[i];
        struct bpf_insn *insns = NULL;
        uint32_t n = 0;
        struct graft_err err = { 0 };
        if (gvm_asm(c->text, &insns, &n, &err)) {
            printf("FAIL %s: does not assemble: %s\n", c->name, err.msg);
            failures++;
            continue;
        }
        struct gver_policy *pol = gver_policy_for_kernel_type(c->ktype);
        if (!pol) {
            printf("FAIL %s: no policy\n", c->name);
            free(insns);
            failures++;
            continue;
        }
        gver_policy_kernel_ret(pol, c->ktype, c->section);
        pol->allow_ptr_leaks = pol->allow_uninit_stack = 1;   /* the kernel's root rules */
        pol->spec_bypass = 1;                                 /* root skips the Spectre rules */
        gver_policy_kernel_helpers(pol, c->ktype, 0);
        pol->kernel_kfuncs = kk_table;
        pol->n_kernel_kfuncs = kk_fill(c->kfuncs);
        pol->kobj_size[GVER_KOBJ_TASK] = TASK_SIZE;
        static const struct gmap_def maps[3] = {
            { .type = GMAP_HASH, .key_size = 8, .value_size = 8, .max_entries = 4, .name = "hash" },
            { .type = 19 /* cgroup_storage */, .key_size = 16, .value_size = 64, .name = "cgstore" },
            { .type = 33 /* arena */, .max_entries = 10, .name = "arena" },
        };
        struct gver_input in = { .insns = insns, .n = n, .maps = maps, .n_maps = 3, .policy = pol };
        struct gver_result res;
        if (gver_verify(&in, &res, &err) < 0) {
            printf("FAIL %s: verifier error %s\n", c->name, err.msg);
            failures++;
        } else if (!c->expect && !res.accepted) {
            printf("FAIL %s: rejected: %s\n", c->name, res.reason);
            failures++;
        } else if (c->expect && res.accepted) {
            printf("FAIL %s: accepted, expected a rejection with \"%s\"\n", c->name, c->expect);
            failures++;
        } else if (c->expect && !strstr(res.reason, c->expect)) {
            printf("FAIL %s: rejected for \"%s\", expected \"%s\"\n", c->name, res.reason, c->expect);
            failures++;
        }
        gver_result_free(&res);
        free(pol);
        free(insns);
    }
    printf("%zu kernel rule cases, %d failures\n", sizeof(cases) / sizeof(cases[0]), failures);
    return failures ? 1 : 0;
}
