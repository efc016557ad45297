/*
 * test_isolation_e2e.c - memory protection keys on the live path: real
 * hooks (src/attach) calling a JIT-compiled eBPF extension that updates a
 * map in shared memory (src/maps), with the map's mapping tagged with the
 * extension key.
 *
 * With isolation on it proves: the extension runs with PKRU = ext and keeps
 * counting through every kind of trampoline (per-site entry template,
 * return template, an override hook (per-site fast path), the int3 fallback, a
 * mid-function probe, the syscall dispatcher); a host function the
 * extension calls through giso_wrap_host_call() runs with PKRU = host and
 * the extension continues with PKRU = ext; the host's own read and write of
 * the map fault with SEGV_PKUERR (and the extension still works afterwards);
 * another mapping of the same map (the loader's view) is untouched; the
 * trampolines contain the gates (WRPKRU) while the process scan does not
 * report them. With isolation off (GRAFT_ISOLATION=off, or a CPU without
 * PKU under QEMU) the same hooks run without gates, the status says off and
 * require_isolation is refused.
 *
 * Runs natively and as /init (PID 1) under QEMU (scripts/qemu), printing
 * "E2E-QEMU: pku=yes|no (...)" and "E2E-QEMU: N passed, M failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include "attach/thread_state.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"
#include "maps/maps.h"
#include "vm/vm.h"

#include "tcheck.h"
#include "tfault.h"
#include "tguest.h"

/* ---- faults (tfault.h) --------------------------------------------------- */

/* Write (or read) *p from host code; 1 if it faulted with SEGV_PKUERR on
 * the extension key, 0 if it went through, -1 on another fault. */
static int host_access(volatile uint64_t *p, int write, uint64_t v)
{
    if (sigsetjmp(t_jb, 1) == 0) {
        t_armed = 1;
        if (write)
            *p = v;
        else
            (void)*p;
        t_armed = 0;
        return 0;
    }
    giso_leave();           /* the handler ran with the kernel's PKRU */
    return t_si.si_code == SEGV_PKUERR && t_si.si_pkey == (unsigned)giso_pkey() ? 1 : -1;
}

/* ---- the host ------------------------------------------------------------ */

static volatile int g_sink;
/* k differs between the groups below so no compiler folds them together */
#define HOST_FN(name, k)                                                \
    __attribute__((noinline)) int name(int x)                           \
    {                                                                   \
        g_sink += x + k;                                                \
        __asm__ volatile("" ::: "memory");                              \
        return x * 3 + g_sink;                                          \
    }
HOST_FN(host_entry, 0)
HOST_FN(host_ret, 0)
HOST_FN(host_override, 0)
HOST_FN(host_trap, 0)
HOST_FN(host_xs_entry, 0)
HOST_FN(host_xs_ret, 0)
HOST_FN(host_xs_trap, 0)
HOST_FN(host_xf_entry, 1)
HOST_FN(host_xsig_entry, 1)
HOST_FN(host_rs_entry, 2)
HOST_FN(host_rs_ret, 2)
HOST_FN(host_rs_trap, 2)
HOST_FN(host_xg_entry, 1)
HOST_FN(host_xg_ret, 1)
HOST_FN(host_xg_trap, 1)

/* ---- the extension --------------------------------------------------------- */

#define H_RECORD 200        /* test helper: remember PKRU as the extension sees it */
#define H_HOSTFN 201        /* an EIM-style host function, through the thunk */
#define H_STACK 202         /* test helper: the extension's frame pointer and sum */
#define H_RC 203            /* test helper: remember a value */

static volatile uint32_t g_ext_pkru, g_host_pkru;
static volatile int g_host_calls;

static uint64_t helper_record(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)a, (void)b, (void)c, (void)d, (void)e;
    g_ext_pkru = giso_rdpkru();
    return 0;
}

static uint64_t host_multiply(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    g_host_pkru = giso_rdpkru();
    g_host_calls++;
    return a * b + c + d + e;
}

/* A host function that reads memory it is given. */
static uint64_t host_access_raw(uint64_t p, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b, (void)c, (void)d, (void)e;
    return *(volatile uint64_t *)(uintptr_t)p;
}

static volatile uint64_t g_xs_fp, g_xs_sp, g_xs_sum;
static volatile int g_xs_runs;

static uint64_t helper_stack(uint64_t fp, uint64_t sum, uint64_t c, uint64_t d, uint64_t e)
{
    (void)c, (void)d, (void)e;
    g_xs_fp = fp;                       /* the JIT'd program's r10 */
    g_xs_sp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
    g_xs_sum = sum;
    g_xs_runs++;
    return 0;
}

static gvm_helper_fn g_helpers[BPF_MAX_HELPER_ID];

static int resolve_map(void *arg, uint8_t src, int32_t imm, int32_t next, uint64_t *value,
                       struct graft_err *err)
{
    (void)imm, (void)next;
    if (src != BPF_PSEUDO_MAP_FD)
        return graft_errf(err, -EINVAL, "unexpected ld_imm64 source %u", src);
    *value = (uint64_t)(uintptr_t)arg;
    return 0;
}

