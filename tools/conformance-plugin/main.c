/*
 * graft-conformance-plugin - the plugin protocol of the bpf_conformance
 * runner (github.com/Alan-Jowett/bpf_conformance), backed by graft's VM.
 *
 *   graft-conformance-plugin [MEMORY-HEX] [OPTIONS...] < PROGRAM-HEX
 *
 * MEMORY-HEX (argv[1], may be empty) is the input memory as hex bytes
 * separated by spaces; the program gets r1 = a writable copy of it and
 * r2 = its length. stdin holds one line: the program's bytecode as hex
 * bytes. On success r0 is printed in lowercase hex (no 0x) and the exit
 * status is 0; on a load or run error the message is printed (stdout, which
 * the runner compares with a test's expected error, and stderr) and the
 * exit status is 1.
 *
 * Options (the runner passes its --plugin_options as one argument, so each
 * argument is split on spaces): --jit (default), --interpret, --checked
 * (checked interpreter), --program HEX (bytecode instead of stdin).
 * Helper 5 returns r1, as the suite's ubpf plugin does; no other helpers.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"

static uint64_t helper_identity(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                uint64_t r5)
{
    return r1;
}

/* Hex bytes separated by whitespace; returns the count or -1. */
static long parse_hex(const char *s, uint8_t **out)
{
    size_t cap = strlen(s) / 2 + 8, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        return -1;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
            s += 2;
        int hi = isxdigit((unsigned char)s[0]) ? s[0] : -1;
        int lo = hi >= 0 && isxdigit((unsigned char)s[1]) ? s[1] : -1;
        if (lo < 0 || (s[2] && !isspace((unsigned char)s[2]))) {
            free(b);
            return -1;
        }
        char pair[3] = { (char)hi, (char)lo, 0 };
        b[n++] = (uint8_t)strtoul(pair, NULL, 16);
        s += 2;
    }
    *out = b;
    return (long)n;
}

static char *read_stdin(void)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (buf)
        buf[n] = '\0';
    return buf;
}

static int die(const char *fmt, const char *arg)
{
    printf(fmt, arg);
    printf("\n");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

int main(int argc, char **argv)
{
    enum gvm_engine engine = GVM_ENGINE_JIT;
    uint32_t flags = 0;
    const char *mem_hex = "", *prog_hex = NULL;
    int first_opt = 1;

    if (argc > 1 && strncmp(argv[1], "--", 2) != 0) {
        mem_hex = argv[1];
        first_opt = 2;
    }
    /* options: split every argument on whitespace */
    char *words[64];
    int nw = 0;
    for (int i = first_opt; i < argc; i++) {
        for (char *tok = strtok(argv[i], " \t"); tok && nw < 64; tok = strtok(NULL, " \t"))
            words[nw++] = tok;
    }
    for (int i = 0; i < nw; i++) {
        if (strcmp(words[i], "--jit") == 0)
            engine = GVM_ENGINE_JIT;
        else if (strcmp(words[i], "--interpret") == 0 || strcmp(words[i], "--interp") == 0)
            engine = GVM_ENGINE_INTERP;
        else if (strcmp(words[i], "--checked") == 0) {
            engine = GVM_ENGINE_INTERP;
            flags |= GVM_F_CHECKED;
        } else if (strcmp(words[i], "--program") == 0 && i + 1 < nw)
            prog_hex = words[++i];
        else
            return die("unknown option '%s' (--jit, --interpret, --checked, --program HEX)",
                       words[i]);
    }

    uint8_t *mem = NULL, *code = NULL;
    struct bpf_insn *insns = NULL;
    struct gvm_prog *prog = NULL;
    struct graft_err err = { 0 };
    uint64_t ret;
    int rc = 1;
    long mem_len = parse_hex(mem_hex, &mem), code_len = -1;
    if (mem_len < 0) {
        die("memory argument is not hex bytes: '%s'", mem_hex);
        goto out;
    }
    char *text = prog_hex ? strdup(prog_hex) : read_stdin();
    if (!text) {
        die("%s", "cannot read the program from stdin");
        goto out;
    }
    code_len = parse_hex(text, &code);
    free(text);
    if (code_len <= 0 || code_len % 8) {
        die("%s", "program must be a non-empty multiple of 8 hex bytes");
        goto out;
    }

    static gvm_helper_fn helpers[BPF_MAX_HELPER_ID];
    helpers[5] = helper_identity;
    struct gvm_env env = { .helpers = helpers };
    struct gvm_prog_opts opts = { .sz = sizeof(opts), .engine = engine, .flags = flags,
                                  .env = &env };
    insns = malloc((size_t)code_len);
    if (!insns) {
        die("%s", "out of memory");
        goto out;
    }
    memcpy(insns, code, (size_t)code_len);
    if (gvm_prog_create(insns, (uint32_t)(code_len / 8), &opts, &prog, &err)
        || gvm_prog_run(prog, mem_len ? mem : NULL, (uint64_t)mem_len, &ret, &err)) {
        die("%s", err.msg);
        goto out;
    }
    printf("%" PRIx64 "\n", ret);
    rc = 0;
out:
    gvm_prog_free(prog);
    free(insns);
    free(code);
    free(mem);
    return rc;
}
