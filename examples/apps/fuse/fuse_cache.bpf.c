/*
 * fuse_cache.bpf.c - a metadata cache for the passthrough FUSE filesystem
 * examples/apps/fuse/passfs.c, kept coherent by hooks in the daemon.
 *
 * Load once (no --pid) with both the daemon and its clients running under
 * graft; the map attr_cache is shared by all of them:
 *
 *  daemon  override/passfs_getattr_path  answers getattr (every FUSE LOOKUP
 *          and GETATTR) from attr_cache; on a miss it remembers the call and
 *          uretprobe/passfs_getattr_path stores the struct stat the backing
 *          lstat() produced, keyed by the FUSE path ("/dir/file").
 *  daemon  uprobe+uretprobe on every mutating handler (mknod mkdir create
 *          symlink unlink rmdir rename link chmod chown truncate utimens
 *          write read) invalidate the entries the operation may change.
 *  client  tracepoint sys_enter_newfstatat: fstatat()/stat()/lstat() of an
 *          absolute path under the mount point MNT is answered from
 *          attr_cache without entering the kernel (bpf_probe_write_user into
 *          the caller's struct stat + bpf_override_return(0)); st_dev is the
 *          mount's (MNT_DEV), everything else is what the daemon returned
 *          to the kernel (passfs uses use_ino, so st_ino is the backing one).
 *
 * Build: clang -O2 -target bpf -DPASSFS='"/path/passfs"' -DMNT='"/mnt/point"'
 *        -DMNT_DEV=<stat -c %d MNT> -c fuse_cache.bpf.c
 *
 * Coherence (for changes made through the mount; changes made directly in
 * the backing directory are not seen, as with any daemon-side cache):
 *  - an entry is valid only while its epoch equals state.epoch; a "flush"
 *    bumps the epoch (rename and link: a renamed directory moves a whole
 *    subtree, and paths are the keys);
 *  - invalidate(path) deletes the path's entry, and flushes if the path is
 *    not cached or is a non-directory with more than one link (another path
 *    naming the same inode may be cached); ops that create a name, and rmdir,
 *    cannot affect other names, so they only delete; ops that add or remove a
 *    name also invalidate the parent directory (mtime, size, nlink);
 *  - every invalidation bumps state.gen. A getattr miss records gen at entry;
 *    at return it stores its result, then re-reads gen and deletes what it
 *    stored if gen moved. Mutating ops invalidate at entry and again at
 *    return (after the backing change; flushing again if the entry pass
 *    flushed), so a concurrent getattr that read old metadata either sees
 *    gen move or has its entry deleted (or made stale) afterwards.
 *  - paths of KEYLEN bytes or more are never cached (and flush when
 *    mutated); a symlink is served only to AT_SYMLINK_NOFOLLOW callers.
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef PASSFS
#error "define PASSFS (the daemon binary's path)"
#endif
#ifndef MNT
#error "define MNT (the mount point, absolute, no trailing slash)"
#endif
#ifndef MNT_DEV
#error "define MNT_DEV (st_dev of the mount point)"
#endif

#define KEYLEN 128
#define STAT_SIZE 144            /* x86-64 struct stat */
#define OFF_DEV 0
#define OFF_NLINK 16
#define OFF_MODE 24
#define S_IFMT_ 0170000
#define S_IFDIR_ 0040000
#define S_IFLNK_ 0120000
#define AT_SYMLINK_NOFOLLOW_ 0x100
#define MNT_LEN (sizeof(MNT) - 1)

struct pkey {
    char p[KEYLEN];
};

struct attr {
    __u64 epoch;
    __u8 st[STAT_SIZE];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 32768);
    __type(key, struct pkey);
    __type(value, struct attr);
} attr_cache SEC(".maps");

enum { S_EPOCH, S_GEN, S_N };
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, S_N);
    __type(key, __u32);
    __type(value, __u64);
} state SEC(".maps");

enum {
    C_DAEMON_HIT,     /* getattr answered from the cache */
    C_DAEMON_MISS,    /* getattr went to the backing directory */
    C_FILLED,         /* entries stored */
    C_FILL_RACED,     /* stored entries dropped again because gen moved */
    C_CLIENT_HIT,     /* fstatat answered in the client */
    C_CLIENT_MISS,    /* fstatat under MNT that went to the kernel */
    C_INVAL,          /* invalidations */
    C_FLUSH,          /* epoch bumps */
    C_N,
};
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, C_N);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

/* A getattr miss in flight, per thread. */
struct pending_get {
    __u64 path;
    __u64 st;
    __u64 gen;
    __u64 epoch;
};
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct pending_get);
} pending_get SEC(".maps");

/* A mutating op in flight, per thread: what to invalidate again at return. */
struct pending_mut {
    __u64 path1;
    __u64 flags;     /* F_*; F_FLUSH also when the entry pass flushed */
};
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct pending_mut);
} pending_mut SEC(".maps");

