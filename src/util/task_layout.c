/*
 * task_layout.c - task_struct & co. field offsets from the kernel's raw BTF
 * (see task_layout.h).
 *
 * A small reader of the raw BTF format of its own: the helpers run inside
 * target processes, which do not link libbpf. It walks the type section
 * once, indexing each record, then looks structs up by name. Any record it
 * cannot understand makes the whole file unusable (graft's layout is used
 * instead), so a malformed BTF never yields a half-right layout.
 */
#include "util/task_layout.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BTF_MAGIC 0xeB9F
enum { K_INT = 1, K_PTR, K_ARRAY, K_STRUCT, K_UNION, K_ENUM, K_FWD, K_TYPEDEF, K_VOLATILE, K_CONST,
       K_RESTRICT, K_FUNC, K_FUNC_PROTO, K_VAR, K_DATASEC, K_FLOAT, K_DECL_TAG, K_TYPE_TAG, K_ENUM64 };

const char *const gtask_ns_member[GTASK_NS_N] = { "uts_ns", "ipc_ns", "mnt_ns", "pid_ns_for_children",
                                                  "net_ns", "cgroup_ns" };
const char *const gtask_ns_struct[GTASK_NS_N] = { "uts_namespace", "ipc_namespace", "mnt_namespace",
                                                  "pid_namespace", "net", "cgroup_namespace" };

struct btf_view {
    const uint8_t *types;          /* type section */
    uint32_t types_len;
    const char *strs;
    uint32_t strs_len;
    uint32_t *off;                 /* off[id]: record of type id (id >= 1) */
    uint32_t n;                    /* ids 1..n-1 */
};

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint32_t kind_of(uint32_t info) { return (info >> 24) & 0x1f; }
static uint32_t vlen_of(uint32_t info) { return info & 0xffff; }

/* Bytes after the 12-byte common header of a record, or -1 if unknown. */
static long extra_len(uint32_t info)
{
    uint32_t v = vlen_of(info);
    switch (kind_of(info)) {
    case K_INT: case K_VAR: case K_DECL_TAG: return 4;
    case K_ARRAY: return 12;
    case K_STRUCT: case K_UNION: case K_DATASEC: case K_ENUM64: return 12L * v;
    case K_ENUM: case K_FUNC_PROTO: return 8L * v;
    case K_PTR: case K_FWD: case K_TYPEDEF: case K_VOLATILE: case K_CONST: case K_RESTRICT:
    case K_FUNC: case K_FLOAT: case K_TYPE_TAG: return 0;
    default: return -1;
    }
}

static const char *name_at(const struct btf_view *b, uint32_t off)
{
    return off < b->strs_len ? b->strs + off : "";
}

static int view_open(struct btf_view *b, const uint8_t *d, size_t size)
{
    memset(b, 0, sizeof(*b));
    if (size < 24 || (d[0] | d[1] << 8) != BTF_MAGIC)
        return -EINVAL;
    uint32_t hdr = rd32(d + 4), toff = rd32(d + 8), tlen = rd32(d + 12), soff = rd32(d + 16),
             slen = rd32(d + 20);
    if (hdr < 24 || hdr > size || toff > size - hdr || tlen > size - hdr - toff || soff > size - hdr ||
        slen > size - hdr - soff || slen == 0 || d[hdr + soff + slen - 1] != '\0')
        return -EINVAL;
    b->types = d + hdr + toff;
    b->types_len = tlen;
    b->strs = (const char *)d + hdr + soff;
    b->strs_len = slen;
    uint32_t cap = 1024;
    b->off = malloc(cap * sizeof(*b->off));
    if (!b->off)
        return -ENOMEM;
    b->n = 1;
    for (uint32_t p = 0; p < tlen;) {
        if (tlen - p < 12)
            return -EINVAL;
        long x = extra_len(rd32(b->types + p + 4));
        if (x < 0 || (uint64_t)x > tlen - p - 12)
            return -EINVAL;
        if (b->n == cap) {
            uint32_t *no = realloc(b->off, 2 * cap * sizeof(*no));
            if (!no)
                return -ENOMEM;
            b->off = no;
            cap *= 2;
        }
        b->off[b->n++] = p;
        p += 12 + (uint32_t)x;
    }
    return 0;
}

static const uint8_t *type_at(const struct btf_view *b, uint32_t id)
{
    return id >= 1 && id < b->n ? b->types + b->off[id] : NULL;
}

