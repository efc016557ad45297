/*
 * test_isolation.c - the MPK isolation component, end to end.
 *
 * Runs in two settings with the same code:
 *  - natively under ctest: every check that needs PKU runs when this CPU has
 *    it (and is reported as SKIP with the reason when it truly has not);
 *  - as /init (PID 1) of an initramfs under QEMU full-system emulation
 *    (scripts/qemu/run-initramfs.sh), where -cpu max always exposes PKU: it
 *    mounts /proc, runs everything, prints "ISOLATION-QEMU: pku=yes|no" and
 *    "ISOLATION-QEMU: N passed, M failed" on the console and powers off.
 * --require-pku makes missing PKU a failure instead of a skip.
 *
 * Checks: (1) detection agrees with cpuid, /proc/cpuinfo and a pkey_alloc
 * probe; (2) host reads and writes of protected shared and private pages
 * fault with SEGV_PKUERR, work between enter/leave gates (the C gates and
 * emitted gate bytes in an RX page), fault again after; a JIT-compiled eBPF
 * program increments a counter in protected memory between gates; a gate
 * entered at its WRPKRU with a forged eax traps; new threads start as host;
 * (3) the scanner finds planted WRPKRU/XRSTOR/XRSTORS, skips registered gate
 * ranges and ignores 0f 01 ef inside another instruction; (4) forced-off
 * isolation reports off and require fails with a clear message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cpuid.h>

#include "isolation/isolation.h"
#include "vm/vm.h"

#include "tcheck.h"
#include "tfault.h"

/* ---- planted instructions for the scanner ---------------------------- */

void iso_planted_wrpkru(void);
void iso_planted_xrstor(void);
void iso_planted_xrstors(void);
void iso_planted_gate(void);
void iso_planted_hidden(void);
__asm__(
    ".text\n"
    ".globl iso_planted_wrpkru\n.type iso_planted_wrpkru,@function\n"
    "iso_planted_wrpkru:\n xor %ecx,%ecx\n xor %edx,%edx\n .byte 0x0f,0x01,0xef\n ret\n"
    ".size iso_planted_wrpkru, .-iso_planted_wrpkru\n"
    ".globl iso_planted_xrstor\n.type iso_planted_xrstor,@function\n"
    "iso_planted_xrstor:\n xrstor (%rdi)\n ret\n"
    ".size iso_planted_xrstor, .-iso_planted_xrstor\n"
    ".globl iso_planted_xrstors\n.type iso_planted_xrstors,@function\n"
    "iso_planted_xrstors:\n xrstors64 (%rdi)\n ret\n"
    ".size iso_planted_xrstors, .-iso_planted_xrstors\n"
    ".globl iso_planted_gate\n.type iso_planted_gate,@function\n"
    "iso_planted_gate:\n .byte 0x0f,0x01,0xef\n ret\n"
    ".size iso_planted_gate, .-iso_planted_gate\n"
    /* b8 90 0f 01 ef c3: the wrpkru bytes are the mov's immediate */
    ".globl iso_planted_hidden\n.type iso_planted_hidden,@function\n"
    "iso_planted_hidden:\n mov $0xef010f90, %eax\n ret\n"
    ".size iso_planted_hidden, .-iso_planted_hidden\n");

/* ---- catching faults (tfault.h) ------------------------------------------ */

/* The kernel runs signal handlers with its default PKRU and siglongjmp does
 * not restore it, so after a caught fault (always taken in host mode here)
 * put the host value back. */
static void after_fault(void)
{
    giso_leave();
}

/* 0 if the access worked, else the signal; *si gets the details. */
static int try_access(volatile uint64_t *p, int write, uint64_t *val, siginfo_t *si)
{
    int sig = sigsetjmp(t_jb, 1);
    if (sig == 0) {
        t_armed = 1;
        if (write)
            *p = *val;
        else
            *val = *p;
        t_armed = 0;
        return 0;
    }
    *si = t_si;
    after_fault();
    return sig;
}

static int is_pku_fault(int sig, const siginfo_t *si, const void *addr)
{
    return sig == SIGSEGV && si->si_code == SEGV_PKUERR && si->si_addr == addr &&
           (int)si->si_pkey == giso_pkey();
}