static __always_inline void count(__u32 c)
{
    __u64 *v = bpf_map_lookup_elem(&stats, &c);
    if (v)
        __sync_fetch_and_add(v, 1);
}

static __always_inline __u64 state_get(__u32 k)
{
    __u64 *v = bpf_map_lookup_elem(&state, &k);
    return v ? *v : 0;
}

static __always_inline void state_bump(__u32 k)
{
    __u64 *v = bpf_map_lookup_elem(&state, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
}

static __always_inline void flush(void)
{
    state_bump(S_GEN);
    state_bump(S_EPOCH);
    count(C_FLUSH);
}

/* The path at user address p as a key; 0 if it fits, -1 if not. */
static __always_inline int read_key(struct pkey *k, __u64 p)
{
    __builtin_memset(k, 0, sizeof(*k));
    long n = bpf_probe_read_user_str(k->p, KEYLEN, (const void *)p);
    if (n <= 1 || n >= KEYLEN || k->p[0] != '/')
        return -1;
    return 0;
}

/* The parent directory of the path at user address p, whose key is k
 * ("/a/b" -> "/a", "/b" -> "/"): the bytes before the last '/', read again
 * from p (k is zero-padded, so the backward scan skips the padding). */
static __always_inline int to_parent(struct pkey *k, __u64 p)
{
    int i;
    /* unrolled: each index a constant, so no variable-offset stack access
     * (the default policy's Spectre v1 rules refuse those) */
#pragma clang loop unroll(full)
    for (i = KEYLEN - 1; i > 0; i--)
        if (k->p[i] == '/')
            break;
    __builtin_memset(k, 0, sizeof(*k));
    if (i == 0) {
        k->p[0] = '/';
        return 0;
    }
    return bpf_probe_read_user_str(k->p, i + 1, (const void *)p) == i + 1 ? 0 : -1;
}

#define F_PARENT 1   /* also invalidate the parent directory */
#define F_NEWNAME 2  /* the name cannot share an inode with a cached path */
#define F_FLUSH 4    /* flush everything */

/* Invalidate one key; returns 1 if it flushed. */
static __always_inline int inval_key(struct pkey *k, __u64 flags)
{
    struct attr *a = bpf_map_lookup_elem(&attr_cache, k);
    if (!a) {
        if (flags & F_NEWNAME)
            return 0;
        flush();
        return 1;
    }
    __u32 mode = *(__u32 *)&a->st[OFF_MODE];
    __u64 nlink = *(__u64 *)&a->st[OFF_NLINK];
    int flushed = 0;
    if ((mode & S_IFMT_) != S_IFDIR_ && nlink > 1 && !(flags & F_NEWNAME)) {
        flush();
        flushed = 1;
    }
    bpf_map_delete_elem(&attr_cache, k);
    return flushed;
}

/* Invalidate for an operation on the path at user address path; returns 1
 * if it flushed everything. */
static __always_inline int invalidate(__u64 path, __u64 flags)
{
    struct pkey k;
    state_bump(S_GEN);
    count(C_INVAL);
    if ((flags & F_FLUSH) || read_key(&k, path) < 0) {
        flush();
        return 1;
    }
    int flushed = inval_key(&k, flags);
    if (flags & F_PARENT) {
        if (to_parent(&k, path) < 0) {
            flush();
            return 1;
        }
        inval_key(&k, F_NEWNAME);
    }
    return flushed;
}

/* At entry: invalidate, and remember what to do again at return. */
static __always_inline int mut_enter(__u64 path, __u64 flags)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct pending_mut m = { .path1 = path, .flags = flags };
    if (invalidate(path, flags))
        m.flags |= F_FLUSH;
    bpf_map_update_elem(&pending_mut, &tid, &m, BPF_ANY);
    return 0;
}

/* At return (the backing change is done): drop what a concurrent getattr may
 * have stored meanwhile - flush again if the entry pass flushed (another
 * name of the inode may have been refilled), else delete the path's (and
 * parent's) entry; their absence is expected now and means nothing. */
static __always_inline int mut_exit(void)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct pending_mut *m = bpf_map_lookup_elem(&pending_mut, &tid);
    if (!m) {
        flush();    /* lost track: be safe */
        return 0;
    }
    __u64 path = m->path1, flags = m->flags | F_NEWNAME;
    bpf_map_delete_elem(&pending_mut, &tid);
    invalidate(path, flags);
    return 0;
}

