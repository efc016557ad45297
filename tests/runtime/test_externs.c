/*
 * test_externs.c - host functions and globals (EIM externs) through the
 * runtime: the registry keeps a program's externs in extern-index order and
 * refuses malformed or too many; grt_instance_create_opts binds them with
 * the caller's resolver, on both engines, so CALL KFUNC i calls extern i and
 * LD_IMM64 BTF_ID i loads extern i's address; a name that does not resolve,
 * a kind mismatch or a missing resolver fails the create with a message
 * naming the symbol.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/instance.h"
#include "runtime/registry.h"
#include "treg.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #c); \
                                       fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

/* the "host" */
static uint64_t host_counter = 40;
static int host_calls;
static uint64_t host_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)c; (void)d; (void)e;
    host_calls++;
    return a + b;
}

static int resolve(void *arg, const struct greg_extern *x, void **addr, struct graft_err *err)
{
    const char *name = x->name;
    uint32_t kind = x->kind;
    int *asked = arg;
    (*asked)++;
    if (strcmp(name, "host_add") == 0 && kind == GREG_EXTERN_FUNC) {
        *addr = (void *)host_add;
        return 0;
    }
    if (strcmp(name, "host_counter") == 0 && kind == GREG_EXTERN_VAR) {
        *addr = &host_counter;
        return 0;
    }
    return graft_errf(err, -ENOENT, "symbol '%s' not found", name);
}

/* externs: 0 = host_counter (var), 1 = host_add (func).
 * host_counter = host_add(host_counter, 2); r0 = the new value. */
static const char *prog =
    "lddw r6, btf:0\n"
    "ldxdw r1, [r6+0]\n"
    "mov r2, 2\n"
    "call kfunc 1\n"
    "stxdw [r6+0], r0\n"
    "exit\n";

static void test_instance(void)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err = {0};
    if (gvm_asm(prog, &insns, &n, &err) < 0) {
        fprintf(stderr, "asm: %s\n", err.msg);
        exit(2);
    }
    struct greg_extern ext[2] = { { "host_counter", GREG_EXTERN_VAR, 0 }, { "host_add", GREG_EXTERN_FUNC, 0 } };
    for (int engine = GVM_ENGINE_JIT; engine <= GVM_ENGINE_INTERP; engine++) {
        int asked = 0;
        struct grt_instance_opts o = { .sz = sizeof(o), .engine = engine, .externs = ext,
                                       .n_externs = 2, .resolve = resolve, .resolve_arg = &asked };
        struct grt_instance *inst = NULL;
        int rc = grt_instance_create_opts(insns, n, NULL, 0, &o, &inst, &err);
        CHECK(rc == 0, "engine %d: %s", engine, err.msg);
        if (rc)
            continue;
        CHECK(asked == 2, "each extern resolved once (asked %d)", asked);
        host_counter = 40;
        host_calls = 0;
        uint64_t r0 = 0;
        CHECK(gvm_prog_run(inst->prog, NULL, 0, &r0, &err) == 0, "%s", err.msg);
        CHECK(r0 == 42 && host_counter == 42 && host_calls == 1,
              "engine %d: r0 %llu counter %llu calls %d", engine, (unsigned long long)r0,
              (unsigned long long)host_counter, host_calls);
        grt_instance_free(inst);
    }

    /* A name the process does not have. */
    struct greg_extern missing[2] = { { "host_counter", GREG_EXTERN_VAR, 0 }, { "host_gone", GREG_EXTERN_FUNC, 0 } };
    int asked = 0;
    struct grt_instance_opts o = { .sz = sizeof(o), .externs = missing, .n_externs = 2,
                                   .resolve = resolve, .resolve_arg = &asked };
    struct grt_instance *inst = NULL;
    int rc = grt_instance_create_opts(insns, n, NULL, 0, &o, &inst, &err);
    CHECK(rc == -ENOENT && strstr(err.msg, "host function 'host_gone' is not in this process"),
          "rc %d '%s'", rc, err.msg);

    /* Kinds swapped: the call would reach a global. */
    struct greg_extern swapped[2] = { { "host_add", GREG_EXTERN_FUNC, 0 }, { "host_counter", GREG_EXTERN_VAR, 0 } };
    o.externs = swapped;
    rc = grt_instance_create_opts(insns, n, NULL, 0, &o, &inst, &err);
    CHECK(rc < 0 && strstr(err.msg, "insn 0") && strstr(err.msg, "not a global"), "rc %d '%s'", rc,
          err.msg);

    /* No resolver, and no externs at all. */
    o.externs = ext;
    o.resolve = NULL;
    rc = grt_instance_create_opts(insns, n, NULL, 0, &o, &inst, &err);
    CHECK(rc == -EINVAL && strstr(err.msg, "nothing resolves them"), "rc %d '%s'", rc, err.msg);
    rc = grt_instance_create(insns, n, NULL, 0, GVM_ENGINE_JIT, &inst, &err);
    CHECK(rc < 0 && strstr(err.msg, "insn 0"), "no externs: rc %d '%s'", rc, err.msg);
    free(insns);
}

static void test_registry(void)
{
    char name[64];
    treg_name(name, sizeof(name), "externs");
    shm_unlink(name);
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open_named(name, 1, &reg, &err) < 0) {
        fprintf(stderr, "registry: %s\n", err.msg);
        exit(2);
    }
    struct bpf_insn insn[2] = { BPF_MOV64_IMM(BPF_R0, 0), BPF_EXIT_INSN() };
    struct greg_prog p = { .n_insns = 2 };
    snprintf(p.name, sizeof(p.name), "ext");
    p.n_externs = 3;
    p.externs[0] = (struct greg_extern){ "app_log", GREG_EXTERN_FUNC, 0 };
    p.externs[1] = (struct greg_extern){ "g_requests", GREG_EXTERN_VAR, 0 };
    p.externs[2] = (struct greg_extern){ "app_random", GREG_EXTERN_FUNC, 0 };
    int id = greg_add_prog(reg, &p, insn, &err);
    CHECK(id > 0, "%s", err.msg);
    struct greg_snapshot s;
    CHECK(greg_snapshot(reg, &s) == 0, "snapshot");
    const struct greg_prog *rec = greg_snapshot_prog(&s, (uint32_t)id);
    CHECK(rec && rec->n_externs == 3 && strcmp(rec->externs[1].name, "g_requests") == 0 &&
          rec->externs[1].kind == GREG_EXTERN_VAR && strcmp(rec->externs[2].name, "app_random") == 0,
          "externs kept in order");
    greg_snapshot_free(&s);

    p.n_externs = GREG_PROG_EXTERNS + 1;
    CHECK(greg_add_prog(reg, &p, insn, &err) == -E2BIG && strstr(err.msg, "at most 32"), "%s", err.msg);
    p.n_externs = 1;
    p.externs[0].kind = 7;
    CHECK(greg_add_prog(reg, &p, insn, &err) == -EINVAL && strstr(err.msg, "malformed"), "%s", err.msg);
    p.externs[0].kind = GREG_EXTERN_FUNC;
    memset(p.externs[0].name, 'x', sizeof(p.externs[0].name));   /* not terminated */
    CHECK(greg_add_prog(reg, &p, insn, &err) == -EINVAL, "unterminated name accepted");
    CHECK(strcmp(greg_link_kind_name(GREG_LINK_SRC_ENTRY), "src_entry") == 0, "link kind name");
    greg_remove_owned_by(reg, getpid());
    greg_close(reg);
    shm_unlink(name);
}

int main(void)
{
    test_instance();
    test_registry();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("runtime externs: all passed\n");
    return 0;
}
