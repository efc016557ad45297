/*
 * bench_kernel.c - the kernel side of bench_maps: kernel maps shaped like
 * graft's (bpf_map_create), the same instructions loaded with bpf_prog_load
 * and timed by BPF_PROG_TEST_RUN.
 *
 * SOCKET_FILTER test runs repeat inside the kernel and report the mean
 * duration per run. SYSCALL programs (used only when a socket filter may not
 * call a helper) cannot repeat, so they are timed from user space and the
 * caller subtracts an empty SYSCALL program's time (bk_run on empty_fd).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "bench_maps.h"

static int kfd[BK_COUNT] = { -1, -1, -1, -1, -1 };
static uint32_t n_keys;
static uint64_t *rb_cons;
static const uint64_t *rb_prod;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int bk_fill(enum bk_map kind)
{
    int ncpu = libbpf_num_possible_cpus();
    int copies = kind == BK_PERCPU_HASH ? (ncpu > 0 ? ncpu : 1) : 1;
    uint64_t *v = calloc((size_t)copies, 8);
    if (!v)
        return -ENOMEM;
    for (uint32_t k = 0; k < n_keys; k++) {
        for (int c = 0; c < copies; c++)
            v[c] = k;
        if (bpf_map_update_elem(kfd[kind], &k, v, BPF_ANY)) {
            int e = -errno;
            free(v);
            return e;
        }
    }
    free(v);
    return 0;
}

int bk_setup(uint32_t nkeys, uint32_t rb_size)
{
    n_keys = nkeys;
    kfd[BK_HASH] = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_hash", 4, 8, nkeys, NULL);
    kfd[BK_ARRAY] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_array", 4, 8, nkeys, NULL);
    kfd[BK_PERCPU_HASH] = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "bench_pcpu", 4, 8, nkeys, NULL);
    kfd[BK_RINGBUF] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bench_rb", 0, 0, rb_size, NULL);
    for (int i = BK_HASH; i < BK_COUNT; i++) {
        if (kfd[i] < 0) {
            int e = errno;
            fprintf(stderr, "bench_maps: no kernel figures: bpf_map_create: %s (needs root / CAP_BPF)\n",
                    strerror(e));
            return -e;
        }
    }
    int r;
    if ((r = bk_fill(BK_HASH)) || (r = bk_fill(BK_ARRAY)) || (r = bk_fill(BK_PERCPU_HASH))) {
        fprintf(stderr, "bench_maps: no kernel figures: filling kernel maps: %s\n", strerror(-r));
        return r;
    }
    long pg = sysconf(_SC_PAGESIZE);
    void *c = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_SHARED, kfd[BK_RINGBUF], 0);
    void *p = mmap(NULL, (size_t)pg, PROT_READ, MAP_SHARED, kfd[BK_RINGBUF], pg);
    if (c == MAP_FAILED || p == MAP_FAILED) {
        int e = errno;
        fprintf(stderr, "bench_maps: no kernel figures: mmap of the ring buffer: %s\n", strerror(e));
        return -e;
    }
    rb_cons = c;
    rb_prod = p;
    return 0;
}

void bk_rb_reset(void)
{
    __atomic_store_n(rb_cons, __atomic_load_n(rb_prod, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

/* Loads as type; on failure fills why with the errno and the verifier's
 * last words, which say what it refused. */
static int load_as(enum bpf_prog_type type, const char *name, const struct bpf_insn *insns, uint32_t n,
                   char *why, size_t whylen)
{
    static char log[1 << 16];
    LIBBPF_OPTS(bpf_prog_load_opts, o);
    int fd = bpf_prog_load(type, name, "GPL", insns, n, &o);
    if (fd >= 0)
        return fd;
    int e = errno;
    o.log_buf = log;
    o.log_size = sizeof(log);
    o.log_level = 1;
    log[0] = '\0';
    fd = bpf_prog_load(type, name, "GPL", insns, n, &o);
    if (fd >= 0)   /* loads with a log but not without: odd, but use it */
        return fd;
    size_t len = strlen(log);
    while (len && log[len - 1] == '\n')
        log[--len] = '\0';
    char *last = strrchr(log, '\n');
    const char *show = log;
    if (last) {
        *last = '\0';
        char *prev = strrchr(log, '\n');
        *last = '\n';
        show = prev ? prev + 1 : log;
    }
    for (char *p = (char *)show; *p; p++)
        if (*p == '\n')
            *p = ' ';
    snprintf(why, whylen, "%s: %s", strerror(e), show);
    return -1;
}

