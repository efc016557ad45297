/*
 * glue.c - libgraft-compat.so's use of graft's verifier and registry (kept
 * apart because graft's struct bpf_insn and <linux/bpf.h>'s clash).
 *
 * A program enters the registry, with the maps it uses, the first time it
 * is attached; everything registered carries this process as owner and is
 * removed when the tool exits (gc_registry_cleanup, also run by `graft
 * compat` for a tool that was killed).
 */
#define _GNU_SOURCE
#include "compat/compat_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat/compat.h"
#include "helpers/helpers.h"
#include "loader/loader.h"
#include "runtime/load.h"
#include "runtime/registry.h"
#include "util/syscalls.h"
#include "verifier/verifier.h"

#define BPF_FUNC_NR_PROBE_READ_KERNEL     113
#define BPF_FUNC_NR_PROBE_READ_KERNEL_STR 115

static struct greg *g_reg;
static pid_t g_reg_pid;

static int registry(struct greg **out)
{
    if (!g_reg) {
        struct graft_err err = {0};
        int rc = greg_open(&g_reg, &err);
        if (rc < 0) {
            gc_warn("cannot open the graft registry: %s", err.msg);
            return rc;
        }
        g_reg_pid = getpid();
        gc_registry_mark_owner();
    }
    *out = g_reg;
    return 0;
}

const char *gc_map_prefix(char *buf, size_t len)
{
    char reg[GREG_NAME_MAX];
    snprintf(buf, len, "%s.m.", greg_default_name(reg, sizeof(reg)));
    return buf;
}

int gc_syscall_nr(const char *name)
{
    return gsyscall_tracepoint_nr(name);
}

/* What `graft compat --allow` granted the tool's programs. */
static uint32_t allowed_rights(void)
{
    const char *env = getenv(GCOMPAT_ENV_ALLOW);
    uint32_t rights = 0;
    struct graft_err err = {0};
    if (env && *env && gver_rights_parse(env, &rights, &err) < 0) {
        gc_warn_once("%s=%s: %s; the programs stay observe-only", GCOMPAT_ENV_ALLOW, env, err.msg);
        rights = 0;
    }
    return rights;
}

