/*
 * test_vm_plugin.c - graft-conformance-plugin end to end, the way the
 * bpf_conformance runner drives it: memory as argv[1], options as one more
 * argument, the program as hex on stdin, r0 in hex on stdout; errors exit 1
 * with the message on stdout. Runs a sample of corpus files through it.
 *
 * usage: test_vm_plugin PLUGIN [corpus-dir]
 */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corpus.h"
#include "test_util.h"

static const char *const sample[] = {
    "gen-alu-add-reg-0", "gen-alu-sdiv32-imm-1", "gen-jsgt32-reg", "gen-ldxsh-off3",
    "gen-atomic-cmpxchg-ok", "gen-end-be64", "mem-reg-same", "call-local", "call-depth-max",
    "callx-conformance-syntax", "loop-fib", "prime", "lddw-plain", "gotol-backward",
    "err-unknown-opcode", "err-jump-into-lddw", "call-depth-exceeded", "err-unknown-helper",
};

static char tmpdir[] = "/tmp/graft-plugin-XXXXXX";

/* Run the plugin; fills out (stdout) and returns its exit status. */
static int run_plugin(const char *plugin, const char *mem_hex, const char *opts,
                      const char *prog_hex, char *out, size_t outlen)
{
    char in_path[256], out_path[256], cmd[8192];
    snprintf(in_path, sizeof(in_path), "%s/in", tmpdir);
    snprintf(out_path, sizeof(out_path), "%s/out", tmpdir);
    FILE *f = fopen(in_path, "w");
    fprintf(f, "%s\n", prog_hex);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' < '%s' > '%s' 2>/dev/null", plugin, mem_hex,
             opts, in_path, out_path);
    int st = system(cmd);
    f = fopen(out_path, "r");
    size_t n = f ? fread(out, 1, outlen - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        sprintf(out + strlen(out), "%02x  ", b[i]);   /* the runner's spacing */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN [corpus-dir]\n", argv[0]);
        return 2;
    }
    const char *plugin = argv[1], *dir = argc > 2 ? argv[2] : "corpus";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *modes[] = { "--interpret", "--checked", "--jit" };
    int runs = 0;
    for (size_t i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
        char path[512];
        struct corpus_case c;
        struct graft_err err;
        snprintf(path, sizeof(path), "%s/%s.data", dir, sample[i]);
        if (corpus_read(path, &c, &err)) {
            CHECK(0, "%s", err.msg);
            continue;
        }
        struct bpf_insn *insns;
        uint32_t n;
        CHECK(gvm_asm(c.asm_text, &insns, &n, &err) == 0, "%s: %s", path, err.msg);
        char *prog_hex = malloc((size_t)n * 8 * 4 + 1), *mem_hex = malloc(c.mem_len * 4 + 1);
        hex_of((const uint8_t *)insns, (size_t)n * 8, prog_hex);
        hex_of(c.mem, c.mem_len, mem_hex);
        for (int m = 0; m < 3; m++) {
            /* the JIT reports run-time aborts as r0 = -EFAULT, not an error */
            if (m == 2 && c.error && strstr(c.error, "insn ") == NULL)
                continue;
            char out[2048];
            int rc = run_plugin(plugin, mem_hex, modes[m], prog_hex, out, sizeof(out));
            runs++;
            if (c.error) {
                CHECK(rc == 1 && strstr(out, c.error), "%s %s: rc %d out '%s', want '%s'",
                      sample[i], modes[m], rc, out, c.error);
            } else {
                char *end;
                uint64_t v = strtoull(out, &end, 16);
                CHECK(rc == 0 && end != out && v == c.result,
                      "%s %s: rc %d out '%s', want %llx", sample[i], modes[m], rc, out,
                      (unsigned long long)c.result);
            }
        }
        free(prog_hex);
        free(mem_hex);
        free(insns);
        corpus_free(&c);
    }
    /* malformed input */
    char out[512];
    CHECK(run_plugin(plugin, "", "--interpret", "b7 00 00", out, sizeof(out)) == 1
          && strstr(out, "multiple of 8"), "short program: %s", out);
    CHECK(run_plugin(plugin, "zz", "--interpret", "95 00 00 00 00 00 00 00", out,
                     sizeof(out)) == 1 && strstr(out, "not hex"), "bad memory: %s", out);
    CHECK(run_plugin(plugin, "", "--bogus", "95 00 00 00 00 00 00 00", out,
                     sizeof(out)) == 1 && strstr(out, "unknown option"), "bad option: %s", out);
    /* options may arrive as one space-separated argument; r1/r2 = memory, length */
    CHECK(run_plugin(plugin, "0a 0b 0c", "--jit --interpret",
                     "bf 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00", out, sizeof(out)) == 0
          && strtoull(out, NULL, 16) == 3, "r2 = length: %s", out);

    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd)) {
    }
    if (g_fails)
        return 1;
    printf("conformance plugin: %d runs passed\n", runs);
    return 0;
}