/* value[0] += 1; value[1] += host_multiply(5, 7, 0, 0, 0) (= 35). */
static struct gvm_prog *build_ext(struct gmap *map, struct graft_err *err)
{
    const struct bpf_insn insns[] = {
        BPF_CALL_HELPER(H_RECORD),
        BPF_MOV64_IMM(1, 5),
        BPF_MOV64_IMM(2, 7),
        BPF_MOV64_IMM(3, 0),
        BPF_MOV64_IMM(4, 0),
        BPF_MOV64_IMM(5, 0),
        BPF_CALL_HELPER(H_HOSTFN),
        BPF_MOV64_REG(7, 0),
        BPF_ST_MEM(BPF_W, 10, -4, 0),
        BPF_MOV64_REG(2, 10),
        BPF_ALU64_IMM(BPF_ADD, 2, -4),
        BPF_LD_IMM64_RAW(1, BPF_PSEUDO_MAP_FD, 0),
        BPF_CALL_HELPER(1),                    /* map_lookup_elem */
        BPF_JMP_IMM(BPF_JEQ, 0, 0, 6),
        BPF_LDX_MEM(BPF_DW, 1, 0, 0),
        BPF_ALU64_IMM(BPF_ADD, 1, 1),
        BPF_STX_MEM(BPF_DW, 0, 1, 0),
        BPF_LDX_MEM(BPF_DW, 1, 0, 8),
        BPF_ALU64_REG(BPF_ADD, 1, 7),
        BPF_STX_MEM(BPF_DW, 0, 1, 8),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    memcpy(g_helpers, ghelper_table(), sizeof(g_helpers));
    g_helpers[H_RECORD] = helper_record;
    g_helpers[H_HOSTFN] = giso_wrap_host_call(host_multiply, err);
    if (!g_helpers[H_HOSTFN])
        return NULL;
    struct gvm_env env = { .helpers = g_helpers, .resolve_ld_imm64 = resolve_map, .arg = map };
    /* The descriptor in a metadata page, as the agent does: created (and
     * later read and freed) between C gates. */
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env,
                                .desc_alloc = giso_meta_alloc_cb,
                                .desc_free = giso_meta_free_cb };
    struct gvm_prog *prog = NULL;
    giso_enter();
    int rc = gvm_prog_create(insns, sizeof(insns) / sizeof(insns[0]), &po, &prog, err);
    giso_leave();
    return rc < 0 ? NULL : prog;
}

/* JIT-compile a test extension that calls only g_helpers. */
static struct gvm_prog *jit(const struct bpf_insn *insns, size_t n, struct graft_err *err)
{
    struct gvm_env env = { .helpers = g_helpers };
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = GVM_ENGINE_JIT, .env = &env };
    struct gvm_prog *prog = NULL;
    if (gvm_prog_create(insns, n, &po, &prog, err) < 0)
        return NULL;
    return prog;
}

/* Fills its whole 512-byte BPF stack (64 words, word i = 3i + 1), reads it
 * back and sums it (6112), and reports r10 and the sum through H_STACK. */
#define XS_SUM 6112u
static struct gvm_prog *build_stack_ext(struct graft_err *err)
{
    struct bpf_insn insns[64 * 3 + 8];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        insns[n++] = (struct bpf_insn)BPF_ST_MEM(BPF_DW, 10, (int16_t)(-8 * (i + 1)), 3 * i + 1);
    insns[n++] = (struct bpf_insn)BPF_MOV64_IMM(6, 0);
    for (int i = 0; i < 64; i++) {
        insns[n++] = (struct bpf_insn)BPF_LDX_MEM(BPF_DW, 2, 10, (int16_t)(-8 * (i + 1)));
        insns[n++] = (struct bpf_insn)BPF_ALU64_REG(BPF_ADD, 6, 2);
    }
    insns[n++] = (struct bpf_insn)BPF_MOV64_REG(1, 10);
    insns[n++] = (struct bpf_insn)BPF_MOV64_REG(2, 6);
    insns[n++] = (struct bpf_insn)BPF_CALL_HELPER(H_STACK);
    insns[n++] = (struct bpf_insn)BPF_MOV64_IMM(0, 0);
    insns[n++] = (struct bpf_insn)BPF_EXIT_INSN();
    g_helpers[H_STACK] = helper_stack;
    return jit(insns, n, err);
}

static volatile int64_t g_rc_seen = 1;
static uint64_t helper_rc(uint64_t v, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b, (void)c, (void)d, (void)e;
    g_rc_seen = (int64_t)v;
    return 0;
}

/* head, then r0 (the last helper's result) to H_RC, then exit 0. */
static struct gvm_prog *jit_report_rc(const struct bpf_insn *head, size_t n,
                                      struct graft_err *err)
{
    const struct bpf_insn tail[] = {
        BPF_MOV64_REG(1, 0),
        BPF_CALL_HELPER(H_RC),
        BPF_MOV64_IMM(0, 0),
        BPF_EXIT_INSN(),
    };
    struct bpf_insn insns[16];
    size_t nt = sizeof(tail) / sizeof(tail[0]);
    if (n + nt > sizeof(insns) / sizeof(insns[0])) {
        graft_errf(err, -E2BIG, "test program too long");
        return NULL;
    }
    memcpy(insns, head, n * sizeof(*head));
    memcpy(insns + n, tail, sizeof(tail));
    g_helpers[H_RC] = helper_rc;
    return jit(insns, n + nt, err);
}

/* probe_read_user(r10-8, 8, bad) with bad an inaccessible address; the result
 * goes to H_RC. The helper's copy faults (SIGSEGV, turned into -EFAULT by
 * its handler): with extension stacks the signal interrupts code running on
 * the extension stack, so the handler must run on the thread's sigaltstack. */
