/*
 * syscall_rewrite.c - find the syscall (0f 05) and sysenter (0f 34)
 * instructions of the process's executable file mappings with Zydis and
 * rewrite each to `call *%rax` (ff d0).
 *
 * Where to decode: the executable sections (SHF_EXECINSTR) of the ELF file
 * behind each mapping, never the bytes between them. Within a section the
 * sweep is linear but re-synchronised at every function symbol (.symtab and
 * .dynsym STT_FUNC/IFUNC): an instruction that would run across a symbol
 * start means the sweep was misaligned (data in code), so decoding restarts
 * at the symbol and the misdecoded span is not rewritten; bytes that do not
 * decode skip to the next symbol. Limits: in a stripped region with data
 * embedded in code and no symbol after it, a false 0f 05 inside the data
 * could still be taken for a syscall; gcc/clang put no data in .text, hand-
 * written assembly might. Only 2-byte unprefixed instructions are rewritten.
 * Anonymous executable memory (JITs) is not scanned; [vdso] is, from its
 * in-memory ELF image; [vsyscall] cannot be.
 *
 * This runs inside hooked mmap/mprotect calls (a library being mapped), with
 * the malloc lock possibly held by the interrupted code: it allocates with
 * raw mmap and makes every syscall through graft_sys_raw6().
 */
#include <Zydis/Zydis.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "attach/syscall_hook.h"

#define PAGE 4096ULL

struct site {
    uint64_t addr;
    uint8_t orig[2];
};

static ZydisDecoder decoder;
static int decoder_ready;
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct site *sites;
static uint64_t n_sites, cap_sites;
static struct gsys_stats stats;

/* ---- raw memory, no libc allocator ------------------------------------- */

static void *raw_alloc(uint64_t size)
{
    long p = graft_sys_raw6(SYS_mmap, 0, (long)size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return (p < 0 && p > -4096) ? NULL : (void *)p;
}

static void raw_free(void *p, uint64_t size)
{
    if (p)
        graft_sys_raw6(SYS_munmap, (long)p, (long)size, 0, 0, 0, 0);
}

static int add_site(uint64_t addr, const uint8_t *orig)
{
    if (n_sites == cap_sites) {
        uint64_t ncap = cap_sites ? cap_sites * 2 : 4096;
        struct site *n = raw_alloc(ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        if (sites) {
            memcpy(n, sites, n_sites * sizeof(*n));
            raw_free(sites, cap_sites * sizeof(*n));
        }
        sites = n;
        cap_sites = ncap;
    }
    sites[n_sites].addr = addr;
    memcpy(sites[n_sites].orig, orig, 2);
    n_sites++;
    return 0;
}

/* ---- /proc/self/maps --------------------------------------------------- */

struct region {
    uint64_t lo, hi, off;
    int prot;
    char path[256];
};

static uint64_t parse_hex(const char **p)
{
    uint64_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uint64_t)(c - 'a' + 10);
        else
            return v;
    }
}

/* One line "lo-hi perms off dev inode   path" into r; 0 if malformed. */
static int parse_maps_line(const char *s, const char *end, struct region *r)
{
    const char *p = s;
    r->lo = parse_hex(&p);
    if (*p++ != '-')
        return 0;
    r->hi = parse_hex(&p);
    if (*p++ != ' ' || end - p < 5)
        return 0;
    r->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
              (p[2] == 'x' ? PROT_EXEC : 0);
    p += 5;
    r->off = parse_hex(&p);
    for (int field = 0; field < 2 && p < end; field++) {   /* dev, inode */
        while (p < end && *p == ' ')
            p++;
        while (p < end && *p != ' ')
            p++;
    }
    while (p < end && *p == ' ')
        p++;
    size_t n = (size_t)(end - p);
    if (n >= sizeof(r->path))
        n = sizeof(r->path) - 1;
    memcpy(r->path, p, n);
    r->path[n] = '\0';
    return 1;
}

