/*
 * test_helpers_task.c - the registry (numbers, names, prototypes, table) and
 * the helpers about the current thread and probe: clocks, ids across
 * threads and fork, comm, prandom, override_return, func_ip/cookie,
 * get_func_arg/ret/arg_cnt from the run state's registers, get_stack over a
 * frame-pointer chain (including a corrupt one), and bpf_loop through a
 * callback invoker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "maps/maps.h"
#include "th.h"

static void test_registry(void)
{
    static const struct { const char *name; uint32_t id; } known[] = {
        { "map_lookup_elem", 1 }, { "map_update_elem", 2 }, { "map_delete_elem", 3 },
        { "probe_read", 4 }, { "ktime_get_ns", 5 }, { "trace_printk", 6 },
        { "get_prandom_u32", 7 }, { "get_smp_processor_id", 8 }, { "tail_call", 12 },
        { "get_current_pid_tgid", 14 }, { "get_current_uid_gid", 15 },
        { "get_current_comm", 16 }, { "perf_event_output", 25 }, { "get_stackid", 27 },
        { "probe_write_user", 36 }, { "probe_read_str", 45 }, { "override_return", 58 },
        { "get_stack", 67 }, { "map_push_elem", 87 }, { "map_pop_elem", 88 },
        { "map_peek_elem", 89 }, { "spin_lock", 93 }, { "spin_unlock", 94 },
        { "probe_read_user", 112 }, { "probe_read_kernel", 113 },
        { "probe_read_user_str", 114 }, { "probe_read_kernel_str", 115 },
        { "ktime_get_boot_ns", 125 }, { "ringbuf_output", 130 },
        { "ringbuf_reserve", 131 }, { "ringbuf_submit", 132 },
        { "ringbuf_discard", 133 }, { "ringbuf_query", 134 },
        { "ktime_get_coarse_ns", 160 }, { "for_each_map_elem", 164 },
        { "snprintf", 165 }, { "get_func_ip", 173 }, { "get_attach_cookie", 174 },
        { "loop", 181 }, { "strncmp", 182 }, { "get_func_arg", 183 },
        { "get_func_ret", 184 }, { "get_func_arg_cnt", 185 },
        { "send_signal", 109 }, { "send_signal_thread", 117 },
        { "current_task_under_cgroup", 37 },
        { "get_current_task", 35 }, { "get_current_task_btf", 158 },
    };
    const gvm_helper_fn *table = ghelper_table();
    int count = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const struct ghelper_proto *p = ghelper_by_name(known[i].name);
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK_EQ(p->id, known[i].id);
        CHECK(ghelper_proto(known[i].id) == p);
        CHECK(table[p->id] == p->fn && p->fn != NULL);
    }
    for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++)
        if (table[id]) {
            count++;
            CHECK(ghelper_proto(id) && ghelper_proto(id)->id == id);
        }
    CHECK_EQ(count, (int)(sizeof(known) / sizeof(known[0])));
    CHECK(ghelper_by_name("bpf_ktime_get_ns") == ghelper_proto(5));
    CHECK(ghelper_by_name("no_such_helper") == NULL);
    CHECK(ghelper_proto(0) == NULL && ghelper_proto(9999) == NULL);

    /* Spot-check prototypes the verifier relies on. */
    CHECK(ghelper_proto(35)->ret == GRET_INTEGER && ghelper_proto(158)->ret == GRET_TASK_IMAGE);
    const struct ghelper_proto *p = ghelper_proto(1);
    CHECK(p->ret == GRET_MAP_VALUE_OR_NULL && p->args[0] == GARG_CONST_MAP_PTR &&
          p->args[1] == GARG_PTR_TO_MAP_KEY && p->args[2] == GARG_NONE);
    p = ghelper_proto(131);
    CHECK(p->ret == GRET_ALLOC_MEM_OR_NULL && p->args[1] == GARG_CONST_ALLOC_SIZE &&
          (p->flags & GHELPER_F_ACQUIRE));
    p = ghelper_proto(132);
    CHECK(p->ret == GRET_VOID && p->args[0] == GARG_PTR_TO_ALLOC_MEM &&
          (p->flags & GHELPER_F_RELEASE));
    p = ghelper_proto(4);
    CHECK(p->args[0] == GARG_PTR_TO_UNINIT_MEM && p->args[1] == GARG_CONST_SIZE_OR_ZERO &&
          p->args[2] == GARG_ANYTHING);
    p = ghelper_proto(181);
    CHECK(p->args[1] == GARG_PTR_TO_FUNC && p->args[2] == GARG_PTR_TO_STACK_OR_NULL);
    p = ghelper_proto(165);
    CHECK(p->args[2] == GARG_PTR_TO_CONST_STR && p->args[3] == GARG_PTR_TO_MEM_OR_NULL);
    CHECK(ghelper_proto(88)->args[1] == GARG_PTR_TO_UNINIT_MAP_VALUE);
    CHECK(ghelper_proto(12)->flags & GHELPER_F_NORETURN_OK);
    /* Every sized pointer is followed by a size. */
    for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++) {
        const struct ghelper_proto *q = ghelper_proto(id);
        for (int a = 0; q && a < 4; a++)
            if (q->args[a] == GARG_PTR_TO_MEM || q->args[a] == GARG_PTR_TO_UNINIT_MEM ||
                q->args[a] == GARG_PTR_TO_MEM_OR_NULL)
                CHECK(q->args[a + 1] == GARG_CONST_SIZE || q->args[a + 1] == GARG_CONST_SIZE_OR_ZERO);
    }
}

