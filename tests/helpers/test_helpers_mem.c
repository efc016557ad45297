/*
 * test_helpers_mem.c - the probe_read family and probe_write_user: correct
 * copies, -EFAULT with a zeroed destination on NULL, unmapped, guard-page,
 * munmap'ed and non-canonical addresses, string truncation like the kernel,
 * concurrent faulting threads, and that faults outside the helpers still
 * reach the host's own SIGSEGV handler (before and after the host replaces
 * ours).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "th.h"
#include "util/task_layout.h"

static long page;

/* A readable page followed by a PROT_NONE guard page. */
static char *guarded_page(void)
{
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    mprotect(p + page, page, PROT_NONE);
    return p;
}

static int all_zero(const void *buf, size_t n)
{
    const unsigned char *b = buf;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static void test_probe_read_ok(void)
{
    char src[64], dst[64];
    for (int i = 0; i < 64; i++)
        src[i] = (char)(i * 7 + 1);
    const char *names[] = { "probe_read_user", "probe_read" };
    for (int k = 0; k < 2; k++) {
        const char *h = names[k];
        memset(dst, 0, sizeof(dst));
        CHECK_EQ((int64_t)H(h, dst, 64, src), 0);
        CHECK(memcmp(dst, src, 64) == 0);
    }
    /* size 0 touches nothing, even with a bad source. */
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_user", dst, 0, (void *)8), 0);
    CHECK(dst[0] == 'x');
}

static void test_probe_read_faults(void)
{
    char dst[32];
    char *g = guarded_page();

    /* NULL and the zero page. */
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_user", dst, 32, NULL), -EFAULT);
    CHECK(all_zero(dst, 32));
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read", dst, 8, (void *)0x10), -EFAULT);
    CHECK(all_zero(dst, 8));

    /* Entirely inside the guard page. */
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_user", dst, 16, g + page + 100), -EFAULT);
    CHECK(all_zero(dst, 16));

    /* Crossing from the readable page into the guard page: the readable
     * prefix must not leak into dst either. */
    memset(g + page - 16, 'A', 16);
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_user", dst, 32, g + page - 16), -EFAULT);
    CHECK(all_zero(dst, 32));
    /* ... while the readable part alone works. */
    CHECK_EQ((int64_t)H("probe_read_user", dst, 16, g + page - 16), 0);
    CHECK(dst[0] == 'A' && dst[15] == 'A');

    /* A region unmapped after use. */
    char *u = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    u[0] = 'q';
    CHECK_EQ((int64_t)H("probe_read_user", dst, 1, u), 0);
    CHECK(dst[0] == 'q');
    munmap(u, page);
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_user", dst, 8, u), -EFAULT);
    CHECK(all_zero(dst, 8));

    /* Non-canonical and wrapping addresses. */
    CHECK_EQ((int64_t)H("probe_read_user", dst, 8, (void *)0x8000000000001000ull), -EFAULT);
    CHECK_EQ((int64_t)H("probe_read_user", dst, 16, (void *)(uintptr_t)-8), -EFAULT);

    /* Kernel memory does not exist here: always -EFAULT, buffer zeroed. */
    char kbuf[8] = "abcdefg";
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_kernel", dst, 8, kbuf), -EFAULT);
    CHECK(all_zero(dst, 8));
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_kernel_str", dst, 8, kbuf), -EFAULT);
    CHECK(all_zero(dst, 8));

    munmap(g, 2 * page);
}

/* The task images are the only kernel memory: probe_read_kernel[_str] read
 * inside them (BPF_CORE_READ on bpf_get_current_task), nowhere else. */
static void test_probe_read_kernel_images(void)
{
    const gvm_helper_fn *t = ghelper_table();
    const struct gtask_layout *L = gtask_layout();
    const char *task = (const char *)(uintptr_t)t[35](0, 0, 0, 0, 0);
    CHECK(task != NULL);
    if (!task)
        return;
    uint32_t tgid = 0;
    CHECK_EQ((int64_t)H("probe_read_kernel", &tgid, 4, task + L->tgid), 0);
    CHECK_EQ((int64_t)tgid, (int64_t)getpid());
    const char *parent = NULL;
    CHECK_EQ((int64_t)H("probe_read_kernel", &parent, 8, task + L->real_parent), 0);
    uint32_t ppid = 0;
    CHECK_EQ((int64_t)H("probe_read_kernel", &ppid, 4, parent + L->tgid), 0);
    CHECK_EQ((int64_t)ppid, (int64_t)getppid());
    char comm[16], want[16] = "";
    CHECK(H("probe_read_kernel_str", comm, sizeof(comm), task + L->comm) > 0);
    H("get_current_comm", want, sizeof(want), 0);
    CHECK(strcmp(comm, want) == 0);
    /* past the images, before them, a NULL pointer field, host memory */
    char dst[8];
    memset(dst, 'x', sizeof(dst));
    CHECK_EQ((int64_t)H("probe_read_kernel", dst, 8, task - 4), -EFAULT);
    CHECK(all_zero(dst, 8));
    CHECK_EQ((int64_t)H("probe_read_kernel", dst, 8, NULL), -EFAULT);
    static const char host[8] = "secret";
    CHECK_EQ((int64_t)H("probe_read_kernel", dst, 8, host), -EFAULT);
    CHECK_EQ((int64_t)H("probe_read_kernel_str", dst, 8, host), -EFAULT);
    CHECK(all_zero(dst, 8));
    /* a read that starts inside and runs past the end is refused whole */
    const char *last = task;
    while (ghelper_proto(113) && H("probe_read_kernel", dst, 1, last + 4096) == 0)
        last += 4096;
    CHECK(last > task);
    CHECK_EQ((int64_t)H("probe_read_kernel", dst, 8, last + 4095), -EFAULT);
}

static void test_probe_read_str(void)
{
    char dst[8];
    const char *names[] = { "probe_read_str", "probe_read_user_str" };
    for (int k = 0; k < 2; k++) {
        const char *h = names[k];
        /* Fits: length including the NUL. */
        memset(dst, 'x', sizeof(dst));
        CHECK_EQ((int64_t)H(h, dst, 8, "abc"), 4);
        CHECK_STR(dst, "abc");
        /* Exactly fills the buffer. */
        CHECK_EQ((int64_t)H(h, dst, 8, "abcdefg"), 8);
        CHECK_STR(dst, "abcdefg");
        /* Truncated: size-1 characters and a NUL, returns size. */
        memset(dst, 'x', sizeof(dst));
        CHECK_EQ((int64_t)H(h, dst, 8, "abcdefghijkl"), 8);
        CHECK_STR(dst, "abcdefg");
        CHECK_EQ((int64_t)H(h, dst, 1, "abc"), 1);
        CHECK(dst[0] == '\0');
        /* Empty string and size 0. */
        CHECK_EQ((int64_t)H(h, dst, 8, ""), 1);
        memset(dst, 'x', sizeof(dst));
        CHECK_EQ((int64_t)H(h, dst, 0, "abc"), 0);
        CHECK(dst[0] == 'x');
        /* Faults: NULL, and a string running into a guard page. */
        CHECK_EQ((int64_t)H(h, dst, 8, NULL), -EFAULT);
        CHECK(all_zero(dst, 8));
        char *g = guarded_page();
        memset(g + page - 3, 'z', 3);          /* no NUL before the guard */
        memset(dst, 'x', sizeof(dst));
        CHECK_EQ((int64_t)H(h, dst, 8, g + page - 3), -EFAULT);
        CHECK(all_zero(dst, 8));
        /* ... but a NUL right before the guard is fine. */
        g[page - 1] = '\0';
        CHECK_EQ((int64_t)H(h, dst, 8, g + page - 3), 3);
        CHECK_STR(dst, "zz");
        /* ... and so is stopping by size before the guard. */
        memset(g + page - 3, 'z', 3);
        CHECK_EQ((int64_t)H(h, dst, 3, g + page - 3), 3);
        CHECK_STR(dst, "zz");
        munmap(g, 2 * page);
    }
}

static void test_probe_write_user(void)
{
    char target[16] = "..............";
    CHECK_EQ((int64_t)H("probe_write_user", target + 2, "hey", 3), 0);
    CHECK(memcmp(target, "..hey...", 8) == 0);

    char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_EQ((int64_t)H("probe_write_user", ro, "hey", 3), -EFAULT);
    CHECK(ro[0] == 0);
    CHECK_EQ((int64_t)H("probe_write_user", NULL, "hey", 3), -EFAULT);
    munmap(ro, page);
    CHECK_EQ((int64_t)H("probe_write_user", ro, "hey", 3), -EFAULT);
}

/* Several threads mixing good and faulting reads. */
struct thr_arg { char *good; char *bad; int errors; };

static void *reader_thread(void *p)
{
    struct thr_arg *a = p;
    char dst[64];
    for (int i = 0; i < 2000; i++) {
        int64_t rc = (int64_t)H("probe_read_user", dst, 64, a->good);
        if (rc != 0 || dst[0] != 'G' || dst[63] != 'G')
            a->errors++;
        rc = (int64_t)H("probe_read_user", dst, 64, a->bad + (i % 64));
        if (rc != -EFAULT || !all_zero(dst, 64))
            a->errors++;
        rc = (int64_t)H("probe_read_user_str", dst, 64, a->bad - 5);
        if (rc != -EFAULT)
            a->errors++;
    }
    return NULL;
}

static void test_threads(void)
{
    char *g = guarded_page();
    memset(g, 'G', page);
    pthread_t t[4];
    struct thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thr_arg){ g, g + page, 0 };
        pthread_create(&t[i], NULL, reader_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ(args[i].errors, 0);
    }
    munmap(g, 2 * page);
}

