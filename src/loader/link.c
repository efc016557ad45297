/*
 * link.c - turn the executable sections into self-contained programs.
 *
 * Each FUNC symbol in a program section (anything executable but .text) is a
 * program; .text holds subprograms. A program's instructions are its own
 * function followed, like libbpf does, by every subprogram it reaches
 * (transitively), each appended once. While a function's copy is appended we
 * apply its section's relocations (map, global data, extern, call targets) and
 * CO-RE records to it, then fix the pc-relative imm of every BPF_PSEUDO_CALL
 * and BPF_PSEUDO_FUNC to point into the linked array.
 *
 * Invariant: a chunk is one function's copy: (section, first insn, length)
 * placed at out_start; a section instruction index maps to a linked index
 * only through the chunk list.
 */
#include "loader/loader_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



#define R_BPF_64_64 1
#define R_BPF_64_32 10

struct sec_rule {
    const char *prefix;        /* exact name, or prefix followed by '/' */
    enum gprog_type type;
    bool sleepable;
    bool needs_target;
};

static const struct sec_rule sec_rules[] = {
    { "uprobe", GPROG_UPROBE, false, false },
    { "uprobe.s", GPROG_UPROBE, true, false },
    { "uretprobe", GPROG_URETPROBE, false, false },
    { "uretprobe.s", GPROG_URETPROBE, true, false },
    { "usdt", GPROG_USDT, false, false },
    { "tracepoint", GPROG_TRACEPOINT, false, true },
    { "tp", GPROG_TRACEPOINT, false, true },
    { "raw_tracepoint", GPROG_RAW_TRACEPOINT, false, true },
    { "raw_tp", GPROG_RAW_TRACEPOINT, false, true },
    { "override", GPROG_OVERRIDE, false, true },
    { "replace", GPROG_REPLACE, false, true },
    { "socket", GPROG_SOCKET_FILTER, false, false },
    { "xdp", GPROG_XDP, false, false },
};

/* Kernel program types by section prefix (libbpf's names and the pre-1.0
 * ones). A section matches an entry when it is the prefix or the prefix
 * then '/', or (pre-1.0 libbpf, e.g. "xdp_prog", "classifier_ingress")
 * when it merely starts with it; the longest matching prefix wins. */
