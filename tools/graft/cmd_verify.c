/*
 * cmd_verify.c - graft verify: run the verifier over an object's programs,
 * or over raw instructions (--raw), and say why anything is rejected.
 *
 *   graft verify OBJ [--section S] [--log-level 0|1|2] [--privileged] [--btf TARGET]
 *                [--eim SPEC --class NAME | --allow RIGHTS] [--insn-budget N] [--strict-alignment]
 *   graft verify --raw [--ctx-size N | --prog-type TYPE[:ATTACH]] [--privileged]
 *                [--map FIXTURE]... [--allow RIGHTS] [--log-level 0|1|2] [--strict-alignment]
 *                (hex bytes on stdin)
 *
 * Programs are verified under the policy `graft load` with the same options
 * would give them (runtime/load.h: observe-only unless a class or --allow
 * grants more), and each one's rights are printed: what it may do to its
 * host, and whether that is granted ("rights: observe-only (read-host)",
 * "rights: write-user (not granted), host-call app_log").
 *
 * Every program gets its own verdict: one that cannot be built (unknown
 * section, unresolved symbol) is rejected alone, and a kernel program
 * (kprobe, tc, cgroup_skb, ...: a type graft cannot attach) is verified
 * offline against its kernel context and reported "verified; not
 * attachable by graft".
 *
 * --privileged verifies every program as the kernel would for root, offline:
 * each against its kernel program type's context (a uprobe as a kprobe, a
 * socket filter with LD_ABS), pointers may reach maps and r0, stack bytes
 * never written read as unknown values. Nothing verified this way is ever
 * loaded by graft (graft load has no such option): it is the kernel's
 * verdict, for parity, not graft's.
 *
 * --strict-alignment is the kernel's BPF_F_STRICT_ALIGNMENT for kernel
 * programs and --raw: every access of more than one byte aligned to its
 * size (packet data counted from NET_IP_ALIGN, 2). graft's own programs
 * run on x86-64, where unaligned accesses are fine.
 *
 * Exit 0: every program accepted; 1: one was rejected; 2: usage or load error.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eim/eim.h"
#include "loader/loader.h"
#include "runtime/load.h"
#include "verifier/verifier.h"
#include "vm/vm.h"
#include "hexline.h"
#include "raw_input.h"

/* A rejection is told with err's message when there is one: under EIM it
 * names the class and the capability, not only the verifier's rule. */
static int report(const char *what, const struct gver_result *res, int log_level,
                  const struct graft_err *err)
{
    if (res->log && res->log[0] && (log_level > 0 || !res->accepted))
        fputs(res->log, res->accepted ? stdout : stderr);
    if (res->accepted) {
        char worst[96];
        if (res->max_path_insns == UINT64_MAX)   /* a kernel program's may_goto or iterator loop */
            snprintf(worst, sizeof(worst), "worst case bounded only by the kernel (may_goto counter, iterator)");
        else
            snprintf(worst, sizeof(worst), "worst case %llu insns per run", (unsigned long long)res->max_path_insns);
        printf("%s: accepted (%s, %llu insns explored, stack %u bytes, %.3f ms)\n",
               what, worst, (unsigned long long)res->states_explored, res->max_stack_depth, res->ms);
        return 0;
    }
    if (err && err->msg[0])
        fprintf(stderr, "%s: rejected: %s\n", what, err->msg);
    else
        fprintf(stderr, "%s: rejected at insn %lld: %s\n", what, (long long)res->fail_insn, res->reason);
    return 1;
}

/* What --raw is given besides the instructions. */
struct raw_opts {
    uint32_t ctx_size;
    int ktype;                 /* --prog-type, 0: none (graft's raw policy) */
    char section[128];
    int privileged;
    int strict_align;          /* --strict-alignment */
    struct raw_maps maps;
};

