/*
 * test_helpers_vm.c - helpers called from real eBPF programs on both
 * engines, through ghelper_table(): the calling convention (r1-r5 in, r0
 * out), -EFAULT reaching the program as a 64-bit negative value, and a map
 * argument being the struct gmap * that resolve_ld_imm64 produced; and
 * bpf_get_current_pid_tgid read inline by the JIT (ghelper_inline_table).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "maps/maps.h"
#include "th.h"

static const char *prog_text =
    "mov r6, r1\n"
    "mov r1, r10\n"
    "add r1, -16\n"
    "mov r2, 8\n"
    "ldxdw r3, [r6+0]\n"
    "call 112\n"                 /* probe_read_user(fp-16, 8, ctx->src) */
    "mov r7, r0\n"
    "ldxdw r8, [r10-16]\n"
    "mov r1, r10\n"
    "add r1, -16\n"
    "mov r2, 8\n"
    "mov r3, 16\n"
    "call 112\n"                 /* probe_read_user(fp-16, 8, 0x10) */
    "stxdw [r6+8], r0\n"
    "stxdw [r6+16], r8\n"
    "stw [r10-4], 3\n"
    "lddw r1, map:5\n"
    "mov r2, r10\n"
    "add r2, -4\n"
    "call 1\n"                   /* map_lookup_elem(map, &3) */
    "jeq r0, 0, +2\n"
    "ldxdw r0, [r0+0]\n"
    "stxdw [r6+24], r0\n"
    "mov r0, r7\n"
    "exit\n";

struct ctx { uint64_t src, bad_rc, value, map_value; };

static struct gmap *g_map;

static int resolve(void *arg, uint8_t src_reg, int32_t imm, int32_t next_imm,
                   uint64_t *value, struct graft_err *err)
{
    if (src_reg != BPF_PSEUDO_MAP_FD || imm != 5)
        return graft_errf(err, -EINVAL, "test: unexpected map reference %d", imm);
    *value = (uint64_t)(uintptr_t)g_map;
    return 0;
}

/* bpf_loop(10, cb, &sum, 0): the callback adds its index to a counter on
 * the caller's stack; r0 = sum + 1000 * iterations = 45 + 10000. */
static const char *loop_text =
    "stdw [r10-8], 0\n"
    "mov r1, 10\n"
    "lddw r2, func:cb\n"
    "mov r3, r10\n"
    "add r3, -8\n"
    "mov r4, 0\n"
    "call 181\n"
    "mov r6, r0\n"
    "mul r6, 1000\n"
    "ldxdw r0, [r10-8]\n"
    "add r0, r6\n"
    "exit\n"
    "cb:\n"
    "ldxdw r3, [r2+0]\n"
    "add r3, r1\n"
    "stxdw [r2+0], r3\n"
    "mov r0, 0\n"
    "exit\n";

/* Callbacks run on the engine that runs the program: JIT, interpreter and
 * the checked interpreter (which also checks the callback's accesses to its
 * caller's stack). */
static void test_loop_callbacks(void)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err = {0};
    if (gvm_asm(loop_text, &insns, &n, &err) != 0) {
        fprintf(stderr, "gvm_asm: %s\n", err.msg);
        th_failures++;
        return;
    }
    ghelper_set_callback_invoker(gvm_invoke_callback);
    struct gvm_env env = { .helpers = ghelper_table() };
    const struct { int engine; uint32_t flags; } modes[] = {
        { GVM_ENGINE_JIT, 0 }, { GVM_ENGINE_INTERP, 0 }, { GVM_ENGINE_INTERP, GVM_F_CHECKED },
    };
    for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct gvm_prog_opts opts = { .sz = sizeof(opts), .engine = modes[i].engine,
                                      .flags = modes[i].flags, .env = &env };
        struct gvm_prog *prog;
        if (gvm_prog_create(insns, n, &opts, &prog, &err) != 0) {
            fprintf(stderr, "mode %u: gvm_prog_create: %s\n", i, err.msg);
            th_failures++;
            continue;
        }
        uint64_t ret = 0, ctx = 0;
        CHECK_EQ(gvm_prog_run(prog, &ctx, sizeof(ctx), &ret, &err), 0);
        CHECK_EQ(ret, 10045);
        gvm_prog_free(prog);
    }
    free(insns);
}

/* ---- bpf_get_current_pid_tgid inline (gvm_env.helper_inline) ---- */

static struct gvm_prog *g_pid_prog[2];   /* JIT with the inline table, interpreter */
static gvm_helper_fn g_counting_table[BPF_MAX_HELPER_ID];
static __thread int t_pid_helper_calls;

/* The real helper, counted: the JIT's inline read must not call it once
 * the thread's ids are cached. */
static uint64_t counting_pid_tgid(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    t_pid_helper_calls++;
    return ghelper_table()[14](r1, r2, r3, r4, r5);
}

static uint64_t expected_pid_tgid(void)
{
    return (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)syscall(SYS_gettid);
}

/* Twice per engine: the first call of a thread finds its cache empty (the
 * inline read falls back to the helper, which fills it), the second reads
 * it inline. Returns the number of wrong results. */
