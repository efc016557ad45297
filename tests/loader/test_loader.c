/*
 * test_loader.c - the ELF loader against stock clang-built fixtures
 * (tests/loader/bpf/NAME.bpf.c, compiled at build time into argv[1]):
 * program sections, maps, global data, calls, externs, CO-RE against the
 * built-in and the kernel's BTF, and malformed objects made by mutating a
 * good one. With the VM built (GRAFT_HAVE_VM) the linked programs also run
 * on the interpreter with a fake map resolver, so the values they compute
 * prove the linking and patching right.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "loader/loader.h"
#ifdef GRAFT_HAVE_VM
#include "vm/vm.h"
#endif

static int failures;
static const char *dir;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

static char *fixture(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s.bpf.o", dir, name);
    return path;
}

static struct gobj *open_fixture(const char *name, bool builtin)
{
    struct gobj_opts o = { .sz = sizeof(o), .use_builtin_btf = builtin };
    struct gobj *obj = NULL;
    struct graft_err err;
    int rc = gobj_open_file(fixture(name), &o, &obj, &err);
    CHECK(rc == 0 && obj, "open %s: %d %s", name, rc, err.msg);
    return obj;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* Every pc-relative call / function address lands inside the program, on
 * the first insn of an appended function or the program. */
static void check_calls(const struct gobj_prog *p)
{
    for (uint32_t i = 0; i < p->n_insns; i++) {
        const struct bpf_insn *in = &p->insns[i];
        bool call = in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL;
        bool fn = bpf_is_ld_imm64(in) && in->src_reg == BPF_PSEUDO_FUNC;
        if (call || fn) {
            int64_t t = (int64_t)i + in->imm + 1;
            CHECK(t > 0 && t < p->n_insns, "%s insn %u: call target %lld outside [0,%u)",
                  p->name, i, (long long)t, p->n_insns);
            if (t > 0)
                CHECK(BPF_CLASS(p->insns[t - 1].code) == BPF_JMP &&
                      (BPF_OP(p->insns[t - 1].code) == BPF_EXIT || BPF_OP(p->insns[t - 1].code) == BPF_JA),
                      "%s: call target %lld does not start a function", p->name, (long long)t);
        }
        if (bpf_is_ld_imm64(in))
            i++;
    }
}

static int count_calls(const struct gobj_prog *p)
{
    int n = 0;
    for (uint32_t i = 0; i < p->n_insns; i++)
        if (p->insns[i].code == (BPF_JMP | BPF_CALL) && p->insns[i].src_reg == BPF_PSEUDO_CALL)
            n++;
    return n;
}

/* ---- running on the VM ---- */
#ifdef GRAFT_HAVE_VM
struct fake_maps {
    struct gobj *obj;
    uint8_t *values[64];
};

static int fake_resolve(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *value,
                        struct graft_err *err)
{
    struct fake_maps *fm = arg;
    if ((src != BPF_PSEUDO_MAP_IDX && src != BPF_PSEUDO_MAP_IDX_VALUE) || imm < 0 ||
        (uint32_t)imm >= fm->obj->n_maps || imm >= 64)
        return graft_errf(err, -EINVAL, "fake resolver: src %u imm %d", src, imm);
    if (!fm->values[imm]) {
        const struct gobj_map *m = &fm->obj->maps[imm];
        fm->values[imm] = calloc(1, m->def.value_size + 8);
        if (m->init_data)
            memcpy(fm->values[imm], m->init_data, m->init_size);
    }
    *value = (uint64_t)(uintptr_t)(src == BPF_PSEUDO_MAP_IDX ? (void *)&fm->obj->maps[imm]
                                                             : fm->values[imm] + next);
    return 0;
}

static uint64_t h_probe_read(uint64_t dst, uint64_t size, uint64_t src, uint64_t a, uint64_t b)
{
    memcpy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, size);
    return 0;
}

static int run(struct gobj *obj, const char *name, void *ctx, uint64_t ctx_len, uint64_t *ret)
{
    static gvm_helper_fn helpers[BPF_MAX_HELPER_ID];
    helpers[4] = h_probe_read;    /* bpf_probe_read */
    helpers[112] = h_probe_read;  /* bpf_probe_read_user */
    helpers[113] = h_probe_read;  /* bpf_probe_read_kernel */
    struct fake_maps fm = { .obj = obj };
    struct gvm_env env = { .helpers = helpers, .resolve_ld_imm64 = fake_resolve, .arg = &fm };
    struct gvm_prog_opts o = { .sz = sizeof(o), .engine = GVM_ENGINE_INTERP, .env = &env };
    struct gobj_prog *p = gobj_find_prog(obj, name);
    struct graft_err err;
    struct gvm_prog *vp = NULL;
    int rc = -ENOENT;
    if (p)
        rc = gvm_prog_create(p->insns, p->n_insns, &o, &vp, &err);
    CHECK(rc == 0, "%s: gvm_prog_create: %s", name, p ? err.msg : "no such program");
    if (rc == 0) {
        rc = gvm_prog_run(vp, ctx, ctx_len, ret, &err);
        CHECK(rc == 0, "%s: run: %s", name, err.msg);
        gvm_prog_free(vp);
    }
    for (int i = 0; i < 64; i++)
        free(fm.values[i]);
    return rc;
}
#define EXPECT_RUN(obj, name, ctx, len, want)                                     \
    do {                                                                           \
        uint64_t r_ = 0;                                                           \
        if (run(obj, name, ctx, len, &r_) == 0)                                    \
            CHECK(r_ == (uint64_t)(want), "%s returned %llu, want %llu", name,     \
                  (unsigned long long)r_, (unsigned long long)(want));             \
    } while (0)