static void expect_fault(volatile uint64_t *p, int write, const char *what)
{
    uint64_t v = 7;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int sig = try_access(p, write, &v, &si);
    CHECK(is_pku_fault(sig, &si, (const void *)p),
          "%s: host %s faults (sig %d, si_code %d, si_pkey %d, want SIGSEGV/SEGV_PKUERR/pkey %d)",
          what, write ? "write" : "read", sig, si.si_code, sig ? (int)si.si_pkey : -1,
          giso_pkey());
}

static void expect_access(volatile uint64_t *p, uint64_t want_old, const char *what)
{
    uint64_t v = 0, nv = want_old + 1;
    siginfo_t si;
    int r = try_access(p, 0, &v, &si);
    int w = r == 0 ? try_access(p, 1, &nv, &si) : -1;
    CHECK(r == 0 && w == 0 && v == want_old && *p == want_old + 1,
          "%s: read+write work (read sig %d value %llu, write sig %d)", what, r,
          (unsigned long long)v, w);
}

/* ---- (1) detection ----------------------------------------------------- */

static int cpuinfo_has_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    int found = -1;                     /* -1: could not tell */
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        found = 0;
        for (char *t = strtok(strchr(line, ':') + 1, " \n"); t; t = strtok(NULL, " \n"))
            if (strcmp(t, flag) == 0)
                found = 1;
        break;
    }
    fclose(f);
    return found;
}

static int test_detection(int *pku_usable)
{
    unsigned a, b, c = 0, d;
    struct giso_cpu cpu;
    int have7 = __get_cpuid_count(7, 0, &a, &b, &c, &d);
    giso_cpu_features(&cpu);
    CHECK(cpu.pku == (have7 && (c >> 3 & 1)) && cpu.ospke == (have7 && (c >> 4 & 1)),
          "cpuid: giso says pku=%d ospke=%d, cpuid leaf 7 ecx=%#x", cpu.pku, cpu.ospke, c);
    int fpku = cpuinfo_has_flag("pku"), fospke = cpuinfo_has_flag("ospke");
    if (fpku >= 0)
        CHECK(fpku == cpu.pku && fospke == cpu.ospke,
              "/proc/cpuinfo flags agree (pku=%d ospke=%d)", fpku, fospke);

    /* An independent probe, before giso takes its key. */
    int probe = -1, probe_errno = 0;
    if (cpu.pku && cpu.ospke) {
        probe = pkey_alloc(0, 0);
        probe_errno = errno;
        if (probe >= 0)
            pkey_free(probe);
    }
    *pku_usable = probe >= 0;

    struct graft_err err = { 0 };
    int rc = giso_init(NULL, &err);
    CHECK(rc == 0, "giso_init without require succeeds (%s)", err.msg);
    CHECK(giso_enabled() == *pku_usable, "giso_enabled()=%d agrees with the pkey_alloc "
          "probe (%d, errno %d): %s", giso_enabled(), probe, probe_errno, giso_status());
    char want[64];
    if (giso_enabled()) {
        snprintf(want, sizeof(want), "isolation: on (pkey %d)", giso_pkey());
        CHECK(giso_pkey() > 0 && giso_pkey() < 16 && strcmp(giso_status(), want) == 0,
              "status \"%s\"", giso_status());
        uint32_t bits = 3u << (2 * giso_pkey());
        CHECK((giso_pkru_host() & bits) == bits && (giso_pkru_ext() & bits) == 0 &&
              (giso_pkru_host() & ~bits) == (giso_pkru_ext() & ~bits),
              "PKRU host %#x / ext %#x differ exactly in the key's AD|WD bits",
              giso_pkru_host(), giso_pkru_ext());
        CHECK(giso_rdpkru() == giso_pkru_host(), "after init this thread runs as host "
              "(PKRU %#x)", giso_rdpkru());
        CHECK(giso_init(NULL, &err) == 0 && giso_enabled(), "giso_init is idempotent");
        struct giso_opts req = { .sz = sizeof(req), .require = 1 };
        CHECK(giso_init(&req, &err) == 0, "require_isolation succeeds when on");
    } else if (!cpu.pku) {
        CHECK(strcmp(giso_status(), "isolation: off (CPU has no PKU)") == 0,
              "status \"%s\"", giso_status());
    } else {
        CHECK(strncmp(giso_status(), "isolation: off (", 16) == 0, "status \"%s\"",
              giso_status());
    }
    printf("%s\n", giso_status());
    return 0;
}

/* ---- (2) protection ---------------------------------------------------- */

typedef void (*gate_fn)(void);

struct gates {
    uint8_t *page;
    gate_fn enter, leave;
    size_t wrpkru_off;              /* offset of the WRPKRU in the leave gate */
};

