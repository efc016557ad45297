/*
 * fdreplay.c - what libbpf >= 1.4 and tools do with bpf descriptors,
 * replayed with raw bpf(2) calls so the same binary runs on the kernel and
 * under `graft compat`, whose answers (stdout) must be the kernel's:
 *
 *   placeholders (fcntl(F_DUPFD_CLOEXEC) of /dev/null and of a memfd), the
 *   map fd dup3()ed onto them with O_CLOEXEC and the original closed, as
 *   libbpf's reuse_fd() does; further copies by F_DUPFD_CLOEXEC, dup,
 *   dup2 and syscall(SYS_dup3); a copy replaced by dup2 of another file;
 *   close_range with and without CLOSE_RANGE_CLOEXEC; a program that
 *   names its map by a dup'ed descriptor; a forked child using and
 *   closing inherited copies; an exec'd child whose O_CLOEXEC copy is gone.
 *
 * Last, BPF_MAP_CREATE by a `syscall` instruction (not libc's syscall()):
 * stderr says who answered it ("backend: graft" when the descriptor is
 * graft's eventfd, "backend: kernel" for the kernel's bpf-map).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *a)
{
    return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int map_create(const char *name)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 8;
    a.max_entries = 4;
    snprintf(a.map_name, sizeof(a.map_name), "%s", name);
    return (int)bpf(BPF_MAP_CREATE, &a);
}

static const char *update(int fd, uint32_t key, uint64_t val)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&val;
    return bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? "ok" : strerrorname_np(errno);
}

/* "value N" or the errno's name (in a buffer the next call reuses). */
static const char *lookup(int fd, uint32_t key)
{
    static char out[64];
    uint64_t val = 0;
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&val;
    if (bpf(BPF_MAP_LOOKUP_ELEM, &a) == 0)
        snprintf(out, sizeof(out), "value %llu", (unsigned long long)val);
    else
        snprintf(out, sizeof(out), "%s", strerrorname_np(errno));
    return out;
}

static uint32_t map_id(int fd)
{
    struct bpf_map_info info;
    memset(&info, 0, sizeof(info));
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.info.bpf_fd = (uint32_t)fd;
    a.info.info_len = sizeof(info);
    a.info.info = (uint64_t)(uintptr_t)&info;
    return bpf(BPF_OBJ_GET_INFO_BY_FD, &a) == 0 ? info.id : 0;
}