#else
#define EXPECT_RUN(obj, name, ctx, len, want) ((void)0)
#endif

/* ---- tests ---- */

static void test_progs(void)
{
    struct gobj *o = open_fixture("progs", true);
    if (!o)
        return;
    static const struct { const char *name, *sec, *target; enum gprog_type type; bool sl; int ret; } want[] = {
        { "up", "uprobe/./app:compute+4", "./app:compute+4", GPROG_UPROBE, false, 2 },
        { "up_second", "uprobe/./app:compute+4", "./app:compute+4", GPROG_UPROBE, false, 42 },
        { "uret", "uretprobe/./app:compute", "./app:compute", GPROG_URETPROBE, false, 2 },
        { "up_sleep", "uprobe.s/./app:compute", "./app:compute", GPROG_UPROBE, true, 3 },
        { "usdt_prog", "usdt/./app:myprov:myprobe", "./app:myprov:myprobe", GPROG_USDT, false, 4 },
        { "tp_enter", "tracepoint/syscalls/sys_enter_openat", "syscalls/sys_enter_openat", GPROG_TRACEPOINT, false, 5 },
        { "tp_exit", "tp/syscalls/sys_exit_openat", "syscalls/sys_exit_openat", GPROG_TRACEPOINT, false, 6 },
        { "raw_enter", "raw_tracepoint/sys_enter", "sys_enter", GPROG_RAW_TRACEPOINT, false, 7 },
        { "raw_exit", "raw_tp/sys_exit", "sys_exit", GPROG_RAW_TRACEPOINT, false, 8 },
        { "ovr", "override/./app:check_password", "./app:check_password", GPROG_OVERRIDE, false, 9 },
        { "repl", "replace/./app:add", "./app:add", GPROG_REPLACE, false, 10 },
        { "sock", "socket", "", GPROG_SOCKET_FILTER, false, 11 },
        { "xdp_prog", "xdp", "", GPROG_XDP, false, 12 },
    };
    size_t n = sizeof(want) / sizeof(want[0]);
    CHECK(o->n_progs == n, "%u programs, want %zu", o->n_progs, n);
    CHECK(!strcmp(o->license, "GPL"), "license '%s'", o->license);
    for (size_t i = 0; i < n; i++) {
        struct gobj_prog *p = gobj_find_prog(o, want[i].name);
        CHECK(p, "no program %s", want[i].name);
        if (!p)
            continue;
        CHECK(!strcmp(p->section, want[i].sec), "%s: section '%s'", p->name, p->section);
        CHECK(!strcmp(p->target, want[i].target), "%s: target '%s'", p->name, p->target);
        CHECK(p->type == want[i].type, "%s: type %s", p->name, gprog_type_name(p->type));
        CHECK(p->sleepable == want[i].sl, "%s: sleepable %d", p->name, p->sleepable);
        check_calls(p);
        EXPECT_RUN(o, want[i].name, NULL, 0, want[i].ret);
    }
    /* both uprobes got their own copy of twice() */
    struct gobj_prog *a = gobj_find_prog(o, "up"), *b = gobj_find_prog(o, "up_second");
    if (a && b) {
        CHECK(count_calls(a) == 1 && count_calls(b) == 1, "calls %d %d", count_calls(a), count_calls(b));
        CHECK(a->insns[a->n_insns - 1].code == (BPF_JMP | BPF_EXIT), "up does not end in exit");
    }
    CHECK(gobj_find_prog(o, "xdp") == gobj_find_prog(o, "xdp_prog"), "find by section");
    CHECK(gobj_find_prog(o, "nope") == NULL, "found a missing program");
    CHECK(!strcmp(gprog_type_name(GPROG_OVERRIDE), "override"), "type name");
    gobj_free(o);
}

