/*
 * bpf.c - the bpf(2) commands libbpf issues, answered by graft.
 *
 * Maps are graft maps in shared memory (gmap_create); the map descriptor
 * stands for it. Programs are verified by graft's verifier when loaded (so
 * the tool sees a rejection where the kernel would give one) and are put in
 * the registry - with the maps they use - when first attached: feature
 * probes and programs that never attach leave no trace. Links are registry
 * links that agents inside target processes install.
 *
 * Commands graft cannot answer fail with the errno a kernel without the
 * feature gives (EINVAL for unknown commands/types, EOPNOTSUPP for
 * operations a map type lacks) and say so on stderr.
 */
#define _GNU_SOURCE
#include "compat/compat.h"
#include "compat/compat_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GC_MAX_MAPS 4096
static struct cobj *g_maps[GC_MAX_MAPS];   /* every map created, for cleanup */
static int g_n_maps;
static pid_t g_owner;

static long fail(int err)
{
    errno = err;
    return -1;
}

static void *u64_ptr(uint64_t v) { return (void *)(uintptr_t)v; }

static const char *cmd_name(int cmd)
{
    static const char *names[] = {
        "MAP_CREATE", "MAP_LOOKUP_ELEM", "MAP_UPDATE_ELEM", "MAP_DELETE_ELEM", "MAP_GET_NEXT_KEY",
        "PROG_LOAD", "OBJ_PIN", "OBJ_GET", "PROG_ATTACH", "PROG_DETACH", "PROG_TEST_RUN",
        "PROG_GET_NEXT_ID", "MAP_GET_NEXT_ID", "PROG_GET_FD_BY_ID", "MAP_GET_FD_BY_ID",
        "OBJ_GET_INFO_BY_FD", "PROG_QUERY", "RAW_TRACEPOINT_OPEN", "BTF_LOAD", "BTF_GET_FD_BY_ID",
        "TASK_FD_QUERY", "MAP_LOOKUP_AND_DELETE_ELEM", "MAP_FREEZE", "BTF_GET_NEXT_ID",
        "MAP_LOOKUP_BATCH", "MAP_LOOKUP_AND_DELETE_BATCH", "MAP_UPDATE_BATCH", "MAP_DELETE_BATCH",
        "LINK_CREATE", "LINK_UPDATE", "LINK_GET_FD_BY_ID", "LINK_GET_NEXT_ID", "ENABLE_STATS",
        "ITER_CREATE", "LINK_DETACH", "PROG_BIND_MAP",
    };
    return cmd >= 0 && cmd < (int)(sizeof(names) / sizeof(names[0])) ? names[cmd] : "?";
}

static struct cobj *obj_of(int fd, int kind)
{
    struct cobj *o = gc_obj(fd);
    return o && o->kind == kind ? o : NULL;
}

/* A descriptor that names no graft object of the kind: the kernel's EBADF
 * when it is not open, EINVAL when it is some other file (or an object of
 * another kind). A descriptor graft never saw (one inherited across exec,
 * or made past the interposer) is such a file: say so once. */
static long not_ours(int fd, const char *cmd)
{
    if (fd < 0 || gc_real_syscall(__NR_fcntl, fd, F_GETFD, 0, 0, 0, 0) < 0)
        return fail(EBADF);
    if (!gc_obj(fd))
        gc_warn_once("bpf(BPF_%s): descriptor %d is open but is no bpf object of graft's (graft's objects "
                     "do not survive exec)", cmd, fd);
    return fail(EINVAL);
}

/* ---- maps ---- */

static int map_type_supported(uint32_t t)
{
    switch (t) {
    case BPF_MAP_TYPE_HASH: case BPF_MAP_TYPE_ARRAY: case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY: case BPF_MAP_TYPE_LRU_HASH: case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_LPM_TRIE: case BPF_MAP_TYPE_QUEUE: case BPF_MAP_TYPE_STACK:
    case BPF_MAP_TYPE_RINGBUF: case BPF_MAP_TYPE_BLOOM_FILTER: case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
    case BPF_MAP_TYPE_PROG_ARRAY:
        return 1;
    default:
        return 0;
    }
}

