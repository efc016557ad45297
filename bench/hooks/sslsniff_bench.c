/*
 * sslsniff_bench.c - what capturing SSL_write's plaintext costs per KiB, the
 * way libbpf-tools' sslsniff does it, against a plain memcpy of the same
 * bytes in the same run.
 *
 * fake_ssl_write(ssl, buf, num) stands in for SSL_write (it returns num).
 * Its uprobe saves buf in a hash map under the thread id; its uretprobe
 * looks it up, reserves a fixed-size ring-buffer record {len, pid_tgid,
 * data[MAX_BUF]} (as sslsniff's struct probe_SSL_data_t), copies the
 * min(ret, MAX_BUF) bytes with bpf_probe_read_user, submits it and deletes
 * the saved pointer. Both are eBPF programs compiled by graft's JIT and
 * attached as the runtime attaches programs that call helpers. This thread
 * consumes each record after the call (consumer_pos = producer_pos).
 *
 *   sslsniff_prog_ns_per_kib[_1k,_4k]   (hooked call - plain call) / KiB,
 *                                       16 KiB writes (and 1, 4 KiB)
 *   sslsniff_memcpy_ns_per_kib[_1k,_4k] memcpy of the same bytes into a
 *                                       ring of the same size, per KiB
 *
 * Medians over ROUNDS interleaved rounds, in thread CPU time (the machine
 * is shared). Checked: one record per call, and the last record holds the
 * bytes written (a FAIL line and exit status 1 otherwise).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "maps/maps.h"
#include "vm/isa.h"
#include "vm/vm.h"
#include "bench_jit.h"
#include "bench_util.h"

#define ROUNDS 31
#define BYTES_PER_ROUND (16u << 20)     /* copied per round and size */
#define MAX_BUF 16384
#define REC_HDR 16                      /* len, pid_tgid */
#define RING (4u << 20)

/* Checks its arguments as a real one does; that also makes it long enough
 * for a jump hook (a 4-byte function would get the int3 fallback). */
__attribute__((noinline)) long fake_ssl_write(void *ssl, const void *buf, long num)
{
    static volatile long writes;
    if (!buf || num < 0)
        return -1;
    writes = writes + 1;
    __asm__ volatile("" : : "r"(ssl), "r"(buf) : "memory");
    return num;
}
static long (*volatile ssl_write_p)(void *, const void *, long) = fake_ssl_write;

/* uprobe: bufs[(u32)pid_tgid] = PT_REGS_PARM2 */
static struct bpf_insn probe_entry[] = {
    /* 0 */ BPF_MOV64_REG(6, 1),
    /* 1 */ BPF_CALL_HELPER(14),
    /* 2 */ BPF_STX_MEM(BPF_W, 10, 0, -4),
    /* 3 */ BPF_LDX_MEM(BPF_DW, 1, 6, 104),           /* si */
    /* 4 */ BPF_STX_MEM(BPF_DW, 10, 1, -16),
    /* 5 */ BPF_LD_IMM64_RAW(1, 0, 0),                /* bufs */
    /* 7 */ BPF_MOV64_REG(2, 10),
    /* 8 */ BPF_ALU64_IMM(BPF_ADD, 2, -4),
    /* 9 */ BPF_MOV64_REG(3, 10),
    /* 10 */ BPF_ALU64_IMM(BPF_ADD, 3, -16),
    /* 11 */ BPF_MOV64_IMM(4, 0),
    /* 12 */ BPF_CALL_HELPER(2),                      /* map_update_elem */
    /* 13 */ BPF_MOV64_IMM(0, 0),
    /* 14 */ BPF_EXIT_INSN(),
};
static const int entry_bufs[] = {5};