int gc_verify(struct cobj *p, int sys_exit, int log_level, char *log, size_t log_len)
{
    /* The policy comes from where every graft program's does
     * (grt_policy_for): observe-only unless `graft compat --allow` granted
     * more. A program that needs a right it was not granted is refused
     * with EPERM, the kernel's answer to a load without the privilege. */
    struct gobj_prog gp;
    memset(&gp, 0, sizeof(gp));
    snprintf(gp.name, sizeof(gp.name), "%s", p->name);
    snprintf(gp.section, sizeof(gp.section), "compat/%s", gprog_type_name((enum gprog_type)p->gtype));
    gp.type = (enum gprog_type)p->gtype;
    if (p->gtype == GPROG_TRACEPOINT)
        snprintf(gp.target, sizeof(gp.target), "syscalls/%s", sys_exit ? "sys_exit_" : "sys_enter_");
    gp.insns = (struct bpf_insn *)p->insns;
    gp.n_insns = p->n_insns;
    struct grt_grant grant = { .rights = allowed_rights(), .cmd = "graft compat", .no_class = 1 };
    struct graft_err perr = {0};
    struct gver_policy *pol = grt_policy_for(NULL, &gp, &grant, &perr);
    if (!pol) {
        if (log && log_len)
            snprintf(log, log_len, "graft: %s\n", perr.msg);
        gc_warn_once("program %s refused: %s", p->name, perr.msg);   /* libbpf retries with a log */
        return perr.code == -EPERM ? -EPERM : -EINVAL;
    }
    if (p->prog_type == 7) {   /* BPF_PROG_TYPE_PERF_EVENT (timers.c): struct bpf_perf_event_data */
        struct gver_policy *kp = gver_policy_for_kernel_type(GKT_PERF_EVENT);
        if (kp)
            pol->ctx = kp->ctx;   /* static layout */
        free(kp);
    }
    /* There is no kernel memory in userspace (graft's probe_read_kernel
     * always fails): refusing the helpers makes libbpf's feature probe say
     * so, and libbpf then rewrites probe_read_{kernel,user}[_str] calls to
     * bpf_probe_read[_str], which read the process's memory - what
     * usdt.bpf.h's reads of pt_regs need. BCC calls them to copy its own
     * map values: the verifier accepts a call whose source it proves is the
     * program's own memory, which then runs as bpf_probe_read[_str]. */
    gver_policy_allow_helper(pol, BPF_FUNC_NR_PROBE_READ_KERNEL, 0);
    gver_policy_allow_helper(pol, BPF_FUNC_NR_PROBE_READ_KERNEL_STR, 0);
    /* The kernel holds a loader without CAP_PERFMON to its Spectre v1 rules
     * (verifier/speculation.c); the tracing programs these tools load need
     * it there, so it skips them, and so does graft here: the tool is the
     * user's own, in the user's own process. (libbpf's usdt.bpf.h and
     * CO-RE guarded code do not pass them: a register offset that differs
     * per call site, dead code checked as speculative.) */
    pol->spec_bypass = 1;
    pol->kernel_reads_own_mem = 1;
    struct gmap_def defs[GC_PROG_MAPS];
    for (uint32_t i = 0; i < p->n_maps; i++)
        defs[i] = p->maps[i]->def;
    /* Frozen read-only maps (.rodata after libbpf's BPF_MAP_FREEZE) are
     * constants to the verifier, as in the kernel: nothing can change them
     * any more (updates EPERM, freeze refused while a writable mapping
     * exists, later mappings read-only copies: bpf.c, perf.c). */
    const void *frozen[GC_PROG_MAPS] = { 0 };
    void *frozen_copy[GC_PROG_MAPS] = { 0 };
    for (uint32_t i = 0; i < p->n_maps; i++) {
        struct cobj *m = p->maps[i];
        if (!m->frozen || m->def.type != GMAP_ARRAY || m->def.max_entries != 1 ||
            !(m->def.map_flags & GMAP_F_RDONLY_PROG))
            continue;
        uint32_t key = 0;
        frozen_copy[i] = malloc(m->def.value_size ? m->def.value_size : 1);
        if (frozen_copy[i] && gmap_lookup_copy(m->map, &key, frozen_copy[i]) == 0)
            frozen[i] = frozen_copy[i];
    }
    struct gver_input in = {
        .insns = (const struct bpf_insn *)p->insns, .n = p->n_insns,
        .maps = defs, .n_maps = p->n_maps, .policy = pol, .log_level = log ? log_level : 0,
        .map_frozen = frozen,
    };
    struct gver_result res = {0};
    struct graft_err err = {0};
    int rc = gver_verify(&in, &res, &err);
    free(pol);
    for (uint32_t i = 0; i < p->n_maps; i++)
        free(frozen_copy[i]);
    if (rc < 0) {
        gc_warn("program %s: the verifier could not run: %s", p->name, err.msg);
        gver_result_free(&res);
        return rc;
    }
    if (!res.accepted) {
        /* A refused bpf_probe_read_kernel[_str] is said the kernel's way
         * for a helper it lacks ("unknown func", EINVAL): bpftrace's
         * feature probe looks for those words, and otherwise takes the
         * helper as present and emits it for strings it cannot place. */
        const struct bpf_insn *fi = res.fail_insn >= 0 && res.fail_insn < (int64_t)p->n_insns
                                        ? (const struct bpf_insn *)p->insns + res.fail_insn : NULL;
        int no_kmem = fi && fi->code == (BPF_JMP | BPF_CALL) && fi->src_reg == 0 &&
                      (fi->imm == BPF_FUNC_NR_PROBE_READ_KERNEL || fi->imm == BPF_FUNC_NR_PROBE_READ_KERNEL_STR) &&
                      strstr(res.reason, "not allowed by the policy");
        if (no_kmem)
            gc_warn_once("bpf_probe_read_kernel[_str]: no kernel memory exists in userspace; graft refuses it "
                         "unless it copies the program's own memory (libbpf then uses bpf_probe_read[_str] "
                         "for user memory)");
        if (log && log_len && no_kmem)
            snprintf(log, log_len, "%sgraft: insn %lld: unknown func bpf_%s#%d: no kernel memory exists in userspace\n",
                     res.log ? res.log : "", (long long)res.fail_insn,
                     fi->imm == BPF_FUNC_NR_PROBE_READ_KERNEL ? "probe_read_kernel" : "probe_read_kernel_str", fi->imm);
        else if (log && log_len)
            snprintf(log, log_len, "%sgraft: insn %lld: %s\n", res.log ? res.log : "", (long long)res.fail_insn,
                     res.reason);
        gc_warn("program %s rejected by graft's verifier at insn %lld: %s", p->name, (long long)res.fail_insn,
                res.reason);
        rc = no_kmem ? -EINVAL : -EACCES;
    } else {
        /* proven copies of the program's own memory: a plain checked copy */
        struct bpf_insn *insns = (struct bpf_insn *)p->insns;
        for (uint32_t i = 0; i < res.n_own_copies; i++)
            insns[res.own_copies[i]].imm = insns[res.own_copies[i]].imm == BPF_FUNC_NR_PROBE_READ_KERNEL ? 4 : 45;
        p->policy_tag = res.policy_tag;
        if (log && log_len)
            snprintf(log, log_len, "%s", res.log ? res.log : "");
    }
    gver_result_free(&res);
    return rc;
}