static long map_create(union bpf_attr *a)
{
    /* A stack trace map is an array of stacks (u64 return addresses),
     * filled by bpf_get_stackid with user stacks by frame pointers
     * (helpers/h_stack.c); an all-zero slot is an empty one. */
    uint32_t kernel_type = 0;
    if (a->map_type == BPF_MAP_TYPE_STACK_TRACE) {
        if (a->key_size != 4 || a->value_size < 8 || a->value_size % 8 || a->value_size / 8 > 127 ||
            !a->max_entries || (a->map_flags & ~(uint32_t)(BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY |
                                                           BPF_F_STACK_BUILD_ID))) {
            gc_warn_once("BPF_MAP_CREATE: stack trace map: key 4 bytes, value a multiple of 8 up to 127 frames");
            return fail(EINVAL);
        }
        if (a->map_flags & BPF_F_STACK_BUILD_ID) {
            gc_warn_once("BPF_MAP_CREATE: stack trace map with build ids (BPF_F_STACK_BUILD_ID): not supported by "
                         "graft (addresses only)");
            return fail(EINVAL);
        }
        kernel_type = a->map_type;
        a->map_type = BPF_MAP_TYPE_ARRAY;
        a->map_flags = 0;
    }
    /* A cgroup array holds cgroup descriptors for
     * bpf_current_task_under_cgroup, the helper behind tools' -c/--cgroup
     * filters. Tools create it whether or not the filter is used, so graft
     * creates it (an array of u32, empty); filling it, or loading a program
     * that calls the helper, fails with a line saying so: a cgroup filter
     * never silently passes everything. */
    if (a->map_type == BPF_MAP_TYPE_CGROUP_ARRAY) {
        if (a->key_size != 4 || a->value_size != 4)
            return fail(EINVAL);
        kernel_type = a->map_type;
        a->map_type = BPF_MAP_TYPE_ARRAY;
    }
    if (!map_type_supported(a->map_type)) {
        gc_warn_once("BPF_MAP_CREATE: map type %u is not supported by graft (hash, array, per-CPU, LRU, "
                     "LPM trie, queue, stack, ring buffer, bloom filter and perf event array are)",
                     a->map_type);
        return fail(EINVAL);
    }
    struct gmap_def def = {
        .type = a->map_type, .key_size = a->key_size, .value_size = a->value_size,
        .max_entries = a->max_entries, .map_flags = a->map_flags, .map_extra = a->map_extra,
    };
    memcpy(def.name, a->map_name, sizeof(a->map_name));
    def.name[sizeof(a->map_name)] = '\0';
    if (a->map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && !def.map_extra) {
        /* The buffers' size comes later, when the tool maps them (any power
         * of 2 of pages: perf_buffer__new's page_cnt): reserve room for the
         * largest, which costs address space only (shared memory pages
         * exist once written), and size each buffer at its mmap. */
        const char *e = getenv(GCOMPAT_ENV_PERF_PAGES);
        uint64_t pages = GC_PERF_RESERVE_PAGES;
        if (e && atoi(e) > 0)
            for (pages = 1; pages < (uint64_t)atoi(e); pages *= 2)
                ;
        def.map_extra = pages * (uint64_t)getpagesize();
    }
    /* Named under the registry ("<registry>.m.<16 hex>"), as `graft load`
     * names its maps: if the tool is killed before it registers the map,
     * `graft unload --all` still finds and removes it. */
    char prefix[80];
    struct graft_err err = {0};
    struct gmap *map;
    int rc = gmap_create_named(&def, -1, gc_map_prefix(prefix, sizeof(prefix)), &map, &err);
    if (rc < 0) {
        gc_warn("BPF_MAP_CREATE %s: %s", def.name, err.msg);
        return fail(-rc);
    }
    struct cobj *o = gc_obj_new(COBJ_MAP);
    if (!o) {
        int e = errno;
        gmap_unlink(gmap_shm_name(map));
        gmap_close(map);
        return fail(e);
    }
    o->map = map;
    o->def = def;
    o->kernel_type = kernel_type;
    snprintf(o->name, sizeof(o->name), "%s", def.name[0] ? def.name : "map");
    if (!g_owner)
        g_owner = getpid();
    if (g_n_maps < GC_MAX_MAPS)
        g_maps[g_n_maps++] = o;
    return o->fd;
}

