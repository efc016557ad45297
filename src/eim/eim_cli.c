/*
 * eim_cli.c - `graft eim check SPEC [--host BINARY]`.
 *
 * argv[0] is the subcommand name ("check"). Prints what the spec declares,
 * what each class grants and, with --host, how the host binary compares.
 * Exit status: 0 all good, 1 host mismatches, 2 spec (or usage) errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eim/eim_int.h"

static void print_arg(const struct geim_arg *a, const struct geim_spec *s)
{
    printf("%s%s%s", a->type.text, a->name[0] ? " " : "", a->name);
    if (a->has_range)
        printf(" in [%" PRId64 ", %" PRId64 "]", a->min, a->max);
    if (a->size_arg >= 0)
        printf(" (non-null, size)");
    (void)s;
}

static void print_args(const struct geim_arg *args, uint32_t n, const struct geim_spec *s)
{
    printf("(");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            printf(", ");
        print_arg(&args[i], s);
    }
    printf(")");
}

static const char *acc_name(uint32_t a)
{
    return !a ? "none" : (a & GVER_W) ? "write" : "read";
}

static void print_spec(const struct geim_spec *s)
{
    printf("spec %s%s%s\n", s->path, s->host[0] ? " for host " : "", s->host);
    for (uint32_t i = 0; i < s->n_types; i++) {
        printf("  type struct %s (%u bytes):", s->types[i].name, s->types[i].size);
        for (uint32_t k = 0; k < s->types[i].n_fields; k++)
            printf(" %s@%u/%u", s->types[i].fields[k].name, s->types[i].fields[k].offset, s->types[i].fields[k].size);
        printf("\n");
    }
    for (uint32_t i = 0; i < s->n_entries; i++) {
        const struct geim_entry *e = &s->entries[i];
        printf("  entry %s %s %s", geim_entry_kind_name(e->kind), e->ret.type.text, e->name);
        print_args(e->args, e->n_args, s);
        if (e->ret.has_range)
            printf(" returns [%" PRId64 ", %" PRId64 "]", e->ret.min, e->ret.max);
        printf("\n");
    }
    for (uint32_t i = 0; i < s->n_states; i++)
        printf("  state %s %s (%s)\n", s->states[i].type.text, s->states[i].name,
               s->states[i].writable ? "writable" : "read-only");
    for (uint32_t i = 0; i < s->n_funcs; i++) {
        const struct geim_func *f = &s->funcs[i];
        printf("  function ");
        print_arg(&f->ret, s);
        printf(" %s", f->name);
        print_args(f->args, f->n_args, s);
        printf("\n");
    }
    for (uint32_t i = 0; i < s->n_groups; i++) {
        printf("  helper group %s:", s->groups[i].name);
        for (uint32_t k = 0; k < s->groups[i].n_helpers; k++) {
            const struct ghelper_proto *h = ghelper_proto(s->groups[i].helpers[k]);
            printf(" %s", h ? h->name : "?");
        }
        printf("\n");
    }
    for (uint32_t i = 0; i < s->n_classes; i++) {
        const struct geim_class *c = &s->classes[i];
        const struct geim_entry *e = &s->entries[c->entry];
        printf("  class %s -> entry %s\n    helpers:", c->name, e->name);
        for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++)
            if (c->helpers_allowed[id / 64] & (1ull << (id % 64))) {
                const struct ghelper_proto *h = ghelper_proto(id);
                printf(" %s", h ? h->name : "?");
            }
        printf("\n    functions:");
        for (uint32_t k = 0; k < c->n_funcs; k++)
            printf(" %s", s->funcs[c->funcs[k]].name);
        printf("\n    state:");
        for (uint32_t k = 0; k < c->n_states; k++)
            printf(" %s(%s)", s->states[c->states[k]].name, c->state_write[k] ? "write" : "read");
        printf("\n    args:");
        for (uint32_t k = 0; k < e->n_args; k++) {
            printf(" %s=%s", e->args[k].name, acc_name(c->args[k].access));
            const struct geim_arg_right *r = &c->args[k];
            if (r->field_access) {
                const struct geim_struct *st = &s->types[e->args[k].type.struct_idx];
                printf("{");
                for (uint32_t f = 0; f < st->n_fields; f++)
                    printf("%s%s=%s", f ? "," : "", st->fields[f].name, acc_name(r->field_access[f]));
                printf("}");
            }
        }
        printf("\n    insn_budget: ");
        c->insn_budget ? printf("%" PRIu64, c->insn_budget) : printf("unlimited");
        printf("  mem_budget: ");
        c->mem_budget ? printf("%" PRIu64 " bytes", c->mem_budget) : printf("unlimited");
        if (c->override)
            printf("\n    override: %s's return value", e->name);
        printf("\n");
    }
}

int geim_cmd_check(int argc, char **argv)
{
    const char *spec_path = NULL, *host = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strncmp(argv[i], "--host=", 7))
            host = argv[i] + 7;
        else if (argv[i][0] != '-' && !spec_path)
            spec_path = argv[i];
        else {
            fprintf(stderr, "graft eim check: unexpected argument '%s'\n", argv[i]);
            spec_path = NULL;
            break;
        }
    }
    if (!spec_path) {
        fprintf(stderr, "usage: graft eim check SPEC.yaml [--host BINARY]\n");
        return 2;
    }
    struct graft_err err = { 0 };
    struct geim_spec *s = NULL;
    if (geim_load(spec_path, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    print_spec(s);
    int status = 0;
    if (host) {
        struct geim_report r;
        if (geim_check_host(s, host, &r, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            geim_free(s);
            return 2;
        }
        printf("host %s:\n%s", host, r.text ? r.text : "");
        printf("host check: %u facts compared, %u mismatch%s, %u not in DWARF\n", r.n_checked, r.n_mismatch,
               r.n_mismatch == 1 ? "" : "es", r.n_no_dwarf);
        status = r.n_mismatch ? 1 : 0;
        geim_report_free(&r);
    }
    geim_free(s);
    return status;
}
