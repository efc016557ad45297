/*
 * h_taskimg.c - bpf_get_current_task (35) and bpf_get_current_task_btf (158):
 * the kernel hands programs a pointer to the current struct task_struct;
 * graft hands them a pointer to a synthetic image of one, per thread, laid
 * out as the BTF the program was CO-RE-relocated against
 * (util/task_layout.h), holding what a user process can know about itself:
 *
 *   task:    pid (thread id), tgid, comm, flags (PF_*), exit_signal,
 *            start_time/start_boottime, exit_code (0 until the thread
 *            exits: ghelper_task_set_exit_code),
 *            real_parent/parent -> the parent's image, group_leader -> the
 *            main thread's image (itself for the main thread),
 *            cred/real_cred -> a cred image, nsproxy -> an nsproxy image;
 *   parent:  pid = tgid = getppid(), its comm, flags and start time; its own
 *            real_parent, cred and nsproxy are NULL (not known);
 *   leader:  pid = tgid, the main thread's comm, flags and start time;
 *   cred:    uid, gid, suid, sgid, euid, egid, fsuid, fsgid;
 *   nsproxy: uts, ipc, mnt, pid_for_children, net, cgroup -> namespace images
 *            holding ns.inum (the inode number of /proc/thread-self/ns/X).
 *
 * Every other byte of an image is zero: a field graft does not know reads as
 * 0, and a pointer it does not know as NULL (a read through it fails with
 * -EFAULT, as it would for a NULL in the kernel).
 *
 * Safety: the images are the only memory these helpers expose. Helper 35
 * returns the address as an integer (as the kernel does), usable only
 * through bpf_probe_read*, which needs the read-host right anyway. Helper 158
 * returns a pointer the verifier types as read-only memory of the image's
 * size (GRET_TASK_IMAGE): direct loads are bounds-checked against the image,
 * stores are refused, and a pointer loaded from it is a plain scalar. Each
 * image is allocated GTASK_IMAGE_MAX bytes whatever the layout says, so no
 * verified load leaves it.
 *
 * bpf_probe_read_kernel[_str] read these images and nothing else (-EFAULT
 * elsewhere, as the kernel for a user address), so BPF_CORE_READ(task, ...)
 * works in programs graft loads itself; under `graft compat` libbpf turns
 * those helpers into bpf_probe_read[_str] (see compat/glue.c).
 *
 * Cost: the images are refreshed at most every REFRESH_NS per thread (a few
 * /proc reads); in between a call is a TLS load and a coarse clock read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers/helpers_internal.h"
#include "util/task_layout.h"

#define REFRESH_NS 100000000ull   /* 100 ms, as comm's cache in h_task.c */

struct task_images {
    uint8_t task[GTASK_IMAGE_MAX], leader[GTASK_IMAGE_MAX], parent[GTASK_IMAGE_MAX];
    uint8_t cred[GTASK_SMALL_MAX], nsproxy[GTASK_SMALL_MAX];
    uint8_t ns[GTASK_NS_N][GTASK_SMALL_MAX];
    uint64_t refreshed_at;         /* coarse ns; 0 = never */
    uint32_t tid;                  /* the thread the images describe */
};

static __thread struct task_images *t_img;
static __thread int32_t t_exit_code;   /* set while the thread exits (ghelper_task_set_exit_code) */
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Thread exit (pthread key destructor, run in the exiting thread): hooks
 * may still run later in this thread (its last syscalls), so t_img is
 * cleared first and a later call maps fresh images instead of writing
 * into unmapped memory. */
static void free_images(void *p)
{
    t_img = NULL;
    if (p)
        munmap(p, sizeof(struct task_images));
}

/* A forked child's copy of the images describes the parent: refresh. */
static void after_fork(void)
{
    if (t_img)
        t_img->refreshed_at = 0;
}

static void init_once(void)
{
    pthread_key_create(&g_key, free_images);
    pthread_atfork(NULL, NULL, after_fork);
    (void)gtask_layout();
}

static void put32(uint8_t *img, int32_t off, uint32_t v)
{
    if (off >= 0)
        memcpy(img + off, &v, 4);
}

static void put64(uint8_t *img, int32_t off, uint64_t v)
{
    if (off >= 0)
        memcpy(img + off, &v, 8);
}

static void put_ptr(uint8_t *img, int32_t off, const void *p)
{
    put64(img, off, (uint64_t)(uintptr_t)p);
}

/* What /proc/<who>/stat says about a task. */
struct stat_info {
    char comm[GTASK_COMM_LEN];
    int ppid;
    uint32_t flags;
    uint64_t start_ns;
    int exit_signal;
    int ok;
};

int ghelper_read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

static void read_stat(const char *path, struct stat_info *si)
{
    char buf[1024];
    memset(si, 0, sizeof(*si));
    if (ghelper_read_small(path, buf, sizeof(buf)) < 0)
        return;
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return;
    size_t cl = (size_t)(close_paren - open_paren - 1);
    if (cl >= GTASK_COMM_LEN)
        cl = GTASK_COMM_LEN - 1;
    memcpy(si->comm, open_paren + 1, cl);
    /* fields from 3 (state) on, space separated */
    char *save = NULL, *tok = strtok_r(close_paren + 1, " ", &save);
    static long ticks;
    if (!ticks)
        ticks = sysconf(_SC_CLK_TCK);
    for (int field = 3; tok; field++, tok = strtok_r(NULL, " ", &save)) {
        if (field == 4)
            si->ppid = atoi(tok);
        else if (field == 9)
            si->flags = (uint32_t)strtoul(tok, NULL, 10);
        else if (field == 22 && ticks > 0)
            si->start_ns = strtoull(tok, NULL, 10) * (1000000000ull / (uint64_t)ticks);
        else if (field == 38) {
            si->exit_signal = atoi(tok);
            si->ok = 1;
            break;
        }
    }
}

