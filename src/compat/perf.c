/*
 * perf.c - perf_event_open(2), its ioctls and mmap, as libbpf uses them:
 *
 *   uprobe PMU (type from /sys/bus/event_source/devices/uprobe/type):
 *     config1 = path, config2 = file offset of the probed instruction, the
 *     retprobe bit from .../uprobe/format/retprobe. graft's agents attach by
 *     symbol, so the file offset is turned into symbol + delta here (ELF
 *     program headers give the address, .symtab/.dynsym the function).
 *   PERF_TYPE_TRACEPOINT: config = the id of a tracefs event; only
 *     syscalls/sys_enter_* and sys_exit_* and raw_syscalls/sys_enter and
 *     sys_exit (every system call: syscall number -1), sched/sched_process_exit
 *     and signal/signal_generate exist in userspace.
 *   PERF_TYPE_SOFTWARE / PERF_COUNT_SW_BPF_OUTPUT: one buffer of a perf
 *     event array. libbpf maps it before it stores the descriptor in the
 *     map, so the mapping is a placeholder that is replaced (mremap of the
 *     map's pages, old size 0: a second view of the same shared pages) once
 *     the map update says which index it is.
 *
 * Other perf events (hardware counters, ...) go to the kernel; kprobes and
 * other tracepoints fail with EOPNOTSUPP and a message.
 */
#define _GNU_SOURCE
#include "compat/compat.h"
#include "compat/compat_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int read_int_file(const char *path, int *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int ok = fscanf(f, "%d", out) == 1;
    fclose(f);
    return ok ? 0 : -EINVAL;
}

static int pmu_type(const char *pmu)
{
    char path[128];
    int t;
    snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/type", pmu);
    return read_int_file(path, &t) == 0 ? t : -1;
}

static int retprobe_bit(void)
{
    FILE *f = fopen("/sys/bus/event_source/devices/uprobe/format/retprobe", "re");
    int bit = 0;
    if (f) {
        if (fscanf(f, "config:%d", &bit) != 1)
            bit = 0;
        fclose(f);
    }
    return bit;
}

/* ---- file offset -> symbol + delta ---- */

static int off_to_vaddr(Elf *e, uint64_t off, uint64_t *vaddr)
{
    size_t n;
    if (elf_getphdrnum(e, &n) < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && off >= ph.p_offset &&
            off < ph.p_offset + ph.p_filesz) {
            *vaddr = off - ph.p_offset + ph.p_vaddr;
            return 0;
        }
    }
    return -ENOENT;
}

/* Best function symbol containing vaddr: one starting exactly there, then a
 * global one (names the agent can look up unambiguously), then any. */
static int find_symbol(Elf *e, uint64_t vaddr, char *sym, size_t symlen, uint64_t *delta)
{
    int best = -1;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t n = sh.sh_size / sh.sh_entsize;
        for (size_t i = 0; d && i < n; i++) {
            GElf_Sym s;
            if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF)
                continue;
            int type = GELF_ST_TYPE(s.st_info);
            if (type != STT_FUNC && type != STT_GNU_IFUNC)
                continue;
            if (vaddr < s.st_value || (s.st_size ? vaddr >= s.st_value + s.st_size : vaddr != s.st_value))
                continue;
            const char *name = elf_strptr(e, sh.sh_link, s.st_name);
            if (!name || !*name)
                continue;
            int score = (vaddr == s.st_value ? 4 : 0) + (GELF_ST_BIND(s.st_info) == STB_GLOBAL ? 2 : 0) +
                        (GELF_ST_BIND(s.st_info) == STB_WEAK ? 1 : 0);
            if (score > best) {
                best = score;
                snprintf(sym, symlen, "%s", name);
                *delta = vaddr - s.st_value;
            }
        }
    }
    return best >= 0 ? 0 : -ENOENT;
}

/* The function symbol + delta at file offset off; in stripped code (a
 * USDT probe in a static function of a stripped binary, as python3.11's
 * gc probes) "" + the link-time address, which graft hooks with int3 -
 * entry probes only (a return probe needs the function's entry). */
