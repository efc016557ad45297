/*
 * builtin_btf.c - the target BTF graft uses for CO-RE when the kernel's
 * (/sys/kernel/btf/vmlinux) is absent or not wanted: the layouts of the
 * contexts graft's runtime hands to programs. They must match what the
 * attach layer builds: struct pt_regs in x86-64 kernel order (uprobes) and
 * the syscall tracepoint records (tracepoint/syscalls/sys_enter_* and _exit_*),
 * and struct task_struct with what it points to (cred, nsproxy, namespaces)
 * at the offsets of the task images bpf_get_current_task returns
 * (util/task_layout.h): the kernel's when its BTF is readable, else graft's.
 */
#include "loader/loader.h"

#include <errno.h>
#include <string.h>

#include <bpf/btf.h>

#include "util/task_layout.h"

static const char *const pt_regs_fields[] = {
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
    "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss",
};

static int field(struct btf *b, const char *name, int type, int32_t off)
{
    return off < 0 ? 0 : btf__add_field(b, name, type, (uint32_t)off * 8, 0);
}

/* task_struct, cred, nsproxy, the namespaces and ns_common, as the images
 * lay them out. Pointer types are added first, naming the structs by the
 * ids they get next (libbpf accepts forward references). */
static int add_task_types(struct btf *b, int in, int u32, int u64, int ch)
{
    const struct gtask_layout *L = gtask_layout();
    int comm = btf__add_array(b, u32, ch, GTASK_COMM_LEN);
    if (comm < 0)
        return -ENOMEM;
    int n0 = btf__type_cnt(b);
    int p_task = n0, p_cred = n0 + 1, p_nsp = n0 + 2, p_ns0 = n0 + 3;
    int s_task = p_ns0 + GTASK_NS_N, s_cred = s_task + 1, s_nsp = s_task + 2, s_ns0 = s_task + 3;
    int s_common = s_ns0 + GTASK_NS_N;
    int kuid = s_common + 1, kgid = s_common + 3;    /* typedef -> anonymous struct { val } */
    if (btf__add_ptr(b, s_task) != p_task || btf__add_ptr(b, s_cred) != p_cred ||
        btf__add_ptr(b, s_nsp) != p_nsp)
        return -ENOMEM;
    for (int i = 0; i < GTASK_NS_N; i++)
        if (btf__add_ptr(b, s_ns0 + i) != p_ns0 + i)
            return -ENOMEM;
    if (btf__add_struct(b, "task_struct", L->task_size) != s_task ||
        field(b, "flags", u32, L->flags) || field(b, "exit_code", in, L->exit_code) ||
        field(b, "exit_signal", in, L->exit_signal) || field(b, "pid", in, L->pid) ||
        field(b, "tgid", in, L->tgid) || field(b, "real_parent", p_task, L->real_parent) ||
        field(b, "parent", p_task, L->parent) || field(b, "group_leader", p_task, L->group_leader) ||
        field(b, "start_time", u64, L->start_time) || field(b, "start_boottime", u64, L->start_boottime) ||
        field(b, "real_cred", p_cred, L->real_cred) || field(b, "cred", p_cred, L->cred) ||
        field(b, "comm", comm, L->comm) || field(b, "nsproxy", p_nsp, L->nsproxy))
        return -ENOMEM;
    if (btf__add_struct(b, "cred", L->cred_size) != s_cred ||
        field(b, "uid", kuid, L->uid) || field(b, "gid", kgid, L->gid) ||
        field(b, "suid", kuid, L->suid) || field(b, "sgid", kgid, L->sgid) ||
        field(b, "euid", kuid, L->euid) || field(b, "egid", kgid, L->egid) ||
        field(b, "fsuid", kuid, L->fsuid) || field(b, "fsgid", kgid, L->fsgid))
        return -ENOMEM;
    if (btf__add_struct(b, "nsproxy", L->nsproxy_size) != s_nsp)
        return -ENOMEM;
    for (int i = 0; i < GTASK_NS_N; i++)
        if (field(b, gtask_ns_member[i], p_ns0 + i, L->ns_ptr[i]))
            return -ENOMEM;
    for (int i = 0; i < GTASK_NS_N; i++)
        if (btf__add_struct(b, gtask_ns_struct[i], L->ns_size[i]) != s_ns0 + i ||
            field(b, "ns", s_common, L->ns_at[i]))
            return -ENOMEM;
    if (btf__add_struct(b, "ns_common", (uint32_t)L->common_inum + 4) != s_common ||
        field(b, "inum", u32, L->common_inum))
        return -ENOMEM;
    if (btf__add_typedef(b, "kuid_t", kuid + 1) != kuid || btf__add_struct(b, NULL, 4) != kuid + 1 ||
        btf__add_field(b, "val", u32, 0, 0) ||
        btf__add_typedef(b, "kgid_t", kgid + 1) != kgid || btf__add_struct(b, NULL, 4) != kgid + 1 ||
        btf__add_field(b, "val", u32, 0, 0))
        return -ENOMEM;
    return 0;
}

