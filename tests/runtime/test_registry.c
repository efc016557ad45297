/*
 * test_registry.c - the shared registry: records round-trip, several
 * processes add without wiping each other, agents are woken by changes,
 * cleanup by owner, agents' status objects, and other users are kept out.
 * test_registry_garbage.c scribbles over it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

static struct greg *open_reg(void)
{
    struct greg *reg = NULL;
    struct graft_err err = {0};
    int rc = greg_open_named(regname, 1, &reg, &err);
    if (rc) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    return reg;
}

static int add_prog(struct greg *reg, const char *name, uint32_t n)
{
    struct bpf_insn insns[8];
    for (uint32_t i = 0; i < n; i++)
        insns[i] = BPF_MOV64_IMM(BPF_R0, (int32_t)i);
    struct greg_prog p = { .n_insns = n, .n_maps = 0 };
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.section, sizeof(p.section), "uprobe/x:%s", name);
    struct graft_err err = {0};
    int id = greg_add_prog(reg, &p, insns, &err);
    if (id < 0)
        fprintf(stderr, "add_prog: %s\n", err.msg);
    return id;
}

static void test_round_trip(void)
{
    struct greg *reg = open_reg();
    uint64_t g0 = greg_generation(reg);
    int pid = add_prog(reg, "first", 5);
    CHECK(pid > 0);
    CHECK(greg_generation(reg) > g0);

    struct gmap_def def = { .type = GMAP_HASH, .key_size = 4, .value_size = 8, .max_entries = 16 };
    char shm[96];
    snprintf(shm, sizeof(shm), "%s.m.0123456789abcdef", regname);
    int mid = greg_add_map(reg, "counts", shm, &def, NULL);
    CHECK(mid > 0 && mid != pid);
    /* A record naming an object outside the registry is left out. */
    CHECK(greg_add_map(reg, "stray", "/nonexistent.shm", &def, NULL) > 0);

    struct greg_link l = { .prog_id = (uint32_t)pid, .kind = GREG_LINK_UPROBE, .syscall_nr = -1 };
    snprintf(l.symbol, sizeof(l.symbol), "malloc");
    int lid = greg_add_link(reg, &l, NULL);
    CHECK(lid > 0);
    struct greg_link bad = { .prog_id = 999999, .kind = GREG_LINK_UPROBE };
    struct graft_err err = {0};
    CHECK(greg_add_link(reg, &bad, &err) == -ENOENT);
    CHECK(strstr(err.msg, "999999") != NULL);

    struct greg_snapshot s;
    CHECK(greg_snapshot(reg, &s) == 0);
    const struct greg_prog *p = greg_snapshot_prog(&s, (uint32_t)pid);
    CHECK(p && strcmp(p->name, "first") == 0 && p->n_insns == 5);
    CHECK(greg_snapshot_map_by_name(&s, "counts") != NULL);
    CHECK(greg_snapshot_map_by_name(&s, "stray") == NULL && s.n_damaged == 1);
    CHECK(greg_snapshot_map(&s, (uint32_t)mid)->def.value_size == 8);
    int found = 0;
    for (uint32_t i = 0; i < s.n_links; i++)
        found += s.links[i].id == (uint32_t)lid && strcmp(s.links[i].symbol, "malloc") == 0;
    CHECK(found == 1);
    struct bpf_insn *insns = NULL;
    CHECK(p && greg_prog_insns(reg, p, &insns, NULL) == 0);
    CHECK(insns && insns[4].imm == 4 && insns[4].code == (BPF_ALU64 | BPF_MOV | BPF_K));
    free(insns);
    greg_snapshot_free(&s);

    /* Removing a program removes its links too. */
    CHECK(greg_remove_prog(reg, (uint32_t)pid) == 0);
    CHECK(greg_snapshot(reg, &s) == 0);
    CHECK(greg_snapshot_prog(&s, (uint32_t)pid) == NULL);
    for (uint32_t i = 0; i < s.n_links; i++)
        CHECK(s.links[i].id != (uint32_t)lid);
    greg_snapshot_free(&s);
    CHECK(greg_remove_prog(reg, (uint32_t)pid) == -ENOENT);
    greg_close(reg);
}