size_t gc_map_value_bytes(const struct cobj *m)
{
    uint32_t t = m->def.type;
    if (t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH)
        return (size_t)((m->def.value_size + 7) & ~7u) * (size_t)gmap_possible_cpus();
    return m->def.value_size;
}

static int is_queue(const struct cobj *m)
{
    return m->def.type == BPF_MAP_TYPE_QUEUE || m->def.type == BPF_MAP_TYPE_STACK;
}

/* A prog array holds, and is used by, programs verified under one policy
 * only (one context layout, one set of grants): bound to the first such
 * program, like the kernel's prog array to the first program type. A tail
 * call into a program verified for another context would run it on the
 * caller's. */
static int prog_array_admit(struct cobj *m, const struct cobj *p, const char *what)
{
    if (!m->policy_tag)
        m->policy_tag = p->policy_tag;
    if (m->policy_tag == p->policy_tag)
        return 0;
    gc_warn("%s: program %s (type %u) was verified for another context or policy than the programs of "
            "prog array %s; a tail call would run it on their context", what, p->name, p->prog_type, m->name);
    return -EINVAL;
}

/* A prog array slot: the tool stores a prog fd (libbpf does it for
 * declared `.values`), the agents need the program's registry id, as
 * `graft load` writes. pfd NULL clears the slot (delete). */
static int prog_array_set(struct cobj *m, const void *key, const void *pfd)
{
    uint32_t idx, fd, id = 0;
    memcpy(&idx, key, 4);
    if (idx >= m->def.max_entries)
        return -E2BIG;
    if (pfd) {
        memcpy(&fd, pfd, 4);
        struct cobj *p = obj_of((int)fd, COBJ_PROG);
        if (!p)
            return -EBADF;
        int rc = prog_array_admit(m, p, "BPF_MAP_UPDATE_ELEM");
        if (rc == 0)
            rc = gc_prog_reg_id(p, &id);
        if (rc < 0)
            return rc;
    }
    return gmap_update_copy(m->map, &idx, &id, GMAP_ANY);
}

/* A stack trace map from the tool's side: empty (all-zero) slots do not
 * exist; bpf_get_stackid alone stores stacks (update EINVAL); delete
 * empties a slot. */
static int stack_slot(struct cobj *m, uint32_t id, uint64_t *buf)
{
    if (id >= m->def.max_entries)
        return -ENOENT;
    int rc = gmap_lookup_copy(m->map, &id, buf);
    if (rc < 0)
        return rc;
    return buf[0] ? 0 : -ENOENT;
}

static long stack_map_elem(struct cobj *m, int cmd, union bpf_attr *a)
{
    uint64_t *buf = calloc(1, m->def.value_size);
    if (!buf)
        return fail(ENOMEM);
    uint32_t id = 0;
    if (a->key)
        memcpy(&id, u64_ptr(a->key), 4);
    int rc;
    switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM:
        rc = stack_slot(m, id, buf);
        if (rc == 0)
            memcpy(u64_ptr(a->value), buf, m->def.value_size);
        break;
    case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
        rc = stack_slot(m, id, buf);
        if (rc == 0 && cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM)
            memcpy(u64_ptr(a->value), buf, m->def.value_size);
        if (rc == 0) {
            memset(buf, 0, m->def.value_size);
            rc = gmap_update_copy(m->map, &id, buf, GMAP_ANY);
        }
        break;
    case BPF_MAP_GET_NEXT_KEY: {
        uint32_t from = a->key && id < m->def.max_entries ? id + 1 : 0;
        rc = -ENOENT;
        for (uint32_t i = from; i < m->def.max_entries; i++)
            if (stack_slot(m, i, buf) == 0) {
                memcpy(u64_ptr(a->next_key), &i, 4);
                rc = 0;
                break;
            }
        break;
    }
    default:
        rc = -EINVAL;           /* stacks are stored by bpf_get_stackid only */
        break;
    }
    free(buf);
    return rc < 0 ? fail(-rc) : 0;
}