static int resolve_file_offset(const char *path, uint64_t off, int retprobe, char *sym, size_t symlen,
                               uint64_t *delta)
{
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        gc_warn("uprobe: cannot open %s: %s", path, strerror(e));
        return -e;
    }
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    int rc = -EINVAL;
    uint64_t vaddr = 0;
    if (!e)
        gc_warn("uprobe: %s is not an ELF file: %s", path, elf_errmsg(-1));
    else if ((rc = off_to_vaddr(e, off, &vaddr)) < 0)
        gc_warn("uprobe: file offset %#llx is not in a loadable segment of %s", (unsigned long long)off, path);
    else if ((rc = find_symbol(e, vaddr, sym, symlen, delta)) < 0 && retprobe)
        gc_warn("uprobe: file offset %#llx (address %#llx) of %s is in no function symbol; a return probe "
                "needs the function's entry, which stripped code does not say", (unsigned long long)off,
                (unsigned long long)vaddr, path);
    else if (rc < 0) {
        sym[0] = '\0';
        *delta = vaddr;
        rc = 0;
        gc_warn_once("uprobe: file offset %#llx of %s is in no function symbol (stripped code): probed at its "
                     "address with an int3 hook (a signal per hit)", (unsigned long long)off, path);
    }
    if (e)
        elf_end(e);
    close(fd);
    return rc < 0 ? -EINVAL : 0;
}

/* ---- tracepoints ---- */

/* The tracefs event with this id among the ones graft runs, as
 * "CATEGORY/NAME": syscalls/sys_enter_* and sys_exit_*, raw_syscalls/sys_enter
 * and sys_exit (every system call), sched/sched_process_exit and
 * signal/signal_generate (attach/sys_events.c). */
static int tracepoint_name(uint64_t id, char *name, size_t len)
{
    static const char *roots[] = { "/sys/kernel/debug/tracing/events", "/sys/kernel/tracing/events" };
    static const char *categories[] = { "syscalls", "raw_syscalls", "sched/sched_process_exit",
                                        "signal/signal_generate" };
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < 4; c++) {
            char dpath[96];
            snprintf(dpath, sizeof(dpath), "%s/%s", roots[r], categories[c]);
            if (c >= 2) {   /* one event */
                char path[PATH_MAX];
                int v;
                snprintf(path, sizeof(path), "%s/id", dpath);
                if (read_int_file(path, &v) == 0 && (uint64_t)v == id) {
                    snprintf(name, len, "%s", categories[c]);
                    return 0;
                }
                continue;
            }
            DIR *dir = opendir(dpath);
            if (!dir)
                continue;
            struct dirent *de;
            int found = 0;
            while (!found && (de = readdir(dir))) {
                if (de->d_name[0] == '.')
                    continue;
                char path[PATH_MAX];
                int v;
                snprintf(path, sizeof(path), "%s/%.200s/id", dpath, de->d_name);
                if (read_int_file(path, &v) == 0 && (uint64_t)v == id) {
                    snprintf(name, len, "%s/%.*s", categories[c], (int)(len - 32), de->d_name);
                    found = 1;
                }
            }
            closedir(dir);
            if (found)
                return 0;
        }
    }
    return -ENOENT;
}