static int verify_raw(const struct raw_opts *ro, uint32_t rights, uint64_t insn_budget, int log_level)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err = {0};
    if (hexline_read_program(stdin, &insns, &n, &err) < 0)
        return cli_fail_err(EXIT_USAGE, "verify", &err);
    if (raw_maps_bind(&ro->maps, insns, n, &err) < 0) {
        free(insns);
        return cli_fail_err(EXIT_USAGE, "verify", &err);
    }
    struct gver_policy *policy;
    if (ro->ktype) {
        /* a kernel program type: its context, helpers and return rule */
        policy = raw_kernel_policy(ro->ktype, ro->section, ro->privileged ? KMODE_PRIVILEGED : KMODE_DEFAULT,
                                   rights, insn_budget);
    } else {
        /* no type: the verifier's observe-only policy, plus what --allow
         * grants */
        policy = gver_policy_raw(ro->ctx_size);
        if (policy) {
            gver_policy_grant(policy, rights);
            policy->insn_budget = insn_budget;
            policy->allow_ptr_leaks = policy->allow_uninit_stack = policy->spec_bypass = ro->privileged;
        }
    }
    if (!policy) {
        free(insns);
        return cli_fail(1, "verify", "out of memory");
    }
    policy->strict_align = ro->strict_align;
    struct gver_input in = { .insns = insns, .n = n, .maps = ro->maps.defs, .n_maps = ro->maps.n,
                             .map_lock_offs = ro->maps.locks, .map_kptrs = ro->maps.kptrs, .policy = policy,
                             .log_level = log_level };
    struct gver_result res = {0};
    int rc = gver_verify(&in, &res, &err);
    int code = rc < 0 ? cli_fail_err(EXIT_USAGE, "verify", &err) : report("program", &res, log_level, &err);
    gver_result_free(&res);
    free(policy);
    free(insns);
    return code;
}