static uint64_t ns_of(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_time_cpu_random(void)
{
    uint64_t before = ns_of(CLOCK_MONOTONIC);
    uint64_t t1 = H0("ktime_get_ns"), t2 = H0("ktime_get_ns");
    /* from the TSC, ktime may trail clock_gettime a little (test_helpers_time) */
    CHECK(t1 + 50000 >= before && t2 >= t1 && t2 - before < 1000000000ull);
    uint64_t b = H0("ktime_get_boot_ns");
    CHECK(b >= t1);                           /* boottime includes suspend */
    uint64_t c = H0("ktime_get_coarse_ns");
    CHECK(c + 100000000ull > t1 && c <= ns_of(CLOCK_MONOTONIC));
    CHECK_EQ(H0("get_smp_processor_id"), sched_getcpu());

    uint64_t seen_or = 0, seen_and = ~0ull, prev = H0("get_prandom_u32");
    int repeats = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t r = H0("get_prandom_u32");
        CHECK(r <= 0xffffffffull);
        seen_or |= r;
        seen_and &= r;
        repeats += r == prev;
        prev = r;
    }
    CHECK(seen_or == 0xffffffffull && seen_and == 0 && repeats < 3);
}

static void *ids_thread(void *p)
{
    uint64_t *out = p;
    out[0] = H0("get_current_pid_tgid");
    out[1] = (uint64_t)syscall(SYS_gettid);
    return NULL;
}

static void test_ids(void)
{
    uint64_t v = H0("get_current_pid_tgid");
    CHECK_EQ(v >> 32, getpid());
    CHECK_EQ((uint32_t)v, syscall(SYS_gettid));
    uint64_t ug = H0("get_current_uid_gid");
    CHECK_EQ((uint32_t)ug, getuid());
    CHECK_EQ(ug >> 32, getgid());

    uint64_t t[2];
    pthread_t th;
    pthread_create(&th, NULL, ids_thread, t);
    pthread_join(th, NULL);
    CHECK_EQ(t[0] >> 32, getpid());
    CHECK_EQ((uint32_t)t[0], t[1]);
    CHECK((uint32_t)t[0] != (uint32_t)v);

    /* After fork the child sees its own ids, not the cached parent's. */
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t cv = H0("get_current_pid_tgid");
        uint64_t ok = (cv >> 32) == (uint64_t)getpid() &&
                      (uint32_t)cv == (uint32_t)syscall(SYS_gettid);
        ssize_t w = write(pipefd[1], &ok, sizeof(ok));
        _exit(w == sizeof(ok) ? 0 : 1);
    }
    uint64_t ok = 0;
    CHECK(read(pipefd[0], &ok, sizeof(ok)) == sizeof(ok) && ok == 1);
    waitpid(pid, NULL, 0);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_comm(void)
{
    char buf[16], small[4];
    prctl(PR_SET_NAME, "graft-comm-1", 0, 0, 0);
    usleep(150 * 1000);                      /* past the cache refresh */
    memset(buf, 'x', sizeof(buf));
    CHECK_EQ((int64_t)H("get_current_comm", buf, sizeof(buf)), 0);
    CHECK_STR(buf, "graft-comm-1");
    CHECK(buf[15] == 0 && buf[13] == 0);      /* tail zero-padded */
    CHECK_EQ((int64_t)H("get_current_comm", small, sizeof(small)), 0);
    CHECK_STR(small, "gra");
    CHECK_EQ((int64_t)H("get_current_comm", small, 0), -EINVAL);
    /* A rename is seen once the cache refreshes. */
    prctl(PR_SET_NAME, "renamed", 0, 0, 0);
    usleep(150 * 1000);
    H("get_current_comm", buf, sizeof(buf));
    CHECK_STR(buf, "renamed");
}