static const struct { const char *prefix; enum gprog_ktype ktype; } kernel_secs[] = {
    { "kprobe", GKT_KPROBE }, { "kretprobe", GKT_KPROBE }, { "ksyscall", GKT_KPROBE },
    { "kretsyscall", GKT_KPROBE }, { "kprobe.multi", GKT_KPROBE }, { "kretprobe.multi", GKT_KPROBE },
    { "kprobe.session", GKT_KPROBE }, { "uprobe.multi", GKT_KPROBE }, { "uretprobe.multi", GKT_KPROBE },
    { "uprobe.multi.s", GKT_KPROBE }, { "uretprobe.multi.s", GKT_KPROBE },
    { "uprobe", GKT_KPROBE }, { "uretprobe", GKT_KPROBE }, { "usdt", GKT_KPROBE },
    { "tracepoint", GKT_TRACEPOINT }, { "tp", GKT_TRACEPOINT },
    { "raw_tracepoint", GKT_RAW_TRACEPOINT }, { "raw_tp", GKT_RAW_TRACEPOINT },
    { "raw_tracepoint.w", GKT_RAW_TRACEPOINT }, { "raw_tp.w", GKT_RAW_TRACEPOINT },
    { "tp_btf", GKT_TRACING }, { "fentry", GKT_TRACING }, { "fexit", GKT_TRACING },
    { "fmod_ret", GKT_TRACING }, { "fentry.s", GKT_TRACING }, { "fexit.s", GKT_TRACING },
    { "fmod_ret.s", GKT_TRACING }, { "iter", GKT_TRACING }, { "iter.s", GKT_TRACING },
    { "freplace", GKT_TRACING },
    { "lsm", GKT_LSM }, { "lsm.s", GKT_LSM }, { "lsm_cgroup", GKT_LSM },
    { "perf_event", GKT_PERF_EVENT },
    { "socket", GKT_SOCKET_FILTER },
    { "sk_reuseport", GKT_SK_REUSEPORT },
    { "tc", GKT_SCHED_CLS }, { "tcx", GKT_SCHED_CLS }, { "netkit", GKT_SCHED_CLS },
    { "classifier", GKT_SCHED_CLS }, { "action", GKT_SCHED_ACT },
    { "xdp", GKT_XDP }, { "xdp.frags", GKT_XDP }, { "xdp_devmap", GKT_XDP }, { "xdp_cpumap", GKT_XDP },
    { "cgroup_skb", GKT_CGROUP_SKB }, { "cgroup/skb", GKT_CGROUP_SKB },
    { "cgroup/sock", GKT_CGROUP_SOCK }, { "cgroup/sock_create", GKT_CGROUP_SOCK },
    { "cgroup/sock_release", GKT_CGROUP_SOCK }, { "cgroup/post_bind4", GKT_CGROUP_SOCK },
    { "cgroup/post_bind6", GKT_CGROUP_SOCK },
    { "cgroup/bind4", GKT_CGROUP_SOCK_ADDR }, { "cgroup/bind6", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/connect4", GKT_CGROUP_SOCK_ADDR }, { "cgroup/connect6", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/connect_unix", GKT_CGROUP_SOCK_ADDR }, { "cgroup/sendmsg4", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/sendmsg6", GKT_CGROUP_SOCK_ADDR }, { "cgroup/sendmsg_unix", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/recvmsg4", GKT_CGROUP_SOCK_ADDR }, { "cgroup/recvmsg6", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/recvmsg_unix", GKT_CGROUP_SOCK_ADDR }, { "cgroup/getpeername4", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/getpeername6", GKT_CGROUP_SOCK_ADDR }, { "cgroup/getpeername_unix", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/getsockname4", GKT_CGROUP_SOCK_ADDR }, { "cgroup/getsockname6", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/getsockname_unix", GKT_CGROUP_SOCK_ADDR },
    { "cgroup/dev", GKT_CGROUP_DEV }, { "cgroup/sysctl", GKT_CGROUP_SYSCTL },
    { "cgroup/getsockopt", GKT_CGROUP_SOCKOPT }, { "cgroup/setsockopt", GKT_CGROUP_SOCKOPT },
    { "sockops", GKT_SOCK_OPS }, { "sk_skb", GKT_SK_SKB }, { "sk_msg", GKT_SK_MSG },
    { "sk_lookup", GKT_SK_LOOKUP }, { "flow_dissector", GKT_FLOW_DISSECTOR },
    { "lwt_in", GKT_LWT }, { "lwt_out", GKT_LWT }, { "lwt_xmit", GKT_LWT },
    { "lwt_seg6local", GKT_LWT }, { "lirc_mode2", GKT_LIRC_MODE2 }, { "syscall", GKT_SYSCALL },
    { "struct_ops", GKT_STRUCT_OPS }, { "struct_ops.s", GKT_STRUCT_OPS },
    { "netfilter", GKT_NETFILTER },
};

static enum gprog_ktype kernel_sec_type(const char *sec)
{
    enum gprog_ktype best = GKT_UNKNOWN;
    size_t best_len = 0;
    for (int sloppy = 0; sloppy < 2 && best == GKT_UNKNOWN; sloppy++)
        for (size_t i = 0; i < sizeof(kernel_secs) / sizeof(kernel_secs[0]); i++) {
            size_t l = strlen(kernel_secs[i].prefix);
            if (strncmp(sec, kernel_secs[i].prefix, l) || l <= best_len)
                continue;
            if (!sloppy && sec[l] != '\0' && sec[l] != '/')
                continue;
            best = kernel_secs[i].ktype;
            best_len = l;
        }
    return best;
}

/* Is a graft type's target one graft can attach to? Others of the same
 * section prefix (a scheduler tracepoint, a kernel raw tracepoint) are
 * kernel programs. */
static bool graft_target(enum gprog_type type, const char *tgt)
{
    if (type == GPROG_TRACEPOINT)
        return strncmp(tgt, "syscalls/", 9) == 0 || !strcmp(tgt, "raw_syscalls/sys_enter") ||
               !strcmp(tgt, "raw_syscalls/sys_exit");
    if (type == GPROG_RAW_TRACEPOINT)
        return !strcmp(tgt, "sys_enter") || !strcmp(tgt, "sys_exit");
    return true;
}