int cmd_verify(int argc, char **argv)
{
    const char *path = NULL, *section = NULL;
    struct cli_policy_opts popts = {0};
    int raw = 0, log_level = 0, privileged = 0, strict_align = 0;
    const char *btf_path = NULL;   /* target BTF for CO-RE instead of the kernel's */
    long ctx_size = 0;
    static struct raw_opts ro;   /* static: the map fixtures are large */
    struct graft_err perr = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int used = cli_policy_opt("verify", argc, argv, &i, &popts);
        if (used < 0)
            return EXIT_USAGE;
        if (used)
            continue;
        if (strcmp(a, "--raw") == 0) {
            raw = 1;
        } else if (strcmp(a, "--privileged") == 0) {
            privileged = 1;
        } else if (strcmp(a, "--strict-alignment") == 0) {
            strict_align = 1;
        } else if (strcmp(a, "--map") == 0 && i + 1 < argc) {
            if (raw_maps_add(&ro.maps, argv[++i], &perr) < 0)
                return cli_fail_err(EXIT_USAGE, "verify", &perr);
        } else if (strcmp(a, "--prog-type") == 0 && i + 1 < argc) {
            if (raw_parse_prog_type(argv[++i], &ro.ktype, ro.section, sizeof(ro.section), &perr) < 0)
                return cli_fail_err(EXIT_USAGE, "verify", &perr);
        } else if (strcmp(a, "--section") == 0 && i + 1 < argc) {
            section = argv[++i];
        } else if (strcmp(a, "--btf") == 0 && i + 1 < argc) {
            btf_path = argv[++i];
        } else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) {
            log_level = atoi(argv[++i]);
            if (log_level < 0 || log_level > 2)
                return cli_fail(EXIT_USAGE, "verify", "--log-level takes 0, 1 or 2");
        } else if (strcmp(a, "--ctx-size") == 0 && i + 1 < argc) {
            char *end;
            ctx_size = strtol(argv[++i], &end, 0);
            if (*end || ctx_size < 0 || ctx_size > 65536)
                return cli_fail(EXIT_USAGE, "verify", "--ctx-size takes a byte count up to 65536");
        } else if (a[0] == '-') {
            return cli_fail(EXIT_USAGE, "verify", "unknown option %s", a);
        } else if (!path) {
            path = a;
        } else {
            return cli_fail(EXIT_USAGE, "verify", "more than one object given");
        }
    }
    if (raw) {
        if (btf_path)
            return cli_fail(EXIT_USAGE, "verify", "--btf is for objects (CO-RE relocations); --raw has none");
        if (path)
            return cli_fail(EXIT_USAGE, "verify", "--raw reads stdin; give no OBJ");
        if (popts.eim_path)
            return cli_fail(EXIT_USAGE, "verify", "--raw takes no EIM class");
        if (ro.ktype && ctx_size)
            return cli_fail(EXIT_USAGE, "verify", "--prog-type gives the context; drop --ctx-size");
        cli_warn_rights("verify", popts.rights);
        ro.ctx_size = (uint32_t)ctx_size;
        ro.privileged = privileged;
        ro.strict_align = strict_align;
        return verify_raw(&ro, popts.rights, popts.insn_budget, log_level);
    }
    if (ro.maps.n || ro.ktype)
        return cli_fail(EXIT_USAGE, "verify", "--map and --prog-type are for --raw (an object has its own)");
    if (!path)
        return cli_fail(EXIT_USAGE, "verify", "no object given");
    if (privileged && popts.eim_path)
        return cli_fail(EXIT_USAGE, "verify", "--privileged is the kernel's policy; it takes no EIM class");
    if (privileged)
        printf("graft verify: --privileged: the kernel's rules for root, offline; graft loads nothing under them\n");

    struct graft_err err = {0};
    struct geim_spec *spec = NULL;
    struct grt_grant grant;
    int worst = cli_policy_grant("verify", &popts, &spec, &grant);
    if (worst)
        return worst;
    struct gobj *obj;
    const struct gobj_opts oopts = { .sz = sizeof(oopts), .keep_broken_progs = true,
                                     .target_btf_path = btf_path };
    if (gobj_open_file(path, &oopts, &obj, &err) < 0) {
        geim_free(spec);
        return cli_fail_err(EXIT_USAGE, "verify", &err);
    }
    if (!spec) {
        /* as graft load does without a class; under --privileged, the
         * kernel's kfuncs graft knows are present, as in the kernel */
        bool *was_weak = privileged ? calloc(obj->n_externs + 1, sizeof(bool)) : NULL;
        for (uint32_t i = 0; was_weak && i < obj->n_externs; i++)
            if (obj->externs[i].kind == GOBJ_EXTERN_KSYM_FUNC && gver_kernel_kfunc_find(obj->externs[i].name)) {
                was_weak[i] = obj->externs[i].weak;
                obj->externs[i].weak = false;
            }
        gobj_absent_weak_externs(obj);
        for (uint32_t i = 0; was_weak && i < obj->n_externs; i++)
            obj->externs[i].weak |= was_weak[i];
        free(was_weak);
    }
    int matched = 0;
    for (uint32_t i = 0; i < obj->n_progs; i++) {
        const struct gobj_prog *p = &obj->progs[i];
        if (section && strcmp(p->section, section) != 0 && strcmp(p->name, section) != 0)
            continue;
        matched++;
        struct gver_result res = {0};
        char what[256];
        snprintf(what, sizeof(what), "%s (%s)", p->name, p->section);
        graft_err_clear(&err);
        if (p->load_error[0]) {
            fprintf(stderr, "%s: rejected: cannot be built: %s\n", what, p->load_error);
            worst = worst > 1 ? worst : 1;
            continue;
        }
        int kernel = p->type == GPROG_KERNEL || privileged;
        if (kernel && spec) {
            fprintf(stderr, "%s: rejected: a kernel %s program has no EIM class\n", what,
                    gprog_ktype_name(p->ktype));
            worst = worst > 1 ? worst : 1;
            continue;
        }
        if (strict_align && !kernel)
            fprintf(stderr, "%s: note: --strict-alignment applies to kernel programs only; "
                    "graft's own run on x86-64, where unaligned accesses are fine\n", what);
        int rc = kernel ? raw_verify_kernel_prog(obj, p, privileged ? KMODE_PRIVILEGED : KMODE_DEFAULT, strict_align,
                                                 popts.rights, popts.insn_budget, log_level, &res, &err)
                        : grt_verify(obj, p, &grant, log_level, &res, &err);
        /* Under EIM a broken capability (wrong entry, ungranted host
         * function) is a rejection too, found before the verifier runs. */
        int code = rc < 0 ? cli_fail_err(spec ? 1 : EXIT_USAGE, "verify", &err)
                          : report(what, &res, log_level, &err);
        if (p->type == GPROG_KERNEL && rc >= 0 && res.accepted)
            printf("%s: verified; not attachable by graft (kernel %s program)\n", what,
                   gprog_ktype_name(p->ktype));
        /* what the program may do to its host, granted or not */
        char rights[1024];
        grt_rights_describe(obj, p, &grant, rights, sizeof(rights));
        printf("%s: rights: %s\n", what, rights);
        if (code > worst)
            worst = code;
        gver_result_free(&res);
    }
    if (!matched)
        worst = section ? cli_fail(EXIT_USAGE, "verify", "%s has no program or section named %s", path, section)
                        : cli_fail(EXIT_USAGE, "verify", "%s holds no programs", path);
    gobj_free(obj);
    geim_free(spec);
    return worst;
}