static void test_calls(void)
{
    struct gobj *o = open_fixture("calls", true);
    if (!o)
        return;
    CHECK(o->n_progs == 3, "%u programs", o->n_progs);
    for (uint32_t i = 0; i < o->n_progs; i++)
        check_calls(&o->progs[i]);
    struct gobj_prog *a = gobj_find_prog(o, "prog_a");
    /* prog_a calls sum_sq and global_mul; sum_sq calls sq twice */
    CHECK(a && count_calls(a) == 4, "prog_a has %d calls", a ? count_calls(a) : -1);
    struct gobj_prog *lp = gobj_find_prog(o, "prog_loop");
    int fn = 0;
    for (uint32_t i = 0; lp && i < lp->n_insns; i++)
        if (bpf_is_ld_imm64(&lp->insns[i]) && lp->insns[i].src_reg == BPF_PSEUDO_FUNC)
            fn++;
    CHECK(fn == 1, "prog_loop: %d callback addresses", fn);
    int d = gobj_find_map(o, ".data"), r = gobj_find_map(o, ".rodata"), s = gobj_find_map(o, ".bss");
    CHECK(d >= 0 && r >= 0 && s >= 0, "data maps %d %d %d", d, r, s);
    EXPECT_RUN(o, "prog_a", NULL, 0, 155);
    EXPECT_RUN(o, "prog_b", NULL, 0, 39);
    gobj_free(o);
}

static void test_maps(void)
{
    struct gobj *o = open_fixture("maps", true);
    if (!o)
        return;
    static const struct { const char *name; uint32_t type, ks, vs, max, flags; } want[] = {
        { "counts", 1, 4, 16, 1024, 0 },
        { "arr", 2, 4, 32, 4, 0 },
        { "pcpu", 6, 4, 8, 1, 0 },
        { "events", 27, 0, 0, 256 * 1024, 0 },
        { "lru", 9, 8, 8, 16, 1 },
        { "inner_a", 2, 4, 4, 8, 0 },
        { "inner_b", 2, 4, 4, 8, 0 },
        { "outer", 12, 4, 4, 4, 0 },
        { "outer_hash", 13, 4, 4, 2, 0 },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int k = gobj_find_map(o, want[i].name);
        CHECK(k >= 0, "no map %s", want[i].name);
        if (k < 0)
            continue;
        const struct gobj_map *m = &o->maps[k];
        CHECK(m->def.type == want[i].type && m->def.key_size == want[i].ks &&
              m->def.value_size == want[i].vs && m->def.max_entries == want[i].max &&
              m->def.map_flags == want[i].flags && m->kind == GOBJ_MAP_USER &&
              !strcmp(m->def.name, want[i].name),
              "%s: type %u key %u value %u max %u flags %#x", m->name, m->def.type,
              m->def.key_size, m->def.value_size, m->def.max_entries, m->def.map_flags);
    }
    int c = gobj_find_map(o, "counts");
    if (c >= 0) {
        const struct btf_type *t = btf__type_by_id(o->btf, o->maps[c].btf_value_type_id);
        CHECK(t && !strcmp(btf__name_by_offset(o->btf, t->name_off), "val"), "counts value type");
    }
    int out = gobj_find_map(o, "outer"), ia = gobj_find_map(o, "inner_a"), ib = gobj_find_map(o, "inner_b");
    if (out >= 0) {
        const struct gobj_map *m = &o->maps[out];
        CHECK(m->def.inner_map_type == 2 && m->def.inner_key_size == 4 &&
              m->def.inner_value_size == 4 && m->def.inner_max_entries == 8, "outer inner def");
        CHECK(m->n_init_slots == 3 && m->init_slots[0] == ia && m->init_slots[1] == -1 &&
              m->init_slots[2] == ib, "outer slots: %u", m->n_init_slots);
    }
    int d = gobj_find_map(o, ".data"), r = gobj_find_map(o, ".rodata"), b = gobj_find_map(o, ".bss");
    int str = -1;
    for (uint32_t i = 0; i < o->n_maps; i++)
        if (!strncmp(o->maps[i].name, ".rodata.str", 11))
            str = i;
    CHECK(d >= 0 && r >= 0 && b >= 0 && str >= 0, "global data maps %d %d %d %d", d, r, b, str);
    if (d >= 0 && r >= 0 && b >= 0 && str >= 0) {
        CHECK(o->maps[d].kind == GOBJ_MAP_DATA && o->maps[d].def.value_size == 8 &&
              o->maps[d].def.max_entries == 1 && o->maps[d].def.type == GMAP_ARRAY &&
              o->maps[d].init_size == 8 && *(uint64_t *)o->maps[d].init_data == 7, ".data");
        CHECK(o->maps[r].kind == GOBJ_MAP_RODATA && (o->maps[r].def.map_flags & GMAP_F_RDONLY_PROG) &&
              *(uint32_t *)o->maps[r].init_data == 42, ".rodata");
        CHECK(o->maps[b].kind == GOBJ_MAP_BSS && o->maps[b].def.value_size == 64 &&
              !o->maps[b].init_data, ".bss");
        CHECK(o->maps[str].kind == GOBJ_MAP_RODATA &&
              memmem(o->maps[str].init_data, o->maps[str].init_size, "xyz", 4), "strings");
    }
    /* references: every user map and the global data are loaded by the program */
    struct gobj_prog *p = gobj_find_prog(o, "touch");
    bool seen[64] = { 0 };
    for (uint32_t i = 0; p && i < p->n_insns; i++) {
        const struct bpf_insn *in = &p->insns[i];
        if (!bpf_is_ld_imm64(in))
            continue;
        CHECK(in->src_reg == BPF_PSEUDO_MAP_IDX || in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE,
              "insn %u src %u", i, in->src_reg);
        if (in->imm >= 0 && in->imm < 64 && (uint32_t)in->imm < o->n_maps)
            seen[in->imm] = true;
        if (in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE && in->imm == b)
            CHECK(in[1].imm == 0 || in[1].imm == 3, "buf offset %d", in[1].imm);
        i++;
    }
    const char *used[] = { "counts", "outer", "arr", "pcpu", "lru", "outer_hash", "events", ".data", ".rodata", ".bss" };
    for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++) {
        int k = gobj_find_map(o, used[i]);
        CHECK(k >= 0 && seen[k], "map %s not referenced", used[i]);
    }
    if (str >= 0)
        CHECK(seen[str], "string literal map not referenced");
    gobj_free(o);
}

