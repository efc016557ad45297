/*
 * test_eim.c - the EIM layer end to end.
 *
 *   test_eim EXT_DIR HOST_BINARY      (run from tests/eim/)
 *
 * 1. spec parsing: every error path, each asserting the message (location,
 *    what, and the suggested name);
 * 2. host checking: app.eim.yaml matches the real host (built with -g);
 *    specs/bad_host.eim.yaml's mismatches are each reported; the
 *    GRAFT_ENTRY note is listed;
 * 3. policies: what geim_policy_for_class builds;
 * 4. the catalogue: every ext/NAME.bpf.c through geim_verify (the real
 *    verifier), accepted or rejected with class, capability and instruction
 *    named.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eim/eim.h"
#include "runtime/load.h"

static int failures, checks;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
        }                                                                    \
    } while (0)

static int has_all(const char *msg, const char *const *subs)
{
    for (int i = 0; subs[i]; i++)
        if (!strstr(msg, subs[i]))
            return 0;
    return 1;
}

/* ---- 1. spec parsing ---- */

/* A valid base every error case edits one thing in. */
#define BASE_TYPES                                              \
    "types:\n"                                                  \
    "  - name: request\n"                                       \
    "    size: 16\n"                                            \
    "    fields:\n"                                             \
    "      - { name: id, offset: 0, size: 8 }\n"                \
    "      - { name: len, offset: 8, size: 4 }\n"

struct parse_case {
    const char *name;
    const char *yaml;
    const char *want[4];
};

