/* taskinfo.bpf.c - what bpf_get_current_task / bpf_get_current_task_btf
 * show of the current task, checked against the helpers that answer the
 * same questions, on each compat_emit() call. The struct definitions are
 * CO-RE views: libbpf relocates them against the kernel's BTF.
 *
 * Two read-only switches are set by the loader before load and frozen: the
 * verifier must take them as constants. `use_btf` picks the helper; `never`
 * guards code the verifier would refuse: it must prune it. A weak kernel
 * symbol that does not exist reads as absent, and a field no kernel has
 * leaves a poisoned call in dead code. */
#include "common.bpf.h"
#include <stdbool.h>
#include <bpf/bpf_core_read.h>

#ifndef bpf_ksym_exists           /* libbpf 1.2's; Debian ships 1.1 */
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), #sym " must be __weak"); !!sym; })
#endif

struct ns_common { unsigned int inum; } __attribute__((preserve_access_index));
struct mnt_namespace { struct ns_common ns; } __attribute__((preserve_access_index));
struct nsproxy { struct mnt_namespace *mnt_ns; } __attribute__((preserve_access_index));
typedef struct { unsigned int val; } kuid_t;
struct cred { kuid_t uid; kuid_t euid; } __attribute__((preserve_access_index));
struct task_struct {
    int pid, tgid;
    struct task_struct *real_parent, *group_leader;
    char comm[16];
    const struct cred *cred;
    struct nsproxy *nsproxy;
} __attribute__((preserve_access_index));

/* a field no kernel has: libbpf turns its read into a poisoned call */
struct task_struct___graft { int graft_no_such_field; } __attribute__((preserve_access_index));

const volatile bool use_btf = false;
const volatile bool never = false;

/* untyped: libbpf resolves it from /proc/kallsyms (a weak kfunc would need
 * the module BTF ids, BPF_BTF_GET_NEXT_ID) */
extern const void graft_test_no_such_symbol __ksym __weak;

struct result {
    __u32 hits, tgid_ok, pid_ok, comm_ok, leader_comm_ok, uid_ok, ppid, mntns, ksym_absent, direct_ok;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct result);
} results SEC(".maps");

static __always_inline int same_comm(const char *a, const char *b)
{
    for (int i = 0; i < 16; i++) {
        if (a[i] != b[i])
            return 0;
        if (!a[i])
            break;
    }
    return 1;
}

SEC("uprobe/" WORK_PATH ":compat_emit")
int BPF_KPROBE(on_emit)
{
    if (!is_target())
        return 0;
    __u32 zero = 0;
    struct result *r = bpf_map_lookup_elem(&results, &zero);
    if (!r)
        return 0;
    struct task_struct *t;
    if (use_btf) {
        t = bpf_get_current_task_btf();
        r->direct_ok = t->tgid == (int)(bpf_get_current_pid_tgid() >> 32);   /* a direct load */
    } else {
        t = (struct task_struct *)bpf_get_current_task();
        r->direct_ok = 1;
    }
    __u64 id = bpf_get_current_pid_tgid();
    char comm[16], mine[16], leader[16];
    r->hits++;
    r->tgid_ok = BPF_CORE_READ(t, tgid) == (int)(id >> 32);
    r->pid_ok = BPF_CORE_READ(t, pid) == (int)id;
    BPF_CORE_READ_STR_INTO(&comm, t, comm);
    BPF_CORE_READ_STR_INTO(&leader, t, group_leader, comm);
    bpf_get_current_comm(mine, sizeof(mine));
    r->comm_ok = same_comm(comm, mine);
    r->leader_comm_ok = same_comm(leader, mine);      /* the workload is single-threaded */
    r->uid_ok = BPF_CORE_READ(t, cred, uid.val) == (__u32)bpf_get_current_uid_gid();
    r->ppid = BPF_CORE_READ(t, real_parent, tgid);
    r->mntns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
    r->ksym_absent = !bpf_ksym_exists(&graft_test_no_such_symbol);
    /* dead (the field is absent): libbpf poisons the read with a call of a
     * helper that does not exist, which the agents must never be given */
    if (bpf_core_field_exists(((struct task_struct___graft *)t)->graft_no_such_field))
        r->hits += BPF_CORE_READ((struct task_struct___graft *)t, graft_no_such_field);
    if (never)          /* dead: a load through a scalar, refused if verified */
        r->hits += *(volatile __u32 *)(long)bpf_get_prandom_u32();
    return 0;
}
