/*
 * test_vm_corpus.c - run every tests/vm/corpus/ *.data program and compare
 * r0 (all 64 bits) or the expected error. Each program runs on the chosen
 * engine(s) and, unless the file says `-- no-checked`, also on the checked
 * interpreter, which must agree (so the corpus doubles as a test that the
 * checked mode raises no false alarms on well-behaved programs).
 *
 * usage: test_vm_corpus [--engine interp|jit|both] [--dir DIR] [files...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

static int run_one(const struct corpus_case *c, const struct bpf_insn *insns, uint32_t n,
                   enum gvm_engine engine, uint32_t flags, const char *label)
{
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = engine, .flags = flags,
                               .env = corpus_env() };
    struct gvm_prog *p;
    struct graft_err err = { 0 };
    int r = gvm_prog_create(insns, n, &o, &p, &err);
    uint64_t ret = 0;
    if (!r) {
        uint8_t *mem = NULL;
        if (c->mem_len) {
            mem = malloc(c->mem_len);
            memcpy(mem, c->mem, c->mem_len);
        }
        r = gvm_prog_run(p, mem, c->mem_len, &ret, &err);
        free(mem);
        gvm_prog_free(p);
    }
    if (r) {
        if (c->error && strstr(err.msg, c->error))
            return 0;
        fprintf(stderr, "FAIL %s [%s]: error: %s\n", c->path, label, err.msg);
        return 1;
    }
    /* The JIT cannot return an error from a run: it aborts a run that
     * exceeds the call depth or calls a bad callx target with r0 = -EFAULT
     * (see jit_x86.c), where the interpreter reports the error. */
    if (c->error && engine == GVM_ENGINE_JIT && ret == (uint64_t)-EFAULT)
        return 0;
    if (c->error) {
        fprintf(stderr, "FAIL %s [%s]: expected error '%s', got r0=0x%llx\n", c->path,
                label, c->error, (unsigned long long)ret);
        return 1;
    }
    if (ret != c->result) {
        fprintf(stderr, "FAIL %s [%s]: r0 = 0x%llx, expected 0x%llx\n", c->path, label,
                (unsigned long long)ret, (unsigned long long)c->result);
        return 1;
    }
    return 0;
}

static int run_file(const char *path, int interp, int jit)
{
    struct corpus_case c;
    struct graft_err err = { 0 };
    if (corpus_read(path, &c, &err)) {
        fprintf(stderr, "FAIL %s\n", err.msg);
        return 1;
    }
    struct bpf_insn *insns;
    uint32_t n;
    int fails = 0;
    if (gvm_asm(c.asm_text, &insns, &n, &err)) {
        if (!(c.error && strstr(err.msg, c.error))) {
            fprintf(stderr, "FAIL %s: asm: %s\n", path, err.msg);
            fails = 1;
        }
        corpus_free(&c);
        return fails;
    }
    if (interp)
        fails += run_one(&c, insns, n, GVM_ENGINE_INTERP, 0, "interp");
    if (jit)
        fails += run_one(&c, insns, n, GVM_ENGINE_JIT, 0, "jit");
    if (!c.no_checked)
        fails += run_one(&c, insns, n, GVM_ENGINE_INTERP, GVM_F_CHECKED, "checked");
    free(insns);
    corpus_free(&c);
    return fails != 0;
}

int main(int argc, char **argv)
{
    const char *dir = "corpus", *engine = "both";
    int interp, jit, nfiles = 0, fails = 0, first_file = argc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--engine") == 0 && i + 1 < argc)
            engine = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            first_file = i;
            break;
        }
    }
    interp = strcmp(engine, "interp") == 0 || strcmp(engine, "both") == 0;
    jit = strcmp(engine, "jit") == 0 || strcmp(engine, "both") == 0;
    if (!interp && !jit) {
        fprintf(stderr, "unknown engine '%s' (interp, jit or both)\n", engine);
        return 2;
    }
    if (first_file < argc) {
        for (int i = first_file; i < argc; i++, nfiles++)
            fails += run_file(argv[i], interp, jit);
    } else {
        char **paths;
        int n = corpus_list(dir, &paths);
        if (n <= 0) {
            fprintf(stderr, "no corpus files in %s (%s)\n", dir, n ? strerror(-n) : "empty");
            return 1;
        }
        for (int i = 0; i < n; i++, nfiles++)
            fails += run_file(paths[i], interp, jit);
        corpus_list_free(paths, n);
    }
    printf("%d/%d corpus files passed (engine %s)\n", nfiles - fails, nfiles, engine);
    return fails ? 1 : 0;
}