static int classify_prog(struct lctx *cx, const char *sec, struct gobj_prog *p)
{
    if (strlen(sec) >= sizeof(p->section))
        return graft_errf(cx->err, -ENAMETOOLONG, "%s: section '%s': name too long", cx->path, sec);
    snprintf(p->section, sizeof(p->section), "%s", sec);
    if (sec[0] == '?') {       /* libbpf: a program not loaded unless asked for */
        p->no_autoload = true;
        sec++;
    }
    for (size_t i = 0; i < sizeof(sec_rules) / sizeof(sec_rules[0]); i++) {
        const struct sec_rule *r = &sec_rules[i];
        size_t l = strlen(r->prefix);
        if (strncmp(sec, r->prefix, l) || (sec[l] != '\0' && sec[l] != '/'))
            continue;
        const char *tgt = sec[l] ? sec + l + 1 : "";
        if (strlen(tgt) >= sizeof(p->target))
            return graft_errf(cx->err, -ENAMETOOLONG, "%s: section '%s': name too long",
                              cx->path, sec);
        snprintf(p->target, sizeof(p->target), "%s", tgt);
        /* A bare tracepoint / raw_tp, or one of the kernel's own: a kernel
         * program (the kernel attaches those by name at run time). */
        if ((r->type == GPROG_TRACEPOINT || r->type == GPROG_RAW_TRACEPOINT) &&
            (!tgt[0] || !graft_target(r->type, tgt)))
            break;
        if (r->needs_target && !tgt[0])
            return graft_errf(cx->err, -EINVAL,
                              "%s: section '%s': %s programs need a target (%s/...); see "
                              "docs/sections.md", cx->path, sec, r->prefix, r->prefix);
        if (r->type == GPROG_TRACEPOINT && !strchr(tgt, '/'))
            return graft_errf(cx->err, -EINVAL,
                              "%s: section '%s': tracepoint target must be CATEGORY/NAME, e.g. "
                              "tracepoint/syscalls/sys_enter_openat", cx->path, sec);
        if ((r->type == GPROG_OVERRIDE || r->type == GPROG_REPLACE) && !strchr(tgt, ':'))
            return graft_errf(cx->err, -EINVAL,
                              "%s: section '%s': target must be BINARY:FUNC", cx->path, sec);
        p->type = r->type;
        p->sleepable = r->sleepable;
        return 0;
    }
    enum gprog_ktype kt = kernel_sec_type(sec);
    if (kt != GKT_UNKNOWN) {
        const char *slash = strchr(sec, '/');
        snprintf(p->target, sizeof(p->target), "%s", slash ? slash + 1 : "");
        p->type = GPROG_KERNEL;
        p->ktype = kt;
        return 0;
    }
    return graft_errf(cx->err, -EINVAL,
                      "%s: section '%s' holds code but is not a known program section (uprobe/, "
                      "uretprobe/, uprobe.s/, usdt/, tracepoint/, tp/, raw_tracepoint/, raw_tp/, "
                      "override/, replace/, socket, xdp, or a kernel program type; see "
                      "docs/sections.md)", cx->path, sec);
}

/* The function containing section insn idx: [*start, *end). */
static void func_range(const struct lctx *cx, uint32_t shndx, uint32_t idx, uint32_t *start,
                       uint32_t *end)
{
    const struct lsec *s = &cx->secs[shndx];
    *start = 0;
    *end = s->n_insns;
    for (size_t i = 1; i < cx->n_syms; i++) {
        const struct lsym *y = &cx->syms[i];
        if (y->shndx != shndx || y->type != STT_FUNC || y->value % 8 || y->size % 8)
            continue;
        uint64_t a = y->value / 8, b = a + y->size / 8;
        if (a <= idx && idx < b && b <= s->n_insns) {
            *start = a;
            *end = b;
            return;
        }
    }
}

struct chunk {
    uint32_t shndx, sec_start, len, out_start;
};

struct linker {
    struct lctx *cx;
    struct gobj_prog *prog;
    uint32_t prog_idx;
    struct bpf_insn *out;
    uint32_t n_out, cap_out;
    struct chunk *chunks;
    uint32_t n_chunks, cap_chunks;
};