static void test_run_state(void)
{
    struct ghelper_run *run = ghelper_run_state();
    struct graft_pt_regs regs;
    uint64_t v = 77;

    memset(run, 0, sizeof(*run));
    memset(&regs, 0, sizeof(regs));
    CHECK(ghelper_run_state() == run);

    CHECK_EQ((int64_t)H("override_return", &regs, (uint64_t)-EPERM), 0);
    CHECK(run->override_set == 1 && run->override_value == (uint64_t)-EPERM);

    run->func_ip = 0x401000;
    run->cookie = 0xc00c1e;
    CHECK_EQ(H("get_func_ip", &regs), 0x401000);
    CHECK_EQ(H("get_attach_cookie", &regs), 0xc00c1e);

    /* No registers: the func helpers fail cleanly. */
    CHECK_EQ((int64_t)H("get_func_arg", &regs, 0, &v), -EINVAL);
    CHECK_EQ(v, 0);
    v = 77;
    CHECK_EQ((int64_t)H("get_func_ret", &regs, &v), -EOPNOTSUPP);
    CHECK_EQ(v, 0);

    regs.di = 11; regs.si = 22; regs.dx = 33; regs.cx = 44; regs.r8 = 55; regs.r9 = 66;
    regs.ax = 0xabc;
    run->regs = &regs;
    uint64_t want[6] = { 11, 22, 33, 44, 55, 66 };
    for (int n = 0; n < 6; n++) {
        CHECK_EQ((int64_t)H("get_func_arg", &regs, n, &v), 0);
        CHECK_EQ(v, want[n]);
    }
    CHECK_EQ((int64_t)H("get_func_arg", &regs, 6, &v), -EINVAL);
    CHECK_EQ(H("get_func_arg_cnt", &regs), 6);
    run->func_nargs = 2;
    CHECK_EQ(H("get_func_arg_cnt", &regs), 2);
    CHECK_EQ((int64_t)H("get_func_arg", &regs, 1, &v), 0);
    CHECK_EQ(v, 22);
    CHECK_EQ((int64_t)H("get_func_arg", &regs, 2, &v), -EINVAL);
    CHECK_EQ((int64_t)H("get_func_ret", &regs, &v), -EOPNOTSUPP);
    run->at_return = 1;
    CHECK_EQ((int64_t)H("get_func_ret", &regs, &v), 0);
    CHECK_EQ(v, 0xabc);
    memset(run, 0, sizeof(*run));
}

