/*
 * test_registry.c - the shared registry: records round-trip, several
 * processes add without wiping each other, agents are woken by changes,
 * cleanup by owner, and other users are kept out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/registry.h"

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
    int mid = greg_add_map(reg, "counts", "/nonexistent.shm", &def, NULL);
    CHECK(mid > 0 && mid != pid);

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
    CHECK(greg_snapshot_map(&s, (uint32_t)mid)->def.value_size == 8);
    int found = 0;
    for (uint32_t i = 0; i < s.n_links; i++)
        found += s.links[i].id == (uint32_t)lid && strcmp(s.links[i].symbol, "malloc") == 0;
    CHECK(found == 1);
    struct bpf_insn *insns = NULL;
    CHECK(p && greg_prog_insns(p, &insns, NULL) == 0);
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

static void test_agents(void)
{
    struct greg *reg = open_reg();
    struct greg_proc *me;
    CHECK(greg_proc_register(reg, getpid(), "tester", &me) == 0);
    CHECK(greg_request_detach(reg, getpid()) == 0);
    CHECK(me->state == GREG_PROC_DETACHING);
    CHECK(greg_request_detach(reg, 1) == -ESRCH || getpid() == 1);
    greg_proc_set(reg, me, GREG_PROC_GONE, 0, 0, 0, "bye");
    CHECK(greg_request_detach(reg, getpid()) == -ESRCH);
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

    char path[128];
    snprintf(path, sizeof(path), "/dev/shm%s", regname);
    CHECK(chmod(path, 0666) == 0);
    struct greg *r;
    struct graft_err err = {0};
    CHECK(greg_open_named(regname, 0, &r, &err) == -EPERM);
    CHECK(strstr(err.msg, "mode") != NULL);
    chmod(path, 0600);
}

int main(void)
{
    snprintf(regname, sizeof(regname), "/graft.test.registry.%d", getpid());
    shm_unlink(regname);
    test_round_trip();
    test_concurrent_loaders();
    test_wait_and_owner_cleanup();
    test_agents();
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
