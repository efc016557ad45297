/*
 * run_table.c - the kernel 6.1 test_verifier table (ktv.h) through graft's
 * verifier, fixups included, compared with the kernel's verdicts.
 *
 * Each test is verified as its program type (0: socket filter), with the
 * maps its fixups name built as `graft verify --raw --map` fixtures (the
 * same parser, raw_input.c) bound to the same instructions:
 *  - privileged (/p): graft verify --privileged's policy, against .result;
 *  - unprivileged (/u), for the types an unprivileged user may load (socket
 *    filter, cgroup_skb, as the kernel's runner decides): graft verify's
 *    default policy (an unprivileged user's helpers), against .result_unpriv
 *    (or .result when the test gives none).
 * A disagreement fails unless KNOWN lists it:
 *   p|u accept|reject DESCR :: reason
 * (DESCR#N for the N-th test of the same name). Listed entries that now
 * agree are reported as stale.
 *
 * Usage: ktv_run KNOWN [--write-rows FILE] [--only SUBSTRING] [-v]
 * (-v with --only prints the verifier's log of each test run)
 * Prints agreement figures and BENCH test_verifier_* lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ktv.h"
#include "raw_input.h"
#include "loader/loader.h"

/* BPF_PROG_TYPE_* (uapi/linux/bpf.h) -> graft's kernel type */
static int ktype_of(uint32_t prog_type)
{
    switch (prog_type) {
    case 0: case 1: return GKT_SOCKET_FILTER;
    case 2: return GKT_KPROBE;
    case 3: return GKT_SCHED_CLS;
    case 4: return GKT_SCHED_ACT;
    case 5: return GKT_TRACEPOINT;
    case 6: return GKT_XDP;
    case 7: return GKT_PERF_EVENT;
    case 8: return GKT_CGROUP_SKB;
    case 9: return GKT_CGROUP_SOCK;
    case 10: case 11: case 12: case 19: return GKT_LWT;
    case 13: return GKT_SOCK_OPS;
    case 14: return GKT_SK_SKB;
    case 15: return GKT_CGROUP_DEV;
    case 16: return GKT_SK_MSG;
    case 17: case 24: return GKT_RAW_TRACEPOINT;
    case 18: return GKT_CGROUP_SOCK_ADDR;
    case 20: return GKT_LIRC_MODE2;
    case 21: return GKT_SK_REUSEPORT;
    case 22: return GKT_FLOW_DISSECTOR;
    case 23: return GKT_CGROUP_SYSCTL;
    case 25: return GKT_CGROUP_SOCKOPT;
    case 26: return GKT_TRACING;
    case 27: return GKT_STRUCT_OPS;
    case 29: return GKT_LSM;
    case 30: return GKT_SK_LOOKUP;
    case 31: return GKT_SYSCALL;
    default: return GKT_NONE;   /* 28 ext (freplace of another program): no target offline */
    }
}

/* BPF_* attach types (uapi/linux/bpf.h) whose return rule graft checks ->
 * the attach point raw_parse_prog_type takes */
static const char *attach_name(uint32_t t)
{
    switch (t) {
    case 1: return "egress";
    case 8: return "bind4";
    case 9: return "bind6";
    case 10: return "connect4";
    case 11: return "connect6";
    case 14: return "sendmsg4";
    case 15: return "sendmsg6";
    case 19: return "recvmsg4";
    case 20: return "recvmsg6";
    case 24: return "fentry";
    case 25: return "fexit";
    case 26: return "fmod_ret";
    case 28: return "iter";
    case 29: return "getpeername4";
    case 30: return "getpeername6";
    case 31: return "getsockname4";
    case 32: return "getsockname6";
    default: return "";
    }
}

/* Each fixup's map, as test_verifier.c creates it, in the --map syntax.
 * The spin lock's value is { int cnt; struct bpf_spin_lock l; } and the
 * socket storage map's value the same BTF type. The kptr map's value is
 * three pointers tagged kptr, kptr_ref, kptr_ref (create_map_kptr). */