static const struct parse_case parse_cases[] = {
    { "typo in a class key",
      "entries:\n"
      "  - { name: f, kind: function }\n"
      "classes:\n"
      "  - name: firewall\n"
      "    entry: f\n"
      "    insn_budjet: 10\n",
      { "t.yaml:6:5: unknown key 'insn_budjet' in class 'firewall' (did you mean 'insn_budget'?)" } },
    { "typo in a top-level key",
      "entries: []\nclases: []\n",
      { "t.yaml:2:1: unknown key 'clases' in the spec (did you mean 'classes'?)" } },
    { "missing entries",
      "classes: []\n",
      { "t.yaml:1:1: missing key 'entries' in the spec" } },
    { "missing kind",
      "entries:\n  - name: f\n",
      { "t.yaml:2:5: missing key 'kind' in entry 'f'" } },
    { "missing name",
      "entries:\n  - kind: function\n",
      { "t.yaml:2:5: missing key 'name' in an entry" } },
    { "kind typo",
      "entries:\n  - { name: f, kind: functon }\n",
      { "t.yaml:2:22:", "kind of entry 'f' must be function, syscall or source, not 'functon'", "(did you mean 'function'?)" } },
    { "unknown syscall",
      "entries:\n  - { name: wrte, kind: syscall }\n",
      { "t.yaml:2:5:", "no syscall named 'wrte'", "(did you mean 'write'?)" } },
    { "empty range",
      "entries: []\nfunctions:\n  - name: g\n    args: [{ decl: int x, range: [10, 1] }]\n",
      { "t.yaml:4:34:", "range [10, 1] is empty" } },
    { "range on a pointer",
      BASE_TYPES
      "entries: []\nfunctions:\n  - name: g\n    args: [{ decl: struct request *r, size: n, range: [0, 1] }, int n]\n",
      { "t.yaml:10:", "a range needs an integer type, not 'struct request *'" } },
    { "range not a pair",
      "entries: []\nfunctions:\n  - name: g\n    args: [{ decl: int x, range: [1] }]\n",
      { "t.yaml:4:", "range must be [min, max]" } },
    { "range bound not an integer",
      "entries: []\nfunctions:\n  - name: g\n    args: [{ decl: int x, range: [0, lots] }]\n",
      { "t.yaml:4:", "range max must be an integer, not 'lots'" } },
    { "pointer without size",
      "entries: []\nfunctions:\n  - name: g\n    args: [char *msg, int n]\n",
      { "t.yaml:4:12:", "argument 'msg' of function 'g': a pointer needs 'size: ARG'" } },
    { "size not the next argument",
      "entries: []\nfunctions:\n  - name: g\n    args: [{ decl: char *msg, size: k }, int n, int k]\n",
      { "t.yaml:4:", "its size must be the next argument ('k' is not)" } },
    { "nonnull neither true nor false",
      "entries: []\nfunctions:\n  - name: g\n    args: [{ decl: char *m, size: n, nonnull: maybe }, int n]\n",
      { "t.yaml:4:", "nonnull must be true or false, not 'maybe'" } },
    { "condition on an entry argument",
      "entries:\n  - { name: f, kind: function, args: [{ decl: int x, range: [0, 1] }] }\n",
      { "t.yaml:2:39:", "argument 1 of entry 'f': pre-conditions (range) belong to host functions, not entry arguments" } },
    { "condition other than range on an entry's return value",
      "entries:\n  - { name: f, kind: function, ret: { decl: int, nonnull: true } }\n",
      { "t.yaml:2:", "'ret' of entry 'f': pre-conditions (nonnull) belong to host functions" } },
    { "override not a boolean",
      "entries:\n  - { name: f, kind: function, ret: int }\n"
      "classes:\n  - { name: c, entry: f, override: yes please }\n",
      { "t.yaml:4:", "override of class 'c' must be true or false, not 'yes please'" } },
    { "override of a syscall entry",
      "entries:\n  - { name: write, kind: syscall, ret: ssize_t }\n"
      "classes:\n  - { name: c, entry: write, override: true }\n",
      { "t.yaml:4:", "class 'c': override applies to function entries; entry 'write' is a syscall entry" } },
    { "override of an entry without a return type",
      "entries:\n  - { name: f, kind: function }\n"
      "classes:\n  - { name: c, entry: f, override: true }\n",
      { "t.yaml:4:", "override needs entry 'f' to declare its return type" } },
    { "unknown base type",
      "entries:\n  - { name: f, kind: function, args: [u33 x] }\n",
      { "t.yaml:2:", "unknown type 'u33' in 'u33 x'", "(did you mean 'u32'?)" } },
    { "unknown struct",
      BASE_TYPES
      "entries:\n  - { name: f, kind: function, args: [struct reqest *r] }\n",
      { "t.yaml:8:", "unknown type 'struct reqest'", "(did you mean 'request'?)" } },
    { "struct by value",
      BASE_TYPES
      "entries:\n  - { name: f, kind: function, args: [struct request r] }\n",
      { "t.yaml:8:", "passed by value is not supported" } },
    { "argument without a name",
      "entries:\n  - { name: f, kind: function, args: [int] }\n",
      { "t.yaml:2:", "declaration 'int' needs a name" } },
    { "duplicate entry",
      "entries:\n  - { name: f, kind: function }\n  - { name: f, kind: source }\n",
      { "t.yaml:3:13: duplicate entry 'f' (first declared at line 2)" } },
    { "duplicate argument",
      "entries:\n  - { name: f, kind: function, args: [int a, long a] }\n",
      { "t.yaml:2:", "duplicate argument 'a' in entry 'f'" } },
    { "duplicate key",
      "entries:\n  - { name: f, kind: function, kind: source }\n",
      { "t.yaml:2:", "duplicate key 'kind' in entry 'f'" } },
    { "duplicate class",
      "entries:\n  - { name: f, kind: function }\nclasses:\n  - { name: c, entry: f }\n  - { name: c, entry: f }\n",
      { "t.yaml:5:13: duplicate class 'c' (first declared at line 4)" } },
    { "duplicate state",
      "entries: []\nstate:\n  - { name: g, type: int }\n  - { name: g, type: u64 }\n",
      { "t.yaml:4:", "duplicate state 'g'" } },
    { "duplicate type field",
      "types:\n  - name: s\n    size: 8\n    fields:\n      - { name: a, offset: 0, size: 4 }\n      - { name: a, offset: 4, size: 4 }\nentries: []\n",
      { "t.yaml:6:", "duplicate field 'a' in type 's'" } },
    { "field outside its struct",
      "types:\n  - name: s\n    size: 8\n    fields:\n      - { name: a, offset: 6, size: 4 }\nentries: []\n",
      { "t.yaml:5:9:", "field 'a' of type 's': [6, 10) is outside the 8-byte struct" } },
    { "unknown entry in a class",
      "entries:\n  - { name: handle_request, kind: function }\nclasses:\n  - { name: c, entry: handle_requst }\n",
      { "t.yaml:4:23:", "class 'c' refers to unknown entry 'handle_requst'", "(did you mean 'handle_request'?)" } },
    { "unknown function in a class",
      "entries:\n  - { name: f, kind: function }\nfunctions:\n  - { name: app_log }\nclasses:\n  - { name: c, entry: f, functions: [app_lgo] }\n",
      { "t.yaml:6:", "class 'c' refers to unknown function 'app_lgo'", "(did you mean 'app_log'?)" } },
    { "unknown state in a class",
      "entries:\n  - { name: f, kind: function }\nstate:\n  - { name: g_requests, type: u64 }\nclasses:\n  - { name: c, entry: f, state: [g_request] }\n",
      { "t.yaml:6:", "class 'c' refers to unknown state 'g_request'", "(did you mean 'g_requests'?)" } },
    { "unknown group in a class",
      "entries:\n  - { name: f, kind: function }\nhelper_groups:\n  - { name: time, helpers: [ktime_get_ns] }\nclasses:\n  - { name: c, entry: f, groups: [tmie] }\n",
      { "t.yaml:6:", "class 'c' refers to unknown helper group 'tmie'", "(did you mean 'time'?)" } },
    { "unknown helper in a group",
      "entries: []\nhelper_groups:\n  - { name: time, helpers: [ktime_get_nss] }\n",
      { "t.yaml:3:29:", "unknown helper 'ktime_get_nss' in helper group 'time'", "(did you mean 'ktime_get_ns'?)" } },
    { "unknown helper in a class",
      "entries:\n  - { name: f, kind: function }\nclasses:\n  - { name: c, entry: f, helpers: [bpf_map_lookup_elme] }\n",
      { "t.yaml:4:", "unknown helper 'bpf_map_lookup_elme' in class 'c'", "(did you mean 'map_lookup_elem'?)" } },
    { "unknown argument in rights",
      "entries:\n  - { name: f, kind: function, args: [int len] }\nclasses:\n  - { name: c, entry: f, args: { lne: read } }\n",
      { "t.yaml:4:", "class 'c' refers to unknown argument 'lne'", "(did you mean 'len'?)" } },
    { "access typo",
      "entries:\n  - { name: f, kind: function, args: [int len] }\nclasses:\n  - { name: c, entry: f, args: { len: reed } }\n",
      { "t.yaml:4:", "must be read, write or none, not 'reed'", "(did you mean 'read'?)" } },
    { "unknown field in rights",
      BASE_TYPES
      "entries:\n  - { name: f, kind: function, args: [struct request *r] }\n"
      "classes:\n  - { name: c, entry: f, args: { r: { fields: { lenn: write } } } }\n",
      { "t.yaml:10:", "class 'c' refers to unknown field 'lenn'", "(did you mean 'len'?)" } },
    { "fields on a scalar argument",
      "entries:\n  - { name: f, kind: function, args: [int n] }\n"
      "classes:\n  - { name: c, entry: f, args: { n: { fields: { x: read } } } }\n",
      { "t.yaml:4:", "fields apply to 'struct NAME *' arguments, not 's32'" } },
    { "write grant on read-only state",
      "entries:\n  - { name: f, kind: function }\nstate:\n  - { name: g, type: int, access: read }\n"
      "classes:\n  - { name: c, entry: f, state: [{ name: g, access: write }] }\n",
      { "t.yaml:6:", "class 'c' grants write to state 'g', which is declared read-only (line 4)" } },
    { "function granted twice",
      "entries:\n  - { name: f, kind: function }\nfunctions:\n  - { name: h }\n"
      "classes:\n  - { name: c, entry: f, functions: [h, h] }\n",
      { "t.yaml:6:", "function 'h' is granted twice in class 'c'" } },
    { "budget not positive",
      "entries:\n  - { name: f, kind: function }\nclasses:\n  - { name: c, entry: f, mem_budget: -5 }\n",
      { "t.yaml:4:", "mem_budget must be positive" } },
    { "budget not a number",
      "entries:\n  - { name: f, kind: function }\nclasses:\n  - { name: c, entry: f, insn_budget: many }\n",
      { "t.yaml:4:", "insn_budget must be an integer, not 'many'" } },
    { "state of struct type",
      BASE_TYPES "entries: []\nstate:\n  - { name: g, type: struct request * }\n",
      { "t.yaml:9:", "state must be an integer global" } },
    { "wrong node kind",
      "entries: { name: f }\n",
      { "t.yaml:1:10:", "'entries' must be a list, not a mapping" } },
    { "unsupported version",
      "version: 2\nentries: []\n",
      { "t.yaml:1:10:", "version 2 is not supported" } },
    { "YAML syntax error",
      "entries: [\n  - { name: f\n",
      { "t.yaml:", "YAML syntax error" } },
    { "empty document",
      "",
      { "t.yaml: empty spec" } },
    { "function returning a pointer",
      "entries: []\nfunctions:\n  - { name: g, ret: char * }\n",
      { "t.yaml:3:", "host functions may not return pointers" } },
};