/* uretprobe: the record, as described above */
static struct bpf_insn probe_return[] = {
    /* 0 */ BPF_MOV64_REG(6, 1),
    /* 1 */ BPF_CALL_HELPER(14),
    /* 2 */ BPF_STX_MEM(BPF_W, 10, 0, -4),
    /* 3 */ BPF_LD_IMM64_RAW(1, 0, 0),                /* bufs */
    /* 5 */ BPF_MOV64_REG(2, 10),
    /* 6 */ BPF_ALU64_IMM(BPF_ADD, 2, -4),
    /* 7 */ BPF_CALL_HELPER(1),                       /* map_lookup_elem */
    /* 8 */ BPF_JMP_IMM(BPF_JEQ, 0, 0, 28),           /* -> out (37) */
    /* 9 */ BPF_LDX_MEM(BPF_DW, 7, 0, 0),             /* buf */
    /* 10 */ BPF_LDX_MEM(BPF_DW, 8, 6, 80),           /* ax: bytes written */
    /* 11 */ BPF_JMP_IMM(BPF_JSLE, 8, 0, 25),         /* -> out */
    /* 12 */ BPF_JMP_IMM(BPF_JLE, 8, MAX_BUF, 1),
    /* 13 */ BPF_MOV64_IMM(8, MAX_BUF),
    /* 14 */ BPF_LD_IMM64_RAW(1, 0, 0),               /* rb */
    /* 16 */ BPF_MOV64_IMM(2, REC_HDR + MAX_BUF),
    /* 17 */ BPF_MOV64_IMM(3, 0),
    /* 18 */ BPF_CALL_HELPER(131),                    /* ringbuf_reserve */
    /* 19 */ BPF_JMP_IMM(BPF_JEQ, 0, 0, 17),          /* -> out */
    /* 20 */ BPF_MOV64_REG(9, 0),
    /* 21 */ BPF_STX_MEM(BPF_DW, 9, 8, 0),
    /* 22 */ BPF_CALL_HELPER(14),
    /* 23 */ BPF_STX_MEM(BPF_DW, 9, 0, 8),
    /* 24 */ BPF_MOV64_REG(1, 9),
    /* 25 */ BPF_ALU64_IMM(BPF_ADD, 1, REC_HDR),
    /* 26 */ BPF_MOV64_REG(2, 8),
    /* 27 */ BPF_MOV64_REG(3, 7),
    /* 28 */ BPF_CALL_HELPER(112),                    /* probe_read_user */
    /* 29 */ BPF_MOV64_REG(1, 9),
    /* 30 */ BPF_MOV64_IMM(2, 0),
    /* 31 */ BPF_CALL_HELPER(132),                    /* ringbuf_submit */
    /* 32 */ BPF_LD_IMM64_RAW(1, 0, 0),               /* bufs */
    /* 34 */ BPF_MOV64_REG(2, 10),
    /* 35 */ BPF_ALU64_IMM(BPF_ADD, 2, -4),
    /* 36 */ BPF_CALL_HELPER(3),                      /* map_delete_elem */
    /* 37 */ BPF_MOV64_IMM(0, 0),
    /* 38 */ BPF_EXIT_INSN(),
};
static const int return_bufs[] = {3, 32}, return_rb[] = {14};

static void set_maps(struct bpf_insn *p, const int *at, int n, struct gmap *m)
{
    uint64_t v = (uint64_t)(uintptr_t)m;
    for (int i = 0; i < n; i++) {
        p[at[i]].imm = (int32_t)(uint32_t)v;
        p[at[i] + 1].imm = (int32_t)(uint32_t)(v >> 32);
    }
}

