/*
 * test_frozen.c - values the verifier may take as known: loads from frozen
 * read-only maps (gver_input.map_frozen) decide branches, so the dead side
 * of a `const volatile` switch is not verified (issue 17); and the pointer
 * bpf_get_current_task_btf returns is read-only memory of the task image's
 * size, whose pointer fields are scalars.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "helpers/helpers.h"
#include "maps/maps.h"
#include "util/task_layout.h"
#include "verifier/verifier.h"
#include "vm/vm.h"
#include "tfail.h"
#include "vtest.h"


/* Verdict of text with one map (def) whose frozen value is frozen (NULL: not
 * frozen); reason copied out. */
/* the policy's spec_bypass (1: the decided branch's dead side is not explored) */
static int nospec = 1;

static int verdict(const char *text, const struct gmap_def *def, const void *frozen, char *why, size_t len)
{
    struct bpf_insn *p;
    uint32_t n;
    struct graft_err err = {0};
    if (gvm_asm(text, &p, &n, &err)) {
        snprintf(why, len, "asm: %.1000s", err.msg);
        return -1;
    }
    const void *fz[1] = { frozen };
    struct gver_policy *pol = gver_policy_raw(64);
    /* the pruning of a decided branch is what is tested: the Spectre rules
     * would check the dead side speculatively (test_frozen_speculative) */
    if (pol)
        pol->spec_bypass = nospec;
    struct gver_input in = { .insns = p, .n = n, .maps = def, .n_maps = def ? 1 : 0, .policy = pol,
                             .map_frozen = frozen ? fz : NULL };
    struct gver_result res = {0};
    int rc = gver_verify(&in, &res, &err);
    free(p);
    free(pol);
    snprintf(why, len, "%.1000s", rc < 0 ? err.msg : res.reason);
    int ok = rc == 0 && res.accepted;
    gver_result_free(&res);
    return ok;
}

/* The dead side reads an uninitialised stack slot: verified, it rejects. */
static const char *const switch_prog =
    "lddw r1, mapidxval:0+0\n"
    "ldxb r2, [r1+3]\n"
    "jeq r2, 0, off\n"
    "ldxdw r0, [r10-8]\n"
    "exit\n"
    "off: mov r0, 0\n"
    "exit\n";

static void test_frozen_rodata(void)
{
    char why[1100];
    struct gmap_def ro = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 1,
                           .map_flags = GMAP_F_RDONLY_PROG, .name = ".rodata" };
    uint8_t off[8] = { 0 }, on[8] = { 0, 0, 0, 1 };
    CHECK(verdict(switch_prog, &ro, off, why, sizeof(why)) == 1, "frozen 0: dead branch pruned: %s", why);
    CHECK(verdict(switch_prog, &ro, on, why, sizeof(why)) == 0 && strstr(why, "uninit"),
          "frozen 1: the live branch is verified and rejected: %s", why);
    CHECK(verdict(switch_prog, &ro, NULL, why, sizeof(why)) == 0, "not frozen: both sides verified");
    struct gmap_def rw = ro;
    rw.map_flags = 0;
    CHECK(verdict(switch_prog, &rw, off, why, sizeof(why)) == 0, "writable by programs: not a constant");
    struct gmap_def big = ro;
    big.max_entries = 2;
    CHECK(verdict(switch_prog, &big, off, why, sizeof(why)) == 0, "not a one-entry array: not a constant");
    /* a variable offset is not a constant read */
    const char *var = "ldxb r3, [r1+0]\nand r3, 1\nlddw r1, mapidxval:0+0\nadd r1, r3\n"
                      "ldxb r2, [r1+3]\njeq r2, 0, off\nldxdw r0, [r10-8]\nexit\noff: mov r0, 0\nexit\n";
    CHECK(verdict(var, &ro, off, why, sizeof(why)) == 0, "variable offset: not a constant");
    /* the constant is the stored value, sized and sign-extended like the load */
    const char *wide = "lddw r1, mapidxval:0+0\nldxw r2, [r1+4]\njeq r2, 0x12345678, ok\n"
                       "ldxdw r0, [r10-8]\nexit\nok: mov r0, 0\nexit\n";
    uint8_t w[8] = { 0, 0, 0, 0, 0x78, 0x56, 0x34, 0x12 };
    CHECK(verdict(wide, &ro, w, why, sizeof(why)) == 1, "32-bit constant: %s", why);
    uint8_t neg[8] = { 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff };
    const char *sx = "lddw r1, mapidxval:0+0\nldxsw r2, [r1+4]\njeq r2, -2, ok\n"
                     "ldxdw r0, [r10-8]\nexit\nok: mov r0, 0\nexit\n";
    int sxv = verdict(sx, &ro, neg, why, sizeof(why));
    CHECK(sxv == 1, "sign-extending load: %s", why);
    /* graft's default policy (the kernel's rules for !root): the dead side
     * can still run on a mispredicted branch, and is verified as such */
    nospec = 0;
    CHECK(verdict(switch_prog, &ro, off, why, sizeof(why)) == 0 && strstr(why, "speculative execution"),
          "frozen 0, Spectre rules: the dead side is checked speculatively: %s", why);
    nospec = 1;
}