static void test_parse_errors(void)
{
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct geim_spec *s = NULL;
        struct graft_err err = { 0 };
        int rc = geim_load_mem(c->yaml, strlen(c->yaml), "t.yaml", &s, &err);
        CHECK(rc < 0 && !s, "parse '%s': expected an error, got rc=%d", c->name, rc);
        CHECK(has_all(err.msg, c->want), "parse '%s': message '%s' lacks '%s'", c->name, err.msg, c->want[0]);
        geim_free(s);
    }
}

static void test_parse_ok(struct geim_spec **out)
{
    struct graft_err err = { 0 };
    struct geim_spec *s = NULL;
    int rc = geim_load("app.eim.yaml", &s, &err);
    CHECK(rc == 0 && s, "app.eim.yaml: %s", err.msg);
    if (!s)
        exit(1);
    CHECK(s->n_types == 1 && s->types[0].n_fields == 4 && s->types[0].fields[3].offset == 16, "types");
    CHECK(s->n_entries == 4 && s->entries[2].kind == GEIM_ENTRY_SOURCE && s->entries[3].kind == GEIM_ENTRY_SYSCALL,
          "entries");
    CHECK(s->entries[0].args[0].type.kind == GEIM_T_PTR && s->entries[0].args[0].type.struct_idx == 0,
          "handle_request takes struct request *");
    CHECK(s->n_states == 2 && s->states[0].writable && !s->states[1].writable, "state rights");
    CHECK(s->n_funcs == 4 && s->funcs[0].args[0].size_arg == 1 && s->funcs[0].args[1].has_range &&
          s->funcs[0].args[1].max == 4096 && s->funcs[0].ret.min == -1 && !s->funcs[0].args[0].nullable,
          "app_log conditions");
    CHECK(!strcmp(s->funcs[1].name, "app_tag") && s->funcs[1].args[0].nullable, "app_tag's tag is nullable");
    CHECK(s->funcs[3].ret.has_range && s->funcs[3].ret.max == 99 && !s->funcs[3].ret.type.is_signed, "app_random post");
    const struct geim_class *c = geim_find_class(s, "observer");
    CHECK(c && c->n_funcs == 3 && c->n_states == 1 && !c->state_write[0] && c->insn_budget == 1000 &&
          c->mem_budget == 4096, "observer grants");
    CHECK(c && c->args[0].field_access && c->args[0].field_access[2] == 0 && c->args[0].field_access[0] == GVER_R,
          "observer field rights");
    c = geim_find_class(s, "header_filter");
    CHECK(c && c->args[0].access == GVER_R && c->args[1].access == 0, "header_filter arg rights");
    CHECK(!c || !c->override, "header_filter may not override");
    c = geim_find_class(s, "header_override");
    CHECK(c && c->override && s->entries[c->entry].ret.has_range && s->entries[c->entry].ret.min == 0 &&
          s->entries[c->entry].ret.max == 48, "header_override: override of parse_header, returns [0, 48]");
    c = geim_find_class(s, "counter");
    CHECK(c && c->n_states == 2 && c->state_write[0] && !c->state_write[1], "counter state rights");
    *out = s;
}

/* ---- 2. host ---- */

