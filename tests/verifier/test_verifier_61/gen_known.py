#!/usr/bin/env python3
"""gen_known.py ROWS OUT - write known_differences.txt from `ktv_run
/dev/null --write-rows ROWS`: every disagreement with the reason of its
class (the rules below, first match wins). A disagreement no rule explains
is written "NOT YET REVIEWED": review it and add a rule.

A rule: (mode p|u|*, graft's verdict, regex on the kernel's expected error,
regex on graft's reason, regex on the test's name, reason)."""
import re
import sys

CTX_FIELDS = ("the kernel's per-field rules of this context are not modelled (graft has them for "
              "__sk_buff, xdp_md, sk_msg_md, bpf_sock_addr, bpf_sk_lookup and the pointer fields of the "
              "others): graft reads the rest as plain bytes, memory-safe within the context but NOT the "
              "kernel's rule")
RULES = [
    # graft stricter (wrong rejects)
    ('*', 'reject', r'', r"invalid mem access 'scalar': not a pointer|invalid mem access 'map_ptr'", r'',
     "socket pointers (skb->sk), BTF-typed arguments and map fields are not modelled: such loads give "
     "numbers, not pointers"),
    ('*', 'reject', r'', r'a kernel helper graft has no prototype for', r'',
     "a kernel helper graft neither implements nor has a prototype for"),
    ('*', 'reject', r'', r"invalid write of ctx", r'',
     "this context's writable fields are not modelled: it is read-only to graft"),
    ('*', 'reject', r'', r'kfunc call', r'', "the kernel's test kfuncs are not known offline"),
    ('*', 'reject', r'', r"cannot pass map 'map\d+' of type", r'',
     "a map type graft does not implement (sockmap, sockhash, xskmap, ...) is refused by its map helpers"),
    ('*', 'reject', r'', r'pointer comparison prohibited|pointer operand prohibited|move of a pointer prohibited|'
     r'part of a spilled pointer|pointer arithmetic on map_ptr|pointer -= pointer|negation on a pointer|'
     r'may read a spilled pointer', r'',
     "graft keeps pointers whole (no partial copies, atomics, negation or cross-type comparisons): stricter "
     "than the kernel's root rules"),
    ('*', 'reject', r'', r'program too complex|infinite loop detected', r'',
     "graft's exploration budget and loop rule are stricter here"),
    ('*', 'reject', r'', r'', r'', "graft's analysis is stricter here"),
    # graft accepts what the kernel refuses: each argued
    ('*', 'accept', r'invalid bpf_context access|wide load from', r'', r'', CTX_FIELDS),
    ('*', 'accept', r'', r'', r'wide load from bpf_sock_addr', CTX_FIELDS),
    ('*', 'accept', r'dereference of modified ctx ptr|negative offset ctx ptr', r'', r'',
     "safe: graft does not rewrite context accesses, so it allows a constant offset on the context pointer "
     "and checks the final access against the layout"),
    ('*', 'accept', r'same insn cannot be used with different pointers', r'', r'',
     "safe: the kernel forbids it because it rewrites each context access in place; graft rewrites nothing "
     "and checks each path's access for its own pointer"),
    ('*', 'accept', r'unknown opcode d7', r'', r'',
     "safe: 0xd7 is the v4 ISA's unconditional byte swap (kernel 6.6+), which graft's VM runs"),
    ('p', 'accept', r'invalid access to packet', r'', r'^Spill .*u32 const scalars?\.  Refill as u(16|64)',
     "safe: the first bytes of a narrow spill of a constant are known (its low bytes), as kernel 6.8+ "
     "reads them (6.12 selftest u16_offset_to_skb_data); 6.1 forgot it: the packet access is in bounds"),
    ('*', 'accept', r'cannot spill', r'', r'',
     "safe: the pointer stored is to the caller's own frame, which outlives the callee; graft tracks the "
     "frame of every stack pointer"),
    ('p', 'accept', r'R0 !read_ok|infinite loop detected', r'', r'',
     "safe: the path the kernel follows starts with a null test of the context pointer, which graft knows "
     "is never null: it cannot run"),
    ('*', 'accept', r'back-edge', r'', r'',
     "safe: graft explores bounded loops and recursion (at most BPF_MAX_CALL_DEPTH frames) to their end "
     "and bounds their worst-case instruction count"),
    ('*', 'accept', r'subtraction from stack pointer', r'', r'',
     "safe: graft tracks the stack pointer's exact offset after the subtraction and checks the access"),
    ('u', 'accept', r'loading/calling other bpf or kernel functions are allowed for|^allowed for', r'', r'',
     "safe: the kernel refuses bpf-to-bpf calls to unprivileged users as a policy, not a safety rule; "
     "graft verifies calls alike in both modes"),
    ('u', 'accept', r'pointer comparison', r'', r'',
     "safe: graft allows only null tests and comparisons of pointers into the same object, whose outcome "
     "depends on offsets it already knows, never on the address"),
    ('u', 'accept', r'attempt to corrupt spilled', r'', r'',
     "safe: graft lets the byte be overwritten but refuses any later read of the slot's remaining pointer "
     "bytes"),
    ('u', 'accept', r'leaks addr', r'', r'',
     "NOT ARGUED SAFE: a pointer passed as a helper's plain-number argument (flags, index): the helper's "
     "result may reveal a comparison of the address"),
    ('p', 'accept', r'', r'', r'^spin_lock: test10 lock in subprog without unlock$',
     "safe: kernel 6.12 accepts it too (selftest lock_in_subprog_without_unlock): a kernel program's "
     "subprogram may return with the lock held; no helper but the unlock runs under it in any frame and "
     "the main program cannot exit with it held"),
    ('u', 'accept', r'', r'', r'^bounds check after shift with oversized count operand$',
     "safe: graft's VM, JIT and verifier all take a shift count modulo the width (x86's rule; vm/interp.c, "
     "verifier/scalar.c), so (u32)1 << 32 is exactly 1 where the kernel assumes any value: the offset is a "
     "constant, in bounds on every path and under speculation"),
    ('u', 'accept', r'different maps, paths or scalars', r'', r'value_ptr unknown vs unknown',
     "safe: graft computes -6 & 3 and -6 & 7 exactly (2 on both paths; the kernel 6.1 forgets a negated "
     "constant): the offset is the same constant 2 on every path, so one masking limit serves both"),
    ('p', 'accept', r'', r'', r'^bounds check after shift with oversized count operand$',
     "safe: graft's VM, JIT and verifier all take a shift count modulo the width (vm/interp.c, "
     "verifier/scalar.c), so (u32)1 << 32 is exactly 1: the offset is a constant in bounds"),
    ('p', 'accept', r'', r'', r'^bounds checks mixing signed and unsigned, variant 10$',
     "safe: `if 0 > r1` (unsigned) is never true, so the access behind it is dead code; the 6.1 kernel "
     "decides no branch with a constant destination register and explores it anyway (6.12 rewrote the "
     "test with r2 = -1 so that the path is live, and graft rejects that version)"),
    # the Spectre rules are graft's default policy's (verifier/speculation.c): any other is new
    ('u', 'accept', r'', r'', r'', "NOT YET REVIEWED"),
    ('p', 'accept', r'', r'', r'',
     "NOT YET REVIEWED: graft's range analysis bounds the access (its soundness is fuzzed by "
     "test_verifier_fuzz) where the kernel's is less precise; not checked by hand"),
]