static struct gmap *map(uint32_t type, uint32_t k, uint32_t v, uint32_t n)
{
    struct gmap_def def = {.type = type, .key_size = k, .value_size = v, .max_entries = n};
    struct gmap *m;
    struct graft_err err = {0};
    if (gmap_create(&def, -1, &m, &err) < 0) {
        fprintf(stderr, "gmap_create: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static struct ghook *hook(void *addr, enum ghook_kind k, gvm_native_fn fn)
{
    struct ghook *h;
    struct graft_err err = {0};
    struct gattach_opts o = {.sz = sizeof(o), .handler_preserves_fp = 0};
    if (gattach_install(addr, k, fn, 0, &o, &h, &err) < 0) {
        fprintf(stderr, "gattach_install: %s\n", err.msg);
        exit(1);
    }
    if (gattach_hook_method(h) != GATTACH_METHOD_JUMP) {
        fprintf(stderr, "fake_ssl_write got a %s hook, not a jump\n",
                gattach_method_name(gattach_hook_method(h)));
        exit(1);
    }
    return h;
}

static uint8_t *src_buf;
static volatile uint64_t *cons, *prod;
static long records;

/* ns per call of the (hooked or not) stand-in, consuming what it produced */
static double per_call(long size, long calls)
{
    double t0 = bench_thread_ns();
    for (long i = 0; i < calls; i++) {
        uint64_t before = *prod;
        ssl_write_p(NULL, src_buf, size);
        uint64_t after = __atomic_load_n(prod, __ATOMIC_ACQUIRE);
        records += after != before;
        __atomic_store_n(cons, after, __ATOMIC_RELEASE);
    }
    return (bench_thread_ns() - t0) / (double)calls;
}

/* ns per memcpy of size bytes into a RING-byte buffer, advancing as the
 * ring buffer's records do */
static double per_memcpy(uint8_t *ring, long size, long calls)
{
    uint64_t pos = 0, step = (REC_HDR + MAX_BUF + 8 + 7) & ~7ull;
    double t0 = bench_thread_ns();
    for (long i = 0; i < calls; i++) {
        if (pos + REC_HDR + 8 + (uint64_t)size > RING)
            pos = 0;
        memcpy(ring + pos + 8 + REC_HDR, src_buf, (size_t)size);
        __asm__ volatile("" : : "r"(ring) : "memory");
        pos += step;
    }
    return (bench_thread_ns() - t0) / (double)calls;
}

int main(void)
{
    static const long sizes[3] = {1024, 4096, 16384};
    static const char *suffix[3] = {"_1k", "_4k", ""};
    src_buf = malloc(MAX_BUF);
    uint8_t *ring_copy = malloc(RING);
    for (int i = 0; i < MAX_BUF; i++)
        src_buf[i] = (uint8_t)(i * 7 + 3);
    memset(ring_copy, 0, RING);

    struct gmap *bufs = map(GMAP_HASH, 4, 8, 1024), *rb = map(GMAP_RINGBUF, 0, 0, RING);
    uint8_t *pages = gmap_ringbuf_pages(rb);
    cons = (volatile uint64_t *)pages;
    prod = (volatile uint64_t *)(pages + 4096);
    set_maps(probe_entry, entry_bufs, 1, bufs);
    set_maps(probe_return, return_bufs, 2, bufs);
    set_maps(probe_return, return_rb, 1, rb);
    struct gvm_prog *pe, *pr;
    gvm_native_fn fe = bench_jit(probe_entry, sizeof(probe_entry) / sizeof(probe_entry[0]), &pe);
    gvm_native_fn fr = bench_jit(probe_return, sizeof(probe_return) / sizeof(probe_return[0]), &pr);

    double d[3][ROUNDS], m[3][ROUNDS];
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int s = 0; s < 3; s++) {
            long calls = BYTES_PER_ROUND / sizes[s];
            double base = per_call(sizes[s], calls);
            struct ghook *h1 = hook((void *)fake_ssl_write, GHOOK_ENTRY, fe);
            struct ghook *h2 = hook((void *)fake_ssl_write, GHOOK_RETURN, fr);
            long before = records;
            double hooked = per_call(sizes[s], calls);
            gattach_remove(h2, NULL);
            gattach_remove(h1, NULL);
            if (records - before != calls && !bad++)
                printf("FAIL: %ld records for %ld calls of %ld bytes\n", records - before, calls,
                       sizes[s]);
            d[s][r] = (hooked - base) / (sizes[s] / 1024.0);
            m[s][r] = per_memcpy(ring_copy, sizes[s], calls) / (sizes[s] / 1024.0);
        }
    }
    /* the last record: {len, pid_tgid, data} after its 8-byte header */
    uint64_t mask = RING - 1, last = (*prod - ((8 + REC_HDR + MAX_BUF + 7) & ~7ull)) & mask;
    const uint8_t *rec = pages + 2 * 4096 + last + 8;
    uint64_t len;
    memcpy(&len, rec, 8);
    if (len != MAX_BUF || memcmp(rec + REC_HDR, src_buf, MAX_BUF) != 0) {
        printf("FAIL: the last record holds %lu bytes that %s the bytes written\n",
               (unsigned long)len, len == MAX_BUF ? "differ from" : "are not");
        bad = 1;
    }
    for (int s = 0; s < 3; s++) {
        printf("BENCH sslsniff_prog_ns_per_kib%s %.1f ns\n", suffix[s], bench_median(d[s], ROUNDS));
        printf("BENCH sslsniff_memcpy_ns_per_kib%s %.1f ns\n", suffix[s], bench_median(m[s], ROUNDS));
    }
    gmap_unlink(gmap_shm_name(bufs));
    gmap_unlink(gmap_shm_name(rb));
    gvm_prog_free(pe);
    gvm_prog_free(pr);
    return bad;
}