static void test_task_image_pointer(void)
{
    char why[1100];
    const struct gtask_layout *L = gtask_layout();
    char prog[512];
    snprintf(prog, sizeof(prog), "call 158\nldxw r0, [r0+%d]\nexit\n", L->tgid);
    CHECK(verdict(prog, NULL, NULL, why, sizeof(why)) == 1, "read task->tgid: %s", why);
    /* the checked interpreter runs it: every load inside the image */
    struct bpf_insn *p;
    uint32_t n;
    struct graft_err err = {0};
    char msg[256] = "";
    snprintf(prog, sizeof(prog), "call 158\nldxw r1, [r0+%d]\nldxdw r2, [r0+%d]\nldxb r0, [r0+%u]\nexit\n",
             L->tgid, L->real_parent, L->task_size - 1);
    CHECK(verdict(prog, NULL, NULL, why, sizeof(why)) == 1, "reads up to the image's last byte: %s", why);
    CHECK(gvm_asm(prog, &p, &n, &err) == 0 && vt_run_checked(p, n, NULL, 0, 64, 4, 1, msg, sizeof(msg)) == 0,
          "checked run: %s", msg);
    free(p);
    snprintf(prog, sizeof(prog), "call 158\nstw [r0+%d], 1\nmov r0, 0\nexit\n", L->tgid);
    CHECK(verdict(prog, NULL, NULL, why, sizeof(why)) == 0 && strstr(why, "read-only"), "store refused: %s", why);
    snprintf(prog, sizeof(prog), "call 158\nldxw r0, [r0+%u]\nexit\n", L->task_size);
    CHECK(verdict(prog, NULL, NULL, why, sizeof(why)) == 0, "read past the image refused: %s", why);
    snprintf(prog, sizeof(prog), "call 158\nldxdw r1, [r0+%d]\nldxw r0, [r1+%d]\nexit\n", L->real_parent, L->tgid);
    CHECK(verdict(prog, NULL, NULL, why, sizeof(why)) == 0, "a loaded pointer field is a scalar: %s", why);
    /* helper 35 gives an integer: no direct loads at all */
    snprintf(prog, sizeof(prog), "call 35\nldxw r0, [r0+%d]\nexit\n", L->tgid);
    CHECK(verdict(prog, NULL, NULL, why, sizeof(why)) == 0, "get_current_task's value is a scalar: %s", why);
}

static uint32_t rd32(const uint8_t *img, int32_t off)
{
    uint32_t v = 0;
    if (off >= 0)
        memcpy(&v, img + off, 4);
    return v;
}

static const uint8_t *rdptr(const uint8_t *img, int32_t off)
{
    const uint8_t *p = NULL;
    if (off >= 0)
        memcpy(&p, img + off, 8);
    return p;
}

/* What the images say, against the process's own view. */
static void test_task_image_values(void)
{
    const struct gtask_layout *L = gtask_layout();
    const gvm_helper_fn *t = ghelper_table();
    CHECK(t[35] && t[158], "helpers 35 and 158 registered");
    if (!t[35])
        return;
    const uint8_t *task = (const uint8_t *)(uintptr_t)t[35](0, 0, 0, 0, 0);
    CHECK(task && (const uint8_t *)(uintptr_t)t[158](0, 0, 0, 0, 0) == task, "35 and 158 give the same image");
    CHECK(rd32(task, L->tgid) == (uint32_t)getpid() && rd32(task, L->pid) == (uint32_t)getpid(), "pid/tgid");
    const uint8_t *parent = rdptr(task, L->real_parent);
    CHECK(parent && rd32(parent, L->tgid) == (uint32_t)getppid(), "real_parent->tgid is getppid()");
    CHECK(rdptr(task, L->group_leader) == task, "the main thread is its own group leader");
    char comm[16] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f) {
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    CHECK(L->comm >= 0 && !strcmp((const char *)task + L->comm, comm), "comm '%s'", comm);
    const uint8_t *cred = rdptr(task, L->cred);
    CHECK(cred && rd32(cred, L->uid) == (uint32_t)getuid() && rd32(cred, L->euid) == (uint32_t)geteuid(),
          "cred->uid, euid");
    const uint8_t *nsp = rdptr(task, L->nsproxy);
    const uint8_t *mnt = nsp ? rdptr(nsp, L->ns_ptr[GTASK_NS_MNT]) : NULL;
    char link[64] = "";
    ssize_t ln = readlink("/proc/self/ns/mnt", link, sizeof(link) - 1);
    unsigned long want = 0;
    if (ln > 0) {
        link[ln] = '\0';
        sscanf(link, "mnt:[%lu]", &want);
    }
    CHECK(mnt && want && rd32(mnt, L->ns_inum[GTASK_NS_MNT]) == (uint32_t)want, "nsproxy->mnt_ns->ns.inum %lu", want);
}