struct secinfo { size_t shdr_off, data_off, size; };

static bool find_sec(const uint8_t *buf, size_t len, const char *name, struct secinfo *si)
{
    Elf *e = elf_memory((char *)buf, len);
    size_t shstrndx;
    bool ok = false;
    if (!e || elf_getshdrstrndx(e, &shstrndx))
        goto out;
    GElf_Ehdr eh;
    gelf_getehdr(e, &eh);
    for (Elf_Scn *s = elf_nextscn(e, NULL); s; s = elf_nextscn(e, s)) {
        GElf_Shdr sh;
        gelf_getshdr(s, &sh);
        const char *n = elf_strptr(e, shstrndx, sh.sh_name);
        if (n && !strcmp(n, name)) {
            si->shdr_off = eh.e_shoff + elf_ndxscn(s) * sizeof(Elf64_Shdr);
            si->data_off = sh.sh_offset;
            si->size = sh.sh_size;
            ok = true;
            break;
        }
    }
out:
    if (e)
        elf_end(e);
    return ok;
}

/* The value of symbol name in the object at path, -1 if absent. */
static int64_t sym_value(const char *path, const char *name)
{
    size_t len;
    uint8_t *buf = read_all(path, &len);
    Elf *e = buf && elf_version(EV_CURRENT) != EV_NONE ? elf_memory((char *)buf, len) : NULL;
    int64_t v = -1;
    for (Elf_Scn *s = e ? elf_nextscn(e, NULL) : NULL; s && v < 0; s = elf_nextscn(e, s)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(s, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            const char *n = gelf_getsym(d, (int)i, &sym) ? elf_strptr(e, sh.sh_link, sym.st_name) : NULL;
            if (n && !strcmp(n, name))
                v = (int64_t)sym.st_value;
        }
    }
    if (e)
        elf_end(e);
    free(buf);
    return v;
}

/* Where each map value's struct bpf_spin_lock is, for the verifier to keep
 * programs off the lock word. */
static void test_spin_lock_offsets(void)
{
    int64_t glock = sym_value(fixture("spinlock"), "glock");
    CHECK(glock > 0, "fixture: glock at %" PRId64 " (the test wants it after other globals)", glock);
    struct gobj *o = open_fixture("spinlock", true);
    if (!o)
        return;
    const struct { const char *name; int32_t off; } want[] = {
        { "locked", 12 },      /* typedef, const volatile, nested struct */
        { "plain", -1 },       /* a value type without a lock */
        { "untyped", -2 },     /* no BTF value type: unknown */
        { ".bss", (int32_t)glock },   /* a global, after others */
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int k = gobj_find_map(o, want[i].name);
        CHECK(k >= 0, "no map %s", want[i].name);
        if (k >= 0)
            CHECK(o->maps[k].spin_lock_off == want[i].off, "%s: spin lock at %d, want %d",
                  want[i].name, o->maps[k].spin_lock_off, want[i].off);
    }
    gobj_free(o);

    struct gobj_opts opts = { .sz = sizeof(opts), .use_builtin_btf = true };
    struct graft_err err = { 0 };
    struct gobj *two = NULL;
    int rc = gobj_open_file(fixture("spinlock2"), &opts, &two, &err);
    CHECK(rc == -EINVAL && !two && strstr(err.msg, "map 'twice'") &&
          strstr(err.msg, "more than one struct bpf_spin_lock"),
          "two locks in one value: %d %s", rc, err.msg);
    gobj_free(two);

    /* A crafted BTF whose struct contains itself twice over: the search
     * must end (remembering each type's answer), not walk 2^depth paths. */
    size_t len;
    uint8_t *buf = read_all(fixture("spinlock"), &len);
    struct secinfo si;
    CHECK(buf && find_sec(buf, len, ".BTF", &si), "spinlock .BTF");
    struct btf *btf = buf ? btf__new(buf + si.data_off, si.size) : NULL;
    int gid = btf ? btf__find_by_name_kind(btf, "guarded", BTF_KIND_STRUCT) : -1;
    CHECK(gid > 0, "struct guarded in the fixture's BTF");
    if (gid > 0) {
        struct btf_type *g = (struct btf_type *)btf__type_by_id(btf, gid);
        for (uint32_t i = 0; i < btf_vlen(g); i++)
            btf_members(g)[i].type = gid;
        uint32_t raw_len = 0;
        const void *raw = btf__raw_data(btf, &raw_len);
        CHECK(raw && raw_len == si.size, "re-serialised BTF: %u bytes, was %zu", raw_len, si.size);
        if (raw && raw_len == si.size) {
            memcpy(buf + si.data_off, raw, raw_len);
            struct gobj *cyc = NULL;
            rc = gobj_open_mem(buf, len, "cyclic.o", &opts, &cyc, &err);
            int k = cyc ? gobj_find_map(cyc, "locked") : -1;
            CHECK(rc < 0 || (k >= 0 && cyc->maps[k].spin_lock_off == -1),
                  "self-containing value: rc %d lock at %d", rc, k >= 0 ? cyc->maps[k].spin_lock_off : -9);
            gobj_free(cyc);
        }
    }
    btf__free(btf);
    free(buf);
}