/* Skip typedefs and qualifiers. */
static uint32_t resolve(const struct btf_view *b, uint32_t id)
{
    for (int depth = 0; depth < 32; depth++) {
        const uint8_t *t = type_at(b, id);
        if (!t)
            return 0;
        uint32_t k = kind_of(rd32(t + 4));
        if (k != K_TYPEDEF && k != K_VOLATILE && k != K_CONST && k != K_RESTRICT && k != K_TYPE_TAG)
            return id;
        id = rd32(t + 8);
    }
    return 0;
}

static int64_t type_size(const struct btf_view *b, uint32_t id)
{
    id = resolve(b, id);
    const uint8_t *t = type_at(b, id);
    if (!t)
        return -1;
    switch (kind_of(rd32(t + 4))) {
    case K_INT: case K_STRUCT: case K_UNION: case K_ENUM: case K_ENUM64: case K_FLOAT:
        return rd32(t + 8);
    case K_PTR:
        return 8;
    case K_ARRAY: {
        int64_t es = type_size(b, rd32(t + 12));   /* struct btf_array { type, index_type, nelems } */
        return es < 0 ? -1 : es * rd32(t + 20);
    }
    default:
        return -1;
    }
}

static uint32_t find_struct(const struct btf_view *b, const char *name)
{
    for (uint32_t id = 1; id < b->n; id++) {
        const uint8_t *t = b->types + b->off[id];
        uint32_t info = rd32(t + 4);
        if (kind_of(info) == K_STRUCT && vlen_of(info) && !strcmp(name_at(b, rd32(t)), name))
            return id;
    }
    return 0;
}

/* Byte offset of member name of struct sid (searching anonymous members
 * too) with the given size, or -1; *type gets its type. */
static int32_t member(const struct btf_view *b, uint32_t sid, const char *name, int64_t want_size,
                      uint32_t *type)
{
    const uint8_t *t = type_at(b, sid);
    if (!t)
        return -1;
    uint32_t info = rd32(t + 4);
    uint32_t k = kind_of(info);
    if (k != K_STRUCT && k != K_UNION)
        return -1;
    int kflag = (info >> 31) & 1;
    for (uint32_t i = 0; i < vlen_of(info); i++) {
        const uint8_t *m = t + 12 + 12 * i;
        uint32_t bits = rd32(m + 8);
        uint32_t bit_off = kflag ? (bits & 0xffffff) : bits;
        if (kflag && (bits >> 24))
            continue;                           /* a bitfield */
        if (bit_off % 8)
            continue;
        const char *mn = name_at(b, rd32(m));
        uint32_t mt = rd32(m + 4);
        if (!mn[0]) {
            int32_t inner = member(b, resolve(b, mt), name, want_size, type);
            if (inner >= 0)
                return (int32_t)(bit_off / 8) + inner;
            continue;
        }
        if (strcmp(mn, name))
            continue;
        if (want_size >= 0 && type_size(b, mt) != want_size)
            return -1;
        if (type)
            *type = resolve(b, mt);
        return (int32_t)(bit_off / 8);
    }
    return -1;
}

static uint32_t capped(const struct btf_view *b, uint32_t sid, uint32_t cap)
{
    int64_t s = type_size(b, sid);
    return s < 0 ? 0 : s > cap ? cap : (uint32_t)s;
}

/* Offsets past the capped size are of no use: drop them. */
static int32_t within(int32_t off, uint32_t field, uint32_t size)
{
    return off >= 0 && (uint32_t)off + field <= size ? off : -1;
}