static int open_tracepoint(struct cobj *o, uint64_t id)
{
    char name[96], path[PATH_MAX];
    uint64_t off, ref;
    int ret;
    if (gc_tracefs_event(id, path, sizeof(path), &off, &ref, &ret))   /* an uprobe_events line (tracefs.c) */
        return gc_perf_uprobe(o, path, off, ref, ret);
    if (tracepoint_name(id, name, sizeof(name)) < 0) {
        gc_warn("perf_event_open: tracepoint id %llu is not a syscalls/sys_enter_* or sys_exit_* tracepoint, "
                "raw_syscalls/sys_enter or sys_exit, sched/sched_process_exit or signal/signal_generate; only "
                "those exist in userspace", (unsigned long long)id);
        return -EOPNOTSUPP;
    }
    int nr;
    if (strncmp(name, "sched/", 6) == 0 || strncmp(name, "signal/", 7) == 0) {
        /* run by the agents from the exit and kill-family calls (attach/sys_events.c) */
        o->tp_event = name[1] == 'c' ? CLINK_PROC_EXIT : CLINK_SIGNAL_GENERATE;
        nr = -1;
    } else if (strncmp(name, "raw_syscalls/", 13) == 0) {
        /* Every system call, with the same record as syscalls/ (the
         * id field is what tells them apart). */
        const char *ev = name + 13;
        if (strcmp(ev, "sys_enter") != 0 && strcmp(ev, "sys_exit") != 0) {
            gc_warn("perf_event_open: tracepoint %s: only raw_syscalls/sys_enter and sys_exit exist in userspace",
                    name);
            return -EOPNOTSUPP;
        }
        o->sys_exit = strcmp(ev, "sys_exit") == 0;
        nr = -1;
    } else {
        const char *ev = name + 9;   /* after "syscalls/" */
        o->sys_exit = strncmp(ev, "sys_exit_", 9) == 0;
        const char *call = ev + (o->sys_exit ? 9 : 10);
        nr = gc_syscall_nr(call);
        if (nr < 0) {
            gc_warn("perf_event_open: tracepoint %s: graft knows no x86-64 system call '%s'", name, call);
            return -EOPNOTSUPP;
        }
    }
    o->perf_kind = CPERF_TP;
    o->syscall_nr = nr;
    snprintf(o->tp_name, sizeof(o->tp_name), "%s", name);
    return 0;
}

int gc_perf_uprobe(struct cobj *o, const char *path, uint64_t offset, uint64_t ref_ctr, int retprobe)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return -errno;
    if (strlen(real) >= sizeof(o->binary))
        return -ENAMETOOLONG;
    int rc = resolve_file_offset(real, offset, retprobe, o->symbol, sizeof(o->symbol), &o->offset);
    if (rc < 0)
        return rc;
    snprintf(o->binary, sizeof(o->binary), "%s", real);
    o->perf_kind = retprobe ? CPERF_URETPROBE : CPERF_UPROBE;
    if (ref_ctr)   /* semaphore.c; the target's view of the file, as the kernel's */
        return gc_sem_get(o, o->pid, path, ref_ctr);
    return 0;
}

static int open_uprobe(struct cobj *o, const struct perf_event_attr *attr, int retbit)
{
    const char *path = (const char *)(uintptr_t)attr->uprobe_path;
    if (!path)
        return -EINVAL;
    return gc_perf_uprobe(o, path, attr->probe_offset, attr->config >> 32, (attr->config >> retbit) & 1);
}

int gc_perf_open(void *uattr, int pid, int cpu, int group_fd, unsigned long flags, long *ret)
{
    static int uprobe_type = -2, kprobe_type = -2, retbit;
    const struct perf_event_attr *attr = uattr;
    if (!attr)
        return 0;
    if (uprobe_type == -2) {
        uprobe_type = pmu_type("uprobe");
        kprobe_type = pmu_type("kprobe");
        retbit = retprobe_bit();
    }
    if (gc_timer_open(attr, pid, cpu, ret))
        return 1;
    int is_uprobe = uprobe_type >= 0 && (int)attr->type == uprobe_type;
    int is_tp = attr->type == PERF_TYPE_TRACEPOINT;
    int is_out = attr->type == PERF_TYPE_SOFTWARE && attr->config == PERF_COUNT_SW_BPF_OUTPUT;
    if (kprobe_type >= 0 && (int)attr->type == kprobe_type) {
        gc_warn("perf_event_open: kprobes probe kernel functions, which do not exist in userspace");
        *ret = -1;
        errno = EOPNOTSUPP;
        return 1;
    }
    if (!is_uprobe && !is_tp && !is_out)
        return 0;
    (void)group_fd;
    (void)flags;
    gc_lock();
    struct cobj *o = gc_obj_new(COBJ_PERF);
    int rc = o ? 0 : -errno;
    if (rc == 0) {
        o->pid = pid == -1 ? 0 : pid == 0 ? getpid() : pid;
        o->cpu = cpu;
        o->syscall_nr = -1;
        if (is_uprobe)
            rc = open_uprobe(o, attr, retbit);
        else if (is_tp)
            rc = open_tracepoint(o, attr->config);
        else
            o->perf_kind = CPERF_OUTPUT;
        if (rc < 0)
            close(o->fd);
    }
    gc_unlock();
    if (rc < 0) {
        *ret = -1;
        errno = -rc;
    } else {
        *ret = o->fd;
        if (gc_debug)
            fprintf(stderr, "graft-compat: perf_event_open %s%s%s+%#llx%s = %d\n",
                    o->perf_kind == CPERF_OUTPUT ? "bpf-output" : "", o->binary, o->symbol[0] ? ":" : "",
                    (unsigned long long)o->offset, o->tp_name, o->fd);
    }
    return 1;
}