static void test_legacy(void)
{
    struct gobj *o = open_fixture("legacy", true);
    if (!o)
        return;
    int h = gobj_find_map(o, "legacy_hash"), a = gobj_find_map(o, "legacy_arr");
    CHECK(h >= 0 && a >= 0, "legacy maps %d %d", h, a);
    if (h >= 0 && a >= 0) {
        CHECK(o->maps[h].def.type == 1 && o->maps[h].def.key_size == 4 &&
              o->maps[h].def.value_size == 8 && o->maps[h].def.max_entries == 128, "legacy_hash");
        CHECK(o->maps[a].def.type == 2 && o->maps[a].def.value_size == 16 &&
              o->maps[a].def.max_entries == 2, "legacy_arr");
    }
    struct gobj_prog *p = gobj_find_prog(o, "filter");
    int refs = 0;
    for (uint32_t i = 0; p && i < p->n_insns; i++)
        if (bpf_is_ld_imm64(&p->insns[i])) {
            CHECK(p->insns[i].src_reg == BPF_PSEUDO_MAP_IDX && (p->insns[i].imm == h || p->insns[i].imm == a),
                  "legacy ref insn %u", i);
            refs++;
            i++;
        }
    CHECK(refs == 2, "%d legacy map references", refs);
    gobj_free(o);
}

static void test_externs(void)
{
    struct gobj *o = open_fixture("externs", true);
    if (!o)
        return;
    CHECK(o->n_externs == 3, "%u externs", o->n_externs);
    for (uint32_t i = 0; i < o->n_externs; i++) {
        const struct gobj_extern *e = &o->externs[i];
        CHECK(e->n_uses >= 1, "%s unused", e->name);
        const struct bpf_insn *in = &o->progs[e->uses[0].prog].insns[e->uses[0].insn];
        if (!strcmp(e->name, "graft_app_hook"))
            CHECK(e->kind == GOBJ_EXTERN_KSYM_FUNC && in->src_reg == BPF_PSEUDO_KFUNC_CALL &&
                  in->imm == (int)i, "kfunc extern");
        else if (!strcmp(e->name, "graft_app_config"))
            CHECK(e->kind == GOBJ_EXTERN_KSYM_VAR && in->src_reg == BPF_PSEUDO_BTF_ID &&
                  in->imm == (int)i, "ksym var extern");
        else
            CHECK(!strcmp(e->name, "LINUX_KERNEL_VERSION") && e->kind == GOBJ_EXTERN_KCONFIG,
                  "kconfig extern %s", e->name);
    }
    gobj_free(o);
}

/* LDX offsets in prog reading from its context (r1 or a copy of it). */
static bool has_ldx_off(const struct gobj_prog *p, int16_t off)
{
    for (uint32_t i = 0; i < p->n_insns; i++)
        if (p->insns[i].code == (BPF_LDX | BPF_MEM | BPF_DW) && p->insns[i].off == off)
            return true;
    return false;
}

/* Bitfield relocations against the fixture's own BTF as the target. */
static void test_core_bitfield(void)
{
    struct gobj_opts oo = { .sz = sizeof(oo), .target_btf_path = fixture("core_bitfield") };
    struct gobj *o = NULL;
    struct graft_err err;
    int rc = gobj_open_file(fixture("core_bitfield"), &oo, &o, &err);
    CHECK(rc == 0 && o, "open core_bitfield: %d %s", rc, err.msg);
    if (!o)
        return;
    struct gobj_prog *p = gobj_find_prog(o, "bitfield_roundtrip");
    CHECK(p && p->n_poisoned == 0, "bitfield_roundtrip poisoned or missing");
    EXPECT_RUN(o, "bitfield_roundtrip", NULL, 0, 3 + 100 * 4 + 14 * 1024);
    gobj_free(o);
}