static int append_func(struct linker *lk, uint32_t shndx, uint32_t start, uint32_t end)
{
    const struct lsec *s = &lk->cx->secs[shndx];
    uint32_t len = end - start;
    if ((uint64_t)lk->n_out + len > BPF_MAX_INSNS)
        return graft_errf(lk->cx->err, -E2BIG, "%s: program %s: more than %u instructions",
                          lk->cx->path, lk->prog->name, BPF_MAX_INSNS);
    if (lk->n_out + len > lk->cap_out) {
        uint32_t cap = (lk->n_out + len) * 2;
        struct bpf_insn *n = realloc(lk->out, cap * sizeof(*n));
        if (!n)
            return graft_errf(lk->cx->err, -ENOMEM, "%s: out of memory", lk->cx->path);
        lk->out = n;
        lk->cap_out = cap;
    }
    if (lk->n_chunks == lk->cap_chunks) {
        uint32_t cap = lk->cap_chunks ? lk->cap_chunks * 2 : 8;
        struct chunk *n = realloc(lk->chunks, cap * sizeof(*n));
        if (!n)
            return graft_errf(lk->cx->err, -ENOMEM, "%s: out of memory", lk->cx->path);
        lk->chunks = n;
        lk->cap_chunks = cap;
    }
    memcpy(lk->out + lk->n_out, s->data + (size_t)start * 8, (size_t)len * 8);
    lk->chunks[lk->n_chunks++] = (struct chunk){ shndx, start, len, lk->n_out };
    lk->n_out += len;
    return 0;
}

/* Linked index of section insn idx, appending its function if needed. */
static int linked_index(struct linker *lk, uint32_t shndx, uint32_t idx, uint32_t *res)
{
    for (uint32_t i = 0; i < lk->n_chunks; i++) {
        const struct chunk *c = &lk->chunks[i];
        if (c->shndx == shndx && c->sec_start <= idx && idx < c->sec_start + c->len) {
            *res = c->out_start + (idx - c->sec_start);
            return 0;
        }
    }
    uint32_t a, b;
    func_range(lk->cx, shndx, idx, &a, &b);
    uint32_t at = lk->n_out;
    int rc = append_func(lk, shndx, a, b);
    if (rc)
        return rc;
    *res = at + (idx - a);
    return 0;
}

static const struct lrel *find_rel(const struct lsec *s, uint32_t insn)
{
    uint32_t lo = 0, hi = s->n_rels;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->rels[mid].insn < insn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_rels && s->rels[lo].insn == insn ? &s->rels[lo] : NULL;
}

static int map_at(const struct lctx *cx, uint32_t shndx, uint64_t off)
{
    const char *sec = cx->secs[shndx].name;
    for (uint32_t i = 0; i < cx->obj->n_maps; i++) {
        const struct gobj_map *m = &cx->obj->maps[i];
        if (m->kind == GOBJ_MAP_USER && m->sec_off == off && !strcmp(m->section, sec))
            return i;
    }
    return -1;
}

/* Where a call or function-pointer load goes: section and insn index. */
struct jump_target { uint32_t shndx, idx; };

/* Apply the relocation rel to linked insn at (chunk c, insn j). A call or
 * function-pointer target is stored in *tgt (tgt->shndx 0: none). */
static int apply_rel(struct linker *lk, const struct chunk *c, uint32_t j, const struct lrel *rel,
                     struct jump_target *tgt)
{
    struct lctx *cx = lk->cx;
    const struct lsec *sec = &cx->secs[c->shndx];
    uint32_t oi = c->out_start + j;
    struct bpf_insn *insn = &lk->out[oi];
    const struct lsym *s = &cx->syms[rel->sym];
    uint32_t sec_insn = c->sec_start + j;
    bool is_call = insn->code == (BPF_JMP | BPF_CALL);
    bool is_ld = bpf_is_ld_imm64(insn);

