/*
 * eim_glue.c - the policy options the commands share (--eim SPEC --class
 * NAME, --allow RIGHTS, --insn-budget N) turned into the struct grt_grant
 * that runtime/load.h builds every program's policy from, and
 * `graft eim check`.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eim/eim.h"
#include "runtime/load.h"

int cli_open_eim(const char *path, const char *class_name, struct geim_spec **spec,
                 struct graft_err *err)
{
    int rc = geim_load(path, spec, err);
    if (rc < 0)
        return rc;
    if (!geim_find_class(*spec, class_name)) {
        geim_free(*spec);
        *spec = NULL;
        return graft_errf(err, -ENOENT, "%s declares no extension class '%s'", path, class_name);
    }
    return 0;
}

int cli_policy_opt(const char *cmd, int argc, char **argv, int *i, struct cli_policy_opts *o)
{
    const char *a = argv[*i], *val = NULL;
    struct graft_err err = {0};
    if (strncmp(a, "--allow=", 8) == 0) {
        val = a + 8;
    } else if (strcmp(a, "--allow") == 0 && *i + 1 < argc) {
        val = argv[++*i];
    } else if (strcmp(a, "--eim") == 0 && *i + 1 < argc) {
        o->eim_path = argv[++*i];
        return 1;
    } else if (strcmp(a, "--class") == 0 && *i + 1 < argc) {
        o->class_name = argv[++*i];
        return 1;
    } else if (strcmp(a, "--insn-budget") == 0 && *i + 1 < argc) {
        char *end;
        const char *v = argv[++*i];
        unsigned long long n = strtoull(v, &end, 10);
        if (!*v || *end || v[0] == '-' || n == 0)
            return cli_fail(EXIT_USAGE, cmd, "--insn-budget takes a positive instruction count, not '%s'", v), -1;
        o->insn_budget = n;
        return 1;
    } else {
        return 0;
    }
    uint32_t r;
    if (gver_rights_parse(val, &r, &err) < 0)
        return cli_fail(EXIT_USAGE, cmd, "--allow %s: %s", val, err.msg), -1;
    o->rights |= r;
    return 1;
}

/* What each right lets a program do, for the warning. */
static const char *right_effect(uint32_t right)
{
    switch (right) {
    case GVER_RIGHT_WRITE_USER: return "write the host's memory (bpf_probe_write_user)";
    case GVER_RIGHT_OVERRIDE: return "skip host functions and choose their results (override/, replace/, bpf_override_return)";
    case GVER_RIGHT_SIGNAL: return "send signals to the host (bpf_send_signal[_thread])";
    default: return "?";
    }
}

void cli_warn_rights(const char *cmd, uint32_t rights)
{
    for (uint32_t bit = 1; bit & GVER_RIGHTS_HOST_WRITES; bit <<= 1)
        if (rights & bit)
            fprintf(stderr, "graft %s: WARNING: --allow %s: extensions may %s; no EIM class limits them\n", cmd,
                    gver_right_name(bit), right_effect(bit));
}

int cli_policy_grant(const char *cmd, const struct cli_policy_opts *o, struct geim_spec **spec,
                     struct grt_grant *g)
{
    *spec = NULL;
    memset(g, 0, sizeof(*g));
    if (!o->eim_path != !o->class_name)
        return cli_fail(EXIT_USAGE, cmd, "--eim and --class go together");
    if (o->eim_path && o->rights)
        return cli_fail(EXIT_USAGE, cmd,
                        "--allow does not combine with --eim: class '%s' decides what its programs may do "
                        "(grant rights in the class: helpers, override: true)", o->class_name);
    struct graft_err err = {0};
    if (o->eim_path && cli_open_eim(o->eim_path, o->class_name, spec, &err) < 0)
        return cli_fail_err(EXIT_USAGE, cmd, &err);
    static char how[32];
    snprintf(how, sizeof(how), "graft %s", cmd);
    g->spec = *spec;
    g->class_name = o->class_name;
    g->rights = o->rights;
    g->insn_budget = o->insn_budget;
    g->cmd = how;
    cli_warn_rights(cmd, o->rights);
    return 0;
}

int cmd_eim(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check") != 0)
        return cli_fail(EXIT_USAGE, "eim", "expected `graft eim check SPEC [--host BINARY]`");
    return geim_cmd_check(argc - 1, argv + 1);
}