static void test_host(const struct geim_spec *s, const char *host)
{
    struct geim_report r;
    struct graft_err err = { 0 };
    int rc = geim_check_host(s, host, &r, &err);
    CHECK(rc == 0, "check_host: %s", err.msg);
    CHECK(r.n_mismatch == 0, "app.eim.yaml should match the host; report:\n%s", r.text ? r.text : "");
    CHECK(r.n_checked >= 15 && r.n_no_dwarf == 0, "checked %u facts, %u without DWARF", r.n_checked, r.n_no_dwarf);
    CHECK(r.text && strstr(r.text, "ok: entry after_parse: GRAFT_ENTRY site at 0x"), "source entry listed:\n%s",
          r.text ? r.text : "");
    geim_report_free(&r);

    struct geim_src_entry *v = NULL;
    uint32_t n = 0;
    rc = geim_list_src_entries(host, &v, &n, &err);
    CHECK(rc == 0 && n >= 1, "list_src_entries: rc=%d n=%u %s", rc, n, err.msg);
    if (n >= 1) {
        CHECK(!strcmp(v[0].name, "after_parse") && v[0].n_args == 2 && v[0].addr != 0 &&
              strstr(v[0].args, "8@%") && strstr(v[0].args, "-4@"),
              "after_parse site: '%s' args '%s'", v[0].name, v[0].args);
    }
    /* the site really is a 5-byte NOP in .text: read it back from the file */
    if (n >= 1) {
        FILE *f = fopen(host, "rb");
        unsigned char buf[5] = { 0 };
        /* non-PIE/PIE: file offset == vaddr for the first PT_LOAD of a
         * default gcc link; tolerate a different layout by searching */
        int found = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            if ((long)v[0].addr + 5 <= sz) {
                fseek(f, (long)v[0].addr, SEEK_SET);
                found = fread(buf, 1, 5, f) == 5;
            }
            fclose(f);
        }
        CHECK(found && !memcmp(buf, "\x0f\x1f\x44\x00\x00", 5), "GRAFT_ENTRY site is not nopl 0(%%rax,%%rax,1)");
    }
    free(v);

    struct geim_spec *bad = NULL;
    rc = geim_load("specs/bad_host.eim.yaml", &bad, &err);
    CHECK(rc == 0, "bad_host.eim.yaml loads: %s", err.msg);
    if (!bad)
        return;
    rc = geim_check_host(bad, host, &r, &err);
    CHECK(rc == 0, "check_host bad: %s", err.msg);
    const char *t = r.text ? r.text : "";
    static const char *const want[] = {
        "mismatch: struct request field len (specs/bad_host.eim.yaml:9): spec says offset 12 size 4, DWARF says offset 8 size 4",
        "mismatch: struct request (specs/bad_host.eim.yaml:10) has no field 'nope'",
        "mismatch: entry parse_header (specs/bad_host.eim.yaml:12): spec declares 1 argument, the host's DWARF has 2",
        "mismatch: entry handle_request argument 1 'r' (specs/bad_host.eim.yaml:13): spec says 'u32' (4 bytes), DWARF says a pointer of 8 bytes",
        "mismatch: entry app_missing (specs/bad_host.eim.yaml:14): no function 'app_missing'",
        "mismatch: entry before_parse (specs/bad_host.eim.yaml:15): no GRAFT_ENTRY(before_parse, ...) site",
        "mismatch: entry after_parse (specs/bad_host.eim.yaml:16): spec declares 1 arguments, the GRAFT_ENTRY site",
        "mismatch: state g_requests (specs/bad_host.eim.yaml:18): spec says 'u32' (4 bytes), DWARF's type is 8 bytes",
        "mismatch: state g_absent (specs/bad_host.eim.yaml:19): no global 'g_absent'",
        "mismatch: function app_log argument 2 'len' (specs/bad_host.eim.yaml:22): spec says 'u64' (8 bytes), DWARF says a value of 4 bytes",
        NULL,
    };
    for (int i = 0; want[i]; i++)
        CHECK(strstr(t, want[i]), "bad host report lacks\n  %s\nreport:\n%s", want[i], t);
    CHECK(r.n_mismatch == 10, "bad host: %u mismatches, want 10\n%s", r.n_mismatch, t);
    geim_report_free(&r);
    geim_free(bad);
}

/* ---- 3. policies ---- */

static const struct gver_ctx_field *field_at(const struct gver_policy *p, uint32_t off)
{
    for (uint32_t i = 0; p->ctx && i < p->ctx->n_fields; i++)
        if (p->ctx->fields[i].off == off)
            return &p->ctx->fields[i];
    return NULL;
}

/* A size argument without a range (or a wider one) is capped at what the
 * host-call thunks copy. */
static void test_size_cap(void)
{
    static const char spec[] =
        "version: 1\nentries:\n  - { name: f, kind: function, args: [\"int x\"] }\n"
        "functions:\n  - name: g\n    args: [{ decl: \"const char *m\", size: n }, \"int n\"]\n"
        "  - name: h\n    args: [{ decl: \"const char *m\", size: n }, { decl: \"int n\", range: [0, 1000000] }]\n"
        "classes:\n  - { name: c, entry: f, functions: [g, h] }\n";
    struct geim_spec *s = NULL;
    struct gver_policy *p = NULL;
    struct graft_err err = { 0 };
    int rc = geim_load_mem(spec, sizeof(spec) - 1, "cap.yaml", &s, &err);
    CHECK(rc == 0, "size-cap spec loads: %s", err.msg);
    if (rc)
        return;
    rc = geim_policy_for_class(s, "c", NULL, NULL, &p, &err);
    CHECK(rc == 0 && p && p->n_kfuncs == 2 && p->kfuncs[0].arg_max[1] == GEIM_HOST_MEM_MAX &&
          p->kfuncs[1].arg_max[1] == GEIM_HOST_MEM_MAX && p->kfuncs[1].arg_min[1] == 0,
          "size arguments capped at %u bytes (%lld, %lld): %s", GEIM_HOST_MEM_MAX,
          p ? (long long)p->kfuncs[0].arg_max[1] : -1, p ? (long long)p->kfuncs[1].arg_max[1] : -1,
          err.msg);
    free(p);
    geim_free(s);
}