static void test_get_stack(void)
{
    struct ghelper_run *run = ghelper_run_state();
    struct graft_pt_regs regs;
    uint64_t frames[8][2];                    /* fake chain of {saved rbp, ret} */
    uint64_t buf[8];
    const uint64_t user = 1ull << 8;

    memset(&regs, 0, sizeof(regs));
    memset(run, 0, sizeof(*run));
    for (int i = 0; i < 3; i++) {
        frames[i][0] = (uint64_t)(uintptr_t)frames[i + 1];
        frames[i][1] = 0x1000 + (uint64_t)i;
    }
    frames[3][0] = 0;
    frames[3][1] = 0x1003;
    regs.ip = 0x999;
    regs.bp = (uint64_t)(uintptr_t)frames[0];

    /* No registers, kernel stack, bad size, build ids: errors, zeroed. */
    memset(buf, 0xee, sizeof(buf));
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user), -EFAULT);
    CHECK(buf[0] == 0 && buf[7] == 0);
    run->regs = &regs;
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), 0), -EFAULT);
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, 12, user), -EINVAL);
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user | (1ull << 11)), -EINVAL);
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user | (1ull << 20)), -EINVAL);

    memset(buf, 0xee, sizeof(buf));
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user), 5 * 8);
    CHECK(buf[0] == 0x999 && buf[1] == 0x1000 && buf[2] == 0x1001 &&
          buf[3] == 0x1002 && buf[4] == 0x1003 && buf[5] == 0 && buf[7] == 0);
    /* Skip the first two entries; a short buffer stops early. */
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user | 2), 3 * 8);
    CHECK(buf[0] == 0x1001 && buf[2] == 0x1003 && buf[3] == 0);
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, 16, user), 16);
    CHECK(buf[0] == 0x999 && buf[1] == 0x1000);

    /* A chain into unmapped memory or looping downwards ends safely. */
    long page = sysconf(_SC_PAGESIZE);
    void *gone = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    frames[1][0] = (uint64_t)(uintptr_t)gone;
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user), 3 * 8);
    frames[1][0] = (uint64_t)(uintptr_t)frames[0];   /* a cycle */
    CHECK_EQ((int64_t)H("get_stack", &regs, buf, sizeof(buf), user), 3 * 8);
    munmap(gone, page);

    /* The real stack of this test (built with frame pointers or not) must
     * simply not crash and start at ip. */
    regs.ip = (uint64_t)(uintptr_t)test_get_stack;
    regs.bp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
    CHECK((int64_t)H("get_stack", &regs, buf, sizeof(buf), user) >= 8);
    CHECK(buf[0] == regs.ip);
    memset(run, 0, sizeof(*run));
}

/* bpf_loop and the callback invoker: callbacks here are C functions. */
static uint64_t c_invoker(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3,
                          uint64_t a4, uint64_t a5)
{
    return ((gvm_helper_fn)(uintptr_t)fn)(a1, a2, a3, a4, a5);
}

static uint64_t sum_until(uint64_t i, uint64_t ctx, uint64_t a3, uint64_t a4, uint64_t a5)
{
    uint64_t *acc = (uint64_t *)(uintptr_t)ctx;
    acc[0] += i;
    return i + 1 == acc[1];                   /* stop after acc[1] calls */
}

static void test_loop(void)
{
    uint64_t acc[2] = { 0, 0 };
    gvm_helper_fn cb = sum_until;
    CHECK_EQ((int64_t)H("loop", 10, cb, acc, 0), -EOPNOTSUPP);   /* no invoker */
    ghelper_set_callback_invoker(c_invoker);
    CHECK_EQ((int64_t)H("loop", 10, cb, acc, 0), 10);
    CHECK_EQ(acc[0], 45);
    acc[0] = 0;
    acc[1] = 4;
    CHECK_EQ((int64_t)H("loop", 10, cb, acc, 0), 4);
    CHECK_EQ(acc[0], 0 + 1 + 2 + 3);
    CHECK_EQ((int64_t)H("loop", 0, cb, acc, 0), 0);
    CHECK_EQ((int64_t)H("loop", 10, cb, acc, 1), -EINVAL);
    CHECK_EQ((int64_t)H("loop", (1u << 23) + 1, cb, acc, 0), -E2BIG);
    ghelper_set_callback_invoker(NULL);
}

/* send_signal reaches the process, send_signal_thread this very thread
 * (a second thread blocks the signal, so only the caller can take it). */
static volatile sig_atomic_t g_sig_hits;
static volatile pid_t g_sig_tid;
static void on_usr1(int sig)
{
    (void)sig;
    g_sig_hits++;
    g_sig_tid = (pid_t)syscall(SYS_gettid);
}