#define HOOK(fn, flags)                                              \
    SEC("uprobe/" PASSFS ":" #fn)                                    \
    int fn##_enter(struct pt_regs *ctx)                              \
    {                                                                \
        return mut_enter(PT_REGS_PARM1(ctx), flags);                 \
    }                                                                \
    SEC("uretprobe/" PASSFS ":" #fn)                                 \
    int fn##_exit(struct pt_regs *ctx)                               \
    {                                                                \
        return mut_exit();                                           \
    }

HOOK(passfs_mknod, F_NEWNAME | F_PARENT)
HOOK(passfs_mkdir, F_NEWNAME | F_PARENT)
HOOK(passfs_create, F_NEWNAME | F_PARENT)
HOOK(passfs_rmdir, F_NEWNAME | F_PARENT)
HOOK(passfs_unlink, F_PARENT)
HOOK(passfs_rename, F_FLUSH)
HOOK(passfs_link, F_FLUSH)
HOOK(passfs_chmod, 0)
HOOK(passfs_chown, 0)
HOOK(passfs_truncate, 0)
HOOK(passfs_utimens, 0)
HOOK(passfs_write, 0)
HOOK(passfs_read, 0)

/* symlink(target, path): the new name is the second argument. */
SEC("uprobe/" PASSFS ":passfs_symlink")
int passfs_symlink_enter(struct pt_regs *ctx)
{
    return mut_enter(PT_REGS_PARM2(ctx), F_NEWNAME | F_PARENT);
}
SEC("uretprobe/" PASSFS ":passfs_symlink")
int passfs_symlink_exit(struct pt_regs *ctx)
{
    return mut_exit();
}

/* ---- daemon: getattr ------------------------------------------------------ */

SEC("override/" PASSFS ":passfs_getattr_path")
int getattr_enter(struct pt_regs *ctx)
{
    __u64 path = PT_REGS_PARM1(ctx), st = PT_REGS_PARM2(ctx);
    struct pkey k;
    if (read_key(&k, path) < 0)
        return 0;
    __u64 epoch = state_get(S_EPOCH);
    struct attr *a = bpf_map_lookup_elem(&attr_cache, &k);
    if (a && a->epoch == epoch &&
        bpf_probe_write_user((void *)st, a->st, STAT_SIZE) == 0) {
        count(C_DAEMON_HIT);
        bpf_override_return(ctx, 0);
        return 0;
    }
    count(C_DAEMON_MISS);
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct pending_get g = { .path = path, .st = st, .gen = state_get(S_GEN), .epoch = epoch };
    bpf_map_update_elem(&pending_get, &tid, &g, BPF_ANY);
    return 0;
}

SEC("uretprobe/" PASSFS ":passfs_getattr_path")
int getattr_exit(struct pt_regs *ctx)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct pending_get *pg = bpf_map_lookup_elem(&pending_get, &tid);
    if (!pg)
        return 0;
    struct pending_get g = *pg;
    bpf_map_delete_elem(&pending_get, &tid);
    if (PT_REGS_RC(ctx) != 0 || state_get(S_GEN) != g.gen)
        return 0;
    struct pkey k;
    struct attr a = { .epoch = g.epoch };
    if (read_key(&k, g.path) < 0)
        return 0;
    if (bpf_probe_read_user(a.st, STAT_SIZE, (const void *)g.st) < 0)
        return 0;
    bpf_map_update_elem(&attr_cache, &k, &a, BPF_ANY);
    count(C_FILLED);
    if (state_get(S_GEN) != g.gen) {
        bpf_map_delete_elem(&attr_cache, &k);
        count(C_FILL_RACED);
    }
    return 0;
}

/* ---- client: fstatat ------------------------------------------------------ */

struct sys_enter_args {
    __u64 common;
    long id;
    unsigned long args[6];
};

static const char mnt[] = MNT;

SEC("tracepoint/syscalls/sys_enter_newfstatat")
int client_fstatat(struct sys_enter_args *ctx)
{
    const char *name = (const char *)ctx->args[1];
    char pre[MNT_LEN];
    struct pkey k;
    if (bpf_probe_read_user(pre, MNT_LEN, name) < 0)
        return 0;
#pragma clang loop unroll(full)   /* constant indexes (see to_parent) */
    for (int i = 0; i < (int)MNT_LEN; i++)
        if (pre[i] != mnt[i])
            return 0;
    if (read_key(&k, (__u64)(name + MNT_LEN)) < 0) {
        count(C_CLIENT_MISS);
        return 0;
    }
    struct attr *a = bpf_map_lookup_elem(&attr_cache, &k);
    if (!a || a->epoch != state_get(S_EPOCH)) {
        count(C_CLIENT_MISS);
        return 0;
    }
    struct attr out = *a;
    __u32 mode = *(__u32 *)&out.st[OFF_MODE];
    if ((mode & S_IFMT_) == S_IFLNK_ && !(ctx->args[3] & AT_SYMLINK_NOFOLLOW_)) {
        count(C_CLIENT_MISS);
        return 0;
    }
    *(__u64 *)&out.st[OFF_DEV] = MNT_DEV;
    if (bpf_probe_write_user((void *)ctx->args[2], out.st, STAT_SIZE) < 0)
        return 0;
    count(C_CLIENT_HIT);
    bpf_override_return((struct pt_regs *)ctx, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
