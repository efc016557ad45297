/*
 * cmd_verify.c - graft verify: run the verifier over an object's programs,
 * or over raw instructions (--raw), and say why anything is rejected.
 *
 *   graft verify OBJ [--section S] [--log-level 0|1|2] [--eim SPEC --class NAME]
 *   graft verify --raw [--ctx-size N] [--log-level 0|1|2]   (hex bytes on stdin)
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

/* A rejection is told with err's message when there is one: under EIM it
 * names the class and the capability, not only the verifier's rule. */
static int report(const char *what, const struct gver_result *res, int log_level,
                  const struct graft_err *err)
{
    if (res->log && res->log[0] && (log_level > 0 || !res->accepted))
        fputs(res->log, res->accepted ? stdout : stderr);
    if (res->accepted) {
        printf("%s: accepted (worst case %llu insns per run, %llu insns explored, stack %u bytes, %.3f ms)\n",
               what, (unsigned long long)res->max_path_insns, (unsigned long long)res->states_explored,
               res->max_stack_depth, res->ms);
        return 0;
    }
    if (err && err->msg[0])
        fprintf(stderr, "%s: rejected: %s\n", what, err->msg);
    else
        fprintf(stderr, "%s: rejected at insn %lld: %s\n", what, (long long)res->fail_insn, res->reason);
    return 1;
}

static int verify_raw(uint32_t ctx_size, int log_level)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err = {0};
    if (hexline_read_program(stdin, &insns, &n, &err) < 0)
        return cli_fail_err(EXIT_USAGE, "verify", &err);
    struct gver_policy *policy = gver_policy_raw(ctx_size);
    struct gver_input in = { .insns = insns, .n = n, .policy = policy, .log_level = log_level };
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
    const char *path = NULL, *section = NULL, *eim_path = NULL, *class_name = NULL;
    int raw = 0, log_level = 0;
    long ctx_size = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--raw") == 0) {
            raw = 1;
        } else if (strcmp(a, "--section") == 0 && i + 1 < argc) {
            section = argv[++i];
        } else if (strcmp(a, "--eim") == 0 && i + 1 < argc) {
            eim_path = argv[++i];
        } else if (strcmp(a, "--class") == 0 && i + 1 < argc) {
            class_name = argv[++i];
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
    if (raw)
        return path ? cli_fail(EXIT_USAGE, "verify", "--raw reads stdin; give no OBJ")
                    : verify_raw((uint32_t)ctx_size, log_level);
    if (!path)
        return cli_fail(EXIT_USAGE, "verify", "no object given");
    if (!eim_path != !class_name)
        return cli_fail(EXIT_USAGE, "verify", "--eim and --class go together");

    struct graft_err err = {0};
    struct geim_spec *spec = NULL;
    if (eim_path && cli_open_eim(eim_path, class_name, &spec, &err) < 0)
        return cli_fail_err(EXIT_USAGE, "verify", &err);
    struct gobj *obj;
    if (gobj_open_file(path, NULL, &obj, &err) < 0) {
        geim_free(spec);
        return cli_fail_err(EXIT_USAGE, "verify", &err);
    }
    int worst = 0, matched = 0;
    for (uint32_t i = 0; i < obj->n_progs; i++) {
        const struct gobj_prog *p = &obj->progs[i];
        if (section && strcmp(p->section, section) != 0 && strcmp(p->name, section) != 0)
            continue;
        matched++;
        struct gver_result res = {0};
        char what[256];
        snprintf(what, sizeof(what), "%s (%s)", p->name, p->section);
        int rc = cli_verify_prog(obj, p, spec, class_name, log_level, &res, &err);
        /* Under EIM a broken capability (wrong entry, ungranted host
         * function) is a rejection too, found before the verifier runs. */
        int code = rc < 0 ? cli_fail_err(spec ? 1 : EXIT_USAGE, "verify", &err)
                          : report(what, &res, log_level, &err);
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
