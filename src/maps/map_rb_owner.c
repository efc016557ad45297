/*
 * map_rb_owner.c - who holds a ring buffer reservation, and whether it is
 * still alive (see map_ringbuf.c for why).
 *
 * A producer is a process, named by what outlives it in a checkable way:
 * its pid, its pid namespace (pids of another namespace name other
 * processes here) and its start time from /proc/<pid>/stat (a reused pid
 * has a later one). This process's identity is read once, and again in a
 * forked child (pthread_atfork), never on the reserve path after that.
 *
 * "Dead" must be proven: no such pid, a different start time, or a zombie
 * with no thread left. A producer in another pid namespace, or one whose
 * /proc entry cannot be read while the pid exists, counts as alive:
 * discarding a live producer's record would let its later submit corrupt
 * space already reused.
 */
#define _GNU_SOURCE
#include "maps/maps_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct rb_owner g_me;
static uint32_t g_me_gen;              /* == g_fork_gen when g_me is this process */
static uint32_t g_fork_gen = 1;
static pthread_mutex_t g_me_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    pthread_mutex_init(&g_me_lock, NULL);   /* another thread may have held it */
    __atomic_add_fetch(&g_fork_gen, 1, __ATOMIC_RELEASE);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

/* Fields of /proc/<pid>/stat: state (3), num_threads (20), starttime (22).
 * Plain system calls into a stack buffer: this may run inside a hooked
 * function, where neither malloc nor stdio is welcome. */
static int proc_stat(int32_t pid, char *state, long *threads, uint64_t *start)
{
    char path[48], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n <= 0)
        return n < 0 ? -e : -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may hold anything */
    if (!p || p[1] != ' ')
        return -EIO;
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        if (field == 20)
            *threads = strtol(p, NULL, 10);
        p = strchr(p, ' ');
        if (!p)
            return -EIO;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

static uint64_t pidns_of(const char *proc_dir)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "%s/ns/pid", proc_dir);
    return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static const struct rb_owner *me(void)
{
    uint32_t gen = __atomic_load_n(&g_fork_gen, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&g_me_gen, __ATOMIC_ACQUIRE) == gen)
        return &g_me;
    pthread_once(&g_atfork_once, register_atfork);
    pthread_mutex_lock(&g_me_lock);
    if (g_me_gen != gen) {
        struct rb_owner o = { .pid = (int32_t)getpid(), .pidns = pidns_of("/proc/self") };
        char state;
        long threads;
        if (proc_stat(o.pid, &state, &threads, &o.start) < 0)
            o.start = 0;
        g_me = o;
        __atomic_store_n(&g_me_gen, gen, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&g_me_lock);
    return &g_me;
}

uint32_t rb_owner_claim(struct gmap *m)
{
    const struct rb_owner *self = me();
    struct rb_owners *t = rb_owners(m);
    uint32_t home = (uint32_t)self->pid % RB_OWNERS, free_i = 0;
    for (uint32_t k = 0; k < RB_OWNERS; k++) {
        uint32_t i = (home + k) % RB_OWNERS;
        const struct rb_owner *o = &t->e[i];
        if (o->pid == self->pid && o->start == self->start && o->pidns == self->pidns)
            return i + 1;
        if (!o->pid && !free_i)
            free_i = i + 1;
    }
    if (free_i) {
        struct rb_owner *o = &t->e[free_i - 1];
        o->pidns = self->pidns;
        o->start = self->start;
        __atomic_store_n(&o->pid, self->pid, __ATOMIC_RELEASE);
    }
    return free_i;
}

int rb_owner_dead(struct gmap *m, uint32_t i)
{
    if (i < 1 || i > RB_OWNERS)
        return 0;
    const struct rb_owner *self = me(), *o = &rb_owners(m)->e[i - 1];
    struct rb_owner who = *o;
    if (who.pid <= 0 || !self->pidns || who.pidns != self->pidns)
        return 0;
    if (kill(who.pid, 0) < 0 && errno == ESRCH)
        return 1;
    char state;
    long threads = 0;
    uint64_t start;
    int r = proc_stat(who.pid, &state, &threads, &start);
    if (r == -ENOENT && self->start)      /* gone since kill(); /proc works here */
        return 1;
    if (r < 0)
        return 0;
    if (who.start && self->start && start != who.start)
        return 1;                         /* the pid names a newer process */
    return (state == 'Z' || state == 'X') && threads <= 1;   /* killed, not reaped */
}

void rb_owner_free(struct gmap *m, uint32_t i)
{
    if (i >= 1 && i <= RB_OWNERS)
        __atomic_store_n(&rb_owners(m)->e[i - 1].pid, 0, __ATOMIC_RELEASE);
}
