/*
 * tailmix.c - a prog array is bound to one kind of program: with a kprobe
 * program that tail-calls through it loaded, storing a socket filter (a
 * 4096-byte context where the kprobe's is pt_regs) in a slot must fail with
 * EINVAL, and storing another kprobe program must work. Raw bpf(2) calls,
 * so the same binary runs on the kernel and under `graft compat`, which
 * must answer alike.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *a)
{
    return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int load(uint32_t type, const struct bpf_insn *insns, uint32_t n, const char *name)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = type;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = n;
    a.license = (uint64_t)(uintptr_t)"GPL";
    snprintf(a.prog_name, sizeof(a.prog_name), "%s", name);
    int fd = (int)bpf(BPF_PROG_LOAD, &a);
    if (fd < 0)
        printf("load %s: %s\n", name, strerror(errno));
    return fd;
}

static const char *store(int map, uint32_t slot, int prog)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)map;
    a.key = (uint64_t)(uintptr_t)&slot;
    a.value = (uint64_t)(uintptr_t)&prog;
    return bpf(BPF_MAP_UPDATE_ELEM, &a) == 0 ? "ok" : errno == EINVAL ? "EINVAL" : strerror(errno);
}

int main(void)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_PROG_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 2;
    int map = (int)bpf(BPF_MAP_CREATE, &a);
    if (map < 0) {
        printf("map: %s\n", strerror(errno));
        return 1;
    }
    struct bpf_insn dispatch[] = {
        { .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = 2, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map },
        { 0 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 3, .imm = 0 },
        { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_tail_call },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    struct bpf_insn ret0[] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    int kp = load(BPF_PROG_TYPE_KPROBE, dispatch, 6, "dispatch");
    int other = load(BPF_PROG_TYPE_KPROBE, ret0, 2, "other_kprobe");
    int sock = load(BPF_PROG_TYPE_SOCKET_FILTER, ret0, 2, "sock");
    if (kp < 0 || other < 0 || sock < 0)
        return 1;
    printf("socket filter into the kprobe's prog array: %s\n", store(map, 0, sock));
    printf("kprobe program into the kprobe's prog array: %s\n", store(map, 1, other));
    return 0;
}