int gc_perf_link_kind(const struct cobj *perf, const struct cobj *prog)
{
    switch (perf->perf_kind) {
    case CPERF_UPROBE:
    case CPERF_URETPROBE:
        if (prog->prog_type != BPF_PROG_TYPE_KPROBE)
            return -EINVAL;
        return perf->perf_kind == CPERF_UPROBE ? CLINK_UPROBE : CLINK_URETPROBE;
    case CPERF_SAMPLE:
        if (prog->prog_type != BPF_PROG_TYPE_PERF_EVENT)
            return -EINVAL;
        gc_timer_to_sampler(perf, (struct cobj *)prog);
        return CLINK_PERF_SAMPLE;
    case CPERF_TP:
        if (prog->prog_type != BPF_PROG_TYPE_TRACEPOINT)
            return -EINVAL;
        if (perf->tp_event)
            return perf->tp_event;
        if (perf->sys_exit) {
            /* Loaded against the wider sys_enter record; the exit record is smaller. */
            char log[256] = "";
            int rc = gc_verify((struct cobj *)prog, 1, 1, log, sizeof(log));
            if (rc < 0) {
                gc_warn("attach %s to %s: rejected for the sys_exit record: %s", prog->name, perf->tp_name, log);
                return rc;
            }
            return CLINK_SYS_EXIT;
        }
        return CLINK_SYS_ENTER;
    default:
        return -EINVAL;
    }
}

int gc_perf_ioctl(struct cobj *o, unsigned long req, unsigned long arg)
{
    if (o->kind != COBJ_PERF) {
        errno = ENOTTY;
        return -1;
    }
    int rc = 0;
    if (o->perf_kind == CPERF_TIMER && (req == PERF_EVENT_IOC_ENABLE || req == PERF_EVENT_IOC_DISABLE))
        return gc_timer_ioctl(o, req);
    switch (req) {
    case PERF_EVENT_IOC_ENABLE:
    case PERF_EVENT_IOC_DISABLE:
    case PERF_EVENT_IOC_RESET:
        break;
    case PERF_EVENT_IOC_SET_BPF:
        rc = gc_perf_set_bpf(o, (int)arg);
        break;
    default:
        gc_warn_once("ioctl %#lx on a perf event: not supported by graft", req);
        rc = -ENOTTY;
    }
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

/* ---- mmap ---- */

static void *view(void *src, size_t len, void *at)
{
    return mremap(src, 0, len, MREMAP_MAYMOVE | (at ? MREMAP_FIXED : 0), at);
}

static void *mmap_ringbuf(struct cobj *o, void *addr, size_t len, int prot, int flags, off_t off)
{
    size_t page = (size_t)getpagesize(), data = o->def.max_entries;
    uint8_t *pages = gmap_ringbuf_pages(o->map);
    void *at = flags & MAP_FIXED ? addr : NULL;
    void *res;
    if (off == 0 && len == page) {
        res = view(pages, page, at);
    } else if ((size_t)off == page && len == page + 2 * data) {
        res = mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | (flags & MAP_FIXED), -1, 0);
        if (res != MAP_FAILED &&
            (view(pages + page, page + data, res) == MAP_FAILED ||
             view(pages + 2 * page, data, (uint8_t *)res + page + data) == MAP_FAILED)) {
            int e = errno;
            munmap(res, len);
            errno = e;
            res = MAP_FAILED;
        }
    } else {
        gc_warn("mmap of ring buffer %s at offset %lld, %zu bytes: not the consumer or producer pages",
                o->name, (long long)off, len);
        errno = EINVAL;
        return MAP_FAILED;
    }
    if (res != MAP_FAILED) {
        mprotect(res, len, prot);
        gc_watch(o);
    }
    return res;
}