/* Read all of /proc/self/maps into a raw buffer; *len = bytes. */
static char *read_maps(uint64_t *len, uint64_t *cap)
{
    uint64_t size = 1 << 20;
    for (;;) {
        char *buf = raw_alloc(size);
        if (!buf)
            return NULL;
        long fd = gsys_raw(SYS_open, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) {
            raw_free(buf, size);
            return NULL;
        }
        uint64_t n = 0;
        long r;
        while (n < size && (r = gsys_raw(SYS_read, fd, (long)(buf + n), (long)(size - n))) > 0)
            n += (uint64_t)r;
        gsys_raw(SYS_close, fd, 0, 0);
        if (n < size) {
            *len = n;
            *cap = size;
            return buf;
        }
        raw_free(buf, size);
        size *= 4;
    }
}

/* ---- ELF image --------------------------------------------------------- */

struct image {
    const uint8_t *base;
    uint64_t size;
    int mapped;                /* base is our own mmap of the file */
};

static int open_image(const struct region *r, struct image *im)
{
    if (strcmp(r->path, "[vdso]") == 0) {
        im->base = (const uint8_t *)(uintptr_t)r->lo;
        im->size = r->hi - r->lo;
        im->mapped = 0;
        return 0;
    }
    if (r->path[0] != '/')
        return -ENOENT;
    size_t n = strlen(r->path);
    if (n > 10 && strcmp(r->path + n - 10, " (deleted)") == 0)
        return -ENOENT;
    long fd = gsys_raw(SYS_open, (long)r->path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return (int)fd;
    struct stat st;
    long e = gsys_raw(SYS_fstat, fd, (long)&st, 0);
    if (e < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        gsys_raw(SYS_close, fd, 0, 0);
        return e < 0 ? (int)e : -ENOEXEC;
    }
    long p = graft_sys_raw6(SYS_mmap, 0, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    gsys_raw(SYS_close, fd, 0, 0);
    if (p < 0 && p > -4096)
        return (int)p;
    im->base = (const uint8_t *)p;
    im->size = (uint64_t)st.st_size;
    im->mapped = 1;
    return 0;
}

static void close_image(struct image *im)
{
    if (im->mapped)
        raw_free((void *)im->base, im->size);
}

/* The ELF structures at [off, off + n*entsize), or NULL if out of bounds. */
static const void *in_image(const struct image *im, uint64_t off, uint64_t n,
                            uint64_t entsize)
{
    if (entsize && n > (im->size / entsize))
        return NULL;
    if (off > im->size || n * entsize > im->size - off)
        return NULL;
    return im->base + off;
}

static void sort_u64(uint64_t *a, uint64_t n)
{
    /* heapsort: no allocation, no recursion */
    for (uint64_t start = n / 2; start-- > 0;) {
        for (uint64_t root = start, child; (child = 2 * root + 1) < n; root = child) {
            if (child + 1 < n && a[child] < a[child + 1])
                child++;
            if (a[root] >= a[child])
                break;
            uint64_t t = a[root]; a[root] = a[child]; a[child] = t;
        }
    }
    for (uint64_t end = n; end-- > 1;) {
        uint64_t t = a[0]; a[0] = a[end]; a[end] = t;
        for (uint64_t root = 0, child; (child = 2 * root + 1) < end; root = child) {
            if (child + 1 < end && a[child] < a[child + 1])
                child++;
            if (a[root] >= a[child])
                break;
            t = a[root]; a[root] = a[child]; a[child] = t;
        }
    }
}

/* Function start addresses (runtime), sorted and unique. */
static uint64_t *collect_syms(const struct image *im, const Elf64_Shdr *sh,
                              unsigned shnum, uint64_t bias, uint64_t *count,
                              uint64_t *alloc_size)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < shnum; i++)
        if ((sh[i].sh_type == SHT_SYMTAB || sh[i].sh_type == SHT_DYNSYM) &&
            sh[i].sh_entsize == sizeof(Elf64_Sym))
            total += sh[i].sh_size / sizeof(Elf64_Sym);
    *count = 0;
    *alloc_size = (total + 1) * sizeof(uint64_t);
    uint64_t *a = raw_alloc(*alloc_size);
    if (!a)
        return NULL;
    uint64_t n = 0;
    for (unsigned i = 0; i < shnum; i++) {
        if ((sh[i].sh_type != SHT_SYMTAB && sh[i].sh_type != SHT_DYNSYM) ||
            sh[i].sh_entsize != sizeof(Elf64_Sym))
            continue;
        uint64_t ns = sh[i].sh_size / sizeof(Elf64_Sym);
        const Elf64_Sym *sym = in_image(im, sh[i].sh_offset, ns, sizeof(Elf64_Sym));
        if (!sym)
            continue;
        for (uint64_t j = 0; j < ns && n < total; j++) {
            int t = ELF64_ST_TYPE(sym[j].st_info);
            if ((t == STT_FUNC || t == STT_GNU_IFUNC) && sym[j].st_shndx != SHN_UNDEF &&
                sym[j].st_value)
                a[n++] = bias + sym[j].st_value;
        }
    }
    sort_u64(a, n);
    uint64_t u = 0;
    for (uint64_t j = 0; j < n; j++)
        if (u == 0 || a[u - 1] != a[j])
            a[u++] = a[j];
    *count = u;
    return a;
}