static const char *const fixture_of[KTV_N_FIXUPS] = {
    [KTV_MAP_HASH_8B] = "hash:8:8:1:flags=1",
    [KTV_MAP_HASH_48B] = "hash:8:48:1:flags=1",
    [KTV_MAP_HASH_16B] = "hash:8:16:1:flags=1",
    [KTV_MAP_ARRAY_48B] = "array:4:48:1",
    [KTV_MAP_SOCKMAP] = "sockmap:4:4:1",
    [KTV_MAP_SOCKHASH] = "sockhash:4:4:1",
    [KTV_MAP_XSKMAP] = "xskmap:4:4:1",
    [KTV_MAP_STACKTRACE] = "stack_trace:4:8:1",
    [KTV_PROG1] = "prog_array:4:4:4",
    [KTV_PROG2] = "prog_array:4:4:8",
    [KTV_MAP_IN_MAP] = "array_of_maps:4:4:1:inner=%u",   /* inner: array:4:4:1 */
    [KTV_CGROUP_STORAGE] = "cgroup_storage:12:64:0",
    [KTV_PERCPU_CGROUP_STORAGE] = "percpu_cgroup_storage:12:64:0",
    [KTV_MAP_SPIN_LOCK] = "array:4:8:1:lock=4",
    [KTV_MAP_ARRAY_RO] = "array:4:48:1:flags=0x80",
    [KTV_MAP_ARRAY_WO] = "array:4:48:1:flags=0x100",
    [KTV_MAP_ARRAY_SMALL] = "array:4:1:1",
    [KTV_SK_STORAGE_MAP] = "sk_storage:4:8:0:flags=1:lock=4",
    [KTV_MAP_EVENT_OUTPUT] = "perf_event_array:4:4:1",
    [KTV_MAP_REUSEPORT_ARRAY] = "reuseport_sockarray:4:8:1",
    [KTV_MAP_RINGBUF] = "ringbuf:0:0:4096",
    [KTV_MAP_TIMER] = "array:4:16:1",
    [KTV_MAP_KPTR] = "array:4:24:1:kptr=0:kptr_ref=8:kptr_ref=16",
};

struct known {
    char mode;
    char verdict[8];
    char *key;
    char *reason;
    int seen;
};

static struct known *known;
static size_t n_known;

static void load_known(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "ktv_run: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char line[2048];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *sep = strstr(line, " :: ");
        struct known k = {0};
        int off = 0;
        if (!sep || sscanf(line, "%c %7s %n", &k.mode, k.verdict, &off) < 2 || !off ||
            (k.mode != 'p' && k.mode != 'u') || (strcmp(k.verdict, "accept") && strcmp(k.verdict, "reject")) ||
            line + off >= sep) {
            fprintf(stderr, "%s:%u: expected \"p|u accept|reject DESCR :: reason\"\n", path, lineno);
            exit(2);
        }
        *sep = '\0';
        k.key = strdup(line + off);
        k.reason = strdup(sep + 4);
        known = realloc(known, (n_known + 1) * sizeof(*known));
        if (!known || !k.key || !k.reason)
            exit(2);
        known[n_known++] = k;
    }
    fclose(f);
}

