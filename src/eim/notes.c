/*
 * notes.c - the source entries a host declares with GRAFT_ENTRY()
 * (include/graft/eim.h): records in its .note.graft section. Only libelf
 * is needed here, so the agent, which reads these to attach source
 * entries, does not pull in libdw (host.c, DWARF checks for
 * `graft eim check`).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eim/eim_int.h"
#include "graft/eim.h"

int geim_elf_open(const char *path, int *fd, Elf **elf, struct graft_err *err)
{
    if (elf_version(EV_CURRENT) == EV_NONE)
        return graft_errf(err, -EINVAL, "libelf: %s", elf_errmsg(-1));
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return graft_errf(err, -errno, "%s: cannot open host binary: %s", path, strerror(errno));
    *elf = elf_begin(*fd, ELF_C_READ, NULL);
    if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
        if (*elf)
            elf_end(*elf);
        close(*fd);
        return graft_errf(err, -ENOEXEC, "%s: not an ELF file", path);
    }
    return 0;
}

void geim_elf_close(int fd, Elf *elf)
{
    elf_end(elf);
    close(fd);
}

int geim_list_src_entries(const char *binary, struct geim_src_entry **out,
                          uint32_t *n, struct graft_err *err)
{
    *out = NULL;
    *n = 0;
    struct { int fd; Elf *elf; } h;
    int rc = geim_elf_open(binary, &h.fd, &h.elf, err);
    if (rc)
        return rc;
    size_t shstrndx;
    if (elf_getshdrstrndx(h.elf, &shstrndx)) {
        geim_elf_close(h.fd, h.elf);
        return graft_errf(err, -ENOEXEC, "%s: no section name table", binary);
    }
    struct geim_src_entry *v = NULL;
    uint32_t cnt = 0, cap = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(h.elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        const char *sn = elf_strptr(h.elf, shstrndx, sh.sh_name);
        if (!sn || strcmp(sn, ".note.graft"))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d)
            continue;
        size_t off = 0, noff, doff;
        GElf_Nhdr nh;
        while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
            if (nh.n_namesz != 6 || memcmp((char *)d->d_buf + noff, "graft", 6) || nh.n_type != GRAFT_NOTE_ENTRY)
                continue;
            const char *desc = (const char *)d->d_buf + doff;
            size_t dl = nh.n_descsz;
            /* u64 address, name NUL, args NUL */
            if (dl < 10)
                continue;
            const char *nm = desc + 8, *end = desc + dl;
            const char *nz = memchr(nm, 0, end - nm);
            if (!nz)
                continue;
            const char *args = nz + 1;
            const char *az = args < end ? memchr(args, 0, end - args) : NULL;
            if (!az)
                continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                struct geim_src_entry *t = realloc(v, cap * sizeof(*v));
                if (!t) {
                    free(v);
                    geim_elf_close(h.fd, h.elf);
                    return graft_errf(err, -ENOMEM, "out of memory");
                }
                v = t;
            }
            struct geim_src_entry *e = &v[cnt++];
            memset(e, 0, sizeof(*e));
            memcpy(&e->addr, desc, 8);
            snprintf(e->name, sizeof(e->name), "%.*s", (int)(nz - nm), nm);
            snprintf(e->args, sizeof(e->args), "%.*s", (int)(az - args), args);
            for (const char *c = e->args; *c; c++)
                if (*c == '@')
                    e->n_args++;
        }
    }
    geim_elf_close(h.fd, h.elf);
    *out = v;
    *n = cnt;
    return 0;
}

