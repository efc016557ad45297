/*
 * compat_work.c - the deterministic workload the compat tools (test_compat.sh,
 * bench/compat) and the libbpf-tools matrix (matrix/libbpf_tools.sh) trace.
 *
 *   compat_work MODE N
 *
 * prints "ready", waits for a line on stdin (so tracers can attach first),
 * runs MODE N times, prints "elapsed_ns T" on stderr and exits. Every call
 * has a fixed outcome, so the kernel and graft see the same events:
 *   malloc       malloc/free of 1000..1007 bytes
 *   readline     calls compat_readline()
 *   bashreadline calls its own readline() (bashreadline -s), named "bash"
 *   funclat      calls compat_work_fn()
 *   ssl          TLS requests and replies over a socketpair
 *   open         open of a file that exists and one that does not
 *   stat         stat/lstat/statfs/statx/fstatat on the same two
 *   kill         kill, tkill and tgkill with signal 0 to itself
 *   mount        mount and umount of the path that does not exist (ENOENT)
 *   gethost      getaddrinfo, gethostbyname and gethostbyname2 of "localhost"
 *   exec         execve of the path that does not exist (ENOENT)
 *   syscalls     getppid, getuid x2, getgid x3
 *   rawsys       fstat, uname by number, close (every third fails)
 *   usdt         the USDT probe compat:tick
 *   stack        a call chain for stack traces
 *   emit         compat_emit() with a formatted message
 *   spin         N ms of its own CPU time in compat_spin_step, called from
 *                compat_spin (what a profiler samples)
 *   spawn        fork; the child execs compat_work itself ("compat_work
 *                child I", which exits with status I % 4 at once); the
 *                parent waits (successful execs, process exits)
 *   signal       sends itself real signals: kill SIGUSR1 (caught), tkill
 *                SIGUSR2 (ignored), tgkill SIGCHLD (ignored by default), and
 *                SIGHUP twice while blocked (the second is already pending)
 * The two files are /tmp/compat-open-PID-{exists,missing}.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sdt.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long compat_spin_step(unsigned long x)
{
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

/* ms of the process's own CPU time, however loaded the machine */
__attribute__((noinline)) void compat_spin(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    long long end = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms;
    do {
        sink = compat_spin_step(sink);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    } while ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 < end);
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

__attribute__((noinline)) char *compat_readline(const char *prompt)
{
    static char line[64];
    static int n;
    snprintf(line, sizeof(line), "%s line %d", prompt, n++);
    __asm__ volatile("" ::: "memory");
    return line;
}

/* Debian's bashreadline attaches a uretprobe to a function named readline
 * (in the binary -s names) and reports processes named "bash". */
__attribute__((noinline)) char *readline(const char *prompt)
{
    static char line[64];
    static int n;
    snprintf(line, sizeof(line), "%s %d", prompt, n++);
    __asm__ volatile("" ::: "memory");
    return line;
}

__attribute__((noinline)) unsigned long compat_work_fn(unsigned long n)
{
    unsigned long x = n;
    for (unsigned long i = 0; i < 200; i++)
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    __asm__ volatile("" ::: "memory");
    return x;
}

/* A call chain for stack traces (mode stack): main -> a -> b -> leaf, with
 * frame pointers (CMake builds this file with -fno-omit-frame-pointer). */