static int pid_tgid_runs(void)
{
    int bad = 0;
    uint64_t want = expected_pid_tgid();
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 2; k++) {
            uint64_t r = 0;
            struct graft_err err;
            int calls = t_pid_helper_calls;
            if (gvm_prog_run(g_pid_prog[e], NULL, 0, &r, &err) != 0 || r != want) {
                fprintf(stderr, "pid_tgid engine %d run %d: %#llx, want %#llx\n", e, k,
                        (unsigned long long)r, (unsigned long long)want);
                bad++;
            }
            if (e == 0 && k == 1 && t_pid_helper_calls != calls) {
                fprintf(stderr, "pid_tgid: the JIT called the helper with the ids cached\n");
                bad++;
            }
        }
    return bad;
}

static void *pid_tgid_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)pid_tgid_runs();
}

static void test_pid_tgid_inline(void)
{
    struct bpf_insn insns[] = { BPF_CALL_HELPER(14), BPF_EXIT_INSN() };
    struct gvm_env env;
    memset(&env, 0, sizeof(env));
    memcpy(g_counting_table, ghelper_table(), sizeof(g_counting_table));
    g_counting_table[14] = counting_pid_tgid;
    env.helpers = g_counting_table;
    env.helper_inline = ghelper_inline_table();
    CHECK_EQ(env.helper_inline[14].kind, GVM_INLINE_TLS_U64);
    struct graft_err err;
    for (int e = 0; e < 2; e++) {
        struct gvm_prog_opts po = { .sz = sizeof(po), .env = &env,
                                    .engine = e ? GVM_ENGINE_INTERP : GVM_ENGINE_JIT };
        if (gvm_prog_create(insns, 2, &po, &g_pid_prog[e], &err) != 0) {
            fprintf(stderr, "gvm_prog_create: %s\n", err.msg);
            th_failures++;
            return;
        }
    }
    /* the JIT read it inline: mov %fs:disp32, %rax */
    const uint8_t *code = gvm_prog_code(g_pid_prog[0]);
    size_t len = gvm_prog_code_size(g_pid_prog[0]);
    static const uint8_t fs_load[] = { 0x64, 0x48, 0x8b, 0x04, 0x25 };
    CHECK(code && memmem(code, len, fs_load, sizeof(fs_load)) != NULL);

    CHECK_EQ(pid_tgid_runs(), 0);             /* this thread */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, pid_tgid_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        CHECK_EQ((intptr_t)bad, 0);           /* each thread its own ids */
    }
    pid_t child = fork();                     /* the child's cache is forgotten */
    if (child == 0)
        _exit(pid_tgid_runs() ? 1 : 0);
    int status = -1;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    gvm_prog_free(g_pid_prog[0]);
    gvm_prog_free(g_pid_prog[1]);
}

int main(void)
{
    test_pid_tgid_inline();
    test_loop_callbacks();
    struct gmap_def def;
    struct graft_err err;
    memset(&def, 0, sizeof(def));
    def.type = GMAP_ARRAY;
    def.key_size = 4;
    def.value_size = 8;
    def.max_entries = 4;
    snprintf(def.name, sizeof(def.name), "helpers_vm");
    if (gmap_create(&def, -1, &g_map, &err) != 0) {
        fprintf(stderr, "gmap_create: %s\n", err.msg);
        return 2;
    }
    uint32_t k = 3;
    uint64_t v = 0x5151;
    gmap_update_copy(g_map, &k, &v, GMAP_ANY);

    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(prog_text, &insns, &n, &err) != 0) {
        fprintf(stderr, "gvm_asm: %s\n", err.msg);
        return 2;
    }
    struct gvm_env env;
    memset(&env, 0, sizeof(env));
    env.helpers = ghelper_table();
    env.resolve_ld_imm64 = resolve;

    for (int engine = GVM_ENGINE_JIT; engine <= GVM_ENGINE_INTERP; engine++) {
        struct gvm_prog_opts opts = { .sz = sizeof(opts), .engine = engine, .env = &env };
        struct gvm_prog *prog;
        if (gvm_prog_create(insns, n, &opts, &prog, &err) != 0) {
            fprintf(stderr, "engine %d: gvm_prog_create: %s\n", engine, err.msg);
            th_failures++;
            continue;
        }
        uint64_t secret = 0x1122334455667788ull, ret = 99;
        struct ctx c = { (uint64_t)(uintptr_t)&secret, 0, 0, 0 };
        CHECK_EQ(gvm_prog_run(prog, &c, sizeof(c), &ret, &err), 0);
        CHECK_EQ(ret, 0);
        CHECK_EQ(c.value, secret);
        CHECK_EQ((int64_t)c.bad_rc, -EFAULT);
        CHECK_EQ(c.map_value, 0x5151);
        gvm_prog_free(prog);
    }
    free(insns);
    char name[256];
    snprintf(name, sizeof(name), "%s", gmap_shm_name(g_map));
    gmap_close(g_map);
    gmap_unlink(name);
    TH_DONE();
}