/* A socket filter that looks up key 0 of the map named by map_fd. */
static int load_prog(int map_fd)
{
    struct bpf_insn insns[] = {
        { .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 10, .off = -4, .imm = 0 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 10 },
        { .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = -4 },
        { .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd },
        { 0 },
        { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = sizeof(insns) / sizeof(insns[0]);
    a.license = (uint64_t)(uintptr_t)"GPL";
    snprintf(a.prog_name, sizeof(a.prog_name), "uses_dup");
    return (int)bpf(BPF_PROG_LOAD, &a);
}

static void prog_maps(int prog_fd, int map_fd)
{
    uint32_t ids[4] = {0};
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    info.nr_map_ids = 4;
    info.map_ids = (uint64_t)(uintptr_t)ids;
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.info.bpf_fd = (uint32_t)prog_fd;
    a.info.info_len = sizeof(info);
    a.info.info = (uint64_t)(uintptr_t)&info;
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0) {
        printf("prog info: %s\n", strerrorname_np(errno));
        return;
    }
    printf("program uses %u map(s), the dup'ed one: %s\n", info.nr_map_ids,
           info.nr_map_ids == 1 && ids[0] == map_id(map_fd) ? "yes" : "no");
}

static long direct_bpf(int cmd, union bpf_attr *a)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"((long)SYS_bpf), "D"((long)cmd), "S"(a), "d"((long)sizeof(*a))
                     : "rcx", "r11", "memory");
    return ret;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--exec-child") == 0) {
        printf("exec'd child, O_CLOEXEC copy: %s\n", lookup(atoi(argv[2]), 0));
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int orig = map_create("opensnoo.rodata");
    if (orig < 0) {
        printf("map create: %s\n", strerror(errno));
        return 1;
    }
    /* libbpf: a placeholder, the map dup3()ed onto it, the original closed. */
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int ph = fcntl(null, F_DUPFD_CLOEXEC, 3);
    close(null);
    printf("dup3 onto placeholder: %s\n", dup3(orig, ph, O_CLOEXEC) == ph ? "ok" : strerrorname_np(errno));
    close(orig);
    printf("update via placeholder: %s\n", update(ph, 0, 41));
    printf("lookup via placeholder: %s\n", lookup(ph, 0));
    printf("lookup via closed original: %s\n", lookup(orig, 0));

    /* A second map onto a memfd placeholder; the first program uses a copy. */
    int mfd = memfd_create("libbpf-placeholder-fd", MFD_CLOEXEC);
    int ph2 = fcntl(mfd, F_DUPFD_CLOEXEC, 3);
    close(mfd);
    int orig2 = map_create("events");
    printf("dup3 onto memfd placeholder: %s\n", dup3(orig2, ph2, O_CLOEXEC) == ph2 ? "ok" : strerrorname_np(errno));
    close(orig2);
    printf("update second map: %s\n", update(ph2, 1, 7));

    int copy = fcntl(ph, F_DUPFD_CLOEXEC, 3);
    close(ph);
    printf("lookup via F_DUPFD_CLOEXEC copy after closing the placeholder: %s\n", lookup(copy, 0));
    int prog = load_prog(copy);
    if (prog < 0)
        printf("load with the dup'ed map fd: %s\n", strerrorname_np(errno));
    else
        prog_maps(prog, copy);

    int d = dup(copy);
    int d2 = (int)syscall(SYS_dup3, copy, 90, O_CLOEXEC);
    printf("syscall(SYS_dup3): %s\n", d2 == 90 ? "ok" : strerrorname_np(errno));
    printf("update via syscall(SYS_dup3) copy: %s\n", update(d2, 0, 42));
    int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(other, d);   /* d now names /dev/null */
    close(other);
    printf("lookup via a copy replaced by dup2: %s\n", lookup(d, 0));
    printf("lookup via dup: %s\n", lookup(copy, 0));
    close(d);

    /* close_range: 200..202 closed, 203 only marked close-on-exec. */
    for (int i = 0; i < 4; i++)
        if (fcntl(ph2, F_DUPFD, 200) != 200 + i)
            printf("F_DUPFD to %d: %s\n", 200 + i, strerrorname_np(errno));
    close_range(200, 202, 0);
    close_range(203, 203, CLOSE_RANGE_CLOEXEC);
    printf("close_range: 201 %s", lookup(201, 1));
    printf(", 203 (cloexec) %s", lookup(203, 1));
    close_range(203, ~0u, 0);
    printf(", 203 after closing %s", lookup(203, 1));
    printf(", placeholder %s\n", lookup(ph2, 1));

    /* fork: the child inherits the descriptors; its closes free nothing of ours. */
    pid_t pid = fork();
    if (pid == 0) {
        printf("child: lookup via inherited copy: %s\n", lookup(copy, 0));
        printf("child: update: %s\n", update(copy, 0, 77));
        close(copy);
        close(d2);
        close(ph2);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("parent after the child closed its copies: %s", lookup(copy, 0));
    printf(", second map %s\n", lookup(ph2, 1));

    /* exec: the O_CLOEXEC copy is gone in the new image. */
    pid = fork();
    if (pid == 0) {
        char fdstr[16];
        snprintf(fdstr, sizeof(fdstr), "%d", d2);
        execl("/proc/self/exe", argv[0], "--exec-child", fdstr, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, NULL, 0);

    close(copy);
    printf("map after its last descriptor closed, program still holds it: %s\n", lookup(d2, 0));
    close(d2);
    if (prog >= 0)
        close(prog);
    close(ph2);

    /* A bpf system call that bypasses libc's syscall(). */
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 8;
    a.max_entries = 1;
    long fd = direct_bpf(BPF_MAP_CREATE, &a);
    if (fd < 0) {
        printf("direct bpf syscall: %s\n", strerrorname_np((int)-fd));
        return 1;
    }
    printf("direct bpf syscall: update %s, %s\n", update((int)fd, 0, 5), lookup((int)fd, 0));
    char link[64] = "", path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    fprintf(stderr, "backend: %s (%s)\n", strstr(link, "eventfd") ? "graft" : strstr(link, "bpf-map") ? "kernel" : "?",
            link);
    return 0;
}