__attribute__((noinline)) unsigned long compat_stack_leaf(unsigned long x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

__attribute__((noinline)) unsigned long compat_stack_b(unsigned long x)
{
    unsigned long r = compat_stack_leaf(x) + 1;
    __asm__ volatile("" ::: "memory");
    return r;
}

__attribute__((noinline)) unsigned long compat_stack_a(unsigned long x)
{
    unsigned long r = x & 1 ? compat_stack_b(x) + 2 : compat_stack_leaf(x) + 3;
    __asm__ volatile("" ::: "memory");
    return r;
}

__attribute__((noinline)) void compat_emit(int seq, const char *msg)
{
    sink += (unsigned long)seq + (unsigned long)msg[0];
    __asm__ volatile("" ::: "memory");
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

/* ---- TLS over a socketpair: a server thread echoes what the client sends ---- */

static SSL_CTX *server_ctx(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!key || !cert || !ctx)
        return NULL;
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"compat", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

struct ssl_args { int fd, n; SSL_CTX *ctx; };

static void *ssl_server(void *p)
{
    struct ssl_args *a = p;
    SSL *ssl = SSL_new(a->ctx);
    SSL_set_fd(ssl, a->fd);
    if (SSL_accept(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return NULL;
    }
    char buf[128];
    for (int i = 0; i < a->n; i++) {
        int r = SSL_read(ssl, buf, sizeof(buf) - 1);
        if (r <= 0)
            break;
        buf[r] = '\0';
        char reply[160];
        int len = snprintf(reply, sizeof(reply), "echo %s", buf);
        SSL_write(ssl, reply, len);
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    return NULL;
}

static int run_ssl(int n, SSL_CTX *sctx)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    struct ssl_args a = { sv[1], n, sctx };
    pthread_t t;
    pthread_create(&t, NULL, ssl_server, &a);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(cctx);
    SSL_set_fd(ssl, sv[0]);
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    char buf[200];
    for (int i = 0; i < n; i++) {
        char msg[64];
        int len = snprintf(msg, sizeof(msg), "request %d", i);
        SSL_write(ssl, msg, len);
        int got = 0;
        /* Each reply is read whole so the number of SSL_read calls is fixed. */
        while (got < len + 5) {
            int r = SSL_read(ssl, buf + got, (int)sizeof(buf) - 1 - got);
            if (r <= 0)
                return 1;
            got += r;
        }
    }
    SSL_shutdown(ssl);
    pthread_join(t, NULL);
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: compat_work MODE N\n");
        return 2;
    }
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    if (strcmp(mode, "child") == 0)   /* spawn's exec'd child */
        return n % 4;
    char exists[64], missing[64];
    snprintf(exists, sizeof(exists), "/tmp/compat-open-%d-exists", getpid());
    snprintf(missing, sizeof(missing), "/tmp/compat-open-%d-missing", getpid());
    SSL_CTX *sctx = NULL;
    if (strcmp(mode, "open") == 0 || strcmp(mode, "stat") == 0)
        close(open(exists, O_CREAT | O_WRONLY, 0600));
    if (strcmp(mode, "ssl") == 0 && !(sctx = server_ctx()))
        return 1;
    if (strcmp(mode, "bashreadline") == 0)
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
    if (strcmp(mode, "malloc") == 0) {
        for (int i = 0; i < n; i++) {
            void *p = malloc(1000 + (size_t)(i % 8));
            sink += (unsigned long)p;
            free(p);
        }
    } else if (strcmp(mode, "readline") == 0) {
        for (int i = 0; i < n; i++)
            sink += (unsigned long)compat_readline("work")[0];
    } else if (strcmp(mode, "bashreadline") == 0) {
        for (int i = 0; i < n; i++)
            sink += (unsigned long)readline("bash-line")[0];
    } else if (strcmp(mode, "funclat") == 0) {
        for (int i = 0; i < n; i++)
            sink += compat_work_fn((unsigned long)i);
    } else if (strcmp(mode, "ssl") == 0) {
        rc = run_ssl(n, sctx);
    } else if (strcmp(mode, "open") == 0) {
        for (int i = 0; i < n; i++) {
            int fd = open(i % 2 ? missing : exists, i % 4 < 2 ? O_RDONLY : O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                close(fd);
        }
    } else if (strcmp(mode, "stat") == 0) {
        for (int i = 0; i < n; i++)
            do_stat(exists, missing);
    } else if (strcmp(mode, "kill") == 0) {
        for (int i = 0; i < n; i++) {
            sink += (unsigned long)kill(getpid(), 0);
            sink += (unsigned long)syscall(SYS_tkill, (int)syscall(SYS_gettid), 0);
            sink += (unsigned long)syscall(SYS_tgkill, getpid(), (int)syscall(SYS_gettid), 0);
        }
    } else if (strcmp(mode, "mount") == 0) {
        for (int i = 0; i < n; i++) {
            sink += (unsigned long)mount("none", missing, "tmpfs", 0, "size=1m");
            sink += (unsigned long)umount(missing);
            usleep(2000);   /* paced: mountsnoop's records are large, its buffer holds few */
        }
    } else if (strcmp(mode, "gethost") == 0) {
        for (int i = 0; i < n; i++) {
            struct addrinfo *ai = NULL;
            if (getaddrinfo("localhost", NULL, NULL, &ai) == 0)
                freeaddrinfo(ai);
            sink += (unsigned long)gethostbyname("localhost");
            sink += (unsigned long)gethostbyname2("localhost", AF_INET);
        }
    } else if (strcmp(mode, "exec") == 0) {
        char *args[] = { missing, (char *)"--compat-arg", NULL };
        char *env[] = { NULL };
        for (int i = 0; i < n; i++) {
            sink += (unsigned long)execve(missing, args, env);
            usleep(2000);   /* paced, as mount */
        }
    } else if (strcmp(mode, "syscalls") == 0) {
        for (int i = 0; i < n; i++) {
            sink += (unsigned long)getppid();
            sink += getuid() + getuid();
            sink += getgid() + getgid() + getgid();
        }
    } else if (strcmp(mode, "rawsys") == 0) {
        /* fstat and uname by number: glibc's fstat() is newfstatat. Every
         * third close fails (EBADF), for the exit records' results. */
        struct stat st;
        struct utsname u;
        for (int i = 0; i < n; i++) {
            sink += (unsigned long)syscall(SYS_fstat, 0, &st);
            sink += (unsigned long)syscall(SYS_uname, &u);
            sink += (unsigned long)close(i % 3 ? dup(0) : -1);
        }
    } else if (strcmp(mode, "usdt") == 0) {
        for (long i = 0; i < n; i++) {
            long v = i * 3;
            STAP_PROBE2(compat, tick, i, v);
            sink += (unsigned long)v;
        }
    } else if (strcmp(mode, "spin") == 0) {
        compat_spin(n);
    } else if (strcmp(mode, "spawn") == 0) {
        for (int i = 0; i < n; i++)
            if (spawn(i) < 0) {
                fprintf(stderr, "compat_work: child %d failed\n", i);
                rc = 1;
            }
    } else if (strcmp(mode, "signal") == 0) {
        for (int i = 0; i < n; i++)
            do_signals();
    } else if (strcmp(mode, "stack") == 0) {
        for (int i = 0; i < n; i++)
            sink += compat_stack_a((unsigned long)i);
    } else if (strcmp(mode, "emit") == 0) {
        char msg[32];
        for (int i = 0; i < n; i++) {
            snprintf(msg, sizeof(msg), "event-%d", i * 7);
            compat_emit(i, msg);
        }
    } else {
        fprintf(stderr, "compat_work: unknown mode %s\n", mode);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (sctx)
        SSL_CTX_free(sctx);
    unlink(exists);
    fprintf(stderr, "elapsed_ns %lld\n",
            (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    printf("done\n");
    return rc;
}