/* ---- sweep and patch --------------------------------------------------- */

static int is_ours(uint64_t a)
{
    return a + 2 > (uint64_t)(uintptr_t)graft_sys_text_start &&
           a < (uint64_t)(uintptr_t)graft_sys_text_end;
}

/* First index i with syms[i] > a. */
static uint64_t next_sync(const uint64_t *syms, uint64_t n, uint64_t a)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (syms[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Make [lo,hi) writable around each patch; prot is the mapping's. */
static int patch_site(uint64_t a, int prot)
{
    uint8_t *p = (uint8_t *)(uintptr_t)a;
    uint64_t pg = a & ~(PAGE - 1);
    uint64_t len = ((a + 2 + PAGE - 1) & ~(PAGE - 1)) - pg;
    if (!(p[0] == 0x0f && (p[1] == 0x05 || p[1] == 0x34)))
        return 0;
    if (graft_sys_raw6(SYS_mprotect, (long)pg, (long)len, prot | PROT_WRITE | PROT_EXEC,
                       0, 0, 0) < 0)
        return -EPERM;
    uint8_t orig[2] = {p[0], p[1]};
    /* one 16-bit store so a thread running this code sees old or new */
    __atomic_store_n((uint16_t *)p, (uint16_t)0xd0ff, __ATOMIC_SEQ_CST);
    graft_sys_raw6(SYS_mprotect, (long)pg, (long)len, prot, 0, 0, 0);
    add_site(a, orig);
    stats.sites_rewritten++;
    return 1;
}

static void sweep(uint64_t lo, uint64_t hi, const uint64_t *syms, uint64_t nsyms,
                  int prot)
{
    uint64_t p = lo;
    uint64_t k = next_sync(syms, nsyms, p);
    while (p < hi) {
        while (k < nsyms && syms[k] <= p)
            k++;
        uint64_t sync = k < nsyms ? syms[k] : UINT64_MAX;
        ZydisDecodedInstruction insn;
        uint64_t avail = hi - p > ZYDIS_MAX_INSTRUCTION_LENGTH ? ZYDIS_MAX_INSTRUCTION_LENGTH
                                                               : hi - p;
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, NULL,
                                                        (const void *)(uintptr_t)p,
                                                        avail, &insn))) {
            p = sync < hi ? sync : p + 1;
            continue;
        }
        if (p + insn.length > sync) {
            stats.desyncs++;
            p = sync;
            continue;
        }
        if ((insn.mnemonic == ZYDIS_MNEMONIC_SYSCALL ||
             insn.mnemonic == ZYDIS_MNEMONIC_SYSENTER) && insn.length == 2 && !is_ours(p))
            if (patch_site(p, prot) < 0)
                stats.regions_skipped++;
        p += insn.length;
    }
}