static void test_policy(const struct geim_spec *s)
{
    struct gver_policy *p = NULL;
    struct graft_err err = { 0 };
    int rc = geim_policy_for_class(s, "observer", NULL, NULL, &p, &err);
    CHECK(rc == 0 && p, "policy observer: %s", err.msg);
    if (!p)
        return;
    CHECK(p->ctx && p->ctx->size == 168 && p->ctx->n_fields == 1 && field_at(p, 112) &&
          field_at(p, 112)->access == GVER_R, "observer ctx: only di, read-only");
    CHECK(gver_policy_helper_allowed(p, ghelper_by_name("ktime_get_ns")->id) &&
          gver_policy_helper_allowed(p, ghelper_by_name("map_lookup_elem")->id) &&
          !gver_policy_helper_allowed(p, ghelper_by_name("trace_printk")->id) &&
          !gver_policy_helper_allowed(p, ghelper_by_name("get_prandom_u32")->id), "observer helpers");
    CHECK(p->n_kfuncs == 3 && p->kfuncs[0].args[0] == GARG_PTR_TO_MEM &&
          p->kfuncs[0].args[1] == GARG_CONST_SIZE_OR_ZERO && p->kfuncs[0].arg_max[1] == 4096 &&
          p->kfuncs[0].ret_min == -1 && p->kfuncs[1].ret_max == 99 && p->kfuncs[1].args[0] == GARG_NONE &&
          p->kfuncs[2].args[0] == GARG_PTR_TO_MEM_OR_NULL,
          "observer kfuncs (app_tag's tag nullable)");
    CHECK(p->insn_budget == 1000 && p->mem_budget == 4096, "observer budgets");
    /* What the agent's host-call thunks copy for the host (isolation). */
    CHECK(geim_func_mem_args(s, "app_log") == 1 && geim_func_mem_args(s, "app_tag") == 1 &&
          geim_func_mem_args(s, "app_set_level") == 0 && geim_func_mem_args(s, "nope") == 0,
          "memory-argument masks: app_log and app_tag argument 0, none elsewhere");
    CHECK(p->n_host_ptrs == 1 && p->host_ptrs[0].ctx_off == 112 && p->host_ptrs[0].size == 64 &&
          p->host_ptrs[0].n_fields == 4 && p->host_ptrs[0].fields[1].off == 8 &&
          p->host_ptrs[0].fields[1].access == GVER_R && p->host_ptrs[0].fields[2].access == 0 &&
          p->host_ptrs[0].fields[3].access == 0 && !strcmp(p->host_ptrs[0].fields[3].name, "path") &&
          strstr(p->host_ptrs[0].name, "argument 'r' (struct request)"), "observer host pointer r");
    free(p);

    rc = geim_policy_for_class(s, "field_reader", NULL, NULL, &p, &err);
    CHECK(rc == 0 && p && p->n_host_ptrs == 1 && p->host_ptrs[0].fields[1].access == (GVER_R | GVER_W) &&
          p->host_ptrs[0].fields[0].access == GVER_R, "field_reader: len writable, id read-only");
    free(p);
    rc = geim_policy_for_class(s, "whole_reader", NULL, NULL, &p, &err);
    CHECK(rc == 0 && p && p->n_host_ptrs == 0 && !p->host_ptrs, "whole_reader: no field rights, no host pointers");
    free(p);

    rc = geim_policy_for_class(s, "header_filter", NULL, NULL, &p, &err);
    CHECK(rc == 0 && p && p->ctx->n_fields == 1 && field_at(p, 112) && !field_at(p, 104),
          "header_filter: di open, si closed");
    CHECK(p && p->n_kfuncs == 1 && p->kfuncs[0].args[0] == GARG_SCALAR && p->kfuncs[0].arg_min[0] == 0 &&
          p->kfuncs[0].arg_max[0] == 7 && p->kfuncs[0].ret == GRET_VOID, "app_set_level kfunc");
    free(p);

    rc = geim_policy_for_class(s, "syscall_audit", NULL, NULL, &p, &err);
    CHECK(rc == 0 && p && p->ctx->size == 64 && field_at(p, 8) && field_at(p, 16) && !field_at(p, 24) &&
          field_at(p, 32), "syscall_audit: id, fd, count open; buf closed");
    free(p);

    rc = geim_policy_for_class(s, "firewal", NULL, NULL, &p, &err);
    CHECK(rc == -ENOENT && strstr(err.msg, "no class 'firewal'"), "unknown class: %s", err.msg);
}

/* ---- 4. the catalogue ---- */

struct ext_case {
    const char *file;          /* ext/<file>.bpf.o */
    const char *cls;
    const char *want[5];       /* NULL want[0]: must be accepted */
};