static struct gvm_prog *build_fault_ext(uint64_t bad, struct graft_err *err)
{
    const struct bpf_insn head[] = {
        BPF_MOV64_REG(1, 10),
        BPF_ALU64_IMM(BPF_ADD, 1, -8),
        BPF_MOV64_IMM(2, 8),
        BPF_LD_IMM64_RAW(3, 0, bad),
        BPF_CALL_HELPER(112),                  /* probe_read_user */
    };
    return jit_report_rc(head, sizeof(head) / sizeof(head[0]), err);
}

/* send_signal_thread(SIGUSR2); the result goes to H_RC. */
static struct gvm_prog *build_signal_ext(struct graft_err *err)
{
    const struct bpf_insn head[] = {
        BPF_MOV64_IMM(1, SIGUSR2),
        BPF_CALL_HELPER(117),                  /* send_signal_thread */
    };
    return jit_report_rc(head, sizeof(head) / sizeof(head[0]), err);
}

/* ---- checks ---------------------------------------------------------------- */

struct world {
    int on;                     /* isolation on */
    struct gmap *map;           /* the agent's view: tagged with the key */
    struct gmap *loader_view;   /* a second mapping, untagged */
    uint64_t *values;           /* map value 0 in the tagged mapping */
    gvm_native_fn ext;
};

/* The counters, read through the untagged mapping (as `graft map dump`). */
static void counters(struct world *w, uint64_t out[2])
{
    uint32_t key = 0;
    uint64_t v[2] = { 0, 0 };
    gmap_lookup_copy(w->loader_view, &key, v);
    out[0] = v[0], out[1] = v[1];
}

/* Count WRPKRUs in the trampoline the 5-byte jump at fn leads to (-2 if
 * the scanner reports them at their real address). */
static void count_one(const struct giso_finding *f, void *arg)
{
    if (f->insn == GISO_INSN_WRPKRU && f->aligned)
        (*(int *)arg)++;
}

static int gates_in_stub(void *fn)
{
    const uint8_t *p = fn;
    if (p[0] != 0xe9)
        return -1;
    int32_t rel;
    memcpy(&rel, p + 1, 4);
    const uint8_t *stub = p + 5 + rel;
    /* A copy at its own address: the stub pages are registered gate ranges,
     * which the scanner (rightly) does not report. */
    static uint8_t copy[4096];        /* GSTUB_SIZE */
    memcpy(copy, stub, sizeof(copy));
    int n = 0, hidden = 0;
    giso_scan_code(copy, sizeof(copy), (uintptr_t)copy, count_one, &n);
    giso_scan_code(stub, sizeof(copy), (uintptr_t)stub, count_one, &hidden);
    return hidden ? -2 : n;
}

static void run_hook(struct world *w, const char *what, int (*fn)(int), enum ghook_kind kind,
                     int force_trap, int off_in_fn)
{
    struct graft_err err = { 0 };
    struct ghook *h = NULL;
    uint64_t before[2], after[2];
    void *addr = (char *)(void *)fn + off_in_fn;
    struct gattach_opts o = { .sz = sizeof(o), .force_trap = force_trap };
    int rc = gattach_install(addr, kind, (ghook_handler)w->ext, 0, &o, &h, &err);
    CHECK(rc == 0, "%s: hook installed (%s, method %s)", what, rc ? err.msg : "ok",
          gattach_method_name(gattach_hook_method(h)));
    if (rc)
        return;
    counters(w, before);
    g_ext_pkru = 0xdeadbeef;
    g_host_pkru = 0xdeadbeef;
    int calls = 0;
    for (int i = 0; i < 10; i++)
        calls += fn(i) >= 0;
    counters(w, after);
    CHECK(after[0] - before[0] == 10 && after[1] - before[1] == 350,
          "%s: the extension ran 10 times and got host_multiply's result each time "
          "(+%llu, +%llu)", what, (unsigned long long)(after[0] - before[0]),
          (unsigned long long)(after[1] - before[1]));
    if (w->on) {
        CHECK(g_ext_pkru == giso_pkru_ext(), "%s: extension ran with PKRU = ext (%#x, want %#x)",
              what, g_ext_pkru, giso_pkru_ext());
        CHECK(g_host_pkru == giso_pkru_host(), "%s: host function it called ran with PKRU = "
              "host (%#x, want %#x)", what, g_host_pkru, giso_pkru_host());
        CHECK(giso_rdpkru() == giso_pkru_host(), "%s: host runs with PKRU = host after the "
              "hook (%#x)", what, giso_rdpkru());
    } else {
        CHECK(g_ext_pkru == 0, "%s: no PKRU switching when off", what);
    }
    if (gattach_hook_method(h) == GATTACH_METHOD_JUMP && off_in_fn == 0 &&
        (kind == GHOOK_ENTRY || kind == GHOOK_RETURN)) {
        int n = gates_in_stub((void *)fn);
        CHECK(w->on ? n == 4 : n == 0, "%s: the per-site trampoline has %d WRPKRU gates "
              "(want %d)", what, n, w->on ? 4 : 0);
    }
    gattach_remove(h, &err);
    (void)calls;
}