static void fill_task(uint8_t *img, const struct gtask_layout *L, uint32_t pid, uint32_t tgid,
                      const struct stat_info *si, const char *comm)
{
    memset(img, 0, L->task_size);        /* the rest stays zero from mmap */
    put32(img, L->pid, pid);
    put32(img, L->tgid, tgid);
    if (L->comm >= 0)
        memcpy(img + L->comm, comm, GTASK_COMM_LEN);
    put32(img, L->flags, si->flags);
    put32(img, L->exit_signal, (uint32_t)si->exit_signal);
    put64(img, L->start_time, si->start_ns);
    put64(img, L->start_boottime, si->start_ns);
}

static uint32_t ns_inum(const char *name)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", name);
    return stat(path, &st) == 0 ? (uint32_t)st.st_ino : 0;
}

static void refresh(struct task_images *im, const struct gtask_layout *L)
{
    static const char *const ns_files[GTASK_NS_N] = { "uts", "ipc", "mnt", "pid_for_children", "net",
                                                      "cgroup" };
    uint32_t tid = gh_tid(), tgid = gh_tgid();
    struct stat_info self, leader, parent;
    read_stat("/proc/thread-self/stat", &self);
    read_stat("/proc/self/stat", &leader);     /* /proc/self is the thread group: its leader */
    int ppid = self.ok ? self.ppid : (int)getppid();
    char path[48];
    snprintf(path, sizeof(path), "/proc/%d/stat", ppid);
    read_stat(path, &parent);
    char comm[GTASK_COMM_LEN];
    memcpy(comm, gh_comm(), GTASK_COMM_LEN);
    comm[GTASK_COMM_LEN - 1] = '\0';

    uint8_t *lead = tid == tgid ? im->task : im->leader;
    fill_task(im->task, L, tid, tgid, &self, comm);
    put32(im->task, L->exit_code, (uint32_t)t_exit_code);
    if (lead != im->task)
        fill_task(im->leader, L, tgid, tgid, &leader, leader.comm);
    fill_task(im->parent, L, (uint32_t)ppid, (uint32_t)ppid, &parent, parent.comm);
    put_ptr(im->parent, L->group_leader, im->parent);
    for (uint8_t *t = im->task; t; t = t == lead ? NULL : lead) {
        put_ptr(t, L->real_parent, im->parent);
        put_ptr(t, L->parent, im->parent);
        put_ptr(t, L->group_leader, lead);
        put_ptr(t, L->cred, im->cred);
        put_ptr(t, L->real_cred, im->cred);
        put_ptr(t, L->nsproxy, im->nsproxy);
    }

    memset(im->cred, 0, sizeof(im->cred));
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0) {
        put32(im->cred, L->uid, ru);
        put32(im->cred, L->euid, eu);
        put32(im->cred, L->suid, su);
        put32(im->cred, L->fsuid, eu);       /* fsuid follows euid unless setfsuid */
        put32(im->cred, L->gid, rg);
        put32(im->cred, L->egid, eg);
        put32(im->cred, L->sgid, sg);
        put32(im->cred, L->fsgid, eg);
    }
    memset(im->nsproxy, 0, sizeof(im->nsproxy));
    for (int i = 0; i < GTASK_NS_N; i++) {
        memset(im->ns[i], 0, sizeof(im->ns[i]));
        uint32_t inum = L->ns_inum[i] >= 0 ? ns_inum(ns_files[i]) : 0;
        if (!inum)
            continue;
        put32(im->ns[i], L->ns_inum[i], inum);
        put_ptr(im->nsproxy, L->ns_ptr[i], im->ns[i]);
    }
    im->tid = tid;
}

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const void *ghelper_task_image(void)
{
    struct task_images *im = t_img;
    if (__builtin_expect(!im, 0)) {
        pthread_once(&g_once, init_once);
        void *p = mmap(NULL, sizeof(*im), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        im = t_img = p;
        pthread_setspecific(g_key, p);
    }
    uint64_t now = coarse_ns();
    if (im->refreshed_at == 0 || now - im->refreshed_at >= REFRESH_NS || im->tid != gh_tid()) {
        refresh(im, gtask_layout());
        im->refreshed_at = now ? now : 1;
    }
    return im->task;
}

/* The thread is exiting with this task->exit_code (the kernel's: status
 * << 8 for exit/exit_group): what sched_process_exit programs read. */
void ghelper_task_set_exit_code(int32_t code)
{
    t_exit_code = code;
    if (t_img)
        put32(t_img->task, gtask_layout()->exit_code, (uint32_t)code);
}

/* [src, src + size) lies inside this thread's images: the only "kernel
 * memory" bpf_probe_read_kernel[_str] may read (h_mem.c). */
int ghelper_task_image_holds(const void *src, uint64_t size)
{
    const struct task_images *im = t_img;
    if (!im)
        return 0;
    uintptr_t lo = (uintptr_t)im->task, hi = (uintptr_t)(im->ns + GTASK_NS_N), a = (uintptr_t)src;
    return a >= lo && a <= hi && size <= hi - a;
}

GH_FN(get_current_task)
{
    return (uint64_t)(uintptr_t)ghelper_task_image();
}

/* The verifier types r0 as non-NULL read-only memory: when the images cannot
 * be allocated (out of memory) a zeroed static image stands in. */
GH_FN(get_current_task_btf)
{
    static const uint8_t empty[GTASK_IMAGE_MAX];
    const void *p = ghelper_task_image();
    return (uint64_t)(uintptr_t)(p ? p : empty);
}