static struct known *find_known(char mode, const char *key)
{
    for (size_t i = 0; i < n_known; i++)
        if (known[i].mode == mode && !strcmp(known[i].key, key))
            return &known[i];
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct tally {
    unsigned acc_n, acc_ok, rej_n, rej_ok;
};

/* Verify c once; 1 accepted, 0 rejected, -1 the input is bad (reason in
 * why). *secs accumulates the verifier's time. */
static int verify_one(const struct ktv_case *c, enum kernel_mode mode, int log_level, char *why,
                      size_t why_len, double *secs)
{
    static struct raw_maps maps;
    struct graft_err err = {0};
    memset(&maps, 0, sizeof(maps));
    for (int k = 0; k < KTV_N_FIXUPS; k++) {
        if (!c->fixups[k][0])
            continue;
        char spec[256];
        int len;
        if (k == KTV_MAP_IN_MAP) {
            if (raw_maps_add(&maps, "array:4:4:1", &err) < 0)
                goto bad;
            len = snprintf(spec, sizeof(spec), fixture_of[k], maps.n - 1);
        } else {
            len = snprintf(spec, sizeof(spec), "%s", fixture_of[k]);
        }
        for (int j = 0; j < KTV_MAX_FIXUPS && c->fixups[k][j]; j++)
            len += snprintf(spec + len, sizeof(spec) - (size_t)len, "%c%d", j ? ',' : '@', c->fixups[k][j]);
        if (raw_maps_add(&maps, spec, &err) < 0)
            goto bad;
    }
    struct bpf_insn *insns = malloc((size_t)c->n_insns * sizeof(*insns));
    if (!insns)
        exit(2);
    memcpy(insns, c->insns, (size_t)c->n_insns * sizeof(*insns));
    if (raw_maps_bind(&maps, insns, c->n_insns, &err) < 0) {
        free(insns);
        goto bad;
    }
    int kt = ktype_of(c->prog_type);
    char type[96], section[128];
    /* the LWT types share one kernel type in graft; the attach point says which */
    const char *lwt = c->prog_type == 10 ? "in" : c->prog_type == 11 ? "out" : c->prog_type == 12 ? "xmit"
                    : c->prog_type == 19 ? "seg6local" : NULL;
    snprintf(type, sizeof(type), "%s:%s", gprog_ktype_name((enum gprog_ktype)kt),
             lwt ? lwt : attach_name(c->expected_attach_type));
    if (raw_parse_prog_type(type, &kt, section, sizeof(section), &err) < 0) {
        free(insns);
        goto bad;
    }
    struct gver_policy *pol = raw_kernel_policy(kt, section, mode, 0, 0);
    if (!pol)
        exit(2);
    pol->strict_align = (c->flags & 2) != 0;   /* F_LOAD_WITH_STRICT_ALIGNMENT: BPF_F_STRICT_ALIGNMENT */
    struct gver_input in = { .insns = insns, .n = c->n_insns, .maps = maps.defs, .n_maps = maps.n,
                             .map_lock_offs = maps.locks, .map_kptrs = maps.kptrs, .policy = pol, .log_level = log_level };
    struct gver_result res = {0};
    double t0 = now_s();
    int rc = gver_verify(&in, &res, &err);
    *secs += now_s() - t0;
    int verdict = rc < 0 ? -1 : res.accepted;
    if (log_level && res.log)
        fputs(res.log, stdout);
    snprintf(why, why_len, "%s", rc < 0 ? err.msg : res.accepted ? "" : res.reason);
    gver_result_free(&res);
    free(pol);
    free(insns);
    return verdict;
bad:
    snprintf(why, why_len, "%s", err.msg);
    return -1;
}

int main(int argc, char **argv)
{
    const char *known_path = NULL, *rows_path = NULL, *only = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--write-rows") && i + 1 < argc)
            rows_path = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!known_path)
            known_path = argv[i];
        else {
            fprintf(stderr, "usage: ktv_run KNOWN [--write-rows FILE] [--only SUBSTRING] [-v]\n");
            return 2;
        }
    }
    if (!known_path) {
        fprintf(stderr, "usage: ktv_run KNOWN [--write-rows FILE] [--only SUBSTRING] [-v]\n");
        return 2;
    }
    load_known(known_path);
    FILE *rows = rows_path ? fopen(rows_path, "w") : NULL;
    if (rows_path && !rows) {
        fprintf(stderr, "ktv_run: %s: %s\n", rows_path, strerror(errno));
        return 2;
    }
    unsigned n = ktv_count(), skipped = 0, unexplained = 0, bad = 0, ran = 0;
    struct tally priv = {0}, unpriv = {0};
    double secs = 0;
    char **names = calloc(n, sizeof(*names));
    if (!names)
        return 2;
    for (unsigned i = 0; i < n; i++) {
        struct ktv_case c;
        ktv_get(i, &c);
        /* the key: the description, numbered from the second of a name on */
        unsigned dup = 1;
        for (unsigned j = 0; j < i; j++)
            if (names[j] && !strcmp(names[j], c.descr))
                dup++;
        names[i] = strdup(c.descr);
        char key[512];
        if (dup > 1)
            snprintf(key, sizeof(key), "%s#%u", c.descr, dup);
        else
            snprintf(key, sizeof(key), "%s", c.descr);
        if ((only && !strstr(key, only)) || ktype_of(c.prog_type) == GKT_NONE) {
            if (!only || strstr(key, only)) {
                skipped++;
                if (verbose)
                    printf("SKIP %s: program type %u has no offline model\n", key, c.prog_type);
            }
            ktv_release(&c);
            continue;
        }
        ran++;
        int as_unpriv = c.prog_type == 0 || c.prog_type == 1 || c.prog_type == 8;
        for (int m = 0; m < 1 + as_unpriv; m++) {
            char mode = m ? 'u' : 'p';
            int want_res = m && c.result_unpriv != KTV_UNDEF ? c.result_unpriv : c.result;
            int want = want_res == KTV_ACCEPT || want_res == KTV_VERBOSE_ACCEPT;
            char why[1100];
            int got = verify_one(&c, m ? KMODE_DEFAULT : KMODE_PRIVILEGED, verbose && only ? 2 : 0,
                                 why, sizeof(why), &secs);
            struct tally *t = m ? &unpriv : &priv;
            if (want)
                t->acc_n++;
            else
                t->rej_n++;
            if (got < 0) {
                bad++;
                printf("ERROR [%c] %s: %s\n", mode, key, why);
                continue;
            }
            if (rows) {
                char kerr_buf[512] = "";
                const char *kerr = m && c.errstr_unpriv ? c.errstr_unpriv : c.errstr;
                if (kerr) {
                    snprintf(kerr_buf, sizeof(kerr_buf), "%s", kerr);
                    for (char *q = kerr_buf; *q; q++)
                        if (*q == '\n' || *q == '\t')
                            *q = ' ';
                    kerr = kerr_buf;
                }
                fprintf(rows, "%c %s %s :: kernel %s%s%s%s%s%s\n", mode, got ? "accept" : "reject", key,
                        want ? "accepts" : "rejects", !want && kerr ? " (" : "", !want && kerr ? kerr : "",
                        !want && kerr ? ")" : "", why[0] ? "; graft: " : "", why);
            }
            struct known *k = find_known(mode, key);
            if (got == want) {
                if (want)
                    t->acc_ok++;
                else
                    t->rej_ok++;
                if (k)
                    printf("STALE (now agrees, remove it from the list) [%c] %s\n", mode, key);
                continue;
            }
            if (k && !strcmp(k->verdict, got ? "accept" : "reject")) {
                k->seen = 1;
                if (verbose)
                    printf("KNOWN [%c] %s: %s\n", mode, key, k->reason);
                continue;
            }
            unexplained++;
            printf("UNEXPLAINED [%c] %s: graft %s, the kernel %s%s%s\n", mode, key, got ? "accepts" : "rejects",
                   want ? "accepts" : "rejects", why[0] ? ": " : "", why);
        }
        ktv_release(&c);
    }
    for (unsigned i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rows)
        fclose(rows);
    size_t unseen = 0;
    for (size_t i = 0; i < n_known; i++)
        unseen += !known[i].seen;
    printf("%u tests (%u skipped: no offline model of their program type), %u run: "
           "privileged: kernel accepts %u/%u agree, rejects %u/%u agree; unprivileged: accepts %u/%u, "
           "rejects %u/%u; %u unexplained, %u bad inputs, %zu listed not seen\n",
           n, skipped, ran, priv.acc_ok, priv.acc_n, priv.rej_ok, priv.rej_n, unpriv.acc_ok, unpriv.acc_n,
           unpriv.rej_ok, unpriv.rej_n, unexplained, bad, only ? 0 : unseen);
    printf("BENCH test_verifier_accept_pct %.1f %%\n", 100.0 * priv.acc_ok / (priv.acc_n ? priv.acc_n : 1));
    printf("BENCH test_verifier_reject_pct %.1f %%\n", 100.0 * priv.rej_ok / (priv.rej_n ? priv.rej_n : 1));
    printf("BENCH test_verifier_unpriv_accept_pct %.1f %%\n",
           100.0 * unpriv.acc_ok / (unpriv.acc_n ? unpriv.acc_n : 1));
    printf("BENCH test_verifier_unpriv_reject_pct %.1f %%\n",
           100.0 * unpriv.rej_ok / (unpriv.rej_n ? unpriv.rej_n : 1));
    printf("BENCH test_verifier_verify_s %.3f s\n", secs);
    for (size_t i = 0; i < n_known; i++) {
        free(known[i].key);
        free(known[i].reason);
    }
    free(known);
    return unexplained || bad ? 1 : 0;
}