static int from_view(const struct btf_view *b, struct gtask_layout *L)
{
    memset(L, 0, sizeof(*L));
    uint32_t task = find_struct(b, "task_struct");
    if (!task)
        return -ENOENT;
    L->from_kernel = 1;
    L->task_size = capped(b, task, GTASK_IMAGE_MAX);
    uint32_t n = L->task_size;
    L->pid = within(member(b, task, "pid", 4, NULL), 4, n);
    L->tgid = within(member(b, task, "tgid", 4, NULL), 4, n);
    L->real_parent = within(member(b, task, "real_parent", 8, NULL), 8, n);
    L->parent = within(member(b, task, "parent", 8, NULL), 8, n);
    L->group_leader = within(member(b, task, "group_leader", 8, NULL), 8, n);
    L->nsproxy = within(member(b, task, "nsproxy", 8, NULL), 8, n);
    L->cred = within(member(b, task, "cred", 8, NULL), 8, n);
    L->real_cred = within(member(b, task, "real_cred", 8, NULL), 8, n);
    L->comm = within(member(b, task, "comm", GTASK_COMM_LEN, NULL), GTASK_COMM_LEN, n);
    L->flags = within(member(b, task, "flags", 4, NULL), 4, n);
    L->exit_code = within(member(b, task, "exit_code", 4, NULL), 4, n);
    L->exit_signal = within(member(b, task, "exit_signal", 4, NULL), 4, n);
    L->start_time = within(member(b, task, "start_time", 8, NULL), 8, n);
    L->start_boottime = within(member(b, task, "start_boottime", 8, NULL), 8, n);

    uint32_t cred = find_struct(b, "cred");
    L->cred_size = cred ? capped(b, cred, GTASK_SMALL_MAX) : 0;
    int32_t *ids[] = { &L->uid, &L->gid, &L->suid, &L->sgid, &L->euid, &L->egid, &L->fsuid, &L->fsgid };
    static const char *const id_names[] = { "uid", "gid", "suid", "sgid", "euid", "egid", "fsuid", "fsgid" };
    for (int i = 0; i < 8; i++)
        *ids[i] = cred ? within(member(b, cred, id_names[i], 4, NULL), 4, L->cred_size) : -1;

    uint32_t nsp = find_struct(b, "nsproxy");
    L->nsproxy_size = nsp ? capped(b, nsp, GTASK_SMALL_MAX) : 0;
    for (int i = 0; i < GTASK_NS_N; i++) {
        L->ns_ptr[i] = nsp ? within(member(b, nsp, gtask_ns_member[i], 8, NULL), 8, L->nsproxy_size) : -1;
        L->ns_inum[i] = -1;
        uint32_t ns = find_struct(b, gtask_ns_struct[i]), common = 0;
        if (!ns)
            continue;
        L->ns_size[i] = capped(b, ns, GTASK_SMALL_MAX);
        int32_t at = member(b, ns, "ns", -1, &common);
        int32_t inum = at >= 0 ? member(b, common, "inum", 4, NULL) : -1;
        L->ns_inum[i] = inum >= 0 ? within(at + inum, 4, L->ns_size[i]) : -1;
        L->ns_at[i] = L->ns_inum[i] >= 0 ? at : -1;
        if (L->ns_inum[i] >= 0)
            L->common_inum = inum;
    }
    return 0;
}

int gtask_layout_from_btf(const char *path, struct gtask_layout *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 20, len = 0;
    uint8_t *d = malloc(cap);
    while (d) {
        size_t got = fread(d + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        if (cap >= (256u << 20)) {          /* no sane BTF is this large */
            free(d);
            d = NULL;
            break;
        }
        uint8_t *nd = realloc(d, cap * 2);
        if (!nd) {
            free(d);
            d = NULL;
            break;
        }
        d = nd;
        cap *= 2;
    }
    fclose(f);
    if (!d)
        return -ENOMEM;
    struct btf_view b;
    int rc = view_open(&b, d, len);
    if (rc == 0)
        rc = from_view(&b, out);
    free(b.off);
    free(d);
    return rc;
}

/* graft's own layout: fields packed in the kernel's order, small images. */
void gtask_layout_builtin(struct gtask_layout *L)
{
    memset(L, 0, sizeof(*L));
    L->flags = 0;           /* unsigned int */
    L->exit_code = 4;
    L->exit_signal = 8;
    L->pid = 12;
    L->tgid = 16;
    L->real_parent = 24;
    L->parent = 32;
    L->group_leader = 40;
    L->start_time = 48;
    L->start_boottime = 56;
    L->real_cred = 64;
    L->cred = 72;
    L->comm = 80;
    L->nsproxy = 96;
    L->task_size = 104;
    L->cred_size = 40;
    L->uid = 8;  L->gid = 12; L->suid = 16; L->sgid = 20;   /* after a refcount and padding */
    L->euid = 24; L->egid = 28; L->fsuid = 32; L->fsgid = 36;
    L->nsproxy_size = 8 + 8 * GTASK_NS_N;
    L->common_inum = 8;
    for (int i = 0; i < GTASK_NS_N; i++) {
        L->ns_ptr[i] = 8 + 8 * i;          /* after a refcount, as the kernel's */
        L->ns_size[i] = 16;
        L->ns_inum[i] = 8;                 /* struct ns_common { stashed; inum } */
        L->ns_at[i] = 0;
    }
}

static struct gtask_layout g_layout;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void compute(void)
{
    if (gtask_layout_from_btf("/sys/kernel/btf/vmlinux", &g_layout) < 0)
        gtask_layout_builtin(&g_layout);
}

const struct gtask_layout *gtask_layout(void)
{
    pthread_once(&g_once, compute);
    return &g_layout;
}
