/*
 * symbols_elf.c - symbol <-> address for the running process: the ELF
 * symbol tables (.symtab first, then .dynsym, read with libelf) of the file
 * that /proc/self/maps shows mapped, plus that mapping's load bias.
 *
 * bias = (start of the file's mapping at offset 0) - (lowest PT_LOAD vaddr,
 * page aligned), which is 0 for non-PIE executables. IFUNC symbols (e.g.
 * libc's memcpy) resolve through dlsym to the implementation actually used.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach/func_internal.h"
#include "util/procmaps.h"

struct mapped_file {
    char path[PATH_MAX];
    uint64_t base;           /* start of the mapping at file offset 0 */
};

/* Does the mapping's path match what the user named? A path matches itself
 * (after realpath); a bare name matches the basename exactly or as a prefix
 * followed by '.' or '-' ("libc" matches "libc.so.6"). */
static int name_matches(const char *want, const char *want_real, const char *path)
{
    if (strchr(want, '/'))
        return strcmp(want_real, path) == 0;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(want);
    return strcmp(b, want) == 0 ||
           (strncmp(b, want, n) == 0 && (b[n] == '.' || b[n] == '-'));
}

/* Find the file for binary (NULL = main executable), or the one containing
 * addr when binary is NULL and addr != 0. */
static int find_mapping(const char *binary, uint64_t addr, struct mapped_file *mf)
{
    char want_real[PATH_MAX] = "";
    char exe[PATH_MAX] = "";
    if (binary && strchr(binary, '/') && !realpath(binary, want_real))
        return -ENOENT;
    if (!binary && !addr) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
            return -ENOENT;
        exe[n] = '\0';
    }
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -errno;
    char line[PATH_MAX + 128];
    char target[PATH_MAX] = "";
    int found = 0;
    /* First pass finds which file; the mapping at offset 0 gives the base. */
    while (fgets(line, sizeof(line), f)) {
        struct gprocmaps_line m;
        if (gprocmaps_parse(line, &m) || *m.path != '/')
            continue;
        int match;
        if (binary)
            match = name_matches(binary, want_real, m.path);
        else if (addr)
            match = addr >= m.lo && addr < m.hi;
        else
            match = strcmp(m.path, exe) == 0;
        if (match) {
            snprintf(target, sizeof(target), "%s", m.path);
            found = 1;
            break;
        }
    }
    if (!found) {
        fclose(f);
        return -ENOENT;
    }
    rewind(f);
    found = 0;
    while (fgets(line, sizeof(line), f)) {
        struct gprocmaps_line m;
        if (gprocmaps_parse(line, &m) == 0 && strcmp(m.path, target) == 0 && (!found || m.lo < mf->base)) {
            mf->base = m.lo;
            found = 1;
        }
    }
    fclose(f);
    snprintf(mf->path, sizeof(mf->path), "%s", target);
    return found ? 0 : -ENOENT;
}

struct elf_file {
    int fd;
    Elf *elf;
    uint64_t bias;
};

static int elf_open_mapped(const struct mapped_file *mf, struct elf_file *ef)
{
    elf_version(EV_CURRENT);
    ef->fd = open(mf->path, O_RDONLY | O_CLOEXEC);
    if (ef->fd < 0)
        return -errno;
    ef->elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
    size_t nph;
    if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF || elf_getphdrnum(ef->elf, &nph) < 0) {
        if (ef->elf)
            elf_end(ef->elf);
        close(ef->fd);
        return -ENOEXEC;
    }
    uint64_t min_vaddr = UINT64_MAX;
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(ef->elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < min_vaddr)
            min_vaddr = ph.p_vaddr;
    }
    if (min_vaddr == UINT64_MAX)
        min_vaddr = 0;
    ef->bias = mf->base - (min_vaddr & ~(uint64_t)4095);
    return 0;
}

static void elf_close_file(struct elf_file *ef)
{
    elf_end(ef->elf);
    close(ef->fd);
}

/* Visit function/object symbols of .symtab then .dynsym; stop when fn
 * returns nonzero (and return that). */
static int elf_each_symbol(struct elf_file *ef,
                           int (*fn)(void *arg, const char *name, const GElf_Sym *sym),
                           void *arg)
{
    for (int pass = 0; pass < 2; pass++) {
        Elf_Scn *scn = NULL;
        uint32_t want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        while ((scn = elf_nextscn(ef->elf, scn))) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != want || !sh.sh_entsize)
                continue;
            Elf_Data *d = elf_getdata(scn, NULL);
            if (!d)
                continue;
            size_t n = sh.sh_size / sh.sh_entsize;
            for (size_t i = 0; i < n; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
                    continue;
                const char *name = elf_strptr(ef->elf, sh.sh_link, sym.st_name);
                if (!name || !*name)
                    continue;
                int rc = fn(arg, name, &sym);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

struct by_name {
    const char *name;
    GElf_Sym sym;
};

static int match_name(void *arg, const char *name, const GElf_Sym *sym)
{
    struct by_name *b = arg;
    int type = GELF_ST_TYPE(sym->st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE && type != STT_OBJECT)
        return 0;
    /* .dynsym names may carry a version ("malloc@@GLIBC_2.2.5") in tools'
     * output but not in the table itself; compare exactly. */
    if (strcmp(name, b->name) != 0)
        return 0;
    b->sym = *sym;
    return 1;
}

/* addr lies in an executable mapping of the file at path. */
static int exec_mapped(const char *path, uint64_t addr)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    char line[PATH_MAX + 128];
    int ok = 0;
    while (!ok && fgets(line, sizeof(line), f)) {
        uint64_t lo, hi;
        char perms[8];
        int pos = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &lo, &hi, perms, &pos) < 3)
            continue;
        char *p = line + pos;
        while (*p == ' ')
            p++;
        p[strcspn(p, "\n")] = '\0';
        ok = addr >= lo && addr < hi && perms[2] == 'x' && strcmp(p, path) == 0;
    }
    fclose(f);
    return ok;
}

