/*
 * test_kernel.c - differential testing against the kernel's verifier: every
 * corpus case not marked "kernel: skip" is loaded into the running kernel
 * (as root, BPF_PROG_TYPE_KPROBE, so the ctx is pt_regs; kernel maps
 * created for the case's maps) and the verdicts are compared. Known,
 * explained disagreements are listed in kernel_disagreements.txt
 * ("name: why"); any other disagreement fails the test, and listed entries
 * that now agree are reported as stale.
 *
 * Usage: test_verifier_kernel [CASES_DIR] [-v]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/vm.h"
#include "kload.h"
#include "vtest.h"

#define MAX_KNOWN 512
static char known[MAX_KNOWN][128];
static int seen[MAX_KNOWN];
static int nknown;

static void load_known(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof(line), f) && nknown < MAX_KNOWN) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *c = strchr(line, ':');
        if (!c)
            continue;
        *c = 0;
        snprintf(known[nknown++], sizeof(known[0]), "%.127s", line);
    }
    fclose(f);
}

static int find_known(const char *name)
{
    for (int i = 0; i < nknown; i++)
        if (!strcmp(known[i], name))
            return i;
    return -1;
}

static int kernel_verdict(struct vcase *c, struct bpf_insn *p, uint32_t n, char *log, size_t loglen)
{
    int fds[VT_MAX_MAPS];
    uint32_t nf = 0;
    int ret = -1;
    for (uint32_t i = 0; i < c->n_maps; i++) {
        const struct gmap_def *d = &c->maps[i];
        int fd = kl_map_create(d->type, d->key_size, d->value_size, d->max_entries, d->map_flags);
        if (fd < 0) {
            snprintf(log, loglen, "map %u: %s", i, strerror(-fd));
            goto out;
        }
        fds[nf++] = fd;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!bpf_is_ld_imm64(&p[i]))
            continue;
        if (p[i].src_reg == BPF_PSEUDO_MAP_IDX || p[i].src_reg == BPF_PSEUDO_MAP_IDX_VALUE) {
            if (p[i].imm < 0 || (uint32_t)p[i].imm >= nf) {
                snprintf(log, loglen, "bad map index");
                goto out;
            }
            p[i].src_reg = p[i].src_reg == BPF_PSEUDO_MAP_IDX ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE;
            p[i].imm = fds[p[i].imm];
        }
        i++;
    }
    int fd = kl_prog_load_kprobe(p, n, log, loglen);
    if (fd >= 0) {
        kl_close(fd);
        ret = 1;
    } else {
        if (!log[0])
            snprintf(log, loglen, "%s", strerror(-fd));
        ret = 0;
    }
out:
    for (uint32_t i = 0; i < nf; i++)
        kl_close(fds[i]);
    return ret;
}

/* The last non-empty line of a kernel log: its reason. */
static const char *last_line(char *log)
{
    size_t l = strlen(log);
    while (l && (log[l - 1] == '\n'))
        log[--l] = 0;
    char *p = strrchr(log, '\n');
    /* the kernel ends with "processed N insns ..." after the reason */
    if (p && strstr(p, "processed")) {
        *p = 0;
        char *q = strrchr(log, '\n');
        return q ? q + 1 : log;
    }
    return p ? p + 1 : log;
}

int main(int argc, char **argv)
{
    const char *dir = "cases";
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else
            dir = argv[i];
    }
    if (geteuid() != 0) {
        printf("SKIP: not root, cannot load programs into the kernel\n");
        return 0;
    }
    {
        struct bpf_insn t[2] = { BPF_MOV64_IMM(0, 0), BPF_EXIT_INSN() };
        int fd = kl_prog_load_kprobe(t, 2, NULL, 0);
        if (fd == -EPERM || fd == -ENOSYS) {
            printf("SKIP: the kernel does not let us load BPF programs (%s)\n", strerror(-fd));
            return 0;
        }
        if (fd >= 0)
            kl_close(fd);
    }
    load_known("kernel_disagreements.txt");
    ghelper_set_trace_sink(NULL, NULL);

    char *files[256];
    int nf = vt_case_files(dir, files, 256);
    if (nf < 0)
        return 1;

    int compared = 0, agree = 0, explained = 0, unexplained = 0, skipped = 0;
    static char klog[1 << 20];
    for (int fi = 0; fi < nf; fi++) {
        struct vcase *cs;
        int n = vt_parse_file(files[fi], &cs);
        if (n < 0) {
            printf("FAIL: cannot parse %s\n", files[fi]);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct vcase *c = &cs[i];
            if (c->kernel_skip || !c->text) {
                skipped++;
                continue;
            }
            struct bpf_insn *p;
            uint32_t ni;
            struct graft_err err;
            if (gvm_asm(c->text, &p, &ni, &err)) {
                skipped++;
                continue;
            }
            struct gver_policy *pol = vt_policy(c);
            struct gver_input in = { .insns = p, .n = ni, .maps = c->maps, .n_maps = c->n_maps, .policy = pol };
            struct gver_result res;
            int ours = gver_verify(&in, &res, &err) == 0 ? res.accepted : -1;
            int theirs = kernel_verdict(c, p, ni, klog, sizeof(klog));
            if (theirs < 0) {
                printf("note: %s not compared: %s\n", c->name, klog);
                skipped++;
            } else {
                compared++;
                int k = find_known(c->name);
                if (ours == theirs) {
                    agree++;
                    if (k >= 0)
                        printf("stale entry in kernel_disagreements.txt: %s now agrees (%s)\n", c->name,
                               ours ? "both accept" : "both reject");
                } else if (k >= 0) {
                    explained++;
                    seen[k] = 1;
                    if (verbose)
                        printf("known: %s graft=%s kernel=%s\n", c->name, ours ? "accept" : "reject",
                               theirs ? "accept" : "reject");
                } else {
                    unexplained++;
                    printf("UNEXPLAINED %s (%s:%d): graft %s%s%s, kernel %s%s%s\n", c->name, c->file, c->line,
                           ours ? "accepts" : "rejects: ", ours ? "" : res.reason, "",
                           theirs ? "accepts" : "rejects: ", theirs ? "" : last_line(klog), "");
                }
            }
            gver_result_free(&res);
            free(pol);
            free(p);
        }
        vt_free_cases(cs, n);
        free(files[fi]);
    }
    printf("%d compared with the kernel: %d agree, %d known disagreements, %d unexplained; %d skipped\n",
           compared, agree, explained, unexplained, skipped);
    return unexplained ? 1 : 0;
}
