/*
 * test_scan.c - the pattern-first WRPKRU/XRSTOR scanner (src/isolation
 * scan*.c) against
 *   (1) the full-decode scanner it replaced (kept below as the reference,
 *       decode_reference()): on every executable segment of the libraries
 *       of this machine, the aligned findings are exactly the reference's;
 *   (2) crafted byte strings: occurrences inside other instructions, at a
 *       page boundary of one buffer, across two adjacent mappings, with
 *       prefixes, and lookalikes that are not ours (fences);
 *   (3) the classification (open, unaligned, checked, fixed, rmw, masked);
 *   (4) the per-file cache: a second scan gives the same findings, a changed
 *       file (ctime) is not served from it, a group-writable entry is not
 *       trusted.
 * Needs no PKU (the scanner does not execute what it finds).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "isolation/isolation.h"
#include "isolation/scan_internal.h"
#include "tcheck.h"


/* ---- the reference: the full-decode scanner this replaced ------------- */

struct ref_hit { size_t off; enum giso_insn insn; };
struct hits { struct ref_hit *v; size_t n, cap; };

static void push(struct hits *h, size_t off, enum giso_insn k)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->v = realloc(h->v, h->cap * sizeof(*h->v));
    }
    h->v[h->n++] = (struct ref_hit){ off, k };
}

/* Decode every region [symbol start, next symbol start) linearly, step over
 * undecodable bytes one at a time, report WRPKRU/XRSTOR*(64)/XRSTORS*. */
static void decode_reference(const uint8_t *code, size_t len, const struct gscan_sym *syms,
                             size_t nsyms, struct hits *out)
{
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecoderEnableMode(&dec, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE);
    size_t pos = 0;
    for (size_t i = 0; i <= nsyms; i++) {
        size_t to = i < nsyms ? (size_t)syms[i].off : len;
        if (to > len)
            to = len;
        if (to <= pos)
            continue;
        for (size_t p = pos; p < to;) {
            ZydisDecodedInstruction in;
            if (ZYAN_FAILED(ZydisDecoderDecodeInstruction(&dec, NULL, code + p, to - p, &in))) {
                p++;
                continue;
            }
            switch (in.mnemonic) {
            case ZYDIS_MNEMONIC_WRPKRU: push(out, p, GISO_INSN_WRPKRU); break;
            case ZYDIS_MNEMONIC_XRSTOR:
            case ZYDIS_MNEMONIC_XRSTOR64: push(out, p, GISO_INSN_XRSTOR); break;
            case ZYDIS_MNEMONIC_XRSTORS:
            case ZYDIS_MNEMONIC_XRSTORS64: push(out, p, GISO_INSN_XRSTORS); break;
            default: break;
            }
            p += in.length;
        }
        pos = to;
    }
}

struct got { struct gscan_hit *v; size_t n, cap; };

static void got_hit(const struct gscan_hit *h, void *arg)
{
    struct got *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->v = realloc(g->v, g->cap * sizeof(*g->v));
    }
    g->v[g->n++] = *h;
}

/* ---- (1) the libraries of this machine -------------------------------- */

/* Compare on each executable PT_LOAD of path, as the process scan sees it
 * when mapped (from the page holding the segment's start). Returns 1 when
 * equal, and adds to the totals. */
static int compare_file(const char *path, size_t *n_aligned, size_t *n_unaligned,
                        size_t *bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    struct stat st;
    Elf64_Ehdr eh;
    int same = 1;
    if (fstat(fd, &st) != 0 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
        close(fd);
        return 1;
    }
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != sizeof(ph) ||
            ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) || !ph.p_filesz)
            continue;
        uint64_t start = ph.p_offset & ~0xfffull;
        size_t len = (size_t)(ph.p_offset + ph.p_filesz - start);
        if (start + len > (uint64_t)st.st_size)
            continue;
        uint8_t *buf = malloc(len);
        if (!buf || pread(fd, buf, len, (off_t)start) != (ssize_t)len) {
            free(buf);
            continue;
        }
        const struct gscan_sym *syms;
        size_t nsyms;
        void *h;
        gscan_load_syms(path, start, len, &syms, &nsyms, &h);
        struct hits ref = { 0 };
        struct got g = { 0 };
        decode_reference(buf, len, syms, nsyms, &ref);
        gscan_buffer(buf, len, syms, nsyms, got_hit, &g);
        size_t k = 0;
        for (size_t j = 0; j < g.n; j++) {
            if (!g.v[j].aligned) {
                (*n_unaligned)++;
                continue;
            }
            (*n_aligned)++;
            if (k >= ref.n || ref.v[k].off != g.v[j].off || ref.v[k].insn != g.v[j].insn) {
                printf("  %s: mismatch at +%#zx (%s)\n", path, g.v[j].off, g.v[j].name);
                same = 0;
            }
            k++;
        }
        if (k != ref.n) {
            printf("  %s: the reference has %zu aligned findings, the scanner %zu\n", path,
                   ref.n, k);
            same = 0;
        }
        *bytes += len;
        free(ref.v);
        free(g.v);
        gscan_free_syms(h);
        free(buf);
    }
    close(fd);
    return same;
}