/* Two loaders add concurrently; neither wipes the other; ids are unique. */
static void test_concurrent_loaders(void)
{
    enum { PER_CHILD = 40 };
    for (int c = 0; c < 2; c++) {
        if (fork() == 0) {
            struct greg *reg = open_reg();
            for (int i = 0; i < PER_CHILD; i++) {
                char name[32];
                snprintf(name, sizeof(name), "c%d_%d", c, i);
                if (add_prog(reg, name, 2) <= 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    int status, ok = 1;
    while (wait(&status) > 0)
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    CHECK(ok);
    struct greg *reg = open_reg();
    struct greg_snapshot s;
    CHECK(greg_snapshot(reg, &s) == 0);
    int n = 0;
    for (uint32_t i = 0; i < s.n_progs; i++) {
        n += s.progs[i].name[0] == 'c';
        for (uint32_t j = i + 1; j < s.n_progs; j++)
            CHECK(s.progs[i].id != s.progs[j].id);
    }
    CHECK(n == 2 * PER_CHILD);
    greg_snapshot_free(&s);
    greg_close(reg);
}

/* An agent waiting on the generation wakes when a loader adds something,
 * and the owner's exit cleans up only its own records. */
static void test_wait_and_owner_cleanup(void)
{
    struct greg *reg = open_reg();
    uint64_t seen = greg_generation(reg);
    pid_t child = fork();
    if (child == 0) {
        usleep(50 * 1000);
        struct greg *r = open_reg();
        add_prog(r, "from_child", 1);
        greg_remove_owned_by(r, getpid());
        _exit(0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t now = greg_wait(reg, seen, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(now != seen);
    CHECK(t1.tv_sec - t0.tv_sec < 4);     /* woken, not timed out */
    waitpid(child, NULL, 0);

    struct greg_snapshot s;
    CHECK(greg_snapshot(reg, &s) == 0);
    for (uint32_t i = 0; i < s.n_progs; i++)
        CHECK(strcmp(s.progs[i].name, "from_child") != 0);
    CHECK(s.n_progs == 2 * 40);               /* the other loaders' programs survive */
    greg_snapshot_free(&s);

    /* A timed wait with no change returns the same generation. */
    uint64_t g = greg_generation(reg);
    CHECK(greg_wait(reg, g, 20) == g);
    greg_close(reg);
}

static const struct greg_proc *find_proc(const struct greg_proc *procs, uint32_t n, pid_t pid)
{
    for (uint32_t i = 0; i < n; i++)
        if (procs[i].pid == pid)
            return &procs[i];
    return NULL;
}

/* The status object of pid, found by its name's prefix. */
static int open_status_object(pid_t pid, char *name, size_t len)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s.a.%d", regname + 1, (int)pid);
    size_t pl = strlen(prefix);
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int fd = -1;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, pl) == 0 && (!e->d_name[pl] || e->d_name[pl] == '.')) {
            snprintf(name, len, "/%.100s", e->d_name);
            fd = shm_open(name, O_RDWR, 0);
        }
    if (d)
        closedir(d);
    return fd;
}

/* Agents report in their own status objects; `graft detach` is a request
 * in the registry; a damaged status object spoils only its own line. */
static void test_agents(void)
{
    struct greg *reg = open_reg();
    struct greg_self *me, *other;
    CHECK(greg_self_register(reg, getpid(), "tester", &me, NULL) == 0);
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    CHECK(greg_self_register(reg, child, "other", &other, NULL) == 0);
    greg_self_set(me, GREG_PROC_RUNNING, 7, 3, 1, "hello");

    struct greg_proc *procs;
    uint32_t n, bad;
    CHECK(greg_procs(reg, &procs, &n, &bad) == 0 && bad == 0);
    const struct greg_proc *p = find_proc(procs, n, getpid());
    CHECK(p && p->state == GREG_PROC_RUNNING && p->links_installed == 3 && p->links_failed == 1 &&
          p->seen_generation == 7 && strcmp(p->comm, "tester") == 0 && strcmp(p->message, "hello") == 0);
    CHECK(find_proc(procs, n, child) != NULL);
    free(procs);

    CHECK(greg_request_detach(reg, getpid()) == 0);
    CHECK(greg_proc_state(reg, getpid()) == GREG_PROC_DETACHING);
    struct greg_snapshot s;
    CHECK(greg_snapshot(reg, &s) == 0);
    CHECK(greg_snapshot_detach_requested(&s, getpid(), greg_self_nonce(me)));
    CHECK(!greg_snapshot_detach_requested(&s, getpid(), greg_self_nonce(me) + 1));
    CHECK(!greg_snapshot_detach_requested(&s, child, greg_self_nonce(other)));
    greg_snapshot_free(&s);
    greg_self_set(me, GREG_PROC_DETACHED, 8, 0, 0, NULL);
    CHECK(greg_proc_state(reg, getpid()) == GREG_PROC_DETACHED);
    CHECK(greg_request_attach(reg, child) == -EALREADY);
    CHECK(greg_request_attach(reg, getpid()) == 0);
    CHECK(greg_snapshot(reg, &s) == 0);
    CHECK(!greg_snapshot_detach_requested(&s, getpid(), greg_self_nonce(me)));
    greg_snapshot_free(&s);
    greg_self_set(me, GREG_PROC_RUNNING, 9, 3, 0, NULL);     /* what the agent then does */
    CHECK(greg_request_detach(reg, 1) == -ESRCH || getpid() == 1);

    /* Garbage in the other agent's object: its line says so, ours stands. */
    char name[128];
    int fd = open_status_object(child, name, sizeof(name));
    CHECK(fd >= 0);
    CHECK(pwrite(fd, "garbage!", 8, 0) == 8);
    close(fd);
    CHECK(greg_procs(reg, &procs, &n, &bad) == 0 && bad == 1);
    p = find_proc(procs, n, child);
    CHECK(p && p->state == 0 && strstr(p->message, "damaged"));
    p = find_proc(procs, n, getpid());
    CHECK(p && p->state == GREG_PROC_RUNNING);
    free(procs);

    /* A dead process's object is not listed, and is removed. */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(greg_procs(reg, &procs, &n, &bad) == 0 && !find_proc(procs, n, child));
    free(procs);
    CHECK(open_status_object(child, name, sizeof(name)) < 0);
    greg_self_close(other);

    /* A stranger created the usual name of an agent's status object first:
     * the agent takes a random one, and is still found. */
    if (getuid() == 0) {
        pid_t third = fork();
        if (third == 0) {
            pause();
            _exit(0);
        }
        char squat[128];
        snprintf(squat, sizeof(squat), "%s.a.%d", regname, (int)third);
        int sfd = shm_open(squat, O_RDWR | O_CREAT | O_EXCL, 0644);
        CHECK(sfd >= 0 && fchown(sfd, 65534, 65534) == 0 && pwrite(sfd, "forged", 6, 0) == 6);
        close(sfd);
        struct greg_self *t;
        CHECK(greg_self_register(reg, third, "third", &t, NULL) == 0);
        struct greg_proc tp;
        CHECK(greg_proc_find(reg, third, &tp, 0) == 1 && tp.state == GREG_PROC_RUNNING &&
              strcmp(tp.comm, "third") == 0);
        CHECK(greg_procs(reg, &procs, &n, &bad) == 0 && bad == 0);
        uint32_t seen = 0;
        for (uint32_t i = 0; i < n; i++)
            seen += procs[i].pid == third;
        CHECK(seen == 1);                 /* the forged one is not listed */
        free(procs);
        greg_self_gone(t);
        greg_self_close(t);
        shm_unlink(squat);
        kill(third, SIGKILL);
        waitpid(third, NULL, 0);
    }
    /* Our own leftover under the usual name (an earlier process with this
     * pid died without removing it) is replaced. */
    struct greg_self *again;
    CHECK(greg_self_register(reg, child, "reborn", &again, NULL) == 0);
    greg_self_close(again);               /* as if it crashed: object left */
    CHECK(greg_self_register(reg, child, "reborn2", &again, NULL) == 0);
    fd = open_status_object(child, name, sizeof(name));
    char want[128];
    snprintf(want, sizeof(want), "%s.a.%d", regname, (int)child);
    CHECK(fd >= 0 && strcmp(name, want) == 0);
    if (fd >= 0)
        close(fd);
    greg_self_gone(again);
    greg_self_close(again);

    greg_self_gone(me);
    greg_self_set(me, GREG_PROC_RUNNING, 9, 0, 0, "after gone: dropped");
    CHECK(greg_proc_state(reg, getpid()) == 0);
    CHECK(greg_request_detach(reg, getpid()) == -ESRCH);
    greg_self_close(me);

    /* exec keeps the pid and the start time but runs no destructor: the
     * new image's agent replaces the old image's object, not sits beside
     * a stale one. */
    struct greg_self *old_image, *new_image;
    CHECK(greg_self_register(reg, getpid(), "old-image", &old_image, NULL) == 0);
    greg_self_close(old_image);
    CHECK(greg_self_register(reg, getpid(), "new-image", &new_image, NULL) == 0);
    CHECK(greg_procs(reg, &procs, &n, &bad) == 0);
    uint32_t mine = 0;
    for (uint32_t i = 0; i < n; i++)
        if (procs[i].pid == getpid()) {
            mine++;
            CHECK(strcmp(procs[i].comm, "new-image") == 0);
        }
    CHECK(mine == 1);
    free(procs);
    greg_self_gone(new_image);
    greg_self_close(new_image);
    greg_close(reg);
}

/* An agent maps the registry read-only and cannot change it. */
static void test_read_only(void)
{
    struct greg *ro;
    struct graft_err err = {0};
    CHECK(greg_open_named(regname, GREG_OPEN_READONLY, &ro, &err) == 0);
    char line[512], want[128];
    snprintf(want, sizeof(want), "/dev/shm%s", regname);
    FILE *f = fopen("/proc/self/maps", "r");
    int mapped = 0;
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *path = strchr(line, '/');
        if (path && strcmp(path, want) == 0) {
            mapped++;
            CHECK(strncmp(strchr(line, ' ') + 1, "r--s", 4) == 0);
        }
    }
    if (f)
        fclose(f);
    CHECK(mapped >= 1);
    struct gmap_def def = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 1 };
    CHECK(greg_add_map(ro, "x", "/graft.0.0000000000000000", &def, &err) == -EROFS);
    struct greg_snapshot s;
    CHECK(greg_snapshot(ro, &s) == 0 && s.n_progs > 0);
    greg_snapshot_free(&s);
    greg_close(ro);
}

/* A program store changed after the loader wrote it is not handed out. */
static void test_tampered_store(void)
{
    struct greg *reg = open_reg();
    int id = add_prog(reg, "tampered", 4);
    struct greg_snapshot s;
    CHECK(id > 0 && greg_snapshot(reg, &s) == 0);
    const struct greg_prog *p = greg_snapshot_prog(&s, (uint32_t)id);
    CHECK(p && strncmp(p->insn_shm, regname, strlen(regname)) == 0);
    struct bpf_insn *insns = NULL;
    struct graft_err err = {0};
    int fd = p ? shm_open(p->insn_shm, O_RDWR, 0) : -1;
    CHECK(fd >= 0);
    struct bpf_insn evil = BPF_MOV64_IMM(BPF_R0, 666);
    CHECK(pwrite(fd, &evil, sizeof(evil), 0) == sizeof(evil));
    CHECK(p && greg_prog_insns(reg, p, &insns, &err) == -EBADMSG && strstr(err.msg, "SHA-256"));
    /* Same bytes, but the object now belongs to someone else. */
    struct bpf_insn orig = BPF_MOV64_IMM(BPF_R0, 0);
    CHECK(pwrite(fd, &orig, sizeof(orig), 0) == sizeof(orig));
    CHECK(p && greg_prog_insns(reg, p, &insns, NULL) == 0);
    free(insns);
    if (getuid() == 0) {
        CHECK(fchown(fd, 65534, 65534) == 0);
        CHECK(p && greg_prog_insns(reg, p, &insns, &err) == -EPERM && strstr(err.msg, "uid 65534"));
    }
    close(fd);
    greg_snapshot_free(&s);
    greg_remove_prog(reg, (uint32_t)id);
    greg_close(reg);
}

/* The verifier's facts travel in the store, after the insns, under the
 * same hash: read back exactly, a changed fact refused like a changed
 * insn, a record without facts gives none, a count that is not n_insns is
 * refused. */
static void test_facts(void)
{
    struct greg *reg = open_reg();
    struct bpf_insn insns[3] = { BPF_MOV64_IMM(BPF_R0, 7), BPF_ALU64_IMM(BPF_AND, BPF_R0, 15), BPF_EXIT_INSN() };
    struct gvm_insn_fact facts[3];
    memset(facts, 0xa5, sizeof(facts));     /* padding bytes must not reach the hash */
    for (int i = 0; i < 3; i++) {
        facts[i].flags = (uint32_t)i;
        facts[i].dst_bits = 7u + (uint64_t)i;
        facts[i].src_value = 100u + (uint64_t)i;
    }
    struct greg_prog t = { .n_insns = 3, .n_facts = 3 };
    snprintf(t.name, sizeof(t.name), "facts");
    struct graft_err err = {0};
    int id = greg_add_prog_facts(reg, &t, insns, facts, &err);
    CHECK(id > 0);
    t.n_facts = 2;
    CHECK(greg_add_prog_facts(reg, &t, insns, facts, &err) == -EINVAL && strstr(err.msg, "2 facts for 3"));
    int plain = add_prog(reg, "nofacts", 3);
    struct greg_snapshot s;
    CHECK(plain > 0 && greg_snapshot(reg, &s) == 0);
    const struct greg_prog *p = greg_snapshot_prog(&s, (uint32_t)id);
    const struct greg_prog *q = greg_snapshot_prog(&s, (uint32_t)plain);
    CHECK(p && p->n_facts == 3 && q && q->n_facts == 0);
    struct bpf_insn *got = NULL;
    struct gvm_insn_fact *gf = NULL;
    CHECK(p && greg_prog_code(reg, p, &got, &gf, NULL) == 0 && got && gf);
    for (int i = 0; got && gf && i < 3; i++)
        CHECK(!memcmp(&got[i], &insns[i], sizeof(insns[i])) && gf[i].flags == (uint32_t)i &&
              gf[i].dst_bits == 7u + (uint64_t)i && gf[i].src_value == 100u + (uint64_t)i);
    free(got);
    free(gf);
    gf = (void *)1;
    CHECK(q && greg_prog_code(reg, q, &got, &gf, NULL) == 0 && gf == NULL);
    free(got);
    /* a fact changed in the store: refused */
    int fd = p ? shm_open(p->insn_shm, O_RDWR, 0) : -1;
    CHECK(fd >= 0);
    struct gvm_insn_fact evil = { .flags = GVM_FACT_DST_BITS, .dst_bits = 1 };
    CHECK(pwrite(fd, &evil, sizeof(evil), (off_t)sizeof(insns) + (off_t)sizeof(evil)) == sizeof(evil));
    CHECK(p && greg_prog_code(reg, p, &got, &gf, &err) == -EBADMSG && strstr(err.msg, "SHA-256"));
    close(fd);
    greg_snapshot_free(&s);
    greg_remove_prog(reg, (uint32_t)id);
    greg_remove_prog(reg, (uint32_t)plain);
    greg_close(reg);
}

/* Only the owner may open the registry, and a registry others can write is refused. */
static void test_security(void)
{
    if (getuid() != 0) {
        printf("SKIP: security test needs root to switch users\n");
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(3);
        struct greg *r;
        struct graft_err err = {0};
        int rc = greg_open_named(regname, 0, &r, &err);
        _exit(rc == -EACCES ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Another user created the registry's name first (anyone can create any
     * name in /dev/shm): refused, saying whose it is and what to do, and
     * nothing is written to it. */
    char squat[64];
    treg_name(squat, sizeof(squat), "squat");
    child = fork();
    if (child == 0) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
            _exit(3);
        int fd = shm_open(squat, O_RDWR | O_CREAT | O_EXCL, 0644);
        _exit(fd >= 0 && fchmod(fd, 0644) == 0 ? 0 : 1);
    }
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct greg *sq = NULL;
    struct graft_err serr = {0};
    CHECK(greg_open_named(squat, GREG_OPEN_CREATE, &sq, &serr) == -EPERM);
    CHECK(strstr(serr.msg, squat) && strstr(serr.msg, "uid 65534") && strstr(serr.msg, "rm /dev/shm"));
    char sqpath[96];
    struct stat sst;
    snprintf(sqpath, sizeof(sqpath), "/dev/shm%s", squat);
    CHECK(stat(sqpath, &sst) == 0 && sst.st_size == 0 && sst.st_uid == 65534);
    shm_unlink(squat);

    /* Program stores have unguessable names: objects a stranger made under
     * the registry's name do not block a load. */
    for (int i = 1; i <= 64; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%s.prog%d", regname, i);
        int fd = shm_open(name, O_RDWR | O_CREAT, 0600);
        CHECK(fd >= 0 && fchown(fd, 65534, 65534) == 0);
        close(fd);
    }
    struct greg *reg = open_reg();
    int id = add_prog(reg, "after_squat", 2);
    CHECK(id > 0);
    greg_remove_prog(reg, (uint32_t)id);
    greg_close(reg);
    for (int i = 1; i <= 64; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%s.prog%d", regname, i);
        shm_unlink(name);
    }

    char path[128];
    snprintf(path, sizeof(path), "/dev/shm%s", regname);
    CHECK(chmod(path, 0666) == 0);
    struct greg *r;
    struct graft_err err = {0};
    CHECK(greg_open_named(regname, 0, &r, &err) == -EPERM);
    CHECK(strstr(err.msg, "mode") != NULL);
    chmod(path, 0600);
}

/* FIPS 180-4's examples: one block, two blocks (the padding spills). */
static void test_sha256(void)
{
    static const struct { const char *in, *hex; } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t sum[GRAFT_SHA256_LEN];
        char hex[2 * GRAFT_SHA256_LEN + 1];
        graft_sha256(v[i].in, strlen(v[i].in), sum);
        for (int b = 0; b < GRAFT_SHA256_LEN; b++)
            snprintf(hex + 2 * b, 3, "%02x", sum[b]);
        CHECK(strcmp(hex, v[i].hex) == 0);
    }
}

int main(void)
{
    test_sha256();
    treg_name(regname, sizeof(regname), "reg");
    shm_unlink(regname);
    test_round_trip();
    test_concurrent_loaders();
    test_wait_and_owner_cleanup();
    test_agents();
    test_read_only();
    test_tampered_store();
    test_facts();
    test_security();
    /* Leave nothing behind. */
    struct greg *reg = open_reg();
    struct greg_snapshot s;
    if (greg_snapshot(reg, &s) == 0) {
        for (uint32_t i = 0; i < s.n_progs; i++)
            greg_remove_prog(reg, s.progs[i].id);
        greg_snapshot_free(&s);
    }
    greg_close(reg);
    shm_unlink(regname);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("registry: all checks passed\n");
    return 0;
}
