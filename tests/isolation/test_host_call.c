/*
 * test_host_call.c - extensions calling host functions (EIM kfuncs) with
 * isolation on, and the other ways extension-side code meets host code:
 * through every hook path, on the extension stack and with gates only.
 *
 *  - host functions get their scalar arguments, the bytes behind their
 *    pointer arguments (the extension's stack, a map value: memory the host
 *    cannot read, so the thunk copies it), NULL as NULL, and the extension
 *    gets their results; they run with the host's PKRU on a host stack;
 *  - a host function that reaches a source entry runs that entry's
 *    extension (nested, on the host stack) and both finish;
 *  - a host function that longjmps out of the extension leaves the thread
 *    able to run extensions on its extension stack again;
 *  - the helpers that call into libc (formatting, clock_gettime, getpid,
 *    memcpy) work on the extension stack;
 *  - the per-thread hook bookkeeping is out of the host's reach.
 *
 * Needs PKU: run natively where the CPU has it, else as /init under QEMU
 * (tests/isolation/run-pku.sh picks). It says which: "isolation: native
 * PKU" or "isolation: QEMU TCG", then "host calls: N passed, M failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach/attach.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"
#include "maps/maps.h"
#include "vm/vm.h"

#include "tcheck.h"
#include "tfault.h"
#include "tguest.h"

/* ---- the host --------------------------------------------------------------- */

static volatile int g_sink;
#define HOST_FN(name, k)                                                \
    __attribute__((noinline)) int name(int x)                           \
    {                                                                   \
        g_sink += x + k;                                                \
        __asm__ volatile("" ::: "memory");                              \
        return x * 3 + g_sink;                                          \
    }
HOST_FN(hc_entry, 1)
HOST_FN(hc_ret, 2)
HOST_FN(hc_replace, 3)
HOST_FN(hc_trap, 4)
HOST_FN(hc_gates, 5)
HOST_FN(hc_jump, 6)
HOST_FN(hc_libc, 7)
HOST_FN(hc_clob, 8)
HOST_FN(hc_cpu, 9)

/* A GRAFT_ENTRY-style source entry (the 5-byte NOP), 8 bytes in %rdi. */
long hc_source(long x);
__asm__(".text\n.globl hc_source\n.type hc_source,@function\n"
        "hc_source:\n"
        "  .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n"
        "  lea 7(%rdi), %rax\n"
        "  ret\n"
        ".size hc_source, .-hc_source\n");

static uint64_t g_xtop;                 /* this thread's extension stack */
static uint8_t *g_map_mem;              /* the map's memory (tagged) */
static size_t g_map_len;

static int in_range(uint64_t lo, uint64_t len, uint64_t a)
{
    return a >= lo && a < lo + len;
}

/* Where extension memory is: host code must never be given it. */
static int extension_memory(uint64_t a)
{
    return (g_xtop && in_range(g_xtop - GISO_XSTACK_SIZE, GISO_XSTACK_SIZE, a)) ||
           in_range((uint64_t)(uintptr_t)g_map_mem, g_map_len, a);
}

struct host_seen {
    int calls;
    int bad_pkru;               /* ran with PKRU other than host */
    int bad_stack;              /* ran on the extension stack */
    int bad_ptr;                /* was given extension memory */
};
static volatile struct host_seen g_seen;
static volatile int g_nest;              /* host_mem reaches the source entry */
static volatile long g_nest_ret;

static void host_check(uint64_t p)
{
    volatile int here = 0;
    g_seen.calls++;
    g_seen.bad_pkru += giso_rdpkru() != giso_pkru_host();
    g_seen.bad_stack += extension_memory((uint64_t)(uintptr_t)&here);
    g_seen.bad_ptr += p && extension_memory(p);
}

static uint64_t byte_sum(const uint8_t *p, uint64_t n)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

/* k * (the bytes' sum) + len; 1 << 20 for NULL. */
static uint64_t host_mem(uint64_t p, uint64_t len, uint64_t k, uint64_t d, uint64_t e)
{
    (void)d, (void)e;
    host_check(p);
    if (g_nest) {
        g_nest = 0;
        g_nest_ret = hc_source(35);     /* runs the source entry's extension */
    }
    if (!p)
        return 1u << 20;
    return k * byte_sum((const uint8_t *)(uintptr_t)p, len) + len;
}