static void test_send_signal(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    pid_t me = (pid_t)syscall(SYS_gettid);
    g_sig_hits = 0;
    CHECK_EQ((int64_t)H("send_signal_thread", SIGUSR1), 0);
    CHECK_EQ((int)g_sig_hits, 1);          /* delivered before the syscall returned */
    CHECK_EQ((int)g_sig_tid, (int)me);
    CHECK_EQ((int64_t)H("send_signal", SIGUSR1), 0);
    CHECK_EQ((int)g_sig_hits, 2);          /* this thread is the only one to take it */
    CHECK_EQ((int64_t)H("send_signal", 0), -EINVAL);
    CHECK_EQ((int64_t)H("send_signal_thread", 65), -EINVAL);
    CHECK_EQ((int64_t)H("send_signal", (uint64_t)1 << 32 | SIGUSR1), 0);   /* u32 argument */
    CHECK_EQ((int)g_sig_hits, 3);
    sigaction(SIGUSR1, &old, NULL);
}

/* get_stackid: the same walk as get_stack, stored in a stack trace map
 * (a graft array) at the stack's id; the same stack, the same id. */
static void test_get_stackid(void)
{
    struct ghelper_run *run = ghelper_run_state();
    struct graft_pt_regs regs;
    uint64_t frames[4][2];
    const uint64_t user = 1ull << 8, reuse = 1ull << 10;
    memset(&regs, 0, sizeof(regs));
    memset(run, 0, sizeof(*run));
    for (int i = 0; i < 3; i++) {
        frames[i][0] = (uint64_t)(uintptr_t)frames[i + 1];
        frames[i][1] = 0x2000 + (uint64_t)i;
    }
    frames[3][0] = 0;
    frames[3][1] = 0;
    regs.ip = 0x777;
    regs.bp = (uint64_t)(uintptr_t)frames[0];
    run->regs = &regs;
    struct gmap_def d = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 8 * 8, .max_entries = 1,
                          .name = "stacks" };
    struct gmap *m = NULL;
    struct graft_err err = {0};
    CHECK(gmap_create(&d, -1, &m, &err) == 0);
    if (!m)
        return;
    gmap_unlink(gmap_shm_name(m));
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, 0), -EFAULT);              /* no kernel stack */
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user | (1ull << 20)), -EINVAL);
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user), 0);
    uint32_t id = 0;
    uint64_t v[8];
    CHECK(gmap_lookup_copy(m, &id, v) == 0);
    CHECK(v[0] == 0x777 && v[1] == 0x2000 && v[2] == 0x2001 && v[3] == 0x2002 && v[4] == 0 && v[7] == 0);
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user), 0);                 /* same stack, same id */
    regs.ip = 0x778;                                                        /* another, same slot */
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user), -EEXIST);
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user | reuse), 0);
    CHECK(gmap_lookup_copy(m, &id, v) == 0 && v[0] == 0x778);
    /* skipping a frame is another stack: in the one slot, refused */
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user | 1), -EEXIST);
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user | 1 | reuse), 0);
    CHECK(gmap_lookup_copy(m, &id, v) == 0 && v[0] == 0x2000 && v[3] == 0);
    run->regs = NULL;                                                       /* no registers: no stack */
    CHECK_EQ((int64_t)H("get_stackid", &regs, m, user), -EFAULT);
    run->regs = &regs;
    gmap_close(m);
    /* a read-only map (maybe a constant to the verifier) is never written */
    d.map_flags = GMAP_F_RDONLY_PROG;
    CHECK(gmap_create(&d, -1, &m, &err) == 0);
    if (m) {
        gmap_unlink(gmap_shm_name(m));
        CHECK_EQ((int64_t)H("get_stackid", &regs, m, user), -EINVAL);
        gmap_close(m);
    }
    memset(run, 0, sizeof(*run));
}

static void test_misc(void)
{
    CHECK_EQ((int64_t)H("tail_call", NULL, NULL, 0), -EINVAL);
    CHECK_EQ((int64_t)H("get_stackid", NULL, NULL, 0), -EINVAL);
}

int main(void)
{
    test_registry();
    test_time_cpu_random();
    test_ids();
    test_comm();
    test_run_state();
    test_get_stack();
    test_loop();
    test_send_signal();
    test_get_stackid();
    test_misc();
    TH_DONE();
}
