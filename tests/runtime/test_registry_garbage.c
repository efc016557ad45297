/*
 * test_registry_garbage.c - whatever a target process writes into the
 * registry, nobody who reads it crashes, hangs or loops, nothing outside it
 * is opened or removed, and `graft unload --all` (greg_remove_all, or
 * greg_destroy when the registry cannot be opened) still removes every map
 * and program store of it from /dev/shm.
 *
 * Each round builds a registry (maps, programs, links, a detach request),
 * lets a forked "target" open the object read-write and scribble over it
 * (chosen fields first, then random bytes at random places), runs every
 * reader and a writer in a forked child under a timeout, then cleans up as
 * `graft unload --all` does and looks in /dev/shm.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/registry.h"
#include "treg.h"
#include "util/sha256.h"

static int failures;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

static char regname[64];
static char victim[48];        /* another registry's object: must survive */

/* The header's layout (registry.c): 64 bytes of fields, then the tables. */
#define HDR_SIZE      64
#define OFF_LOCK      16
#define OFF_SEQ       20
#define OFF_NEXT_ID   40
#define OFF_USED      44       /* progs, maps, links, requests */
#define OFF_PROGS     HDR_SIZE
#define OFF_MAPS      (OFF_PROGS + GREG_MAX_PROGS * sizeof(struct greg_prog))
#define OFF_LINKS     (OFF_MAPS + GREG_MAX_MAPS * sizeof(struct greg_map))
#define OFF_REQUESTS  (OFF_LINKS + GREG_MAX_LINKS * sizeof(struct greg_link))
#define REG_SIZE      (OFF_REQUESTS + GREG_MAX_REQUESTS * sizeof(struct greg_request))

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void populate(struct greg *reg)
{
    char prefix[GREG_NAME_MAX];
    greg_map_prefix(reg, prefix, sizeof(prefix));
    for (int i = 0; i < 3; i++) {
        struct gmap_def def = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 4 };
        snprintf(def.name, sizeof(def.name), "m%d", i);
        struct gmap *m;
        struct graft_err err = {0};
        if (gmap_create_named(&def, -1, prefix, &m, &err) < 0) {
            fprintf(stderr, "map: %s\n", err.msg);
            exit(1);
        }
        greg_add_map(reg, def.name, gmap_shm_name(m), &def, &err);
        gmap_close(m);
    }
    for (int i = 0; i < 3; i++) {
        struct bpf_insn insns[2] = { BPF_MOV64_IMM(BPF_R0, i), BPF_EXIT_INSN() };
        struct greg_prog p = { .n_insns = 2 };
        snprintf(p.name, sizeof(p.name), "p%d", i);
        int id = greg_add_prog(reg, &p, insns, NULL);
        struct greg_link l = { .prog_id = (uint32_t)id, .kind = GREG_LINK_UPROBE, .syscall_nr = -1 };
        snprintf(l.symbol, sizeof(l.symbol), "f%d", i);
        greg_add_link(reg, &l, NULL);
    }
    greg_request_detach(reg, getpid());
}

static void poke(uint8_t *mem, size_t off, const void *bytes, size_t len)
{
    if (off + len <= REG_SIZE)
        memcpy(mem + off, bytes, len);
}

static void poke32(uint8_t *mem, size_t off, uint32_t v) { poke(mem, off, &v, sizeof(v)); }

/* What the target does: case < 0 random bytes, else one chosen kind of
 * damage. Runs in a child that maps the registry read-write itself. */