static int register_map(struct greg *reg, struct cobj *m)
{
    if (m->reg_id)
        return 0;
    struct graft_err err = {0};
    int id = greg_add_map(reg, m->name, gmap_shm_name(m->map), &m->def, &err);
    if (id < 0) {
        gc_warn("registering map %s: %s", m->name, err.msg);
        return id;
    }
    m->reg_id = (uint32_t)id;
    return 0;
}

static int register_prog(struct greg *reg, struct cobj *p)
{
    if (p->reg_id)
        return 0;
    struct greg_prog tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    for (uint32_t i = 0; i < p->n_maps; i++) {
        int rc = register_map(reg, p->maps[i]);
        if (rc < 0)
            return rc;
        tmpl.map_ids[i] = p->maps[i]->reg_id;
    }
    tmpl.n_maps = p->n_maps;
    tmpl.type = p->gtype;
    tmpl.n_insns = p->n_insns;
    tmpl.policy_tag = p->policy_tag;
    snprintf(tmpl.name, sizeof(tmpl.name), "%s", p->name);
    snprintf(tmpl.section, sizeof(tmpl.section), "compat/%s", gprog_type_name((enum gprog_type)p->gtype));
    /* Kernel-function calls (bpf.c keeps them for the verifier) and calls
     * of helpers graft lacks (libbpf's poisoned calls for unresolved weak
     * kfuncs and failed CO-RE relocations) passed verification only because
     * no path reaches them: the agents get a no-op in their place, since
     * they cannot link what graft lacks. */
    struct bpf_insn *code = malloc(sizeof(*code) * p->n_insns);
    if (!code)
        return -ENOMEM;
    memcpy(code, p->insns, sizeof(*code) * p->n_insns);
    for (uint32_t i = 0; i < p->n_insns; i++)
        if (code[i].code == (BPF_JMP | BPF_CALL) &&
            (code[i].src_reg == BPF_PSEUDO_KFUNC_CALL || (code[i].src_reg == 0 && !ghelper_proto((uint32_t)code[i].imm))))
            code[i] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA };
    struct graft_err err = {0};
    int id = greg_add_prog(reg, &tmpl, code, &err);
    free(code);
    if (id < 0) {
        gc_warn("registering program %s: %s", p->name, err.msg);
        return id;
    }
    p->reg_id = (uint32_t)id;
    return 0;
}