/* sum(a) + 2 * sum(b) + k */
static uint64_t host_mem2(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen, uint64_t k)
{
    host_check(a);
    host_check(b);
    return byte_sum((const uint8_t *)(uintptr_t)a, alen) +
           2 * byte_sum((const uint8_t *)(uintptr_t)b, blen) + k;
}

/* x + sum(a) + 3 * sum(b): memory in the second and fourth arguments */
static uint64_t host_mem3(uint64_t x, uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    host_check(a);
    host_check(b);
    return x + byte_sum((const uint8_t *)(uintptr_t)a, alen) +
           3 * byte_sum((const uint8_t *)(uintptr_t)b, blen);
}

static sigjmp_buf g_out;
static volatile int g_jumps;
/* Leaves the extension (and the trampoline) for good. */
static uint64_t host_jump(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)a, (void)b, (void)c, (void)d, (void)e;
    host_check(0);
    g_jumps++;
    siglongjmp(g_out, 1);
}

/* ---- the extensions ---------------------------------------------------------- */

#define H_MEM 200
#define H_MEM2 201
#define H_RC 202
#define H_RC2 203
#define H_JUMP 204
#define H_MEM3 205
#define H_CLOBBER 206

/* A host function that returns with every callee-saved register changed -
 * what a host whose saved-register slots on its own stack were overwritten
 * (or that breaks the ABI) hands back to its caller. The JIT keeps BPF
 * r6-r9 and r10 in callee-saved registers: the thunk must restore them
 * from its keyed copies, not trust these. */
__asm__(".text\n"
        ".globl hc_clobber_fn\n.type hc_clobber_fn, @function\n"
        "hc_clobber_fn:\n"
        "  movabs $0x0badbadbadbad000, %rbx\n"
        "  mov %rbx, %rbp\n  mov %rbx, %r12\n  mov %rbx, %r13\n"
        "  mov %rbx, %r14\n  mov %rbx, %r15\n"
        "  mov $77, %eax\n"
        "  ret\n"
        ".size hc_clobber_fn, .-hc_clobber_fn\n");
uint64_t hc_clobber_fn(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

static gvm_helper_fn g_helpers[BPF_MAX_HELPER_ID];
static volatile int64_t g_rc, g_rc2;
static volatile int g_rc_runs;

static uint64_t helper_rc(uint64_t v, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b, (void)c, (void)d, (void)e;
    g_rc = (int64_t)v;
    g_rc_runs++;
    return 0;
}

static uint64_t helper_rc2(uint64_t v, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b, (void)c, (void)d, (void)e;
    g_rc2 = (int64_t)v;
    return 0;
}

static int resolve_map(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *value,
                       struct graft_err *err)
{
    (void)imm, (void)next;
    if (src != BPF_PSEUDO_MAP_FD)
        return graft_errf(err, -EINVAL, "unexpected ld_imm64 source %u", src);
    *value = (uint64_t)(uintptr_t)arg;
    return 0;
}

static struct gvm_prog *jit(const struct bpf_insn *insns, size_t n, struct gmap *map,
                            struct graft_err *err)
{
    struct gvm_env env = { .helpers = g_helpers, .resolve_ld_imm64 = resolve_map, .arg = map };
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env };
    struct gvm_prog *prog = NULL;
    giso_enter();                       /* relocating reads the map's handle */
    int rc = gvm_prog_create(insns, n, &po, &prog, err);
    giso_leave();
    return rc < 0 ? NULL : prog;
}

static const char MSG[17] = "graft:host-call!";     /* on the extension's stack */
static const uint8_t VALUE[24] = "map value bytes, 24 long";

