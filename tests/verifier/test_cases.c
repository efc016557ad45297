/*
 * test_cases.c - the verifier's accept/reject corpus (cases/NAME.txt): every
 * case must get its expected verdict, and a rejection must give a reason
 * containing the expected substring. Every accepted case is then run on the
 * checked interpreter: a violation there means the verifier accepted an
 * unsafe program.
 *
 * Usage: test_verifier_cases [DIR] [-v] [-k NAME]  (DIR defaults to cases)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"
#include "vtest.h"

int main(int argc, char **argv)
{
    const char *dir = "cases", *only = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "-k") && i + 1 < argc)
            only = argv[++i];
        else
            dir = argv[i];
    }
    char *files[256];
    int nf = vt_case_files(dir, files, 256);
    if (nf < 0)
        return 1;

    int total = 0, failed = 0, accepted = 0, rejected = 0, executed = 0;
    for (int fi = 0; fi < nf; fi++) {
        struct vcase *cs;
        int n = vt_parse_file(files[fi], &cs);
        if (n < 0) {
            fprintf(stderr, "FAIL: cannot parse %s\n", files[fi]);
            failed++;
            continue;
        }
        for (int i = 0; i < n; i++) {
            struct vcase *c = &cs[i];
            if (only && !strstr(c->name, only))
                continue;
            total++;
            struct bpf_insn *insns = NULL;
            uint32_t ni = 0;
            struct graft_err err = { 0 };
            if (c->expect_accept < 0 || !c->text) {
                printf("FAIL %s:%d %s: no expect line or no code\n", c->file, c->line, c->name);
                failed++;
                continue;
            }
            if (gvm_asm(c->text, &insns, &ni, &err)) {
                printf("FAIL %s:%d %s: asm: %s\n", c->file, c->line, c->name, err.msg);
                failed++;
                continue;
            }
            struct gver_policy *pol = vt_policy(c);
            struct gver_input in = { .insns = insns, .n = ni, .maps = c->maps, .n_maps = c->n_maps,
                                     .map_lock_offs = c->lock_offs, .map_kptrs = c->kptrs,
                                     .policy = pol, .log_level = verbose ? 2 : 1 };
            struct gver_result res;
            int rc = gver_verify(&in, &res, &err);
            int ok = rc == 0;
            if (ok && res.accepted != c->expect_accept)
                ok = 0;
            if (ok && !res.accepted && c->substr[0] && !strstr(res.reason, c->substr))
                ok = 0;
            if (!ok) {
                printf("FAIL %s:%d %s: expected %s \"%s\", got %s: %s\n", c->file, c->line, c->name,
                       c->expect_accept ? "accept" : "reject", c->substr,
                       rc ? "error" : res.accepted ? "accept" : "reject",
                       rc ? err.msg : res.reason);
                if (res.log)
                    printf("%s\n", res.log);
                failed++;
            } else if (verbose) {
                printf("ok %s (%s) %s\n%s", c->name, res.accepted ? "accept" : "reject", res.reason,
                       res.log ? res.log : "");
            }
            if (rc == 0 && res.accepted && c->uninit) {
                /* the kernel's root rule, offline only: graft's runtime
                 * never reads unwritten stack, the checked VM says so */
                accepted++;
            } else if (rc == 0 && res.accepted) {
                accepted++;
                char msg[1024];
                int x = vt_run_checked(insns, ni, c->maps, c->n_maps,
                                       c->ctx_kind == 4 ? 0 : c->ctx_size, 8, 0x9e3779b97f4a7c15ull + (uint64_t)i,
                                       msg, sizeof(msg));
                if (x == 1) {
                    printf("FAIL %s:%d %s: accepted but the checked interpreter found: %s\n",
                           c->file, c->line, c->name, msg);
                    failed++;
                } else if (x == 0) {
                    executed++;
                } else if (verbose) {
                    printf("note %s: not run: %s\n", c->name, msg);
                }
            } else if (rc == 0) {
                rejected++;
            }
            gver_result_free(&res);
            free(pol);
            free(insns);
        }
        vt_free_cases(cs, n);
        free(files[fi]);
    }
    printf("%d cases: %d accepted (%d run checked), %d rejected, %d failed\n", total, accepted,
           executed, rejected, failed);
    if (total < 400 && !only) {
        printf("FAIL: the corpus must have at least 400 cases\n");
        return 1;
    }
    return failed ? 1 : 0;
}