static void test_core(bool builtin)
{
    struct gobj *o = open_fixture("core", builtin);
    if (!o)
        return;
    const char *what = builtin ? "builtin" : "vmlinux";
    CHECK(o->n_core_relos >= 10, "%s: %u CO-RE relocations", what, o->n_core_relos);
    struct gobj_prog *p = gobj_find_prog(o, "regs_direct");
    /* x86-64 pt_regs: di at 14*8, si at 13*8 (the local struct had them at 8 and 0) */
    CHECK(p && has_ldx_off(p, 112) && has_ldx_off(p, 104) && !has_ldx_off(p, 0) &&
          !has_ldx_off(p, 8), "%s: regs_direct offsets not patched", what);
    p = gobj_find_prog(o, "regs_ret");
    CHECK(p && has_ldx_off(p, 80), "%s: regs_ret reads ax at 80", what);
    p = gobj_find_prog(o, "tp_enter");
    CHECK(p && has_ldx_off(p, 8) && has_ldx_off(p, 24), "%s: tp_enter reads id at 8, args[1] at 24", what);
    for (uint32_t i = 0; i < o->n_progs; i++)
        CHECK(o->progs[i].n_poisoned == 0, "%s: %s poisoned", what, o->progs[i].name);

    uint64_t regs[21] = { 0 };
    regs[14] = 5;     /* di */
    regs[13] = 7;     /* si */
    regs[16] = 1000;  /* ip */
    regs[10] = 33;    /* ax */
    EXPECT_RUN(o, "regs_direct", regs, sizeof(regs), 75);
    EXPECT_RUN(o, "regs_core_read", regs, sizeof(regs), 1005);
    EXPECT_RUN(o, "regs_ret", regs, sizeof(regs), 33);
    EXPECT_RUN(o, "field_exists", regs, sizeof(regs), 1 | (8 << 8));
    EXPECT_RUN(o, "type_facts", regs, sizeof(regs), 1 + 168 * 4);
    uint64_t rec[8] = { 0 };
    rec[1] = 257;     /* id */
    rec[3] = 4;       /* args[1] */
    EXPECT_RUN(o, "tp_enter", rec, sizeof(rec), 4257);
    uint64_t ex[3] = { 0, 257, 3 };
    EXPECT_RUN(o, "tp_exit", ex, sizeof(ex), 3);
    gobj_free(o);

    o = open_fixture("core_enum", builtin);
    if (!o)
        return;
    struct gobj_prog *ev = gobj_find_prog(o, "enum_value");
    if (builtin) {
        /* no enums in the built-in BTF: existence is 0, the value is poisoned */
        CHECK(ev && ev->n_poisoned == 1, "enum_value not poisoned");
        bool found = false;
        for (uint32_t i = 0; ev && i < ev->n_insns; i++)
            found |= ev->insns[i].code == (BPF_JMP | BPF_CALL) && ev->insns[i].imm == GOBJ_POISON_HELPER;
        CHECK(found, "no poison call");
        EXPECT_RUN(o, "enum_exists", NULL, 0, 0);
    } else {
        CHECK(ev && ev->n_poisoned == 0, "enum_value poisoned");
        EXPECT_RUN(o, "enum_exists", NULL, 0, 1);
        EXPECT_RUN(o, "enum_value", NULL, 0, 27);   /* BPF_MAP_TYPE_RINGBUF */
    }
    gobj_free(o);
}

static void test_probe_target(void)
{
    char bin[64], fn[64];
    uint64_t off;
    struct graft_err err;
    CHECK(gobj_parse_probe_target("./app:compute+4", bin, sizeof(bin), fn, sizeof(fn), &off, &err) == 0 &&
          !strcmp(bin, "./app") && !strcmp(fn, "compute") && off == 4, "bin:fn+off");
    CHECK(gobj_parse_probe_target("/usr/lib/libc.so.6:0x1234", bin, sizeof(bin), fn, sizeof(fn), &off, &err) == 0 &&
          !strcmp(bin, "/usr/lib/libc.so.6") && fn[0] == 0 && off == 0x1234, "bin:addr");
    CHECK(gobj_parse_probe_target("noseparator", bin, sizeof(bin), fn, sizeof(fn), &off, &err) == -EINVAL,
          "bad target accepted");
}

/* ---- malformed objects ---- */

static void expect_fail(const uint8_t *buf, size_t len, const char *what, const char *needle1,
                        const char *needle2)
{
    struct gobj_opts o = { .sz = sizeof(o), .use_builtin_btf = true };
    struct gobj *obj = NULL;
    struct graft_err err;
    int rc = gobj_open_mem(buf, len, "bad.o", &o, &obj, &err);
    CHECK(rc < 0 && !obj, "%s: accepted", what);
    if (rc < 0) {
        CHECK(strstr(err.msg, "bad.o") && strstr(err.msg, needle1) &&
              (!needle2 || strstr(err.msg, needle2)), "%s: message '%s'", what, err.msg);
        CHECK(err.code == rc, "%s: code", what);
    }
    gobj_free(obj);
}