static uint64_t sys_ext_hits;
static void run_syscall_hook(struct world *w)
{
    struct graft_err err = { 0 };
    struct gsys_opts so = { .sz = sizeof(so), .flags = GSYS_F_SET_MMAP_MIN_ADDR };
    int rc = gsys_install(&so, &err);
    CHECK(rc == 0, "syscall hooks installed (%s: %s)", rc ? err.msg : gsys_method(),
          gsys_install_note());
    if (rc)
        return;
    struct gsys_link *l = NULL;
    rc = gsys_attach(GSYS_ENTER, SYS_getppid, (gsys_handler)w->ext, 0, &l, &err);
    CHECK(rc == 0, "syscall program attached to getppid (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    uint64_t before[2], after[2];
    counters(w, before);
    g_ext_pkru = 0xdeadbeef;
    for (int i = 0; i < 10; i++)
        syscall(SYS_getppid);
    counters(w, after);
    sys_ext_hits = after[0] - before[0];
    CHECK(sys_ext_hits == 10 && after[1] - before[1] == 350,
          "syscall: the extension ran on each getppid (+%llu)", (unsigned long long)sys_ext_hits);
    CHECK(w->on ? g_ext_pkru == giso_pkru_ext() : g_ext_pkru == 0,
          "syscall: extension PKRU %#x (want %#x)", g_ext_pkru, w->on ? giso_pkru_ext() : 0);
    CHECK(giso_rdpkru() == giso_pkru_host(), "syscall: host PKRU after the syscall");
    gsys_detach(l);
}

/* The helpers' run state: with isolation on it is under the key (the host
 * cannot write it), and get_attach_cookie / get_func_ip still see what each
 * path - entry template, return template, C path (int3) - put there. */
static struct gvm_prog *build_rs_ext(struct graft_err *err)
{
    const struct bpf_insn head[] = {
        BPF_MOV64_REG(6, 1),
        BPF_CALL_HELPER(173),                  /* get_func_ip */
        BPF_MOV64_REG(7, 0),
        BPF_MOV64_REG(1, 6),
        BPF_CALL_HELPER(174),                  /* get_attach_cookie */
        BPF_ALU64_REG(BPF_XOR, 0, 7),          /* cookie ^ ip */
    };
    return jit_report_rc(head, sizeof(head) / sizeof(head[0]), err);
}

static void test_run_state(struct world *w)
{
    struct graft_err err = { 0 };
    struct gvm_prog *p = build_rs_ext(&err);
    CHECK(p != NULL, "run-state extension JIT-compiled (%s)", p ? "ok" : err.msg);
    if (!p)
        return;
    static const struct {
        const char *what;
        int (*fn)(int);
        enum ghook_kind kind;
        int trap;
    } cases[] = {
        { "run state: entry template", host_rs_entry, GHOOK_ENTRY, 0 },
        { "run state: return template", host_rs_ret, GHOOK_RETURN, 0 },
        { "run state: C path (int3)", host_rs_trap, GHOOK_ENTRY, 1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t cookie = 0xc0ffee00u + i;
        struct gattach_opts o = { .sz = sizeof(o), .force_trap = cases[i].trap };
        struct ghook *h = NULL;
        int rc = gattach_install((void *)cases[i].fn, cases[i].kind,
                                 (ghook_handler)gvm_prog_native(p), cookie, &o, &h, &err);
        CHECK(rc == 0, "%s: installed (%s)", cases[i].what, rc ? err.msg : "ok");
        if (rc)
            continue;
        g_rc_seen = 1;
        cases[i].fn(1);
        uint64_t want = cookie ^ (uint64_t)(uintptr_t)cases[i].fn;
        CHECK((uint64_t)g_rc_seen == want, "%s: the extension saw its cookie and function "
              "(%#llx, want %#llx)", cases[i].what, (unsigned long long)g_rc_seen,
              (unsigned long long)want);
        gattach_remove(h, &err);
    }
    volatile uint64_t *rs = (volatile uint64_t *)(void *)ghelper_run_state();
    if (w->on) {
        CHECK(host_access(rs, 1, 0) == 1 && host_access(rs, 0, 0) == 1,
              "host write/read of this thread's run state fault with SEGV_PKUERR");
    } else {
        CHECK(host_access(rs, 0, 0) == 0, "off: the run state is ordinary memory");
    }
    gvm_prog_free(p);
}

static void test_thunk_direct(struct world *w)
{
    struct graft_err err = { 0 };
    gvm_helper_fn t = giso_wrap_host_call(host_multiply, &err);
    CHECK(t != NULL, "giso_wrap_host_call (%s)", t ? "ok" : err.msg);
    if (!t)
        return;
    CHECK(giso_wrap_host_call(host_multiply, &err) == t, "thunks are cached per function");
    if (!w->on) {
        CHECK(t == host_multiply, "off: the wrapper is the function itself (no cost)");
        return;
    }
    CHECK(t != host_multiply, "on: a thunk, not the function");
    giso_enter();
    uint64_t r = t(6, 7, 1, 2, 3);
    uint32_t after = giso_rdpkru();
    giso_leave();
    CHECK(r == 48 && g_host_pkru == giso_pkru_host() && after == giso_pkru_ext(),
          "thunk: the host function got all five arguments (%llu), ran as host (%#x) and "
          "the caller is back as ext (%#x)", (unsigned long long)r, g_host_pkru, after);
    /* The host function, called from the extension side, cannot touch the
     * extension's memory: the thunk really left the gate. */
    int faulted = 0;
    if (sigsetjmp(t_jb, 1) == 0) {
        giso_enter();
        t_armed = 1;
        gvm_helper_fn rd = giso_wrap_host_call(host_access_raw, &err);
        rd((uint64_t)(uintptr_t)w->values, 0, 0, 0, 0);
        t_armed = 0;
        giso_leave();
    } else {
        giso_leave();
        faulted = t_si.si_code == SEGV_PKUERR;
    }
    CHECK(faulted, "a host function called from an extension faults on extension memory");
}

/* ---- main ------------------------------------------------------------------- */

/* Extension stacks. Gates only (the default): the extension's BPF stack
 * (r10) and the helpers it calls are on the hooked thread's stack. With
 * gattach_set_ext_stacks(1) and PKU they are on this thread's extension
 * stack, for the entry and return templates and the C path (replace); the
 * results are right either way; host code cannot touch that stack. Without
 * PKU extension stacks cannot be turned on and nothing is switched. Sites
 * keep the variant they were built with, hence two sets of functions. */
static int in_xstack(uint64_t top, uint64_t a)
{
    return top && a < top && a >= top - GISO_XSTACK_SIZE;
}

static void xstack_cases(struct world *w, gvm_native_fn ext, int stacks)
{
    static const struct {
        const char *what;
        int (*fn)(int);
        enum ghook_kind kind;
    } all[2][3] = {
        { { "gates only: entry (per-site template)", host_xg_entry, GHOOK_ENTRY },
          { "gates only: return (per-site template)", host_xg_ret, GHOOK_RETURN },
          { "gates only: replace (C path)", host_xg_trap, GHOOK_REPLACE } },
        { { "xstack: entry (per-site template)", host_xs_entry, GHOOK_ENTRY },
          { "xstack: return (per-site template)", host_xs_ret, GHOOK_RETURN },
          { "xstack: replace (C path)", host_xs_trap, GHOOK_REPLACE } },
    };
    int here;
    for (size_t i = 0; i < 3; i++) {
        const char *what = all[stacks][i].what;
        int (*fn)(int) = all[stacks][i].fn;
        struct graft_err err = { 0 };
        struct ghook *h = NULL;
        int rc = gattach_install((void *)fn, all[stacks][i].kind, (ghook_handler)ext, 0, NULL,
                                 &h, &err);
        CHECK(rc == 0, "%s: installed (%s, method %s)", what, rc ? err.msg : "ok",
              gattach_method_name(gattach_hook_method(h)));
        if (rc)
            continue;
        g_xs_runs = 0;
        g_xs_fp = g_xs_sp = g_xs_sum = 0;
        int res = 0;
        for (int k = 0; k < 5; k++)
            res += fn(k);
        uint64_t top = giso_xstack_bound();
        uint64_t me = (uint64_t)(uintptr_t)&here;
        /* a replaced function returns the program's r0 (0) */
        CHECK(g_xs_runs == 5 && g_xs_sum == XS_SUM &&
              (all[stacks][i].kind == GHOOK_REPLACE ? res == 0 : res > 0),
              "%s: ran 5 times, read back its 512-byte stack (sum %llu, want %u)",
              what, (unsigned long long)g_xs_sum, XS_SUM);
        if (w->on && stacks) {
            CHECK(in_xstack(top, g_xs_fp) && in_xstack(top, g_xs_sp),
                  "%s: BPF stack %#llx and helper frame %#llx inside the extension stack "
                  "(top %#llx)", what, (unsigned long long)g_xs_fp,
                  (unsigned long long)g_xs_sp, (unsigned long long)top);
        } else {
            CHECK(!in_xstack(top, g_xs_fp) && g_xs_fp < me + (1u << 20) && g_xs_fp + (1u << 20) > me,
                  "%s: the program ran on the thread's stack (%#llx, a local at %#llx)", what,
                  (unsigned long long)g_xs_fp, (unsigned long long)me);
        }
        CHECK(giso_rdpkru() == giso_pkru_host(), "%s: host PKRU afterwards", what);
        gattach_remove(h, &err);
    }
}

/* A host signal handler installed without SA_ONSTACK, interrupting an
 * extension on its stack (the extension signals its own thread): the
 * kernel starts the handler there with the key closed; graft's SIGSEGV
 * handler must let it run, and without that the process dies. */
static volatile uint64_t g_hsig_frame;
static volatile int g_hsig_runs;

static void on_usr2(int sig)
{
    volatile int here = sig;
    g_hsig_frame = (uint64_t)(uintptr_t)&here;
    g_hsig_runs++;
}

static void test_xstack_signal(void)
{
    struct graft_err err = { 0 };
    struct gvm_prog *sp = build_signal_ext(&err);
    CHECK(sp != NULL, "signalling extension JIT-compiled (%s)", sp ? "ok" : err.msg);
    struct ghook *h = NULL;
    if (!sp || gattach_install((void *)host_xsig_entry, GHOOK_ENTRY,
                               (ghook_handler)gvm_prog_native(sp), 0, NULL, &h, &err) != 0) {
        CHECK(0, "signal case: hook installed (%s)", err.msg);
        gvm_prog_free(sp);
        return;
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;             /* no SA_ONSTACK */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, &old);
    uint64_t grants = giso_xstack_grants();
    g_rc_seen = 1;
    g_hsig_runs = 0;
    int r = host_xsig_entry(2);
    uint64_t top = giso_xstack_bound();
    CHECK(g_hsig_runs == 1 && g_rc_seen == 0 && r != 0,
          "send_signal_thread from the extension: the host's handler ran (%d) and the "
          "extension went on (rc %lld)", g_hsig_runs, (long long)g_rc_seen);
    CHECK(in_xstack(top, g_hsig_frame), "that handler's frame was on the extension stack "
          "(%#llx, top %#llx)", (unsigned long long)g_hsig_frame, (unsigned long long)top);
    CHECK(giso_xstack_grants() == grants + 1, "graft opened the key for it once (%llu)",
          (unsigned long long)(giso_xstack_grants() - grants));
    CHECK(giso_rdpkru() == giso_pkru_host(), "signal case: host PKRU afterwards");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        ghelper_safe_mem_set_filter(NULL);
        host_xsig_entry(2);
        _exit(g_hsig_runs == 2 ? 0 : 3);
    }
    int st = 0;
    pid_t got = pid > 0 ? waitpid(pid, &st, 0) : -1;
    CHECK(got == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
          "without graft's filter the same handler kills the process (status %#x)", st);
    sigaction(SIGUSR2, &old, NULL);
    gattach_remove(h, &err);
    gvm_prog_free(sp);
}

/* The per-thread state that decides where an extension runs lives in the
 * thread's keyed control block; struct gthread only holds host-side hints
 * and a candidate pointer, validated after the entry gate (issue 15). */
static void xctl_cases(gvm_native_fn ext)
{
    struct graft_err err = { 0 };
    struct gthread *t = gthread_self();
    uint64_t top = giso_xstack_bound();
    CHECK(t && t->xctl && top, "this thread has a keyed control block and a stack");
    if (!t || !t->xctl || !top)
        return;
    volatile uint64_t *blk = (volatile uint64_t *)(void *)t->xctl;
    int wr = host_access(blk + 1, 1, 0x1000), rd = host_access(blk, 0, 0);
    CHECK(wr == 1 && rd == 1, "host write/read of the control block (stack top, owner) fault "
          "with SEGV_PKUERR (%d, %d)", wr, rd);
    struct ghook *h = NULL;
    int rc = gattach_install((void *)host_xs_entry, GHOOK_ENTRY, (ghook_handler)ext, 0, NULL,
                             &h, &err);
    CHECK(rc == 0, "xctl: hook installed (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    /* A host write that points the stack hint at host memory: the template
     * still runs the extension on the real stack (the keyed block's). */
    static uint8_t forged[16384] __attribute__((aligned(16)));
    uint64_t ftop = (uint64_t)(uintptr_t)(forged + sizeof(forged));
    t->xtop = ftop;
    g_xs_runs = 0;
    g_xs_fp = 0;
    host_xs_entry(1);
    CHECK(g_xs_runs == 1 && in_xstack(top, g_xs_fp) && t->xtop == top,
          "a host-forged gthread.xtop is ignored: the extension ran on its keyed stack "
          "(BPF stack %#llx, forged top %#llx) and the hint was put right",
          (unsigned long long)g_xs_fp, (unsigned long long)ftop);
    /* A host write that points the run-state candidate at a forged block in
     * host memory (with this thread's FS base as owner): the template traps
     * after its entry gate instead of writing through it. In a child. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        static uint64_t fake[64] __attribute__((aligned(256)));
        uint64_t fs;
        __asm__ volatile("rdfsbase %0" : "=r"(fs));
        fake[0] = fs;
        fake[1] = fake[2] = ftop;
        t->rs = (struct ghelper_run *)(void *)(fake + 8);
        host_xs_entry(1);
        _exit(fake[8] != 0 ? 3 : 4);    /* not trapped (3: it wrote through it) */
    }
    int st = 0;
    pid_t got = pid > 0 ? waitpid(pid, &st, 0) : -1;
    CHECK(got == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGILL,
          "a host-forged run-state/control-block pointer traps after the entry gate (child "
          "status %#x)", st);
    gattach_remove(h, &err);
}

/* Code graft emits into its gate ranges (which the process scan skips)
 * must not carry a WRPKRU/XRSTOR byte pattern (issue 15): a function whose
 * first instruction hides one (`mov eax, 0xef010f90`: b8 90 0f 01 ef)
 * would have it copied into its stub; the hook is refused instead. With
 * isolation on, so is a host-call thunk for a function whose address holds
 * the bytes 0f 01 ef. */
static void test_emitted_patterns(struct world *w, gvm_native_fn ext)
{
    struct graft_err err = { 0 };
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        CHECK(0, "mmap for the crafted function");
        return;
    }
    static const uint8_t fn_bytes[] = { 0xb8, 0x90, 0x0f, 0x01, 0xef,   /* mov eax, 0xef010f90 */
                                        0x90, 0x90, 0x90, 0xc3 };       /* nop x3; ret */
    memset(page, 0xcc, 4096);
    memcpy(page, fn_bytes, sizeof(fn_bytes));
    mprotect(page, 4096, PROT_READ | PROT_EXEC);
    struct ghook *h = NULL;
    int rc = gattach_install(page, GHOOK_ENTRY, (ghook_handler)ext, 0, NULL, &h, &err);
    CHECK(rc == -ENOTSUP && strstr(err.msg, "WRPKRU/XRSTOR byte pattern") &&
              strstr(err.msg, "relocated"),
          "a function whose relocated entry hides a WRPKRU is not hooked (%d: %s)", rc,
          err.msg);
    if (rc == 0)
        gattach_remove(h, &err);
    int r = ((int (*)(void))(void *)page)();
    CHECK(r == (int)0xef010f90, "the function still runs unpatched (%#x)", r);
    munmap(page, 4096);
    if (w->on) {
        gvm_helper_fn bad = (gvm_helper_fn)(uintptr_t)0x7fef010f1000ull;   /* never called */
        memset(&err, 0, sizeof(err));
        gvm_helper_fn th = giso_wrap_host_call(bad, &err);
        CHECK(th == NULL && strstr(err.msg, "stray WRPKRU/XRSTOR"),
              "a host-call thunk whose immediate would hold 0f 01 ef is refused (%s)",
              err.msg);
    }
}

static void test_xstack(struct world *w, gvm_native_fn ext)
{
    struct graft_err err = { 0 };
    xstack_cases(w, ext, 0);
    CHECK(!gattach_ext_stacks() && giso_xstack_bound() == 0,
          "gates only: no extension stack was made");
    int rc = gattach_set_ext_stacks(1, &err);
    if (!w->on) {
        CHECK(rc == -ENOTSUP && strstr(err.msg, "need isolation on"),
              "off: extension stacks are refused (%s)", err.msg);
        return;
    }
    CHECK(rc == 0 && gattach_ext_stacks(), "extension stacks on (%s)", rc ? err.msg : "ok");
    xstack_cases(w, ext, 1);
    uint64_t top = giso_xstack_bound();
    CHECK(top != 0, "this thread has an extension stack (top %#llx)", (unsigned long long)top);
    /* The syscall dispatcher's way onto it (gsys_install ran before). */
    struct gsys_link *l = NULL;
    rc = gsys_attach(GSYS_ENTER, SYS_getppid, (gsys_handler)ext, 0, &l, &err);
    CHECK(rc == 0, "xstack: syscall program attached (%s)", rc ? err.msg : "ok");
    if (rc == 0) {
        g_xs_runs = 0;
        g_xs_fp = g_xs_sp = g_xs_sum = 0;
        for (int i = 0; i < 3; i++)
            syscall(SYS_getppid);
        CHECK(g_xs_runs == 3 && g_xs_sum == XS_SUM && in_xstack(top, g_xs_fp) &&
              in_xstack(top, g_xs_sp) && giso_rdpkru() == giso_pkru_host(),
              "xstack: syscall hook ran 3 times on the extension stack (BPF stack %#llx), "
              "host PKRU afterwards", (unsigned long long)g_xs_fp);
        gsys_detach(l);
    }
    xctl_cases(ext);
    if (top) {
        int wr = host_access((volatile uint64_t *)(uintptr_t)(top - 64), 1, 42);
        int rd = host_access((volatile uint64_t *)(uintptr_t)(top - GISO_XSTACK_SIZE), 0, 0);
        CHECK(wr == 1 && rd == 1, "host write/read of the extension stack fault with "
              "SEGV_PKUERR (%d, %d)", wr, rd);
    }
    /* A fault handled by a signal while the extension runs on its stack. */
    void *gone = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct gvm_prog *fp = build_fault_ext((uint64_t)(uintptr_t)gone, &err);
    CHECK(fp != NULL, "faulting extension JIT-compiled (%s)", fp ? "ok" : err.msg);
    struct ghook *h = NULL;
    if (fp && gattach_install((void *)host_xf_entry, GHOOK_ENTRY,
                              (ghook_handler)gvm_prog_native(fp), 0, NULL, &h, &err) == 0) {
        g_rc_seen = 1;
        int r = host_xf_entry(3);
        stack_t ss;
        CHECK(g_rc_seen == -EFAULT && r != 0,
              "probe_read_user of a PROT_NONE page from the extension stack: -EFAULT, "
              "the process lives on (rc %lld)", (long long)g_rc_seen);
        CHECK(sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_DISABLE),
              "the thread got a sigaltstack for graft's handlers");
        gattach_remove(h, &err);
    }
    gvm_prog_free(fp);
    munmap(gone, 4096);
    test_xstack_signal();
    gattach_set_ext_stacks(0, &err);
}