int gattach_resolve_sym(const char *binary, const char *symbol, uint64_t offset,
                        void **addr, uint64_t *size, struct graft_err *err)
{
    struct mapped_file mf;
    struct elf_file ef;
    const char *what = binary ? binary : "the main executable";

    if (!symbol || !addr)
        return graft_errf(err, -EINVAL, "attach: resolve needs a symbol name");
    int rc = find_mapping(binary, 0, &mf);
    if (rc < 0)
        return graft_errf(err, rc, "attach: %s is not mapped in this process "
                          "(load it first, or give its full path)", what);
    rc = elf_open_mapped(&mf, &ef);
    if (rc < 0)
        return graft_errf(err, rc, "attach: cannot read ELF file %s: %s", mf.path,
                          rc == -ENOEXEC ? "not an ELF file" : strerror(-rc));
    if (!*symbol) {       /* a link-time address: stripped code */
        uint64_t a = ef.bias + offset;
        elf_close_file(&ef);
        if (!exec_mapped(mf.path, a))
            return graft_errf(err, -EINVAL, "attach: address %#lx of %s is not in its code",
                              (unsigned long)offset, mf.path);
        *addr = (void *)a;
        if (size)
            *size = 0;
        return 0;
    }
    struct by_name b = { symbol, { 0 } };
    int found = elf_each_symbol(&ef, match_name, &b);
    uint64_t bias = ef.bias;
    elf_close_file(&ef);
    if (!found)
        return graft_errf(err, -ENOENT, "attach: symbol '%s' not found in %s (%s); "
                          "is the file stripped?", symbol, what, mf.path);
    uint64_t a = bias + b.sym.st_value;
    if (GELF_ST_TYPE(b.sym.st_info) == STT_GNU_IFUNC) {
        /* The symbol is the resolver; ask the dynamic linker for the
         * implementation it picked. */
        void *hd = dlopen(mf.path, RTLD_NOW | RTLD_NOLOAD);
        void *impl = hd ? dlsym(hd, symbol) : NULL;
        if (hd)
            dlclose(hd);
        if (!impl)
            return graft_errf(err, -ENOENT, "attach: '%s' in %s is an IFUNC and the "
                              "dynamic linker did not resolve it", symbol, mf.path);
        a = (uint64_t)impl;
        if (size)
            *size = 0;
    } else if (size) {
        *size = b.sym.st_size;
    }
    if (b.sym.st_size && offset >= b.sym.st_size && GELF_ST_TYPE(b.sym.st_info) != STT_GNU_IFUNC)
        return graft_errf(err, -EINVAL, "attach: offset %lu is past the end of '%s' (%lu bytes)",
                          (unsigned long)offset, symbol, (unsigned long)b.sym.st_size);
    *addr = (void *)(a + offset);
    return 0;
}

int gattach_binary_info(const char *binary, char *path, size_t path_len, uint64_t *bias,
                        struct graft_err *err)
{
    struct mapped_file mf;
    struct elf_file ef;
    const char *what = binary ? binary : "the main executable";
    int rc = find_mapping(binary, 0, &mf);
    if (rc < 0)
        return graft_errf(err, rc, "attach: %s is not mapped in this process "
                          "(load it first, or give its full path)", what);
    rc = elf_open_mapped(&mf, &ef);
    if (rc < 0)
        return graft_errf(err, rc, "attach: cannot read ELF file %s: %s", mf.path,
                          rc == -ENOEXEC ? "not an ELF file" : strerror(-rc));
    *bias = ef.bias;
    elf_close_file(&ef);
    if (path)
        snprintf(path, path_len, "%s", mf.path);
    return 0;
}

int gattach_resolve(const char *binary, const char *symbol, uint64_t offset,
                    void **addr, struct graft_err *err)
{
    return gattach_resolve_sym(binary, symbol, offset, addr, NULL, err);
}

struct by_addr {
    uint64_t addr;           /* file-relative */
    uint64_t start, size;
    int found;
};

static int match_addr(void *arg, const char *name, const GElf_Sym *sym)
{
    struct by_addr *b = arg;
    int type = GELF_ST_TYPE(sym->st_info);
    (void)name;
    if (type != STT_FUNC || !sym->st_size)
        return 0;
    if (b->addr >= sym->st_value && b->addr < sym->st_value + sym->st_size) {
        b->start = sym->st_value;
        b->size = sym->st_size;
        b->found = 1;
        return 1;
    }
    return 0;
}

int gsym_containing(uint64_t addr, uint64_t *start, uint64_t *size)
{
    struct mapped_file mf;
    struct elf_file ef;
    int rc = find_mapping(NULL, addr, &mf);
    if (rc < 0)
        return rc;
    rc = elf_open_mapped(&mf, &ef);
    if (rc < 0)
        return rc;
    struct by_addr b = { addr - ef.bias, 0, 0, 0 };
    elf_each_symbol(&ef, match_addr, &b);
    uint64_t bias = ef.bias;
    elf_close_file(&ef);
    if (!b.found)
        return -ESRCH;              /* in a file, in no function symbol: stripped code */
    *start = b.start + bias;
    *size = b.size;
    return 0;
}