static long map_elem(int cmd, union bpf_attr *a)
{
    struct cobj *m = obj_of((int)a->map_fd, COBJ_MAP);
    if (!m || !m->map)
        return not_ours((int)a->map_fd, cmd_name(cmd));
    if (m->def.type == BPF_MAP_TYPE_RINGBUF) {
        gc_warn_once("%s on ring buffer %s: not supported (as in the kernel)", cmd_name(cmd), m->name);
        return fail(EINVAL);
    }
    if (m->kernel_type == BPF_MAP_TYPE_STACK_TRACE)
        return stack_map_elem(m, cmd, a);
    void *key = u64_ptr(a->key), *val = u64_ptr(a->value);
    size_t vsz = gc_map_value_bytes(m);
    char *buf = calloc(1, vsz ? vsz : 1);
    if (!buf)
        return fail(ENOMEM);
    int rc = 0;
    switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM:
        if (m->def.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY)
            rc = -EOPNOTSUPP;
        else
            rc = is_queue(m) ? gmap_peek(m->map, buf) : gmap_lookup_copy(m->map, key, buf);
        if (rc == 0)
            memcpy(val, buf, vsz);
        break;
    case BPF_MAP_UPDATE_ELEM:
        if (m->frozen) {
            rc = -EPERM;
        } else if (m->def.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
            uint32_t idx, pfd;
            memcpy(&idx, key, 4);
            memcpy(&pfd, val, 4);
            struct cobj *p = obj_of((int)pfd, COBJ_PERF);
            if (idx >= m->def.max_entries)
                rc = -E2BIG;
            else if (!p || p->perf_kind != CPERF_OUTPUT)
                rc = -EBADF;
            else
                rc = gc_bind_perf(m, idx, p);
        } else if (m->def.type == BPF_MAP_TYPE_PROG_ARRAY) {
            rc = prog_array_set(m, key, val);
        } else if (m->kernel_type == BPF_MAP_TYPE_CGROUP_ARRAY) {
            gc_warn("cgroup array %s: graft cannot filter by cgroup (bpf_current_task_under_cgroup); run the "
                    "tool without its cgroup filter", m->name);
            rc = -EOPNOTSUPP;
        } else {
            memcpy(buf, val, vsz);
            rc = is_queue(m) ? gmap_push(m->map, buf, a->flags) : gmap_update_copy(m->map, key, buf, a->flags);
        }
        break;
    case BPF_MAP_DELETE_ELEM:
        rc = m->frozen ? -EPERM
             : m->def.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY ? 0
             : m->def.type == BPF_MAP_TYPE_PROG_ARRAY ? prog_array_set(m, key, NULL)
             : gmap_delete(m->map, key);
        break;
    case BPF_MAP_GET_NEXT_KEY:
        rc = gmap_get_next_key(m->map, a->key ? key : NULL, u64_ptr(a->next_key));
        break;
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
        rc = is_queue(m) ? gmap_pop(m->map, buf) : gmap_lookup_and_delete(m->map, key, buf);
        if (rc == 0)
            memcpy(val, buf, vsz);
        break;
    }
    free(buf);
    if (rc == -EOPNOTSUPP || rc == -ENOTSUP)
        gc_warn_once("%s on map %s (type %u): not supported", cmd_name(cmd), m->name, m->def.type);
    return rc < 0 ? fail(-rc) : 0;
}

/* ---- programs ---- */

static int prog_gtype(uint32_t t)
{
    /* enum gprog_type values (loader/loader.h), which we may not include here. */
    switch (t) {
    case BPF_PROG_TYPE_SOCKET_FILTER: return 8;
    case BPF_PROG_TYPE_KPROBE: return 1;
    case BPF_PROG_TYPE_TRACEPOINT: return 4;
    case BPF_PROG_TYPE_XDP: return 9;
    case BPF_PROG_TYPE_RAW_TRACEPOINT: return 5;
    case BPF_PROG_TYPE_PERF_EVENT: return 1;   /* verified as a uprobe with the perf_event context (glue.c) */
    default: return 0;
    }
}