static int build(struct btf *b)
{
    int ul = btf__add_int(b, "long unsigned int", 8, 0);
    int l = btf__add_int(b, "long int", 8, BTF_INT_SIGNED);
    int us = btf__add_int(b, "short unsigned int", 2, 0);
    int uc = btf__add_int(b, "unsigned char", 1, 0);
    int in = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
    int ch = btf__add_int(b, "char", 1, BTF_INT_CHAR);
    int u32 = btf__add_int(b, "unsigned int", 4, 0);
    if (ul < 0 || l < 0 || us < 0 || uc < 0 || in < 0 || ch < 0 || u32 < 0)
        return -ENOMEM;
    int nf = sizeof(pt_regs_fields) / sizeof(pt_regs_fields[0]);
    if (btf__add_struct(b, "pt_regs", nf * 8) < 0)
        return -ENOMEM;
    for (int i = 0; i < nf; i++)
        if (btf__add_field(b, pt_regs_fields[i], ul, i * 64, 0))
            return -ENOMEM;

    int te = btf__add_struct(b, "trace_entry", 8);
    if (te < 0 || btf__add_field(b, "type", us, 0, 0) || btf__add_field(b, "flags", uc, 16, 0) ||
        btf__add_field(b, "preempt_count", uc, 24, 0) || btf__add_field(b, "pid", in, 32, 0))
        return -ENOMEM;
    int args = btf__add_array(b, u32, ul, 6);
    int data = btf__add_array(b, u32, ch, 0);
    if (args < 0 || data < 0)
        return -ENOMEM;
    if (btf__add_struct(b, "trace_event_raw_sys_enter", 64) < 0 ||
        btf__add_field(b, "ent", te, 0, 0) || btf__add_field(b, "id", l, 64, 0) ||
        btf__add_field(b, "args", args, 128, 0) || btf__add_field(b, "__data", data, 512, 0))
        return -ENOMEM;
    if (btf__add_struct(b, "trace_event_raw_sys_exit", 24) < 0 ||
        btf__add_field(b, "ent", te, 0, 0) || btf__add_field(b, "id", l, 64, 0) ||
        btf__add_field(b, "ret", l, 128, 0) || btf__add_field(b, "__data", data, 192, 0))
        return -ENOMEM;
    return add_task_types(b, in, u32, ul, ch);
}

struct btf *gobj_builtin_btf(struct graft_err *err)
{
    struct btf *b = btf__new_empty();
    if (!b) {
        graft_errf(err, -ENOMEM, "built-in BTF: out of memory");
        return NULL;
    }
    if (build(b)) {
        btf__free(b);
        graft_errf(err, -ENOMEM, "built-in BTF: cannot build types");
        return NULL;
    }
    return b;
}