int main(void)
{
    int pid1 = getpid() == 1;
    const char *expect = getenv("graft_expect_pku");     /* QEMU boot argument */
    if (pid1)
        tguest_init();
    tfault_install(SIGSEGV);

    struct graft_err err = { 0 };
    struct world w = { 0 };
    void *page = NULL;          /* the map handle's, once moved */
    int rc = giso_init(NULL, &err);
    CHECK(rc == 0, "giso_init: %s", giso_status());
    w.on = giso_enabled();
    char summary[1024];
    int stray_before = giso_scan_summary(summary, sizeof(summary), &err);
    printf("%s\n", summary);
    CHECK(strncmp(summary, giso_status(), strlen(giso_status())) == 0 &&
          (!w.on || strstr(summary, "stray WRPKRU/XRSTOR")),
          "the load-time summary starts with the status and, when on, reports the scan");
    if (pid1 && expect && strcmp(expect, "0") == 0)
        CHECK(!w.on && strstr(giso_status(), "CPU has no PKU"), "no PKU in the guest: %s",
              giso_status());
    else if (pid1)
        CHECK(w.on, "PKU in the guest: %s", giso_status());
    if (!w.on) {
        struct giso_opts req = { .sz = sizeof(req), .require = 1 };
        struct graft_err e2 = { 0 };
        CHECK(giso_init(&req, &e2) == -ENOTSUP && strstr(e2.msg, "isolation required"),
              "off: require_isolation is refused: %s", e2.msg);
        CHECK(gattach_set_isolation(1, &e2) == -ENOTSUP, "off: hooks cannot be gated: %s",
              e2.msg);
    } else {
        rc = gattach_set_isolation(1, &err);
        CHECK(rc == 0 && gattach_isolation(), "gattach_set_isolation(1) (%s)",
              rc ? err.msg : "ok");
    }

    struct gmap_def def = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 16,
                            .max_entries = 1 };
    snprintf(def.name, sizeof(def.name), "e2e_counts");
    rc = gmap_create(&def, -1, &w.map, &err);
    CHECK(rc == 0, "map created (%s)", rc ? err.msg : gmap_shm_name(w.map));
    if (rc)
        goto out;
    rc = gmap_open(gmap_shm_name(w.map), &w.loader_view, &err);
    CHECK(rc == 0, "second (loader) mapping opened (%s)", rc ? err.msg : "ok");
    if (rc)
        goto out;
    void *vals;
    uint64_t stride, pstride;
    gmap_array_layout(w.map, &vals, &stride, &pstride);
    w.values = vals;
    if (w.on) {
        rc = gmap_protect_key(w.map, giso_pkey(), &err);
        CHECK(rc == 0, "map tagged with the extension key (%s)", rc ? err.msg : "ok");
        CHECK(gmap_get_def(w.map)->max_entries == 1 && gmap_memory_bytes(w.map) > 0,
              "the definition stays readable by the host after tagging");
    }
    /* The handle leaves the heap for a metadata page (the agent's way). */
    page = giso_meta_alloc(gmap_handle_size(), &err);
    CHECK(page != NULL, "metadata page for the map handle (%s)", page ? "ok" : err.msg);
    if (!page)
        goto out;
    giso_enter();
    w.map = gmap_handle_move(w.map, page);
    uint64_t first_word = *(volatile uint64_t *)page;
    giso_leave();
    if (w.on) {
        int hw = host_access((volatile uint64_t *)page, 1, first_word);
        int hr = host_access((volatile uint64_t *)page, 0, 0);
        CHECK(hw == 1 && hr == 1, "host write/read of the map's handle fault with "
              "SEGV_PKUERR (%d, %d)", hw, hr);
    }

    struct gvm_prog *prog = build_ext(w.map, &err);
    CHECK(prog != NULL, "extension JIT-compiled (%s)", prog ? "ok" : err.msg);
    if (!prog)
        goto out;
    giso_enter();
    w.ext = gvm_prog_native(prog);
    giso_leave();
    if (w.on)
        CHECK(host_access((volatile uint64_t *)(void *)prog, 0, 0) == 1,
              "host read of the program's descriptor faults with SEGV_PKUERR");

    run_hook(&w, "entry (per-site template)", host_entry, GHOOK_ENTRY, 0, 0);
    run_hook(&w, "return (per-site template)", host_ret, GHOOK_RETURN, 0, 0);
    run_hook(&w, "override (per-site template)", host_override, GHOOK_OVERRIDE, 0, 0);
    run_hook(&w, "int3 fallback", host_trap, GHOOK_ENTRY, 1, 0);

    /* The host touching extension state. */
    int wr = host_access(w.values, 1, 12345);
    int rd = host_access(w.values, 0, 0);
    if (w.on) {
        CHECK(wr == 1, "host write to the map faults with SEGV_PKUERR on pkey %d (%d)",
              giso_pkey(), wr);
        CHECK(rd == 1, "host read of the map faults with SEGV_PKUERR (%d)", rd);
    } else {
        CHECK(wr == 0 && rd == 0, "off: the host can write the map (%d, %d)", wr, rd);
    }
    uint64_t c[2];
    counters(&w, c);
    CHECK(w.on ? c[0] == 40 : c[0] == 12345, "the faulting write changed nothing when on "
          "(counter %llu)", (unsigned long long)c[0]);
    if (!w.on) {
        uint64_t v[2] = { 40, c[1] };
        uint32_t k = 0;
        gmap_update_copy(w.loader_view, &k, v, GMAP_ANY);
    }
    run_hook(&w, "entry again after the host's fault", host_entry, GHOOK_ENTRY, 0, 0);
    test_thunk_direct(&w);
    test_run_state(&w);

    int stray_after = giso_scan_summary(summary, sizeof(summary), &err);
    CHECK(stray_after == stray_before, "the scan does not report graft's gates "
          "(%d findings before hooks, %d after)", stray_before, stray_after);

    run_syscall_hook(&w);
    struct gvm_prog *xprog = build_stack_ext(&err);
    CHECK(xprog != NULL, "stack-filling extension JIT-compiled (%s)", xprog ? "ok" : err.msg);
    if (xprog) {
        test_xstack(&w, gvm_prog_native(xprog));
        test_emitted_patterns(&w, gvm_prog_native(xprog));
        gvm_prog_free(xprog);
    }
    counters(&w, c);
    CHECK(c[0] == 60 && c[1] == 60 * 35, "total: 60 extension runs (%llu, %llu)",
          (unsigned long long)c[0], (unsigned long long)c[1]);
    giso_enter();
    gvm_prog_free(prog);       /* every hook is removed, the link detached */
    giso_leave();
out:
    if (w.map) {
        int moved = (void *)w.map == page;
        giso_enter();
        gmap_unlink(gmap_shm_name(w.map));
        gmap_close(w.map);
        giso_leave();
        if (moved)
            giso_meta_free(page, gmap_handle_size());
    }
    gmap_close(w.loader_view);
    if (pid1) {
        printf("E2E-QEMU: pku=%s (%s)\n", w.on ? "yes" : "no", giso_status());
        printf("E2E-QEMU: %d passed, %d failed\n", g_pass, g_fail);
        tguest_poweroff();
    }
    printf("isolation e2e (%s): %d passed, %d failed\n", giso_status(), g_pass, g_fail);
    return g_fail ? 1 : 0;
}
