/*
 * trace_work.c - the workload the bpftrace and BCC matrix cases trace.
 *
 *   trace_work MODE N
 *
 * prints "ready" on stdout, waits for a line on stdin (so tracers attach
 * first), runs MODE N times, prints "done" and exits. Everything it does
 * is deterministic, so a tool's output on the kernel and on graft can be
 * compared line for line. Modes:
 *   calls  tw_work(i) and tw_leaf(i) for i < N (uprobes, uretprobes)
 *   usdt   the USDT probes tw:tick (no semaphore) and tw:semtick (with a
 *          semaphore; its arguments are computed only while it is set,
 *          as real programs guard expensive probe arguments)
 *   open   openat of /nonexistent/trace-work-I (fails, ENOENT)
 *   sys    per i < N: stat and statfs of /nonexistent/trace-work-stat-I
 *          (ENOENT), kill(self, 0), fdatasync of /dev/null, setuid(its
 *          own uid), getaddrinfo("localhost") - what bpftrace's
 *          statsnoop, killsnoop, syncsnoop, setuids, gethostlatency see
 *   spin   N ms of CPU time in a busy loop in tw_spin (profile: samples
 *          land there)
 *   slow   tw_slow(i) for i < N, each sleeping 3 ms (funcslower, funcinterval)
 *   readline  its own readline() N times, named "bash" (bashreadline -s)
 *   exec   execve of /nonexistent/trace-work-exec with argument I (fails,
 *          ENOENT: the process stays, execsnoop sees the call)
 *   wait   sleeps N ms (interval probes run meanwhile)
 *   bashpty  an interactive bash on a pseudo-terminal (script(1): bash
 *          calls readline only on a terminal) reads N commands "echo
 *          tw-cmd-I" and "exit" (bashreadline.bt traces /bin/bash)
 *   sigchld  N children exit while SIGCHLD is blocked; each must be
 *          read from a signalfd within 5 s, as script(1) waits for it: a
 *          graft thread must not swallow it (exit 3 if lost)
 *   alloc  tw_alloc(i) for i < N: malloc of 1000 + 8 * i bytes for even
 *          i, calloc of 2000 + 8 * i for odd i; every third block freed
 *          again, the rest held for 2.5 s (memleak reports them while the
 *          process lives, its symbols readable)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sdt.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* trace_work_sem.c: the probe with a semaphore (<sys/sdt.h> gives either
 * every probe of a file a semaphore or none). */
extern unsigned short tw_semtick_semaphore;
void tw_semtick(long i, long v);

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long tw_leaf(unsigned long n)
{
    sink += n;
    __asm__ volatile("" ::: "memory");
    return n * 2;
}

