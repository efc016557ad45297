/*
 * builtin_btf.c - the target BTF graft uses for CO-RE when the kernel's
 * (/sys/kernel/btf/vmlinux) is absent or not wanted: the layouts of the
 * contexts graft's runtime hands to programs. They must match what the
 * attach layer builds: struct pt_regs in x86-64 kernel order (uprobes) and
 * the syscall tracepoint records (tracepoint/syscalls/sys_enter_* and _exit_*).
 */
#include "loader/loader.h"

#include <errno.h>
#include <string.h>

#include <bpf/btf.h>

static const char *const pt_regs_fields[] = {
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
    "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss",
};

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
    return 0;
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