static uint64_t word(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

#define N_INSNS(a) (sizeof(a) / sizeof((a)[0]))

/* The host-call extension: host_mem on 16 bytes of its stack (k 3), on a
 * 24-byte map value (k 5), host_mem2 on two halves of its stack (k 1000),
 * host_mem3 on the whole and the second half (x 100), host_mem on NULL
 * (k 7); the sum goes to H_RC. */
static struct gvm_prog *build_caller(struct gmap *map, struct graft_err *err)
{
    const struct bpf_insn insns[] = {
        BPF_LD_IMM64_RAW(1, 0, word(MSG)),
        BPF_STX_MEM(BPF_DW, 10, 1, -16),
        BPF_LD_IMM64_RAW(1, 0, word(MSG + 8)),
        BPF_STX_MEM(BPF_DW, 10, 1, -8),
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -16),
        BPF_MOV64_IMM(2, 16),
        BPF_MOV64_IMM(3, 3),
        BPF_MOV64_IMM(4, 0),
        BPF_MOV64_IMM(5, 0),
        BPF_CALL_HELPER(H_MEM),
        BPF_MOV64_REG(7, 0),
        BPF_ST_MEM(BPF_W, 10, -20, 0),
        BPF_MOV64_REG(2, 10),
        BPF_ALU64_IMM(BPF_ADD, 2, -20),
        BPF_LD_IMM64_RAW(1, BPF_PSEUDO_MAP_FD, 0),
        BPF_CALL_HELPER(1),                    /* map_lookup_elem */
        BPF_JMP_IMM(BPF_JEQ, 0, 0, 7),
        BPF_MOV64_REG(1, 0),
        BPF_MOV64_IMM(2, 24),
        BPF_MOV64_IMM(3, 5),
        BPF_MOV64_IMM(4, 0),
        BPF_MOV64_IMM(5, 0),
        BPF_CALL_HELPER(H_MEM),
        BPF_ALU64_REG(BPF_ADD, 7, 0),
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -16),
        BPF_MOV64_IMM(2, 8),
        BPF_MOV64_REG(3, 10),
        BPF_ALU64_IMM(BPF_ADD, 3, -8),
        BPF_MOV64_IMM(4, 8),
        BPF_MOV64_IMM(5, 1000),
        BPF_CALL_HELPER(H_MEM2),
        BPF_ALU64_REG(BPF_ADD, 7, 0),
        BPF_MOV64_IMM(1, 100),
        BPF_MOV64_REG(2, 10),
        BPF_ALU64_IMM(BPF_ADD, 2, -16),
        BPF_MOV64_IMM(3, 16),
        BPF_MOV64_REG(4, 10),
        BPF_ALU64_IMM(BPF_ADD, 4, -8),
        BPF_MOV64_IMM(5, 8),
        BPF_CALL_HELPER(H_MEM3),
        BPF_ALU64_REG(BPF_ADD, 7, 0),
        BPF_MOV64_IMM(1, 0),
        BPF_MOV64_IMM(2, 0),
        BPF_MOV64_IMM(3, 7),
        BPF_MOV64_IMM(4, 0),
        BPF_MOV64_IMM(5, 0),
        BPF_CALL_HELPER(H_MEM),
        BPF_ALU64_REG(BPF_ADD, 7, 0),
        BPF_MOV64_REG(1, 7),
        BPF_CALL_HELPER(H_RC),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    return jit(insns, N_INSNS(insns), map, err);
}

static uint64_t caller_expect(void)
{
    const uint8_t *m = (const uint8_t *)MSG;
    return (3 * byte_sum(m, 16) + 16) + (5 * byte_sum(VALUE, 24) + 24) +
           (byte_sum(m, 8) + 2 * byte_sum(m + 8, 8) + 1000) +
           (100 + byte_sum(m, 16) + 3 * byte_sum(m + 8, 8)) + (1u << 20);
}

/* The source entry's extension: host_mem on "innermsg" on its own stack,
 * the result to H_RC2. */
static const char INNER[9] = "innermsg";
static struct gvm_prog *build_inner(struct graft_err *err)
{
    const struct bpf_insn insns[] = {
        BPF_LD_IMM64_RAW(1, 0, word(INNER)),
        BPF_STX_MEM(BPF_DW, 10, 1, -8),
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -8),
        BPF_MOV64_IMM(2, 8),
        BPF_MOV64_IMM(3, 1),
        BPF_MOV64_IMM(4, 0),
        BPF_MOV64_IMM(5, 0),
        BPF_CALL_HELPER(H_MEM),
        BPF_MOV64_REG(1, 0),
        BPF_CALL_HELPER(H_RC2),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    return jit(insns, N_INSNS(insns), NULL, err);
}