static const struct ext_case ext_cases[] = {
    /* compliant */
    { "ok_observer", "observer", { NULL } },
    { "ok_counter", "counter", { NULL } },
    { "ok_header", "header_filter", { NULL } },
    { "ok_syscall", "syscall_audit", { NULL } },
    { "ok_source", "source_probe", { NULL } },
    { "ok_loop_small", "observer", { NULL } },
    { "ok_map_small", "observer", { NULL } },
    { "ok_random_post", "observer", { NULL } },
    { "ok_nullable", "observer", { NULL } },
    { "ok_uretprobe", "observer", { NULL } },
    { "ok_log_bounded", "observer", { NULL } },
    { "ok_log_map", "bulk_logger", { NULL } },
    { "ok_field_read", "field_reader", { NULL } },
    /* without field rights the argument is granted as a whole: the old rule */
    { "ok_field_read", "whole_reader", { NULL } },
    { "bad_field_closed", "whole_reader", { NULL } },
    { "bad_field_write_ro", "whole_reader", { NULL } },
    { "ok_override", "header_override", { NULL } },
    { "ok_replace", "header_override", { NULL } },
    /* rights the default policy withholds, granted by the class */
    { "ok_signal", "signaller", { NULL } },
    { "ok_signal", "observer",
      { "class 'observer'", "helper 'send_signal' (#109) is not granted to class 'observer'" } },
    /* the override grant and the entry's return range */
    { "ok_override", "header_filter",
      { "override of entry 'parse_header' is not granted to class 'header_filter'", "program 'ok_override'",
        "section 'override/app:parse_header'", "override: true" } },
    { "bad_replace_range", "header_filter",
      { "override of entry 'parse_header' is not granted to class 'header_filter'", "program 'bad_replace_range'" } },
    { "ok_override", "observer",
      { "class 'observer' is bound to function entry 'handle_request'", "attaches to 'parse_header'" } },
    { "bad_override_range", "header_override",
      { "class 'header_override': program 'bad_override_range' insn ",
        "R2 override return value may be in [100, 100], the policy requires [0, 48]",
        "entry 'parse_header' returns [0, 48]", "class 'header_override' may only override it within that range" } },
    { "bad_override_unbounded", "header_override",
      { "program 'bad_override_unbounded' insn ", "R2 override return value may be in [",
        "the policy requires [0, 48]", "entry 'parse_header' returns [0, 48]" } },
    { "bad_replace_range", "header_override",
      { "program 'bad_replace_range'", "R0 return value may be in [", "the policy requires [0, 48]",
        "entry 'parse_header' returns [0, 48]" } },
    /* entries */
    { "bad_entry", "observer",
      { "class 'observer' is bound to function entry 'handle_request'", "program 'bad_entry'", "attaches to 'parse_header'" } },
    { "bad_entry_kind", "observer",
      { "class 'observer' is bound to function entry 'handle_request'", "is a tracepoint program", "expected section uprobe/" } },
    { "bad_entry_offset", "observer", { "class 'observer'", "entry 'handle_request'", "offset +0x10" } },
    { "bad_entry_host", "observer", { "class 'observer'", "binary 'other'", "host 'app'" } },
    { "bad_syscall_other", "syscall_audit", { "class 'syscall_audit' is bound to syscall entry 'write'", "attaches to 'read'" } },
    /* helpers */
    { "bad_helper", "observer",
      { "class 'observer'", "insn ", "helper call #7 is not allowed", "helper 'get_prandom_u32' (#7) is not granted to class 'observer'" } },
    { "bad_helper_group", "observer",
      { "class 'observer'", "insn ", "helper 'trace_printk' (#6) is not granted to class 'observer'" } },
    /* host functions */
    { "bad_kfunc_ungranted", "observer",
      { "class 'observer' does not grant function 'app_set_level'", "program 'bad_kfunc_ungranted' insn " } },
    { "bad_kfunc_undeclared", "observer",
      { "class 'observer'", "insn ", "calls host function 'app_secret', which app.eim.yaml does not declare" } },
    { "bad_kfunc_arity", "observer",
      { "class 'observer'", "insn ", "declares function 'app_log' with 3 arguments, the spec (line ", "with 2" } },
    { "bad_kfunc_range", "header_filter",
      { "class 'header_filter'", "insn ", "kfunc app_set_level argument 1 must be within [0, 7], but may be in [9, 9]",
        "function 'app_set_level': pre-condition" } },
    { "bad_kfunc_unbounded", "header_filter",
      { "class 'header_filter'", "insn ", "kfunc app_set_level argument 1 must be within [0, 7]", "function 'app_set_level'" } },
    { "bad_kfunc_null", "observer",
      { "class 'observer'", "insn ", "kfunc app_log argument 1 is NULL, but the host function requires a non-null pointer" } },
    { "bad_kfunc_null_size", "observer", { "class 'observer'", "insn ", "app_tag" } },
    { "bad_log_unbounded", "observer", { "class 'observer'", "insn ", "function 'app_log': pre-condition" } },
    { "bad_log_len_large", "observer", { "class 'observer'", "insn ", "function 'app_log': pre-condition" } },
    /* size arguments keep their declared range ([0, 4096] for app_log's
     * len), however large the buffer */
    { "bad_log_map_large", "bulk_logger",
      { "class 'bulk_logger'", "insn ", "kfunc app_log argument 2 (size of argument 1) must be within [0, 4096], but may be in [5000, 5000]",
        "function 'app_log': pre-condition of class 'bulk_logger' grant" } },
    { "bad_log_map_unbounded", "bulk_logger",
      { "class 'bulk_logger'", "insn ", "kfunc app_log argument 2 (size of argument 1) must be within [0, 4096], but may be in [0, 8191]",
        "function 'app_log'" } },
    /* a closed argument stays closed through the raw-address helpers */
    { "bad_ctx_probe_read", "closed_reader",
      { "class 'closed_reader'", "insn ", "invalid read of ctx" } },
    /* struct-field rights through a pointer argument (field_reader: id read,
     * len write, flags none, path read) */
    { "bad_field_closed", "field_reader",
      { "class 'field_reader': program 'bad_field_closed' insn ",
        "helper probe_read_user: read from host pointer argument 'r' (struct request) off=12 size=4: field 'flags' is closed",
        "field rights of class 'field_reader'", "r { id: read, len: write, flags: none, path: read }" } },
    { "bad_field_write_ro", "field_reader",
      { "class 'field_reader': program 'bad_field_write_ro' insn ",
        "helper probe_write_user: write to host pointer argument 'r' (struct request) off=0 size=8: field 'id' is read-only",
        "field rights of class 'field_reader'" } },
    { "bad_field_span", "field_reader",
      { "class 'field_reader'", "insn ", "read from host pointer argument 'r' (struct request) off=8 size=8: field 'flags' is closed" } },
    { "bad_field_var_off", "field_reader",
      { "class 'field_reader'", "insn ", "source host pointer argument 'r' (struct request) has a variable offset",
        "the field it reaches is unknown" } },
    { "bad_field_forged", "field_reader",
      { "class 'field_reader'", "insn ", "the source must be a host pointer argument plus a constant offset, not scalar",
        "field rights of class 'field_reader'" } },
    { "bad_field_deref", "field_reader",
      { "class 'field_reader'", "insn ", "host pointer argument 'r' (struct request) cannot be dereferenced" } },
    { "bad_field_rewrite", "field_reader",
      { "class 'field_reader'", "insn ", "invalid write of ctx 'pt_regs' off=112 size=8: it holds host pointer argument 'r' (struct request), whose fields are restricted",
        "field rights of class 'field_reader'" } },
    { "bad_field_rewrite", "whole_reader", { "class 'whole_reader'", "insn ", "invalid write of ctx 'pt_regs' off=112 size=8: field is read-only" } },
    { "bad_field_printk", "field_reader",
      { "class 'field_reader'", "insn ", "helper trace_printk is not allowed: it can read host memory behind %s arguments",
        "field rights of class 'field_reader'" } },
    { "bad_field_uretprobe", "field_reader",
      { "class 'field_reader'", "insn ", "host pointer argument 'r' (struct request, not valid at return) off=0 size=8: field 'id' is closed" } },
    /* arguments */
    { "bad_write_arg", "observer",
      { "class 'observer'", "insn ", "invalid write of ctx 'pt_regs' off=112",
        "argument 'r' (register di) of entry 'handle_request' is read-only in class 'observer'" } },
    { "bad_read_closed", "header_filter",
      { "class 'header_filter'", "insn ", "invalid read of ctx 'pt_regs' off=104",
        "argument 'len' (register si) of entry 'parse_header' is closed in class 'header_filter'" } },
    { "bad_read_nonarg", "observer",
      { "class 'observer'", "insn ", "off=96", "offset 96 of the context is not an argument of entry 'handle_request'" } },
    { "bad_read_ip", "observer", { "class 'observer'", "insn ", "off=128", "not an argument of entry 'handle_request'" } },
    { "bad_read_ret_entry", "observer", { "class 'observer'", "insn ", "off=80", "not an argument" } },
    { "bad_syscall_write_arg", "syscall_audit",
      { "class 'syscall_audit'", "insn ", "invalid write of ctx 'sys_enter' off=16",
        "argument 'fd' (slot ) of entry 'write' is read-only in class 'syscall_audit'" } },
    { "bad_syscall_closed", "syscall_audit",
      { "class 'syscall_audit'", "insn ", "off=24", "argument 'buf' (slot ) of entry 'write' is closed" } },
    { "bad_source_closed", "source_probe",
      { "class 'source_probe'", "insn ", "ctx 'graft_entry_args' off=0", "argument 'r' (slot ) of entry 'after_parse' is closed" } },
    { "bad_source_beyond", "source_probe", { "class 'source_probe'", "insn ", "off=16", "not an argument of entry 'after_parse'" } },
    /* budgets */
    { "bad_insn_budget", "observer",
      { "class 'observer'", "instruction budget exceeded", "the policy allows 1000", "capability insn_budget = 1000" } },
    { "bad_mem_budget", "observer",
      { "class 'observer'", "memory budget exceeded", "capability mem_budget = 4096" } },
    /* state */
    { "bad_global_ungranted", "observer",
      { "class 'observer' does not grant state 'g_config_limit'", "program 'bad_global_ungranted' insn " } },
    { "bad_global_write_ro", "observer",
      { "class 'observer'", "insn ", "write into read-only map 'g_requests'",
        "state 'g_requests' is granted read-only to class 'observer'" } },
    { "bad_global_ro_decl", "counter",
      { "class 'counter'", "insn ", "state 'g_config_limit' is granted read-only to class 'counter'" } },
    { "bad_global_undeclared", "observer",
      { "class 'observer'", "insn ", "uses host global 'g_hidden', which app.eim.yaml does not declare" } },
    { "bad_global_oob", "counter",
      { "class 'counter'", "insn 3", "invalid access to map value: off=4..4 size=4 exceeds its 4 bytes" } },
    { "bad_kconfig", "observer", { "class 'observer'", "insn ", "__kconfig extern 'LINUX_KERNEL_VERSION'" } },
};