static int make_gates(struct gates *g)
{
    g->page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->page == MAP_FAILED)
        return -1;
    size_t n1 = giso_emit_gate(g->page, GISO_GATE_MAX, giso_pkru_ext());
    g->page[n1] = 0xc3;
    size_t n2 = giso_emit_gate(g->page + 64, GISO_GATE_MAX, giso_pkru_host());
    g->page[64 + n2] = 0xc3;
    uint8_t *w = memmem(g->page + 64, n2, "\x0f\x01\xef", 3);
    g->wrpkru_off = w ? (size_t)(w - g->page) : 0;
    CHECK(n1 > 0 && n1 == n2 && n1 <= GISO_GATE_MAX && w,
          "giso_emit_gate emits %zu bytes", n1);
    CHECK(giso_emit_gate(g->page, 8, 0) == 0, "giso_emit_gate refuses a short buffer");
    if (mprotect(g->page, 4096, PROT_READ | PROT_EXEC) != 0)
        return -1;
    giso_register_gate_range(g->page, 4096);
    g->enter = (gate_fn)(void *)g->page;
    g->leave = (gate_fn)(void *)(g->page + 64);
    return 0;
}

/* Call the WRPKRU inside the leave gate directly with eax = pkru, as a
 * control-flow hijack would; the gate's check must trap with ud2. */
static int jump_into_gate(const struct gates *g, uint32_t pkru)
{
    int sig = sigsetjmp(t_jb, 1);
    if (sig == 0) {
        t_armed = 1;
        void *target = g->page + g->wrpkru_off;
        __asm__ volatile("xor %%ecx, %%ecx\n\txor %%edx, %%edx\n\tcall *%1"
                         : "+a"(pkru) : "r"(target) : "rcx", "rdx", "memory", "cc");
        t_armed = 0;
        return 0;
    }
    after_fault();
    return sig;
}

static uint64_t run_ext(gvm_native_fn fn, volatile uint64_t *counter)
{
    return fn((void *)counter, sizeof(*counter));
}

static void *thread_probe(void *arg)
{
    volatile uint64_t *p = arg;
    uint64_t v;
    siginfo_t si;
    CHECK(giso_rdpkru() == giso_pkru_host(), "new thread starts with host PKRU %#x",
          giso_rdpkru());
    int sig = try_access(p, 0, &v, &si);
    CHECK(is_pku_fault(sig, &si, (const void *)p), "new thread: host read faults (sig %d code %d)", sig, sig ? si.si_code : 0);
    giso_enter();
    sig = try_access(p, 0, &v, &si);
    giso_leave();
    CHECK(sig == 0, "new thread: read works between gates");
    return NULL;
}