int bk_load(const char *name, const void *code, uint32_t n, enum bk_map map, int allow_syscall,
            struct bk_prog *out)
{
    out->fd = out->empty_fd = -1;
    out->is_syscall = 0;
    struct bpf_insn *insns = malloc(n * sizeof(*insns));
    if (!insns)
        return -1;
    memcpy(insns, code, n * sizeof(*insns));
    for (uint32_t i = 0; i < n; i++)
        if (insns[i].code == (BPF_LD | BPF_IMM | BPF_DW) && insns[i].src_reg == BPF_PSEUDO_MAP_FD)
            insns[i].imm = kfd[map == BK_NONE ? BK_HASH : map];
    char why[512] = "", why2[512] = "";
    out->fd = load_as(BPF_PROG_TYPE_SOCKET_FILTER, name, insns, n, why, sizeof(why));
    if (out->fd < 0 && allow_syscall) {
        out->fd = load_as(BPF_PROG_TYPE_SYSCALL, name, insns, n, why2, sizeof(why2));
        if (out->fd >= 0) {
            struct bpf_insn empty[2] = {
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
                { .code = BPF_JMP | BPF_EXIT },
            };
            char w[512];
            out->is_syscall = 1;
            out->empty_fd = load_as(BPF_PROG_TYPE_SYSCALL, "empty", empty, 2, w, sizeof(w));
            if (out->empty_fd < 0) {
                fprintf(stderr, "bench_maps: %s: no kernel figure: empty SYSCALL program refused: %s\n",
                        name, w);
                close(out->fd);
                out->fd = -1;
            } else {
                fprintf(stderr, "bench_maps: %s: kernel refused it as SOCKET_FILTER (%s); measured as "
                        "BPF_PROG_TYPE_SYSCALL, timed from user space minus an empty program's run\n",
                        name, why);
            }
            free(insns);
            return out->fd >= 0 ? 0 : -1;
        }
    }
    free(insns);
    if (out->fd < 0) {
        fprintf(stderr, "bench_maps: %s: no kernel figure: the kernel refused the program: %s%s%s\n", name,
                why, why2[0] ? "; as SYSCALL: " : "", why2);
        return -1;
    }
    return 0;
}

static int run_syscall(int fd, int k, double *ns, uint32_t *retval)
{
    double t0 = now_ns();
    for (int i = 0; i < k; i++) {
        LIBBPF_OPTS(bpf_test_run_opts, o);
        if (bpf_prog_test_run_opts(fd, &o))
            return -errno;
        *retval = o.retval;
    }
    *ns = (now_ns() - t0) / k;
    return 0;
}

int bk_run(const struct bk_prog *p, int k, double *ns, uint32_t *retval)
{
    if (p->is_syscall) {
        double empty;
        uint32_t er;
        int r = run_syscall(p->fd, k, ns, retval);
        if (!r)
            r = run_syscall(p->empty_fd, k, &empty, &er);
        if (!r)
            *ns -= empty;
        return r;
    }
    uint8_t pkt[64] = { 0 };
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = k);
    if (bpf_prog_test_run_opts(p->fd, &o))
        return -errno;
    *ns = o.duration;
    *retval = o.retval;
    return 0;
}

void bk_close(struct bk_prog *p)
{
    if (p->fd >= 0)
        close(p->fd);
    if (p->empty_fd >= 0)
        close(p->empty_fd);
    p->fd = p->empty_fd = -1;
}
