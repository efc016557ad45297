/*
 * test_vm_errors.c - gvm_prog_create()'s argument and environment checks
 * that the corpus (which covers malformed instructions, each error naming
 * its index) cannot express: empty programs, options, resolvers, the helper
 * table, tail-call acceptance, function starts, and assembler line numbers.
 */
#include <errno.h>

#include "corpus.h"
#include "test_util.h"
#include "vm/vm_internal.h"

static int failing_resolve(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *v,
                           struct graft_err *err)
{
    return graft_errf(err, -EBADF, "fd %d is not a map", imm);
}

static const struct gvm_prog *never(void *arg, uint64_t map, uint64_t index)
{
    return NULL;
}

static uint64_t h(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    return 1;
}

/* A descriptor allocator over one static block: counts its calls. */
static _Alignas(64) unsigned char g_desc[4096];
static int g_desc_allocs, g_desc_frees;
static size_t g_desc_size;

static void *desc_alloc(size_t size, void *arg)
{
    (void)arg;
    g_desc_allocs++;
    g_desc_size = size;
    if (size > sizeof(g_desc))
        return NULL;
    memset(g_desc, 0, size);
    return g_desc;
}

static void desc_free(void *p, size_t size, void *arg)
{
    (void)arg;
    g_desc_frees += p == g_desc && size == g_desc_size;
}

/* The descriptor goes where desc_alloc says (and JIT-compiled code still
 * runs), comes back through desc_free, and the two come as a pair. */
static void test_desc_placement(void)
{
    struct graft_err err = { 0 };
    struct bpf_insn ret7[] = { BPF_MOV64_IMM(0, 7), BPF_EXIT_INSN() };
    for (int engine = 0; engine < 2; engine++) {
        struct gvm_prog_opts o = { .sz = sizeof(o),
                                   .engine = engine ? GVM_ENGINE_JIT : GVM_ENGINE_INTERP,
                                   .desc_alloc = desc_alloc, .desc_free = desc_free };
        struct gvm_prog *p = NULL;
        g_desc_allocs = g_desc_frees = 0;
        int r = gvm_prog_create(ret7, 2, &o, &p, &err);
        uint64_t ret = 0;
        CHECK(r == 0 && (void *)p == g_desc && g_desc_allocs == 1 &&
              g_desc_size == sizeof(struct gvm_prog) &&
              gvm_prog_run(p, NULL, 0, &ret, &err) == 0 && ret == 7,
              "engine %d: descriptor placed by desc_alloc (%d, %s)", engine, r, err.msg);
        gvm_prog_free(p);
        CHECK(g_desc_frees == 1, "engine %d: descriptor returned through desc_free", engine);
    }
    struct gvm_prog_opts half = { .sz = sizeof(half), .engine = GVM_ENGINE_INTERP,
                                  .desc_alloc = desc_alloc };
    struct gvm_prog *p = NULL;
    int r = gvm_prog_create(ret7, 2, &half, &p, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "desc_alloc and desc_free go together"),
          "desc_alloc alone: %s", err.msg);
}