/* Map descriptors in LD_IMM64 become indexes into the program's own map table. */
static int translate_maps(struct cobj *p, const char *who)
{
    uint8_t *code = (uint8_t *)p->insns;
    uint32_t ksyms = 0, kfuncs = 0;
    for (uint32_t i = 0; i < p->n_insns; i++) {
        uint8_t *in = code + 8 * (size_t)i;
        uint8_t src = in[1] >> 4;
        if (in[0] == (BPF_JMP | BPF_CALL) && src == BPF_PSEUDO_KFUNC_CALL) {
            /* There are no kernel functions in userspace. The call stays
             * (with an id no policy grants), so it is refused only if the
             * verifier reaches it: one behind bpf_ksym_exists() (absent
             * here, below) is dead code and pruned. */
            int32_t none = INT32_MIN;
            memcpy(in + 4, &none, 4);
            kfuncs++;
            continue;
        }
        if (in[0] != (BPF_LD | BPF_IMM | BPF_DW))
            continue;
        if (i + 1 >= p->n_insns)
            return -EINVAL;
        if (src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE) {
            int32_t fd;
            memcpy(&fd, in + 4, 4);
            struct cobj *m = obj_of(fd, COBJ_MAP);
            if (!m || !m->map)
                return -EBADF;
            uint32_t idx = 0;
            while (idx < p->n_maps && p->maps[idx] != m)
                idx++;
            if (idx == p->n_maps) {
                if (p->n_maps == GC_PROG_MAPS) {
                    gc_warn("BPF_PROG_LOAD %s: more than %d maps", who, GC_PROG_MAPS);
                    return -E2BIG;
                }
                p->maps[p->n_maps++] = m;
                m->refs++;
            }
            int32_t imm = (int32_t)idx;
            memcpy(in + 4, &imm, 4);
            in[1] = (uint8_t)((in[1] & 0x0f) | ((src == BPF_PSEUDO_MAP_FD ? 5 : 6) << 4));
        } else if (src == BPF_PSEUDO_BTF_ID) {
            /* A kernel symbol's address (__ksym variable, or a kfunc's for
             * bpf_ksym_exists): none exists in userspace, so it is "absent",
             * a NULL, as libbpf makes an unresolved weak one. */
            in[1] &= 0x0f;                      /* src_reg 0: a plain constant */
            memset(in + 4, 0, 4);               /* imm of both halves: 0 */
            memset(in + 12, 0, 4);
            ksyms++;
        } else if (src == 5 || src == 6) {
            gc_warn("BPF_PROG_LOAD %s: insn %u: fd_array map references are not supported by graft", who, i);
            return -EINVAL;
        }
        i++;
    }
    if (ksyms || kfuncs)
        gc_warn_once("program %s: %u kernel symbol reference(s) (__ksym, bpf_ksym_exists) read as absent (NULL) "
                     "and %u kfunc call(s) left to the verifier: userspace has no kernel symbols; code that "
                     "needs them is refused (EACCES) unless it is dead", who, ksyms, kfuncs);
    return 0;
}

static long prog_load(union bpf_attr *a)
{
    char name[BPF_OBJ_NAME_LEN + 1] = {0};
    memcpy(name, a->prog_name, BPF_OBJ_NAME_LEN);
    int gtype = prog_gtype(a->prog_type);
    if (!gtype) {
        gc_warn_once("BPF_PROG_LOAD %s: program type %u is not supported by graft (kprobe-type uprobes/usdt, "
                     "tracepoint, raw_tracepoint, socket filter, xdp are)", name, a->prog_type);
        return fail(EINVAL);
    }
    if (!a->insn_cnt || a->insn_cnt > 1000000)
        return fail(a->insn_cnt ? E2BIG : EINVAL);
    struct cobj *p = gc_obj_new(COBJ_PROG);
    if (!p)
        return fail(errno);
    snprintf(p->name, sizeof(p->name), "%s", name[0] ? name : "prog");
    p->prog_type = a->prog_type;
    p->gtype = (uint32_t)gtype;
    p->n_insns = a->insn_cnt;
    p->insns = malloc(8 * (size_t)a->insn_cnt);
    int rc = p->insns ? 0 : -ENOMEM;
    if (rc == 0) {
        memcpy(p->insns, u64_ptr(a->insns), 8 * (size_t)a->insn_cnt);
        rc = translate_maps(p, p->name);
    }
    char *log = u64_ptr(a->log_buf);
    if (rc == 0)
        rc = gc_verify(p, 0, a->log_level, a->log_level && log ? log : NULL, a->log_size);
    for (uint32_t i = 0; i < p->n_maps && rc == 0; i++)    /* prog arrays it tail-calls through */
        if (p->maps[i]->def.type == BPF_MAP_TYPE_PROG_ARRAY)
            rc = prog_array_admit(p->maps[i], p, "BPF_PROG_LOAD");
    if (rc < 0) {
        for (uint32_t i = 0; i < p->n_maps; i++)
            p->maps[i]->refs--;
        p->n_maps = 0;
        close(p->fd);   /* interposed: drops the table entry */
        return fail(-rc);
    }
    return p->fd;
}

