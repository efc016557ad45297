/*
 * test_agent_lazy.c - the agent sets isolation up at the first extension,
 * not at start (docs/isolation.md, "Lazy set-up").
 *
 * Links libgraft-agent.so with its constructor idle (GRAFT_AGENT_OFF) and
 * starts an agent on a private registry itself:
 *   1. no program, no link: no protection key allocated, no scan; where the
 *      CPU has PKU the agent's message says the key and scan wait for the
 *      first extension, without PKU it says "isolation: off (CPU has no PKU)";
 *   2. a link for a function of this binary: installed, and now (with PKU)
 *      the key exists and the message carries the classified scan;
 *   3. the hook runs: the program (r0 = 0) is called on every call.
 * Runs natively and as /init under QEMU with -cpu max (PKU), where it
 * mounts /proc and /dev/shm itself and powers off at the end.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include "isolation/isolation.h"
#include "runtime/agent.h"
#include "runtime/registry.h"
#include "tcheck.h"
#include "treg.h"
#include "tguest.h"


static volatile int g_calls;
__attribute__((noinline)) int lazy_target(int x)
{
    g_calls++;
    __asm__ volatile("" ::: "memory");
    return x + 1;
}

static int my_message(struct greg *reg, char *buf, size_t len)
{
    struct greg_proc p;
    if (greg_proc_find(reg, getpid(), &p, 1) != 1)
        return -1;
    snprintf(buf, len, "%s", p.message);
    return 0;
}

int main(int argc, char **argv)
{
    int pid1 = getpid() == 1;
    if (pid1)
        tguest_init();
    if (!getenv("GRAFT_AGENT_OFF")) {           /* the constructor stays idle */
        setenv("GRAFT_AGENT_OFF", "1", 1);
        execv("/proc/self/exe", argv);
        perror("re-exec");
        return 1;
    }
    (void)argc;
    char regname[64];
    treg_name(regname, sizeof(regname), "lazy");
    struct giso_cpu cpu;
    giso_cpu_features(&cpu);
    const char *env = getenv("GRAFT_ISOLATION");
    int can = cpu.pku && cpu.ospke && !(env && !strcmp(env, "off"));
    printf("AGENT-LAZY: pku=%s\n", can ? "yes" : "no");

    struct graft_err err = { 0 };
    struct greg *reg;
    if (greg_open_named(regname, 1, &reg, &err) < 0) {
        printf("FAIL registry: %s\n", err.msg);
        return 1;
    }
    struct gagent *a;
    CHECK(gagent_start(regname, &a, &err) == 0, "agent started: %s", err.msg);
    char msg[256] = "";
    my_message(reg, msg, sizeof(msg));
    printf("  at start: %s\n", msg);
    CHECK(giso_pkey() < 0, "no protection key before the first extension (pkey %d)",
          giso_pkey());
    CHECK(!strstr(msg, "stray"), "no scan before the first extension");
    if (can)
        CHECK(strstr(msg, "isolation: on") && strstr(msg, "at the first extension"),
              "the message says isolation waits for the first extension: %s", msg);
    else
        CHECK(strstr(msg, "isolation: off"), "without PKU the message says off: %s", msg);

    /* r0 = 0; exit */
    struct bpf_insn insns[2] = { BPF_MOV64_IMM(BPF_R0, 0), BPF_EXIT_INSN() };
    struct greg_prog p = { .n_insns = 2 };
    snprintf(p.name, sizeof(p.name), "lazy");
    snprintf(p.section, sizeof(p.section), "uprobe//proc/self/exe:lazy_target");
    int prog = greg_add_prog(reg, &p, insns, &err);
    CHECK(prog > 0, "program added: %s", err.msg);
    struct greg_link l = { .prog_id = (uint32_t)prog, .kind = GREG_LINK_UPROBE,
                           .pid = getpid() };
    snprintf(l.symbol, sizeof(l.symbol), "lazy_target");
    CHECK(greg_add_link(reg, &l, &err) > 0, "link added: %s", err.msg);
    gagent_sync(a);
    struct gagent_stats st;
    gagent_get_stats(a, &st);
    my_message(reg, msg, sizeof(msg));
    printf("  after the first link: %s\n", msg);
    CHECK(st.links_installed == 1 && st.links_failed == 0, "the link is installed (%u, %u)",
          st.links_installed, st.links_failed);
    if (can) {
        CHECK(giso_pkey() > 0, "the key exists once an extension is installed (%d)",
              giso_pkey());
        CHECK(strstr(msg, "isolation: on (pkey") && strstr(msg, "stray WRPKRU/XRSTOR") &&
              strstr(msg, "usable without a control-flow hijack"),
              "the message carries the classified scan: %s", msg);
    }
    int before = g_calls;
    for (int i = 0; i < 100; i++)
        lazy_target(i);
    CHECK(g_calls == before + 100, "the hooked function still runs");

    gagent_stop(a);
    greg_remove_all(reg);           /* the program's shared memory too */
    greg_close(reg);
    shm_unlink(regname);
    printf("AGENT-LAZY: %d passed, %d failed\n", g_pass, g_fail);
    if (pid1)
        tguest_poweroff();
    return g_fail ? 1 : 0;
}