static int g_with_facts, g_host_callers;

static void test_ext(const struct geim_spec *s, const char *dir, const struct ext_case *c)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.bpf.o", dir, c->file);
    struct gobj *obj = NULL;
    struct graft_err err = { 0 };
    struct gobj_opts opts = { .sz = sizeof(opts), .use_builtin_btf = true };
    if (gobj_open_file(path, &opts, &obj, &err)) {
        CHECK(0, "%s: %s", path, err.msg);
        return;
    }
    const char *cls = c->cls;
    struct gver_result res;
    int rc = geim_verify(s, cls, obj, &obj->progs[0], 0, 0, &res, &err);
    int accepted = rc == 0 && res.accepted;
    if (!c->want[0]) {
        CHECK(accepted, "%s under class '%s' should be accepted: rc=%d %s", c->file, cls, rc, err.msg);
    } else {
        CHECK(!accepted, "%s under class '%s' should be rejected", c->file, cls);
        CHECK(has_all(err.msg, c->want), "%s: message\n  %s\nlacks one of '%s' '%s' '%s' '%s'", c->file, err.msg,
              c->want[0], c->want[1] ? c->want[1] : "", c->want[2] ? c->want[2] : "", c->want[3] ? c->want[3] : "");
    }
    if (getenv("EIM_VERBOSE"))
        printf("%-22s %-14s %s\n", c->file, cls, accepted ? "accepted" : err.msg);
    gver_result_free(&res);
    if (accepted) {
        /* graft load's verification: the facts for the JIT, except for a
         * program that calls host functions (their return ranges are the
         * class's word, not enforced) */
        int calls_host = 0;
        for (uint32_t i = 0; i < obj->progs[0].n_insns; i++)
            calls_host |= obj->progs[0].insns[i].code == (BPF_JMP | BPF_CALL) &&
                          obj->progs[0].insns[i].src_reg == BPF_PSEUDO_KFUNC_CALL;
        struct grt_grant g = { .spec = s, .class_name = cls };
        rc = grt_verify_facts(obj, &obj->progs[0], &g, &res, &err);
        CHECK(rc == 0 && res.accepted, "%s: grt_verify_facts: %s", c->file, err.msg);
        CHECK(calls_host ? !res.facts : res.facts && res.n_facts == obj->progs[0].n_insns,
              "%s: %s host functions, facts %p", c->file, calls_host ? "calls" : "calls no", (void *)res.facts);
        g_with_facts += res.facts != NULL;
        g_host_callers += calls_host;
        gver_result_free(&res);
    }
    gobj_free(obj);
}