static void test_malformed(void)
{
    size_t len;
    uint8_t *good = read_all(fixture("progs"), &len);
    CHECK(good, "read progs");
    if (!good)
        return;
    uint8_t *b = malloc(len);
    elf_version(EV_CURRENT);

    expect_fail(good, 0, "empty", "not an ELF", NULL);
    expect_fail(good, 10, "10 bytes", "bad.o", NULL);
    expect_fail(good, 100, "header only", "bad.o", NULL);
    expect_fail(good, len / 2, "half", "bad.o", NULL);
    expect_fail(good, len - 1, "one byte short", "bad.o", NULL);

    memcpy(b, good, len);
    b[18] = 62;   /* e_machine = EM_X86_64 */
    b[19] = 0;
    expect_fail(b, len, "machine", "not EM_BPF", NULL);
    memcpy(b, good, len);
    b[EI_CLASS] = ELFCLASS32;
    expect_fail(b, len, "class", "ELFCLASS64", NULL);
    memcpy(b, good, len);
    b[EI_DATA] = ELFDATA2MSB;
    expect_fail(b, len, "endianness", "big-endian", NULL);

    struct secinfo si;
    memcpy(b, good, len);
    CHECK(find_sec(b, len, "socket", &si), "no socket section");
    /* rename "socket" (section name table, BTF strings) to an unknown "sockez" */
    uint8_t *p = b;
    while ((p = memmem(p, len - (p - b), "socket\0", 7)))
        memcpy(p, "sockez", 6);
    {
        expect_fail(b, len, "unknown section", "sockez", "not a known program section");
    }

    memcpy(b, good, len);
    if (find_sec(b, len, "xdp", &si)) {
        uint64_t sz = si.size - 4;
        memcpy(b + si.shdr_off + offsetof(Elf64_Shdr, sh_size), &sz, 8);
        expect_fail(b, len, "insn size", "xdp", "multiple of 8");
    }

    memcpy(b, good, len);
    if (find_sec(b, len, ".BTF", &si)) {
        memset(b + si.data_off, 0x5a, si.size > 64 ? 64 : si.size);
        expect_fail(b, len, "BTF garbage", ".BTF", "invalid BTF");
    }
    memcpy(b, good, len);
    if (find_sec(b, len, ".BTF.ext", &si)) {
        memset(b + si.data_off, 0x5a, 4);
        expect_fail(b, len, "BTF.ext garbage", ".BTF.ext", "magic");
    }

    /* relocation to a symbol index past the symbol table */
    memcpy(b, good, len);
    if (find_sec(b, len, ".reluprobe/./app:compute+4", &si) && si.size >= sizeof(Elf64_Rel)) {
        Elf64_Rel r;
        memcpy(&r, b + si.data_off, sizeof(r));
        r.r_info = ELF64_R_INFO(100000, ELF64_R_TYPE(r.r_info));
        memcpy(b + si.data_off, &r, sizeof(r));
        expect_fail(b, len, "missing symbol", "missing symbol", "uprobe/./app:compute+4");
    } else {
        CHECK(0, "no .reluprobe/./app:compute+4 section");
    }
    free(good);

    /* relocation to an undefined symbol that is not a __ksym/__kconfig extern */
    good = read_all(fixture("externs"), &len);
    if (good) {
        b = realloc(b, len);
        memcpy(b, good, len);
        /* rename the ELF symbol only (first occurrence after the BTF string) */
        uint8_t *q = NULL;
        for (uint8_t *s = b; (s = memmem(s, len - (s - b), "graft_app_config\0", 17)); s++)
            q = s;   /* the last copy is the ELF .strtab's */
        if (q) {
            q[15] = 'X';
            expect_fail(b, len, "undefined symbol", "undefined symbol 'graft_app_confiX'", NULL);
        }
        free(good);
    }

    /* CO-RE: a corrupted instruction no longer holding the local value */
    good = read_all(fixture("core"), &len);
    if (good) {
        b = realloc(b, len);
        memcpy(b, good, len);
        /* in regs_ret the only load is ctx->ax, local offset 16 */
        if (find_sec(b, len, "uretprobe/./app:compute", &si)) {
            struct bpf_insn *ins = (struct bpf_insn *)(b + si.data_off);
            for (size_t i = 0; i < si.size / 8; i++)
                if (ins[i].code == (BPF_LDX | BPF_MEM | BPF_DW) && ins[i].off == 16)
                    ins[i].off = 24;
            expect_fail(b, len, "core mismatch", "does not hold the local value", "uretprobe");
        }
        free(good);
    }
    free(b);
}