static void test_libraries(void)
{
    const char *dirs[] = { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu" };
    size_t files = 0, aligned = 0, unaligned = 0, bytes = 0, bad = 0;
    char seen_dir[PATH_MAX] = "";
    for (size_t d = 0; d < 2; d++) {
        char real[PATH_MAX];
        if (!realpath(dirs[d], real) || !strcmp(real, seen_dir))
            continue;           /* /lib is often /usr/lib */
        snprintf(seen_dir, sizeof(seen_dir), "%s", real);
        DIR *dir = opendir(real);
        struct dirent *e;
        while (dir && (e = readdir(dir))) {
            if (!strstr(e->d_name, ".so"))
                continue;
            char path[PATH_MAX + 256];
            snprintf(path, sizeof(path), "%s/%s", real, e->d_name);
            struct stat st;
            if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;       /* each file once, not its symlinks */
            files++;
            bad += !compare_file(path, &aligned, &unaligned, &bytes);
        }
        if (dir)
            closedir(dir);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        files++;
        bad += !compare_file(exe, &aligned, &unaligned, &bytes);
    }
    printf("libraries: %zu files, %.1f MB of code: %zu aligned findings (same as the full "
           "decode: %s), %zu unaligned occurrences besides\n", files, bytes / 1e6, aligned,
           bad ? "NO" : "yes", unaligned);
    CHECK(files > 10, "found the machine's libraries (%zu)", files);
    CHECK(bad == 0, "aligned findings equal the full-decode scanner's in every file (%zu differ)",
          bad);
}

/* ---- (2) + (3) crafted bytes ------------------------------------------ */

static struct got scan_bytes(const void *code, size_t len)
{
    struct got g = { 0 };
    gscan_buffer(code, len, NULL, 0, got_hit, &g);
    return g;
}

static void test_crafted(void)
{
    /* mov eax, 0xef010f90; ret: a WRPKRU inside the immediate */
    static const uint8_t hidden[] = { 0xb8, 0x90, 0x0f, 0x01, 0xef, 0xc3 };
    struct got g = scan_bytes(hidden, sizeof(hidden));
    CHECK(g.n == 1 && g.v[0].off == 2 && !g.v[0].aligned && g.v[0].cls == GISO_CLASS_UNALIGNED &&
          g.v[0].insn == GISO_INSN_WRPKRU,
          "0f 01 ef inside mov's immediate is reported, unaligned (%zu)", g.n);
    free(g.v);

    /* lfence (0f ae e8), mfence (0f ae f0), clflush [rax] (0f ae 38): not ours */
    static const uint8_t fences[] = { 0x0f, 0xae, 0xe8, 0x0f, 0xae, 0xf0, 0x0f, 0xae, 0x38, 0xc3 };
    g = scan_bytes(fences, sizeof(fences));
    CHECK(g.n == 0, "fences and clflush are not XRSTOR (%zu)", g.n);
    free(g.v);

    /* xrstor64 [rax] (REX.W), xrstors [rcx], xsaves [rcx] (0f c7 /5: not ours) */
    static const uint8_t pre[] = { 0x48, 0x0f, 0xae, 0x28, 0x0f, 0xc7, 0x19, 0x0f, 0xc7, 0x29 };
    g = scan_bytes(pre, sizeof(pre));
    CHECK(g.n == 2 && g.v[0].off == 0 && g.v[0].aligned && !strcmp(g.v[0].name, "xrstor64") &&
          g.v[1].off == 4 && g.v[1].insn == GISO_INSN_XRSTORS,
          "xrstor64 reported at its REX prefix, xrstors found, xsaves not (%zu: %s)", g.n,
          g.n ? g.v[0].name : "-");
    free(g.v);

    /* A page boundary inside one buffer: 0f at the end of page 0. */
    uint8_t *two = calloc(1, 8192);
    memset(two, 0x90, 8192);
    two[4095] = 0x0f, two[4096] = 0x01, two[4097] = 0xef;
    g = scan_bytes(two, 8192);
    CHECK(g.n == 1 && g.v[0].off == 4095 && g.v[0].aligned,
          "a WRPKRU spanning a page boundary is found (%zu)", g.n);
    free(g.v);
    free(two);

    /* classification */
    uint8_t gate[GISO_GATE_MAX];
    size_t gl = giso_emit_gate(gate, sizeof(gate), 0x55555550);
    g = scan_bytes(gate, gl);
    CHECK(g.n == 1 && g.v[0].cls == GISO_CLASS_CHECKED && g.v[0].has_value &&
          g.v[0].value == 0x55555550, "a gate is checked, with its value (%zu, %s)", g.n,
          g.n ? giso_class_name(g.v[0].cls) : "-");
    free(g.v);
    static const uint8_t fixed[] = { 0x31, 0xc9, 0x31, 0xd2, 0xb8, 0, 0, 0, 0, 0x0f, 0x01, 0xef,
                                     0xc3 };
    g = scan_bytes(fixed, sizeof(fixed));
    CHECK(g.n == 1 && g.v[0].cls == GISO_CLASS_FIXED && g.v[0].value == 0,
          "mov eax, 0; wrpkru is fixed with value 0");
    free(g.v);
    /* glibc's pkey_set shape: rdpkru; compute; wrpkru */
    static const uint8_t rmw[] = { 0x31, 0xc9, 0x0f, 0x01, 0xee, 0x89, 0xc1, 0x21, 0xf8, 0x09,
                                   0xf0, 0x31, 0xd2, 0x0f, 0x01, 0xef, 0xc3 };
    g = scan_bytes(rmw, sizeof(rmw));
    CHECK(g.n == 1 && g.v[0].cls == GISO_CLASS_RMW, "rdpkru ... wrpkru is rmw (%s)",
          g.n ? giso_class_name(g.v[0].cls) : "-");
    free(g.v);
    /* ld.so's shape: mov eax, 0xee; xor edx, edx; xrstor [rsp+0x40] */
    static const uint8_t masked[] = { 0xb8, 0xee, 0, 0, 0, 0x31, 0xd2, 0x0f, 0xae, 0x6c, 0x24,
                                      0x40, 0xc3 };
    g = scan_bytes(masked, sizeof(masked));
    CHECK(g.n == 1 && g.v[0].cls == GISO_CLASS_MASKED && g.v[0].value == 0xee,
          "xrstor after mov eax, 0xee is masked (%s)", g.n ? giso_class_name(g.v[0].cls) : "-");
    free(g.v);
    uint8_t pk[sizeof(masked)];
    memcpy(pk, masked, sizeof(pk));
    pk[2] = 0x02;               /* eax = 0x2ee: bit 9, PKRU, requested */
    g = scan_bytes(pk, sizeof(pk));
    CHECK(g.n == 1 && g.v[0].cls == GISO_CLASS_OPEN, "xrstor with PKRU in eax is open (%s)",
          g.n ? giso_class_name(g.v[0].cls) : "-");
    free(g.v);
    /* a call between the mask and the xrstor: eax unknown */
    static const uint8_t called[] = { 0xb8, 0xee, 0, 0, 0, 0xff, 0xd3, 0x0f, 0xae, 0x28, 0xc3 };
    g = scan_bytes(called, sizeof(called));
    CHECK(g.n == 1 && g.v[0].cls == GISO_CLASS_OPEN, "a call before xrstor makes it open (%s)",
          g.n ? giso_class_name(g.v[0].cls) : "-");
    free(g.v);
}

/* Two adjacent executable mappings (an anonymous one, then a file one, so
 * the kernel cannot merge them) with 0f | 01 ef across the seam. */
static int g_seam_found;
static uintptr_t g_seam_addr;
static void seam_finding(const struct giso_finding *f, void *arg)
{
    (void)arg;
    if (f->addr == g_seam_addr && f->insn == GISO_INSN_WRPKRU && !f->aligned &&
        f->cls == GISO_CLASS_UNALIGNED)
        g_seam_found++;
}

static int g_new_found;
static void new_finding(const struct giso_finding *f, void *arg)
{
    (void)arg;
    g_new_found += f->addr == g_seam_addr && f->insn == GISO_INSN_WRPKRU && f->aligned;
}

static void test_seam(void)
{
    uint8_t *area = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = memfd_create("graft-scan-seam", MFD_CLOEXEC);
    uint8_t page[4096];
    memset(page, 0xc3, sizeof(page));
    page[0] = 0x01, page[1] = 0xef;
    CHECK(area != MAP_FAILED && fd >= 0 && write(fd, page, sizeof(page)) == sizeof(page),
          "set up two pages");
    uint8_t *a = mmap(area, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                      -1, 0);
    memset(a, 0xc3, 4096);
    a[4095] = 0x0f;
    mprotect(a, 4096, PROT_READ | PROT_EXEC);
    uint8_t *b = mmap(area + 4096, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 0);
    CHECK(a == area && b == area + 4096, "two adjacent executable mappings");
    g_seam_addr = (uintptr_t)(area + 4095);
    struct graft_err err = { 0 };
    int n = giso_scan(seam_finding, NULL, &err);
    CHECK(n >= 0 && g_seam_found == 1, "a WRPKRU across two mappings is found, unaligned (%d)",
          g_seam_found);
    /* giso_scan_new: nothing new now; a new mapping with a WRPKRU is seen */
    g_seam_found = 0;
    int again = giso_scan_new(seam_finding, NULL, &err);
    CHECK(again == 0, "giso_scan_new right after giso_scan finds nothing new (%d)", again);
    uint8_t *c = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(c, "\x0f\x01\xef\xc3", 4);
    mprotect(c, 4096, PROT_READ | PROT_EXEC);
    g_seam_addr = (uintptr_t)c, g_new_found = 0;
    again = giso_scan_new(new_finding, NULL, &err);
    CHECK(again >= 1 && g_new_found == 1, "giso_scan_new finds the WRPKRU of a new mapping (%d)",
          g_new_found);
    munmap(c, 4096);
    munmap(area, 8192);
    close(fd);
}

/* ---- (4) the cache ----------------------------------------------------- */

struct tally { int n, aligned; uint64_t sum; };
static void tally(const struct giso_finding *f, void *arg)
{
    struct tally *t = arg;
    t->n++, t->aligned += f->aligned, t->sum += f->addr ^ (uint64_t)f->cls << 56;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_cache(const char *dir)
{
    struct graft_err err = { 0 };
    struct tally cold = { 0 }, warm = { 0 };
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int a = giso_scan(tally, &cold, &err);
    double cold_ms = ms_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int b = giso_scan(tally, &warm, &err);
    double warm_ms = ms_since(&t0);
    printf("process scan: %d findings (%d aligned), %.2f ms with an empty cache, %.2f ms "
           "from it (%s)\n", a, cold.aligned, cold_ms, warm_ms, gscan_cache_dir());
    CHECK(a >= 0 && a == b && cold.sum == warm.sum && cold.aligned == warm.aligned,
          "the cached scan gives the same findings (%d, %d)", a, b);
    CHECK(strcmp(gscan_cache_dir(), dir) == 0, "the cache is in GRAFT_SCAN_CACHE (%s)",
          gscan_cache_dir());

    /* a changed file is not served from the cache: same inode, new ctime */
    char path[4200];
    snprintf(path, sizeof(path), "%s/probe.so", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    uint8_t code[4096];
    memset(code, 0xc3, sizeof(code));
    CHECK(fd >= 0 && write(fd, code, sizeof(code)) == sizeof(code), "write a code file");
    struct stat st;
    fstat(fd, &st);
    struct gscan_key key;
    gscan_key_of(&st, 0, 4096, &key);
    struct gscan_rec rec = { .off = 7, .insn = GISO_INSN_WRPKRU, .aligned = 1 };
    gscan_cache_put(&key, &rec, 1);
    struct gscan_rec *got = NULL;
    size_t n = 0;
    CHECK(gscan_cache_get(&key, &got, &n) == 1 && n == 1 && got[0].off == 7,
          "an entry is read back");
    free(got);
    usleep(20000);
    code[0] = 0x90;
    pwrite(fd, code, 1, 0);
    fstat(fd, &st);
    struct gscan_key key2;
    gscan_key_of(&st, 0, 4096, &key2);
    CHECK(gscan_cache_get(&key2, &got, &n) == 0, "after the file changed, its entry is a miss");
    /* an entry others could write is not trusted */
    gscan_cache_put(&key2, &rec, 1);
    char entry[4300];
    snprintf(entry, sizeof(entry), "%s/%lx-%lx-0-1000.v1", dir, (unsigned long)key2.dev,
             (unsigned long)key2.ino);
    CHECK(chmod(entry, 0620) == 0, "make the entry group-writable (%s)", entry);
    CHECK(gscan_cache_get(&key2, &got, &n) == 0, "a group-writable entry is not trusted");
    close(fd);
    unlink(path);
    unlink(entry);
}

int main(void)
{
    char dir[] = "/tmp/graft-scan-test.XXXXXX";
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    setenv("GRAFT_SCAN_CACHE", dir, 1);
    test_libraries();
    test_crafted();
    test_seam();
    test_cache(dir);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    printf("scan: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