static void test_protection(void)
{
    struct graft_err err = { 0 };
    volatile uint64_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    volatile uint64_t *stack = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (shared == MAP_FAILED || stack == MAP_FAILED) {
        CHECK(0, "mmap test pages: %s", strerror(errno));
        return;
    }
    *shared = 41;
    stack[511] = 100;
    CHECK(giso_protect((void *)shared, 4096, PROT_READ | PROT_WRITE, &err) == 0,
          "giso_protect shared page (%s)", err.msg);
    CHECK(giso_protect((void *)stack, 4096, PROT_READ | PROT_WRITE, &err) == 0,
          "giso_protect stack page (%s)", err.msg);
    CHECK(giso_protect((void *)((uintptr_t)shared + 1), 4096, PROT_READ, &err) < 0 &&
          strstr(err.msg, "pkey_mprotect"), "giso_protect rejects a misaligned address: %s",
          err.msg);

    expect_fault(shared, 0, "shared page");
    expect_fault(shared, 1, "shared page");
    expect_fault(&stack[511], 0, "stack page");
    expect_fault(&stack[511], 1, "stack page");

    giso_enter();
    CHECK(giso_rdpkru() == giso_pkru_ext(), "C enter gate sets PKRU to ext %#x",
          giso_pkru_ext());
    expect_access(shared, 41, "C gates, shared page");
    expect_access(&stack[511], 100, "C gates, stack page");
    giso_leave();
    expect_fault(shared, 1, "after C leave gate, shared page");
    expect_fault(&stack[511], 0, "after C leave gate, stack page");

    struct gates g;
    if (make_gates(&g) != 0) {
        CHECK(0, "gate page setup: %s", strerror(errno));
        return;
    }
    g.enter();
    CHECK(giso_rdpkru() == giso_pkru_ext(), "emitted enter gate sets PKRU");
    expect_access(shared, 42, "emitted gates, shared page");
    expect_access(&stack[511], 101, "emitted gates, stack page");
    g.leave();
    CHECK(giso_rdpkru() == giso_pkru_host(), "emitted leave gate restores host PKRU");
    expect_fault(shared, 0, "after emitted leave gate, shared page");
    expect_fault(&stack[511], 1, "after emitted leave gate, stack page");

    int sig = jump_into_gate(&g, giso_pkru_ext());
    CHECK(sig == SIGILL, "jumping to a gate's WRPKRU with a forged eax traps (sig %d)", sig);
    CHECK(giso_rdpkru() == giso_pkru_host(), "host PKRU is back after the trap");

    /* An extension: JIT-compiled eBPF that increments *(u64 *)ctx. */
    const struct bpf_insn insns[] = {
        BPF_LDX_MEM(BPF_DW, 2, 1, 0),
        BPF_ALU64_IMM(BPF_ADD, 2, 1),
        BPF_STX_MEM(BPF_DW, 1, 2, 0),
        BPF_MOV64_REG(0, 2),
        BPF_EXIT_INSN(),
    };
    struct gvm_prog_opts po = { .sz = sizeof(po), .engine = GVM_ENGINE_JIT };
    struct gvm_prog *prog = NULL;
    int rc = gvm_prog_create(insns, 5, &po, &prog, &err);
    gvm_native_fn fn = rc == 0 ? gvm_prog_native(prog) : NULL;
    CHECK(fn != NULL, "JIT-compile the counter extension (%s)", rc ? err.msg : "ok");
    if (fn) {
        giso_enter();
        uint64_t r1 = run_ext(fn, shared);
        giso_leave();
        g.enter();
        uint64_t r2 = run_ext(fn, shared);
        g.leave();
        CHECK(r1 == 44 && r2 == 45, "extension increments the protected counter between "
              "gates (%llu, %llu)", (unsigned long long)r1, (unsigned long long)r2);
        expect_fault(shared, 1, "host write to the extension's counter");
        int s2 = sigsetjmp(t_jb, 1);
        if (s2 == 0) {
            t_armed = 1;
            run_ext(fn, shared);        /* without a gate the key is denied */
            t_armed = 0;
        } else {
            after_fault();
        }
        CHECK(s2 == SIGSEGV && t_si.si_code == SEGV_PKUERR,
              "the extension itself faults when run without the enter gate (sig %d)", s2);
        giso_enter();
        uint64_t now = *shared;
        giso_leave();
        CHECK(now == 45, "the ungated run changed nothing (counter %llu)",
              (unsigned long long)now);
        gvm_prog_free(prog);
    }

    pthread_t th;
    if (pthread_create(&th, NULL, thread_probe, (void *)shared) == 0)
        pthread_join(th, NULL);

    giso_unregister_gate_range(g.page, 4096);
    munmap(g.page, 4096);
    munmap((void *)shared, 4096);
    munmap((void *)stack, 4096);
}

/* ---- (3) scanner ------------------------------------------------------- */

struct scan_seen {
    int wrpkru, xrstor, xrstors, gate, hidden, anon;
    int path_ok, file_ok, hidden_unaligned;
    char exe[4096];
};

static int file_bytes_match(const char *path, uint64_t off, const void *want, size_t n)
{
    uint8_t buf[16];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t got = pread(fd, buf, n, (off_t)off);
    close(fd);
    return got == (ssize_t)n && memcmp(buf, want, n) == 0;
}

