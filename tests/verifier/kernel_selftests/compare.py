#!/usr/bin/env python3
"""compare.py GRAFT OBJDIR KNOWN [--privileged] [--write-rows FILE]

Each program of the kernel's verifier selftests annotated __success or
__failure (BTF decl tags "comment:test_expect_success/failure": the
kernel's verdict for root; without --privileged, __success_unpriv /
__failure_unpriv where a test gives them: the unprivileged one) is compared with `graft verify OBJ`'s verdict
for it (every program of an object gets its own). A disagreement must be
listed in KNOWN as "OBJECT PROGRAM GRAFT_VERDICT: reason"; any other fails
the test. Listed entries that now agree are reported as stale.
Prints the agreement and BENCH-style numbers."""
import os, re, subprocess, sys, time, collections

def expectations(obj, unpriv=False):
    out = subprocess.run(['bpftool', 'btf', 'dump', 'file', obj],
                         capture_output=True, text=True).stdout
    names, tags = {}, collections.defaultdict(set)
    for line in out.splitlines():
        m = re.match(r"\[(\d+)\] FUNC '([^']+)'", line)
        if m:
            names[int(m.group(1))] = m.group(2)
        m = re.match(r"\[\d+\] DECL_TAG '([^']+)' type_id=(\d+) component_idx=-1", line)
        if m:
            tags[int(m.group(2))].add(m.group(1))
    exp = {}
    btf = set()
    strict = set()
    for tid, t in tags.items():
        btf |= {x.split('=', 1)[1] for x in t if x.startswith('comment:test_btf_path=')}
        # __flag(BPF_F_STRICT_ALIGNMENT): the kernel loads it with strict alignment
        if tid in names and 'comment:test_prog_flags=BPF_F_STRICT_ALIGNMENT' in t:
            strict.add(names[tid])
        if tid in names:
            if 'comment:test_expect_failure' in t:
                exp[names[tid]] = 'reject'
            elif 'comment:test_expect_success' in t:
                exp[names[tid]] = 'accept'
            else:
                continue
            # graft's default policy against the kernel's unprivileged verdict
            # where the test gives one (test_loader.c: any *_unpriv tag runs
            # it unprivileged, expecting __failure_unpriv/__success_unpriv or
            # else the root verdict)
            if unpriv and 'comment:test_expect_failure_unpriv' in t:
                exp[names[tid]] = 'reject'
            elif unpriv and 'comment:test_expect_success_unpriv' in t:
                exp[names[tid]] = 'accept'
    return exp, btf, strict

def verdicts(out):
    got = {}
    for line in out.splitlines():
        m = re.match(r'(\S+) \(([^)]*)\): (accepted|rejected)(.*)', line)
        if m:
            got[m.group(1)] = ('accept' if m.group(3) == 'accepted' else 'reject', m.group(4).strip())
    return got

def main():
    args = sys.argv[1:]
    rows_out = None
    if '--write-rows' in args:
        i = args.index('--write-rows')
        rows_out = args[i + 1]
        del args[i:i + 2]
    extra = [a for a in args[3:] if a.startswith('--')]
    graft, objdir, known_path = args[:3]
    known = {}
    for n, line in enumerate(open(known_path), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        m = re.match(r'(\S+) (\S+) (accept|reject|missing): (.+)', line)
        if not m:
            sys.exit(f'{known_path}:{n}: expected "OBJECT PROGRAM accept|reject: reason"')
        known[(m.group(1), m.group(2))] = (m.group(3), m.group(4))
    tot, unexplained, stale, rows = collections.Counter(), [], [], []
    seen = set()
    t0 = time.monotonic()
    nobj = unloadable = 0
    for f in sorted(os.listdir(objdir)):
        if not f.endswith('.o'):
            continue
        obj = os.path.join(objdir, f)
        exp, btf, strict = expectations(obj, unpriv='--privileged' not in extra)
        if not exp:
            continue
        nobj += 1
        # the target BTF the kernel's runner uses for the object's CO-RE
        # relocations (__btf_path), when the corpus built it
        target = [os.path.join(objdir, 'btf', b) for b in sorted(btf)]
        target = ['--btf', target[0]] if len(target) == 1 and os.path.exists(target[0]) else []
        r = subprocess.run([graft, 'verify', obj] + extra + target, capture_output=True, text=True)
        if r.returncode == 2 and not re.search(r': (accepted|rejected)', r.stdout + r.stderr):
            unloadable += 1
        got = verdicts(r.stdout + r.stderr)
        for prog in sorted(strict & set(exp)):   # as the kernel's runner loads them
            r = subprocess.run([graft, 'verify', obj, '--section', prog, '--strict-alignment'] + extra + target,
                               capture_output=True, text=True)
            got.update(verdicts(r.stdout + r.stderr))
        for prog, want in sorted(exp.items()):
            have, why = got.get(prog, ('missing', ''))
            tot[(want, have)] += 1
            rows.append(f'{f} {prog} {have}\t{want}\t{why}')
            key = (f, prog)
            if have == want:
                if key in known:
                    stale.append(f'{f} {prog}')
                continue
            seen.add(key)
            if known.get(key, (None,))[0] != have:
                unexplained.append(f'{f} {prog}: graft says {have}, the kernel {want}: {why[:160]}')
    secs = time.monotonic() - t0
    acc_n = sum(v for k, v in tot.items() if k[0] == 'accept')
    rej_n = sum(v for k, v in tot.items() if k[0] == 'reject')
    acc = tot[('accept', 'accept')]
    rej = tot[('reject', 'reject')]
    for u in unexplained:
        print('UNEXPLAINED', u)
    for s in stale:
        print('STALE (now agrees, remove it from the list)', s)
    print(f'{nobj} objects, {acc_n + rej_n} programs: kernel accepts {acc}/{acc_n} agree, '
          f'kernel rejects {rej}/{rej_n} agree; {len(unexplained)} unexplained, '
          f'{len(known) - len(seen & set(known))} listed not seen')
    print(f'BENCH kernel_selftests_accept_pct {100.0 * acc / max(acc_n, 1):.1f} %')
    print(f'BENCH kernel_selftests_reject_pct {100.0 * rej / max(rej_n, 1):.1f} %')
    print(f'BENCH kernel_selftests_unloadable_objects {unloadable} objects')
    print(f'BENCH kernel_selftests_verify_s {secs:.2f} s')
    if rows_out:
        with open(rows_out, 'w') as fo:
            fo.write('\n'.join(rows) + '\n')
    return 1 if unexplained else 0

sys.exit(main())