/* The verifier itself refuses an ungranted kfunc, even when the EIM
 * extern check is skipped: the policy's kfunc table lacks it. */
static void test_verifier_alone(const struct geim_spec *s, const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/bad_kfunc_ungranted.bpf.o", dir);
    struct gobj *obj = NULL;
    struct graft_err err = { 0 };
    struct gobj_opts opts = { .sz = sizeof(opts), .use_builtin_btf = true };
    if (gobj_open_file(path, &opts, &obj, &err)) {
        CHECK(0, "%s: %s", path, err.msg);
        return;
    }
    struct geim_prepared pp;
    int rc = geim_prepare(s, "observer", obj, &obj->progs[0], &pp, &err);
    CHECK(rc == 0, "prepare: %s", err.msg);
    if (!rc) {
        struct gver_input in = { .insns = pp.insns, .n = pp.n_insns, .maps = pp.maps, .n_maps = pp.n_maps,
                                 .policy = pp.policy };
        struct gver_result res;
        rc = gver_verify(&in, &res, &err);
        CHECK(rc == 0 && !res.accepted && strstr(res.reason, "kfunc call #0 is not allowed by the policy"),
              "verifier alone: %s", res.reason);
        gver_result_free(&res);
        geim_prepared_free(&pp);
    }
    gobj_free(obj);
}

/* `graft eim check`: exit codes 0 / 1 / 2. */
static void test_cli(const char *host)
{
    char *ok[] = { "check", "app.eim.yaml", "--host", (char *)host };
    char *bad[] = { "check", "specs/bad_host.eim.yaml", "--host", (char *)host };
    char *broken[] = { "check", "no-such-spec.yaml" };
    char *usage[] = { "check" };
    fflush(stdout);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int r0 = geim_cmd_check(4, ok), r1 = geim_cmd_check(4, bad), r2 = geim_cmd_check(2, broken),
        r3 = geim_cmd_check(1, usage);
    fclose(stdout);
    stdout = saved;
    CHECK(r0 == 0 && r1 == 1 && r2 == 2 && r3 == 2, "eim check exit codes %d %d %d %d", r0, r1, r2, r3);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_eim EXT_DIR HOST_BINARY (run from tests/eim)\n");
        return 2;
    }
    struct geim_spec *s = NULL;
    test_parse_errors();
    test_parse_ok(&s);
    test_host(s, argv[2]);
    test_policy(s);
    test_size_cap();
    size_t n_ok = 0, n_bad = 0;
    for (size_t i = 0; i < sizeof(ext_cases) / sizeof(ext_cases[0]); i++) {
        test_ext(s, argv[1], &ext_cases[i]);
        ext_cases[i].want[0] ? n_bad++ : n_ok++;
    }
    CHECK(g_with_facts > 0 && g_host_callers > 0, "facts: %d programs with, %d calling host functions",
          g_with_facts, g_host_callers);
    test_verifier_alone(s, argv[1]);
    test_cli(argv[2]);
    geim_free(s);
    printf("test_eim: %d checks, %d failures (%zu parse cases, %zu compliant and %zu violating extensions)\n",
           checks, failures, sizeof(parse_cases) / sizeof(parse_cases[0]), n_ok, n_bad);
    return failures ? 1 : 0;
}