static void on_finding(const struct giso_finding *f, void *arg)
{
    struct scan_seen *s = arg;
    uintptr_t a = f->addr;
    int planted = 1;
    if (a == (uintptr_t)iso_planted_wrpkru + 4 && f->insn == GISO_INSN_WRPKRU) {
        s->wrpkru++;
        s->path_ok = strcmp(f->path, s->exe) == 0 && f->symbol &&
                     strcmp(f->symbol, "iso_planted_wrpkru") == 0 && f->symbol_off == 4;
        s->file_ok = file_bytes_match(f->path, f->offset, "\x0f\x01\xef", 3);
    } else if (a == (uintptr_t)iso_planted_xrstor && f->insn == GISO_INSN_XRSTOR) {
        s->xrstor++;
    } else if (a == (uintptr_t)iso_planted_xrstors && f->insn == GISO_INSN_XRSTORS) {
        s->xrstors++;
    } else if (a >= (uintptr_t)iso_planted_gate && a < (uintptr_t)iso_planted_gate + 4) {
        s->gate++;
    } else if (a >= (uintptr_t)iso_planted_hidden && a < (uintptr_t)iso_planted_hidden + 6) {
        s->hidden++;
        s->hidden_unaligned += a == (uintptr_t)iso_planted_hidden + 2 && !f->aligned &&
                               f->cls == GISO_CLASS_UNALIGNED;
    } else {
        planted = 0;
    }
    if (f->path[0] == '\0')
        s->anon++;
    if (!planted)
        printf("  found %s at %#lx in %s+%#llx (%s+%#llx)%s\n", f->insn_name,
               (unsigned long)f->addr, f->path[0] ? f->path : "[anon]",
               (unsigned long long)f->offset, f->symbol ? f->symbol : "?",
               (unsigned long long)f->symbol_off, f->special ? " [kernel-provided]" : "");
}

static void count_aligned(const struct giso_finding *f, void *arg)
{
    *(int *)arg += f->aligned;
}