/* ---- info ---- */

static long obj_info(union bpf_attr *a)
{
    struct cobj *o = gc_obj((int)a->info.bpf_fd);
    if (!o)
        return not_ours((int)a->info.bpf_fd, "OBJ_GET_INFO_BY_FD");
    union {
        struct bpf_map_info map;
        struct bpf_prog_info prog;
        struct bpf_link_info link;
        struct bpf_btf_info btf;
    } info;
    memset(&info, 0, sizeof(info));
    uint32_t len = a->info.info_len, have;
    void *user = u64_ptr(a->info.info);
    memcpy(&info, user, len < sizeof(info) ? len : sizeof(info));
    switch (o->kind) {
    case COBJ_MAP: {
        struct bpf_map_info *m = &info.map;
        have = sizeof(*m);
        m->type = o->kernel_type ? o->kernel_type : o->def.type;
        m->id = o->id;
        m->key_size = o->def.key_size;
        m->value_size = o->def.value_size;
        m->max_entries = o->def.max_entries;
        m->map_flags = o->def.map_flags;
        m->map_extra = o->def.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY ? 0 : o->def.map_extra;
        memcpy(m->name, o->name, sizeof(m->name) - 1);
        break;
    }
    case COBJ_PROG: {
        struct bpf_prog_info *p = &info.prog;
        have = sizeof(*p);
        uint32_t want_maps = p->nr_map_ids, want_insns = p->xlated_prog_len;
        p->type = o->prog_type;
        p->id = o->id;
        memcpy(p->name, o->name, sizeof(p->name) - 1);
        p->created_by_uid = getuid();
        if (p->map_ids && want_maps) {
            uint32_t *ids = u64_ptr(p->map_ids);
            for (uint32_t i = 0; i < o->n_maps && i < want_maps; i++)
                ids[i] = o->maps[i]->id;
        }
        p->nr_map_ids = o->n_maps;
        if (p->xlated_prog_insns && want_insns)
            memcpy(u64_ptr(p->xlated_prog_insns), o->insns,
                   want_insns < o->n_insns * 8u ? want_insns : o->n_insns * 8u);
        p->xlated_prog_len = o->n_insns * 8;
        p->jited_prog_len = 0;
        break;
    }
    case COBJ_LINK:
        have = sizeof(info.link);
        info.link.type = o->link_type;
        info.link.id = o->id;
        info.link.prog_id = o->link_prog_id;
        break;
    case COBJ_BTF:
        have = sizeof(info.btf);
        info.btf.id = o->id;
        break;
    default:
        return fail(EINVAL);
    }
    if (len > have)
        len = have;
    memcpy(user, &info, len);
    a->info.info_len = len;
    return 0;
}

/* ---- links ---- */

static long new_link(struct cobj *prog, int kind, int pid, const struct cobj *perf, uint64_t cookie,
                     uint32_t link_type)
{
    struct cobj *l = gc_obj_new(COBJ_LINK);
    if (!l)
        return fail(errno);
    int rc;
    if (perf)
        rc = gc_link_add(prog, kind, pid, perf->binary, perf->symbol, perf->offset, perf->syscall_nr, cookie,
                         &l->link_reg_id);
    else
        rc = gc_link_add(prog, kind, 0, "", "", 0, -1, cookie, &l->link_reg_id);
    if (rc < 0) {
        close(l->fd);
        return fail(-rc);
    }
    l->link_prog_id = prog->id;
    l->link_type = link_type;
    return l->fd;
}

