/* progs.bpf.c - one program per section kind graft knows (docs/sections.md),
 * several programs in one section, and a subprogram shared through .text. */
#include "types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

static __attribute__((noinline)) int twice(int x)
{
    return x * 2;
}

SEC("uprobe/./app:compute+4")
int up(void *ctx) { return twice(1); }

SEC("uprobe/./app:compute+4")
int up_second(void *ctx) { return twice(21); }

SEC("uretprobe/./app:compute")
int uret(void *ctx) { return 2; }

SEC("uprobe.s/./app:compute")
int up_sleep(void *ctx) { return 3; }

SEC("usdt/./app:myprov:myprobe")
int usdt_prog(void *ctx) { return 4; }

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter(void *ctx) { return 5; }

SEC("tp/syscalls/sys_exit_openat")
int tp_exit(void *ctx) { return 6; }

SEC("raw_tracepoint/sys_enter")
int raw_enter(void *ctx) { return 7; }

SEC("raw_tp/sys_exit")
int raw_exit(void *ctx) { return 8; }

SEC("override/./app:check_password")
int ovr(void *ctx) { return 9; }

SEC("replace/./app:add")
int repl(void *ctx) { return 10; }

SEC("socket")
int sock(void *ctx) { return 11; }

SEC("xdp")
int xdp_prog(void *ctx) { return 12; }