static void test_scanner(void)
{
    struct scan_seen s;
    struct graft_err err = { 0 };
    memset(&s, 0, sizeof(s));
    ssize_t n = readlink("/proc/self/exe", s.exe, sizeof(s.exe) - 1);
    s.exe[n > 0 ? n : 0] = '\0';
    CHECK(memcmp((const void *)iso_planted_hidden, "\xb8\x90\x0f\x01\xef\xc3", 6) == 0,
          "the hidden function's bytes are b8 90 0f 01 ef c3");

    giso_register_gate_range((const void *)iso_planted_gate, 4);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int total = giso_scan(on_finding, &s, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(total >= 3, "giso_scan ran: %d findings in %.1f ms (%s)", total, ms,
          total < 0 ? err.msg : "");
    CHECK(s.wrpkru == 1, "planted WRPKRU found (%d)", s.wrpkru);
    CHECK(s.path_ok, "finding names mapping %s, symbol iso_planted_wrpkru+4", s.exe);
    CHECK(s.file_ok, "finding's file offset points at 0f 01 ef in the file");
    CHECK(s.xrstor == 1, "planted XRSTOR found (%d)", s.xrstor);
    CHECK(s.xrstors == 1, "planted XRSTORS found (%d)", s.xrstors);
    CHECK(s.gate == 0, "WRPKRU inside a registered gate range not reported (%d)", s.gate);
    CHECK(s.hidden == 1 && s.hidden_unaligned == 1,
          "0f 01 ef inside mov's immediate reported once, as unaligned (%d)", s.hidden);
    CHECK(s.anon == 0, "nothing reported in anonymous code (giso's and JIT pages) (%d)",
          s.anon);

    giso_unregister_gate_range((const void *)iso_planted_gate, 4);
    memset(&s.wrpkru, 0, sizeof(int) * 6);
    int total2 = giso_scan(on_finding, &s, &err);
    CHECK(s.gate == 1 && total2 == total + 1,
          "after unregistering, the gate's WRPKRU is reported (%d, total %d)", s.gate, total2);

    static const uint8_t hidden[] = { 0xb8, 0x90, 0x0f, 0x01, 0xef, 0xc3 };
    int c0 = 0, c2 = 0;
    CHECK(giso_scan_code(hidden, sizeof(hidden), 0x1000, count_aligned, &c0) == 1 && c0 == 0,
          "giso_scan_code: a mov imm containing 0f 01 ef counts, but not as aligned");
    CHECK(giso_scan_code(hidden + 2, 4, 0x1002, count_aligned, &c2) == 1 && c2 == 1,
          "giso_scan_code: the same bytes decoded from offset 2 are an aligned WRPKRU");
}

/* ---- (4) forced off ---------------------------------------------------- */

/* Runs in a fresh child so giso's once-only decision starts over. */
static int child_off(int use_env)
{
    struct graft_err err = { 0 };
    if (use_env) {
        setenv("GRAFT_ISOLATION", "of", 1);
        int bad = giso_init(NULL, &err);
        CHECK(bad == -EINVAL && strstr(err.msg, "GRAFT_ISOLATION=of is not one of"),
              "[off] a misspelt GRAFT_ISOLATION is an error, not a guess: %s", err.msg);
        setenv("GRAFT_ISOLATION", "off", 1);
        CHECK(giso_init(NULL, &err) == 0, "[off] giso_init without require succeeds");
        CHECK(strcmp(giso_status(), "isolation: off (disabled by GRAFT_ISOLATION=off)") == 0,
              "[off] status \"%s\"", giso_status());
    } else {
        struct giso_opts o = { .sz = sizeof(o), .force_off = 1, .require = 1 };
        int rc = giso_init(&o, &err);
        CHECK(rc == -ENOTSUP && strstr(err.msg, "isolation required but unavailable") &&
              strstr(err.msg, "opts.force_off"), "[off] require+force_off fails: %s", err.msg);
        CHECK(strcmp(giso_status(), "isolation: off (disabled by opts.force_off)") == 0,
              "[off] status \"%s\"", giso_status());
    }
    CHECK(!giso_enabled() && giso_pkey() == -1 && giso_pkru_host() == 0 &&
          giso_pkru_ext() == 0 && giso_rdpkru() == 0, "[off] no key, no PKRU values");
    volatile uint64_t *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(giso_protect((void *)p, 4096, PROT_READ | PROT_WRITE, &err) == 0,
          "[off] giso_protect is a plain mprotect");
    giso_enter();
    giso_leave();
    *p = 5;
    CHECK(*p == 5, "[off] memory stays reachable, gates are no-ops");
    struct giso_opts req = { .sz = sizeof(req), .require = 1 };
    int rc = giso_init(&req, &err);
    CHECK(rc == -ENOTSUP && strstr(err.msg, "isolation required but unavailable"),
          "[off] require_isolation fails clearly: %s", err.msg);
    return g_fail;
}

static void test_forced_off(void)
{
    for (int use_env = 0; use_env < 2; use_env++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            g_pass = g_fail = 0;
            int fails = child_off(use_env);
            printf("[off] child: %d passed, %d failed\n", g_pass, fails);
            fflush(stdout);
            _exit(fails ? 1 : 0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "forced-off child (%s) passed", use_env ? "GRAFT_ISOLATION=off" : "force_off");
    }
}

/* ---- running as /init under QEMU --------------------------------------- */

static void init_console(void)
{
    if (fcntl(1, F_GETFD) >= 0)
        return;
    mkdir("/dev", 0755);
    mknod("/dev/console", S_IFCHR | 0600, makedev(5, 1));
    int fd = open("/dev/console", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

static void init_setup(void)
{
    init_console();
    mkdir("/proc", 0555);
    if (mount("proc", "/proc", "proc", 0, NULL) != 0)
        printf("ISOLATION-QEMU: mount /proc failed: %s\n", strerror(errno));
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static void init_poweroff(void)
{
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    for (;;)                            /* PID 1 must never exit */
        pause();
}

int main(int argc, char **argv)
{
    int pid1 = getpid() == 1;
    /* As /init the kernel passes unknown name=value boot arguments as the
     * environment: graft_expect_pku=0 is the harness's "-cpu without pku". */
    const char *expect = getenv("graft_expect_pku");
    int expect_off = expect && strcmp(expect, "0") == 0;
    int require_pku = pid1 && !expect_off;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--require-pku") == 0)
            require_pku = 1;
    if (pid1)
        init_setup();
    tfault_install(SIGSEGV);
    tfault_install(SIGILL);

    test_forced_off();                  /* forks before this process decides */
    int pku = 0;
    test_detection(&pku);
    if (pku && giso_enabled()) {
        test_protection();
    } else if (expect_off) {
        struct graft_err err = { 0 };
        struct giso_opts req = { .sz = sizeof(req), .require = 1 };
        CHECK(strcmp(giso_status(), "isolation: off (CPU has no PKU)") == 0,
              "without PKU the status says so: \"%s\"", giso_status());
        CHECK(giso_init(&req, &err) == -ENOTSUP && strstr(err.msg, "CPU has no PKU"),
              "without PKU require_isolation fails: %s", err.msg);
    } else if (require_pku) {
        CHECK(0, "PKU required but unusable here: %s", giso_status());
    } else {
        printf("SKIP: fault tests need PKU: %s\n", giso_status());
    }
    test_scanner();

    if (pid1) {
        printf("ISOLATION-QEMU: pku=%s (%s)\n", giso_enabled() ? "yes" : "no", giso_status());
        printf("ISOLATION-QEMU: %d passed, %d failed\n", g_pass, g_fail);
        init_poweroff();
    }
    printf("isolation: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