/* A frozen map's values can no longer change, and the verifier took them
 * as constants: the tool gets a read-only copy, so no write through its
 * mapping (which the kernel's read-only mmap would fault) reaches them. */
static void *frozen_copy(struct cobj *o, const void *values, uint64_t stride, size_t len)
{
    size_t bytes = (size_t)stride * o->def.max_entries;
    if (len < bytes)
        bytes = len;
    void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return p;
    memcpy(p, values, bytes);
    if (mprotect(p, len ? len : 1, PROT_READ) != 0) {
        munmap(p, len ? len : 1);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return p;
}

void *gc_mmap(struct cobj *o, void *addr, size_t len, int prot, int flags, off_t off)
{
    if (o->kind == COBJ_MAP && o->map && o->def.type == BPF_MAP_TYPE_RINGBUF)
        return mmap_ringbuf(o, addr, len, prot, flags, off);
    if (o->kind == COBJ_MAP && o->map && o->def.type == BPF_MAP_TYPE_ARRAY && (o->def.map_flags & BPF_F_MMAPABLE)) {
        /* The values are not page-aligned in graft's object, so the tool gets
         * a pointer to them in this process's own view of the map rather
         * than a mapping at addr; libbpf's skeleton uses what mmap returns. */
        void *values;
        uint64_t stride, pstride;
        if (off != 0 || gmap_array_layout(o->map, &values, &stride, &pstride) < 0) {
            errno = EINVAL;
            return MAP_FAILED;
        }
        if ((prot & PROT_WRITE) && o->frozen) {
            errno = EPERM;
            return MAP_FAILED;
        }
        if (o->frozen)
            return frozen_copy(o, values, stride, len);
        /* the view handed out is writable memory whatever prot says: a
         * later freeze could not keep its values constant (EBUSY, as the
         * kernel answers while a writable mapping exists) */
        o->mapped_rw = 1;
        return values;
    }
    if (o->kind == COBJ_PERF && o->perf_kind == CPERF_OUTPUT) {
        void *res = mmap(addr, len, prot, MAP_SHARED | MAP_ANONYMOUS | (flags & MAP_FIXED), -1, 0);
        if (res == MAP_FAILED)
            return res;
        o->addr = res;
        o->len = len;
        if (gc_perf_map_now(o) < 0) {
            munmap(res, len);
            o->addr = NULL;
            errno = EINVAL;
            return MAP_FAILED;
        }
        return res;
    }
    gc_warn_once("mmap of %s (kind %d): not supported by graft", o->name[0] ? o->name : "descriptor", o->kind);
    errno = ENODEV;
    return MAP_FAILED;
}

int gc_perf_map_now(struct cobj *perf)
{
    if (!perf->addr || !perf->bound_map)
        return 0;
    struct perf_event_mmap_page *pg = gmap_perf_page(perf->bound_map->map, perf->bound_idx);
    size_t page = (size_t)getpagesize();
    /* The tool says the size when it maps the buffer; the map reserved room
     * for any power of 2 up to its map_extra (bpf.c). */
    if (perf->len != page + pg->data_size &&
        (perf->len <= page || gmap_perf_resize(perf->bound_map->map, perf->bound_idx, perf->len - page) < 0)) {
        gc_warn("perf buffer of %zu data pages for perf event array %s: not a power of 2 of at most %llu pages "
                "per CPU (graft's reservation); set %s to a larger reservation",
                (perf->len - page) / page, perf->bound_map->name,
                (unsigned long long)(perf->bound_map->def.map_extra / page), GCOMPAT_ENV_PERF_PAGES);
        return -EINVAL;
    }
    if (view(pg, perf->len, perf->addr) == MAP_FAILED)
        return -errno;
    gc_watch(perf);
    return 0;
}
