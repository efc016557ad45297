/*
 * embed.c - a program that embeds libgraft through its installed public
 * header only (<graft/graft.h>, pkg-config graft): assemble a program, run
 * it on the JIT and on the interpreter with a host helper, and check both.
 */
#include <graft/graft.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t host_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)c, (void)d, (void)e;
    return a + b;
}

int main(void)
{
    /* sum of host_add(i, 1) for i = 0..99, i.e. 1 + 2 + ... + 100 */
    const char *text =
        "mov r6, 0\n"
        "mov r7, 0\n"
        "loop:\n"
        "mov r1, r6\n"
        "mov r2, 1\n"
        "call 1\n"
        "add r7, r0\n"
        "add r6, 1\n"
        "jlt r6, 100, loop\n"
        "mov r0, r7\n"
        "exit\n";
    static gvm_helper_fn helpers[BPF_MAX_HELPER_ID];
    helpers[1] = host_add;
    struct gvm_env env = { .helpers = helpers };
    struct graft_err err = { 0 };
    struct bpf_insn *insns;
    uint32_t n;
    if (gvm_asm(text, &insns, &n, &err) < 0) {
        fprintf(stderr, "embed: %s\n", err.msg);
        return 1;
    }
    int failed = 0;
    for (int engine = GVM_ENGINE_JIT; engine <= GVM_ENGINE_INTERP; engine++) {
        struct gvm_prog_opts o = { .sz = sizeof(o), .engine = engine, .env = &env };
        struct gvm_prog *prog;
        uint64_t r0 = 0;
        if (gvm_prog_create(insns, n, &o, &prog, &err) < 0 ||
            gvm_prog_run(prog, NULL, 0, &r0, &err) < 0) {
            fprintf(stderr, "embed: engine %d: %s\n", engine, err.msg);
            return 1;
        }
        printf("embed: %s r0 = %" PRIu64 "\n", engine == GVM_ENGINE_JIT ? "jit" : "interp", r0);
        failed |= r0 != 5050;
        gvm_prog_free(prog);
    }
    free(insns);
    return failed;
}