def main():
    rows_path, out_path = sys.argv[1:3]
    out = ["# Known disagreements between graft's verifier and the kernel 6.1 test_verifier",
           "# table (tests/verifier/test_verifier_61/run_table.c). Format:",
           "#   p|u accept|reject DESCR :: reason",
           "# p: privileged (graft verify --privileged against .result); u: unprivileged",
           "# (graft verify's default policy: an unprivileged user's helpers; against",
           "# .result_unpriv). The verdict is graft's. Every \"accept\" line says why that",
           "# is safe for graft, or is marked NOT ARGUED SAFE / NOT YET REVIEWED.",
           "# Regenerated with gen_known.py from `ktv_run /dev/null --write-rows ROWS`;",
           "# the reasons are its rules."]
    for line in open(rows_path, encoding="utf-8"):
        m = re.match(r'(\w) (accept|reject) (.*?) :: kernel (accepts|rejects)(?: \((.*?)\))?(?:; graft: (.*))?$',
                     line.rstrip('\n'))
        if not m:
            sys.exit(f"gen_known: unexpected row: {line!r}")
        mode, got, key, want, kerr, why = m.groups()
        if (got == 'accept') == (want == 'accepts'):
            continue
        kerr, why = kerr or '', why or ''
        for rmode, rgot, rkerr, rwhy, rkey, reason in RULES:
            if (rmode in ('*', mode) and rgot == got and re.search(rkerr, kerr) and re.search(rwhy, why)
                    and re.search(rkey, key)):
                break
        else:
            reason = "NOT YET REVIEWED"
        out.append(f"{mode} {got} {key} :: {reason}")
    open(out_path, "w", encoding="utf-8").write("\n".join(out) + "\n")

main()