int main(void)
{
    struct graft_err err = { 0 };
    struct gvm_prog *p = NULL;
    struct bpf_insn exit_insn[] = { BPF_MOV64_IMM(0, 0), BPF_EXIT_INSN() };
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP };
    int r;

    r = gvm_prog_create(exit_insn, 0, &o, &p, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "empty program"), "empty: %d %s", r, err.msg);
    r = gvm_prog_create(NULL, 2, &o, &p, &err);
    CHECK(r == -EINVAL, "NULL insns: %d", r);

    struct gvm_prog_opts bad = o;
    bad.sz = 4;
    r = gvm_prog_create(exit_insn, 2, &bad, &p, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "gvm_prog_opts.sz"), "opts sz: %s", err.msg);
    bad = o;
    bad.flags = 0x80;
    r = gvm_prog_create(exit_insn, 2, &bad, &p, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "unknown flags"), "flags: %s", err.msg);
    bad = o;
    bad.engine = 7;
    r = gvm_prog_create(exit_insn, 2, &bad, &p, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "unknown engine"), "engine: %s", err.msg);

    /* NULL opts: default engine (JIT); only check it does not crash and
     * either works or reports why. */
    r = gvm_prog_create(exit_insn, 2, NULL, &p, &err);
    CHECK(r == 0 || err.msg[0], "NULL opts gave %d without a message", r);
    gvm_prog_free(p);
    p = NULL;

    /* map references without a resolver, and a failing resolver */
    r = make_prog("lddw r0, map:4\nexit", NULL, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "insn 0") && strstr(err.msg, "resolves none"),
          "no resolver: %s", err.msg);
    struct gvm_env env = { .resolve_ld_imm64 = failing_resolve };
    r = make_prog("mov r0, 0\nlddw r1, mapval:4+8\nexit", &env, GVM_ENGINE_INTERP, 0, 0, &p,
                  &err);
    CHECK(r == -EBADF && strstr(err.msg, "insn 1") && strstr(err.msg, "fd 4 is not a map"),
          "resolver error: %d %s", r, err.msg);

    /* helpers: no table at all, then tail call accepted only with a target */
    r = make_prog("call 1\nexit", NULL, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(r == -ENOENT && strstr(err.msg, "helper 1"), "no helpers: %s", err.msg);
    r = make_prog("call 12\nexit", NULL, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(r == -ENOENT, "tail call without target accepted");
    struct gvm_env tenv = { .tail_call_target = never };
    r = make_prog("call 12\nexit", &tenv, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(r == 0, "tail call with target rejected: %s", err.msg);
    gvm_prog_free(p);
    p = NULL;
    gvm_helper_fn table[BPF_MAX_HELPER_ID] = { 0 };
    table[255] = h;
    struct gvm_env henv = { .helpers = table };
    r = make_prog("call 255\nexit", &henv, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(r == 0, "helper 255 rejected: %s", err.msg);
    gvm_prog_free(p);
    p = NULL;

    /* function starts from local calls and func references, sorted */
    r = make_prog("call a\nlddw r1, func:b\nexit\n"
                  "a:\nmov r0, 1\nexit\nb:\nmov r0, 2\nexit\n",
                  NULL, GVM_ENGINE_INTERP, 0, 0, &p, &err);
    CHECK(r == 0, "funcs: %s", err.msg);
    if (!r) {
        CHECK(p->n_funcs == 3 && p->func_starts[0] == 0 && p->func_starts[1] == 4
              && p->func_starts[2] == 6, "func starts %u: %u %u", p->n_funcs,
              p->func_starts[1], p->func_starts[2]);
        CHECK(gvm_func_of(p, 3) == 0 && gvm_func_of(p, 4) == 1 && gvm_func_of(p, 7) == 2,
              "gvm_func_of");
        CHECK(gvm_prog_len(p) == 8 && gvm_prog_engine(p) == GVM_ENGINE_INTERP
              && gvm_prog_native(p) == NULL && gvm_prog_code_size(p) == 0, "accessors");
        gvm_prog_free(p);
        p = NULL;
    }

    /* the input array is copied and map loads are rewritten in the copy */
    struct bpf_insn in2[] = { BPF_LD_IMM64_RAW(0, BPF_PSEUDO_MAP_FD, 7), BPF_EXIT_INSN() };
    r = gvm_prog_create(in2, 3, &(struct gvm_prog_opts){ .sz = sizeof(o),
                        .engine = GVM_ENGINE_INTERP, .env = corpus_env() }, &p, &err);
    CHECK(r == 0 && in2[0].src_reg == BPF_PSEUDO_MAP_FD, "input modified or rejected");
    if (!r) {
        CHECK(p->insns[0].src_reg == 0 && p->insns[0].imm == (int32_t)0xaaaa0007,
              "map load not resolved in the copy");
        uint64_t ret = 0;
        CHECK(gvm_prog_run(p, NULL, 0, &ret, &err) == 0 && ret == 0xaaaa0007, "ret");
        gvm_prog_free(p);
        p = NULL;
    }

    /* assembler errors name the line */
    struct bpf_insn *ins;
    uint32_t n;
    r = gvm_asm("mov r0, 1\n\n# c\nadd r0, [r1]\nexit", &ins, &n, &err);
    CHECK(r == -EINVAL && strncmp(err.msg, "line 4:", 7) == 0, "asm line: %s", err.msg);
    r = gvm_asm("ja far\n.raw 0, 0, 0, 0, 0\nfar: exit", &ins, &n, &err);
    CHECK(r == 0 && n == 3 && ins[0].off == 1, "label fixup");
    if (!r)
        free(ins);
    r = gvm_asm("", &ins, &n, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "no instructions"), "empty asm: %s", err.msg);
    r = gvm_asm("jeq r1, 0, x\nx: exit\nstw [r10-70000], 1", &ins, &n, &err);
    CHECK(r == -EINVAL && strstr(err.msg, "line 3"), "offset range: %s", err.msg);

    test_desc_placement();
    gvm_prog_free(NULL);
    if (g_fails)
        return 1;
    printf("vm load-error tests passed\n");
    return 0;
}