static void scan_region(const struct region *r, uint64_t lo, uint64_t hi)
{
    struct image im = {0};
    if (open_image(r, &im) < 0) {
        stats.regions_skipped++;
        return;
    }
    stats.regions_scanned++;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)im.base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64) {
        stats.regions_skipped++;
        close_image(&im);
        return;
    }
    const Elf64_Phdr *ph = in_image(&im, eh->e_phoff, eh->e_phnum, sizeof(Elf64_Phdr));
    uint64_t bias = r->lo - r->off;
    for (unsigned i = 0; ph && i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && (ph[i].p_offset & ~(PAGE - 1)) == r->off) {
            bias = r->lo - (ph[i].p_vaddr & ~(PAGE - 1));
            break;
        }
    uint64_t a = r->lo > lo ? r->lo : lo, b = r->hi < hi ? r->hi : hi;
    const Elf64_Shdr *sh = NULL;
    if (eh->e_shentsize == sizeof(Elf64_Shdr))
        sh = in_image(&im, eh->e_shoff, eh->e_shnum, sizeof(Elf64_Shdr));
    if (!sh || eh->e_shnum == 0) {
        sweep(a, b, NULL, 0, r->prot);       /* no sections: the whole mapping */
        close_image(&im);
        return;
    }
    uint64_t nsyms, syms_size;
    uint64_t *syms = collect_syms(&im, sh, eh->e_shnum, bias, &nsyms, &syms_size);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (!(sh[i].sh_flags & SHF_EXECINSTR) || sh[i].sh_type != SHT_PROGBITS ||
            !sh[i].sh_addr)
            continue;
        uint64_t s = bias + sh[i].sh_addr, e = s + sh[i].sh_size;
        if (s < a)
            s = a;
        if (e > b)
            e = b;
        if (s < e)
            sweep(s, e, syms ? syms : (uint64_t *)NULL, syms ? nsyms : 0, r->prot);
    }
    raw_free(syms, syms_size);
    close_image(&im);
}

long gsys_scan_range(uint64_t lo, uint64_t hi)
{
    if (!decoder_ready)
        return -EINVAL;
    pthread_mutex_lock(&scan_lock);
    uint64_t before = stats.sites_rewritten;
    uint64_t len, cap;
    char *buf = read_maps(&len, &cap);
    if (!buf) {
        pthread_mutex_unlock(&scan_lock);
        return -ENOMEM;
    }
    for (char *s = buf, *end; s < buf + len; s = end + 1) {
        end = memchr(s, '\n', (size_t)(buf + len - s));
        if (!end)
            end = buf + len;
        struct region r;
        if (!parse_maps_line(s, end, &r) || !(r.prot & PROT_EXEC))
            continue;
        if (r.hi <= lo || r.lo >= hi || r.lo < PAGE)
            continue;
        if (strcmp(r.path, "[vsyscall]") == 0)
            continue;
        scan_region(&r, lo, hi);
    }
    raw_free(buf, cap);
    long n = (long)(stats.sites_rewritten - before);
    pthread_mutex_unlock(&scan_lock);
    return n;
}

int gsys_scanner_init(struct graft_err *err)
{
    if (decoder_ready)
        return 0;
    if (!ZYAN_SUCCESS(ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64,
                                       ZYDIS_STACK_WIDTH_64)))
        return graft_errf(err, -EINVAL, "syscall hooks: Zydis decoder init failed");
    ZydisDecoderEnableMode(&decoder, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE);
    decoder_ready = 1;
    return 0;
}

void gsys_unrewrite_all(void)
{
    pthread_mutex_lock(&scan_lock);
    for (uint64_t i = 0; i < n_sites; i++) {
        uint8_t *p = (uint8_t *)(uintptr_t)sites[i].addr;
        uint64_t pg = sites[i].addr & ~(PAGE - 1);
        uint64_t len = ((sites[i].addr + 2 + PAGE - 1) & ~(PAGE - 1)) - pg;
        /* the mapping may be gone (dlclose): only touch it if mprotect works */
        if (graft_sys_raw6(SYS_mprotect, (long)pg, (long)len,
                           PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0) < 0)
            continue;
        if (p[0] == 0xff && p[1] == 0xd0) {
            uint16_t v;
            memcpy(&v, sites[i].orig, 2);
            __atomic_store_n((uint16_t *)p, v, __ATOMIC_SEQ_CST);
        }
        graft_sys_raw6(SYS_mprotect, (long)pg, (long)len, PROT_READ | PROT_EXEC, 0, 0, 0);
    }
    n_sites = 0;
    pthread_mutex_unlock(&scan_lock);
}

void gsys_get_stats(struct gsys_stats *st)
{
    *st = stats;
}
