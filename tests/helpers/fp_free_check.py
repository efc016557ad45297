#!/usr/bin/env python3
"""fp_free_check.py REGISTRY_C LIBRARY... - check, on the built libraries,
that every helper marked GHELPER_F_FP_FREE in registry.c leaves the vector
and x87 registers alone (util/fpsafe.h).

From each such helper's function (gh_NAME) it follows every direct call and
jump into other functions, and fails if any function reached
  - has an instruction that names an x87, MMX, SSE/AVX or mask register or
    changes that state (vzeroupper, ldmxcsr, fxrstor, xrstor, emms ...),
  - calls or jumps through the PLT (libc, or an exported graft symbol that
    could be interposed), or
  - calls or jumps through a register or memory (an unknown target),
except through gfp_call, which saves xmm0-15 around ordinary C and is not
followed. The syscall hooks skip saving xmm0-15 around programs that call
only these helpers (ghelper_prog_fp_free), so any such finding is a bug.
Prints one line per helper and per violation; exit status 1 on any.
"""
import re
import subprocess
import sys

FUNC = re.compile(r'^([0-9a-f]+) <([^>]+)>:$')
INSN = re.compile(r'^\s*([0-9a-f]+):\s*(.*)$')
TARGET = re.compile(r'^([0-9a-f]+) <([^>]+)>$')
FP_REG = re.compile(r'%(?:[xyz]mm\d+|st\b|st\(|mm\d|k[0-7]\b|mxcsr)')
FP_MNEMONIC = re.compile(r'^(?:f\w+|v\w+|emms|femms|ldmxcsr|stmxcsr|xsave\w*|xrstor\w*|'
                         r'fxsave\w*|fxrstor\w*)$')
PREFIXES = {'rep', 'repz', 'repe', 'repnz', 'repne', 'lock', 'notrack', 'bnd', 'cs', 'ds',
            'data16', 'addr32', 'rex', 'rex.W', 'rex.B', 'rex.R', 'rex.X'}
THUNK = 'gfp_call'


def roots_from_registry(path):
    roots = []
    for line in open(path):
        m = re.match(r'\s*P\(\s*\d+,\s*(\w+),.*\bFPF\b', line)
        if m:
            roots.append('gh_' + m.group(1))
    return roots


def disassemble(lib):
    out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', '-M', 'att', lib],
                         check=True, capture_output=True, text=True).stdout
    funcs = {}      # name -> [(addr, mnemonic, operands)]
    starts = []     # (addr, name)
    cur = None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            cur = m.group(2)
            funcs[cur] = []
            starts.append((int(m.group(1), 16), cur))
            continue
        m = INSN.match(line)
        if m and cur is not None:
            parts = m.group(2).split(None, 1)
            while parts and parts[0] in PREFIXES:
                parts = parts[1].split(None, 1) if len(parts) > 1 else []
            if not parts:
                continue
            funcs[cur].append((int(m.group(1), 16), parts[0], parts[1] if len(parts) > 1 else ''))
    return funcs, sorted(starts)


def check(lib, roots):
    funcs, starts = disassemble(lib)
    bad = []
    seen = set()
    for root in roots:
        if root not in funcs:
            bad.append(f'{lib}: {root}: no such function')
            continue
        stack = [(root, root)]
        while stack:
            name, via = stack.pop()
            if name in seen or name == THUNK:
                continue
            seen.add(name)
            for addr, mn, ops in funcs.get(name, []):
                where = f'{lib}: {name}+{addr:#x} ({mn} {ops}), reached from {via}'
                if FP_REG.search(ops) or FP_MNEMONIC.match(mn):
                    bad.append(f'{where}: vector/x87 instruction')
                    continue
                if not (mn.startswith('call') or mn.startswith('j')):
                    continue
                if ops.startswith('*'):
                    bad.append(f'{where}: indirect {mn}')
                    continue
                t = TARGET.match(ops)
                if not t:
                    bad.append(f'{where}: unparsed target')
                    continue
                sym = t.group(2)
                if '@plt' in sym:
                    bad.append(f'{where}: call through the PLT')
                    continue
                base = sym.split('+', 1)[0]
                if base == name:
                    continue            # a branch inside the function
                if base not in funcs:
                    bad.append(f'{where}: target {sym} is not a function here')
                    continue
                stack.append((base, via))
    return bad, len(seen)


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[0])
        return 2
    roots = roots_from_registry(sys.argv[1])
    if not roots:
        print(f'{sys.argv[1]}: no helper marked FPF')
        return 1
    status = 0
    for lib in sys.argv[2:]:
        bad, n = check(lib, roots)
        for b in bad:
            print('FAIL', b)
        print(f'{lib}: {len(roots)} GHELPER_F_FP_FREE helpers ({" ".join(roots)}), '
              f'{n} functions reached: {"ok" if not bad else str(len(bad)) + " violations"}')
        status |= 1 if bad else 0
    return status


if __name__ == '__main__':
    sys.exit(main())
