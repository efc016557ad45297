/*
 * cmd_prog.c - graft prog run: verify one program of an object and run it
 * on a given context in this process, like the kernel's BPF_PROG_TEST_RUN.
 *
 *   graft prog run OBJ [--section S] [--ctx FILE] [--repeat N] [--interpret]
 *                      [--allow RIGHTS] [--insn-budget N]
 *
 * The program gets the policy `graft load` would give it without a class:
 * observe-only unless --allow grants more (runtime/load.h).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers/helpers.h"
#include "loader/loader.h"
#include "runtime/instance.h"
#include "runtime/load.h"

static int read_file(const char *path, void **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *len = n;
    return 0;
}

static void print_trace(const char *line, void *arg)
{
    (void)arg;
    fputs(line, stdout);
    if (line[0] && line[strlen(line) - 1] != '\n')
        fputc('\n', stdout);
}

struct run_opts {
    const char *path, *section, *ctx_path;
    long repeat;
    enum gvm_engine engine;
    struct cli_policy_opts policy;   /* --allow, --insn-budget (no EIM class here) */
};

static int parse(int argc, char **argv, struct run_opts *o)
{
    *o = (struct run_opts){ .repeat = 1, .engine = GVM_ENGINE_JIT };
    if (argc < 2 || strcmp(argv[1], "run") != 0)
        return cli_fail(EXIT_USAGE, "prog", "expected `graft prog run OBJ ...`");
    for (int i = 2; i < argc; i++) {
        int used = cli_policy_opt("prog", argc, argv, &i, &o->policy);
        if (used < 0)
            return EXIT_USAGE;
        if (used)
            continue;
        if (strcmp(argv[i], "--section") == 0 && i + 1 < argc)
            o->section = argv[++i];
        else if (strcmp(argv[i], "--ctx") == 0 && i + 1 < argc)
            o->ctx_path = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            char *end;
            o->repeat = strtol(argv[++i], &end, 10);
            if (*end || o->repeat < 1 || o->repeat > 1000000000)
                return cli_fail(EXIT_USAGE, "prog", "--repeat takes a count from 1 to 1e9");
        } else if (strcmp(argv[i], "--interpret") == 0)
            o->engine = GVM_ENGINE_INTERP;
        else if (argv[i][0] == '-')
            return cli_fail(EXIT_USAGE, "prog", "unknown option %s", argv[i]);
        else if (!o->path)
            o->path = argv[i];
        else
            return cli_fail(EXIT_USAGE, "prog", "more than one object given");
    }
    if (o->policy.eim_path || o->policy.class_name)
        return cli_fail(EXIT_USAGE, "prog", "prog run takes no EIM class (host functions and globals do not exist here)");
    return o->path ? 0 : cli_fail(EXIT_USAGE, "prog", "no object given");
}

static int run_program(const struct run_opts *o, struct gobj *obj, struct gobj_prog *prog)
{
    struct graft_err err = {0};
    struct geim_spec *no_spec;
    struct grt_grant grant;
    int rc = cli_policy_grant("prog run", &o->policy, &no_spec, &grant);
    if (rc)
        return rc;
    grant.no_class = 1;    /* prog run takes no class: offer only --allow */
    /* the same policy grt_verify checks against, for the context's size */
    struct gver_policy *policy = grt_policy_for(obj, prog, &grant, &err);
    if (!policy)
        return cli_fail_err(1, "prog", &err);
    struct gver_result res = {0};
    rc = grt_verify(obj, prog, &grant, 0, &res, &err);
    if (rc < 0 || !res.accepted) {
        if (res.log && res.log[0])
            fputs(res.log, stderr);
        rc = rc < 0 ? cli_fail_err(EXIT_USAGE, "prog", &err)
                    : cli_fail(1, "prog", "%s rejected at insn %lld: %s", prog->name,
                               (long long)res.fail_insn, res.reason);
        gver_result_free(&res);
        free(policy);
        return rc;
    }
    gver_result_free(&res);
    gobj_prog_drop_unreached_calls(prog);   /* accepted: absent functions unreachable */

    /* The context: the file's bytes, or zeroes the size of the layout. */
    size_t ctx_len = policy->ctx ? policy->ctx->size : 0;
    void *ctx = NULL;
    if (o->ctx_path) {
        size_t got = 0;
        if ((rc = read_file(o->ctx_path, &ctx, &got)) < 0) {
            free(policy);
            return cli_fail(EXIT_USAGE, "prog", "--ctx %s: %s", o->ctx_path, strerror(-rc));
        }
        if (got < ctx_len) {
            rc = cli_fail(EXIT_USAGE, "prog", "--ctx %s is %zu bytes; %s programs need %zu",
                          o->ctx_path, got, policy->ctx->name, ctx_len);
            free(policy);
            free(ctx);
            return rc;
        }
        ctx_len = got;
    } else {
        ctx = calloc(1, ctx_len ? ctx_len : 8);
    }
    free(policy);

    struct gmap **maps;
    if ((rc = grt_create_maps(obj, -1, NULL, &maps, &err)) < 0) {
        free(ctx);
        return cli_fail_err(1, "prog", &err);
    }
    /* The maps are this process's alone: remove their names at once, so
     * that however the run ends (Ctrl-C in a long --repeat, a kill) no
     * object is left in /dev/shm; the mappings live until we exit. */
    for (uint32_t i = 0; i < obj->n_maps; i++)
        gmap_unlink(gmap_shm_name(maps[i]));
    struct grt_instance *inst;
    if ((rc = grt_instance_create(prog->insns, prog->n_insns, maps, obj->n_maps, o->engine, &inst, &err)) < 0) {
        grt_destroy_maps(maps, obj->n_maps, 0);
        free(ctx);
        return cli_fail_err(1, "prog", &err);
    }
    ghelper_set_trace_sink(print_trace, NULL);
    struct ghelper_run *run = ghelper_run_state();
    uint64_t r0 = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < o->repeat && rc == 0; i++) {
        run->ctx = ctx;
        run->tail_calls = 0;
        rc = gvm_prog_run(inst->prog, ctx, ctx_len, &r0, &err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)o->repeat;
    if (rc == 0)
        printf("%s: r0 = %llu (0x%llx)  %.1f ns/run over %ld run(s), %s\n", prog->name,
               (unsigned long long)r0, (unsigned long long)r0, ns, o->repeat,
               o->engine == GVM_ENGINE_JIT ? "jit" : "interpreter");
    else
        cli_fail_err(1, "prog", &err);
    grt_instance_free(inst);
    grt_destroy_maps(maps, obj->n_maps, 0);
    free(ctx);
    return rc == 0 ? 0 : 1;
}

int cmd_prog(int argc, char **argv)
{
    struct run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    struct gobj *obj;
    struct graft_err err = {0};
    if (gobj_open_file(o.path, NULL, &obj, &err) < 0)
        return cli_fail_err(EXIT_USAGE, "prog", &err);
    gobj_absent_weak_externs(obj);        /* prog run takes no class */
    struct gobj_prog *prog = o.section ? gobj_find_prog(obj, o.section) : obj->n_progs ? &obj->progs[0] : NULL;
    if (!prog)
        rc = cli_fail(EXIT_USAGE, "prog", "%s has no program %s", o.path, o.section ? o.section : "at all");
    else
        rc = run_program(&o, obj, prog);
    gobj_free(obj);
    return rc;
}