static long link_create(union bpf_attr *a)
{
    struct cobj *prog = obj_of((int)a->link_create.prog_fd, COBJ_PROG);
    if (!prog)
        return fail(EBADF);
    if (a->link_create.attach_type != BPF_PERF_EVENT) {
        gc_warn_once("BPF_LINK_CREATE: attach type %u is not supported by graft (perf events for uprobes, "
                     "syscall tracepoints and timers are)", a->link_create.attach_type);
        /* kprobe_multi (42): what a kernel without fprobe answers bpftrace's feature probe */
        return fail(a->link_create.attach_type == 42 ? EOPNOTSUPP : EINVAL);
    }
    struct cobj *perf = obj_of((int)a->link_create.target_fd, COBJ_PERF);
    if (!perf)
        return fail(EBADF);
    if (perf->perf_kind == CPERF_TIMER) {   /* timers.c: runs in this process */
        struct cobj *l = gc_obj_new(COBJ_LINK);
        if (!l)
            return fail(errno);
        l->link_type = BPF_LINK_TYPE_PERF_EVENT;
        int rc = gc_timer_attach(perf, prog, l);
        if (rc < 0) {
            close(l->fd);
            return fail(-rc);
        }
        return l->fd;
    }
    int kind = gc_perf_link_kind(perf, prog);
    if (kind < 0)
        return fail(-kind);
    return new_link(prog, kind, perf->pid, perf, a->link_create.perf_event.bpf_cookie, BPF_LINK_TYPE_PERF_EVENT);
}

static long raw_tp_open(union bpf_attr *a)
{
    struct cobj *prog = obj_of((int)a->raw_tracepoint.prog_fd, COBJ_PROG);
    if (!prog)
        return fail(EBADF);
    const char *name = u64_ptr(a->raw_tracepoint.name);
    if (prog->prog_type != BPF_PROG_TYPE_RAW_TRACEPOINT || !name)
        return fail(EINVAL);
    int kind = strcmp(name, "sys_enter") == 0 ? CLINK_RAW_SYS_ENTER
               : strcmp(name, "sys_exit") == 0 ? CLINK_RAW_SYS_EXIT : 0;
    if (!kind) {
        gc_warn("BPF_RAW_TRACEPOINT_OPEN %s: only raw tracepoints sys_enter and sys_exit exist in userspace", name);
        return fail(EOPNOTSUPP);
    }
    return new_link(prog, kind, 0, NULL, 0, BPF_LINK_TYPE_RAW_TRACEPOINT);
}

/* Called from perf.c's ioctl(PERF_EVENT_IOC_SET_BPF). */
int gc_perf_set_bpf(struct cobj *perf, int prog_fd)
{
    struct cobj *prog = obj_of(prog_fd, COBJ_PROG);
    if (!prog)
        return -EBADF;
    if (perf->link_reg_id)
        return -EEXIST;
    if (perf->perf_kind == CPERF_TIMER)
        return gc_timer_attach(perf, prog, NULL);
    int kind = gc_perf_link_kind(perf, prog);
    if (kind < 0)
        return kind;
    int rc = gc_link_add(prog, kind, perf->pid, perf->binary, perf->symbol, perf->offset, perf->syscall_nr, 0,
                         &perf->link_reg_id);
    return rc;
}

int gc_bind_perf(struct cobj *map, uint32_t idx, struct cobj *perf)
{
    perf->bound_map = map;
    perf->bound_idx = idx;
    map->refs++;   /* its buffer is mapped into the tool */
    int rc = gc_perf_map_now(perf);
    if (rc < 0) {
        perf->bound_map = NULL;
        map->refs--;
    }
    return rc;
}

/* ---- dispatch ---- */