    if (!is_call && !is_ld)
        return graft_errf(cx->err, -EINVAL,
                          "%s: section %s insn %u: relocation to '%s' on an instruction that is "
                          "neither ld_imm64 nor call (opcode 0x%02x)", cx->path, sec->name,
                          sec_insn, s->name, insn->code);
    if (is_ld && (sec_insn + 1 >= sec->n_insns || oi + 1 >= lk->n_out))
        return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: truncated ld_imm64",
                          cx->path, sec->name, sec_insn);
    if (s->shndx == SHN_UNDEF) {
        int e = gobj_extern_use(cx, rel->sym, is_call, lk->prog_idx, oi);
        if (e < 0)
            return e;
        insn->src_reg = is_call ? BPF_PSEUDO_KFUNC_CALL : BPF_PSEUDO_BTF_ID;
        insn->imm = e;
        if (is_ld)
            insn[1].imm = 0;
        return 0;
    }
    if (s->shndx >= cx->n_secs)
        return graft_errf(cx->err, -EINVAL,
                          "%s: section %s insn %u: relocation to symbol '%s' in special section "
                          "0x%x", cx->path, sec->name, sec_insn, s->name, s->shndx);
    const struct lsec *ts = &cx->secs[s->shndx];
    if (ts->kind == LSEC_PROG || ts->kind == LSEC_TEXT) {
        if (s->value % 8)
            return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: misaligned function '%s'",
                              cx->path, sec->name, sec_insn, s->name);
        int64_t t = is_call ? (int64_t)(s->value / 8) + insn->imm + 1
                            : ((int64_t)s->value + insn->imm) / 8;
        if (is_call && insn->src_reg != BPF_PSEUDO_CALL)
            return graft_errf(cx->err, -EINVAL,
                              "%s: section %s insn %u: call relocation on a helper call",
                              cx->path, sec->name, sec_insn);
        if (t < 0 || t >= ts->n_insns)
            return graft_errf(cx->err, -EINVAL,
                              "%s: section %s insn %u: call to '%s' lands outside section %s",
                              cx->path, sec->name, sec_insn, s->name, ts->name);
        tgt->shndx = s->shndx;
        tgt->idx = t;
        if (is_ld)
            insn->src_reg = BPF_PSEUDO_FUNC;
        return 0;
    }
    if (is_call)
        return graft_errf(cx->err, -EINVAL, "%s: section %s insn %u: call to non-code symbol '%s' in %s",
                          cx->path, sec->name, sec_insn, s->name, ts->name);
    if (ts->kind == LSEC_MAPS || ts->kind == LSEC_LEGACY_MAPS) {
        int m = map_at(cx, s->shndx, s->value + (s->type == STT_SECTION ? insn->imm : 0));
        if (m < 0)
            return graft_errf(cx->err, -EINVAL,
                              "%s: section %s insn %u: '%s' in %s is not a map definition",
                              cx->path, sec->name, sec_insn, s->name, ts->name);
        insn->src_reg = BPF_PSEUDO_MAP_IDX;
        insn->imm = m;
        insn[1].imm = 0;
        return 0;
    }
    if (ts->kind == LSEC_DATA && ts->map_idx >= 0) {
        int64_t off = (int64_t)s->value + insn->imm;
        if (off < 0 || (uint64_t)off > ts->size)
            return graft_errf(cx->err, -EINVAL,
                              "%s: section %s insn %u: '%s'+%d is outside %s (%zu bytes)",
                              cx->path, sec->name, sec_insn, s->name, insn->imm, ts->name, ts->size);
        insn->src_reg = BPF_PSEUDO_MAP_IDX_VALUE;
        insn->imm = ts->map_idx;
        insn[1].imm = off;
        return 0;
    }
    return graft_errf(cx->err, -EINVAL,
                      "%s: section %s insn %u: relocation to '%s' in section %s, which is not a "
                      "map, global data or code section", cx->path, sec->name, sec_insn, s->name,
                      ts->name);
}

/* Relocate chunk ci, then link the calls it makes. */
static int process_chunk(struct linker *lk, uint32_t ci)
{
    struct lctx *cx = lk->cx;
    struct chunk c = lk->chunks[ci];
    const struct lsec *sec = &cx->secs[c.shndx];
    int rc = gobj_core_apply(cx, sec, c.sec_start, c.len, lk->out + c.out_start, lk->prog);
    if (rc)
        return rc;
    for (uint32_t j = 0; j < c.len; j++) {
        uint32_t oi = c.out_start + j;
        struct jump_target tgt = { 0, 0 };
        const struct lrel *rel = find_rel(sec, c.sec_start + j);
        if (rel && (rc = apply_rel(lk, &c, j, rel, &tgt)))
            return rc;
        struct bpf_insn *insn = &lk->out[oi];
        if (!rel && insn->code == (BPF_JMP | BPF_CALL) && insn->src_reg == BPF_PSEUDO_CALL) {
            /* call to a static function of the same section: no relocation */
            int64_t t = (int64_t)c.sec_start + j + insn->imm + 1;
            if (t < 0 || t >= sec->n_insns)
                return graft_errf(cx->err, -EINVAL,
                                  "%s: section %s insn %u: call target %lld outside the section",
                                  cx->path, sec->name, c.sec_start + j, (long long)t);
            tgt.shndx = c.shndx;
            tgt.idx = t;
        }
        if (tgt.shndx) {
            uint32_t to;
            if ((rc = linked_index(lk, tgt.shndx, tgt.idx, &to)))
                return rc;
            lk->out[oi].imm = (int32_t)((int64_t)to - oi - 1);
        }
        if (bpf_is_ld_imm64(&lk->out[oi]))
            j++;
    }
    return 0;
}