struct thread_view {
    uint32_t pid, tgid, leader_tgid, tgid_at_exit;
    char comm[16], leader_comm[16];
    int leader_is_self;
};

/* A hook may run in a thread after its TLS destructors (its last
 * syscalls): the helper must not touch the images it freed there. */
static pthread_key_t g_late_key;
static void late_destructor(void *arg)
{
    struct thread_view *v = arg;
    const uint8_t *task = (const uint8_t *)(uintptr_t)ghelper_table()[35](0, 0, 0, 0, 0);
    v->tgid_at_exit = task ? rd32(task, gtask_layout()->tgid) : 0;
}

static void *thread_main(void *arg)
{
    struct thread_view *v = arg;
    const struct gtask_layout *L = gtask_layout();
    prctl(PR_SET_NAME, "graft-worker");
    const uint8_t *task = (const uint8_t *)(uintptr_t)ghelper_table()[35](0, 0, 0, 0, 0);
    if (!task)
        return NULL;
    v->pid = rd32(task, L->pid);
    v->tgid = rd32(task, L->tgid);
    memcpy(v->comm, task + L->comm, 16);
    const uint8_t *leader = rdptr(task, L->group_leader);
    v->leader_is_self = leader == task;
    pthread_setspecific(g_late_key, v);
    if (leader) {
        v->leader_tgid = rd32(leader, L->pid);
        memcpy(v->leader_comm, leader + L->comm, 16);
    }
    return NULL;
}

/* Another thread: its own image, pid = its tid, the main thread as leader. */
static void test_task_image_thread(void)
{
    struct thread_view v;
    memset(&v, 0, sizeof(v));
    pthread_t th;
    /* created after the helpers' own key (the main thread called them
     * already), so glibc runs this destructor after theirs */
    CHECK(pthread_key_create(&g_late_key, late_destructor) == 0, "key");
    CHECK(pthread_create(&th, NULL, thread_main, &v) == 0, "pthread_create");
    pthread_join(th, NULL);
    char main_comm[16] = "";
    prctl(PR_GET_NAME, main_comm);
    CHECK(v.tgid == (uint32_t)getpid() && v.pid != v.tgid && v.pid != 0, "thread: pid %u (its tid), tgid %u", v.pid,
          v.tgid);
    CHECK(!strcmp(v.comm, "graft-worker"), "thread comm '%s'", v.comm);
    CHECK(!v.leader_is_self && v.leader_tgid == (uint32_t)getpid() && !strcmp(v.leader_comm, main_comm),
          "group_leader: the main thread (pid %u, comm '%s')", v.leader_tgid, v.leader_comm);
    CHECK(v.tgid_at_exit == (uint32_t)getpid(), "after the thread's destructors: fresh images (tgid %u)",
          v.tgid_at_exit);
}

/* The layout reader refuses what is not BTF instead of guessing. */
static void test_layout_reader(void)
{
    struct gtask_layout l;
    char path[] = "/tmp/graft-btf-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    static const uint8_t junk[64] = { 0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f };
    CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk), "write");
    close(fd);
    CHECK(gtask_layout_from_btf(path, &l) < 0, "a truncated BTF is refused");
    unlink(path);
    CHECK(gtask_layout_from_btf("/nonexistent/btf", &l) < 0, "a missing file is refused");
    gtask_layout_builtin(&l);
    CHECK(l.task_size <= GTASK_IMAGE_MAX && l.tgid + 4 <= (int32_t)l.task_size && l.comm + 16 <= (int32_t)l.task_size,
          "built-in layout within its size");
    if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
        CHECK(gtask_layout_from_btf("/sys/kernel/btf/vmlinux", &l) == 0 && l.from_kernel && l.tgid > 0 &&
              l.comm > 0 && l.real_parent > 0 && l.task_size <= GTASK_IMAGE_MAX, "kernel layout");
    }
}

int main(void)
{
    test_frozen_rodata();
    test_task_image_pointer();
    test_task_image_values();
    test_task_image_thread();
    test_layout_reader();
    if (g_fails) {
        printf("%d failures\n", g_fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