long gc_bpf(int cmd, void *uattr, unsigned int size)
{
    union bpf_attr a;
    if (!uattr)
        return fail(EFAULT);
    if (size > sizeof(a)) {
        /* The kernel accepts a larger attr only when the extra bytes are zero. */
        for (unsigned int i = sizeof(a); i < size; i++)
            if (((char *)uattr)[i])
                return fail(E2BIG);
        size = sizeof(a);
    }
    memset(&a, 0, sizeof(a));
    memcpy(&a, uattr, size);
    long rc;
    gc_lock();
    switch (cmd) {
    case BPF_MAP_CREATE: rc = map_create(&a); break;
    case BPF_MAP_LOOKUP_ELEM:
    case BPF_MAP_UPDATE_ELEM:
    case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: rc = map_elem(cmd, &a); break;
    case BPF_MAP_FREEZE: {
        struct cobj *m = obj_of((int)a.map_fd, COBJ_MAP);
        /* as the kernel: no freeze while a writable mapping exists */
        rc = !m ? not_ours((int)a.map_fd, "MAP_FREEZE") : m->mapped_rw ? fail(EBUSY) : (m->frozen = 1, 0);
        break;
    }
    case BPF_MAP_LOOKUP_BATCH:
    case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
    case BPF_MAP_UPDATE_BATCH:
    case BPF_MAP_DELETE_BATCH: {
        struct cobj *m = obj_of((int)a.batch.map_fd, COBJ_MAP);
        if (!m || !m->map) {
            rc = not_ours((int)a.batch.map_fd, cmd_name(cmd));
            break;
        }
        rc = gc_map_batch(cmd, &a, m);
        /* count is written back, on failure too (the kernel's copy_to_user) */
        if (size >= offsetof(union bpf_attr, batch.count) + sizeof(a.batch.count))
            memcpy((char *)uattr + offsetof(union bpf_attr, batch.count), &a.batch.count, sizeof(a.batch.count));
        rc = rc < 0 ? fail((int)-rc) : 0;
        break;
    }
    case BPF_PROG_LOAD: rc = prog_load(&a); break;
    case BPF_OBJ_GET_INFO_BY_FD:
        if (!gc_obj((int)a.info.bpf_fd)) {   /* a kernel BTF object's, or no bpf object */
            rc = gc_btf_cmd(cmd, uattr, size);
            break;
        }
        rc = obj_info(&a);
        if (rc == 0)   /* info_len is written back */
            memcpy(uattr, &a, size);
        break;
    case BPF_BTF_LOAD: {
        /* Kept only as a descriptor: graft's programs arrive already relocated. */
        struct cobj *b = gc_obj_new(COBJ_BTF);
        rc = b ? b->fd : fail(errno);
        break;
    }
    case BPF_PROG_TEST_RUN: {   /* timers.c: runs in this process */
        int trc = gc_prog_test_run(uattr, size);
        rc = trc < 0 ? fail(-trc) : 0;
        break;
    }
    case BPF_BTF_GET_NEXT_ID:
    case BPF_BTF_GET_FD_BY_ID: rc = gc_btf_cmd(cmd, uattr, size); break;
    case BPF_PROG_BIND_MAP:
        rc = obj_of((int)a.prog_bind_map.prog_fd, COBJ_PROG) && obj_of((int)a.prog_bind_map.map_fd, COBJ_MAP)
                 ? 0 : fail(EBADF);
        break;
    case BPF_LINK_CREATE: rc = link_create(&a); break;
    case BPF_RAW_TRACEPOINT_OPEN: rc = raw_tp_open(&a); break;
    default:
        gc_warn_once("bpf(BPF_%s, cmd %d) is not supported by graft", cmd_name(cmd), cmd);
        rc = fail(cmd < 0 || cmd > BPF_PROG_BIND_MAP ? EINVAL : EOPNOTSUPP);
        break;
    }
    int saved = errno;
    gc_unlock();
    if (gc_debug)
        fprintf(stderr, "graft-compat: bpf(%s) = %ld%s%s\n", cmd_name(cmd), rc, rc < 0 ? " " : "",
                rc < 0 ? strerror(saved) : "");
    errno = saved;
    return rc;
}

void gc_cleanup(void)
{
    if (!g_owner || g_owner != getpid())
        return;
    gc_registry_cleanup();
    gc_lock();
    for (int i = 0; i < g_n_maps; i++) {
        struct cobj *m = g_maps[i];
        if (m->map && !m->reg_id)
            gmap_unlink(gmap_shm_name(m->map));
    }
    gc_unlock();
}