/* host_jump, then (never reached) H_RC. */
static struct gvm_prog *build_jumper(struct graft_err *err)
{
    const struct bpf_insn insns[] = {
        BPF_ST_MEM(BPF_DW, 10, -8, 1),
        BPF_CALL_HELPER(H_JUMP),
        BPF_MOV64_IMM(1, -1),
        BPF_CALL_HELPER(H_RC),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    return jit(insns, N_INSNS(insns), NULL, err);
}

/* Helpers that call into libc, from the extension stack: ktime_get_ns
 * (clock_gettime), get_current_pid_tgid (getpid/gettid), probe_read_user
 * (a fault-tolerant memcpy) of host memory, snprintf (formatting) into its
 * stack, then a host function reading what snprintf wrote. Result to H_RC:
 * bit 0 time > 0, bit 1 tgid = getpid(), bit 2 probe_read_user 0 and the
 * word right, bit 3 snprintf's length; H_RC2 gets host_mem's sum. */
static volatile uint64_t g_probe_word = 0x1122334455667788ull;
static uint64_t g_fmt_args[2] = { 42, 7 };
static struct gvm_prog *build_libc_user(struct graft_err *err)
{
    static const char fmt[] = "v=%d,%d";        /* 8 bytes with the NUL */
    const struct bpf_insn insns[] = {
        BPF_MOV64_IMM(8, 0),
        BPF_CALL_HELPER(5),                    /* ktime_get_ns */
        BPF_JMP_IMM(BPF_JEQ, 0, 0, 1),
        BPF_ALU64_IMM(BPF_OR, 8, 1),
        BPF_CALL_HELPER(14),                   /* get_current_pid_tgid */
        BPF_ALU64_IMM(BPF_RSH, 0, 32),
        BPF_LD_IMM64_RAW(1, 0, (uint64_t)getpid()),
        BPF_JMP_REG(BPF_JNE, 0, 1, 1),
        BPF_ALU64_IMM(BPF_OR, 8, 2),
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -8),
        BPF_MOV64_IMM(2, 8),
        BPF_LD_IMM64_RAW(3, 0, (uint64_t)(uintptr_t)&g_probe_word),
        BPF_CALL_HELPER(112),                  /* probe_read_user */
        BPF_JMP_IMM(BPF_JNE, 0, 0, 4),
        BPF_LDX_MEM(BPF_DW, 1, 10, -8),
        BPF_LD_IMM64_RAW(2, 0, 0x1122334455667788ull),
        BPF_JMP_REG(BPF_JNE, 1, 2, 1),
        BPF_ALU64_IMM(BPF_OR, 8, 4),
        /* snprintf(r10-32, 16, fmt on the stack at r10-48, args at r10-64, 16) */
        BPF_LD_IMM64_RAW(1, 0, word(fmt)),
        BPF_STX_MEM(BPF_DW, 10, 1, -48),
        BPF_ST_MEM(BPF_DW, 10, -40, 0),
        BPF_LD_IMM64_RAW(1, 0, g_fmt_args[0]),
        BPF_STX_MEM(BPF_DW, 10, 1, -64),
        BPF_LD_IMM64_RAW(1, 0, g_fmt_args[1]),
        BPF_STX_MEM(BPF_DW, 10, 1, -56),
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -32),
        BPF_MOV64_IMM(2, 16),
        BPF_MOV64_REG(3, 10),
        BPF_ALU64_IMM(BPF_ADD, 3, -48),
        BPF_MOV64_REG(4, 10),
        BPF_ALU64_IMM(BPF_ADD, 4, -64),
        BPF_MOV64_IMM(5, 16),
        BPF_CALL_HELPER(165),                  /* snprintf */
        BPF_JMP_IMM(BPF_JNE, 0, 7, 1),         /* "v=42,7" + NUL */
        BPF_ALU64_IMM(BPF_OR, 8, 8),
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -32),
        BPF_MOV64_IMM(2, 6),
        BPF_MOV64_IMM(3, 1),
        BPF_MOV64_IMM(4, 0),
        BPF_MOV64_IMM(5, 0),
        BPF_CALL_HELPER(H_MEM),
        BPF_MOV64_REG(1, 0),
        BPF_CALL_HELPER(H_RC2),
        BPF_MOV64_REG(1, 8),
        BPF_CALL_HELPER(H_RC),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    return jit(insns, N_INSNS(insns), NULL, err);
}

/* r6..r9 := 6..9 and a word on the stack, call the clobbering host
 * function, then r6+r7+r8+r9 + the stack word + its result (30 + 100 + 77)
 * to H_RC. */