static void scribble(int which)
{
    int fd = shm_open(regname, O_RDWR, 0);
    uint8_t *mem = fd < 0 ? MAP_FAILED : mmap(NULL, REG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        _exit(2);
    char name[GREG_NAME_MAX];
    memset(name, 'A', sizeof(name));
    switch (which) {
    case 0: poke32(mem, 0, 0xdeadbeef); break;                           /* magic */
    case 1: poke32(mem, 8, 99); break;                                   /* version */
    case 2: for (int t = 0; t < 4; t++) poke32(mem, OFF_USED + 4 * t, 0xffffffff); break;
    case 3: poke32(mem, OFF_LOCK, 1); break;                             /* held by init */
    case 4: poke32(mem, OFF_LOCK, 0xfffffff0); break;                    /* impossible pid */
    case 5: poke32(mem, OFF_SEQ, 7); break;                              /* odd, no writer */
    case 6: poke32(mem, OFF_NEXT_ID, 0); break;
    case 7: poke32(mem, OFF_NEXT_ID, 0x7fffffff); break;
    case 8: /* every string of every record unterminated */
        for (int i = 0; i < 3; i++) {
            poke(mem, OFF_PROGS + i * sizeof(struct greg_prog) + offsetof(struct greg_prog, name), name, sizeof(name));
            poke(mem, OFF_PROGS + i * sizeof(struct greg_prog) + offsetof(struct greg_prog, insn_shm), name, sizeof(name));
            poke(mem, OFF_MAPS + i * sizeof(struct greg_map) + offsetof(struct greg_map, shm), name, sizeof(name));
            poke(mem, OFF_LINKS + i * sizeof(struct greg_link) + offsetof(struct greg_link, symbol), name, sizeof(name));
        }
        break;
    case 9: /* counts far past their arrays */
        for (int i = 0; i < 3; i++) {
            poke32(mem, OFF_PROGS + i * sizeof(struct greg_prog) + offsetof(struct greg_prog, n_insns), 0xffffffff);
            poke32(mem, OFF_PROGS + i * sizeof(struct greg_prog) + offsetof(struct greg_prog, n_maps), 100000);
            poke32(mem, OFF_PROGS + i * sizeof(struct greg_prog) + offsetof(struct greg_prog, n_externs), 1u << 30);
            poke32(mem, OFF_LINKS + i * sizeof(struct greg_link) + offsetof(struct greg_link, kind), 0x7fffffff);
        }
        break;
    case 10: /* records naming an object that is not this registry's */
        for (int i = 0; i < 3; i++) {
            char v[GREG_NAME_MAX] = {0};
            snprintf(v, sizeof(v), "%s", victim);
            poke(mem, OFF_PROGS + i * sizeof(struct greg_prog) + offsetof(struct greg_prog, insn_shm), v, sizeof(v));
            poke(mem, OFF_MAPS + i * sizeof(struct greg_map) + offsetof(struct greg_map, shm), v, sizeof(v));
        }
        break;
    case 11: /* the instructions a record's hash vouches for are swapped */
        poke32(mem, OFF_PROGS + offsetof(struct greg_prog, insn_sha256), 0x12345678);
        break;
    default: {
        /* random bytes at random places: the header and the used records */
        static const size_t base[] = { 0, OFF_PROGS, OFF_MAPS, OFF_LINKS, OFF_REQUESTS };
        static const size_t span[] = { HDR_SIZE, 4 * sizeof(struct greg_prog), 4 * sizeof(struct greg_map),
                                       4 * sizeof(struct greg_link), 2 * sizeof(struct greg_request) };
        int n = 1 + (int)(rnd() % 8);
        for (int i = 0; i < n; i++) {
            int r = (int)(rnd() % 5);
            size_t off = base[r] + rnd() % span[r];
            uint8_t bytes[16];
            size_t len = 1 + rnd() % sizeof(bytes);
            for (size_t b = 0; b < len; b++)
                bytes[b] = (uint8_t)rnd();
            poke(mem, off, bytes, len);
        }
    }
    }
    _exit(0);
}

/* Everything that reads the registry, and a writer, as a target's agent,
 * graft list and graft load/unload would. Exits 0 unless something fails
 * in a way that is not a clean error. */
static void readers(void)
{
    alarm(20);                           /* a hang is a failure */
    struct greg *ro;
    struct graft_err err = {0};
    if (greg_open_named(regname, GREG_OPEN_READONLY, &ro, &err) == 0) {
        struct greg_snapshot s;
        if (greg_snapshot(ro, &s) == 0) {
            for (uint32_t i = 0; i < s.n_progs; i++) {
                struct bpf_insn *insns = NULL;
                if (greg_prog_insns(ro, &s.progs[i], &insns, NULL) == 0) {
                    /* only what the loader wrote is handed out */
                    if (s.progs[i].n_insns != 2 || insns[1].code != (BPF_JMP | BPF_EXIT))
                        _exit(5);
                    free(insns);
                }
            }
            for (uint32_t i = 0; i < s.n_maps; i++) {
                struct gmap *m;
                if (gmap_open(s.maps[i].shm, &m, NULL) == 0)
                    gmap_close(m);
            }
            greg_snapshot_detach_requested(&s, getpid(), 1);
            greg_snapshot_free(&s);
        }
        struct greg_proc *procs;
        uint32_t n, bad;
        if (greg_procs(ro, &procs, &n, &bad) == 0)
            free(procs);
        greg_close(ro);
    } else if (err.code != -EPROTO || !strstr(err.msg, "graft unload --all")) {
        fprintf(stderr, "open: unexpected error %d: %s\n", err.code, err.msg);
        _exit(4);
    }
    struct greg *rw;
    if (greg_open_named(regname, 0, &rw, NULL) == 0) {
        char prefix[GREG_NAME_MAX];
        struct gmap_def def = { .type = GMAP_HASH, .key_size = 4, .value_size = 4, .max_entries = 4 };
        struct gmap *m;
        if (gmap_create_named(&def, -1, greg_map_prefix(rw, prefix, sizeof(prefix)), &m, NULL) == 0) {
            if (greg_add_map(rw, "late", gmap_shm_name(m), &def, NULL) < 0)
                gmap_unlink(gmap_shm_name(m));
            gmap_close(m);
        }
        for (uint32_t id = 1; id < 12; id += 5)
            greg_remove_link(rw, id);
        greg_close(rw);
    }
    _exit(0);
}

/* `graft unload --all`, as cmd_unload does it. */
static void unload_all(void)
{
    struct greg *reg;
    struct graft_err err = {0};
    int rc = greg_open_named(regname, 0, &reg, &err);
    if (rc == 0) {
        rc = greg_remove_all(reg);
        greg_close(reg);
    }
    if (rc == -EPROTO || rc == -ETIMEDOUT)
        rc = greg_destroy(regname, &err);
    CHECK(rc >= 0);
}

/* Maps and program stores of the registry left in /dev/shm. */
static int leftovers(void)
{
    char m[80], p[80];
    snprintf(m, sizeof(m), "%s.m.", regname + 1);
    snprintf(p, sizeof(p), "%s.p.", regname + 1);
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, m, strlen(m)) || !strncmp(e->d_name, p, strlen(p))) {
            fprintf(stderr, "left over: /dev/shm/%s\n", e->d_name);
            n++;
        }
    if (d)
        closedir(d);
    return n;
}