/* The host's own handler must still see faults that are not ours. */
static sigjmp_buf host_jmp;
static volatile sig_atomic_t host_faults;

static void host_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    host_faults++;
    siglongjmp(host_jmp, 1);
}

static void install_host_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = host_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

static void host_fault(char *where)
{
    if (sigsetjmp(host_jmp, 1) == 0) {
        *(volatile char *)where = 1;
        CHECK(!"the write to the guard page did not fault");
    }
}

static void test_chaining(void)
{
    char *g = guarded_page();
    char dst[8];

    /* 1. Host handler first, graft's installed on top on first use. */
    int before = host_faults;
    host_fault(g + page);
    CHECK_EQ(host_faults, before + 1);
    CHECK_EQ((int64_t)H("probe_read_user", dst, 8, g + page), -EFAULT);
    CHECK_EQ(host_faults, before + 1);         /* ours, not the host's */
    host_fault(g + page);                      /* chained to the host */
    CHECK_EQ(host_faults, before + 2);

    /* 2. The host replaces our handler; re-installing puts graft back on
     * top and still chains to the host. */
    install_host_handler();
    CHECK_EQ(ghelper_safe_mem_init(NULL), 0);
    CHECK_EQ((int64_t)H("probe_read_user", dst, 8, g + page), -EFAULT);
    CHECK_EQ(host_faults, before + 2);
    host_fault(g + page);
    CHECK_EQ(host_faults, before + 3);
    munmap(g, 2 * page);
}

/* With no host handler, a real crash must still kill the process with
 * SIGSEGV after graft's handler has been installed. */
static void test_default_action_kept(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGSEGV, SIG_DFL);
        if (ghelper_safe_mem_init(NULL) != 0)      /* installs over SIG_DFL */
            _exit(2);
        char dst[8];
        char *g = guarded_page();
        if ((int64_t)H("probe_read_user", dst, 8, g + page) != -EFAULT)
            _exit(3);
        *(volatile char *)(g + page) = 1;
        _exit(4);                                   /* not reached */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    /* Under ASan its own SEGV handler is already installed; the host one
     * goes on top of it, as an application's would. */
    install_host_handler();
    test_probe_read_ok();
    test_probe_read_faults();
    test_probe_read_kernel_images();
    test_probe_read_str();
    test_probe_write_user();
    test_threads();
    test_chaining();
    test_default_action_kept();
    TH_DONE();
}