static int link_one(struct lctx *cx, uint32_t prog_idx, uint32_t shndx, uint32_t start,
                    uint32_t end)
{
    struct linker lk = { .cx = cx, .prog = &cx->obj->progs[prog_idx], .prog_idx = prog_idx };
    int rc = append_func(&lk, shndx, start, end);
    for (uint32_t ci = 0; !rc && ci < lk.n_chunks; ci++)
        rc = process_chunk(&lk, ci);
    free(lk.chunks);
    if (rc) {
        free(lk.out);
        return rc;
    }
    lk.prog->insns = lk.out;
    lk.prog->n_insns = lk.n_out;
    return 0;
}

/* With gobj_opts.keep_broken_progs, a program that could not be built
 * keeps its error and the object opens; out of memory still fails it. */
static int keep_broken(struct lctx *cx, struct gobj_prog *p, int rc)
{
    if (!rc || rc == -ENOMEM || !cx->opts->keep_broken_progs)
        return rc;
    graft_copy_str(p->load_error, sizeof(p->load_error), cx->err ? cx->err->msg : "cannot be built");
    if (!p->section[0])
        snprintf(p->section, sizeof(p->section), "%s", "?");
    graft_err_clear(cx->err);
    return 0;
}

static int add_prog(struct lctx *cx, uint32_t shndx, const char *name, uint32_t start, uint32_t end)
{
    struct gobj *o = cx->obj;
    bool old_style = cx->secs[shndx].kind == LSEC_TEXT;
    struct gobj_prog *p = realloc(o->progs, (o->n_progs + 1) * sizeof(*p));
    if (!p)
        return graft_errf(cx->err, -ENOMEM, "%s: out of memory", cx->path);
    o->progs = p;
    p = &o->progs[o->n_progs++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    int rc = 0;
    if (old_style) {            /* see gobj_link_programs() */
        snprintf(p->section, sizeof(p->section), "%s", ".text");
        p->type = GPROG_KERNEL;
        p->ktype = GKT_UNKNOWN;
    } else {
        rc = classify_prog(cx, cx->secs[shndx].name, p);
    }
    if (!rc && start >= end)
        rc = graft_errf(cx->err, -EINVAL, "%s: section %s: program '%s' is empty", cx->path,
                        cx->secs[shndx].name, name);
    if (!rc)
        rc = link_one(cx, o->n_progs - 1, shndx, start, end);
    return keep_broken(cx, &o->progs[o->n_progs - 1], rc);
}

/* Function symbol y of code section i as a program of its own, after
 * checking that it lies whole instructions inside the section. */
static int add_func_prog(struct lctx *cx, size_t i, const struct lsym *y)
{
    const struct lsec *s = &cx->secs[i];
    if (y->value % 8 || y->size % 8 || y->value / 8 > s->n_insns ||
        y->size / 8 > s->n_insns - y->value / 8)
        return graft_errf(cx->err, -EINVAL,
                          "%s: section %s: function '%s' (offset %llu, size %llu) is "
                          "misaligned or outside the section", cx->path, s->name, y->name,
                          (unsigned long long)y->value, (unsigned long long)y->size);
    return add_prog(cx, i, y->name, y->value / 8, (y->value + y->size) / 8);
}

int gobj_link_programs(struct lctx *cx)
{
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *s = &cx->secs[i];
        if (s->kind != LSEC_PROG || s->n_insns == 0)
            continue;
        uint32_t found = 0;
        for (size_t k = 1; k < cx->n_syms; k++) {
            const struct lsym *y = &cx->syms[k];
            if (y->shndx != i || y->type != STT_FUNC)
                continue;
            int rc = add_func_prog(cx, i, y);
            if (rc)
                return rc;
            found++;
        }
        if (!found) {   /* no symbols: the whole section is one program */
            int rc = add_prog(cx, i, s->name, 0, s->n_insns);
            if (rc)
                return rc;
        }
    }
    if (cx->obj->n_progs)
        return 0;
    /* Old style (no SEC() at all): the code is only in .text; each global
     * function there is a program of an unknown kernel type. */
    for (size_t i = 1; i < cx->n_secs; i++) {
        const struct lsec *s = &cx->secs[i];
        if (s->kind != LSEC_TEXT || s->n_insns == 0)
            continue;
        for (size_t k = 1; k < cx->n_syms; k++) {
            const struct lsym *y = &cx->syms[k];
            if (y->shndx != i || y->type != STT_FUNC || y->bind != STB_GLOBAL)
                continue;
            int rc = add_func_prog(cx, i, y);
            if (rc)
                return rc;
        }
    }
    return 0;
}