static int run_child(void (*fn)(int), int arg)
{
    pid_t c = fork();
    if (c == 0)
        fn(arg);
    int status;
    waitpid(c, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void readers_arg(int unused) { (void)unused; readers(); }

static void round_(int which)
{
    struct greg *reg;
    struct graft_err err = {0};
    if (greg_open_named(regname, GREG_OPEN_CREATE, &reg, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    struct greg_self *self;
    CHECK(greg_self_register(reg, getpid(), "garbage", &self, NULL) == 0);
    populate(reg);
    greg_close(reg);
    CHECK(run_child(scribble, which) == 0);
    int rc = run_child(readers_arg, 0);
    if (rc)
        fprintf(stderr, "case %d: readers exited %d%s\n", which, rc,
                rc == 128 + SIGALRM ? " (hung)" : rc > 128 ? " (crashed)" : "");
    CHECK(rc == 0);
    unload_all();
    CHECK(leftovers() == 0);
    struct stat st;
    char vpath[96];
    snprintf(vpath, sizeof(vpath), "/dev/shm%s", victim);
    CHECK(stat(vpath, &st) == 0);      /* never unlinked on a record's word */
    greg_self_gone(self);
    greg_self_close(self);
    greg_destroy(regname, NULL);       /* a fresh registry for the next round */
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    treg_name(regname, sizeof(regname), "garb");
    treg_name(victim, sizeof(victim), "victim");
    greg_destroy(regname, NULL);
    int vfd = shm_open(victim, O_RDWR | O_CREAT, 0600);
    CHECK(vfd >= 0);
    close(vfd);

    /* The layout this test pokes at is the registry's. */
    struct greg *reg;
    CHECK(greg_open_named(regname, GREG_OPEN_CREATE, &reg, NULL) == 0);
    greg_close(reg);
    char path[96];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", regname);
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size == REG_SIZE);
    if (failures)
        return 1;
    greg_destroy(regname, NULL);

    for (int which = 0; which <= 11; which++)
        round_(which);
    /* A lock word that names a live process we cannot look into (pid 1
     * here) costs the 2 s a writer waits: some rounds are slow. */
    for (int r = 0; r < rounds; r++)
        round_(-1);
    shm_unlink(victim);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("registry garbage: %d chosen and %d random scribbles survived\n", 12, rounds);
    return 0;
}
