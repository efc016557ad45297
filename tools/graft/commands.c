/* commands.c - the table of graft's subcommands and their help texts. */
#include "cli.h"

int cmd_verify(int argc, char **argv);
int cmd_prog(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_eim(int argc, char **argv);
int cmd_compat(int argc, char **argv);
int cmd_unload(int argc, char **argv);

/* What graft load and graft verify say about rights and budgets: the same
 * options give the same policy in both. */
#define RIGHTS_HELP \
      "  Programs are observe-only by default: they read registers, arguments and host\n" \
      "  memory (bpf_probe_read_user), and write maps and output. Changing the host needs\n" \
      "  a right, granted by an EIM class or loudly by --allow:\n" \
      "  --allow RIGHTS  write-user (bpf_probe_write_user), override (override/, replace/,\n" \
      "               bpf_override_return), signal (bpf_send_signal[_thread]), or all;\n" \
      "               comma-separated; each prints a WARNING line. Host functions and\n" \
      "               globals (__ksym) need an EIM class.\n" \
      "  --insn-budget N  refuse programs that may run more than N instructions per\n" \
      "               run (with --eim: the tighter of N and the class's insn_budget)\n"

const struct cli_cmd cli_cmds[] = {
    { "load", cmd_load, "verify an object, register its programs, maps and links",
      "usage: graft load OBJ [--pid PID] [--group GID] [--detach]\n"
      "                  [--eim SPEC --class NAME | --allow RIGHTS] [--insn-budget N]\n"
      "       graft load --compat [--allow RIGHTS] TOOL [ARGS...]   (same as graft compat)\n"
      "  Verifies every program of OBJ (nothing is loaded if one is rejected), creates its\n"
      "  maps in shared memory, and attaches each program where its section says\n"
      "  (uprobe/BINARY:FUNC, tracepoint/syscalls/sys_enter_NAME, ...) in every process\n"
      "  running a graft agent, or only in PID. It says \"loaded\" once those agents have\n"
      "  installed the hooks (up to 10 s; one that does not answer is named). Then prints\n"
      "  bpf_trace_printk output until interrupted, and unloads everything on exit.\n"
      "  --pid PID    attach only in process PID\n"
      "  --group GID  maps readable and writable by group GID too (default: owner only)\n"
      "  --detach     leave everything loaded and exit at once\n"
      "  --eim SPEC --class NAME  load only if every program keeps to what the EIM class\n"
      "               grants (see `graft verify --help`)\n"
      RIGHTS_HELP },
    { "unload", cmd_unload, "remove loaded programs, links and maps",
      "usage: graft unload ID... | --loader PID | --all\n"
      "  Removes what `graft load --detach` (or a loader that was killed) left loaded:\n"
      "  a program (with its links), a link or a map by the id `graft list` shows; all\n"
      "  that loader PID registered; or everything, the trace buffer included. The\n"
      "  maps' shared memory is removed; agents unhook the links right away." },
    { "start", cmd_start, "run a command with the graft agent inside it",
      "usage: graft start [--require-isolation] [--] CMD [ARGS...]\n"
      "  Runs CMD with libgraft-agent.so preloaded: loaded programs whose links match\n"
      "  are installed before main() runs, and later loads are picked up while it runs.\n"
      "  The agent library is found next to graft (../lib) or at $GRAFT_AGENT.\n"
      "  Extensions run behind memory-protection-key gates when the CPU has PKU; without\n"
      "  it the agent says \"isolation: off (CPU has no PKU)\" and runs them unisolated.\n"
      "  --require-isolation  refuse to run extensions at all without PKU\n"
      "  Exit status: CMD's own once it ran; 2 when CMD cannot be run (not found,\n"
      "  not executable)." },
    { "attach", cmd_attach, "inject the graft agent into a running process",
      "usage: graft attach PID\n"
      "  Injects libgraft-agent.so into process PID with ptrace (the caller must be\n"
      "  allowed to ptrace it) and waits until the agent reports in." },
    { "detach", cmd_detach, "remove every hook from a process and idle its agent",
      "usage: graft detach PID" },
    { "list", cmd_list, "show loaded programs, maps, links and processes",
      "usage: graft list" },
    { "trace", cmd_trace, "print bpf_trace_printk output of loaded programs",
      "usage: graft trace\n  Prints trace lines as they arrive, until interrupted." },
    { "map", cmd_map, "show a map's contents",
      "usage: graft map dump NAME|ID\n  Prints the map as JSON." },
    { "verify", cmd_verify, "run the verifier and explain its verdict",
      "usage: graft verify OBJ [--section S] [--log-level 0|1|2] [--privileged] [--btf TARGET]\n"
      "                    [--eim SPEC --class NAME | --allow RIGHTS] [--insn-budget N]\n"
      "                    [--strict-alignment]\n"
      "       graft verify --raw [--ctx-size N | --prog-type TYPE[:ATTACH]] [--privileged]\n"
      "                    [--map FIXTURE]... [--allow RIGHTS] [--log-level 0|1|2]\n"
      "                    [--strict-alignment] < program.hex\n"
      "  Exit status: 0 accepted, 1 rejected, 2 usage or load error. A rejection names\n"
      "  the instruction, the register and stack state and the rule broken. Each program's\n"
      "  rights are printed too (\"rights: observe-only (read-host)\", \"rights: write-user\n"
      "  (not granted), host-call app_log\"): the same options as `graft load` give the\n"
      "  same policy.\n"
      "  --raw reads one line of space-separated hex bytes (8 per instruction) and\n"
      "  verifies it with N readable context bytes and the observe-only helpers (plus what\n"
      "  --allow grants), or as a kernel program of TYPE (socket_filter, xdp, sched_cls,\n"
      "  kprobe, cgroup_skb, ...; ATTACH where the return rule needs it: cgroup_skb:egress,\n"
      "  cgroup_sock_addr:getsockname4, tracing:fentry): its context and helpers.\n"
      "  --map TYPE:KEY:VALUE:ENTRIES[:flags=N][:inner=M][:lock=OFF][:kptr=OFF]...[@INSN[,INSN...]]\n"
      "               a map for --raw, numbered from 0 in order; each INSN (an ld_imm64\n"
      "               with src_reg 1 or 2, as the kernel's test fixups) loads it. TYPE:\n"
      "               hash, array, prog_array, ringbuf, array_of_maps, ... or a number;\n"
      "               inner=M: a map of maps' inner maps are like map M; lock=OFF: the\n"
      "               value's bpf_spin_lock; kptr=OFF, kptr_ref=OFF, percpu_kptr=OFF: a\n"
      "               kptr field of that kind (repeatable). e.g. --map hash:8:48:1@3,9\n"
      "  --eim SPEC --class NAME  verify against what the EIM class grants: its entry,\n"
      "  helpers, host functions (with argument ranges), argument rights and budgets.\n"
      RIGHTS_HELP
      "  Every program gets its own verdict. Kernel program types (kprobe, tc, cgroup_skb,\n"
      "  ...) are verified offline against their kernel context and reported \"verified;\n"
      "  not attachable by graft\"; each may call only its type's helpers (as an\n"
      "  unprivileged user for socket filters and cgroup_skb, as root with --privileged).\n"
      "  --privileged  the kernel's rules for root instead of graft's: every program\n"
      "               against its kernel type, pointers may be returned and stored in\n"
      "               maps, unwritten stack reads as unknown; offline only (graft load\n"
      "               never uses it)\n"
      "  --strict-alignment  the kernel's BPF_F_STRICT_ALIGNMENT for kernel programs and\n"
      "               --raw: accesses aligned to their size (packet data from NET_IP_ALIGN 2)\n"
      "  --btf TARGET  resolve CO-RE relocations against TARGET (a raw BTF or ELF file with\n"
      "               .BTF) instead of the running kernel's BTF" },
    { "eim", cmd_eim, "check an Extension Interface Model spec against a host",
      "usage: graft eim check SPEC [--host BINARY]\n"
      "  Parses SPEC (errors give file:line:column and the closest valid name), prints\n"
      "  what it declares and what each class grants, and with --host checks that the\n"
      "  symbols exist and their types match the binary's DWARF.\n"
      "  Exit status: 0 consistent, 1 host mismatches, 2 spec errors." },
    { "prog", cmd_prog, "run a program once on a given context",
      "usage: graft prog run OBJ [--section S] [--ctx FILE] [--repeat N] [--interpret]\n"
      "                      [--allow RIGHTS] [--insn-budget N]\n"
      "  Verifies the program, creates its maps, runs it with the bytes of FILE as its\n"
      "  context (default: zeroes), and prints r0 and the time per run. The program is\n"
      "  observe-only unless --allow grants more (see `graft load --help`)." },
    { "compat", cmd_compat, "run an unmodified libbpf-based tool against graft",
      "usage: graft compat [--allow RIGHTS] [--] TOOL [ARGS...]\n"
      "  Runs TOOL with libgraft-compat.so preloaded: its bpf() and perf_event_open()\n"
      "  calls create graft maps and programs instead of kernel ones, and its uprobes,\n"
      "  USDT probes and syscall tracepoints attach in processes running a graft agent\n"
      "  (graft start / graft attach). Ring buffers and perf buffers are read as usual.\n"
      "  Exit status: the tool's; whatever it left loaded is removed when it exits.\n"
      "  The tool's programs are observe-only: one that calls bpf_probe_write_user,\n"
      "  bpf_override_return or bpf_send_signal is refused (BPF_PROG_LOAD fails with\n"
      "  EPERM, as the kernel refuses a program lacking privileges) unless --allow\n"
      "  grants the right (write-user, override, signal, all; a WARNING line says so)." },
    { 0 },
};