/* Where spin mode spends its CPU time: samples land here (profile). */
__attribute__((noinline)) unsigned long tw_spin(unsigned long n)
{
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

__attribute__((noinline)) unsigned long tw_work(unsigned long n)
{
    unsigned long x = tw_leaf(n) + n;
    __asm__ volatile("" ::: "memory");
    return x;   /* 3n */
}

__attribute__((noinline)) unsigned long tw_slow(unsigned long n)
{
    usleep(3000);
    __asm__ volatile("" ::: "memory");
    return n + 1;
}

__attribute__((noinline)) void *tw_alloc(unsigned long n)
{
    void *p = n & 1 ? calloc(1, 2000 + 8 * n) : malloc(1000 + 8 * n);
    __asm__ volatile("" ::: "memory");
    return p;
}

/* bashreadline attaches a uretprobe to a function named readline. */
__attribute__((noinline)) char *readline(const char *prompt)
{
    static char line[64];
    static int calls;
    snprintf(line, sizeof(line), "%s %d", prompt, calls++);
    __asm__ volatile("" ::: "memory");
    return line;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: trace_work calls|usdt|open|sys|spin|slow|readline|exec|wait|alloc|bashpty|sigchld N\n");
        return 2;
    }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("ready\n");
    char line[16];
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (strcmp(mode, "calls") == 0) {
        for (long i = 0; i < n; i++)
            sink += tw_work((unsigned long)i);
    } else if (strcmp(mode, "usdt") == 0) {
        for (long i = 0; i < n; i++) {
            STAP_PROBE2(tw, tick, i, i * 10);
            if (tw_semtick_semaphore)
                tw_semtick(i, i * 100);
        }
    } else if (strcmp(mode, "open") == 0) {
        for (long i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof(path), "/nonexistent/trace-work-%ld", i);
            int fd = open(path, O_RDONLY);
            if (fd >= 0)
                close(fd);
        }
    } else if (strcmp(mode, "sys") == 0) {
        int null = open("/dev/null", O_WRONLY);
        for (long i = 0; i < n; i++) {
            char path[64];
            struct stat st;
            struct statfs sfs;
            snprintf(path, sizeof(path), "/nonexistent/trace-work-stat-%ld", i);
            syscall(SYS_stat, path, &st);   /* the newstat tracepoint (glibc's stat uses newfstatat) */
            statfs(path, &sfs);
            kill(getpid(), 0);
            fdatasync(null);
            if (setuid(getuid()) < 0)
                perror("setuid");
            struct addrinfo *ai = NULL;
            if (getaddrinfo("localhost", NULL, NULL, &ai) == 0)
                freeaddrinfo(ai);
        }
        close(null);
    } else if (strcmp(mode, "spin") == 0) {
        /* N ms of its own CPU time, however loaded the machine: what both
         * the kernel's sampling and graft's sample */
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        long long end = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + n;
        do {
            sink += tw_spin(200000);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        } while ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 < end);
    } else if (strcmp(mode, "slow") == 0) {
        for (long i = 0; i < n; i++)
            sink += tw_slow((unsigned long)i);
    } else if (strcmp(mode, "readline") == 0) {
        prctl(PR_SET_NAME, "bash");   /* BCC's bashreadline keeps only comm "bash" */
        for (long i = 0; i < n; i++)
            sink += (unsigned long)readline("tw-line")[0];
    } else if (strcmp(mode, "exec") == 0) {
        for (long i = 0; i < n; i++) {
            char arg[24];
            snprintf(arg, sizeof(arg), "%ld", i);
            char *const args[] = {"/nonexistent/trace-work-exec", arg, NULL};
            char *const env[] = {NULL};
            execve(args[0], args, env);
        }
    } else if (strcmp(mode, "bashpty") == 0) {
        int p[2];
        if (pipe(p) < 0)
            return 1;
        pid_t c = fork();
        if (c == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(p[0], 0);
            dup2(null, 1);
            dup2(null, 2);
            close(p[0]);
            close(p[1]);
            execl("/usr/bin/script", "script", "-q", "-e", "-c", "/bin/bash --norc --noprofile -i", "/dev/null",
                  (char *)NULL);
            _exit(127);
        }
        close(p[0]);
        for (long i = 0; i < n; i++)
            dprintf(p[1], "echo tw-cmd-%ld\n", i);
        dprintf(p[1], "exit\n");
        close(p[1]);
        int st = 0;
        if (c < 0 || waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "trace_work: script/bash failed (status %#x)\n", st);
    } else if (strcmp(mode, "sigchld") == 0) {
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
        for (long i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0)
                _exit(0);
            /* signalfd + poll, as script(1): the signal stays blocked
             * meanwhile (sigtimedwait would unblock it for this thread) */
            struct pollfd pfd = { .fd = sfd, .events = POLLIN };
            struct signalfd_siginfo si;
            if (c < 0 || poll(&pfd, 1, 5000) != 1 || read(sfd, &si, sizeof(si)) != sizeof(si)) {
                fprintf(stderr, "trace_work: SIGCHLD of child %ld lost\n", i);
                return 3;
            }
            waitpid(c, NULL, 0);
        }
    } else if (strcmp(mode, "alloc") == 0) {
        static void *held[4096];
        for (long i = 0; i < n && i < 4096; i++) {
            held[i] = tw_alloc((unsigned long)i);
            if (i % 3 == 0) {
                free(held[i]);
                held[i] = NULL;
            }
        }
        usleep(2500 * 1000);
        for (long i = 0; i < n && i < 4096; i++)
            free(held[i]);
    } else if (strcmp(mode, "wait") == 0) {
        usleep((useconds_t)n * 1000);
    } else {
        fprintf(stderr, "trace_work: unknown mode %s\n", mode);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "elapsed_ns %lld\n",
            (long long)(t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
    printf("done\n");
    return 0;
}