static void test_opts_and_files(void)
{
    struct gobj *o = NULL;
    struct graft_err err;
    CHECK(gobj_open_file("/nonexistent/x.o", NULL, &o, &err) == -ENOENT && !o &&
          strstr(err.msg, "/nonexistent/x.o"), "missing file: %s", err.msg);
    /* explicit target BTF path: a BTF file that does not exist */
    struct gobj_opts opts = { .sz = sizeof(opts), .target_btf_path = "/nonexistent.btf" };
    int rc = gobj_open_file(fixture("core"), &opts, &o, &err);
    CHECK(rc < 0 && strstr(err.msg, "/nonexistent.btf"), "bad target btf: %s", err.msg);
    struct btf *b = gobj_builtin_btf(&err);
    CHECK(b && btf__find_by_name_kind(b, "pt_regs", BTF_KIND_STRUCT) > 0, "builtin btf");
    if (b) {
        int id = btf__find_by_name_kind(b, "pt_regs", BTF_KIND_STRUCT);
        CHECK(btf__resolve_size(b, id) == 168, "pt_regs size");
        btf__free(b);
    }
}

/* Kernel program types, `?` sections, old section names, iproute2 legacy
 * maps and old-style .text-only objects all load; with keep_broken_progs a
 * program that cannot be linked fails alone. */
static void test_kernel_sections(void)
{
    struct graft_err err;
    struct gobj *o = NULL;
    int rc = gobj_open_file(fixture("kernel"), NULL, &o, &err);
    CHECK(rc < 0 && !o && strstr(err.msg, "missing_global"),
          "without keep_broken_progs the unresolved program fails the object: %d %s", rc, err.msg);
    struct gobj_opts keep = { .sz = sizeof(keep), .keep_broken_progs = true };
    rc = gobj_open_file(fixture("kernel"), &keep, &o, &err);
    CHECK(rc == 0 && o, "open kernel with keep_broken_progs: %d %s", rc, err.msg);
    if (!o)
        return;
    static const struct { const char *name; enum gprog_type type; enum gprog_ktype kt; bool noauto; } want[] = {
        { "no_autoload", GPROG_SOCKET_FILTER, GKT_NONE, true },
        { "bare_tp", GPROG_KERNEL, GKT_TRACEPOINT, false },
        { "bare_raw_tp", GPROG_KERNEL, GKT_RAW_TRACEPOINT, false },
        { "sched_tp", GPROG_KERNEL, GKT_TRACEPOINT, false },
        { "kp", GPROG_KERNEL, GKT_KPROBE, false },
        { "cls", GPROG_KERNEL, GKT_SCHED_CLS, false },
        { "old_xdp", GPROG_KERNEL, GKT_XDP, false },
        { "cg", GPROG_KERNEL, GKT_CGROUP_SKB, false },
        { "graft_tp", GPROG_TRACEPOINT, GKT_NONE, false },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct gobj_prog *p = gobj_find_prog(o, want[i].name);
        CHECK(p, "program %s", want[i].name);
        if (!p)
            continue;
        CHECK(p->type == want[i].type && p->ktype == want[i].kt && p->no_autoload == want[i].noauto,
              "%s: type %d ktype %d noauto %d", p->name, p->type, p->ktype, p->no_autoload);
        CHECK(p->insns && p->n_insns >= 2 && !p->load_error[0], "%s linked: %s", p->name, p->load_error);
    }
    struct gobj_prog *bad = gobj_find_prog(o, "unresolved");
    CHECK(bad && !bad->insns && strstr(bad->load_error, "missing_global"),
          "unresolved program keeps its error: %s", bad ? bad->load_error : "(missing)");
    int m = gobj_find_map(o, "elf_counts");
    CHECK(m >= 0 && o->maps[m].def.type == 2 && o->maps[m].def.key_size == 4 &&
          o->maps[m].def.value_size == 8 && o->maps[m].def.max_entries == 4,
          "iproute2 legacy map with pinning set");
    gobj_free(o);

    o = open_fixture("oldstyle", true);
    if (!o)
        return;
    CHECK(o->n_progs == 2, "old style: %u programs", o->n_progs);
    for (uint32_t i = 0; i < o->n_progs; i++)
        CHECK(o->progs[i].type == GPROG_KERNEL && o->progs[i].ktype == GKT_UNKNOWN &&
              !strcmp(o->progs[i].section, ".text") && o->progs[i].n_insns > 2,
              "old style program %s: type %d, %u insns (helper linked)", o->progs[i].name,
              o->progs[i].type, o->progs[i].n_insns);
    gobj_free(o);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    test_progs();
    test_calls();
    test_maps();
    test_spin_lock_offsets();
    test_legacy();
    test_kernel_sections();
    test_externs();
    test_core(true);
    test_core_bitfield();
    if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
        test_core(false);
    else
        printf("SKIP: CO-RE against vmlinux: /sys/kernel/btf/vmlinux absent\n");
    test_probe_target();
    test_malformed();
    test_opts_and_files();
#ifndef GRAFT_HAVE_VM
    printf("note: VM not built; linked programs were not run\n");
#endif
    printf("%s: %d failures\n", argv[0], failures);
    return failures ? 1 : 0;
}
