/*
 * lt_work.c - the workload the tool matrix (libbpf_tools.sh) traces.
 *
 *   lt_work MODE N
 *
 * prints "ready", waits for a line on stdin (so tracers attach first), does
 * MODE's calls N times, prints "elapsed_ns T" on stderr and exits. Every
 * call has a fixed outcome, so the kernel and graft see the same events:
 *   open      open of a file that exists and one that does not
 *   stat      stat/lstat/statfs/statx/fstatat on a file that exists and one
 *             that does not
 *   kill      kill, tkill and tgkill with signal 0 to itself
 *   mount     mount and umount of a path that does not exist (ENOENT)
 *   readline  calls its own readline() (bashreadline -s), named "bash"
 *   gethost   getaddrinfo, gethostbyname and gethostbyname2 of "localhost"
 *   exec      execve of a path that does not exist (ENOENT)
 *   funclat   calls lt_func() (funclatency PATH:lt_func)
 *   syscalls  getppid, getuid x2, getgid x3
 *   spawn     fork; the child execs lt_work itself ("lt_work child I",
 *             which exits with status I % 4 at once); the parent waits
 *             (successful execs, process exits)
 *   signal    sends itself real signals: kill SIGUSR1 (caught), tkill
 *             SIGUSR2 (ignored), tgkill SIGCHLD (ignored by default), and
 *             SIGHUP twice while blocked (the second is already pending)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

/* bashreadline attaches a uretprobe to a function named readline. */
__attribute__((noinline)) char *readline(const char *prompt)
{
    static char line[64];
    static int n;
    snprintf(line, sizeof(line), "%s %d", prompt, n++);
    __asm__ volatile("" ::: "memory");
    return line;
}

__attribute__((noinline)) unsigned long lt_func(unsigned long n)
{
    unsigned long x = n;
    for (int i = 0; i < 100; i++)
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    __asm__ volatile("" ::: "memory");
    return x;
}

static void on_signal(int sig)
{
    sink += (unsigned long)sig;
}

static void do_signals(void)
{
    int tid = (int)syscall(SYS_gettid);
    sink += (unsigned long)kill(getpid(), SIGUSR1);
    sink += (unsigned long)syscall(SYS_tkill, tid, SIGUSR2);
    sink += (unsigned long)syscall(SYS_tgkill, getpid(), tid, SIGCHLD);
    sigset_t hup, old;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, &old);
    sink += (unsigned long)kill(getpid(), SIGHUP);
    sink += (unsigned long)kill(getpid(), SIGHUP);
    sigprocmask(SIG_SETMASK, &old, NULL);   /* delivered (caught) here */
}

static int spawn(int i)
{
    static char self[4096];   /* its real path: the child's comm is its name */
    if (!self[0] && !realpath("/proc/self/exe", self))
        return -1;
    pid_t c = fork();
    if (c < 0)
        return -1;
    if (c == 0) {
        char arg[16];
        snprintf(arg, sizeof(arg), "%d", i);
        char *args[] = { self, (char *)"child", arg, NULL };
        execv(self, args);
        _exit(127);
    }
    int st;
    return waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == i % 4 ? 0 : -1;
}

static void do_stat(const char *exists, const char *missing)
{
    struct stat st;
    struct statfs sfs;
    struct statx stx;
    sink += (unsigned long)stat(exists, &st) + (unsigned long)stat(missing, &st);
    sink += (unsigned long)lstat(exists, &st);
    sink += (unsigned long)statfs(exists, &sfs);
    sink += (unsigned long)statx(AT_FDCWD, missing, 0, STATX_BASIC_STATS, &stx);
    sink += (unsigned long)fstatat(AT_FDCWD, exists, &st, 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: lt_work MODE N\n");
        return 2;
    }
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    if (strcmp(mode, "child") == 0)   /* spawn's exec'd child */
        return n % 4;
    char exists[64], missing[64];
    snprintf(exists, sizeof(exists), "/tmp/lt-work-%d-exists", getpid());
    snprintf(missing, sizeof(missing), "/tmp/lt-work-%d-missing", getpid());
    if (strcmp(mode, "stat") == 0 || strcmp(mode, "open") == 0)
        close(open(exists, O_CREAT | O_WRONLY, 0600));
    if (strcmp(mode, "readline") == 0)
        prctl(PR_SET_NAME, "bash");
    if (strcmp(mode, "signal") == 0) {
        signal(SIGUSR1, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGUSR2, SIG_IGN);
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(mode, "stat") == 0) {
            do_stat(exists, missing);
        } else if (strcmp(mode, "open") == 0) {
            int fd = open(i % 2 ? missing : exists, O_RDONLY);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(mode, "kill") == 0) {
            sink += (unsigned long)kill(getpid(), 0);
            sink += (unsigned long)syscall(SYS_tkill, (int)syscall(SYS_gettid), 0);
            sink += (unsigned long)syscall(SYS_tgkill, getpid(), (int)syscall(SYS_gettid), 0);
        } else if (strcmp(mode, "mount") == 0) {
            sink += (unsigned long)mount("none", missing, "tmpfs", 0, "size=1m");
            sink += (unsigned long)umount(missing);
            usleep(2000);   /* paced: mountsnoop's records are large, its buffer holds few */
        } else if (strcmp(mode, "readline") == 0) {
            sink += (unsigned long)readline("lt-line")[0];
        } else if (strcmp(mode, "gethost") == 0) {
            struct addrinfo *ai = NULL;
            if (getaddrinfo("localhost", NULL, NULL, &ai) == 0)
                freeaddrinfo(ai);
            sink += (unsigned long)gethostbyname("localhost");
            sink += (unsigned long)gethostbyname2("localhost", AF_INET);
        } else if (strcmp(mode, "exec") == 0) {
            char *args[] = { missing, (char *)"--lt-arg", NULL };
            char *env[] = { NULL };
            sink += (unsigned long)execve(missing, args, env);
            usleep(2000);   /* paced, as mount */
        } else if (strcmp(mode, "funclat") == 0) {
            sink += lt_func((unsigned long)i);
        } else if (strcmp(mode, "spawn") == 0) {
            if (spawn(i) < 0) {
                fprintf(stderr, "lt_work: child %d failed\n", i);
                rc = 1;
            }
        } else if (strcmp(mode, "signal") == 0) {
            do_signals();
        } else if (strcmp(mode, "syscalls") == 0) {
            sink += (unsigned long)getppid();
            sink += getuid() + getuid();
            sink += getgid() + getgid() + getgid();
        } else {
            fprintf(stderr, "lt_work: unknown mode %s\n", mode);
            rc = 2;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unlink(exists);
    fprintf(stderr, "elapsed_ns %lld\n",
            (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    printf("done\n");
    return rc;
}