static struct gvm_prog *build_clobbered(struct graft_err *err)
{
    const struct bpf_insn insns[] = {
        BPF_MOV64_IMM(6, 6),
        BPF_MOV64_IMM(7, 7),
        BPF_MOV64_IMM(8, 8),
        BPF_MOV64_IMM(9, 9),
        BPF_ST_MEM(BPF_DW, 10, -8, 100),
        BPF_CALL_HELPER(H_CLOBBER),
        BPF_ALU64_REG(BPF_ADD, 0, 6),
        BPF_ALU64_REG(BPF_ADD, 0, 7),
        BPF_ALU64_REG(BPF_ADD, 0, 8),
        BPF_ALU64_REG(BPF_ADD, 0, 9),
        BPF_LDX_MEM(BPF_DW, 1, 10, -8),
        BPF_ALU64_REG(BPF_ADD, 1, 0),
        BPF_CALL_HELPER(H_RC),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    return jit(insns, N_INSNS(insns), NULL, err);
}

/* get_smp_processor_id (a libc call, sched_getcpu, from the helper), then
 * 4242 to H_RC. */
static struct gvm_prog *build_cpu_user(struct graft_err *err)
{
    const struct bpf_insn insns[] = {
        BPF_CALL_HELPER(8),                    /* get_smp_processor_id */
        BPF_MOV64_IMM(1, 4242),
        BPF_CALL_HELPER(H_RC),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    return jit(insns, N_INSNS(insns), NULL, err);
}

/* ---- the cases ----------------------------------------------------------------- */

static void reset_seen(void)
{
    memset((void *)&g_seen, 0, sizeof(g_seen));
    g_rc = g_rc2 = 0;
    g_rc_runs = 0;
}

static void check_host_side(const char *what, int want_calls)
{
    CHECK(g_seen.calls == want_calls && !g_seen.bad_pkru && !g_seen.bad_stack && !g_seen.bad_ptr,
          "%s: %d host calls (want %d), all with host PKRU (%d bad), on a host stack (%d bad), "
          "given host memory (%d bad)", what, g_seen.calls, want_calls, g_seen.bad_pkru,
          g_seen.bad_stack, g_seen.bad_ptr);
}

static void run_caller(gvm_native_fn ext, const char *what, int (*fn)(int), enum ghook_kind kind,
                       int trap)
{
    struct graft_err err = { 0 };
    struct ghook *h = NULL;
    struct gattach_opts o = { .sz = sizeof(o), .force_trap = trap };
    int rc = gattach_install((void *)fn, kind, (ghook_handler)ext, 0, &o, &h, &err);
    CHECK(rc == 0, "%s: hook installed (%s, method %s)", what, rc ? err.msg : "ok",
          gattach_method_name(gattach_hook_method(h)));
    if (rc)
        return;
    uint64_t want = caller_expect();
    int right = 0;
    reset_seen();
    for (int i = 0; i < 4; i++) {
        g_rc = 0;
        fn(i);
        right += (uint64_t)g_rc == want;
    }
    CHECK(right == 4 && g_rc_runs == 4, "%s: 4 runs, each got the host functions' results "
          "(%d right; last %lld, want %llu)", what, right, (long long)g_rc,
          (unsigned long long)want);
    check_host_side(what, 4 * 7);
    CHECK(giso_rdpkru() == giso_pkru_host(), "%s: host PKRU afterwards", what);
    gattach_remove(h, &err);
}

static void run_syscall_caller(gvm_native_fn ext)
{
    struct graft_err err = { 0 };
    struct gsys_opts so = { .sz = sizeof(so), .flags = GSYS_F_SET_MMAP_MIN_ADDR };
    int rc = gsys_install(&so, &err);
    CHECK(rc == 0, "syscall hooks installed (%s)", rc ? err.msg : gsys_method());
    if (rc)
        return;
    struct gsys_link *l = NULL;
    rc = gsys_attach(GSYS_ENTER, SYS_getppid, (gsys_handler)ext, 0, &l, &err);
    CHECK(rc == 0, "syscall program attached (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    reset_seen();
    int right = 0;
    for (int i = 0; i < 3; i++) {
        g_rc = 0;
        syscall(SYS_getppid);
        right += (uint64_t)g_rc == caller_expect();
    }
    CHECK(right == 3, "syscall program: 3 runs got the host functions' results (%d right)", right);
    check_host_side("syscall program", 3 * 7);
    gsys_detach(l);
}

/* The host function reaches a source entry whose extension calls a host
 * function too: nested, while this thread's extension stack is busy. */
static void run_nested(gvm_native_fn outer, gvm_native_fn inner)
{
    struct graft_err err = { 0 };
    struct gentry_link *l = NULL;
    struct ghook *h = NULL;
    int rc = gattach_entry_install((void *)hc_source, "8@%rdi", (ghook_handler)inner, 0, &l, &err);
    CHECK(rc == 0, "nested: source entry installed (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    rc = gattach_install((void *)hc_entry, GHOOK_ENTRY, (ghook_handler)outer, 0, NULL, &h, &err);
    CHECK(rc == 0, "nested: entry hook installed (%s)", rc ? err.msg : "ok");
    if (rc == 0) {
        reset_seen();
        g_nest = 1;
        g_nest_ret = 0;
        hc_entry(1);
        uint64_t inner_want = byte_sum((const uint8_t *)INNER, 8) + 8;
        CHECK((uint64_t)g_rc == caller_expect() && (uint64_t)g_rc2 == inner_want &&
              g_nest_ret == 42,
              "nested: the outer extension (%lld) and the one its host function reached "
              "(%lld, want %llu) both got their results; the entry returned %ld", (long long)g_rc,
              (long long)g_rc2, (unsigned long long)inner_want, g_nest_ret);
        check_host_side("nested", 7 + 1);
        CHECK(giso_rdpkru() == giso_pkru_host(), "nested: host PKRU afterwards");
        gattach_remove(h, &err);
    }
    gattach_entry_remove(l, &err);
}

/* The extension on its stack calls a host function that returns with its
 * callee-saved registers changed: the extension's registers and stack are
 * what they were (the thunk restored them from the extension stack, keyed).
 * In a child: before the thunk did so, rsp came back from rbx. */
static void run_clobbered(gvm_native_fn ext)
{
    struct graft_err err = { 0 };
    struct ghook *h = NULL;
    int rc = gattach_install((void *)hc_clob, GHOOK_ENTRY, (ghook_handler)ext, 0, NULL, &h,
                             &err);
    CHECK(rc == 0, "clobber: hook installed (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        g_rc = 0;
        hc_clob(1);
        _exit(g_rc == 30 + 100 + 77 && giso_rdpkru() == giso_pkru_host() ? 0 : 1);
    }
    int st = 0;
    pid_t got = pid > 0 ? waitpid(pid, &st, 0) : -1;
    CHECK(got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "a host function returning with rbx, rbp, r12-r15 changed: the extension goes on "
          "with its own registers and stack (child status %#x)", st);
    gattach_remove(h, &err);
}

/* A host function longjmps out of the extension past the trampoline: the
 * host goes on with the host PKRU; the next hook hit on the thread finds
 * the read section and extension stack still taken, sees from the keyed
 * record of the host call that its frames are gone, releases both and
 * runs (docs/isolation.md, "longjmp"). In a forked child. */
static void run_longjmp(gvm_native_fn jumper, gvm_native_fn caller)
{
    struct graft_err err = { 0 };
    struct ghook *h = NULL, *h2 = NULL;
    int rc = gattach_install((void *)hc_jump, GHOOK_ENTRY, (ghook_handler)jumper, 0, NULL, &h, &err);
    CHECK(rc == 0, "longjmp: hook installed (%s)", rc ? err.msg : "ok");
    if (rc || gattach_install((void *)hc_gates, GHOOK_ENTRY, (ghook_handler)caller, 0, NULL, &h2,
                              &err) != 0)
        return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        reset_seen();
        g_jumps = 0;
        if (sigsetjmp(g_out, 1) == 0)
            hc_jump(1);
        int code = 0;
        code |= (g_jumps != 1 || g_rc_runs != 0) << 0;
        code |= (giso_rdpkru() != giso_pkru_host()) << 1;
        struct gattach_stats before, after;
        gattach_get_stats(&before);
        hc_gates(1);                    /* the stale section is released: it runs */
        gattach_get_stats(&after);
        code |= (g_rc_runs == 0 || after.missed_recursion != before.missed_recursion) << 2;
        code |= (giso_rdpkru() != giso_pkru_host()) << 3;
        int runs = g_rc_runs;
        hc_gates(1);                    /* and keeps running, on the extension stack */
        code |= (g_rc_runs <= runs) << 4;
        code |= (giso_rdpkru() != giso_pkru_host()) << 5;
        _exit(code);
    }
    int st = 0;
    pid_t got = pid > 0 ? waitpid(pid, &st, 0) : -1;
    CHECK(got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "longjmp out of an extension: the host goes on with host PKRU and the thread's "
          "later hits run (the stale read section and extension stack are released; child "
          "status %#x)", st);
    gattach_remove(h2, &err);
    gattach_remove(h, &err);
}

static void run_libc_helpers(gvm_native_fn ext)
{
    struct graft_err err = { 0 };
    struct ghook *h = NULL;
    int rc = gattach_install((void *)hc_libc, GHOOK_ENTRY, (ghook_handler)ext, 0, NULL, &h, &err);
    CHECK(rc == 0, "libc helpers: hook installed (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    reset_seen();
    hc_libc(1);
    uint64_t want2 = byte_sum((const uint8_t *)"v=42,7", 6) + 6;
    CHECK(g_rc == 15 && (uint64_t)g_rc2 == want2,
          "libc helpers on the extension stack: ktime, pid_tgid, probe_read_user, snprintf "
          "all right (bits %#llx, want 0xf); a host function read snprintf's output (%lld, "
          "want %llu)", (long long)g_rc, (long long)g_rc2, (unsigned long long)want2);
    check_host_side("libc helpers", 1);
    gattach_remove(h, &err);
}

/* A helper (extension-side code, key open, on the extension stack) calls
 * a libc function that is itself hooked: that hit is nested (skipped and
 * counted) and must leave the helper's PKRU alone - the check for a
 * section left by a longjmp runs only from host code. In a child: a leave
 * gate there would make the extension fault on its own stack. */
static void run_helper_hits_hook(gvm_native_fn cpu_user, gvm_native_fn other)
{
    struct graft_err err = { 0 };
    struct ghook *h = NULL, *h2 = NULL;
    int rc = gattach_install((void *)hc_cpu, GHOOK_ENTRY, (ghook_handler)cpu_user, 0, NULL, &h,
                             &err);
    CHECK(rc == 0, "helper hits a hook: extension hook installed (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    rc = gattach_install((void *)sched_getcpu, GHOOK_ENTRY, (ghook_handler)other, 0, NULL, &h2,
                         &err);
    CHECK(rc == 0, "helper hits a hook: sched_getcpu hooked (%s)", rc ? err.msg : "ok");
    if (rc == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            struct gattach_stats before, after;
            gattach_get_stats(&before);
            uint64_t grants = giso_xstack_grants();
            g_rc = 0;
            hc_cpu(1);
            gattach_get_stats(&after);
            /* no PKU fault on the extension stack had to be let through */
            _exit((g_rc == 4242 ? 0 : 1) |
                  (after.missed_recursion == before.missed_recursion + 1 ? 0 : 2) |
                  (giso_rdpkru() == giso_pkru_host() ? 0 : 4) |
                  (giso_xstack_grants() == grants ? 0 : 8));
        }
        int st = 0;
        pid_t got = pid > 0 ? waitpid(pid, &st, 0) : -1;
        CHECK(got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "a helper's libc call that is hooked is skipped as nested, the helper keeps its "
              "PKRU (no fault let through), the extension finishes, host PKRU afterwards "
              "(child status %#x)", st);
        gattach_remove(h2, &err);
    }
    gattach_remove(h, &err);
}

/* ---- main ----------------------------------------------------------------------- */

static int finish(int pid1)
{
    printf("host calls: %d passed, %d failed\n", g_pass, g_fail);
    fflush(stdout);
    if (pid1)
        tguest_poweroff();
    return g_fail ? 1 : 0;
}

int main(void)
{
    int pid1 = getpid() == 1;
    if (pid1)
        tguest_init();
    tfault_install(SIGSEGV);

    struct graft_err err = { 0 };
    struct giso_opts req = { .sz = sizeof(req), .require = 1 };
    int rc = giso_init(&req, &err);
    printf("isolation: %s (%s)\n", pid1 ? "QEMU TCG" : "native PKU", giso_status());
    CHECK(rc == 0, "isolation on (%s)", rc ? err.msg : giso_status());
    if (rc)
        return finish(pid1);
    rc = gattach_set_isolation(1, &err);
    CHECK(rc == 0, "hooks gated (%s)", rc ? err.msg : "ok");

    struct gmap_def def = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 24,
                            .max_entries = 1 };
    snprintf(def.name, sizeof(def.name), "hc_values");
    struct gmap *map = NULL;
    rc = gmap_create(&def, -1, &map, &err);
    CHECK(rc == 0, "map created (%s)", rc ? err.msg : "ok");
    if (rc)
        return finish(pid1);
    uint32_t key = 0;
    gmap_update_copy(map, &key, VALUE, GMAP_ANY);
    gmap_unlink(gmap_shm_name(map));
    void *vals;
    uint64_t stride, pstride;
    gmap_array_layout(map, &vals, &stride, &pstride);
    g_map_mem = vals;
    g_map_len = stride;
    rc = gmap_protect_key(map, giso_pkey(), &err);
    CHECK(rc == 0, "map tagged with the extension key (%s)", rc ? err.msg : "ok");

    memcpy(g_helpers, ghelper_table(), sizeof(g_helpers));
    struct { int id; gvm_helper_fn fn; uint32_t mem; } host[] = {
        { H_MEM, host_mem, 1u << 0 },
        { H_MEM2, host_mem2, 1u << 0 | 1u << 2 },
        { H_JUMP, host_jump, 0 },
        { H_MEM3, host_mem3, 1u << 1 | 1u << 3 },
        { H_CLOBBER, hc_clobber_fn, 0 },
    };
    for (size_t i = 0; i < N_INSNS(host); i++) {
        g_helpers[host[i].id] = giso_wrap_host_call_mem(host[i].fn, host[i].mem, &err);
        CHECK(g_helpers[host[i].id] != NULL, "host function %d wrapped (%s)", host[i].id,
              g_helpers[host[i].id] ? "ok" : err.msg);
    }
    g_helpers[H_RC] = helper_rc;
    g_helpers[H_RC2] = helper_rc2;
    CHECK(giso_wrap_host_call_mem(host_mem, 3, &err) == NULL && strstr(err.msg, "mask 0x3"),
          "a mask that makes one argument both size and pointer is refused (%s)", err.msg);
    struct gvm_prog *caller = build_caller(map, &err);
    CHECK(caller != NULL, "host-call extension JIT-compiled (%s)", caller ? "ok" : err.msg);
    struct gvm_prog *inner = build_inner(&err);
    struct gvm_prog *jumper = build_jumper(&err);
    struct gvm_prog *libc_user = build_libc_user(&err);
    CHECK(inner && jumper && libc_user, "the other extensions JIT-compiled (%s)",
          inner && jumper && libc_user ? "ok" : err.msg);
    if (!caller || !inner || !jumper || !libc_user)
        return finish(pid1);
    gvm_native_fn ext = gvm_prog_native(caller);

    /* Gates only: the extension's frames on the thread's stack; its map
     * value is still extension memory. */
    run_caller(ext, "gates only: entry", hc_gates, GHOOK_ENTRY, 0);

    rc = gattach_set_ext_stacks(1, &err);
    CHECK(rc == 0, "extension stacks on (%s)", rc ? err.msg : "ok");
    run_caller(ext, "xstack: entry (per-site template)", hc_entry, GHOOK_ENTRY, 0);
    g_xtop = giso_xstack_bound();
    CHECK(g_xtop != 0, "this thread has an extension stack");
    run_caller(ext, "xstack: entry again, stack known", hc_entry, GHOOK_ENTRY, 0);
    run_caller(ext, "xstack: return (per-site template)", hc_ret, GHOOK_RETURN, 0);
    run_caller(ext, "xstack: replace (C path)", hc_replace, GHOOK_REPLACE, 0);
    run_caller(ext, "xstack: int3 (C path)", hc_trap, GHOOK_ENTRY, 1);
    run_syscall_caller(ext);
    run_nested(ext, gvm_prog_native(inner));
    run_libc_helpers(gvm_prog_native(libc_user));
    run_longjmp(gvm_prog_native(jumper), ext);
    struct gvm_prog *cpu_user = build_cpu_user(&err);
    CHECK(cpu_user != NULL, "cpu extension JIT-compiled (%s)", cpu_user ? "ok" : err.msg);
    if (cpu_user) {
        run_helper_hits_hook(gvm_prog_native(cpu_user), ext);
        gvm_prog_free(cpu_user);
    }
    struct gvm_prog *clob = build_clobbered(&err);
    CHECK(clob != NULL, "clobbered-registers extension JIT-compiled (%s)",
          clob ? "ok" : err.msg);
    if (clob) {
        run_clobbered(gvm_prog_native(clob));
        gvm_prog_free(clob);
    }

    gvm_prog_free(caller);
    gvm_prog_free(inner);
    gvm_prog_free(jumper);
    gvm_prog_free(libc_user);
    return finish(pid1);
}
