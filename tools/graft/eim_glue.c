/*
 * eim_glue.c - the EIM options the commands share (--eim SPEC --class NAME),
 * and `graft eim check`.
 */
#include "cli.h"

#include <errno.h>
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

int cli_verify_prog(const struct gobj *obj, const struct gobj_prog *prog,
                    const struct geim_spec *spec, const char *class_name, int log_level,
                    struct gver_result *res, struct graft_err *err)
{
    if (spec)
        return geim_verify(spec, class_name, obj, prog, log_level, res, err);
    return grt_verify(obj, prog, NULL, log_level, res, err);
}

int cmd_eim(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check") != 0)
        return cli_fail(EXIT_USAGE, "eim", "expected `graft eim check SPEC [--host BINARY]`");
    return geim_cmd_check(argc - 1, argv + 1);
}