static uint32_t link_kind(int kind)
{
    switch (kind) {
    case CLINK_UPROBE: return GREG_LINK_UPROBE;
    case CLINK_URETPROBE: return GREG_LINK_URETPROBE;
    case CLINK_SYS_ENTER: return GREG_LINK_SYS_ENTER;
    case CLINK_SYS_EXIT: return GREG_LINK_SYS_EXIT;
    case CLINK_RAW_SYS_ENTER: return GREG_LINK_RAW_SYS_ENTER;
    case CLINK_PERF_SAMPLE: return GREG_LINK_PERF_SAMPLE;
    case CLINK_PROC_EXIT: return GREG_LINK_PROC_EXIT;
    case CLINK_SIGNAL_GENERATE: return GREG_LINK_SIGNAL_GENERATE;
    default: return GREG_LINK_RAW_SYS_EXIT;
    }
}

int gc_link_add(struct cobj *prog, int kind, int pid, const char *binary, const char *symbol, uint64_t offset,
                int32_t syscall_nr, uint64_t cookie, uint32_t *reg_id)
{
    struct greg *reg;
    int rc = registry(&reg);
    if (rc == 0)
        rc = register_prog(reg, prog);
    if (rc < 0)
        return rc;
    struct greg_link l;
    memset(&l, 0, sizeof(l));
    l.prog_id = prog->reg_id;
    l.kind = link_kind(kind);
    l.pid = pid;
    snprintf(l.binary, sizeof(l.binary), "%s", binary);
    snprintf(l.symbol, sizeof(l.symbol), "%s", symbol);
    l.offset = offset;
    l.syscall_nr = syscall_nr;
    l.cookie = cookie;
    struct graft_err err = {0};
    int id = greg_add_link(reg, &l, &err);
    if (id < 0) {
        gc_warn("attaching %s: %s", prog->name, err.msg);
        return id;
    }
    /* As the kernel's attach returns with the probe live: the running
     * agents (the target's, for a pid) have installed the hook before the
     * tool goes on and starts, say, its workload. A bounded wait: an agent
     * that does not answer (a stopped process) applies it when it runs. */
    greg_wait_applied(reg, pid > 0 ? (pid_t)pid : 0, greg_generation(reg), 2000);
    if (gc_debug)
        gc_warn("link %d: program %s (%u) %s %s:%s+%#llx nr %d pid %d cookie %#llx", id, prog->name, prog->reg_id,
                greg_link_kind_name(l.kind), binary, symbol, (unsigned long long)offset, syscall_nr, pid,
                (unsigned long long)cookie);
    *reg_id = (uint32_t)id;
    return 0;
}

int gc_prog_reg_id(struct cobj *prog, uint32_t *id)
{
    struct greg *reg;
    int rc = registry(&reg);
    if (rc == 0)
        rc = register_prog(reg, prog);
    if (rc == 0)
        *id = prog->reg_id;
    return rc;
}

void gc_link_remove(uint32_t reg_id)
{
    if (g_reg)
        greg_remove_link(g_reg, reg_id);
}

/* Set in the environment once this process registers something: an exec'd
 * image of the same process (same pid) finds it and removes what the old
 * image registered, whose descriptors the exec closed. */
#define OWNER_ENV "GRAFT_COMPAT_OWNER_PID"

void gc_registry_mark_owner(void)
{
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv(OWNER_ENV, pid, 1);
}

void gc_exec_cleanup(void)
{
    const char *e = getenv(OWNER_ENV);
    if (!e || atoi(e) != (int)getpid())
        return;
    struct greg *reg;
    if (registry(&reg) == 0) {
        greg_remove_owned_by(reg, getpid());
        greg_close(reg);
        g_reg = NULL;
    }
    unsetenv(OWNER_ENV);
}

void gc_registry_cleanup(void)
{
    if (g_reg && g_reg_pid == getpid()) {
        greg_remove_owned_by(g_reg, getpid());
        greg_close(g_reg);
        g_reg = NULL;
    }
}
